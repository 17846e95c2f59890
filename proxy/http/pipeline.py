"""The request pipeline: refuse what must not be forwarded, forward to the origin,
then choose the body path of its answer (DESIGN.md).

``handle`` serves every method and path that is not the proxy's own. An answer that
is not HTML, or an HTML page this visitor's consent leaves untouched, passes through
(passthrough.py); any other HTML page is rewritten as it streams (rewrite_body.py).
"""

from __future__ import annotations

import asyncio
import logging

import aiohttp
from aiohttp import web
from multidict import CIMultiDict
from yarl import URL

from proxy.http import mime, pages, pool, websocket
from proxy.http.cache import RewriteCache
from proxy.http.deadlines import RequestDeadlines, Watchdog
from proxy.http.hook import RequestInfo, RewriteFactory
from proxy.http.passthrough import passthrough
from proxy.http.responses import NO_BODY_STATUS
from proxy.http.rewrite_body import rewrite_body
from proxy.http.upstream import BodyStream, BodyTooLarge, ClientTooSlow, request_headers, visitor
from proxy.http.validators import translate_if_none_match
from proxy.observe.decisions import DecisionLog
from proxy.observe.logs import log_path
from proxy.settings import Settings

log = logging.getLogger("consent_proxy")

# Paths the proxy answers itself (the /_consent endpoints), with the methods each
# takes: any other method on them is refused here, never forwarded.
OwnPaths = dict[str, str]


class Pipeline:
    """What every forwarded request needs, looked up once rather than per request."""

    def __init__(
        self,
        settings: Settings,
        rewrite: RewriteFactory,
        decisions: DecisionLog,
        cache: RewriteCache,
        own_paths: OwnPaths,
    ) -> None:
        self.settings = settings
        self.rewrite = rewrite
        self.decisions = decisions
        self.cache = cache
        self.own_paths = own_paths
        self.origin = str(settings.upstream_url).rstrip("/")
        self.watchdog = Watchdog(
            settings.upstream_timeout, settings.read_timeout, settings.client_timeout
        )
        self.session: aiohttp.ClientSession | None = None  # set while the app runs


async def expect_continue(max_body: int, request: web.Request) -> web.StreamResponse | None:
    """Answer ``Expect: 100-continue`` only when the announced body fits."""
    if request.content_length is not None and request.content_length > max_body:
        return pages.error(413)
    if request.headers.get("Expect", "").lower() != "100-continue":
        return pages.error(417)
    await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
    return None


def _refusal(request: web.Request, raw_path: str, settings: Settings) -> web.StreamResponse | None:
    """Requests that must never be forwarded: they could reach another host."""
    refused = unroutable(request.method, raw_path)
    if refused is not None:
        return refused
    headers = request.headers
    hosts = headers.getall("Host", ())
    if len(hosts) > 1 or (hosts and not _NOT_IN_HOST.isdisjoint(hosts[0])):
        return pages.error(400)
    if "Content-Length" in headers:
        length = request.content_length
        if length is not None and length > settings.max_body:
            return pages.error(413)
    return None


_NOT_IN_HOST = frozenset("\0\r\n @")


def unroutable(method: str, raw_path: str) -> web.StreamResponse | None:
    """The answer to a request whose target is not a path on the origin."""
    if method == "CONNECT":
        return pages.error(405, headers={"Allow": "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"})
    if not raw_path.startswith("/"):
        return pages.error(400)  # absolute-form or asterisk-form target
    return None


async def handle(pipe: Pipeline, request: web.Request) -> web.StreamResponse:
    """The answer to a request for the origin: refused, or the origin's, rewritten
    when it is an HTML page, or an error page when the origin cannot answer."""
    settings = pipe.settings
    session = pipe.session
    assert session is not None, "the client session lives as long as the app runs"
    raw_path = request.raw_path
    refused = _refusal(request, raw_path, settings)
    if refused is not None:
        return refused
    path = request.path
    if path in pipe.own_paths or path.startswith("/_consent/"):
        # Ours, but not with this method: never the origin's.
        allow = pipe.own_paths.get(path)
        return pages.error(405, headers={"Allow": allow}) if allow else pages.error(404)
    trusted = settings.trusted_proxies
    client = visitor(request, trusted) if trusted else request.remote or ""
    headers = request_headers(request, settings, client)
    url = URL(pipe.origin + raw_path, encoded=True)
    if "Upgrade" in request.headers and websocket.is_upgrade(request):
        return await websocket.relay(request, session, url, headers)
    # Made only when needed: for a validator to translate, or an HTML answer.
    rewrite = None
    # X-Forwarded-Host: the host the browser addressed (a trusted front's, else Host).
    info = RequestInfo(request.method, raw_path, request.headers, headers.get("X-Forwarded-Host"))
    if "If-None-Match" in headers:
        rewrite = pipe.rewrite(info)
    translated = rewrite is not None and translate_if_none_match(headers, rewrite.variant)
    has_body = request.body_exists and request.method not in ("GET", "HEAD")
    body = BodyStream(request, settings.max_body, settings.client_timeout) if has_body else None
    deadlines = pipe.watchdog.start(request)
    try:
        try:
            upstream = await _send(request, session, url, headers, body, deadlines)
            ctype = _content_type(upstream)
            if upstream.status == 206 and ctype.html and request.method in ("GET", "HEAD"):
                # A slice of a page cannot be rewritten: ask for the whole page instead.
                upstream.close()
                headers.popall("Range", None)
                headers.popall("If-Range", None)
                deadlines.expect_answer()  # a new request: a new deadline
                upstream = await _send(request, session, url, headers, None, deadlines)
                ctype = _content_type(upstream)
        except BodyTooLarge:
            return pages.error(413, close=True)
        except ClientTooSlow:
            return pages.error(408, close=True)
        except TimeoutError:
            log.warning("upstream timeout: %s %s", request.method, log_path(raw_path))
            return pages.error(504)
        except (aiohttp.ClientError, OSError) as exc:
            if body is not None and body.exceeded:
                return pages.error(413, close=True)
            if body is not None and body.stalled:
                return pages.error(408, close=True)
            log.warning(
                "upstream failed: %s %s: %s", request.method, log_path(raw_path), type(exc).__name__
            )
            return pages.error(502)
        # As ``async with upstream`` (release: the connection goes back to the pool,
        # or is closed if its body was not read whole), without its two frames.
        try:
            html = ctype.html
            if html is None and (upstream.status in NO_BODY_STATUS or upstream.method == "HEAD"):
                html = False
            first = b""  # what was read to sniff the type: it goes first
            if html is None:
                try:
                    first, html = await _sniff(upstream, deadlines)
                except (aiohttp.ClientError, TimeoutError):
                    return pages.error(502)
            if html and upstream.status not in NO_BODY_STATUS:
                page = rewrite or pipe.rewrite(info)
                if page.passes_through and request.method != "HEAD":
                    return await passthrough(
                        pipe, request, upstream, ctype, first, deadlines, None, page
                    )
                return await rewrite_body(pipe, request, upstream, ctype, first, deadlines, page)
            variant = rewrite.variant if rewrite is not None and translated else None
            return await passthrough(pipe, request, upstream, ctype, first, deadlines, variant)
        finally:
            upstream.release()
            if body is not None:
                await upstream.wait_for_close()  # the request body's writer
    finally:
        deadlines.close()


async def _send(
    request: web.Request,
    session: aiohttp.ClientSession,
    url: URL,
    headers: CIMultiDict[str],
    body: BodyStream | None,
    deadlines: RequestDeadlines,
) -> aiohttp.ClientResponse:
    """The origin's answer (its headers); TimeoutError when it does not come in time."""
    data = body.__aiter__() if body is not None else None
    if body is not None:
        body.deadlines = deadlines  # the answer is due from the last body byte sent
        if request.content_length is None:
            headers.popall("Content-Length", None)
    retry = pool.safe_to_retry(request.method, data is not None)
    try:
        while True:
            try:
                upstream = await session.request(
                    request.method,
                    url,
                    headers=headers,
                    data=data,
                    allow_redirects=False,
                    compress=None,
                    chunked=None,
                )
            except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError) as exc:
                # The origin closed the connection as the request went out (a pooled one
                # it had just timed out, most often): only a request without side
                # effects or body is sent again, once; never one that changes something.
                if not retry or isinstance(exc, aiohttp.ClientConnectorError):
                    raise
                retry = False
            else:
                break
    except asyncio.CancelledError:
        task = asyncio.current_task()
        if deadlines.expired and task is not None and task.uncancel() == 0:
            raise TimeoutError("no answer from the origin in time") from None
        raise
    deadlines.answered(upstream)
    return upstream


def _content_type(upstream: aiohttp.ClientResponse) -> mime.ResponseType:
    return mime.response_type(tuple(upstream.headers.getall("Content-Type", ())))


async def _sniff(
    upstream: aiohttp.ClientResponse, deadlines: RequestDeadlines
) -> tuple[bytes, bool]:
    """The first bytes of an untyped body (enough to tell), and whether a browser
    might render it as HTML."""
    sniffer = mime.Sniffer(upstream.headers.get("Content-Encoding"))
    first = b""
    while chunk := await deadlines.read():
        first += chunk
        if sniffer.feed(chunk):
            break
    return first, sniffer.html
