"""Starting and cutting short the response to the visitor, for both body paths."""

from __future__ import annotations

import logging

from aiohttp import web
from multidict import CIMultiDict

from proxy.observe.logs import log_path

log = logging.getLogger("consent_proxy")

NO_BODY_STATUS = (204, 304)


class UntypedResponse(web.StreamResponse):
    """A response that leaves without a Content-Type, as the origin's did: aiohttp
    would add ``application/octet-stream``, and browsers download what they would
    otherwise sniff and show. (Not ``text/html`` either: that would make a body a
    browser reads as text, or refuses to sniff under ``nosniff``, run as a page.)"""

    async def _prepare_headers(self) -> None:
        await super()._prepare_headers()
        self.headers.popall("Content-Type", None)


def response(status: int, reason: str | None, headers: CIMultiDict[str]) -> web.StreamResponse:
    """The response to the visitor, not yet prepared, with exactly ``headers``."""
    kind = web.StreamResponse if "Content-Type" in headers else UntypedResponse
    return kind(status=status, reason=reason, headers=headers)


def truncate(
    request: web.Request, out: web.StreamResponse, exc: BaseException
) -> web.StreamResponse:
    """The origin failed after the response began: cut the connection so the client
    sees an incomplete transfer (no final chunk, or fewer bytes than announced)."""
    log.warning(
        "upstream failed mid-body: %s %s: %s",
        request.method,
        log_path(request.raw_path),
        type(exc).__name__,
    )
    if request.transport is not None:
        request.transport.abort()
    request.protocol.force_close()
    return out
