"""Placeholders for a visitor whose choice another banner made (``consent_sources``
with ``own`` after it), through the real proxy in front of a real origin on loopback.

The proxy's own cookie does not count for such a visitor, so a grant button would
post, reload and show the same placeholder: the placeholder says where the choice is
changed instead, and the page has no grant form. "Load this" stays and works (its
cookie does not depend on the consent's source). A page rendered for such a visitor
is never served to a visitor whose own cookie decided the same categories, nor the
other way round (the consent variant names where placeholders point).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from proxy.consent import once
from proxy.consent.model import SITE, ConsentPolicy, read_consent
from proxy.consent.rules import load_rules
from tests.support import ROOT
from tests.ui.test_endpoints import post

RULES = load_rules(ROOT / "rules")
MakeProxy = Callable[..., Awaitable[TestServer]]
YOUTUBE = "https://www.youtube.com/embed/M7lc1UVf-VE"
PAGE = f"""<!doctype html><html><head><title>t</title></head><body><h1>Visit us</h1>
<iframe width="560" height="315" src="{YOUTUBE}" title="video"></iframe>
<script type="IN/Share" data-url="https://example.com"></script>
</body></html>"""
# OneTrust decided: analytics granted, the other groups refused (media: no group).
ONETRUST = "OptanonConsent=groups=C0001%3A1%2CC0002%3A1%2CC0003%3A0%2CC0004%3A0%2CC0005%3A0"
# The proxy's own cookie with the same categories.
OWN = "consent=v=1&analytics=1&preferences=0&advertising=0&social=0&media=0"
POINTER = "change your choice in this site&#x27;s OneTrust banner."


@pytest.fixture
async def origin(aiohttp_server: Callable[..., Awaitable[TestServer]]) -> TestServer:
    async def page(request: web.Request) -> web.Response:
        # A strong ETag: the rewrite cache keeps the page for the next visitor.
        return web.Response(text=PAGE, content_type="text/html", headers={"ETag": '"p1"'})

    app = web.Application()
    app.router.add_get("/{tail:.*}", page)
    return await aiohttp_server(app)


async def site_with(origin: TestServer, make_proxy: MakeProxy, sources: str) -> TestServer:
    return await make_proxy(
        str(origin.make_url("/")),
        rewrite=None,
        ruleset=RULES,
        consent_sources=tuple(sources.split(",")),
    )


@pytest.fixture
async def site(origin: TestServer, make_proxy: MakeProxy) -> TestServer:
    return await site_with(origin, make_proxy, "onetrust,own")


async def get(site: TestServer, path: str, cookies: str) -> tuple[aiohttp.ClientResponse, str]:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as s:
        async with s.get(site.make_url(path), headers={"Cookie": cookies}) as r:
            return r, await r.text()


def grants(body: str) -> list[str]:
    """The categories the page's grant buttons post."""
    return re.findall(r'<button type="submit" form="cp-grant-([a-z]+)"', body)


def grant_forms(body: str) -> list[str]:
    return re.findall(r'<form id="cp-grant-([a-z]+)"', body)


def pointers(body: str) -> list[str]:
    return re.findall(r'<span class="cp-ph-where">([^<]*)</span>', body)


def cache(r: aiohttp.ClientResponse) -> str:
    return r.headers["X-Consent-Actions"].rsplit("cache=", 1)[1]


async def test_onetrust_visitor_gets_pointers_not_grants(site: TestServer) -> None:
    r, body = await get(site, "/visit", ONETRUST)
    assert "source=onetrust" in r.headers["X-Consent"]
    assert grants(body) == [] and grant_forms(body) == []
    assert pointers(body) == [
        f"To allow embedded content from other sites, {POINTER}",
        f"To allow social media, {POINTER}",
    ]
    # "Load this" stays on the embed, with the form it posts.
    assert body.count('form="cp-load-once"') == 1 and '<form id="cp-load-once"' in body
    assert "<iframe" not in body


async def test_own_visitor_keeps_the_grant_buttons(site: TestServer) -> None:
    r, body = await get(site, "/visit", OWN)
    assert "source=cookie" in r.headers["X-Consent"]
    assert grants(body) == ["media", "social"] and grant_forms(body) == ["media", "social"]
    assert pointers(body) == []


async def test_the_grant_does_not_count_for_the_onetrust_visitor(site: TestServer) -> None:
    """Why the buttons go: the proxy's cookie a grant would set changes nothing while
    OneTrust's cookie is there (a grant posted anyway, from a stale page, is refused:
    tests/ui/test_preferences_elsewhere.py)."""
    r = await post(site, {"media": "1", "next": "/visit#cp-media-1"}, {"Cookie": ONETRUST})
    assert r.status == 409 and "Set-Cookie" not in r.headers
    granted = OWN.replace("media=0", "media=1")
    r, body = await get(site, "/visit", f"{ONETRUST}; {granted}")
    assert "media=0" in r.headers["X-Consent"] and "<iframe" not in body
    r, body = await get(site, "/visit", granted)  # without OneTrust's cookie it counts
    assert "media=1" in r.headers["X-Consent"] and YOUTUBE in body


async def test_load_this_works_for_the_onetrust_visitor(site: TestServer) -> None:
    r = await post(site, {"once": "1", "next": "/visit#cp-media-1"}, {"Cookie": ONETRUST})
    assert r.status == 303 and r.headers["Location"] == "/visit#cp-media-1"
    (set_cookie,) = r.headers.getall("Set-Cookie")
    assert set_cookie == once.set_header("cp-media-1", "/visit", "consent", secure=False)
    shown_once = set_cookie.split(";")[0]
    r, body = await get(site, "/visit", f"{ONETRUST}; {shown_once}")
    assert re.findall(r"<iframe[^>]*>", body) == [
        f'<iframe width="560" height="315" src="{YOUTUBE}" title="video" id="cp-media-1">'
    ]
    assert r.headers.getall("Set-Cookie") == [once.expire_header("consent")]
    assert pointers(body) == [f"To allow social media, {POINTER}"]  # the other stays held
    r, body = await get(site, "/visit", ONETRUST)  # once: the next load holds it again
    assert "<iframe" not in body


@pytest.mark.parametrize("first", [OWN, ONETRUST], ids=["own-first", "onetrust-first"])
async def test_the_cache_never_mixes_the_two_visitors(site: TestServer, first: str) -> None:
    """Same categories, same page, same origin bytes: each visitor gets their own
    rewrite, in either order, and a hit only from a visitor of their own kind."""
    second = ONETRUST if first == OWN else OWN
    r, body = await get(site, "/cached", first)
    assert cache(r) == "miss" and bool(pointers(body)) == (first == ONETRUST)
    r, body = await get(site, "/cached", second)
    assert cache(r) == "miss", "served the other visitor's page"
    assert bool(pointers(body)) == (second == ONETRUST)
    assert bool(grants(body)) == (second == OWN)
    r, again = await get(site, "/cached", first)
    assert cache(r) == "hit" and bool(pointers(again)) == (first == ONETRUST)
    r, again = await get(site, "/cached", second)
    assert cache(r) == "hit" and again == body


async def test_own_first_keeps_the_grants(origin: TestServer, make_proxy: MakeProxy) -> None:
    """With ``own`` first the proxy's cookie always counts: grants, even for a
    visitor OneTrust decided (until they use one)."""
    site = await site_with(origin, make_proxy, "own,onetrust")
    r, body = await get(site, "/visit", ONETRUST)
    assert "source=onetrust" in r.headers["X-Consent"]
    assert grants(body) == ["media", "social"] and pointers(body) == []


async def test_a_category_the_source_does_not_state(
    origin: TestServer, make_proxy: MakeProxy
) -> None:
    """US Privacy speaks of advertising and social only: media is the default's, and
    no choice made there allows it (the placeholder says so)."""
    site = await site_with(origin, make_proxy, "usprivacy,own")
    r, body = await get(site, "/visit", "usprivacy=1YYN")
    assert "source=usprivacy" in r.headers["X-Consent"]
    assert grants(body) == []
    assert pointers(body) == [
        "Your choice in the US Privacy signal does not cover embedded content from other "
        "sites, so it cannot be allowed here.",
        "To allow social media, change your choice in the US Privacy signal.",
    ]


@pytest.mark.parametrize(
    ("sources", "cookie", "elsewhere"),
    [
        (("own",), "", ""),
        (("onetrust", "own"), "", ""),  # nobody decided: the proxy's cookie will count
        (("onetrust", "own"), ONETRUST, "onetrust"),
        (("onetrust", "own"), OWN, ""),
        (("own", "onetrust"), ONETRUST, ""),
        (("onetrust",), ONETRUST, "onetrust"),
        (("onetrust",), "", "onetrust"),  # undecided, no own cookie read: its banner
        (("tcf", "onetrust"), "", SITE),  # which of the two: the site's banner
        (("tcf", "onetrust"), OWN, SITE),
    ],
)
def test_where_a_choice_is_changed(sources: tuple[str, ...], cookie: str, elsewhere: str) -> None:
    consent = read_consent({"Cookie": cookie}, ConsentPolicy(sources=sources))
    assert consent.elsewhere == elsewhere
    assert (f"-{elsewhere}" in consent.variant) == bool(elsewhere)
