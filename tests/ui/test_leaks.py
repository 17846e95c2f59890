"""No leaks, measured in Debian's Chromium over the corpus pages with trackers.

Each page is loaded by three fresh visitors, each in a browser context of its own:
straight from the origin, and through the real proxy (built-in rules and catalogue) by
a visitor who refused everything and by one who accepted everything. Every request
that leaves the page's own site is recorded and answered with an empty 204 (so what
a tracker would load next is not loaded: the requests are those the page itself makes).

- the refusing visitor contacts no catalogued host (tests/support/judge.py's list,
  read from the catalogue's data, not from the proxy's code) besides the pages' own
  hosts listed in FIRST_PARTY;
- the accepting visitor makes the same third-party requests as the direct load, and
  gets the page byte for byte as the origin sent it, but for Consent Mode's default
  (first in the head while Google's tags run: see README);
- the html5lib judge finds no element in the refused visitor's page that would load
  a catalogued host, or run a script naming one.

The full corpus (../shared/corpus) is used when it is beside the checkout, else the
part vendored in tests/data/corpus. One Chromium for the module; the counts go to
test-output/leaks.txt.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import html5lib
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from aiohttp.web_runner import BaseRunner
from playwright.async_api import Browser, Error, Route

from proxy.app import create_app
from proxy.consent.model import OPTIONAL
from proxy.consent.rules import RuleSet
from proxy.server import ProxyRunner, server_options
from proxy.settings import Settings
from tests.consent.test_catalogue_forms import INFRASTRUCTURE, NARROWED
from tests.consent.test_enforce import GOOGLE_DEFAULT
from tests.support.corpus import CORPUS, FULL, pages
from tests.support.judge import Found, catalogued, judge
from tests.ui.test_browser import OUT, RULES, chromium

# Loading every page three times takes its time on a busy machine: the module's one
# browsing run is set up by the first test, which gets this much (the rest are quick).
pytestmark = pytest.mark.timeout(1800)
REFUSED = "v=1&" + "&".join(f"{c}=0" for c in OPTIONAL)
ACCEPTED = "v=1&" + "&".join(f"{c}=1" for c in OPTIONAL)
VISITORS = {"direct": None, "refused": REFUSED, "accepted": ACCEPTED}
QUIET_MS = 250  # after "load", a page is done when it has made no request for this long
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
# Pages saved from a site the catalogue lists (its own publisher's hosts): requests
# to these are the page's first party, not a tracker on it.
FIRST_PARTY: dict[str, frozenset[str]] = {
    "buzzfeed-1.html": frozenset({"buzzfeed.com"}),  # BuzzFeed's own ad entity
    "guardian-1.html": frozenset({"theguardian.com"}),
    "spiceworks.html": frozenset({"spiceworks.com"}),
}
TRACKER = "cdn.taboola.com"  # a host only the catalogue knows (no hand-written rule)
# The element forms Chromium contacts a host for, in a few hostile ways of writing the
# URL; a page of them is loaded with the corpus pages. (<base> and a refresh <meta>
# are left to the rewriter's tests: they would send the direct load elsewhere.)
WAYS = (
    "https://{h}/{n}",
    "//{H}/{n}",
    "https:\\\\{h}\\{n}",
    "https:{h}/{n}",
    "https://{a}&#9;{b}/{n}",
    "https://{a}&Tab;{b}/{n}",
    "&#x2F;/{h}/{n}",
)
FORM_PAGE_FORMS = (
    "<img src='{u}' alt=''>",
    "<img src='/own.png' srcset='/own2.png 2x, {u} 3x' alt=''>",
    "<img srcset='{u}' alt=''>",
    "<picture><source srcset='{u}'><img src='/own.png' alt=''></picture>",
    "<svg><image href='{u}'/></svg>",
    "<svg><image xlink:href='{u}'/></svg>",
    "<svg><script href='{u}'></script></svg>",
    "<input type=image src='{u}' alt=''>",
    "<link rel=stylesheet href='{u}'>",
    "<link rel=preload as=image href='{u}'>",
    "<link rel=icon href='{u}'>",
    "<video poster='{u}'></video>",
    "<video src='{u}'></video>",
    "<audio src='{u}'></audio>",
    "<embed src='{u}'>",
    "<object data='{u}'></object>",
    "<iframe src='{u}'></iframe>",
    '<iframe srcdoc="<img src=&quot;{u}&quot;>"></iframe>',
    "<script src='{u}'></script>",
    "<div style='width:9px;height:9px;background:url({u})'></div>",
    "<style>.{n}{{width:9px;height:9px;background:url({u})}}</style><div class={n}></div>",
    "<table background='{u}'><tr><td>x</td></tr></table>",
    "<script>var i = new Image(); i.src = '{u}';</script>",
)


def forms_page() -> bytes:
    """Every form above in every way, each URL with a path of its own."""
    half = len(TRACKER) // 2
    parts = ["<!doctype html><html><head><title>Forms</title></head><body><h1>Forms</h1>"]
    for i, form in enumerate(FORM_PAGE_FORMS):
        for j, way in enumerate(WAYS):
            url = way.format(
                h=TRACKER, H=TRACKER.upper(), a=TRACKER[:half], b=TRACKER[half:], n=f"f{i}w{j}"
            )
            parts.append(form.format(u=url, n=f"f{i}w{j}"))
    return ("".join(parts) + "</body></html>").encode()


def infrastructure_page() -> bytes:
    """Infrastructure on the domains the catalogue narrows, and their trackers."""
    body = "".join(INFRASTRUCTURE) + "".join(NARROWED)
    return (
        f"<!doctype html><html><head><title>CDNs</title></head><body>{body}</body></html>".encode()
    )


SYNTHETIC = {"forms.html": forms_page, "infrastructure.html": infrastructure_page}


@dataclass
class Load:
    """What one visitor's load of one page did."""

    external: list[str] = field(default_factory=list)  # requests outside the site, in order
    body: bytes | None = None  # the document as the browser received it
    consent: str = ""  # the proxy's X-Consent header (what it read of the visitor)
    failed: str = ""  # why the page did not finish loading ("load" never came)


@dataclass
class Run:
    """Every page's loads, by page name and visitor, and the time they took."""

    loads: dict[str, dict[str, Load]]
    seconds: float
    origin: dict[str, bytes]


class _ProxyServer(TestServer):
    """The proxy run as ``consent-proxy serve`` runs it (as tests/conftest.py does)."""

    async def _make_runner(self, **kwargs: object) -> BaseRunner:
        return ProxyRunner(self.app, **kwargs)  # type: ignore[arg-type]


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

    await context.route("**/*", route)
    page = await context.new_page()
    try:
        # The document first (its bytes are judged even if a late part of the page
        # keeps "load" from coming on a starved machine), then the page's load.
        response = await page.goto(base + path, wait_until="commit", timeout=LOAD_TIMEOUT_MS)
        if response is not None:
            load.body = await response.body()
            load.consent = response.headers.get("x-consent", "")
        await page.wait_for_load_state("load", timeout=LOAD_TIMEOUT_MS)
        waited, seen = 0, -1
        while seen != made[0] and waited < MAX_SETTLE_MS:  # until the page is quiet
            seen = made[0]
            await page.wait_for_timeout(QUIET_MS)
            waited += QUIET_MS
    except Error as exc:
        load.failed = str(exc).splitlines()[0]
    finally:
        await context.close()
    return load


@contextlib.asynccontextmanager
async def _servers(
    bodies: dict[str, bytes], ruleset: RuleSet, logs: Path
) -> AsyncIterator[tuple[str, str]]:
    """The origin (the pages at /corpus/NAME, anything else an empty 204) and the proxy
    in front of it: their base URLs."""

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


async def browse(names: list[str], ruleset: RuleSet, logs: Path) -> Run:
    """Load every page as each visitor, ``PARALLEL`` pages at a time, in one Chromium."""
    folder = CORPUS / "pages" / "with-trackers"
    bodies = {
        name: SYNTHETIC[name]() if name in SYNTHETIC else (folder / name).read_bytes()
        for name in names
    }
    loads: dict[str, dict[str, Load]] = {}
    start = time.monotonic()
    async with _servers(bodies, ruleset, logs) as (direct, proxied), chromium() as browser:
        slots = asyncio.Semaphore(PARALLEL)

        async def one(name: str) -> None:
            async with slots:
                loads[name] = {}
                for visitor, cookie in VISITORS.items():
                    base = direct if cookie is None else proxied
                    loads[name][visitor] = await _visit(browser, base, f"/corpus/{name}", cookie)

        await asyncio.gather(*(one(n) for n in names))
    return Run(dict(sorted(loads.items())), time.monotonic() - start, bodies)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    names = [p.name for p in pages("with-trackers")] + list(SYNTHETIC)
    logs = tmp_path_factory.mktemp("leaks")
    result = asyncio.run(browse(names, RULES, logs))
    OUT.mkdir(exist_ok=True)
    (OUT / "leaks.txt").write_text(report(result) + "\n", encoding="utf-8")
    return result


def host(url: str) -> str:
    return (urlsplit(url).hostname or "").lower()


def listed(url: str) -> bool:
    """Whether a request's URL is to a catalogued host (or path on a shared host)."""
    parts = urlsplit(url)
    return catalogued((parts.hostname or "").lower(), parts.path or "/")


def leaked(name: str, load: Load) -> list[str]:
    """The requests of a load to catalogued hosts that are not the page's own."""
    own = FIRST_PARTY.get(name, frozenset())
    return [
        u
        for u in load.external
        if listed(u) and not any(host(u) == h or host(u).endswith("." + h) for h in own)
    ]


def judged(name: str, load: Load) -> list[Found]:
    """The judge's findings in a load's document, but for the page's own hosts."""
    own = FIRST_PARTY.get(name, frozenset())
    found = judge(load.body) if load.body is not None else []
    return [f for f in found if not any(f.host == h or f.host.endswith("." + h) for h in own)]


def report(run: Run) -> str:
    lines = [
        f"{len(run.loads)} pages ({'full' if FULL else 'vendored'} corpus), "
        f"{run.seconds:.1f} s in Chromium",
        f"{'page':34}{'direct':>8}{'refused':>9}{'accepted':>10}  (requests to catalogued hosts)",
    ]
    totals = dict.fromkeys(VISITORS, 0)
    for name, by_visitor in run.loads.items():
        counts = {v: len(leaked(name, load)) for v, load in by_visitor.items()}
        for v, n in counts.items():
            totals[v] += n
        unfinished = [v for v, load in by_visitor.items() if load.failed]
        lines.append(
            f"{name:34}{counts['direct']:>8}{counts['refused']:>9}{counts['accepted']:>10}"
            + (f"  (no load event: {', '.join(unfinished)})" if unfinished else "")
        )
    lines.append(f"{'total':34}{totals['direct']:>8}{totals['refused']:>9}{totals['accepted']:>10}")
    return "\n".join(lines)


def _every(run: Run, visitor: str) -> Iterator[tuple[str, Load]]:
    for name, by_visitor in run.loads.items():
        yield name, by_visitor[visitor]


def test_every_visitor_gets_every_page(run: Run) -> None:
    """Each document arrives; a page whose "load" never came (a starved machine) is
    still judged on its document and the requests it made, and left out of the
    comparison of requests below, but most pages must load for it to mean something."""
    missing = [(n, v) for n, by in run.loads.items() for v, load in by.items() if not load.body]
    assert not missing, missing
    unfinished = [n for n, by in run.loads.items() if any(load.failed for load in by.values())]
    assert len(unfinished) <= len(run.loads) // 5, {
        n: {v: load.failed for v, load in run.loads[n].items()} for n in unfinished
    }


def test_a_refusing_visitor_contacts_no_catalogued_host(run: Run) -> None:
    leaks = {name: leaked(name, load) for name, load in _every(run, "refused")}
    leaks = {name: urls for name, urls in leaks.items() if urls}
    total = sum(len(u) for u in leaks.values())
    assert not leaks, f"{total} requests to catalogued hosts over {len(run.loads)} pages: {leaks}"


def test_the_judge_finds_nothing_in_a_refusing_visitor_s_page(run: Run) -> None:
    found = {name: judged(name, load) for name, load in _every(run, "refused")}
    found = {name: f for name, f in found.items() if f}
    assert not found, found


def icons(page: bytes) -> set[str]:
    """The paths of the icons a page declares, and /favicon.ico: the browser fetches
    them by itself when it gets to it (after "load", or not at all), so they are not
    among the requests the page makes."""
    root = html5lib.HTMLParser(namespaceHTMLElements=False).parse(page, transport_encoding="utf-8")
    found = {"/favicon.ico"}
    for link in root.iter("link"):
        if any("icon" in rel for rel in link.get("rel", "").lower().split()):
            found.add(urlsplit(link.get("href", "").strip()).path)
    return found


_PORT = re.compile(r"127\.0\.0\.1(?::|%3A)\d+", re.I)


def test_an_accepting_visitor_makes_the_direct_load_s_requests(run: Run) -> None:
    differ = {}
    for name, by_visitor in run.loads.items():
        if by_visitor["direct"].failed or by_visitor["accepted"].failed:
            continue  # requests still coming when the load was given up: not comparable
        own = icons(run.origin[name])
        # A page that puts its own address in a beacon's query names the origin's port
        # when loaded directly and the proxy's through it: the same request.
        direct, accepted = (
            [
                _PORT.sub("127.0.0.1:PORT", u)
                for u in by_visitor[v].external
                if urlsplit(u).path not in own
            ]
            for v in ("direct", "accepted")
        )
        # The same URLs; how often one is asked for again (a retry, a second
        # element with it) depends on timing.
        if set(direct) != set(accepted):
            differ[name] = {
                "direct only": sorted(set(direct) - set(accepted)),
                "accepted only": sorted(set(accepted) - set(direct)),
            }
    assert not differ, differ


def test_an_accepting_visitor_gets_the_origin_s_bytes(run: Run) -> None:
    changed = []
    for name, load in _every(run, "accepted"):
        body = GOOGLE_DEFAULT.sub(b"", load.body or b"", count=1)
        # Chromium's Response.body() leaves out a UTF-8 byte-order mark (the proxy
        # sends it: test_enforce compares the bytes of la-nacion.html, which has one).
        if body not in (run.origin[name], run.origin[name].removeprefix(b"\xef\xbb\xbf")):
            changed.append(name)
    assert not changed, changed


def test_the_judge_sees_the_trackers_of_the_pages_as_they_came(run: Run) -> None:
    """The judge is not blind: the pages as the origin sent them hold what it looks for."""
    seen = [name for name, body in run.origin.items() if judge(body)]
    assert len(seen) >= len(run.origin) * 2 // 3, seen


def test_chromium_contacts_the_tracker_in_every_form_on_the_direct_load(run: Run) -> None:
    """The forms page means something: loaded directly, Chromium contacts the tracker
    in most forms and ways (the refusing visitor's load above contacts it in none)."""
    direct = run.loads["forms.html"]["direct"].external
    contacted = {u.rsplit("/", 1)[-1].split("?")[0] for u in direct if host(u) == TRACKER}
    assert len(contacted) >= len(FORM_PAGE_FORMS) * len(WAYS) // 2, sorted(contacted)


def test_infrastructure_on_narrowed_domains_loads_for_a_refusing_visitor(run: Run) -> None:
    loads = run.loads["infrastructure.html"]
    direct = {u for u in loads["direct"].external if not listed(u)}
    refused = set(loads["refused"].external)
    assert direct, "the infrastructure page made no request"
    assert direct <= refused, sorted(direct - refused)
