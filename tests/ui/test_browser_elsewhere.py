"""A visitor whose choice the site's OneTrust banner made, in Debian's Chromium through
the real proxy (``consent_sources = onetrust,own``): OneTrust refused media, so a
YouTube embed is held. The proxy's own cookie does not count for this visitor, so an
"Always allow" button would post, come back and show the same placeholder: every
button the placeholder offers must do something visible, and its words say where the
choice is changed. "Load this" shows the video, once.

The harness is test_browser.py's: requests that are not to the proxy are recorded and
answered empty.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

from aiohttp import web
from aiohttp.test_utils import TestServer
from playwright.async_api import BrowserContext, Page

from tests.ui.test_browser import RULES, MakeProxy, Site, chromium, context_for, open_page, shot

YOUTUBE = "https://www.youtube.com/embed/M7lc1UVf-VE?rel=0"
PAGE = f"""<!doctype html><html><head><title>Visit us</title></head><body><h1>Visit us</h1>
<p>Our workshop in one minute:</p>
<iframe width="560" height="315" src="{YOUTUBE}" title="YouTube video player"
 frameborder="0" allow="autoplay; encrypted-media" allowfullscreen></iframe>
<p>Open every day.</p></body></html>"""
# What OneTrust's banner leaves after "Reject all" but performance (C0002).
ONETRUST = "groups=C0001%3A1%2CC0002%3A1%2CC0003%3A0%2CC0004%3A0%2CC0005%3A0"
POINTER = (
    "To allow embedded content from other sites, change your choice in this site's OneTrust banner."
)


async def onetrust_site(
    aiohttp_server: Callable[..., Awaitable[TestServer]], make_proxy: MakeProxy
) -> Site:
    async def page(request: web.Request) -> web.Response:
        return web.Response(text=PAGE, content_type="text/html")

    app = web.Application()
    app.router.add_get("/embeds", page)
    origin = await aiohttp_server(app)
    proxy = await make_proxy(
        str(origin.make_url("/")),
        rewrite=None,
        ruleset=RULES,
        consent_sources=("onetrust", "own"),
    )
    return Site(proxy)


async def cookies(context: BrowserContext) -> dict[str, str]:
    return {c["name"]: c["value"] for c in await context.cookies()}


async def press(page: Page, n: int) -> None:
    """Press the YouTube placeholder's button ``n`` and wait for where it leads."""
    box = page.get_by_role("group", name="YouTube content blocked")
    async with page.expect_navigation():
        await box.get_by_role("button").nth(n).click()
    await page.wait_for_load_state("load")
    await page.wait_for_timeout(300)


async def test_onetrust_visitor_gets_working_buttons_and_a_pointer(
    aiohttp_server: Callable[..., Awaitable[TestServer]], make_proxy: MakeProxy
) -> None:
    site = await onetrust_site(aiohttp_server, make_proxy)
    async with chromium() as browser:
        context = await context_for(browser, site)
        await context.add_cookies(
            [{"name": "OptanonConsent", "value": ONETRUST, "url": site.url("/")}]
        )
        page = await open_page(context, site.url("/embeds"))
        box = page.get_by_role("group", name="YouTube content blocked")
        assert await page.locator("iframe").count() == 0
        assert site.external == [], "a third party was contacted before any click"
        labels = [(await b.text_content() or "") for b in await box.get_by_role("button").all()]
        await page.screenshot(path=shot("embeds-onetrust-held.png"))

        # Every button shows the video: none posts a choice that cannot count.
        for n, label in enumerate(labels):
            await page.goto(site.url("/embeds"), wait_until="load")
            await press(page, n)
            shown = await page.locator("iframe").count()
            assert shown == 1, f"the button {label!r} did nothing: the page came back held"
        assert labels == ["Load this"]

        # The pointer, in the placeholder's words.
        await page.goto(site.url("/embeds"), wait_until="load")
        text = await box.locator(".cp-ph-text").text_content()
        assert text is not None and text.endswith(POINTER), text

        # "Load this": that video, where its placeholder was, once.
        await press(page, 0)  # "Load this"
        assert page.url == site.url("/embeds#cp-media-1")
        assert await page.locator("iframe#cp-media-1").get_attribute("src") == YOUTUBE
        loaded = [urlsplit(u).hostname for u in site.external]
        assert YOUTUBE in site.external and set(loaded) == {"www.youtube.com"}, loaded
        await page.screenshot(path=shot("embeds-onetrust-once.png"))
        assert await cookies(context) == {"OptanonConsent": ONETRUST}  # nothing else kept
        await page.goto(site.url("/embeds"), wait_until="load")
        assert await page.locator("iframe").count() == 0
        assert await box.count() == 1


async def test_a_choice_onetrust_overrides_says_nothing_changed(
    aiohttp_server: Callable[..., Awaitable[TestServer]], make_proxy: MakeProxy
) -> None:
    """The proxy's banner left open while OneTrust's banner (another tab) decided: its
    "Accept all" would set a cookie that does not count. The browser shows the
    preferences page (409) saying nothing was changed and where to change the choice,
    styled under its strict policy, with nothing to press; no cookie is set."""
    site = await onetrust_site(aiohttp_server, make_proxy)
    async with chromium() as browser:
        context = await context_for(browser, site)
        page = await open_page(context, site.url("/embeds"))
        assert await page.locator("#cp-banner").is_visible()
        await context.add_cookies(
            [{"name": "OptanonConsent", "value": ONETRUST, "url": site.url("/")}]
        )
        async with page.expect_navigation() as navigation:
            await page.get_by_role("button", name="Accept all").click()
        response = await navigation.value
        assert response is not None and response.status == 409
        notice = page.get_by_role("alert")
        text = await notice.text_content()
        assert text is not None and text.startswith("Nothing was changed"), text
        assert "change your choice in this site's OneTrust banner" in text
        background = await notice.evaluate("e => getComputedStyle(e).backgroundColor")
        assert background == "rgb(255, 244, 224)", "preferences.css was refused by the CSP"
        assert await page.get_by_role("button").count() == 0
        assert await page.get_by_role("checkbox").count() == 0
        media = page.locator('[data-category="media"] .cpp-in-force')
        assert await media.text_content() == "Not allowed: decided in this site's OneTrust banner."
        await page.screenshot(path=shot("preferences-onetrust-refused.png"), full_page=True)
        assert await cookies(context) == {"OptanonConsent": ONETRUST}
        async with page.expect_navigation():
            await page.get_by_role("link", name="Back to the site").click()
        assert page.url == site.url("/embeds")
        assert await page.locator("#cp-banner").count() == 0
        assert await page.locator("iframe").count() == 0
