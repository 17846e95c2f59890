"""The catalogue through the real proxy: trackers of vendors no hand-written rule knows
are removed (or held behind a placeholder) for a refusing visitor, in the hostile URL
forms a browser still reads; an accepting visitor gets the origin's bytes."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer

from proxy.consent.model import OPTIONAL
from proxy.consent.rules import build_ruleset, load_rules, read_dir
from tests.consent.test_enforce import without_google_default
from tests.support import ROOT

RULES = load_rules(ROOT / "rules")
ALL = "consent=v=1&" + "&".join(f"{c}=1" for c in OPTIONAL)
NONE = "consent=v=1&" + "&".join(f"{c}=0" for c in OPTIONAL)
MakeProxy = Callable[..., Awaitable[TestServer]]

# Each: a tracker of a catalogued vendor with no hand-written rule, and the host that
# must not be left in the page (written so no other element names it).
TRACKERS = [
    ('<script async src="https://widgets.outbrain.com/outbrain.js"></script>', "outbrain.com"),
    (
        "<script>window._taboola = window._taboola || [];"
        "(function(){var e=document.createElement('script');"
        "e.src='//cdn.taboola.com/libtrc/site/loader.js';"
        "document.head.appendChild(e)})();</script>",
        "taboola.com",
    ),
    ('<img src="https://static.criteo.net/images/pixel.gif" alt="">', "criteo.net"),
    ('<script src="//static.chartbeat.com/js/chartbeat.js"></script>', "chartbeat.com"),
    ('<a href="/story" ping="https://pixel.parsely.com/plogger/">story</a>', "parsely.com"),
    ('<script src="https://cdn.optimizely.com/js/12345.js"></script>', "optimizely.com"),
    # The hostile forms: a tab in the host, backslashes, no slashes on an http page,
    # an entity-encoded host, upper case and a srcset candidate.
    ('<img src="https://ad.double\tclick.net/x.gif" alt="">', "double\tclick"),
    ('<img src="https:\\\\ad.doubleclick.net\\x.gif" alt="">', "ad.doubleclick.net"),
    ('<img src="https:ad.doubleclick.net/y.gif" alt="">', "ad.doubleclick.net/y"),
    ('<img src="https://ad.&#100;oubleclick.net/z.gif" alt="">', "&#100;oubleclick"),
    ('<img src="/own.png" srcset="/own2.png 2x, HTTPS://SB.SCORECARDRESEARCH.COM/b 3x">', "SB."),
]
EMBED = (
    '<iframe width="560" height="315" src="https://www.youtube.com/embed/dQw4w9WgXcQ"'
    " allowfullscreen></iframe>"
)
PAGE = (
    "<!DOCTYPE html><html><head><title>News</title>"
    + TRACKERS[0][0]
    + TRACKERS[1][0]
    + "</head><body><h1>Today</h1><p>Text about doubleclick.net stays.</p>"
    + "".join(t for t, _ in TRACKERS[2:])
    + EMBED
    + '<img src="/logo.png" alt="logo"></body></html>'
).encode()


async def origin(aiohttp_server: Callable[..., Awaitable[TestServer]]) -> TestServer:
    async def page(request: web.Request) -> web.StreamResponse:
        return web.Response(body=PAGE, content_type="text/html")

    app = web.Application()
    app.router.add_get("/", page)
    return await aiohttp_server(app)


async def get(proxy: TestServer, cookie: str) -> tuple[bytes, Any]:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as s:
        async with s.get(proxy.make_url("/"), headers={"Cookie": cookie}) as r:
            return await r.read(), r.headers


async def test_refusing_visitor_loses_every_catalogued_tracker(
    aiohttp_server: Callable[..., Awaitable[TestServer]], make_proxy: MakeProxy, tmp_path: Path
) -> None:
    site = await origin(aiohttp_server)
    proxy = await make_proxy(str(site.make_url("/")), rewrite=None, ruleset=RULES)
    body, headers = await get(proxy, NONE)
    for tracker, left in TRACKERS:
        assert left.encode() not in body, f"{tracker} is still in the page"
    assert b"youtube.com" not in body
    assert b'style="width:560px;min-height:315px"' in body  # the placeholder, sized
    assert b'data-consent-placeholder="catalogue"' in body
    assert b'name="media" value="1"' in body  # its button grants media
    assert b'<a href="/story">story</a>' in body  # the link stays, its ping goes
    assert b"Text about doubleclick.net stays." in body
    assert b'<img src="/logo.png" alt="logo">' in body
    actions = headers["X-Consent-Actions"]
    assert "catalogue=placeholder*1" in actions
    assert "catalogue=remove*" in actions and "catalogue=strip*1" in actions
    lines = (tmp_path / "decisions.log").read_text().splitlines()
    logged = [a for line in lines for a in json.loads(line).get("actions", [])]
    assert {"rule": "catalogue", "action": "placeholder", "count": 1} in logged


async def test_accepting_visitor_gets_the_origins_bytes(
    aiohttp_server: Callable[..., Awaitable[TestServer]], make_proxy: MakeProxy
) -> None:
    site = await origin(aiohttp_server)
    proxy = await make_proxy(str(site.make_url("/")), rewrite=None, ruleset=RULES)
    body, headers = await get(proxy, ALL)
    assert without_google_default(body) == PAGE  # Consent Mode's default: test_consent_mode
    assert headers["X-Consent-Actions"].startswith("none")


async def test_media_alone_granted_keeps_the_embed(
    aiohttp_server: Callable[..., Awaitable[TestServer]], make_proxy: MakeProxy
) -> None:
    site = await origin(aiohttp_server)
    proxy = await make_proxy(str(site.make_url("/")), rewrite=None, ruleset=RULES)
    body, _ = await get(proxy, "consent=v=1&media=1")
    assert EMBED.encode() in body
    assert b"outbrain.com" not in body


async def test_catalogue_switched_off_by_the_operator(
    aiohttp_server: Callable[..., Awaitable[TestServer]], make_proxy: MakeProxy
) -> None:
    files = read_dir(ROOT / "rules")
    files["catalogue.toml"] = files["catalogue.toml"].replace("enabled = true", "enabled = false")
    off = build_ruleset(files, "rules")
    assert off.catalogue is not None and not off.catalogue.enabled
    site = await origin(aiohttp_server)
    proxy = await make_proxy(str(site.make_url("/")), rewrite=None, ruleset=off)
    body, headers = await get(proxy, NONE)
    assert b"widgets.outbrain.com" in body and b"youtube.com/embed" in body
    assert "catalogue" not in headers["X-Consent-Actions"]


async def test_the_sites_own_entity_is_never_a_third_party(
    aiohttp_server: Callable[..., Awaitable[TestServer]], make_proxy: MakeProxy
) -> None:
    """A publisher the catalogue files under a tracking category (Outbrain's own site,
    here) keeps its own hosts: by the request's Host, or named in ``first_party``."""
    site = await origin(aiohttp_server)
    proxy = await make_proxy(str(site.make_url("/")), rewrite=None, ruleset=RULES)
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as s:
        headers = {"Cookie": NONE, "Host": "www.outbrain.com"}
        async with s.get(proxy.make_url("/"), headers=headers) as r:
            own = await r.read()
    assert b"widgets.outbrain.com/outbrain.js" in own  # its own entity's script stays
    assert b"cdn.taboola.com" not in own and b"youtube.com" not in own  # others go
    named = await make_proxy(
        str(site.make_url("/")), rewrite=None, ruleset=RULES, first_party=("outbrain.com",)
    )
    body, _ = await get(named, NONE)
    assert b"widgets.outbrain.com/outbrain.js" in body
    assert b"cdn.taboola.com" not in body
    plain, _ = await get(proxy, NONE)
    assert b"widgets.outbrain.com" not in plain
