"""No visitor waits for compilation: what the rewriter looks for is compiled once per
rules generation, before the generation serves (at start-up, and in the reload), and
shared by every consent variant. Counted, not timed: the process's compilations of
selector programs and skip patterns stay the same across requests of consent variants
never seen before, after start-up and after a reload."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer

from proxy.consent.model import OPTIONAL
from proxy.html import compilations

MakeProxy = Callable[..., Awaitable[TestServer]]
Serve = Callable[..., Awaitable[TestServer]]

GA = b'<script src="https://www.google-analytics.com/analytics.js"></script>'
FB = b'<iframe src="https://www.facebook.com/plugins/like.php?href=x"></iframe>'
ACME = b'<script src="https://widgets.acme-chat.example/w.js"></script>'
PAGE = (
    b"<!doctype html><html><head>" + GA + b"</head><body><p>hi</p>" + FB + ACME + b"</body></html>"
)
# A rule none of the built-in ones is like: the reload must compile a new program.
ACME_RULE = """name = "Acme chat"
category = "social"

[[block]]
selector = "script[src]"
url_hosts = ["acme-chat.example"]
"""


def cookie(*granted: str) -> str:
    return "consent=v=1&" + "&".join(f"{c}={int(c in granted)}" for c in OPTIONAL)


# (Cookie header, what must be gone, what must stay): one consent variant each.
VARIANTS = [
    ("", [GA, FB], []),  # undecided
    (cookie(), [GA, FB], []),
    (cookie("analytics"), [FB], [GA]),
    (cookie("social"), [GA], [FB]),
    (cookie("analytics", "advertising"), [FB], [GA]),
]


async def get(proxy: TestServer, path: str, cookie_header: str) -> bytes:
    headers = {"Cookie": cookie_header} if cookie_header else {}
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as s:
        async with s.get(proxy.make_url(path), headers=headers) as r:
            assert r.status == 200
            return await r.read()


async def generation(proxy: TestServer) -> str:
    async with aiohttp.ClientSession() as s:
        async with s.get(proxy.make_url("/_consent/health")) as r:
            rules: dict[str, str] = (await r.json())["rules"]
    return rules["generation"]


async def test_no_variant_compiles_on_a_request(
    aiohttp_server: Serve, make_proxy: MakeProxy, tmp_path: Path
) -> None:
    async def page(request: web.Request) -> web.Response:
        return web.Response(body=PAGE, content_type="text/html", charset="utf-8")

    app = web.Application()
    app.router.add_get("/{name}", page)
    origin = await aiohttp_server(app)
    rules = tmp_path / "rules"
    rules.mkdir()
    proxy = await make_proxy(
        str(origin.make_url("/")), rewrite=None, ruleset=None, rules=str(rules)
    )
    before = compilations()
    for n, (header, gone, kept) in enumerate(VARIANTS):
        body = await get(proxy, f"/start-{n}", header)
        assert all(g not in body for g in gone) and all(k in body for k in kept), header
    assert compilations() == before, "a request compiled"

    # A new rule: a new program, compiled in the reload before the generation serves.
    first = await generation(proxy)
    (rules / "acme-chat.toml").write_text(ACME_RULE)
    for _ in range(200):
        await asyncio.sleep(0.1)
        if await generation(proxy) != first:
            break
    else:
        raise AssertionError("the rules were not reloaded")
    assert compilations() > before, "the reload compiled nothing: nothing was new?"
    before = compilations()
    for n, (header, gone, _) in enumerate(VARIANTS):
        body = await get(proxy, f"/reloaded-{n}", header)
        assert all(g not in body for g in gone) and (ACME not in body) == ("social=1" not in header)
    assert compilations() == before, "a request compiled after the reload"
