"""``create_app(settings)``: the one place that wires the proxy together.

Every method and path reaches ``handle``, which reads top to bottom as the pipeline in
DESIGN.md: refuse what must not be forwarded, forward to the origin, then stream the
answer back untouched, or through the HTML rewrite when it is HTML.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
from collections.abc import AsyncIterator, Callable

import aiohttp
from aiohttp import web
from multidict import CIMultiDict
from yarl import URL

from proxy import selftest
from proxy.consent.enforcer import Enforcer
from proxy.consent.inventory import InventoryBook
from proxy.consent.model import ConsentReader
from proxy.consent.reload import RulesState, Verify, watch
from proxy.consent.rules import RuleSet
from proxy.html import RewriteLimitError
from proxy.html.charset import CharsetError
from proxy.http import codec, mime, pages, pool, websocket
from proxy.http.cache import RewriteCache, Status, Stored, Ticket
from proxy.http.consent_hook import consent_hook
from proxy.http.deadlines import Pacing, Watchdog
from proxy.http.forwarded import same_origin_post
from proxy.http.hook import BodyRewrite, RequestInfo, RewriteFactory
from proxy.http.timeslice import Timesliced
from proxy.http.transcode import PageText
from proxy.http.upstream import (
    BodyStream,
    BodyTooLarge,
    ClientTooSlow,
    addressed,
    request_headers,
    response_headers,
    visitor,
)
from proxy.http.validators import add_vary, upstream_if_none_match, variant_etag
from proxy.http.window import first_window
from proxy.observe.decisions import DecisionLog, PageDecision
from proxy.observe.logs import AccessLogger, JsonLines, access_logger, log_path, open_log
from proxy.observe.metrics import METRICS, Metrics
from proxy.settings import Settings
from proxy.ui import endpoints
from proxy.ui.furniture import PageFurniture
from proxy.ui.templates import Templates

SETTINGS = web.AppKey("settings", Settings)
RULES = web.AppKey("rules", RulesState)
DECISIONS = web.AppKey("decisions", DecisionLog)
ACCESS_LOG = web.AppKey("access_log", JsonLines)
ACCESS_LOGGER: web.AppKey[type[AccessLogger]] = web.AppKey("access_logger")
PIPELINE: web.AppKey[Pipeline] = web.AppKey("pipeline")
log = logging.getLogger("consent_proxy")

NO_BODY_STATUS = (204, 304)
_DRAIN = 1024 * 1024  # the most of an unneeded body read to keep its connection
# Longer request lines get 414, longer header lines 431 (server.py tells them apart).
MAX_REQUEST_LINE = 8190
MAX_HEADER_FIELD = 16384


def create_app(
    settings: Settings,
    *,
    rules: RuleSet | None = None,
    rewrite: RewriteFactory | None = None,
) -> web.Application:
    """The proxy application. Rules are loaded from ``settings.rules`` unless given
    (RuleError if invalid: a proxy must not start with half its rules) and pass the
    self-test before they serve, at start-up and at every reload (SelfTestError: a
    proxy must not serve pages it cannot rewrite)."""
    limits = {"max_line_size": MAX_REQUEST_LINE, "max_field_size": MAX_HEADER_FIELD}
    app = web.Application(handler_args=limits)
    app[SETTINGS] = settings
    if rules is None:
        state = RulesState.load(settings.rule_layers, self_test(settings))
    else:
        state = RulesState(rules, settings.rule_layers)
    app[RULES] = state
    metrics = app[METRICS] = Metrics()
    app[ACCESS_LOG] = open_log("access", settings.access_log, settings.log_flush)
    trusted = settings.trusted_proxies
    client = functools.partial(visitor, trusted=trusted) if trusted else None
    app[ACCESS_LOGGER] = access_logger(metrics=metrics, client=client)
    decisions = open_log("decisions", settings.decision_log, settings.log_flush)
    app[DECISIONS] = DecisionLog(decisions, metrics)
    app.on_cleanup.append(_close_logs)
    read_consent = ConsentReader(settings.consent_policy)  # the one way consent is read
    book = InventoryBook(
        settings.first_party, settings.unknown_third_party, totals=metrics.uncovered
    )
    factory = rewrite or consent_rewrites(settings, state, read_consent, book)
    app.cleanup_ctx.append(_client_session)
    websocket.track(app)
    if rules is None:
        app.cleanup_ctx.append(_rules_watcher)
    config = endpoints.EndpointSettings(
        read_consent, _templates(settings), settings.consent_max_age, settings.admin_token
    )
    endpoints.add_routes(app, config, state, app[DECISIONS], consent_sender(settings))
    endpoints.add_inventory_route(app, book, state, settings.admin_token)
    # One per worker; a page made under other rules is never given (see cache.py).
    cache = RewriteCache(settings.rewrite_cache, lambda: state.current.generation)
    pipeline = app[PIPELINE] = Pipeline(settings, factory, app[DECISIONS], cache)
    forward = functools.partial(handle, pipeline)
    # (?s): the decoded path may hold a line break (%0A), and every path is forwarded.
    app.router.add_route("*", "/{tail:(?s:.*)}", forward, expect_handler=_expect)
    return app


class Pipeline:
    """What every forwarded request needs, looked up once rather than per request."""

    def __init__(
        self,
        settings: Settings,
        rewrite: RewriteFactory,
        decisions: DecisionLog,
        cache: RewriteCache,
    ) -> None:
        self.settings = settings
        self.rewrite = rewrite
        self.decisions = decisions
        self.cache = cache
        self.origin = str(settings.upstream_url).rstrip("/")
        self.watchdog = Watchdog(
            settings.upstream_timeout, settings.read_timeout, settings.client_timeout
        )
        self.session: aiohttp.ClientSession | None = None  # set while the app runs


def self_test(settings: Settings) -> Verify:
    """The self-test of a rule set under these settings (consent cookie, templates)."""
    policy = settings.consent_policy
    templates = _templates(settings)
    return lambda ruleset: selftest.verify(ruleset, policy, templates)


def consent_rewrites(
    settings: Settings,
    state: RulesState,
    read_consent: ConsentReader | None = None,
    inventory: InventoryBook | None = None,
) -> RewriteFactory:
    """The proxy's hook: per request, the consent read, the plan for it under the rules
    in force, and the page it gets, with the banner and placeholders of the templates."""
    # The banner asks only when the proxy's own cookie is among the consent sources
    # (else the site's own banner asks, and the proxy enforces what was chosen there).
    furniture = PageFurniture(
        _templates(settings), banner=settings.own_banner, stand_ins=settings.surrogates
    )
    read_consent = read_consent or ConsentReader(settings.consent_policy)
    inventory = inventory or InventoryBook(settings.first_party, settings.unknown_third_party)
    enforcer = Enforcer(
        state,
        read_consent,
        furniture,
        settings.consent_mode_settings,
        settings.first_party,
        inventory=inventory,
    )
    # What the rewriter looks for is compiled before a rule set serves: now, and in
    # every reload (off the event loop), so no visitor waits for it.
    enforcer.prepare(state.current)
    state.prepare = enforcer.prepare
    return consent_hook(enforcer, debug_headers=settings.debug_headers)


def _templates(settings: Settings) -> Templates:
    return Templates(settings.templates, settings.privacy_url)


def consent_sender(settings: Settings) -> Callable[[web.Request], endpoints.Sender]:
    """What the HTTP layer knows of who sent a consent post, for the endpoints."""
    trusted = settings.trusted_proxies

    def sender(request: web.Request) -> endpoints.Sender:
        site = addressed(request, settings)
        origin = site.origin
        return endpoints.Sender(
            same_site=same_origin_post(request.headers, origin),
            site=str(origin) if origin is not None else None,
            secure=site.scheme == "https",
            host=site.authority.host if site.authority is not None else None,
            client=visitor(request, trusted),
        )

    return sender


async def _close_logs(app: web.Application) -> None:
    app[ACCESS_LOG].close()
    app[DECISIONS].close()


async def _rules_watcher(app: web.Application) -> AsyncIterator[None]:
    task = asyncio.create_task(watch(app[RULES]))
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def _client_session(app: web.Application) -> AsyncIterator[None]:
    async with pool.origin_session(app[SETTINGS]) as session:
        app[PIPELINE].session = session
        yield


async def _expect(request: web.Request) -> web.StreamResponse | None:
    """Answer ``Expect: 100-continue`` only when the announced body fits."""
    limit = request.app[SETTINGS].max_body
    if request.content_length is not None and request.content_length > limit:
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
    settings = pipe.settings
    session = pipe.session
    assert session is not None, "the client session lives as long as the app runs"
    raw_path = request.raw_path
    refused = _refusal(request, raw_path, settings)
    if refused is not None:
        return refused
    path = request.path
    if path in endpoints.OWN_PATHS or path.startswith("/_consent/"):
        # Ours, but not with this method: never the origin's.
        allow = endpoints.OWN_PATHS.get(path)
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
    translated = rewrite is not None and _translate_validators(headers, rewrite.variant)
    has_body = request.body_exists and request.method not in ("GET", "HEAD")
    body = BodyStream(request, settings.max_body, settings.client_timeout) if has_body else None
    pacing = pipe.watchdog.start(request)
    try:
        try:
            upstream = await _send(request, session, url, headers, body, pacing)
            ctype = _content_type(upstream)
            if upstream.status == 206 and ctype.html and request.method in ("GET", "HEAD"):
                # A slice of a page cannot be rewritten: ask for the whole page instead.
                upstream.close()
                headers.popall("Range", None)
                headers.popall("If-Range", None)
                pacing.expect_answer()  # a new request: a new deadline
                upstream = await _send(request, session, url, headers, None, pacing)
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
                    first, html = await _sniff(upstream, pacing)
                except (aiohttp.ClientError, TimeoutError):
                    return pages.error(502)
            if html and upstream.status not in NO_BODY_STATUS:
                page = rewrite or pipe.rewrite(info)
                if page.passes_through and request.method != "HEAD":
                    return await _passthrough(
                        pipe, request, upstream, ctype, first, pacing, None, page
                    )
                return await _rewrite(pipe, request, upstream, ctype, first, pacing, page)
            variant = rewrite.variant if rewrite is not None and translated else None
            return await _passthrough(pipe, request, upstream, ctype, first, pacing, variant)
        finally:
            upstream.release()
            if body is not None:
                await upstream.wait_for_close()  # the request body's writer
    finally:
        pacing.close()


def _translate_validators(headers: CIMultiDict[str], variant: str) -> bool:
    inm = headers.get("If-None-Match")
    if inm is None:
        return False
    value, translated = upstream_if_none_match(inm, variant)
    headers.popall("If-None-Match")
    if value is not None:
        headers["If-None-Match"] = value
    if translated or value is None:
        headers.popall("If-Modified-Since", None)
    return translated


async def _send(
    request: web.Request,
    session: aiohttp.ClientSession,
    url: URL,
    headers: CIMultiDict[str],
    body: BodyStream | None,
    pacing: Pacing,
) -> aiohttp.ClientResponse:
    """The origin's answer (its headers); TimeoutError when it does not come in time."""
    data = body.__aiter__() if body is not None else None
    if body is not None:
        body.pacing = pacing  # the answer is due from the last body byte sent
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
        if pacing.expired and task is not None and task.uncancel() == 0:
            raise TimeoutError("no answer from the origin in time") from None
        raise
    pacing.answered(upstream)
    return upstream


def _content_type(upstream: aiohttp.ClientResponse) -> mime.ResponseType:
    return mime.response_type(tuple(upstream.headers.getall("Content-Type", ())))


async def _sniff(upstream: aiohttp.ClientResponse, pacing: Pacing) -> tuple[bytes, bool]:
    """The first bytes of an untyped body (enough to tell), and whether a browser
    might render it as HTML."""
    sniffer = mime.Sniffer(upstream.headers.get("Content-Encoding"))
    first = b""
    while chunk := await pacing.read():
        first += chunk
        if sniffer.feed(chunk):
            break
    return first, sniffer.html


def _one_content_type(headers: CIMultiDict[str], ctype: mime.ResponseType) -> None:
    """Exactly one Content-Type, as ``ctype`` says (or none, as the origin sent)."""
    if ctype.changed:
        headers.popall("Content-Type", None)
        if ctype.header is not None:
            headers["Content-Type"] = ctype.header


class UntypedResponse(web.StreamResponse):
    """A response that leaves without a Content-Type, as the origin's did: aiohttp
    would add ``application/octet-stream``, and browsers download what they would
    otherwise sniff and show. (Not ``text/html`` either: that would make a body a
    browser reads as text, or refuses to sniff under ``nosniff``, run as a page.)"""

    async def _prepare_headers(self) -> None:
        await super()._prepare_headers()
        self.headers.popall("Content-Type", None)


def _response(status: int, reason: str | None, headers: CIMultiDict[str]) -> web.StreamResponse:
    kind = web.StreamResponse if "Content-Type" in headers else UntypedResponse
    return kind(status=status, reason=reason, headers=headers)


async def _passthrough(
    pipe: Pipeline,
    request: web.Request,
    upstream: aiohttp.ClientResponse,
    ctype: mime.ResponseType,
    first: bytes,
    pacing: Pacing,
    variant: str | None,
    page: BodyRewrite | None = None,
) -> web.StreamResponse:
    """The origin's answer, bytes untouched. ``page``: an HTML page whose rewrite would
    change nothing for this visitor; its headers still say it depends on consent."""
    settings = pipe.settings
    headers = response_headers(upstream.headers, settings)
    _one_content_type(headers, ctype)
    if page is not None:
        page.fix_headers(headers)
        variant = page.variant
    if variant is not None and (upstream.status == 304 or page is not None) and "ETag" in headers:
        headers["ETag"] = variant_etag(headers["ETag"], variant)
    length = upstream.headers.get("Content-Length")
    if length is not None and length.isdigit() and upstream.status != 204:
        headers["Content-Length"] = length  # the same bytes (a 304: the page's)
    out = _response(upstream.status, upstream.reason, headers)
    if request.method == "HEAD" or upstream.status in NO_BODY_STATUS or upstream.status < 200:
        await out.prepare(request)
        return out
    await out.prepare(request)
    content = upstream.content
    try:
        if first:
            pacing.sent += len(first)
            await out.write(first)
        while True:  # pacing.read(), inlined: the hottest loop of the proxy
            pacing.turns += 1
            chunk = await content.readany()
            pacing.turns += 1
            if not chunk:
                break
            pacing.sent += len(chunk)
            await out.write(chunk)
        await out.write_eof()
    except (aiohttp.ClientError, TimeoutError) as exc:
        return _truncate(request, out, exc)
    if page is not None:
        _untouched(pipe, request, out, page.untouched_members(pacing.sent))
    return out


def _truncate(
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


def _rewritten_headers(
    settings: Settings,
    upstream: aiohttp.ClientResponse,
    ctype: mime.ResponseType,
    variant: str,
    coding: str | None,
) -> CIMultiDict[str]:
    """Response headers for a body the proxy rewrites (and maybe re-encodes)."""
    headers = response_headers(upstream.headers, settings)
    _one_content_type(headers, ctype)
    for name in ("Content-Encoding", "Accept-Ranges", "Content-MD5", "Digest"):
        headers.popall(name, None)
    if "ETag" in headers:
        headers["ETag"] = variant_etag(headers["ETag"], variant)
    if coding:
        headers["Content-Encoding"] = coding
    add_vary(headers, "Accept-Encoding")
    return headers


async def _rewrite(
    pipe: Pipeline,
    request: web.Request,
    upstream: aiohttp.ClientResponse,
    ctype: mime.ResponseType,
    first: bytes,
    pacing: Pacing,
    rewrite: BodyRewrite,
) -> web.StreamResponse:
    settings = pipe.settings
    try:
        decoder = codec.Decoder(codec.parse_encodings(upstream.headers.get("Content-Encoding", "")))
    except codec.DecodeError as exc:
        log.warning("cannot decode HTML: %s: %s", log_path(request.raw_path), exc)
        return _decided(pipe, request, pages.error(502), rewrite)
    encoder = codec.Encoder(codec.choose_encoding(request.headers.get("Accept-Encoding")))
    headers = _rewritten_headers(settings, upstream, ctype, rewrite.variant, encoder.coding)
    rewrite.begin(headers)
    if request.method == "HEAD":
        rewrite.fix_headers(headers)
        headers.popall("X-Consent-Actions", None)  # no body was rewritten to report on
        out = _response(upstream.status, upstream.reason, headers)
        await out.prepare(request)
        return _decided(pipe, request, out, rewrite)
    ticket = pipe.cache.ticket(request, upstream, ctype, rewrite, encoder.coding)
    if ticket.hit is not None:  # the origin vouches for the same bytes as before
        out = await _from_cache(pipe, request, upstream, headers, rewrite, ticket.hit, pacing)
        await _drain(upstream, pacing)
        return out
    text = PageText(rewrite, ctype.charset, ctype.xml)  # in the page's character encoding
    # The rewrite gives other requests their turns meanwhile (however slow this page is).
    sliced = Timesliced(text.feed)
    try:
        window = await first_window(pacing, decoder, sliced, text, ticket, first)
    except (codec.DecodeError, CharsetError, RewriteLimitError) as exc:
        log.warning("cannot rewrite HTML: %s: %s", log_path(request.raw_path), exc)
        return _decided(pipe, request, pages.error(502), rewrite, ticket.status)
    except (aiohttp.ClientError, TimeoutError):
        return _decided(pipe, request, pages.error(502), rewrite, ticket.status)
    if window.same:
        stored = ticket.candidate
        assert stored is not None
        return await _from_cache(pipe, request, upstream, headers, rewrite, stored, pacing)
    rewrite.fix_headers(headers)
    _cache_status(headers, ticket.status)
    out = _response(upstream.status, upstream.reason, headers)
    if window.whole:
        body = encoder.feed(b"".join(window.pending)) + encoder.finish()
        out.content_length = len(body)
        await out.prepare(request)
        pacing.sent += len(body)
        await out.write(body)
        await out.write_eof()
        _keep(pipe, ticket, body, rewrite, decoder)
        return _decided(pipe, request, out, rewrite, ticket.status)
    await out.prepare(request)
    try:
        data = encoder.feed(b"".join(window.pending))
        ticket.collect(data)
        pacing.sent += len(data)
        await out.write(data)
        while chunk := await pacing.read():
            data = decoder.feed(chunk)
            ticket.digest(data)
            data = await sliced.feed(data)
            if data:
                data = encoder.feed(data)
                ticket.collect(data)
                pacing.sent += len(data)
                await out.write(data)
        data = decoder.flush()
        ticket.digest(data)
        data = await sliced.feed(data) + text.close()
        data = encoder.feed(data) + encoder.finish()
        ticket.collect(data)
        pacing.sent += len(data)
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
        return _truncate(request, out, exc)
    if ticket.parts is not None:
        _keep(pipe, ticket, b"".join(ticket.parts), rewrite, decoder)
    return _decided(pipe, request, out, rewrite, ticket.status)


def _cache_status(headers: CIMultiDict[str], status: str) -> None:
    """X-Consent-Actions says what the rewrite cache did (QA sees a hit as such)."""
    actions = headers.get("X-Consent-Actions")
    if actions is not None:
        headers["X-Consent-Actions"] = f"{actions}; cache={status}"


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
    headers: CIMultiDict[str],
    rewrite: BodyRewrite,
    stored: Stored,
    pacing: Pacing,
) -> web.StreamResponse:
    """A page rewritten before, from the cache: its headers made for this visitor."""
    rewrite.fix_headers(headers)
    if "X-Consent-Actions" in headers and stored.actions is not None:
        headers["X-Consent-Actions"] = stored.actions
    _cache_status(headers, "hit")
    out = _response(upstream.status, upstream.reason, headers)
    out.content_length = len(stored.body)
    await out.prepare(request)
    pacing.sent += len(stored.body)
    await out.write(stored.body)
    with contextlib.suppress(ConnectionResetError):
        await out.write_eof()
    return _decided(pipe, request, out, rewrite, "hit", stored.decision)


async def _drain(upstream: aiohttp.ClientResponse, pacing: Pacing) -> None:
    """Read the rest of a body that is not needed, so its connection can carry the
    next request; one longer than ``_DRAIN`` is left (its connection is closed)."""
    left = _DRAIN
    with contextlib.suppress(aiohttp.ClientError, TimeoutError):
        while left > 0 and (chunk := await pacing.read()):
            left -= len(chunk)


def _untouched(pipe: Pipeline, request: web.Request, out: web.StreamResponse, fields: str) -> None:
    """The decision-log line of a page that passed untouched (most pages)."""
    pipe.decisions.untouched(request.method, request.raw_path, out.status, fields)


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
            decision = dataclasses.replace(
                decision,
                actions=stored.actions,
                bytes_in=stored.bytes_in,
                bytes_out=stored.bytes_out,
                seconds=0.0,
                complete=True,
            )
        if cache is not None:
            decision = dataclasses.replace(decision, cache=cache)
        pipe.decisions.page(request.method, request.raw_path, out.status, decision)
    return out
