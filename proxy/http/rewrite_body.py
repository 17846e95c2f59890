"""The body path of HTML the proxy rewrites: decode, rewrite as it streams, encode.

The first window (window.py) is rewritten before the headers leave: a page that ends
in it leaves whole, with a Content-Length; a page the rewrite cache holds (cache.py)
leaves from the cache; a longer page streams, rewritten chunk by chunk, the rewrite
taking turns with other requests (timeslice.py). Every HTML answer, rewritten, from
the cache or failed, gets one decision-log line.
"""

from __future__ import annotations

import contextlib
import logging
from typing import TYPE_CHECKING

import aiohttp
from aiohttp import web
from multidict import CIMultiDict

from proxy.html import RewriteLimitError
from proxy.html.charset import CharsetError
from proxy.http import codec, mime, pages
from proxy.http.cache import Status, Stored, Ticket
from proxy.http.deadlines import RequestDeadlines
from proxy.http.hook import BodyRewrite
from proxy.http.response_headers import Body, response_headers
from proxy.http.responses import response, truncate
from proxy.http.timeslice import Timesliced
from proxy.http.transcode import PageText
from proxy.http.window import first_window, read_same
from proxy.observe.decisions import PageDecision
from proxy.observe.logs import log_path

if TYPE_CHECKING:
    from proxy.http.pipeline import Pipeline

log = logging.getLogger("consent_proxy")

_DRAIN = 1024 * 1024  # the most of an unneeded body read to keep its connection


async def rewrite_body(
    pipe: Pipeline,
    request: web.Request,
    upstream: aiohttp.ClientResponse,
    ctype: mime.ResponseType,
    first: bytes,
    deadlines: RequestDeadlines,
    rewrite: BodyRewrite,
) -> web.StreamResponse:
    """The rewritten page (from the cache when the origin vouches for the same bytes)."""
    codings = codec.parse_encodings(upstream.headers.get("Content-Encoding", ""))
    try:
        decoder = codec.Decoder(codings)
    except codec.DecodeError as exc:
        log.warning("cannot decode HTML: %s: %s", log_path(request.raw_path), exc)
        return _decided(pipe, request, pages.error(502), rewrite)
    # The origin's choice stands: a page it sent unencoded leaves unencoded (encoding
    # it would add CPU on every rewrite the origin chose not to spend); a page it
    # encoded is encoded again in the client's preferred coding of ours.
    accept = request.headers.get("Accept-Encoding")
    encoder = codec.Encoder(codec.choose_encoding(accept) if codings else None)
    coding = encoder.coding
    via = pipe.settings.via
    rewrite.begin(upstream.headers)
    if request.method == "HEAD":
        body = Body(rewritten=True, coding=coding, head=True)
        headers = response_headers(upstream.headers, upstream.status, ctype, via, body, rewrite)
        out = response(upstream.status, upstream.reason, headers)
        await out.prepare(request)
        return _decided(pipe, request, out, rewrite)
    ticket = pipe.cache.ticket(request, upstream, ctype, rewrite, coding)
    if ticket.hit is not None:  # the origin vouches for the same bytes as before
        out = await _from_cache(
            pipe, request, upstream, ctype, coding, rewrite, ticket.hit, deadlines
        )
        await _drain(upstream, deadlines)
        return out
    text = sliced = window = None
    try:
        # The bytes the cache's page was made from: nothing more to make.
        same, first = await read_same(deadlines, ticket, first)
        if not same:
            text = PageText(rewrite, ctype.charset, ctype.xml)  # in the page's encoding
            # The rewrite gives other requests their turns meanwhile (however slow).
            sliced = Timesliced(text.feed)
            window = await first_window(deadlines, decoder, sliced, text, ticket, first)
    except (codec.DecodeError, CharsetError, RewriteLimitError) as exc:
        log.warning("cannot rewrite HTML: %s: %s", log_path(request.raw_path), exc)
        return _decided(pipe, request, pages.error(502), rewrite, ticket.status)
    except (aiohttp.ClientError, TimeoutError):
        return _decided(pipe, request, pages.error(502), rewrite, ticket.status)
    if window is None or window.same:
        stored = ticket.candidate
        assert stored is not None
        return await _from_cache(pipe, request, upstream, ctype, coding, rewrite, stored, deadlines)
    assert text is not None and sliced is not None  # made with the window
    if window.whole:
        whole = encoder.feed(b"".join(window.pending)) + encoder.finish()
        body = Body(rewritten=True, coding=coding, length=len(whole), cache=ticket.status)
        headers = response_headers(upstream.headers, upstream.status, ctype, via, body, rewrite)
        out = response(upstream.status, upstream.reason, headers, ready=len(whole))
        await out.prepare(request)
        deadlines.sent += len(whole)
        await out.write(whole)
        await out.write_eof()
        _keep(pipe, ticket, whole, rewrite, decoder)
        return _decided(pipe, request, out, rewrite, ticket.status)
    body = Body(rewritten=True, coding=coding, cache=ticket.status)
    headers = response_headers(upstream.headers, upstream.status, ctype, via, body, rewrite)
    data = encoder.feed(b"".join(window.pending))
    out = response(upstream.status, upstream.reason, headers, ready=len(data))
    await out.prepare(request)
    try:
        ticket.collect(data)
        deadlines.sent += len(data)
        await out.write(data)
        while chunk := await deadlines.read():
            ticket.receive(chunk)
            data = decoder.feed(chunk)
            ticket.digest(data)
            data = await sliced.feed(data)
            if data:
                data = encoder.feed(data)
                ticket.collect(data)
                deadlines.sent += len(data)
                await out.write(data)
        data = decoder.flush()
        ticket.digest(data)
        data = await sliced.feed(data) + text.close()
        data = encoder.feed(data) + encoder.finish()
        ticket.collect(data)
        deadlines.sent += len(data)
        await out.write(data)
        with contextlib.suppress(ConnectionResetError):
            await out.write_eof()
    except (
        aiohttp.ClientError,
        TimeoutError,
        codec.DecodeError,
        CharsetError,
        RewriteLimitError,
    ) as exc:
        _decided(pipe, request, out, rewrite, ticket.status)
        return truncate(request, out, exc)
    if ticket.parts is not None:
        _keep(pipe, ticket, b"".join(ticket.parts), rewrite, decoder)
    return _decided(pipe, request, out, rewrite, ticket.status)


def _keep(
    pipe: Pipeline, ticket: Ticket, body: bytes, rewrite: BodyRewrite, decoder: codec.Decoder
) -> None:
    """Store a page rewritten whole for the next visitor (a miss only)."""
    if ticket.status != "miss":
        return
    final: CIMultiDict[str] = CIMultiDict()
    rewrite.fix_headers(final)  # the actions of the whole page, as a hit reports them
    actions = final.get("X-Consent-Actions")
    pipe.cache.store(ticket, body, actions, rewrite.decision(), decoder.total)


async def _from_cache(
    pipe: Pipeline,
    request: web.Request,
    upstream: aiohttp.ClientResponse,
    ctype: mime.ResponseType,
    coding: str | None,
    rewrite: BodyRewrite,
    stored: Stored,
    deadlines: RequestDeadlines,
) -> web.StreamResponse:
    """A page rewritten before, from the cache: its headers made for this visitor."""
    length = len(stored.body)
    body = Body(True, coding, length, "hit", stored.actions)
    headers = response_headers(
        upstream.headers, upstream.status, ctype, pipe.settings.via, body, rewrite
    )
    out = response(upstream.status, upstream.reason, headers, ready=len(stored.body))
    await out.prepare(request)
    deadlines.sent += len(stored.body)
    await out.write(stored.body)
    with contextlib.suppress(ConnectionResetError):
        await out.write_eof()
    return _decided(pipe, request, out, rewrite, "hit", stored.decision)


async def _drain(upstream: aiohttp.ClientResponse, deadlines: RequestDeadlines) -> None:
    """Read the rest of a body that is not needed, so its connection can carry the
    next request; one longer than ``_DRAIN`` is left (its connection is closed)."""
    left = _DRAIN
    with contextlib.suppress(aiohttp.ClientError, TimeoutError):
        while left > 0 and (chunk := await deadlines.read()):
            left -= len(chunk)


def _decided(
    pipe: Pipeline,
    request: web.Request,
    out: web.StreamResponse,
    rewrite: BodyRewrite,
    cache: Status | None = None,
    stored: PageDecision | None = None,
) -> web.StreamResponse:
    """One decision-log line per HTML response: what was done, under which consent;
    ``cache``: what the rewrite cache did; ``stored``: the decision of the page it
    gave (what was done to it, when it was rewritten)."""
    decision = rewrite.decision()
    if decision is not None:
        if stored is not None:
            decision = PageDecision(
                decision.consent,
                decision.rules,
                stored.actions,
                stored.bytes_in,
                stored.bytes_out,
                0.0,
                True,
                cache,
            )
        elif cache is not None:
            decision = decision._replace(cache=cache)
        pipe.decisions.page(request.method, request.raw_path, out.status, decision)
    return out
