"""Pages in any character encoding and with any Content-Type, through the real proxy
in front of a raw origin that sends exactly the headers and bytes given: a browser
must never get a tracker the refusing visitor's rules remove, whatever the page's
encoding (UTF-16, UTF-32, ISO-2022-JP; by BOM, header or <meta>) or its type
(missing, empty, twice, encoded). Pure parts: tests/html/test_charset.py."""

from __future__ import annotations

import asyncio
import gzip
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from multidict import CIMultiDictProxy

from tests.consent.test_enforce import ALL, RULES, without_google_default
from tests.support import oracle, trackers
from tests.support.sockets import raw_request, status_of

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


def leaks(text: str) -> list[str]:
    return trackers.leaks(oracle.parse(text.lstrip("\ufeff").encode("utf-8")))


WIDE = {
    "/utf16le-bom": ("utf-16-le", b"\xff\xfe", "text/html"),
    "/utf16be-header": ("utf-16-be", b"", "text/html; charset=UTF-16BE"),
    "/utf16-bom-beats-header": ("utf-16-be", b"\xfe\xff", "text/html; charset=utf-8"),
    "/utf32le-bom": ("utf-32-le", b"\xff\xfe\x00\x00", "text/html"),
}


async def test_wide_pages_lose_their_trackers_and_keep_their_encoding(
    serve: Callable[[Routes], Awaitable[TestServer]],
) -> None:
    original = page()
    assert len(leaks(original)) == 2
    routes = {
        path: ([f"Content-Type: {ctype}"], bom + original.encode(codec))
        for path, (codec, bom, ctype) in WIDE.items()
    }
    proxy = await serve(routes)
    for path, (codec, bom, ctype) in WIDE.items():
        status, headers, body = await get(proxy, path)
        assert status == 200, path
        assert headers["Content-Type"] == ctype
        assert body.startswith(bom), path  # the browser reads it as before
        text = body[len(bom) :].decode(codec)
        assert leaks(text) == [], path
        assert "Café ✓" in text and "Hello 𝄞" in text and text.count("Köln 😀") == 2500
        assert 'id="cp-banner"' in text  # inserted in the page's encoding
        assert "google-analytics=remove" in headers["X-Consent-Actions"]
        # A visitor who accepted everything gets the origin's page, in its encoding,
        # with the Consent Mode default for Google's tags first in its head.
        _, _, granted = await get(proxy, path, ALL)
        assert granted.startswith(bom), path
        text = granted[len(bom) :].decode(codec)
        assert without_google_default(text.encode()) == original.encode(), path


@pytest.mark.parametrize(
    ("ctype", "body", "removed"),
    [
        # BOM > header: the BOM says UTF-16LE, the header UTF-8
        ("text/html; charset=utf-8", b"\xff\xfe" + page().encode("utf-16-le"), True),
        # header > meta: the header says UTF-16LE, the <meta> UTF-8
        (
            "text/html; charset=utf-16le",
            page('<meta charset="utf-8">').encode("utf-16-le"),
            True,
        ),
        # meta > default: ISO-2022-JP spells a script that only a decoder sees
        (
            "text/html",
            page('<meta charset="iso-2022-jp">').encode("iso2022_jp", "xmlcharrefreplace"),
            True,
        ),
        # <meta charset=utf-16> in ASCII bytes means UTF-8
        ("text/html", page('<meta charset="utf-16">').encode("utf-8"), True),
    ],
    ids=["bom-over-header", "header-over-meta", "meta-over-default", "meta-utf16-is-utf8"],
)
async def test_charset_precedence(
    serve: Callable[[Routes], Awaitable[TestServer]], ctype: str, body: bytes, removed: bool
) -> None:
    hidden = b"<scr\x1b(Bipt src='https://www.google-analytics.com/ga.js'></script>"
    if b"iso-2022-jp" in body:
        body = body.replace(b"<h1>", hidden + b"<h1>")
    proxy = await serve({"/": ([f"Content-Type: {ctype}"], body)})
    status, headers, out = await get(proxy, "/")
    assert status == 200
    assert b"google-analytics" not in out and "google-analytics".encode("utf-16-le") not in out
    assert "google-analytics=remove" in headers["X-Consent-Actions"]


async def test_header_charset_over_meta_keeps_bytes_a_browser_reads_as_text(
    serve: Callable[[Routes], Awaitable[TestServer]],
) -> None:
    """UTF-8 in the header, ISO-2022-JP in a <meta>: the browser reads UTF-8, where
    ``<scr ESC ( B ipt>`` is no script; the proxy leaves those bytes as they came."""
    hidden = b"<p><scr\x1b(Bipt src='https://www.google-analytics.com/ga.js'></script></p>"
    body = b'<html><head><meta charset="iso-2022-jp"></head><body>' + hidden + b"</body></html>"
    proxy = await serve({"/": (["Content-Type: text/html; charset=utf-8"], body)})
    _, _, out = await get(proxy, "/")
    assert hidden in out


async def test_undecodable_wide_pages_fail_closed(
    serve: Callable[[Routes], Awaitable[TestServer]],
) -> None:
    lone = "\ud800".encode("utf-16-le", "surrogatepass")
    short = b"\xff\xfe" + page().encode("utf-16-le")[:2000] + lone + "<p>x</p>".encode("utf-16-le")
    # A tracker past the first 64 KB (the page has begun), then a lone surrogate.
    long = b"\xff\xfe" + page(body=FILLER + GA).encode("utf-16-le")
    bad_at = long.index(GA.encode("utf-16-le"), 1000) + 1000
    long = long[:bad_at] + lone + long[bad_at:]
    odd = page(body=FILLER + GA).encode("utf-16-le")[:-1]  # ends inside a code unit
    unlabelled = page().encode().replace(b"<h1>", b"<h1>\x1b$B$3$s\x1b(B")
    proxy = await serve(
        {
            "/short": (["Content-Type: text/html"], short),
            "/long": (["Content-Type: text/html"], long),
            "/odd": (["Content-Type: text/html; charset=utf-16le"], odd),
            "/unlabelled-jis": (["Content-Type: text/html"], unlabelled),
        }
    )
    for path in ("/short", "/unlabelled-jis"):
        status, _, out = await get(proxy, path)
        assert status == 502, path
        assert b"google" not in out and "google".encode("utf-16-le") not in out
    for path in ("/long", "/odd"):  # the page had begun: the connection is cut
        raw = await raw_request(proxy, f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        assert status_of(raw) == 200
        assert not raw.endswith(b"0\r\n\r\n")
        received = dechunk(raw.partition(b"\r\n\r\n")[2]).removeprefix(b"\xff\xfe")
        text = received.decode("utf-16-le", "replace")
        # How much arrives depends on when the cut lands: none of it is a tracker.
        assert text.count("Köln") > 100 and leaks(text) == []


def dechunk(data: bytes) -> bytes:
    """The chunks' data of a chunked body, as far as it goes."""
    out = []
    while data:
        size_line, _, rest = data.partition(b"\r\n")
        try:
            size = int(size_line, 16)
        except ValueError:
            break
        out.append(rest[:size])
        data = rest[size + 2 :]
    return b"".join(out)


XHTML = (
    '<?xml version="1.0" encoding="utf-8"?>\n'
    '<html xmlns="http://www.w3.org/1999/xhtml"><head><title>XHTML</title>'
    '<script src="https://www.google-analytics.com/analytics.js"/>'
    '<script src="/own.js"/>'
    "</head><body><h1>Caf\u00e9</h1>"
    '<div class="fb-like" data-href="https://example.com/"></div>'
    "<script src='https://www.googletagmanager.com/gtm.js?id=G'></script>"
    "<p>kept</p></body></html>"
)


async def test_xhtml_is_rewritten_like_html(
    serve: Callable[[Routes], Awaitable[TestServer]],
) -> None:
    proxy = await serve({"/": (["Content-Type: application/xhtml+xml"], XHTML.encode())})
    assert len(xml_trackers(ET.fromstring(XHTML.encode()))) == 3
    status, headers, out = await get(proxy, "/")
    assert status == 200 and headers["Content-Type"] == "application/xhtml+xml"
    tree = ET.fromstring(out)  # still XML: a browser shows it, banner and placeholder included
    assert xml_trackers(tree) == []
    text = out.decode()
    assert "/own.js" in text and "<p>kept</p>" in text
    assert 'id="cp-banner"' in text and "cp-ph" in text


def xml_trackers(root: ET.Element) -> list[str]:
    """What an XML parser (a browser reading XHTML) finds that loads from a tracker."""
    found = []
    for el in root.iter():
        src = el.get("src")
        if src is not None and trackers.tracker_host(src):
            found.append(src)
        elif "fb-like" in el.get("class", "").split():  # Facebook's widget, by its class
            found.append("fb-like")
    return found


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
