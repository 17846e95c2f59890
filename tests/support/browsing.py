"""One browsing run over the corpus pages with trackers, shared by the leak and the
breakage tests (tests/ui/test_leaks.py, tests/ui/test_breakage.py).

Each page is loaded by three fresh visitors, each in a browser context of its own:
straight from the origin, and through the real proxy (built-in rules and catalogue) by
a visitor who refused everything and by one who accepted everything. Every request
that leaves the page's own site is recorded and answered with an empty 204 (so what a
tracker would load next is not loaded: the requests are those the page itself makes),
and every uncaught exception and console error of the page is kept. The direct load is
then the page with every third party unreachable: what a refusing visitor's page can at
best be, and the yardstick for breakage.

Loading the corpus is most of what these tests cost (about a second a page on an idle
machine, several on a busy one), so it is done once per session (tests/ui/conftest.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web
from aiohttp.test_utils import TestServer
from aiohttp.web_runner import BaseRunner
from playwright.async_api import Browser, ConsoleMessage, Error, Route

from proxy.app import create_app
from proxy.consent.model import OPTIONAL
from proxy.consent.rules import RuleSet
from proxy.server import ProxyRunner, server_options
from proxy.settings import Settings
from tests.support.corpus import CORPUS

REFUSED = "v=1&" + "&".join(f"{c}=0" for c in OPTIONAL)
ACCEPTED = "v=1&" + "&".join(f"{c}=1" for c in OPTIONAL)
VISITORS = {"direct": None, "refused": REFUSED, "accepted": ACCEPTED}
QUIET_MS = 500  # after "load", a page is done when it has made no request for this long
MIN_SETTLE_MS = 500  # ... and no sooner: timers and late handlers of its own scripts
MAX_SETTLE_MS = 3000
LOAD_TIMEOUT_MS = 60_000  # a busy machine; an idle one loads each page in about a second
PARALLEL = 4  # pages in flight at once (tabs of the one browser)
# The same Math.random() and clock in every load: a page's cache-busting numbers and
# timestamps then give the same URLs to the direct and the accepting visitor.
SAME_RANDOM = (
    "(() => { let seed = 42; Math.random = () => "
    "(seed = (seed * 16807) % 2147483647) / 2147483647; })();"
)
FIXED_TIME = 1_700_000_000_000  # ms since the epoch
# Pages saved from a site the catalogue lists (its own publisher's hosts): requests to
# these are the page's first party, not a tracker on it. The proxy is told so, as the
# site's operator would (on the real site the request's Host does it): the pages are
# served from loopback, not from their sites.
FIRST_PARTY: dict[str, frozenset[str]] = {
    # BuzzFeed's own ad entity, and its static hosts (the proxy, told buzzfeed.com is
    # first-party, lets the rest of BuzzFeed's entity through too).
    "buzzfeed-1.html": frozenset({"buzzfeed.com", "buzzfed.com"}),
    "guardian-1.html": frozenset({"theguardian.com"}),
    "spiceworks.html": frozenset({"spiceworks.com"}),
}


@dataclass
class Load:
    """What one visitor's load of one page did."""

    external: list[str] = field(default_factory=list)  # requests outside the site, in order
    body: bytes | None = None  # the document as the browser received it
    consent: str = ""  # the proxy's X-Consent header (what it read of the visitor)
    failed: str = ""  # why the page did not finish loading ("load" never came)
    settled: bool = False  # it went quiet before MAX_SETTLE_MS (else requests may follow)
    page_errors: list[str] = field(default_factory=list)  # uncaught exceptions
    console_errors: list[str] = field(default_factory=list)  # console.error, failed loads

    def errors(self) -> Counter[str]:
        """Every error the page reported, without the address it was loaded from."""
        return Counter([*(f"page error: {e}" for e in self.page_errors), *self.console_errors])


@dataclass
class Run:
    """Every page's loads, by page name and visitor, and the time they took."""

    loads: dict[str, dict[str, Load]]
    seconds: float
    origin: dict[str, bytes]
    # Pages whose direct and accepting loads made different requests, loaded once more
    # by those two (a page's timers fire or not within the settling time: a difference
    # that does not come again is timing, not the proxy).
    again: dict[str, dict[str, Load]] = field(default_factory=dict)


class _ProxyServer(TestServer):
    """The proxy run as ``consent-proxy serve`` runs it (as tests/conftest.py does)."""

    async def _make_runner(self, **kwargs: object) -> BaseRunner:
        return ProxyRunner(self.app, **kwargs)  # type: ignore[arg-type]


def _general(text: str, base: str) -> str:
    """A message without the address it was loaded from (origin and proxy differ)."""
    return re.sub(r"\s+", " ", text.replace(base, "")).strip()[:300]


async def _visit(browser: Browser, base: str, path: str, cookie: str | None) -> Load:
    context = await browser.new_context()
    await context.add_init_script(SAME_RANDOM)
    await context.clock.set_fixed_time(FIXED_TIME)
    if cookie is not None:
        await context.add_cookies([{"name": "consent", "value": cookie, "url": base}])
    load = Load()
    made = [0]  # requests so far, the page's own included

    async def route(route: Route) -> None:
        made[0] += 1
        url = route.request.url
        if url.startswith(base + "/"):
            await route.continue_()
        else:
            load.external.append(url)
            await route.fulfill(status=204, body="")

    def console(message: ConsoleMessage) -> None:
        if message.type == "error":
            load.console_errors.append(_general(message.text, base))

    await context.route("**/*", route)
    page = await context.new_page()
    page.on(
        "pageerror", lambda e: load.page_errors.append(_general(f"{e.name}: {e.message}", base))
    )
    page.on("console", console)
    try:
        # The document first (its bytes are judged even if a late part of the page
        # keeps "load" from coming on a starved machine), then the page's load.
        response = await page.goto(base + path, wait_until="commit", timeout=LOAD_TIMEOUT_MS)
        if response is not None:
            load.body = await response.body()
            load.consent = response.headers.get("x-consent", "")
        await page.wait_for_load_state("load", timeout=LOAD_TIMEOUT_MS)
        await page.wait_for_timeout(MIN_SETTLE_MS)
        waited, seen = MIN_SETTLE_MS, -1
        while seen != made[0] and waited < MAX_SETTLE_MS:  # until the page is quiet
            seen = made[0]
            await page.wait_for_timeout(QUIET_MS)
            waited += QUIET_MS
        load.settled = seen == made[0]
    except Error as exc:
        load.failed = str(exc).splitlines()[0]
    finally:
        await context.close()
    return load


@contextlib.asynccontextmanager
async def _servers(
    bodies: dict[str, bytes], ruleset: RuleSet, logs: Path
) -> AsyncIterator[tuple[str, str]]:
    """The origin (the pages at /corpus/NAME, anything else an empty 204: a 404 would be
    a console error, logged or not depending on when a late request goes out) and the
    proxy in front of it: their base URLs."""

    async def serve(request: web.Request) -> web.Response:
        body = bodies.get(request.path.removeprefix("/corpus/"))
        if body is None:
            return web.Response(status=204)
        return web.Response(body=body, content_type="text/html")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", serve)
    origin = TestServer(app, host="127.0.0.1")
    await origin.start_server()
    settings = Settings(
        upstream=str(origin.make_url("/")),
        access_log=str(logs / "access.log"),
        decision_log=str(logs / "decisions.log"),
        log_flush=0.0,
        first_party=tuple(sorted(set().union(*FIRST_PARTY.values()))),
    )
    proxy_app = create_app(settings, rules=ruleset, rewrite=None)
    options = server_options(proxy_app)
    options.pop("shutdown_timeout")
    options.pop("handler_cancellation")
    proxy = _ProxyServer(proxy_app, host="127.0.0.1")
    await proxy.start_server(**options)
    try:
        yield str(origin.make_url("")).rstrip("/"), str(proxy.make_url("")).rstrip("/")
    finally:
        await proxy.close()
        await origin.close()


async def browse(
    names: list[str],
    ruleset: RuleSet,
    logs: Path,
    browser: Callable[[], contextlib.AbstractAsyncContextManager[Browser]],
    synthetic: dict[str, Callable[[], bytes]],
) -> Run:
    """Load every page as each visitor, ``PARALLEL`` pages at a time, in one Chromium."""
    folder = CORPUS / "pages" / "with-trackers"
    bodies = {
        name: synthetic[name]() if name in synthetic else (folder / name).read_bytes()
        for name in names
    }
    loads: dict[str, dict[str, Load]] = {}
    start = time.monotonic()
    async with _servers(bodies, ruleset, logs) as (direct, proxied), browser() as chromium:
        slots = asyncio.Semaphore(PARALLEL)

        async def one(name: str) -> None:
            async with slots:
                loads[name] = {}
                for visitor, cookie in VISITORS.items():
                    base = direct if cookie is None else proxied
                    loads[name][visitor] = await _visit(chromium, base, f"/corpus/{name}", cookie)

        await asyncio.gather(*(one(n) for n in names))
        again: dict[str, dict[str, Load]] = {}
        for name, by in loads.items():
            if set(by["direct"].external) != set(by["accepted"].external):
                again[name] = {
                    visitor: await _visit(chromium, base, f"/corpus/{name}", cookie)
                    for visitor, base, cookie in (
                        ("direct", direct, None),
                        ("accepted", proxied, ACCEPTED),
                    )
                }
    return Run(dict(sorted(loads.items())), time.monotonic() - start, bodies, again)
