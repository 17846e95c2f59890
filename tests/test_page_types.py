"""Pages with any Content-Type, through the real proxy in front of a raw origin that
sends exactly the headers and bytes given: a browser must never get a tracker the
refusing visitor's rules remove, whatever the page's type (missing, empty, twice,
encoded). Pure parts: tests/test_mime.py."""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from multidict import CIMultiDictProxy

from tests.test_enforce import RULES

MakeProxy = Callable[..., Awaitable[TestServer]]
GA = '<script src="https://www.google-analytics.com/analytics.js"></script>'
GTM = "<script src='https://www.googletagmanager.com/gtm.js?id=GTM-1'></script>"
FILLER = "<p>Grüße aus Köln 😀 — filler text</p>\n" * 2500  # about 100 KB: streamed


def page(head: str = "", body: str = "") -> str:
    return (
        f"<!doctype html><html><head>{head}<title>Café ✓</title>{GA}</head>"
        f"<body><h1>Hello 𝄞</h1>{body}{FILLER}{GTM}</body></html>"
    )


Routes = dict[str, tuple[list[str], bytes]]


async def raw_origin(routes: Routes) -> tuple[asyncio.Server, str]:
    """An origin that answers ``GET /name`` with the header lines and body given,
    in 1000-byte writes (so the proxy reads them in pieces), then closes."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            path = head.split(b" ", 2)[1].decode()
            lines, body = routes[path]
            framing = [f"Content-Length: {len(body)}", "Connection: close"]
            writer.write(("\r\n".join(["HTTP/1.1 200 OK", *lines, *framing]) + "\r\n\r\n").encode())
            for i in range(0, len(body), 1000):
                writer.write(body[i : i + 1000])
                await writer.drain()
            writer.close()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    return server, f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"


@pytest.fixture
async def serve(make_proxy: MakeProxy) -> AsyncIterator[Callable[[Routes], Awaitable[TestServer]]]:
    servers: list[asyncio.Server] = []

    async def start(routes: Routes) -> TestServer:
        server, upstream = await raw_origin(routes)
        servers.append(server)
        return await make_proxy(upstream, rewrite=None, ruleset=RULES)

    yield start
    for server in servers:
        server.close()


async def get(
    proxy: TestServer, path: str, cookie: str | None = None
) -> tuple[int, CIMultiDictProxy[str], bytes]:
    headers = {"Accept-Encoding": "identity"}
    if cookie:
        headers["Cookie"] = cookie
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as s:
        async with s.get(proxy.make_url(path), headers=headers) as r:
            return r.status, r.headers, await r.read()


# -- Content-Type -------------------------------------------------------------------------

HTML = page().encode()


@pytest.mark.parametrize(
    ("lines", "body", "sent"),
    [
        ([], HTML, None),  # sniffed: leaves with no type, as it came (not octet-stream)
        ([], b"<a href='/'>home</a>" + GA.encode(), None),
        (["Content-Type:"], HTML, None),  # empty: the browser sniffs, so does the proxy
        (["Content-Type: image/png", "Content-Type: text/html"], HTML, "text/html"),
        (["Content-Type: text/html", "Content-Type: image/png"], HTML, "image/png"),
        (["Content-Type: image/png, text/html; charset=utf-8"], HTML, "text/html;charset=utf-8"),
        (["Content-Type: unknown/unknown"], HTML, "unknown/unknown"),
        (["Content-Type: */*"], HTML, "*/*"),
        (["Content-Encoding: gzip"], gzip.compress(HTML), None),
    ],
    ids=[
        "none",
        "a-tag",
        "empty",
        "png-then-html",
        "html-then-png",
        "list",
        "unknown",
        "star",
        "gzip",
    ],
)
async def test_whatever_the_type_says_html_is_rewritten_and_one_type_leaves(
    serve: Callable[[Routes], Awaitable[TestServer]],
    lines: list[str],
    body: bytes,
    sent: str | None,
) -> None:
    proxy = await serve({"/": (lines, body)})
    status, headers, out = await get(proxy, "/")
    assert status == 200
    assert b"google" not in out
    assert headers.getall("Content-Type", []) == ([sent] if sent else [])


async def test_untyped_pages_that_cannot_be_read_fail_closed(
    serve: Callable[[Routes], Awaitable[TestServer]],
) -> None:
    """A coding the proxy does not decode, on a body a browser would show as HTML."""
    proxy = await serve({"/": (["Content-Encoding: compress"], HTML)})
    status, _, out = await get(proxy, "/")
    assert status == 502 and b"google" not in out


async def test_untyped_non_html_passes_with_no_type_added(
    serve: Callable[[Routes], Awaitable[TestServer]],
) -> None:
    png = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 10
    proxy = await serve({"/": ([], png)})
    status, headers, out = await get(proxy, "/")
    assert status == 200 and out == png
    assert "Content-Type" not in headers
