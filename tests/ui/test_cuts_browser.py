"""Scripts cut and stand-ins put in by the proxy, in Debian's Chromium.

- The absorbing stand-in (proxy/ui/assets/absorbing.js), inline under a strict policy
  that allows it by its hash alone, takes every call and property chain page code
  makes of the names it is given; it sends nothing, stores nothing, makes no element.
- Through the real proxy (built-in rules and catalogue), a refusing visitor's page
  whose bootstrap script defines the site's functions and loads ga.js keeps those
  functions (the script is cut), and a page whose Krux loader the catalogue removes
  gets the stand-in, which the page's later calls use; under a nonce-only policy, and
  with no request to the trackers.
- Every script of the corpus pages that the proxy cuts still compiles, as its
  original did (a script a browser would not run is never cut, see jsparts.py).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from playwright.async_api import Browser

from proxy.consent import cuts
from proxy.consent.enforce import page_for
from proxy.consent.model import ConsentPolicy, parse_consent_arg
from proxy.consent.plans import compile_plan
from proxy.ui import surrogates
from proxy.ui.furniture import PageFurniture
from proxy.ui.templates import Templates
from tests.support.browsing import FIRST_PARTY, REFUSED
from tests.support.corpus import page as corpus_page
from tests.support.corpus import pages
from tests.ui.test_browser import RULES, MakeProxy, chromium
from tests.ui.test_surrogates import Visit, watch

NONCE = "n0nc3"
HEAD = f"""<!doctype html><html><head><meta charset="utf-8"><link rel="icon" href="data:,">
<title>Cuts</title>
<script nonce="{NONCE}">window.results = []; window.log = (...a) => results.push(a.join(" "));</script>
"""
# The page's own code after the stand-in: what sites do with a vendor's queue function.
KRUX_CALLS = f"""<script nonce="{NONCE}">
Krux("set", "section", "news");
Krux("scrape", {{ page_attr_cg: {{ meta_name: "CG" }} }});
const kuid = Krux("get", "user");
log("user as text '" + kuid + "', as a number " + (+kuid));
log("store " + typeof Krux("require:store").get("kuid"));
log("chain " + typeof Krux.ns._default.kxjsonp_userdata);
(function (require) {{ const config = require("config")(); log("config " + typeof config.get("x")); }})(Krux.require);
Krux.q = [1]; delete Krux.q; log("new " + typeof new Krux.Thing(1));
log("iterates " + [...Krux("segments")].length + ", json " + JSON.stringify({{ k: Krux() }}));
Promise.resolve(Krux("ready")).then(v => log("promise " + typeof v));
(async () => log("awaited " + typeof (await Krux("later"))))();
</script>"""
KRUX_LOADER = f"""<script nonce="{NONCE}" class="kxct" data-id="HrUwtkcl">
window.Krux || ((Krux = function() {{ Krux.q.push(arguments) }}).q = []);
(function() {{
  var k = document.createElement('script'); k.async = true;
  k.src = 'https://cdn.krxd.net/controltag/HrUwtkcl.js';
  var s = document.getElementsByTagName('script')[0]; s.parentNode.insertBefore(k, s);
}})();
</script>"""
KRUX_LOGGED = [
    "awaited function",
    "chain function",
    "config function",
    "iterates 0, json {}",
    "new function",
    "promise function",
    "store function",
    "user as text '', as a number 0",
]
MEDIUM = f"""<script nonce="{NONCE}">
var OB_startTime = new Date().getTime(); function _asyncScript(u) {{var d = document,
f = d.getElementsByTagName("script")[0], s = d.createElement("script"); s.src = u;
f.parentNode.insertBefore(s, f);}}function _asyncStyles(u) {{var d = document,
f = d.getElementsByTagName("script")[0], s = d.createElement("link"); s.rel = "stylesheet";
s.href = u; f.parentNode.insertBefore(s, f); return s}}var _gaq = _gaq || [];
_gaq.push(["_setAccount", "UA-24232453-2"]); _gaq.push(["_trackPageview"]);
_asyncScript(("https:" == document.location.protocol ? "https://ssl" : "http://www") +
".google-analytics.com/ga.js");(new Image()).src = "/stat?event=pixel.load";
</script>
<script nonce="{NONCE}">
log("styles " + _asyncStyles("/main.css").href.endsWith("/main.css"));
_gaq.push(["_trackEvent", "a", "b"]); log("started " + (typeof OB_startTime));
</script>"""
POLICY = f"default-src 'self'; script-src 'nonce-{NONCE}'; img-src 'self' data:"
PAGES = {
    "/krux": HEAD + f"</head><body>{KRUX_LOADER}<p>News</p>{KRUX_CALLS}</body></html>",
    "/medium": HEAD + f"</head><body>{MEDIUM}<p>Story</p></body></html>",
}


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with chromium() as browser:
        yield browser


async def open_page(browser: Browser, base: str, path: str, cookie: str | None = None) -> Visit:
    """``base + path`` for a fresh visitor (with the consent ``cookie``), watched as the
    surrogate tests watch pages: every request outside ``base`` is answered here."""
    context = await browser.new_context()
    if cookie is not None:
        await context.add_cookies([{"name": "consent", "value": cookie, "url": base}])
    page = await context.new_page()
    return await watch(Visit(page, context, ()), base, path)


async def test_the_stand_in_absorbs_every_call_under_a_strict_policy(
    browser: Browser, aiohttp_server: Callable[..., Awaitable[TestServer]]
) -> None:
    stand_in = surrogates.absorbing()
    body = (
        HEAD
        + f'<script nonce="{NONCE}">window.ownThing = {{ keep: {{}} }};</script>'
        + f'<script data-names="Krux ownThing not-a-name">{stand_in.text}</script>'
        + f"</head><body>{KRUX_CALLS}"
        + f'<script nonce="{NONCE}">log("own kept " + typeof ownThing.keep);</script></body></html>'
    )

    async def handler(request: web.Request) -> web.Response:
        policy = (
            f"default-src 'none'; img-src data:; script-src 'nonce-{NONCE}' {stand_in.csp_source}"
        )
        headers = {"Content-Security-Policy": policy}
        return web.Response(text=body, content_type="text/html", headers=headers)

    app = web.Application()
    app.router.add_get("/", handler)
    origin = await aiohttp_server(app)
    v = await open_page(browser, str(origin.make_url("")).rstrip("/"), "/")
    logged = sorted([*KRUX_LOGGED, "own kept object"])  # a name the page defined stays
    assert await v.results(len(logged)) == logged
    assert await v.page.evaluate("typeof window['not-a-name']") == "undefined"
    await v.assert_clean()
    await v.context.close()


@pytest.fixture
async def proxy(
    aiohttp_server: Callable[..., Awaitable[TestServer]], make_proxy: MakeProxy
) -> TestServer:
    async def page(request: web.Request) -> web.Response:
        if request.path not in PAGES:
            return web.Response(status=204)  # the site's own files: empty
        headers = {"Content-Security-Policy": POLICY}
        return web.Response(text=PAGES[request.path], content_type="text/html", headers=headers)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", page)
    origin = await aiohttp_server(app)
    return await make_proxy(str(origin.make_url("/")), rewrite=None, ruleset=RULES)


async def test_a_cut_bootstrap_keeps_the_site_functions_for_a_refusing_visitor(
    browser: Browser, proxy: TestServer
) -> None:
    base = str(proxy.make_url("")).rstrip("/")
    v = await open_page(browser, base, "/medium", REFUSED)
    assert await v.results(2) == ["started number", "styles true"]
    assert v.page_errors == [] and v.console_errors == [], (v.page_errors, v.console_errors)
    # The site's own requests (its pixel, its style sheet); none to the tracker.
    assert sorted(u.removeprefix(base) for u in v.requests) == [
        "/main.css",
        "/medium",
        "/stat?event=pixel.load",
    ]
    placed = await v.page.eval_on_selector_all(
        "script[data-consent-surrogate]", "els => els.map(e => e.dataset.consentSurrogate)"
    )
    assert placed == ["ga"]
    await v.context.close()


async def test_a_removed_queue_loader_gets_the_stand_in_that_later_calls_use(
    browser: Browser, proxy: TestServer
) -> None:
    base = str(proxy.make_url("")).rstrip("/")
    v = await open_page(browser, base, "/krux", REFUSED)
    assert await v.results(len(KRUX_LOGGED)) == KRUX_LOGGED
    names = await v.page.eval_on_selector_all(
        "script[data-consent-surrogate=absorb]", "els => els.map(e => e.dataset.names)"
    )
    assert names == ["Krux"]
    assert v.requests == [base + "/krux"]  # nothing of krxd.net
    assert v.page_errors == [] and v.console_errors == [], (v.page_errors, v.console_errors)
    assert v.writes == []
    assert [(c["name"], c["value"]) for c in await v.context.cookies()] == [("consent", REFUSED)]
    await v.context.close()


async def test_every_cut_corpus_script_still_compiles(
    browser: Browser, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The proxy's page rewrite over the corpus pages with trackers (a refusing
    visitor): each script it cuts compiled before, and compiles after."""
    corpus_page("keep-images.html")  # skips without the full corpus
    seen: list[tuple[str, str, str]] = []
    real = cuts.cut
    name = ""

    def watched(text: str, blocked: Callable[[str], bool]) -> cuts.Cut | None:
        done = real(text, blocked)
        if done is not None:
            seen.append((name, text, done.text))
        return done

    monkeypatch.setattr(cuts, "cut", watched)  # the real cut, watched
    cuts._CUTS.clear()  # cuts remembered from other tests in this process are cut here
    furniture = PageFurniture(Templates(), banner=False)
    consent = parse_consent_arg("none", ConsentPolicy())
    plan = compile_plan(RULES, consent, surrogates=furniture.surrogates)
    for path in pages("with-trackers"):
        name = path.name
        own = tuple(sorted(FIRST_PARTY.get(name, ())))
        page = page_for(plan, consent, "/", furniture, first_party=own)
        page.feed(path.read_bytes())
        page.close()
    assert "keep-images.html" in {n for n, _, _ in seen}
    assert len(seen) >= 20, len(seen)
    context = await browser.new_context(java_script_enabled=True)
    tab = await context.new_page()
    compiles = await tab.evaluate(
        """pairs => pairs.map(([n, a, b]) => {
          const ok = s => { try { new Function(s); return true; } catch (e) { return false; } };
          return [n, ok(a), ok(b)];
        })""",
        json.loads(json.dumps(seen)),
    )
    assert [c for c in compiles if c[1:] != [True, True]] == []
    await context.close()


def test_the_stand_in_is_in_the_wheel_glob() -> None:
    """pyproject's package data takes ``assets/*``: the stand-in is there."""
    text = Path(__file__).resolve().parents[2].joinpath("pyproject.toml").read_text()
    assert '"proxy.ui" = ["assets/*"' in text
    assert surrogates.absorbing().text.startswith("/* consent-proxy stand-in")
