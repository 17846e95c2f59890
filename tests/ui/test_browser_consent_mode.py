"""Google Consent Mode v2 in a real browser (Debian's Chromium, as test_browser.py):
the consent default is ``dataLayer[0]`` before the page's first script and before any
Google script runs, for each kind of visitor, under a page Content-Security-Policy that
forbids inline scripts without a nonce (or a hash); GTM's <noscript> iframe follows the
rule when JavaScript is off.

Google's scripts are answered here by a stand-in that records, as it runs, what
``dataLayer[0]`` holds; every other request that is not to the proxy gets an empty 204.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from playwright.async_api import Browser, BrowserContext, Route

from proxy.consent.model import OPTIONAL
from proxy.consent.rules import load_rules
from proxy.demo import origin_app
from proxy.ui.csp import sha256_source
from tests.support import ROOT
from tests.ui.test_browser import chromium

RULES = load_rules(ROOT / "rules")
MakeProxy = Callable[..., Awaitable[TestServer]]
Server = Callable[..., Awaitable[TestServer]]
NONCE = "cm2N0nce"
GOOGLE_HOSTS = ("googletagmanager.com", "google-analytics.com", "doubleclick.net")
# What a Google script finds when it runs: the stand-in records dataLayer[0].
STAND_IN = (
    "(function(){var s=document.currentScript,d=window.dataLayer;"
    "(window.__google=window.__google||[]).push({src:s?s.src:'',"
    "first:d&&d[0]?JSON.parse(JSON.stringify(Array.prototype.slice.call(d[0]))):null});})();"
)
RECORD = (
    "window.__first = window.dataLayer && window.dataLayer[0] ? "
    "JSON.parse(JSON.stringify(Array.prototype.slice.call(window.dataLayer[0]))) : null;"
)
GTAG = (
    "window.dataLayer = window.dataLayer || []; function gtag(){dataLayer.push(arguments);} "
    "gtag('js', new Date()); gtag('config', 'G-1');"
)
GTM = (
    "(function(w,d,s,l,i){w[l]=w[l]||[];w[l].push({'gtm.start':new Date().getTime(),"
    "event:'gtm.js'});var f=d.getElementsByTagName(s)[0],j=d.createElement(s),"
    "dl=l!='dataLayer'?'&l='+l:'';j.async=true;j.src='https://www.googletagmanager.com/gtm.js?id='"
    "+i+dl;f.parentNode.insertBefore(j,f);})(window,document,'script','dataLayer','GTM-1');"
)
INLINE = (RECORD, GTAG, GTM)
NONCE_POLICY = f"default-src 'self'; script-src 'nonce-{NONCE}' 'strict-dynamic'; base-uri 'none'"
HASH_POLICY = (
    "default-src 'self'; script-src 'self' https://www.googletagmanager.com "
    "https://securepubads.g.doubleclick.net " + " ".join(sha256_source(s) for s in INLINE)
)


def page(nonce: str | None) -> str:
    n = f' nonce="{nonce}"' if nonce else ""
    return (
        f"<!doctype html><html><head><script{n}>{RECORD}</script>"
        f'<meta charset="utf-8"><title>Shop</title>'
        f'<script{n} async src="https://www.googletagmanager.com/gtag/js?id=G-1"></script>'
        f"<script{n}>{GTAG}</script><script{n}>{GTM}</script>"
        f'<script{n} async src="https://securepubads.g.doubleclick.net/tag/js/gpt.js"></script>'
        "</head><body>"
        '<noscript><iframe src="https://www.googletagmanager.com/ns.html?id=GTM-1" '
        'height="0" width="0"></iframe></noscript><h1>Shop</h1></body></html>'
    )


def consent_cookie(**granted: int) -> str:
    return "v=1&" + "&".join(f"{c}={granted.get(c, 0)}" for c in OPTIONAL)


VISITORS: dict[str, str | None] = {
    "undecided": None,
    "refused": consent_cookie(),
    "accepted": consent_cookie(preferences=1, analytics=1, advertising=1, social=1),
    "custom": consent_cookie(preferences=1, analytics=1),
}
EXPECTED = {
    "undecided": set(),
    "refused": set(),
    "accepted": {"analytics", "advertising", "preferences"},
    "custom": {"analytics", "preferences"},
}


def default_for(granted: set[str]) -> list[Any]:
    def v(category: str | None) -> str:
        return "granted" if category is None or category in granted else "denied"

    return [
        "consent",
        "default",
        {
            "ad_storage": v("advertising"),
            "analytics_storage": v("analytics"),
            "ad_user_data": v("advertising"),
            "ad_personalization": v("advertising"),
            "functionality_storage": v("preferences"),
            "personalization_storage": v("preferences"),
            "security_storage": v(None),
        },
    ]


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with chromium() as launched:
        yield launched


async def shop(
    aiohttp_server: Server, make_proxy: MakeProxy, **settings: object
) -> tuple[TestServer, str]:
    async def nonce_page(request: web.Request) -> web.Response:
        return web.Response(
            text=page(NONCE),
            content_type="text/html",
            headers={"Content-Security-Policy": NONCE_POLICY},
        )

    async def hash_page(request: web.Request) -> web.Response:
        return web.Response(
            text=page(None),
            content_type="text/html",
            headers={"Content-Security-Policy": HASH_POLICY},
        )

    async def plain_page(request: web.Request) -> web.Response:
        return web.Response(text=page(None), content_type="text/html")

    app = web.Application()
    app.router.add_get("/plain", plain_page)
    app.router.add_get("/nonce", nonce_page)
    app.router.add_get("/hash", hash_page)
    origin = await aiohttp_server(app)
    proxy = await make_proxy(str(origin.make_url("/")), rewrite=None, ruleset=RULES, **settings)
    return proxy, str(proxy.make_url("/")).rstrip("/")


async def visitor(
    browser: Browser, site: str, cookie: str | None, external: list[str], javascript: bool = True
) -> BrowserContext:
    context = await browser.new_context(java_script_enabled=javascript)
    if cookie is not None:
        await context.add_cookies([{"name": "consent", "value": cookie, "url": site + "/"}])
    await context.add_init_script(
        "window.__violations = [];"
        "document.addEventListener('securitypolicyviolation', function (e) {"
        "  window.__violations.push(e.violatedDirective + ' ' + e.blockedURI); });"
    )

    async def route(route: Route) -> None:
        url = route.request.url
        if url.startswith(site):
            await route.continue_()
            return
        external.append(url)
        if any(host in url for host in GOOGLE_HOSTS) and route.request.resource_type == "script":
            await route.fulfill(status=200, body=STAND_IN, content_type="text/javascript")
        else:
            await route.fulfill(status=204, body="")

    await context.route("**/*", route)
    return context


@pytest.mark.parametrize("mode", ["basic", "advanced"])
@pytest.mark.parametrize("policy", ["nonce", "hash"])
async def test_the_consent_default_reaches_google_first(
    browser: Browser, aiohttp_server: Server, make_proxy: MakeProxy, mode: str, policy: str
) -> None:
    _proxy, site = await shop(aiohttp_server, make_proxy, consent_mode=mode)
    for who, cookie in VISITORS.items():
        external: list[str] = []
        context = await visitor(browser, site, cookie, external)
        tab = await context.new_page()
        await tab.goto(f"{site}/{policy}", wait_until="load")
        await tab.wait_for_timeout(400)  # async scripts
        state = await tab.evaluate(
            "({first: window.__first, google: window.__google || [],"
            " violations: window.__violations, layer0: window.dataLayer && window.dataLayer[0]"
            " ? JSON.parse(JSON.stringify(Array.prototype.slice.call(window.dataLayer[0])))"
            " : null, noscript: (document.querySelector('noscript') || {}).textContent || ''})"
        )
        await context.close()
        granted = EXPECTED[who]
        expected = default_for(granted)
        google_runs = mode == "advanced" or "analytics" in granted or "advertising" in granted
        assert state["violations"] == [], (who, state["violations"])
        if not google_runs:  # basic, nothing Google's allowed: no tag and no default
            assert state["first"] is None and state["google"] == [], who
            assert not [u for u in external if any(h in u for h in GOOGLE_HOSTS)], who
            assert "ns.html" not in state["noscript"]
            continue
        # The origin's first script found the default already there, and so did every
        # Google script: it was dataLayer[0] before any of them ran.
        assert state["first"] == expected, who
        assert state["layer0"] == expected, who
        ran = {g["src"].split("?")[0].rsplit("/", 1)[-1]: g["first"] for g in state["google"]}
        tags = {"js"} if "analytics" in granted or mode == "advanced" else set()
        tags |= {"gtm.js"} if "analytics" in granted or mode == "advanced" else set()
        tags |= {"gpt.js"} if "advertising" in granted or mode == "advanced" else set()
        assert set(ran) == tags, (who, ran)
        assert all(first == expected for first in ran.values()), (who, ran)
        # GTM's fallback follows the rule: only where analytics is allowed.
        assert ("ns.html" in state["noscript"]) is ("analytics" in granted), who


@pytest.mark.parametrize("mode", ["basic", "advanced"])
async def test_gtm_noscript_iframe_follows_the_rule_without_javascript(
    browser: Browser, aiohttp_server: Server, make_proxy: MakeProxy, mode: str
) -> None:
    _proxy, site = await shop(aiohttp_server, make_proxy, consent_mode=mode)
    for who in ("refused", "custom"):
        external: list[str] = []
        context = await visitor(browser, site, VISITORS[who], external, javascript=False)
        tab = await context.new_page()
        await tab.goto(f"{site}/plain", wait_until="load")  # no policy to refuse frames
        await tab.wait_for_timeout(300)
        await context.close()
        frames = [u for u in external if "googletagmanager.com/ns.html" in u]
        assert bool(frames) is (who == "custom"), (mode, who, external)


@pytest.mark.parametrize("mode", ["basic", "advanced"])
async def test_demo_behind_an_existing_banner(
    browser: Browser, aiohttp_server: Server, make_proxy: MakeProxy, mode: str
) -> None:
    """The demo's stand-in for a OneTrust banner: its choice is what the proxy enforces."""
    origin = await aiohttp_server(origin_app())
    proxy = await make_proxy(
        str(origin.make_url("/")),
        rewrite=None,
        ruleset=RULES,
        consent_sources=("onetrust", "own"),
        consent_mode=mode,
        privacy_url="/privacy.html",
    )
    site = str(proxy.make_url("/")).rstrip("/")
    external: list[str] = []
    context = await visitor(browser, site, None, external)
    tab = await context.new_page()
    await tab.goto(f"{site}/existing-banner.html", wait_until="load")
    # Nobody has chosen: both banners ask (the proxy's own cookie is a source too).
    assert await tab.locator("#ot-banner").is_visible()
    assert await tab.locator("#cp-banner").is_visible()
    google = [u for u in external if any(h in u for h in GOOGLE_HOSTS)]
    assert bool(google) is (mode == "advanced"), google
    external.clear()
    async with tab.expect_navigation():
        await tab.get_by_role("button", name="Performance cookies only").click()
    await tab.wait_for_timeout(400)
    assert await tab.locator("#cp-banner").count() == 0  # the other banner has decided
    assert not await tab.locator("#ot-banner").is_visible()
    shown = json.loads(await tab.locator("#consent-default").text_content() or "null")
    assert shown == default_for({"analytics"})[2]
    hosts = {u.split("/")[2] for u in external}
    assert "www.googletagmanager.com" in hosts and "www.google-analytics.com" in hosts, hosts
    assert not any("doubleclick" in h or "facebook" in h for h in hosts), hosts
    response = await tab.request.get(f"{site}/existing-banner.html")
    assert "source=onetrust" in response.headers["x-consent"]
    await context.close()
