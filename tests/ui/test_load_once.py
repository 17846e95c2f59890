"""An embed's "Load this" through the real proxy, over HTTP (the browser's side is
test_browser_embeds.py): the post, the one page it shows the embed on, the cookie
used up, and everything that must not show it (another page, a later load, a cached
page, a forged or cross-site post)."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from proxy.consent import once
from proxy.consent.rules import load_rules
from tests.support import ROOT
from tests.ui.test_endpoints import post

RULES = load_rules(ROOT / "rules")
MakeProxy = Callable[..., Awaitable[TestServer]]
YOUTUBE = "https://www.youtube.com/embed/M7lc1UVf-VE"
MAPS = "https://www.google.com/maps/embed?pb=!1m18"
FACEBOOK = "https://www.facebook.com/plugins/post.php?href=https%3A%2F%2Fwww.facebook.com%2Fx"
PAGE = f"""<!doctype html><html><head><title>t</title></head><body><h1>Visit us</h1>
<iframe width="560" height="315" src="{YOUTUBE}" title="video"></iframe>
<iframe src="{MAPS}" width="600" height="450" style="border:0;"></iframe>
<iframe src="{FACEBOOK}" width="500" height="600" id="post"></iframe>
</body></html>"""
REFUSED = "consent=v=1&preferences=0&analytics=0&advertising=0&social=0&media=0"


@pytest.fixture
async def site(
    aiohttp_server: Callable[..., Awaitable[TestServer]], make_proxy: MakeProxy
) -> TestServer:
    async def page(request: web.Request) -> web.Response:
        return web.Response(text=PAGE, content_type="text/html")

    app = web.Application()
    app.router.add_get("/{tail:.*}", page)
    origin = await aiohttp_server(app)
    return await make_proxy(str(origin.make_url("/")), rewrite=None, ruleset=RULES)


async def get(
    site: TestServer, path: str, cookies: str = REFUSED
) -> tuple[aiohttp.ClientResponse, str]:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as s:
        async with s.get(site.make_url(path), headers={"Cookie": cookies}) as r:
            return r, await r.text()


def once_cookie(anchor: str, path: str) -> str:
    value = once.cookie_value(anchor, path)
    assert value is not None
    return f"consent-once={value}"


def iframes(body: str) -> list[str]:
    return re.findall(r"<iframe[^>]*>", body)


def placeholders(body: str) -> list[str]:
    """The placeholders' anchors, in page order."""
    return re.findall(r'<span class="cp-ph[^"]*"[^>]* id="(cp-[a-z]+-[0-9]+)"', body)


async def test_load_this_post_sets_the_once_cookie_only(site: TestServer) -> None:
    r = await post(site, {"once": "1", "next": "/visit?x=1#cp-media-1"}, {"Cookie": REFUSED})
    assert r.status == 303 and r.headers["Location"] == "/visit?x=1#cp-media-1"
    assert r.headers.getall("Set-Cookie") == [
        once.set_header("cp-media-1", "/visit?x=1", "consent", secure=False)
    ]
    assert r.headers["Cache-Control"] == "no-store"
    r = await post(site, {"once": "1", "next": "/visit#cp-media-2"}, json=True)
    assert r.status == 200
    assert r.headers.getall("Set-Cookie") == [
        once.set_header("cp-media-2", "/visit", "consent", secure=False)
    ]


@pytest.mark.parametrize(
    "fields",
    [
        {"once": "1", "next": "/visit"},  # no embed named
        {"once": "1", "next": "/visit#top"},
        {"once": "1", "next": "/visit#cp-media-0"},
        {"once": "1", "next": "//evil.example/#cp-media-1"},  # not this site: "/"
        {"once": "1", "next": "https://evil.example/#cp-media-1"},
        {"once": "1"},
        {"once": "yes", "next": "/visit#cp-media-1"},
        {"once": "1", "next": "/visit\r\nX: y#cp-media-1"},
    ],
)
async def test_load_this_posts_that_name_no_embed_are_refused(
    site: TestServer, fields: dict[str, str]
) -> None:
    r = await post(site, fields)
    assert r.status == 400
    assert "Set-Cookie" not in r.headers


async def test_cross_site_load_this_is_refused(site: TestServer) -> None:
    fields = {"once": "1", "next": "/visit#cp-media-1"}
    r = await post(site, fields, {"Origin": "https://evil.example"})
    assert r.status == 403 and "Set-Cookie" not in r.headers


async def test_the_named_embed_shows_once_the_others_stay_held(site: TestServer) -> None:
    r, held = await get(site, "/visit")
    assert iframes(held) == []
    assert placeholders(held) == ["cp-media-1", "cp-media-2", "cp-social-1"]
    assert "Set-Cookie" not in r.headers

    r, body = await get(site, "/visit", f"{REFUSED}; {once_cookie('cp-media-1', '/visit')}")
    assert iframes(body) == [
        f'<iframe width="560" height="315" src="{YOUTUBE}" title="video" id="cp-media-1">'
    ]
    assert placeholders(body) == ["cp-media-2", "cp-social-1"]
    assert r.headers.getall("Set-Cookie") == [once.expire_header("consent")]
    assert r.headers["X-Consent-Actions"].startswith("catalogue=once*1, catalogue=placeholder*1")
    assert "private" in r.headers["Cache-Control"]

    # The map, by its number: the video is held again (the cookie names one embed).
    r, body = await get(site, "/visit", f"{REFUSED}; {once_cookie('cp-media-2', '/visit')}")
    assert [MAPS.replace("&", "&amp;") in f for f in iframes(body)] == [True]
    assert placeholders(body) == ["cp-media-1", "cp-social-1"]


async def test_a_rule_held_embed_loads_once_too(site: TestServer) -> None:
    """Facebook's post iframe is held by the hand-written rule (social): "Load this"
    shows it, and the catalogue (which lists facebook.com) lets it be."""
    r, body = await get(site, "/visit", f"{REFUSED}; {once_cookie('cp-social-1', '/visit')}")
    (frame,) = iframes(body)
    assert 'id="post"' in frame and "www.facebook.com/plugins/post.php" in frame
    assert '<span id="cp-social-1"></span><iframe' in body  # it had an id of its own
    assert placeholders(body) == ["cp-media-1", "cp-media-2"]
    assert "facebook=once*1" in r.headers["X-Consent-Actions"]


async def test_not_on_another_page_nor_with_consent_given(site: TestServer) -> None:
    cookie = once_cookie("cp-media-1", "/visit")
    for path in ("/visit?x=1", "/visit/", "/other"):
        r, body = await get(site, path, f"{REFUSED}; {cookie}")
        assert iframes(body) == [], path
        assert "Set-Cookie" not in r.headers, path  # left to expire: it is not this page's
    granted = REFUSED.replace("media=0", "media=1")
    r, body = await get(site, "/visit", f"{granted}; {cookie}")
    assert len(iframes(body)) == 2 and placeholders(body) == ["cp-social-1"]


async def test_the_once_page_is_never_cached_nor_served_from_the_cache(site: TestServer) -> None:
    await get(site, "/visit")
    r, _ = await get(site, "/visit")
    assert r.headers["X-Consent-Actions"].endswith("cache=hit")
    r, body = await get(site, "/visit", f"{REFUSED}; {once_cookie('cp-media-1', '/visit')}")
    assert r.headers["X-Consent-Actions"].endswith("cache=bypass")
    assert len(iframes(body)) == 1
    r, body = await get(site, "/visit")
    assert r.headers["X-Consent-Actions"].endswith("cache=hit") and iframes(body) == []


async def test_always_allow_comes_back_to_the_embed(site: TestServer) -> None:
    """After "Always allow" (media granted at the map's placeholder), the map is
    marked with its placeholder's id, so the browser lands on it; a social widget
    granted at its placeholder is counted once (by its rule), not again by the
    catalogue."""
    granted = REFUSED.replace("media=0", "media=1")
    r, body = await get(site, "/visit", f"{granted}; consent-return=cp-media-2")
    assert [('id="cp-media-2"' in f) for f in iframes(body)] == [False, True]
    assert 'src="https://www.google.com/maps/embed' in iframes(body)[1]
    assert r.headers.getall("Set-Cookie") == ["consent-return=; Path=/; Max-Age=0"]
    social = REFUSED.replace("social=0", "social=1")
    r, body = await get(site, "/visit", f"{social}; consent-return=cp-social-1")
    assert '<span id="cp-social-1"></span><iframe src="https://www.facebook.com/' in body
    assert placeholders(body) == ["cp-media-1", "cp-media-2"]
