"""Time to first byte of rewritten pages: the head of a page whose origin pauses
leaves at once; a page that arrives whole is answered whole (Content-Length, exact
X-Consent-Actions); a decoding error after the first byte cuts the connection."""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from proxy.consent.rules import load_rules

ROOT = Path(__file__).resolve().parent.parent.parent
RULES = load_rules(ROOT / "rules")
MakeProxy = Callable[..., Awaitable[TestServer]]
Serve = Callable[..., Awaitable[TestServer]]

HEAD = (
    b"<!doctype html><html><head><title>Slow page</title>"
    b'<link rel="stylesheet" href="/site.css">' + b"<!-- early -->" * 200 + b"</head>"
)
TRACKER = b'<script src="https://www.google-analytics.com/analytics.js"></script>'
BODY = b"<body><h1>Rendered late</h1>" + TRACKER + b"<p>done</p></body></html>"
PAUSE = 2.0


class PausingOrigin:
    """Sends the head of a page, pauses ``PAUSE`` seconds (a slow database query), then
    the body; remembers when the pause ended."""

    def __init__(self) -> None:
        self.resumed_at = 0.0

    async def paused(self, request: web.Request) -> web.StreamResponse:
        out = web.StreamResponse(headers={"Content-Type": "text/html; charset=utf-8"})
        await out.prepare(request)
        await out.write(HEAD)
        await asyncio.sleep(PAUSE)
        self.resumed_at = asyncio.get_running_loop().time()
        await out.write(BODY)
        await out.write_eof()
        return out

    async def whole(self, request: web.Request) -> web.Response:
        return web.Response(body=HEAD + BODY, content_type="text/html", charset="utf-8")

    async def gzip_broken_later(self, request: web.Request) -> web.StreamResponse:
        out = web.StreamResponse(
            headers={"Content-Type": "text/html; charset=utf-8", "Content-Encoding": "gzip"}
        )
        await out.prepare(request)
        comp = zlib.compressobj(6, zlib.DEFLATED, 31)
        await out.write(comp.compress(HEAD) + comp.flush(zlib.Z_SYNC_FLUSH))
        await asyncio.sleep(0.5)
        await out.write(b"\xff" * 64)  # not deflate data
        await out.write_eof()
        return out


@pytest.fixture
async def setup(aiohttp_server: Serve, make_proxy: MakeProxy) -> tuple[PausingOrigin, TestServer]:
    origin = PausingOrigin()
    app = web.Application()
    app.router.add_get("/paused", origin.paused)
    app.router.add_get("/whole", origin.whole)
    app.router.add_get("/broken", origin.gzip_broken_later)
    server = await aiohttp_server(app)
    proxy = await make_proxy(
        str(server.make_url("/")), rewrite=None, ruleset=RULES, read_timeout=10.0
    )
    return origin, proxy


async def test_head_leaves_before_the_origins_pause_ends(
    setup: tuple[PausingOrigin, TestServer],
) -> None:
    origin, proxy = setup
    loop = asyncio.get_running_loop()
    async with aiohttp.ClientSession() as s:
        async with s.get(proxy.make_url("/whole")) as r:  # the same visitor, once before
            await r.read()
        async with s.get(proxy.make_url("/paused")) as r:
            first = await r.content.readany()
            first_at = loop.time()
            rest = await r.read()
    body = first + rest
    assert first_at < origin.resumed_at, "the head waited for the pause"
    assert first and HEAD.startswith(first[:30])
    assert b"Rendered late" in body and b"google-analytics" not in body
    assert "Content-Length" not in r.headers
    assert r.headers["X-Consent-Actions"].startswith("none; partial")


async def test_whole_page_gets_its_length_and_exact_actions(
    setup: tuple[PausingOrigin, TestServer],
) -> None:
    _, proxy = setup
    async with aiohttp.ClientSession() as s:
        async with s.get(proxy.make_url("/whole"), headers={"Accept-Encoding": "identity"}) as r:
            body = await r.read()
    assert r.headers["Content-Length"] == str(len(body))
    assert r.headers["X-Consent-Actions"].startswith("google-analytics=remove*1")
    assert "partial" not in r.headers["X-Consent-Actions"]
    assert b"google-analytics" not in body and b"Rendered late" in body


async def test_decoding_error_after_the_first_byte_cuts_the_connection(
    setup: tuple[PausingOrigin, TestServer],
) -> None:
    _, proxy = setup
    async with aiohttp.ClientSession() as s:
        async with s.get(proxy.make_url("/broken")) as r:
            assert r.status == 200  # the head left before the bad bytes came
            with pytest.raises(aiohttp.ClientPayloadError):
                await r.read()
