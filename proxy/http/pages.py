"""The proxy's own small error pages: generic, no upstream address, no echo of input."""

from __future__ import annotations

from collections.abc import Mapping
from http import HTTPStatus

from aiohttp import web

_MESSAGES = {
    400: "The request could not be understood.",
    404: "There is nothing at this address.",
    405: "This method is not allowed here.",
    408: "The request took too long to arrive.",
    413: "The request body is too large.",
    417: "The expectation given in the request cannot be met.",
    501: "The request uses a feature this server does not support.",
    502: "The site could not be reached. Please try again in a moment.",
    504: "The site took too long to answer. Please try again in a moment.",
}


def error(
    status: int, *, headers: Mapping[str, str] | None = None, close: bool = False
) -> web.Response:
    phrase = HTTPStatus(status).phrase
    message = _MESSAGES.get(status, phrase)
    body = (
        "<!doctype html>\n<html lang=en><head><meta charset=utf-8>"
        f"<title>{status} {phrase}</title></head>\n"
        f"<body><h1>{status} {phrase}</h1><p>{message}</p></body></html>\n"
    )
    response = web.Response(status=status, text=body, content_type="text/html", headers=headers)
    response.headers["Cache-Control"] = "no-store"
    if close:
        response.force_close()
    return response
