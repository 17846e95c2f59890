"""Embeds behind click-to-load, in Debian's Chromium through the real proxy, with
JavaScript on and off: a page with a YouTube video and a Google Maps map.

The harness is test_browser.py's: every request that is not to the proxy is recorded
and answered with an empty response, so each step sees exactly which third parties
the page contacted. A visitor who refused everything gets two placeholders sized like
the embeds and contacts nobody; "Load this" on the video shows that one iframe, once
(the map stays held, the consent cookie does not change, a reload holds it again);
"Always allow" grants ``media`` and shows both.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

import pytest
from aiohttp.test_utils import TestServer
from playwright.async_api import BrowserContext, Page

from tests.ui.test_browser import (
    MakeProxy,
    Site,
    chromium,
    context_for,
    make_site,
    open_page,
    shot,
)

YOUTUBE = "https://www.youtube.com/embed/M7lc1UVf-VE?rel=0"
MAPS = "https://www.google.com/maps/embed?pb=!1m18!1m12!1m3!1d2624.99!2d2.29!3d48.85"
PAGE = f"""<!doctype html><html><head><title>Visit us</title>
<link rel="preconnect" href="https://www.youtube.com">
<link rel="dns-prefetch" href="//maps.googleapis.com">
</head><body><h1>Visit us</h1><p>Our workshop in one minute:</p>
<iframe width="560" height="315" src="{YOUTUBE}" title="YouTube video player"
 frameborder="0" allow="autoplay; encrypted-media" allowfullscreen></iframe>
<p>How to find us:</p>
<iframe src="{MAPS}" width="600" height="450" style="border:0;" allowfullscreen=""
 loading="lazy" referrerpolicy="no-referrer-when-downgrade"></iframe>
<p><img src="https://i.ytimg.com/vi/M7lc1UVf-VE/hqdefault.jpg" alt="The video's poster"></p>
<p>Open every day.</p></body></html>"""
# Every host the two embeds (and the page's hints and poster) would contact.
VENDORS = (
    "youtube.com",
    "youtube-nocookie.com",
    "ytimg.com",
    "google.com",
    "googleapis.com",
    "gstatic.com",
)
REFUSED = "v=1&preferences=0&analytics=0&advertising=0&social=0&media=0"


def vendor_requests(site: Site) -> list[str]:
    """The recorded requests to a host of the two vendors (or its subdomains)."""
    out = []
    for url in site.external:
        host = urlsplit(url).hostname or ""
        if any(host == v or host.endswith("." + v) for v in VENDORS):
            out.append(url)
    return out


async def consent_cookies(context: BrowserContext) -> dict[str, str]:
    return {
        c["name"]: c["value"] for c in await context.cookies() if c["name"].startswith("consent")
    }


async def submit(page: Page, placeholder: str, button: str) -> None:
    """Press ``button`` in the placeholder of ``placeholder`` (its vendor's name) and
    wait for the page it leads to."""
    box = page.get_by_role("group", name=f"{placeholder} content blocked")
    async with page.expect_navigation():
        await box.get_by_role("button", name=button).click()
    await page.wait_for_load_state("load")
    await page.wait_for_timeout(300)


async def refusing_visitor(site: Site, context: BrowserContext) -> Page:
    """A visitor who pressed "Reject all" on the page."""
    page = await open_page(context, site.url("/embeds"))
    async with page.expect_navigation():
        await page.get_by_role("button", name="Reject all").click()
    await page.wait_for_load_state("load")
    await page.wait_for_timeout(300)
    assert await consent_cookies(context) == {"consent": REFUSED}
    return page


async def sizes(page: Page) -> dict[str, tuple[float, float]]:
    """The placeholders' boxes (width, height), by vendor."""
    out = {}
    for box in await page.locator(".cp-ph").all():
        vendor = await box.locator("strong").text_content()
        bounds = await box.bounding_box()
        assert vendor is not None and bounds is not None
        out[vendor] = (bounds["width"], bounds["height"])
    return out


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "no-js"])
async def test_embeds_are_click_to_load(
    aiohttp_server: Callable[..., Awaitable[TestServer]],
    make_proxy: MakeProxy,
    javascript: bool,
) -> None:
    site = await make_site(aiohttp_server, make_proxy, {"/embeds": PAGE})
    async with chromium() as browser:
        context = await context_for(browser, site, javascript=javascript)
        page = await refusing_visitor(site, context)
        # Held: two placeholders the size of the embeds, nothing asked of the vendors.
        assert await sizes(page) == {"YouTube": (560, 315), "Google Maps": (600, 450)}
        assert await page.locator("iframe").count() == 0
        assert site.external == [], "a third party was contacted before any click"
        await page.screenshot(path=shot(f"embeds-held-{'js' if javascript else 'nojs'}.png"))

        # "Load this" on the video: that iframe alone, where its placeholder was.
        await submit(page, "YouTube", "Load this YouTube content")
        assert page.url == site.url("/embeds#cp-media-1")
        video = page.locator("iframe#cp-media-1")
        assert await video.get_attribute("src") == YOUTUBE
        bounds = await video.bounding_box()
        assert bounds is not None and (bounds["width"], bounds["height"]) == (560, 315)
        assert await sizes(page) == {"Google Maps": (600, 450)}
        loaded = vendor_requests(site)
        assert loaded and all(urlsplit(u).hostname == "www.youtube.com" for u in loaded), loaded
        assert YOUTUBE in loaded
        assert await consent_cookies(context) == {"consent": REFUSED}  # once: used, expired

        # Once: the next load of the page holds the video again.
        seen = len(site.external)
        await page.goto(site.url("/embeds"), wait_until="load")
        await page.wait_for_timeout(300)
        assert await sizes(page) == {"YouTube": (560, 315), "Google Maps": (600, 450)}
        assert site.external[seen:] == []

        # "Always allow" on the map: media granted, both embeds shown, nothing else.
        await submit(page, "Google Maps", "Always allow embedded content from other sites")
        assert page.url == site.url("/embeds#cp-media-2")
        assert await page.locator(".cp-ph").count() == 0
        assert await page.locator("iframe#cp-media-2").get_attribute("src") == MAPS  # landed
        assert [await f.get_attribute("src") for f in await page.locator("iframe").all()] == [
            YOUTUBE,
            MAPS,
        ]
        await page.wait_for_timeout(300)
        now = vendor_requests(site)[len(loaded) :]
        assert YOUTUBE in now and MAPS in now, now
        assert await consent_cookies(context) == {"consent": REFUSED.replace("media=0", "media=1")}
        await context.close()


async def test_load_this_shows_only_its_own_embed_of_several(
    aiohttp_server: Callable[..., Awaitable[TestServer]], make_proxy: MakeProxy
) -> None:
    """Two videos and a map: "Load this" on the second video shows that one; the first
    video and the map stay held (the embeds are told apart by their place on the page,
    not by vendor)."""
    second = "https://www.youtube-nocookie.com/embed/other"
    page_text = PAGE.replace(
        "<p>How to find us:</p>",
        f'<iframe width="320" height="180" src="{second}"></iframe><p>How to find us:</p>',
    )
    site = await make_site(aiohttp_server, make_proxy, {"/embeds": page_text})
    async with chromium() as browser:
        context = await context_for(browser, site, javascript=False)
        page = await refusing_visitor(site, context)
        assert await page.locator(".cp-ph").count() == 3
        boxes = page.get_by_role("group", name="YouTube content blocked")
        async with page.expect_navigation():
            await boxes.nth(1).get_by_role("button", name="Load this").click()
        await page.wait_for_timeout(300)
        assert page.url == site.url("/embeds#cp-media-2")
        assert [await f.get_attribute("src") for f in await page.locator("iframe").all()] == [
            second
        ]
        assert [urlsplit(u).hostname for u in vendor_requests(site)] == ["www.youtube-nocookie.com"]
        assert await sizes(page) == {"YouTube": (560, 315), "Google Maps": (600, 450)}
        await context.close()
