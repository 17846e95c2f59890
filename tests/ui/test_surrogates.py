"""Surrogate scripts in a real browser: Debian's Chromium, pages from a real local origin.

Each page uses a tracker's API the way sites do (calls queued before the surrogate,
calls after it, callbacks a form or a link waits for) and includes its surrogate twice.
Every test checks that the callbacks ran, and that the surrogate added no page error, no
console error, no request (each one is recorded; any that would leave the origin is
answered here with an empty response), no cookie, no storage write and no element.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from playwright.async_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Page,
    Route,
    async_playwright,
)

from proxy.consent import standins
from proxy.ui import surrogates
from proxy.ui.csp import sha256_source
from proxy.ui.surrogates import UnknownSurrogate

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
NAMES = ("adsbygoogle", "fbq", "fbsdk", "ga", "gpt", "gtm", "linkedin", "tcfapi", "twttr")
NONCE = "t3st"

# Runs before any page script: reports every way a script could store something or
# create an element (the pages below create none themselves).
WATCH = """(() => {
  const note = what => window.__note(what);
  const wrap = (proto, name, label) => {
    const f = proto && proto[name];
    if (typeof f == "function") proto[name] = function (...a) { note(label); return f.apply(this, a); };
  };
  const setter = (proto, prop, label) => {
    const d = Object.getOwnPropertyDescriptor(proto, prop);
    Object.defineProperty(proto, prop, { configurable: true, get() { return d.get.call(this); },
      set(v) { note(label); d.set.call(this, v); } });
  };
  setter(Document.prototype, "cookie", "document.cookie");
  for (const m of ["setItem", "removeItem", "clear"]) wrap(Storage.prototype, m, "Storage." + m);
  wrap(IDBFactory.prototype, "open", "indexedDB.open");
  wrap(window.CacheStorage && CacheStorage.prototype, "open", "caches.open");
  wrap(window.CookieStore && CookieStore.prototype, "set", "cookieStore.set");
  wrap(Navigator.prototype, "sendBeacon", "sendBeacon");
  for (const m of ["createElement", "createElementNS", "write", "writeln"]) wrap(Document.prototype, m, m);
  wrap(Element.prototype, "insertAdjacentHTML", "insertAdjacentHTML");
  setter(Element.prototype, "innerHTML", "innerHTML");
  setter(Element.prototype, "outerHTML", "outerHTML");
  for (const C of ["Image", "Audio"]) {
    const K = window[C];
    window[C] = function (...a) { note("new " + C); return new K(...a); };
  }
})();"""


def page_html(body: str) -> str:
    return f"""<!doctype html><html><head><meta charset="utf-8"><link rel="icon" href="data:,">
<title>Surrogate test</title>
<script nonce="{NONCE}">window.results = []; window.log = (...a) => results.push(a.join(" "));</script>
</head><body>{body}</body></html>"""


def twice(name: str) -> str:
    """The surrogate included twice: the second must change nothing."""
    return f'<script src="/s/{name}.js"></script><script src="/s/{name}.js"></script>'


# analytics.js under the name MonsterInsights gives it, with its snippet's queue (but no
# loader); then a checkout form that submits only in a hitCallback.
GA_PAGE = page_html(f"""
<script>
(function (i, r) {{ i.GoogleAnalyticsObject = r; i[r] = i[r] || function () {{ (i[r].q = i[r].q || []).push(arguments); }}; i[r].l = 1 * new Date(); }})(window, "__gaTracker");
__gaTracker("create", "UA-1-1", "auto");
__gaTracker("send", "pageview", {{ hitCallback: () => log("queued hitCallback") }});
__gaTracker(tracker => log("ready callback with " + tracker.get("name")));
__gaTracker("create", "UA-2-2", "auto", "second");
__gaTracker("second.set", "hitCallback", () => log("named tracker hitCallback"));
__gaTracker("second.send", "event", "video", "play");
</script>
{twice("ga")}
<script>
log("trackers " + __gaTracker.getAll().map(t => t.get("name")).join(","));
log("ga " + typeof window.ga + ", loaded " + __gaTracker.loaded);
let sending = true;
__gaTracker("send", {{ hitType: "event", eventCategory: "c", eventAction: "a", hitCallback: () => log("fields hitCallback, after send: " + !sending) }});
sending = false;
__gaTracker("require", "ec"); __gaTracker("ec:addProduct", {{ id: "p1" }}); __gaTracker("linker:autoLink", ["example.com"]);
__gaTracker.getByName("t0").send("event", "x", "y", {{ hitCallback: () => log("tracker.send hitCallback") }});
log("create returns " + __gaTracker.create("UA-3-3", "auto", "third").get("name"));
</script>
<form id="checkout" action="/done" method="post"><input name="item" value="bike"><button>Buy</button></form>
<script>
document.getElementById("checkout").addEventListener("submit", function (event) {{
  event.preventDefault();
  const form = this;
  __gaTracker("send", "event", "checkout", "submit", {{ hitCallback: () => form.submit() }});
}});
</script>""")

# ga.js (_gaq, _gat), with the proxy having removed the snippet that made _gaq.
GAQ_PAGE = page_html(f"""
<script>
var _gaq = _gaq || [];
_gaq.push(["_setAccount", "UA-1-1"], ["_set", "hitCallback", () => log("queued hitCallback")], ["_trackPageview"]);
_gaq.push(() => log("queued function, tracker " + typeof _gat._getTrackerByName()._trackEvent));
</script>
{twice("ga")}
<script>
log("push returns " + _gaq.push(["_trackEvent", "a", "b"], ["b._setAccount", "UA-2-2"], ["not a command"]));
log("linker url " + _gat._getTracker("UA-1-1")._getLinkerUrl("https://shop.example/"));
_gat._createTracker("UA-2-2", "b")._trackEvent("x", "y");
</script>
<a id="out" href="/nowhere" onclick="_gaq.push(['_link', '/done']); return false;">Cross-domain link</a>""")

# gtag.js: the page's own gtag() and data layer (queued), and a form whose gtag() was
# never defined (the proxy removed the snippet with the loader).
GTAG_PAGE = page_html(f"""
<script>
window.dataLayer = window.dataLayer || [];
function gtag() {{ dataLayer.push(arguments); }}
gtag("js", new Date());
gtag("config", "G-1");
gtag("event", "queued", {{ event_callback: () => log("queued event_callback") }});
gtag("get", "G-1", "client_id", id => log("get callback " + id));
</script>
{twice("ga")}
<script>
let pushing = true;
gtag("event", "later", {{ eventCallback: () => log("eventCallback, after push: " + !pushing) }});
pushing = false;
gtag("event", "plain", {{ value: 1 }});
log("dataLayer entries " + dataLayer.length);
</script>""")

GTAG_FORM_PAGE = page_html(f"""
{twice("ga")}
<form id="lead" action="/done" method="post"><input name="email" value="a@example.com"><button>Send</button></form>
<script>
document.getElementById("lead").addEventListener("submit", function (event) {{
  event.preventDefault();
  const form = this;
  gtag("event", "generate_lead", {{ event_callback: () => form.submit(), event_timeout: 2000 }});
}});
</script>""")

# Tag Manager with a custom data layer name (gtm.js?l=appLayer) and its container id.
GTM_PAGE = page_html("""
<script>
window.appLayer = window.appLayer || [];
appLayer.push({ "gtm.start": Date.now(), event: "gtm.js" });
appLayer.push({ event: "queued", eventCallback: id => log("queued eventCallback " + id) });
</script>
<script src="/s/gtm.js" data-layer="appLayer" data-id="GTM-TEST1"></script>
<script src="/s/gtm.js" data-layer="appLayer" data-id="GTM-TEST1"></script>
<script>
const before = appLayer.length;
log("push returns new length " + (appLayer.push({ event: "a" }, { event: "b" }) === before + 2));
appLayer.push({ event: "timed", eventTimeout: 50, eventCallback: () => log("timed eventCallback") });
log("dataLayer " + typeof window.dataLayer);
</script>
<form id="order" action="/done" method="post"><input name="sku" value="1"><button>Order</button></form>
<script>
document.getElementById("order").addEventListener("submit", function (event) {
  event.preventDefault();
  const form = this;
  appLayer.push({ event: "purchase", eventCallback: () => form.submit(), eventTimeout: 2000 });
});
</script>""")

# ga.js and gtm.js on one page share the data layer: each callback runs once.
GA_GTM_PAGE = page_html(f"""
<script>
window.dataLayer = [{{ event: "queued", eventCallback: () => log("queued") }}];
</script>
{twice("ga")}{twice("gtm")}
<script>
gtag("event", "e", {{ event_callback: () => log("gtag") }});
dataLayer.push({{ event: "x", eventCallback: () => log("push") }});
</script>""")

GPT_PAGE = page_html(f"""
<div id="div-top" style="height:90px">top</div><div id="div-side" style="height:250px">side</div>
<script>
window.googletag = window.googletag || {{ cmd: [] }};
googletag.cmd.push(function () {{
  const mapping = googletag.sizeMapping().addSize([1024, 768], [970, 250]).addSize([0, 0], [320, 50]).build();
  googletag.defineSlot("/1234/top", [[970, 250], [728, 90]], "div-top").defineSizeMapping(mapping)
    .setTargeting("pos", "top").setCollapseEmptyDiv(true).addService(googletag.pubads());
  googletag.defineSlot("/1234/side", [300, 250], "div-side").addService(googletag.pubads());
  googletag.defineOutOfPageSlot("/1234/interstitial", googletag.enums.OutOfPageFormat.INTERSTITIAL);
  googletag.pubads().enableSingleRequest().setTargeting("section", "news").setPrivacySettings({{ limitedAds: true }});
  googletag.pubads().addEventListener("slotRenderEnded", e => log("slotRenderEnded " + e.slot.getSlotElementId() + " empty " + e.isEmpty));
  googletag.enableServices();
  log("queued cmd ran");
}});
googletag.cmd.push(() => googletag.display("div-top"));
</script>
{twice("gpt")}
<script>
log("cmd.push ran now, returns " + googletag.cmd.push(() => log("pushed cmd ran"), () => googletag.display("div-side")));
log("apiReady " + googletag.apiReady + ", pubadsReady " + googletag.pubadsReady + ", slots " + googletag.pubads().getSlots().length);
log("destroySlots " + googletag.destroySlots(null));
</script>""")

ADSENSE_PAGE = page_html(f"""
<ins class="adsbygoogle" id="ad1" style="display:block" data-ad-client="ca-pub-1" data-ad-slot="1"></ins>
<script>(adsbygoogle = window.adsbygoogle || []).push({{}});</script>
<script>
(adsbygoogle = window.adsbygoogle || []).push({{ google_ad_client: "ca-pub-1", enable_page_level_ads: true }});
window.adBreak = window.adConfig = function (o) {{ adsbygoogle.push(o); }};
adConfig({{ preloadAdBreaks: "on", onReady: () => log("adConfig onReady") }});
</script>
{twice("adsbygoogle")}
<ins class="adsbygoogle" id="ad2" style="display:block" data-ad-client="ca-pub-1" data-ad-slot="2"></ins>
<script>
(adsbygoogle = window.adsbygoogle || []).push({{}});
adBreak({{ type: "next", name: "level", beforeAd: () => log("beforeAd"), adBreakDone: info => log("adBreakDone " + info.breakType + " " + info.breakStatus) }});
adsbygoogle.push(null); adsbygoogle.push(42); adsbygoogle.push({{ element: "not an element" }}); adsbygoogle.push({{}});
log("loaded " + adsbygoogle.loaded);
</script>""")

# The pixel's snippet without its loader (queue, version, _fbq) and a button that
# tracks, then navigates.
FBQ_PAGE = page_html(f"""
<script>
!function (f) {{ if (f.fbq) return; var n = f.fbq = function () {{ n.callMethod ? n.callMethod.apply(n, arguments) : n.queue.push(arguments); }};
  if (!f._fbq) f._fbq = n; n.push = n; n.loaded = !0; n.version = "2.0"; n.queue = []; }}(window);
fbq("init", "123456789");
fbq("track", "PageView");
</script>
{twice("fbq")}
<script>
fbq("trackCustom", "Custom", {{ a: 1 }});
fbq("consent", "revoke");
fbq("trackSingle", "123456789", "Lead", {{}}, {{ eventID: "e1" }});
log("queue " + fbq.queue.length + ", _fbq " + (window._fbq === fbq) + ", callMethod " + typeof fbq.callMethod);
</script>
<button id="buy" onclick="fbq('track', 'Purchase', {{value: 9.99, currency: 'EUR'}}); location.href = '/done';">Buy now</button>""")

FBQ_BARE_PAGE = page_html(f"""
{twice("fbq")}
<button id="buy" onclick="fbq('track', 'AddToCart'); location.href = '/done';">Add to cart</button>""")

FBSDK_PAGE = page_html(f"""
<script>
window.fbAsyncInit = function () {{
  FB.init({{ appId: "1", xfbml: true, version: "v19.0" }});
  FB.Event.subscribe("xfbml.render", () => log("never rendered"));
  FB.getLoginStatus(r => log("login status " + r.status));
  FB.XFBML.parse(document.body, () => log("parse callback"));
  FB.api("/me", r => log("api error " + !!r.error));
  FB.AppEvents.logPageView();
  log("fbAsyncInit");
}};
</script>
{twice("fbsdk")}""")

# The X snippet's twttr object without its loader: _e holds twttr.ready callbacks.
TWTTR_PAGE = page_html(f"""
<div id="tweet"></div>
<script>
window.twttr = (function () {{ var t = window.twttr || {{}}; t._e = []; t.ready = function (f) {{ t._e.push(f); }}; return t; }}());
twttr.ready(t => {{
  log("queued ready, same object " + (t === window.twttr));
  t.events.bind("loaded", e => log("loaded event, widgets " + e.widgets.length));
}});
</script>
{twice("twttr")}
<script>
twttr.ready(t => log("later ready"));
twttr.widgets.createTweet("20", document.getElementById("tweet"), {{ theme: "dark" }}).then(el => log("createTweet resolved " + el));
twttr.widgets.createTimeline({{ sourceType: "profile", screenName: "x" }}, document.getElementById("tweet")).then(() => log("createTimeline resolved"));
twttr.widgets.load(document.getElementById("tweet")).then(() => log("load resolved"));
</script>""")

# The Insight Tag's snippet without its loader.
LINKEDIN_PAGE = page_html(f"""
<script>
_linkedin_partner_id = "1234";
window._linkedin_data_partner_ids = window._linkedin_data_partner_ids || [];
window._linkedin_data_partner_ids.push(_linkedin_partner_id);
(function (l) {{ if (!l) {{ window.lintrk = function (a, b) {{ window.lintrk.q.push([a, b]); }}; window.lintrk.q = []; }} }})(window.lintrk);
lintrk("track", {{ conversion_id: 1 }});
</script>
{twice("linkedin")}
<script>
lintrk("track", {{ conversion_id: 2 }});
log("partner ids " + _linkedin_data_partner_ids.join(",") + ", queue taken over " + !window.lintrk.q);
</script>""")

# The same after the proxy removed the snippet: only the page's own code is left.
LINKEDIN_BARE_PAGE = page_html(f"""
{twice("linkedin")}
<script>log("partner ids " + JSON.stringify(window._linkedin_data_partner_ids));</script>
<button id="signup" onclick="window.lintrk('track', {{ conversion_id: 3 }}); location.href = '/done';">Sign up</button>""")

# A CMP's stub (after the IAB reference stub: queue returned by a call without
# arguments, ping answered with cmpStatus 'stub') whose CMP the proxy removed.
TCFAPI_PAGE = page_html(f"""
<script>
(function () {{
  const queue = [];
  window.__tcfapi = function (...a) {{
    if (!a.length) return queue;
    if (a[0] === "ping") a[2]({{ gdprApplies: undefined, cmpLoaded: false, cmpStatus: "stub" }});
    else queue.push(a);
  }};
}})();
__tcfapi("addEventListener", 2, (tc, ok) => log("queued listener success " + ok + ", consents " + JSON.stringify(tc.purpose.consents)));
</script>
{twice("tcfapi")}
<script>
let calling = true; // ping answers at once, the others later (as a CMP's callbacks do)
const when = () => (calling ? "at once" : "later");
__tcfapi("ping", 2, p => log("ping " + p.cmpStatus + " gdprApplies " + p.gdprApplies + " " + when()));
__tcfapi("getTCData", 2, (tc, ok) => log("getTCData success " + ok + ", tcString '" + tc.tcString + "' " + when()));
__tcfapi("removeEventListener", 2, ok => log("remove success " + ok + " " + when()), 1);
calling = false;
</script>""")

PAGES = {
    "ga": GA_PAGE,
    "gaq": GAQ_PAGE,
    "gtag": GTAG_PAGE,
    "gtag-form": GTAG_FORM_PAGE,
    "gtm": GTM_PAGE,
    "ga-gtm": GA_GTM_PAGE,
    "gpt": GPT_PAGE,
    "adsbygoogle": ADSENSE_PAGE,
    "fbq": FBQ_PAGE,
    "fbq-bare": FBQ_BARE_PAGE,
    "fbsdk": FBSDK_PAGE,
    "twttr": TWTTR_PAGE,
    "linkedin": LINKEDIN_PAGE,
    "linkedin-bare": LINKEDIN_BARE_PAGE,
    "tcfapi": TCFAPI_PAGE,
}

# A real library already on the page (set up first), and what shows it is still there.
REAL = {
    "ga": (
        "window.ga = Object.assign(function real() {}, { loaded: true });"
        "window._gaq = { _getAsyncTracker() {}, push() { return 'real'; } };"
        "window.dataLayer = []; dataLayer.push = function real() { return 'real'; };",
        "ga.name == 'real' && _gaq.push() == 'real' && dataLayer.push.name == 'real'",
    ),
    "gtm": (
        "window.dataLayer = []; dataLayer.push = function real() { return 'real'; };",
        "dataLayer.push.name == 'real' && typeof gtag == 'undefined'",
    ),
    "gpt": (
        "window.googletag = { apiReady: true, cmd: { push: function real() {} } };",
        "googletag.cmd.push.name == 'real' && !googletag.defineSlot",
    ),
    "adsbygoogle": (
        "window.adsbygoogle = { loaded: true, push: function real() {} };",
        "adsbygoogle.push.name == 'real'",
    ),
    "fbq": (
        "window.fbq = function real() {}; fbq.callMethod = function real() {};",
        "fbq.name == 'real' && fbq.callMethod.name == 'real' && !fbq.version",
    ),
    "fbsdk": ("window.FB = { init: function real() {} };", "FB.init.name == 'real' && !FB.XFBML"),
    "twttr": ("window.twttr = { widgets: { real: true } };", "twttr.widgets.real && !twttr.ready"),
    "linkedin": ("window.lintrk = function real() {};", "lintrk.name == 'real'"),
    "tcfapi": (
        "window.__tcfapi = function real(c, v, cb) { if (c == 'ping') cb({ cmpStatus: 'loaded' }); };",
        "__tcfapi.name == 'real'",
    ),
}


@dataclass
class Visit:
    """One page visit: the page and everything the test watches for."""

    page: Page
    context: BrowserContext
    scripts: tuple[str, ...]
    requests: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    writes: list[str] = field(default_factory=list)

    async def results(self, count: int) -> list[str]:
        """The page's log once it holds ``count`` entries (sorted: timers from scripts
        fetched one after the other may interleave), and a moment later (no extra)."""
        await self.page.wait_for_function(f"window.results.length >= {count}", timeout=5000)
        await self.page.wait_for_timeout(150)
        return sorted(await self.page.evaluate("window.results"))

    async def assert_clean(self, *paths: str) -> None:
        """Only the page, its surrogates and ``paths`` were requested, all from the
        origin; no error; no cookie, storage write or element made."""
        origin = urlsplit(self.page.url).netloc
        assert {urlsplit(u).netloc for u in self.requests} == {origin}, self.requests
        page = urlsplit(self.requests[0]).path
        allowed = {page, *paths, *(f"/s/{name}.js" for name in self.scripts)}
        assert {urlsplit(u).path for u in self.requests} <= allowed, self.requests
        assert self.page_errors == [], self.page_errors
        assert self.console_errors == [], self.console_errors
        assert self.writes == [], self.writes
        assert await self.context.cookies() == []
        assert await self.page.evaluate("document.cookie") == ""
        assert await self.page.evaluate("localStorage.length + sessionStorage.length") == 0


Open = Callable[..., Awaitable[Visit]]


@dataclass
class Origin:
    server: TestServer
    posted: list[dict[str, str]] = field(default_factory=list)


@pytest.fixture
async def origin(aiohttp_server: Callable[..., Awaitable[TestServer]]) -> Origin:
    app = web.Application()
    posted: list[dict[str, str]] = []

    async def page(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name in PAGES:
            return web.Response(text=PAGES[name], content_type="text/html")
        raise web.HTTPNotFound()

    async def real(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        setup, _ = REAL[name]
        return web.Response(
            text=page_html(f"<script>{setup}</script>{twice(name)}"), content_type="text/html"
        )

    async def inline(request: web.Request) -> web.Response:
        """The surrogate inlined, allowed by its hash alone."""
        script = surrogates.load(request.match_info["name"])
        policy = (
            f"default-src 'none'; img-src data:; script-src 'nonce-{NONCE}' {script.csp_source}"
        )
        body = page_html(f"<script>{script.text}</script>")
        return web.Response(
            text=body, content_type="text/html", headers={"Content-Security-Policy": policy}
        )

    async def script(request: web.Request) -> web.Response:
        try:
            text = surrogates.load(request.match_info["name"]).text
        except UnknownSurrogate:
            raise web.HTTPNotFound() from None
        return web.Response(text=text, content_type="application/javascript")

    async def done(request: web.Request) -> web.Response:
        if request.method == "POST":
            posted.append({k: str(v) for k, v in (await request.post()).items()})
        return web.Response(text=page_html("<h1>Done</h1>"), content_type="text/html")

    app.router.add_get("/page/{name}", page)
    app.router.add_get("/real/{name}", real)
    app.router.add_get("/inline/{name}", inline)
    app.router.add_get("/s/{name}.js", script)
    app.router.add_route("*", "/done", done)
    return Origin(await aiohttp_server(app), posted)


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    if not Path(CHROMIUM).exists():
        pytest.fail("the browser tests need Debian's chromium: .ci/run installs it")
    async with async_playwright() as p:
        browser = await p.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        yield browser
        await browser.close()


async def watch(seen: Visit, base: str, path: str) -> Visit:
    """Load ``base + path`` in ``seen``'s page, watched: every request outside ``base``
    is answered here with an empty 204 (and recorded), the page's writes to ``__note``,
    its page errors and console errors are kept."""
    page, context = seen.page, seen.context

    async def route(route: Route) -> None:
        if route.request.url.startswith(base + "/"):
            await route.continue_()
        else:  # never leaves the machine; the request is recorded below
            await route.fulfill(status=204, body="")

    await context.route("**/*", route)
    await context.expose_function("__note", lambda what: seen.writes.append(what))
    await context.add_init_script(WATCH)
    page.on("request", lambda r: seen.requests.append(r.url))
    page.on("pageerror", lambda e: seen.page_errors.append(str(e)))

    def console(message: ConsoleMessage) -> None:
        if message.type == "error":
            seen.console_errors.append(message.text)

    page.on("console", console)
    await page.goto(base + path, wait_until="load")
    return seen


@pytest.fixture
async def visit(browser: Browser, origin: Origin) -> AsyncIterator[Open]:
    contexts: list[BrowserContext] = []
    base = str(origin.server.make_url("/")).rstrip("/")

    async def open_page(path: str, *scripts: str) -> Visit:
        """Open ``path``, whose page includes the surrogates ``scripts``."""
        context = await browser.new_context()
        contexts.append(context)
        page = await context.new_page()
        return await watch(Visit(page, context, scripts), base, path)

    yield open_page
    for context in contexts:
        await context.close()


async def submit_and_land(v: Visit, selector: str) -> None:
    """Click ``selector`` and wait for the page it leads to (/done)."""
    async with v.page.expect_navigation(url="**/done", timeout=5000):
        await v.page.click(selector)


async def test_ga_analytics_js_queue_callbacks_and_form(visit: Open, origin: Origin) -> None:
    v = await visit("/page/ga", "ga")
    assert await v.results(8) == [
        "create returns third",
        "fields hitCallback, after send: true",
        "ga undefined, loaded true",
        "named tracker hitCallback",
        "queued hitCallback",
        "ready callback with t0",
        "tracker.send hitCallback",
        "trackers t0,second",
    ]
    await v.assert_clean()
    await submit_and_land(v, "#checkout button")
    assert origin.posted == [{"item": "bike"}]
    await v.assert_clean("/done")


async def test_ga_legacy_gaq_and_link(visit: Open) -> None:
    v = await visit("/page/gaq", "ga")
    # hitCallback, once set, stays set for the tracker's later hits (as in ga.js).
    assert await v.results(5) == [
        "linker url https://shop.example/",
        "push returns 1",
        "queued function, tracker function",
        "queued hitCallback",
        "queued hitCallback",
    ]
    await v.assert_clean()
    await submit_and_land(v, "#out")
    await v.assert_clean("/done")


async def test_gtag_callbacks_queued_and_later(visit: Open) -> None:
    v = await visit("/page/gtag", "ga")
    assert await v.results(4) == [
        "dataLayer entries 6",
        "eventCallback, after push: true",
        "get callback undefined",
        "queued event_callback",
    ]
    await v.assert_clean()


async def test_gtag_form_submits_without_the_snippet(visit: Open, origin: Origin) -> None:
    v = await visit("/page/gtag-form", "ga")
    await submit_and_land(v, "#lead button")
    assert origin.posted == [{"email": "a@example.com"}]
    await v.assert_clean("/done")


async def test_gtm_custom_layer_event_callback_and_form(visit: Open, origin: Origin) -> None:
    v = await visit("/page/gtm", "gtm")
    await v.page.wait_for_timeout(100)  # past the eventTimeout: still called once
    assert await v.results(4) == [
        "dataLayer undefined",
        "push returns new length true",
        "queued eventCallback GTM-TEST1",
        "timed eventCallback",
    ]
    await v.assert_clean()
    await submit_and_land(v, "#order button")
    assert origin.posted == [{"sku": "1"}]
    await v.assert_clean("/done")


async def test_ga_and_gtm_together_call_back_once(visit: Open) -> None:
    v = await visit("/page/ga-gtm", "ga", "gtm")
    assert await v.results(3) == ["gtag", "push", "queued"]
    await v.assert_clean()


async def test_gpt_command_queue_slots_and_empty_render(visit: Open) -> None:
    v = await visit("/page/gpt", "gpt")
    assert await v.results(7) == [
        "apiReady true, pubadsReady true, slots 3",
        "cmd.push ran now, returns 2",
        "destroySlots true",
        "pushed cmd ran",
        "queued cmd ran",
        "slotRenderEnded div-side empty true",
        "slotRenderEnded div-top empty true",
    ]
    # setCollapseEmptyDiv(true) on the top slot only: GPT hides the empty one.
    assert (
        await v.page.evaluate("getComputedStyle(document.getElementById('div-top')).display")
        == "none"
    )
    assert (
        await v.page.evaluate("getComputedStyle(document.getElementById('div-side')).display")
        == "block"
    )
    await v.assert_clean()


async def test_adsbygoogle_push_never_throws_and_marks_units_unfilled(visit: Open) -> None:
    v = await visit("/page/adsbygoogle", "adsbygoogle")
    assert await v.results(3) == ["adBreakDone next other", "adConfig onReady", "loaded true"]
    for unit in ("ad1", "ad2"):
        status = await v.page.get_attribute(f"#{unit}", "data-ad-status")
        assert status == "unfilled", unit
    await v.assert_clean()


async def test_fbq_queue_and_button_that_navigates(visit: Open) -> None:
    v = await visit("/page/fbq", "fbq")
    assert await v.results(1) == ["queue 0, _fbq true, callMethod function"]
    await v.assert_clean()
    await submit_and_land(v, "#buy")
    await v.assert_clean("/done")


async def test_fbq_without_its_snippet(visit: Open) -> None:
    v = await visit("/page/fbq-bare", "fbq")
    await submit_and_land(v, "#buy")
    await v.assert_clean("/done")


async def test_fbsdk_async_init_and_callbacks(visit: Open) -> None:
    v = await visit("/page/fbsdk", "fbsdk")
    assert await v.results(4) == [
        "api error true",
        "fbAsyncInit",
        "login status unknown",
        "parse callback",
    ]
    await v.assert_clean()


async def test_twttr_ready_queue_promises_and_events(visit: Open) -> None:
    v = await visit("/page/twttr", "twttr")
    # 'loaded' fires for the scan at start and for the page's own widgets.load().
    assert await v.results(7) == [
        "createTimeline resolved",
        "createTweet resolved undefined",
        "later ready",
        "load resolved",
        "loaded event, widgets 0",
        "loaded event, widgets 0",
        "queued ready, same object true",
    ]
    await v.assert_clean()


async def test_linkedin_lintrk_queue(visit: Open) -> None:
    v = await visit("/page/linkedin", "linkedin")
    assert await v.results(1) == ["partner ids 1234, queue taken over true"]
    await v.assert_clean()


async def test_linkedin_without_its_snippet(visit: Open) -> None:
    v = await visit("/page/linkedin-bare", "linkedin")
    assert await v.results(1) == ["partner ids []"]
    await submit_and_land(v, "#signup")
    await v.assert_clean("/done")


async def test_tcfapi_answers_without_claiming_consent(visit: Open) -> None:
    v = await visit("/page/tcfapi", "tcfapi")
    assert await v.results(4) == [
        "getTCData success false, tcString '' later",
        "ping error gdprApplies true at once",
        "queued listener success false, consents {}",
        "remove success false later",
    ]
    await v.assert_clean()


async def test_a_real_library_is_left_alone(visit: Open) -> None:
    for name, (_, intact) in REAL.items():
        v = await visit(f"/real/{name}", name)
        assert await v.page.evaluate(intact), name
        await v.assert_clean()


async def test_each_surrogate_runs_inline_under_a_strict_policy(visit: Open) -> None:
    """The CSP source of each surrogate lets exactly its text run inline."""
    defines = {
        "adsbygoogle": "adsbygoogle.loaded",
        "fbq": "typeof fbq.callMethod == 'function'",
        "fbsdk": "typeof FB.XFBML.parse == 'function'",
        "ga": "ga.loaded && typeof _gaq.push == 'function' && typeof gtag == 'function'",
        "gpt": "googletag.apiReady",
        "gtm": "dataLayer.push !== [].push",
        "linkedin": "typeof lintrk == 'function' && Array.isArray(_linkedin_data_partner_ids)",
        "tcfapi": "typeof __tcfapi == 'function'",
        "twttr": "typeof twttr.widgets.load == 'function'",
    }
    assert sorted(defines) == list(surrogates.available())
    for name, check in defines.items():
        v = await visit(f"/inline/{name}")
        assert await v.page.evaluate(check), name
        await v.assert_clean()


def test_available_names_and_their_csp_sources() -> None:
    assert surrogates.available() == NAMES
    assert standins.SURROGATES == NAMES  # what rule files may name (consent cannot import ui)
    for name in NAMES:
        script = surrogates.load(name)
        assert script.name == name and script.text.startswith("/* consent-proxy surrogate")
        assert script.csp_source == sha256_source(script.text)
        # Inlined as the text of a <script> element, it must not end or comment it.
        assert "</script" not in script.text.lower() and "<!--" not in script.text
        assert len(script.text.encode()) < 3500, (name, "keep surrogates small")


@pytest.mark.parametrize(
    "name",
    ["", "nope", "GA", "ga.js", "../ga", "ga/../gtm", "surrogates/ga", "README", " ga", 7, None],
)
def test_unknown_names_are_refused(name: object) -> None:
    with pytest.raises(
        UnknownSurrogate, match=r"unknown surrogate .*: expected one of adsbygoogle, fbq"
    ):
        surrogates.load(name)  # type: ignore[arg-type]


def test_every_surrogate_is_in_the_wheel(tmp_path: Path) -> None:
    """The wheel built from this tree (by pip, as a user's install does) carries every
    surrogate, byte for byte: the package-data globs cover them."""
    src = tmp_path / "src"  # a copy: pip builds in place, leaving build/ and egg-info
    shutil.copytree(ROOT / "proxy", src / "proxy", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    pip = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp_path), str(src)]
    subprocess.run(pip, check=True, capture_output=True, timeout=300)
    (wheel,) = tmp_path.glob("consent_proxy-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        packed = {
            PurePosixPath(n).stem: archive.read(n).decode()
            for n in archive.namelist()
            if n.startswith("proxy/ui/assets/surrogates/") and n.endswith(".js")
        }
    assert sorted(packed) == list(NAMES)
    for name in NAMES:
        assert packed[name] == surrogates.load(name).text, name
