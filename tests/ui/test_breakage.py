"""Breakage, measured in Debian's Chromium: the proxy must not break the pages it cleans.

Every corpus page with trackers is loaded straight from the origin and through the real
proxy (built-in rules and catalogue) by a visitor who refused everything: the session's
one browsing run (tests/support/browsing.py), shared with the leak test. In both cases
every request that leaves the page's own site is answered with an empty 204, so the
direct load is the page with all third parties unreachable, which is what a refusing
visitor's page can at best be. Uncaught exceptions (page errors) and console errors are
collected; an error the proxied page shows and the direct one does not is breakage the
proxy caused. The per-page counts go to test-output/breakage.txt, the messages to
breakage.json.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Awaitable, Callable

import pytest
from aiohttp.test_utils import TestServer

from tests.support.browsing import REFUSED, Load, Run
from tests.support.corpus import CORPUS
from tests.ui.test_browser import OUT, MakeProxy, chromium, context_for, make_site

# The session's browsing run, on one worker of pytest-xdist with the leak test.
pytestmark = pytest.mark.xdist_group("browsing")
# Errors the proxy is known to add, by page, each with why it stays: none. (Scripts
# mixing site code with a tracker's loader are cut, not removed whole, and what a
# removed loader defined gets an absorbing stand-in: proxy/consent/cuts.py.)
KNOWN: dict[str, list[str]] = {}


def added(direct: Load, proxied: Load) -> list[str]:
    """The errors of the proxied load that the direct one did not have."""
    return sorted((proxied.errors() - direct.errors()).elements())


def report(rows: list[tuple[str, Load, Load]]) -> str:
    lines = ["page                              direct page/console   proxied page/console"]
    for name, direct, proxied in rows:
        new = added(direct, proxied)
        lines.append(
            f"{name:34}{len(direct.page_errors):>6}/{len(direct.console_errors):<15}"
            f"{len(proxied.page_errors):>6}/{len(proxied.console_errors):<6}"
            + (f"  added: {new}" if new else "")
        )
    total = [
        sum(len(getattr(r[i], k)) for r in rows)
        for i in (1, 2)
        for k in ("page_errors", "console_errors")
    ]
    lines.append(f"{'total':34}{total[0]:>6}/{total[1]:<15}{total[2]:>6}/{total[3]:<6}")
    return "\n".join(lines)


@pytest.mark.timeout(1800)  # the first test to ask sets the session's browsing run up
def test_the_proxy_adds_no_errors_to_corpus_pages(browsed: Run) -> None:
    rows = [
        (name, loads["direct"], loads["refused"])
        for name, loads in browsed.loads.items()
        if (CORPUS / "pages" / "with-trackers" / name).is_file()  # not the synthetic pages
    ]
    if not rows:
        pytest.skip(f"no corpus pages with trackers in {CORPUS / 'pages' / 'with-trackers'}")
    table = report(rows)
    OUT.mkdir(exist_ok=True)
    (OUT / "breakage.txt").write_text(table + "\n", encoding="utf-8")
    seen = {
        n: {"direct": dataclasses.asdict(d), "proxied": dataclasses.asdict(p)} for n, d, p in rows
    }
    for loads in seen.values():
        for load in loads.values():
            del load["body"], load["external"]
    (OUT / "breakage.json").write_text(json.dumps(seen, indent=1), encoding="utf-8")
    unloaded = [(n, d.failed, p.failed) for n, d, p in rows if p.failed and not d.failed]
    assert not unloaded, f"pages that load directly but not through the proxy: {unloaded}"
    broken = [n for n, d, p in rows if added(d, p) != KNOWN.get(n, [])]
    assert not broken, (
        f"the proxy adds errors to {broken} (known: {KNOWN}; a known error that is gone "
        f"should leave KNOWN):\n{table}"
    )


async def test_order_form_and_test_ride_button_work_for_a_refusing_visitor(
    aiohttp_server: Callable[..., Awaitable[TestServer]], make_proxy: MakeProxy
) -> None:
    """The demo's order page (proxy/demo_site/order.html) sends its form only in
    Google Analytics' hitCallback, and its "Book a test ride" button calls fbq before it
    navigates: both must work with the trackers removed, and reach no tracker."""
    site = await make_site(aiohttp_server, make_proxy)
    async with chromium() as browser:
        context = await context_for(browser, site)
        await context.add_cookies([{"name": "consent", "value": REFUSED, "url": site.url("/")}])
        page = await context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(f"{e.name}: {e.message}"))
        await page.goto(site.url("/order.html"), wait_until="load")
        await page.select_option("select[name=model]", "ridge")
        async with page.expect_navigation(url="**/thanks.html?*", timeout=5000):
            await page.get_by_role("button", name="Place order").click()
        assert page.url == site.url("/thanks.html?model=ridge&phone=")
        await page.go_back(wait_until="load")
        async with page.expect_navigation(url="**/thanks.html?*", timeout=5000):
            await page.get_by_role("button", name="Book a test ride").click()
        assert page.url == site.url("/thanks.html?ride=1")
        assert errors == []
        assert site.trackers() == []
        await context.close()
