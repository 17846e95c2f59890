"""The body path of most answers: the origin's bytes, untouched, as they come."""

from __future__ import annotations

from typing import TYPE_CHECKING

import aiohttp
from aiohttp import web

from proxy.http import mime
from proxy.http.deadlines import RequestDeadlines
from proxy.http.hook import BodyRewrite
from proxy.http.response_headers import UNTOUCHED, response_headers
from proxy.http.responses import NO_BODY_STATUS, response, truncate

if TYPE_CHECKING:
    from proxy.http.pipeline import Pipeline


async def passthrough(
    pipe: Pipeline,
    request: web.Request,
    upstream: aiohttp.ClientResponse,
    ctype: mime.ResponseType,
    first: bytes,
    deadlines: RequestDeadlines,
    validated: str | None,
    page: BodyRewrite | None = None,
) -> web.StreamResponse:
    """The origin's answer, bytes untouched. ``page``: an HTML page whose rewrite would
    change nothing for this visitor; its headers still say it depends on consent.
    ``validated``: the variant a translated If-None-Match named (response_headers)."""
    status = upstream.status
    headers = response_headers(
        upstream.headers, status, ctype, pipe.settings.via, UNTOUCHED, page, validated
    )
    if request.method == "HEAD" or status in NO_BODY_STATUS or status < 200:
        out = response(status, upstream.reason, headers)
        await out.prepare(request)
        return out
    content = upstream.content
    if not first:
        # What arrived with the origin's headers leaves with ours (one send); when
        # nothing has, ours leave at once (the origin may pause before its body).
        try:
            first = content.read_nowait()
        except (aiohttp.ClientError, TimeoutError):
            first = b""  # the read below meets it again, once the response began
    out = response(status, upstream.reason, headers, ready=len(first))
    await out.prepare(request)
    try:
        if first:
            deadlines.sent += len(first)
            await out.write(first)
        while True:  # deadlines.read(), inlined: the hottest loop of the proxy
            deadlines.turns += 1
            chunk = await content.readany()
            deadlines.turns += 1
            if not chunk:
                break
            deadlines.sent += len(chunk)
            await out.write(chunk)
        await out.write_eof()
    except (aiohttp.ClientError, TimeoutError) as exc:
        return truncate(request, out, exc)
    if page is not None:
        # The decision-log line of a page that passed untouched (most pages).
        fields = page.untouched_members(deadlines.sent)
        pipe.decisions.untouched(request.method, request.raw_path, out.status, fields)
    return out
