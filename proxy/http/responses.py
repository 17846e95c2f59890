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


class _WithBody(web.StreamResponse):
    """Headers that leave with the first body bytes written, in one send (aiohttp's
    StreamResponse sends them by themselves as it is prepared)."""

    _send_headers_immediately = False


class _UntypedWithBody(UntypedResponse):
    _send_headers_immediately = False


# Up to this many body bytes go out in one send with the headers. aiohttp joins the
# two (on Python before 3.12.9 it always copies): for more, the copy costs about what
# the second send saves.
_WITH_HEADERS = 16 * 1024


def response(
    status: int, reason: str | None, headers: CIMultiDict[str], *, ready: int = 0
) -> web.StreamResponse:
    """The response to the visitor, not yet prepared, with exactly ``headers``.
    ``ready``: the length of the body bytes the caller holds and writes right after
    ``prepare``: when they are few, the headers go with them (one send and one packet
    instead of two, and no later: nothing is waited for in between). Otherwise (0:
    none in hand) the headers leave at once."""
    with_body = 0 < ready <= _WITH_HEADERS
    if "Content-Type" in headers:
        kind = _WithBody if with_body else web.StreamResponse
    else:
        kind = _UntypedWithBody if with_body else UntypedResponse
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
