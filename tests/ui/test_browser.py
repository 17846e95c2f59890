"""The visitor's side in a real browser: Debian's Chromium driven by Playwright.

Every request that is not to the proxy is recorded and answered with an empty
response, so each test sees exactly which third-party requests a page made.
Screenshots go to test-output/.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from playwright.async_api import Browser, BrowserContext, Page, Route, async_playwright

from proxy.consent.rules import load_rules
from proxy.demo import origin_app
from tests.support import ROOT
from tests.support.corpus import CORPUS
from tests.support.trackers import tracker_host

OUT = ROOT / "test-output"
RULES = load_rules(ROOT / "rules")
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
MakeProxy = Callable[..., Awaitable[TestServer]]
# guardian-1.html (1.1 MB) is in the full corpus only; a lone clone runs cnn.html alone.
CORPUS_PAGES = tuple(
    n for n in ("cnn.html", "guardian-1.html") if (CORPUS / "pages" / "with-trackers" / n).is_file()
)
CSP_NONCE = "r4nd0m"
CSP_PAGE = f"""<!doctype html><html><head><title>Strict</title>
<style nonce="{CSP_NONCE}">body{{font-family:serif}}</style>
<script nonce="{CSP_NONCE}">document.documentElement.dataset.ok = "1";</script>
<script async src="https://www.google-analytics.com/analytics.js"></script>
</head><body><h1>Strict CSP page</h1><p>Text.</p></body></html>"""


@dataclass
class Site:
    proxy: TestServer
    external: list[str] = field(default_factory=list)

    def url(self, path: str) -> str:
        return str(self.proxy.make_url(path))

    def trackers(self) -> list[str]:
        return [u for u in self.external if tracker_host(u)]

    def hosts(self) -> set[str]:
        return {(urlsplit(u).hostname or "") for u in self.trackers()}


@pytest.fixture
async def site(aiohttp_server: Callable[..., Awaitable[TestServer]], make_proxy: MakeProxy) -> Site:
    return await make_site(aiohttp_server, make_proxy)


async def make_site(
    aiohttp_server: Callable[..., Awaitable[TestServer]],
    make_proxy: MakeProxy,
    extra: dict[str, str] | None = None,
) -> Site:
    """The demo site (and the corpus pages, a strict-CSP page and ``extra`` pages by
    path) behind the proxy with the built-in rules."""
    app = origin_app()

    async def corpus(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        if name not in CORPUS_PAGES:
            raise web.HTTPNotFound()
        body = (CORPUS / "pages" / "with-trackers" / name).read_bytes()
        return web.Response(body=body, content_type="text/html")

    async def strict(request: web.Request) -> web.Response:
        policy = (
            f"default-src 'self'; script-src 'nonce-{CSP_NONCE}'; style-src 'nonce-{CSP_NONCE}'; "
            "img-src 'self'; form-action 'self'; base-uri 'none'"
        )
        return web.Response(
            text=CSP_PAGE, content_type="text/html", headers={"Content-Security-Policy": policy}
        )

    def serve(text: str) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def handler(request: web.Request) -> web.Response:
            return web.Response(text=text, content_type="text/html")

        return handler

    app.router.add_get("/corpus/{name}", corpus)
    app.router.add_get("/strict", strict)
    for path, text in (extra or {}).items():
        app.router.add_get(path, serve(text))
    origin = await aiohttp_server(app)
    proxy = await make_proxy(
        str(origin.make_url("/")), rewrite=None, ruleset=RULES, privacy_url="/privacy.html"
    )
    return Site(proxy)


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with chromium() as browser:
        yield browser


@contextlib.asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    """Debian's Chromium, headless, with nothing of its own on the network."""
    if not Path(CHROMIUM).exists():
        pytest.fail(
            "the browser tests need Debian's chromium: .ci/run installs it (apt-get install chromium)"
        )
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


async def context_for(
    browser: Browser, site: Site, javascript: bool = True, size: tuple[int, int] = (1100, 800)
) -> BrowserContext:
    """A fresh visitor (no cookies) with a window of ``size`` (width, height)."""
    context = await browser.new_context(
        java_script_enabled=javascript, viewport={"width": size[0], "height": size[1]}
    )
    origin = site.url("/").rstrip("/")

    async def route(route: Route) -> None:
        url = route.request.url
        if url.startswith(origin):
            await route.continue_()
        else:
            site.external.append(url)
            await route.fulfill(status=204, body="")

    await context.route("**/*", route)
    return context


async def open_page(context: BrowserContext, url: str) -> Page:
    page = await context.new_page()
    await page.goto(url, wait_until="load")
    await page.wait_for_timeout(300)  # late requests from async scripts
    return page


def shot(name: str) -> Path:
    OUT.mkdir(exist_ok=True)
    return OUT / name


async def test_first_visit_banner_and_no_tracker_requests(browser: Browser, site: Site) -> None:
    context = await context_for(browser, site)
    for path in ("/", "/workshop.html", *(f"/corpus/{n}" for n in CORPUS_PAGES)):
        page = await open_page(context, site.url(path))
        banner = page.locator("#cp-banner")
        assert await banner.is_visible(), path
        assert await page.get_by_role("dialog", name="Your privacy choices").is_visible()
        if path == "/":
            await page.screenshot(path=shot("banner.png"))
            box = await page.locator("#cp-banner .cpb-box").bounding_box()
            assert box is not None and box["width"] > 300
    assert site.trackers() == []
    await context.close()


async def test_reject_all_sets_cookie_and_stays_clean(browser: Browser, site: Site) -> None:
    context = await context_for(browser, site)
    page = await open_page(context, site.url("/bikes.html"))
    async with page.expect_navigation():
        await page.get_by_role("button", name="Reject all").click()
    assert page.url == site.url("/bikes.html")
    assert await page.locator("#cp-banner").count() == 0
    cookies = {c["name"]: c for c in await context.cookies()}
    consent = cookies["consent"]
    assert consent["value"] == "v=1&preferences=0&analytics=0&advertising=0&social=0&media=0"
    assert consent["path"] == "/" and consent["sameSite"] == "Lax"
    assert not consent["secure"]  # plain HTTP here; Secure comes with HTTPS
    months = (consent["expires"] - time.time()) / (30 * 24 * 3600)
    assert 5.5 < months <= 13
    await open_page(context, site.url("/"))
    assert site.trackers() == []
    await context.close()


async def test_accept_all_brings_the_trackers_back(browser: Browser, site: Site) -> None:
    context = await context_for(browser, site)
    page = await open_page(context, site.url("/"))
    async with page.expect_navigation():
        await page.get_by_role("button", name="Accept all").click()
    await page.wait_for_timeout(500)
    assert await page.locator("#cp-banner").count() == 0
    hosts = site.hosts()
    for expected in ("google-analytics.com", "doubleclick.net", "facebook", "twitter.com"):
        assert any(expected in h for h in hosts), (expected, hosts)
    await context.close()


async def test_placeholder_loads_its_widget_only(browser: Browser, site: Site) -> None:
    context = await context_for(browser, site)
    page = await open_page(context, site.url("/"))
    async with page.expect_navigation():  # a visitor who refused everything at first
        await page.get_by_role("button", name="Reject all").click()
    placeholder = page.locator('[data-consent-placeholder="facebook"]').first
    assert await placeholder.is_visible()
    await placeholder.screenshot(path=shot("placeholder.png"))
    async with page.expect_navigation():
        await placeholder.get_by_role("button", name=re.compile("^(Always a|A)llow social")).click()
    await page.wait_for_timeout(500)
    assert page.url == site.url("/#cp-social-1")  # back at the widget (the first one)
    assert await page.locator("[data-consent-placeholder]").count() == 0
    assert await page.locator(".fb-like").count() == 1
    hosts = site.hosts()
    assert any("facebook" in h for h in hosts) and any("twitter" in h for h in hosts), hosts
    assert not any("google-analytics" in h or "doubleclick" in h for h in hosts), hosts
    cookie = next(c for c in await context.cookies() if c["name"] == "consent")
    assert cookie["value"] == "v=1&preferences=0&analytics=0&advertising=0&social=1&media=0"
    await context.close()


async def test_whole_flow_by_keyboard(browser: Browser, site: Site) -> None:
    context = await context_for(browser, site)
    page = await open_page(context, site.url("/"))
    for _ in range(80):
        await page.keyboard.press("Tab")
        focused = await page.evaluate(
            "document.activeElement && document.activeElement.textContent"
        )
        inside = await page.evaluate("!!document.activeElement.closest('#cp-banner')")
        if inside and focused == "Choose":
            break
    else:
        pytest.fail("the banner's Choose link cannot be reached with Tab")
    outline = await page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline != "none", "focus must be visible"
    async with page.expect_navigation():
        await page.keyboard.press("Enter")
    assert "/_consent" in page.url
    await page.screenshot(path=shot("preferences.png"), full_page=True)
    for _ in range(30):
        await page.keyboard.press("Tab")
        name = await page.evaluate(
            "document.activeElement.name + '=' + document.activeElement.value"
        )
        if name == "analytics=1":
            break
    await page.keyboard.press("Space")
    for _ in range(30):
        await page.keyboard.press("Tab")
        if await page.evaluate("document.activeElement.textContent") == "Save my choices":
            break
    async with page.expect_navigation():
        await page.keyboard.press("Enter")
    assert page.url == site.url("/")
    assert await page.locator("#cp-banner").count() == 0
    await page.wait_for_timeout(300)
    hosts = site.hosts()
    assert any("google-analytics" in h for h in hosts)
    assert not any("doubleclick" in h or "facebook" in h for h in hosts), hosts
    await context.close()


async def test_without_javascript(browser: Browser, site: Site) -> None:
    context = await context_for(browser, site, javascript=False)
    page = await open_page(context, site.url("/"))
    assert await page.locator("#cp-banner").is_visible()
    async with page.expect_navigation():
        await page.get_by_role("button", name="Reject all").click()
    assert await page.locator("#cp-banner").count() == 0
    assert "consent" in {c["name"] for c in await context.cookies()}
    assert site.trackers() == []
    await context.close()


async def test_strict_csp_page_shows_a_working_banner(browser: Browser, site: Site) -> None:
    context = await context_for(browser, site)
    page = await context.new_page()
    messages: list[str] = []
    page.on("console", lambda msg: messages.append(msg.text))
    await page.goto(site.url("/strict"), wait_until="load")
    await page.wait_for_timeout(300)
    position = await page.evaluate(
        "getComputedStyle(document.getElementById('cp-banner')).position"
    )
    assert position == "fixed", "the banner's style was blocked"
    assert (
        await page.evaluate("document.documentElement.dataset.ok") == "1"
    )  # the page's own script ran
    assert not [m for m in messages if "Content Security Policy" in m], messages
    async with page.expect_navigation():
        await page.get_by_role("button", name="Accept all").click()
    assert await page.locator("#cp-banner").count() == 0
    # With consent, the page's own policy (not the proxy) blocks analytics.js; nothing
    # the proxy added (inline styles, the form's post) may be refused.
    ours = [
        m
        for m in messages
        if "Content Security Policy" in m and ("inline" in m or "form-action" in m)
    ]
    assert not ours, ours
    await context.close()


async def test_pages_in_other_encodings_and_xhtml_show_without_trackers(
    browser: Browser, aiohttp_server: Callable[..., Awaitable[TestServer]], make_proxy: MakeProxy
) -> None:
    """What the byte scanner cannot read as it comes (UTF-16, ISO-2022-JP escapes
    inside a tag name, a self-closing <script/> in XHTML) reaches Chromium with the
    trackers gone, the text intact and the banner working."""
    body = (
        "<!doctype html><html><head><title>Grüße</title>"
        '<script src="https://www.google-analytics.com/analytics.js"></script></head>'
        "<body><h1>Grüße 😀</h1></body></html>"
    )
    hidden = b"<scr\x1b(Bipt src='https://www.googletagmanager.com/gtm.js?id=G'></script>"
    jis = '<html><head><meta charset="iso-2022-jp"><title>t</title></head><body><h1>日本語</h1>'
    xhtml = (
        '<?xml version="1.0"?><html xmlns="http://www.w3.org/1999/xhtml"><head><title>x</title>'
        '<script src="https://www.google-analytics.com/analytics.js"/></head>'
        "<body><h1>Grüße 😀</h1></body></html>"
    )
    pages = {
        "/utf16": ("text/html", b"\xff\xfe" + body.encode("utf-16-le")),
        "/jis": ("text/html", jis.encode("iso2022_jp") + hidden + b"</body></html>"),
        "/xhtml": ("application/xhtml+xml", xhtml.encode()),
    }

    async def serve(request: web.Request) -> web.Response:
        ctype, data = pages[request.path]
        return web.Response(body=data, headers={"Content-Type": ctype})

    app = web.Application()
    app.router.add_get("/{name}", serve)
    origin = await aiohttp_server(app)
    site = Site(await make_proxy(str(origin.make_url("/")), rewrite=None, ruleset=RULES))
    context = await context_for(browser, site)
    for path, heading in (("/utf16", "Grüße 😀"), ("/jis", "日本語"), ("/xhtml", "Grüße 😀")):
        page = await open_page(context, site.url(path))
        assert await page.locator("h1").text_content() == heading, path
        assert await page.locator("#cp-banner").is_visible(), path
    assert site.trackers() == []
    await context.close()
