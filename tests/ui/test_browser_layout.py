"""The banner and placeholders as a visitor sees them, in Debian's Chromium, in a
desktop window (1280x800) and on a phone's screen (375x667): nothing the visitor needs
lies under the banner, the banner takes at most a third of a phone's screen, the first
Tab reaches it, and a placeholder's "Allow ... and show it" comes back to the widget
(with JavaScript and without). Screenshots go to the test's tmp dir (not kept)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestServer
from playwright.async_api import Browser, Page

from tests.ui.test_browser import MakeProxy, Site, chromium, context_for, make_site, open_page

DESKTOP = (1280, 800)
PHONE = (375, 667)
SIZES = [pytest.param(DESKTOP, id="desktop"), pytest.param(PHONE, id="phone")]

_HEAD = (
    '<!doctype html><html lang="en"><head><meta charset="utf-8">'
    '<meta name="viewport" content="width=device-width, initial-scale=1"><title>{}</title>'
    "<style>body{{margin:0;font:16px/1.5 Georgia,serif}}main{{padding:8px 16px}}"
    "footer{{padding:8px 16px;border-top:1px solid #ccc}}</style></head>"
)
WIDGET = (
    '<iframe src="https://www.facebook.com/plugins/like.php?href=https%3A%2F%2Fexample.com" '
    'width="250" height="80" title="Like us"></iframe>'
)
FOOTER = (
    '<footer><a href="/privacy.html">Privacy policy</a> &middot; '
    '<a href="/_consent">Cookie preferences</a></footer>'
)
PARA = "<p>Every frame is brazed by hand in our workshop, from steel tubing we pick.</p>"
SHORT = (
    _HEAD.format("Short")
    + f"<body><main><h1>Short page</h1><p>One paragraph.</p>{WIDGET}</main>{FOOTER}"
    + "</body></html>"
)
LONG = (
    _HEAD.format("Long")
    + "<body><main><h1>Long page</h1>"
    + PARA * 40
    + f"<h2>Like us</h2>{WIDGET}"
    + PARA * 15
    + f"</main>{FOOTER}</body></html>"
)
PAGES = ("/", "/workshop.html", "/short", "/long")

# At the bottom of the page (and scrolled sideways to the element, for pages wider
# than a phone): is the element's centre in the window, and what does the browser
# find there: the element itself, the banner or something else?
AT_THE_BOTTOM = """(el) => {
  const r0 = el.getBoundingClientRect();
  const x = Math.max(0, r0.left + window.scrollX + r0.width / 2 - innerWidth / 2);
  window.scrollTo(x, document.documentElement.scrollHeight);
  const r = el.getBoundingClientRect();
  const cx = r.left + r.width / 2, cy = r.top + r.height / 2;
  const hit = document.elementFromPoint(cx, cy);
  return {
    inView: cx >= 0 && cx < innerWidth && cy >= 0 && cy < innerHeight,
    found: !hit ? "nothing" : el.contains(hit) ? "element"
      : hit.closest("#cp-banner") ? "banner" : hit.outerHTML.slice(0, 80),
  };
}"""
# At the bottom of the page: the lowest edge of the page's own boxes, and the banner's top.
LOWEST = """() => {
  window.scrollTo(0, document.documentElement.scrollHeight);
  let low = 0, what = "";
  for (const el of document.body.querySelectorAll("*")) {
    if (el.closest("#cp-banner") || getComputedStyle(el).position === "fixed") continue;
    const r = el.getBoundingClientRect();
    if (r.width > 0 && r.height > 0 && r.bottom > low) {
      low = r.bottom; what = el.outerHTML.slice(0, 80);
    }
  }
  return {low, what, top: document.getElementById("cp-banner").getBoundingClientRect().top};
}"""
PREFERENCES_LINK = """[...document.querySelectorAll("a")].filter(
  (a) => a.textContent.trim() === "Cookie preferences" && !a.closest("#cp-banner")).pop()"""


@pytest.fixture
async def site(aiohttp_server: Callable[..., Awaitable[TestServer]], make_proxy: MakeProxy) -> Site:
    return await make_site(aiohttp_server, make_proxy, {"/short": SHORT, "/long": LONG})


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with chromium() as browser:
        yield browser


async def uncovered(page: Page, element: str) -> dict[str, Any]:
    handle = await page.evaluate_handle(element)
    result: dict[str, Any] = await page.evaluate(AT_THE_BOTTOM, handle)
    return result


@pytest.mark.parametrize("size", SIZES)
async def test_banner_covers_nothing_and_fits_a_third(
    browser: Browser, site: Site, size: tuple[int, int], tmp_path: Path
) -> None:
    context = await context_for(browser, site, size=size)
    for path in PAGES:
        page = await open_page(context, site.url(path))
        name = f"{path.strip('/').replace('.html', '') or 'home'}-{size[0]}x{size[1]}"
        await page.screenshot(path=tmp_path / f"{name}-top.png")
        box = await page.locator("#cp-banner").bounding_box()
        assert box is not None and 0 < box["height"] <= size[1] / 3, (path, box)
        link = await uncovered(page, PREFERENCES_LINK)
        assert link == {"inView": True, "found": "element"}, (path, "preferences link", link)
        if await page.locator(".cp-ph-button").count():
            button = await uncovered(page, "[...document.querySelectorAll('.cp-ph-button')].pop()")
            if path == "/short" or button["inView"]:
                assert button == {"inView": True, "found": "element"}, (path, "button", button)
        lowest = await page.evaluate(LOWEST)
        assert lowest["low"] <= lowest["top"] + 0.5, (path, lowest)
        await page.screenshot(path=tmp_path / f"{name}-bottom.png")
        await page.close()
    await context.close()


@pytest.mark.parametrize("size", SIZES)
async def test_first_tab_reaches_the_banner(
    browser: Browser, site: Site, size: tuple[int, int]
) -> None:
    context = await context_for(browser, site, size=size)
    for path in ("/", "/long"):
        page = await open_page(context, site.url(path))
        await page.keyboard.press("Tab")
        focused = await page.evaluate(
            "[document.activeElement.closest('#cp-banner') !== null,"
            " document.activeElement.outerHTML.slice(0, 80)]"
        )
        assert focused[0], (path, focused[1])
        await page.close()
    await context.close()


@pytest.mark.parametrize(
    ("javascript", "size"),
    [
        pytest.param(True, DESKTOP, id="js-desktop"),
        pytest.param(False, DESKTOP, id="nojs-desktop"),
        pytest.param(True, PHONE, id="js-phone"),
        pytest.param(False, PHONE, id="nojs-phone"),
    ],
)
async def test_placeholder_grant_comes_back_to_the_widget(
    browser: Browser, site: Site, javascript: bool, size: tuple[int, int], tmp_path: Path
) -> None:
    context = await context_for(browser, site, javascript=javascript, size=size)
    page = await open_page(context, site.url("/long?from=here"))
    button = page.get_by_role("button", name="Always allow social media")  # an iframe's
    await button.scroll_into_view_if_needed()
    async with page.expect_navigation():
        await button.click()
    await page.wait_for_timeout(300)
    assert page.url == site.url("/long?from=here") + "#cp-social-1"
    assert await page.locator("[data-consent-placeholder]").count() == 0
    widget = await page.locator("iframe[title='Like us']").bounding_box()
    await page.screenshot(path=tmp_path / f"returned-{size[0]}x{size[1]}.png")
    assert widget is not None
    # In the window (to within a pixel's rounding), not at the top of the page.
    assert -1 <= widget["y"] <= widget["y"] + widget["height"] <= size[1], widget
    assert await page.evaluate("window.scrollY") > size[1]
    names = {c["name"] for c in await context.cookies()}
    assert "consent" in names and "consent-return" not in names  # the way back is used up
    await context.close()
