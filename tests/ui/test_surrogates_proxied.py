"""Every surrogate as the proxy puts it in, in Debian's Chromium: a page with a
tracker's snippet or loader goes through the real proxy (built-in rules, and a CMP rule
for tcfapi) to a visitor who refused everything; the page's own code, in a first-party
script the rules do not touch, calls the tracker's API the way sites do. The calls
work (callbacks run, forms and links that wait for them go), and the surrogate sends
no request, sets no cookie, writes no storage and makes no element.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from playwright.async_api import Browser

from proxy.consent.rules import RuleSet, parse_rule
from tests.support.browsing import REFUSED
from tests.ui.test_browser import RULES, MakeProxy, chromium
from tests.ui.test_surrogates import NAMES, Visit, page_html, watch

CMP_RULE = """name = "Test CMP"
category = "preferences"
surrogate = "tcfapi"
[[block]]
selector = "script[src]"
url_hosts = ["cmp.example"]
"""
GA_SNIPPET = (
    "<script>(function(i,s,o,g,r,a,m){i['GoogleAnalyticsObject']=r;i[r]=i[r]||function(){"
    "(i[r].q=i[r].q||[]).push(arguments)},i[r].l=1*new Date();a=s.createElement(o),"
    "m=s.getElementsByTagName(o)[0];a.async=1;a.src=g;m.parentNode.insertBefore(a,m)"
    "})(window,document,'script','https://www.google-analytics.com/analytics.js','__gaTracker');"
    "__gaTracker('create', 'UA-1-1', 'auto'); __gaTracker('send', 'pageview');</script>"
)
GAQ_SNIPPET = (
    "<script>var _gaq = _gaq || []; _gaq.push(['_setAccount', 'UA-1-1']); "
    "_gaq.push(['_trackPageview']); (function() { var ga = document.createElement('script'); "
    "ga.async = true; ga.src = ('https:' == document.location.protocol ? 'https://ssl' : "
    "'http://www') + '.google-analytics.com/ga.js'; var s = document.getElementsByTagName"
    "('script')[0]; s.parentNode.insertBefore(ga, s); })();</script>"
)
GTAG_SNIPPET = (
    '<script async src="https://www.googletagmanager.com/gtag/js?id=G-1&amp;l=siteLayer">'
    "</script><script>window.siteLayer = window.siteLayer || []; "
    "function gtag(){siteLayer.push(arguments);} gtag('js', new Date()); "
    "gtag('config', 'G-1');</script>"
)
GTM_SNIPPET = (
    "<script>(function(w,d,s,l,i){w[l]=w[l]||[];w[l].push({'gtm.start':new Date().getTime(),"
    "event:'gtm.js'});var f=d.getElementsByTagName(s)[0],j=d.createElement(s),"
    "dl=l!='dataLayer'?'&l='+l:'';j.async=true;j.src='https://www.googletagmanager.com/gtm.js"
    "?id='+i+dl;f.parentNode.insertBefore(j,f);})(window,document,'script','appLayer','GTM-AB12');"
    "</script>"
)
PIXEL_SNIPPET = (
    "<script>!function(f,b,e,v,n,t,s){if(f.fbq)return;n=f.fbq=function(){n.callMethod?"
    "n.callMethod.apply(n,arguments):n.queue.push(arguments)};if(!f._fbq)f._fbq=n;"
    "n.push=n;n.loaded=!0;n.version='2.0';n.queue=[];t=b.createElement(e);t.async=!0;"
    "t.src=v;s=b.getElementsByTagName(e)[0];s.parentNode.insertBefore(t,s)}(window, document,"
    "'script','https://connect.facebook.net/en_US/fbevents.js');fbq('init', '1');"
    "fbq('track', 'PageView');</script><noscript><img height=\"1\" width=\"1\" "
    'src="https://www.facebook.com/tr?id=1&amp;ev=PageView&amp;noscript=1"></noscript>'
)
INSIGHT_SNIPPET = (
    '<script>_linkedin_partner_id = "1234"; window._linkedin_data_partner_ids = '
    "window._linkedin_data_partner_ids || []; "
    "window._linkedin_data_partner_ids.push(_linkedin_partner_id);</script>"
    "<script>(function(l) { if (!l){window.lintrk = function(a,b){window.lintrk.q.push([a,b])};"
    "window.lintrk.q=[]} var s = document.getElementsByTagName('script')[0]; "
    "var b = document.createElement('script'); b.async = true; "
    "b.src = 'https://snap.licdn.com/li.lms-analytics/insight.min.js'; "
    "s.parentNode.insertBefore(b, s);})(window.lintrk);</script>"
)
FORM = '<form id="go" action="/done" method="post"><input name="x" value="1"><button>Go</button></form>'
SUBMIT_IN = (  # the form is sent only when the tracker calls back
    "document.getElementById('go').addEventListener('submit', function (event) {{ "
    "event.preventDefault(); const form = this; {call} }});"
)


@dataclass(frozen=True)
class Case:
    """A page: the tracker (what the proxy removes), the page's markup, its own code
    (served as /app/NAME.js), what the code logs, and what leads to /done (a click)."""

    tracker: str
    markup: str
    code: str
    logged: tuple[str, ...]
    surrogates: tuple[str, ...]
    click: str | None = None


CASES = {
    "ga": Case(
        GA_SNIPPET,
        FORM,
        "__gaTracker('send', 'event', 'a', 'b', { hitCallback: () => log('hitCallback') });"
        + SUBMIT_IN.format(
            call="__gaTracker('send', 'event', 'c', 's', { hitCallback: () => form.submit() });"
        ),
        ("hitCallback",),
        ("ga",),
        "#go button",
    ),
    "gaq": Case(
        GAQ_SNIPPET,
        '<a id="out" href="/nowhere" onclick="_gaq.push([\'_link\', \'/done\']); return false;">Out</a>',
        "_gaq.push(() => log('tracker ' + typeof _gat._getTrackerByName()._trackEvent));",
        ("tracker function",),
        ("ga",),
        "#out",
    ),
    "gtag": Case(
        GTAG_SNIPPET,
        FORM,
        "gtag('event', 'view', { event_callback: () => log('layer ' + siteLayer.length + ' '"
        " + typeof window.dataLayer) });"
        + SUBMIT_IN.format(
            call="gtag('event', 'lead', { event_callback: () => form.submit(), event_timeout: 2000 });"
        ),
        ("layer 1 undefined",),
        ("ga",),
        "#go button",
    ),
    "gtm": Case(
        GTM_SNIPPET,
        FORM,
        "appLayer.push({ event: 'view', eventCallback: id => log('eventCallback ' + id) });"
        + SUBMIT_IN.format(
            call="appLayer.push({ event: 'buy', eventCallback: () => form.submit(), eventTimeout: 2000 });"
        ),
        ("eventCallback GTM-AB12",),
        ("gtm",),
        "#go button",
    ),
    "gpt": Case(
        '<script async src="https://securepubads.g.doubleclick.net/tag/js/gpt.js"></script>',
        '<div id="div-top" style="height:90px">ad</div>',
        "window.googletag = window.googletag || { cmd: [] }; googletag.cmd.push(() => { "
        "googletag.defineSlot('/1/top', [728, 90], 'div-top').addService(googletag.pubads()); "
        "googletag.pubads().addEventListener('slotRenderEnded', e => log('rendered ' + "
        "e.slot.getSlotElementId() + ' empty ' + e.isEmpty)); googletag.pubads().collapseEmptyDivs(); "
        "googletag.enableServices(); googletag.display('div-top'); });",
        ("rendered div-top empty true",),
        ("gpt", "adsbygoogle"),
    ),
    "adsbygoogle": Case(
        '<script async src="https://pagead2.googlesyndication.com/pagead/js/adsbygoogle.js'
        '?client=ca-pub-1" crossorigin="anonymous"></script>',
        "",
        "(window.adsbygoogle = window.adsbygoogle || []).push({}); "
        "window.adsbygoogle.push({ google_ad_client: 'ca-pub-1', enable_page_level_ads: true }); "
        "log('loaded ' + adsbygoogle.loaded);",
        ("loaded true",),
        ("gpt", "adsbygoogle"),
    ),
    "fbq": Case(
        PIXEL_SNIPPET,
        "<button id=\"buy\" onclick=\"fbq('track', 'Purchase', {value: 1, currency: 'EUR'}); "
        "location.href = '/done';\">Buy</button>",
        "fbq('track', 'ViewContent'); log('callMethod ' + typeof fbq.callMethod);",
        ("callMethod function",),
        ("fbq",),
        "#buy",
    ),
    "fbsdk": Case(
        '<div id="fb-root"></div><script async defer crossorigin="anonymous" '
        'src="https://connect.facebook.net/en_US/sdk.js#xfbml=1&amp;version=v19.0"></script>',
        "",
        "window.fbAsyncInit = function () { FB.init({ appId: '1', xfbml: true, version: 'v19.0' }); "
        "FB.getLoginStatus(r => log('login status ' + r.status)); };",
        ("login status unknown",),
        ("fbsdk",),
    ),
    "twttr": Case(
        '<a class="twitter-share-button" href="https://twitter.com/share">Tweet</a>'
        '<script async src="https://platform.twitter.com/widgets.js" charset="utf-8"></script>',
        "",
        "twttr.ready(() => log('ready')); twttr.widgets.load().then(() => log('load resolved'));",
        ("load resolved", "ready"),
        ("twttr",),
    ),
    "linkedin": Case(
        INSIGHT_SNIPPET,
        '<button id="signup" onclick="window.lintrk(\'track\', { conversion_id: 3 }); '
        "location.href = '/done';\">Sign up</button>",
        "log('partner ids ' + JSON.stringify(window._linkedin_data_partner_ids));",
        ("partner ids []",),
        ("linkedin",),
        "#signup",
    ),
    "tcfapi": Case(
        '<script src="https://cmp.example/cmp.js"></script>',
        "",
        "__tcfapi('ping', 2, p => log('ping ' + p.cmpStatus)); "
        "__tcfapi('getTCData', 2, (tc, ok) => log('getTCData ' + ok));",
        ("getTCData false", "ping error"),
        ("tcfapi",),
    ),
}


def page_for_case(case: Case, name: str) -> str:
    return page_html(f'{case.tracker}{case.markup}<script src="/app/{name}.js"></script>')


@pytest.fixture
async def proxy(
    aiohttp_server: Callable[..., Awaitable[TestServer]], make_proxy: MakeProxy
) -> TestServer:
    async def page(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in CASES:
            raise web.HTTPNotFound()
        return web.Response(text=page_for_case(CASES[name], name), content_type="text/html")

    async def code(request: web.Request) -> web.Response:
        case = CASES.get(request.match_info["name"])
        if case is None:
            raise web.HTTPNotFound()
        return web.Response(text=case.code, content_type="text/javascript")

    async def done(request: web.Request) -> web.Response:
        return web.Response(text=page_html("<h1>Done</h1>"), content_type="text/html")

    app = web.Application()
    app.router.add_get("/page/{name}", page)
    app.router.add_get("/app/{name}.js", code)
    app.router.add_route("*", "/done", done)
    origin = await aiohttp_server(app)
    cmp = parse_rule("test-cmp", CMP_RULE, "test-cmp.toml")
    rules = RuleSet((*RULES.rules, cmp), RULES.generation + "-cmp")
    return await make_proxy(str(origin.make_url("/")), rewrite=None, ruleset=rules)


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with chromium() as browser:
        yield browser


async def visit(browser: Browser, proxy: TestServer, name: str) -> Visit:
    """The page of case ``name``, as a visitor who refused everything, watched."""
    base = str(proxy.make_url("")).rstrip("/")
    context = await browser.new_context()
    await context.add_cookies([{"name": "consent", "value": REFUSED, "url": base}])
    page = await context.new_page()
    return await watch(Visit(page, context, ()), base, f"/page/{name}")


async def assert_clean(v: Visit, proxy: TestServer, name: str, *more: str) -> None:
    """Only this site was asked for the page, its code and ``more``; no error; no
    cookie but the visitor's choice, no storage, no element made."""
    base = str(proxy.make_url("")).rstrip("/")
    outside = [u for u in v.requests if not u.startswith(base + "/")]
    assert outside == [], outside
    paths = {u[len(base) :].split("?")[0] for u in v.requests}
    assert paths <= {f"/page/{name}", f"/app/{name}.js", *more}, paths
    assert v.page_errors == [] and v.console_errors == [], (v.page_errors, v.console_errors)
    assert v.writes == [], v.writes
    assert [(c["name"], c["value"]) for c in await v.context.cookies()] == [("consent", REFUSED)]
    assert await v.page.evaluate("document.cookie") == f"consent={REFUSED}"
    assert await v.page.evaluate("localStorage.length + sessionStorage.length") == 0


def test_every_surrogate_has_a_case() -> None:
    assert sorted({s for case in CASES.values() for s in case.surrogates}) == list(NAMES)


@pytest.mark.parametrize("name", sorted(CASES))
async def test_surrogate_put_in_by_the_proxy_works_and_stays_silent(
    browser: Browser, proxy: TestServer, name: str
) -> None:
    case = CASES[name]
    v = await visit(browser, proxy, name)
    placed = await v.page.eval_on_selector_all(
        "script[data-consent-surrogate]", "els => els.map(e => e.dataset.consentSurrogate)"
    )
    assert tuple(placed) == case.surrogates
    assert await v.results(len(case.logged)) == sorted(case.logged)
    await assert_clean(v, proxy, name)
    if case.click is not None:
        async with v.page.expect_navigation(url="**/done", timeout=5000):
            await v.page.click(case.click)
        await assert_clean(v, proxy, name, "/done")
    await v.context.close()
