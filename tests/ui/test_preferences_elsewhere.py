"""The preferences page (/_consent) for a visitor whose choice another banner or signal
made (``consent_sources`` with it before ``own``), through the real proxy on loopback.

Its switches would set the proxy's own cookie, which does not count for that visitor:
the page shows what is in force, category by category, and where it was decided, says
where to change it, and has no form. A choice posted anyway is refused (409): no
cookie, no proof of a change that did not happen, the page saying nothing changed. A
visitor for whom ``own`` counts sees the page with its switches, as before.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from proxy.ui import csp
from proxy.ui.templates import Templates
from tests.ui.test_endpoints import post
from tests.ui.test_placeholders_elsewhere import ONETRUST, OWN, site_with

MakeProxy = Callable[..., Awaitable[TestServer]]
DECIDED_IN_ONETRUST = "decided in this site's OneTrust banner."


@pytest.fixture
async def origin(aiohttp_server: Callable[..., Awaitable[TestServer]]) -> TestServer:
    async def page(request: web.Request) -> web.Response:  # never asked for /_consent
        return web.Response(text="<p>origin</p>", content_type="text/html")

    app = web.Application()
    app.router.add_get("/{tail:.*}", page)
    return await aiohttp_server(app)


@pytest.fixture
async def site(origin: TestServer, make_proxy: MakeProxy) -> TestServer:
    return await site_with(origin, make_proxy, "onetrust,own")


async def page(
    site: TestServer, cookies: str, extra: dict[str, str] | None = None
) -> tuple[aiohttp.ClientResponse, str]:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as s:
        headers = {"Cookie": cookies, **(extra or {})}
        async with s.get(site.make_url("/_consent?next=/back"), headers=headers) as r:
            return r, await r.text()


def in_force(body: str) -> dict[str, str]:
    """Each category's line of what is in force."""
    rows = re.findall(
        r'<h2 id="cpp-cat-(\w+)">[^<]*</h2>\n<p class="cpp-in-force">([^<]*)</p>', body
    )
    return {c: html_text(t) for c, t in rows}


def html_text(text: str) -> str:
    return text.replace("&#x27;", "'")


def controls(body: str) -> list[str]:
    """Every form, input and button on the page."""
    return re.findall(r"<(form|input|button)\b", body)


async def test_onetrust_visitor_sees_what_is_in_force(site: TestServer) -> None:
    r, body = await page(site, ONETRUST)
    assert r.status == 200 and "Cookie preferences" in body
    assert controls(body) == []
    assert in_force(body) == {
        "necessary": "Always on.",
        "preferences": f"Not allowed: {DECIDED_IN_ONETRUST}",
        "analytics": f"Allowed: {DECIDED_IN_ONETRUST}",
        "advertising": f"Not allowed: {DECIDED_IN_ONETRUST}",
        "social": f"Not allowed: {DECIDED_IN_ONETRUST}",
        "media": f"Not allowed: {DECIDED_IN_ONETRUST}",
    }
    text = html_text(body)
    assert "To change it, change your choice in this site's OneTrust banner." in text
    assert "Your choice, as made in this site's OneTrust banner: Analytics allowed." in text
    assert '<a href="/back">Back to the site</a>' in body and "Google Analytics" in body
    css = Templates().text("preferences.css").strip()  # the page's style, allowed by hash
    assert f"style-src {csp.sha256_source(css)};" in r.headers["Content-Security-Policy"]


@pytest.mark.parametrize("cookies", [OWN, ""], ids=["own-decided", "undecided"])
async def test_switches_where_the_proxys_cookie_counts(site: TestServer, cookies: str) -> None:
    r, body = await page(site, cookies)
    assert r.status == 200 and in_force(body) == {}
    assert '<form method="post" action="/_consent">' in body
    assert ('name="analytics" value="1" checked' in body) == (cookies == OWN)
    assert "Save my choices" in body


async def test_categories_the_source_does_not_cover(
    origin: TestServer, make_proxy: MakeProxy
) -> None:
    """US Privacy speaks of advertising and social only (the sale of data): the page
    says so of the others, and what decides them instead."""
    site = await site_with(origin, make_proxy, "usprivacy,own")
    r, body = await page(site, "usprivacy=1YYN")
    assert r.status == 200 and controls(body) == []

    def uncovered(label: str) -> str:
        return (
            f"Not allowed: your choice in the US Privacy signal does not cover {label}, "
            "so this site's default decides it."
        )

    assert in_force(body) == {
        "necessary": "Always on.",
        "preferences": uncovered("preferences"),
        "analytics": uncovered("analytics"),
        "advertising": "Not allowed: decided in the US Privacy signal.",
        "social": "Not allowed: decided in the US Privacy signal.",
        "media": uncovered("embedded content from other sites"),
    }


async def test_not_chosen_yet_where_own_is_not_a_source(
    origin: TestServer, make_proxy: MakeProxy
) -> None:
    """Without ``own`` the proxy's cookie never counts: before the visitor chose in the
    banner, the page says what decides meanwhile (GPC, the default)."""
    site = await site_with(origin, make_proxy, "onetrust")
    r, body = await page(site, "", {"Sec-GPC": "1"})
    assert r.status == 200 and controls(body) == []
    not_yet = "you have not made a choice in this site's OneTrust banner yet."
    gpc = "your browser's Global Privacy Control signal"
    assert in_force(body)["advertising"] == f"Not allowed ({gpc}): {not_yet}"
    assert in_force(body)["analytics"] == f"Not allowed (this site's default): {not_yet}"
    r = await post(site, {"accept": "all"})
    assert r.status == 409 and "Set-Cookie" not in r.headers


@pytest.mark.parametrize(
    "choice",
    [{"accept": "all"}, {"reject": "all"}, {"media": "1", "next": "/visit#cp-media-1"}],
    ids=["accept", "reject", "placeholder-grant"],
)
async def test_a_choice_posted_anyway_is_refused(
    site: TestServer, tmp_path: Path, choice: dict[str, str]
) -> None:
    """The page a stale form (or another tab's banner) posts from: nothing is set, not
    even the expiry of a vendor's cookie, and no consent change is logged."""
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as s:
        headers = {"Cookie": f"{ONETRUST}; _ga=GA1"}
        async with s.post(
            site.make_url("/_consent"), data=choice, headers=headers, allow_redirects=False
        ) as r:
            body = await r.text()
    assert r.status == 409 and "Set-Cookie" not in r.headers and "Location" not in r.headers
    assert r.headers["Content-Type"].startswith("text/html") and controls(body) == []
    assert (
        "Nothing was changed: your choice is read from this site's OneTrust banner, and a "
        "choice made on this page would not count." in html_text(body)
    )
    assert in_force(body)["analytics"] == f"Allowed: {DECIDED_IN_ONETRUST}"
    back = choice.get("next", "/")
    assert f'<a href="{back}">Back to the site</a>' in body
    log = tmp_path / "decisions.log"
    lines = log.read_text().splitlines() if log.exists() else []
    assert [json.loads(line)["kind"] for line in lines if line].count("consent") == 0


async def test_json_clients_are_told_where(site: TestServer) -> None:
    r = await post(site, {"accept": "all"}, {"Cookie": ONETRUST}, json=True)
    assert r.status == 409 and "Set-Cookie" not in r.headers
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as s:
        async with s.post(
            site.make_url("/_consent"), json={"accept": "all"}, headers={"Cookie": ONETRUST}
        ) as r:
            refusal = json.loads(await r.text())
        async with s.get(
            site.make_url("/_consent"), headers={"Cookie": ONETRUST, "Accept": "application/json"}
        ) as r:
            state = await r.json()
        async with s.get(
            site.make_url("/_consent"), headers={"Cookie": OWN, "Accept": "application/json"}
        ) as r:
            own_state = await r.json()
    assert refusal["change_at"] == "onetrust" and "Nothing was changed" in refusal["error"]
    assert state["change_at"] == "onetrust" and own_state["change_at"] == "own"


async def test_the_own_visitors_post_still_counts(site: TestServer) -> None:
    r = await post(site, {"accept": "all", "next": "/back"}, {"Cookie": OWN})
    assert r.status == 303 and r.headers["Location"] == "/back"
    assert r.headers["Set-Cookie"].startswith("consent=v=1&preferences=1&analytics=1")
