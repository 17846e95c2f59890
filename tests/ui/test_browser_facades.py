"""Embeds that are no iframe, in Debian's Chromium through the real proxy, with
JavaScript on and off: an X post and an Instagram post (their <blockquote> and the
vendor's script), a <lite-youtube> facade with its (first-party) element script, and
a Google Maps JavaScript API script in <head> drawing into a div.

The harness is test_browser.py's: every request that is not to the proxy is recorded
and answered with an empty response. A visitor who refused everything reads the
posts' text, gets four placeholders and contacts nobody; "Load this" on the X post
loads widgets.js and nothing else (once: a reload holds it again); "Load this" on the
video leaves the facade to the page's script, which fetches its thumbnail; "Always
allow" at the Instagram post grants ``media`` and lands there, and the media
vendors' scripts load. Without JavaScript no script loads, so those steps check the
page's elements instead of the requests.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

import pytest
from aiohttp.test_utils import TestServer
from playwright.async_api import Page

from tests.ui.test_browser import MakeProxy, Site, chromium, context_for, make_site, shot
from tests.ui.test_browser_embeds import REFUSED, consent_cookies, refusing_visitor, submit

MAPS = "https://maps.googleapis.com/maps/api/js?key=K&callback=initMap"
WIDGETS = "https://platform.twitter.com/widgets.js"
# The element script of lite-youtube, reduced to what contacts YouTube before a click:
# the thumbnail. Served by the site itself (here inline; the host is put together at
# run time, as a file of the site's own would hold it, out of the catalogue's sight).
LITE_SCRIPT = (
    "<script>customElements.define('lite-youtube', class extends HTMLElement {"
    " connectedCallback() { this.style.backgroundImage = 'url(https://' +"
    " ['i', 'ytimg', 'com'].join('.') + '/vi/' + this.getAttribute('videoid') +"
    " '/hqdefault.jpg)'; } });</script>"
)
PAGE = f"""<!doctype html><html><head><title>News</title>
<script async src="{MAPS}"></script>
</head><body><h1>News</h1>
<blockquote class="twitter-tweet"><p lang="en">Hello from X</p>&mdash; X (@x)
<a href="https://twitter.com/x/status/1">May 1</a></blockquote>
<script async src="{WIDGETS}" charset="utf-8"></script>
<blockquote class="instagram-media" data-instgrm-permalink="https://www.instagram.com/p/A/"
 data-instgrm-version="14"><a href="https://www.instagram.com/p/A/">A post on Instagram</a>
</blockquote>
<script async src="//www.instagram.com/embed.js"></script>
<lite-youtube videoid="ogfYd705cRs" style="display:block;width:560px;height:315px">
</lite-youtube>
{LITE_SCRIPT}
<div id="map" style="width:600px;height:300px"></div>
<script>function initMap() {{}}</script>
<p>The end.</p></body></html>"""
PLACEHOLDERS = ["Google Maps", "X (Twitter)", "Instagram", "YouTube"]  # page order


def hosts(urls: list[str]) -> list[str]:
    return [urlsplit(u).hostname or "" for u in urls]


async def held(page: Page) -> list[str]:
    """The vendors of the placeholders on the page, in page order."""
    return [t or "" for t in await page.locator(".cp-ph strong").all_text_contents()]


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "no-js"])
async def test_posts_facades_and_maps_are_click_to_load(
    aiohttp_server: Callable[..., Awaitable[TestServer]],
    make_proxy: MakeProxy,
    javascript: bool,
) -> None:
    site: Site = await make_site(aiohttp_server, make_proxy, {"/embeds": PAGE})
    async with chromium() as browser:
        context = await context_for(browser, site, javascript=javascript)
        page = await refusing_visitor(site, context)
        # Held: the posts' text stays, four placeholders, nobody contacted.
        assert await page.get_by_text("Hello from X").is_visible()
        assert await page.get_by_text("A post on Instagram").is_visible()
        assert await held(page) == PLACEHOLDERS
        assert await page.locator("lite-youtube").count() == 0
        assert site.external == [], "a third party was contacted before any click"
        await page.screenshot(path=shot(f"facades-held-{'js' if javascript else 'nojs'}.png"))

        # "Load this" on the X post: widgets.js after it, and nothing else.
        await submit(page, "X (Twitter)", "Load this X (Twitter) content")
        assert page.url == site.url("/embeds#cp-social-1")
        post = page.locator("blockquote#cp-social-1")
        assert await post.get_attribute("class") == "twitter-tweet"
        added = post.locator("xpath=following-sibling::script[1]")
        assert await added.get_attribute("src") == WIDGETS
        assert await held(page) == [p for p in PLACEHOLDERS if p != "X (Twitter)"]
        assert site.external == ([WIDGETS] if javascript else [])
        assert await consent_cookies(context) == {"consent": REFUSED}  # once: used, expired

        # Once: the next load holds it again, and contacts nobody.
        seen = len(site.external)
        await page.goto(site.url("/embeds"), wait_until="load")
        await page.wait_for_timeout(300)
        assert await held(page) == PLACEHOLDERS
        assert site.external[seen:] == []

        # "Load this" on the video: the facade, left to the page's own script.
        await submit(page, "YouTube", "Load this YouTube content")
        assert page.url == site.url("/embeds#cp-media-3")
        assert await page.locator("lite-youtube#cp-media-3").count() == 1
        thumbnails = hosts(site.external[seen:])
        assert thumbnails == (["i.ytimg.com"] if javascript else []), thumbnails

        # "Always allow" at the Instagram post: media granted, back at the post; the
        # media vendors' scripts stay on the page (X's, social, still goes).
        seen = len(site.external)
        await submit(page, "Instagram", "Always allow embedded content from other sites")
        assert page.url == site.url("/embeds#cp-media-2")
        assert await page.locator("blockquote#cp-media-2.instagram-media").count() == 1
        assert await held(page) == ["X (Twitter)"]
        for src in (MAPS, "//www.instagram.com/embed.js"):
            assert await page.locator(f'script[src="{src}"]').count() == 1, src
        await page.wait_for_timeout(300)
        now = sorted(set(hosts(site.external[seen:])))
        expected = ["i.ytimg.com", "maps.googleapis.com", "www.instagram.com"]
        assert now == (expected if javascript else []), now
        assert await consent_cookies(context) == {"consent": REFUSED.replace("media=0", "media=1")}
        await context.close()
