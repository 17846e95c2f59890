"""``create_app(settings)``: the one place that wires the proxy together.

What each part does lives in its layer: the request pipeline and the two body paths
in proxy/http (pipeline.py, passthrough.py, rewrite_body.py), what a page gets under
a visitor's consent in proxy/consent, the banner and the /_consent endpoints in
proxy/ui, logs and metrics in proxy/observe. This module only builds them from the
settings and hands each what it needs.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import AsyncIterator, Callable

from aiohttp import web

from proxy import selftest
from proxy.consent.enforcer import Enforcer
from proxy.consent.inventory import InventoryBook
from proxy.consent.model import ConsentReader
from proxy.consent.reload import RulesState, Verify, watch
from proxy.consent.rules import RuleSet
from proxy.http import pool, websocket
from proxy.http.cache import RewriteCache
from proxy.http.consent_hook import consent_hook
from proxy.http.forwarded import same_origin_post
from proxy.http.hook import RewriteFactory
from proxy.http.pipeline import Pipeline, expect_continue, handle
from proxy.http.pipeline import unroutable as unroutable  # server.py refuses with it
from proxy.http.upstream import addressed, visitor
from proxy.observe.decisions import DecisionLog
from proxy.observe.logs import AccessLogger, JsonLines, access_logger, open_log
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
    pipeline = app[PIPELINE] = Pipeline(
        settings, factory, app[DECISIONS], cache, endpoints.OWN_PATHS
    )
    forward = functools.partial(handle, pipeline)
    expect = functools.partial(expect_continue, settings.max_body)
    # (?s): the decoded path may hold a line break (%0A), and every path is forwarded.
    app.router.add_route("*", "/{tail:(?s:.*)}", forward, expect_handler=expect)
    return app


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
