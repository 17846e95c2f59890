"""The reverse proxy end to end: a real origin behind the real proxy on loopback."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
import brotli
import pytest
from aiohttp.test_utils import TestServer

from tests.support.origin import PAGE, gzip_bomb, headers_of
from tests.support.sockets import canned_origin, raw_request, status_of

MakeProxy = Callable[..., Awaitable[TestServer]]


def url(server: TestServer, path: str) -> str:
    return str(server.make_url(path))


async def test_forwards_method_path_query_and_body(proxy: TestServer) -> None:
    async with aiohttp.ClientSession() as s:
        async with s.put(url(proxy, "/echo/a%2Fb?x=1&y=%20"), data=b"z" * 1000) as r:
            got = await r.json()
    assert got["method"] == "PUT"
    assert got["path_qs"] == "/echo/a%2Fb?x=1&y=%20"
    assert got["body_length"] == 1000


async def test_hop_by_hop_removed_before_forwarding_headers_added(proxy: TestServer) -> None:
    request = (
        b"GET /echo HTTP/1.1\r\nHost: site.example\r\n"
        b"Connection: keep-alive, X-Forwarded-For, X-Secret, close\r\n"
        b"X-Secret: s\r\nKeep-Alive: timeout=5\r\nTE: trailers\r\nUpgrade: h2c\r\n"
        b"Proxy-Authorization: Basic eA==\r\nX-Forwarded-For: 6.6.6.6\r\n\r\n"
    )
    response = await raw_request(proxy, request)
    assert status_of(response) == 200
    seen = headers_of(response.partition(b"\r\n\r\n")[2])
    for name in ("x-secret", "keep-alive", "te", "upgrade", "proxy-authorization"):
        assert name not in seen
    assert seen["x-forwarded-for"] == ["127.0.0.1"]
    assert seen["x-forwarded-host"] == ["site.example"]
    assert seen["x-forwarded-proto"] == ["http"]
    assert seen["via"] == ["1.1 consent-proxy"]
    assert seen["host"] != ["site.example"]


async def test_no_headers_added_but_forwarding_ones(proxy: TestServer) -> None:
    """What the client did not send, the origin does not get: no default User-Agent,
    Accept or Content-Type from the proxy's HTTP client."""
    request = b"POST /echo HTTP/1.1\r\nHost: site.example\r\nContent-Length: 3\r\n\r\nabc"
    response = await raw_request(proxy, request)
    seen = headers_of(response.partition(b"\r\n\r\n")[2])
    added = {"x-forwarded-for", "x-forwarded-host", "x-forwarded-proto", "via"}
    assert set(seen) == {"host", "content-length", "accept-encoding", *added}
    assert seen["content-length"] == ["3"]


@pytest.fixture
async def canned(
    make_proxy: MakeProxy,
) -> AsyncIterator[Callable[[bytes], Awaitable[tuple[TestServer, asyncio.Server]]]]:
    servers: list[asyncio.Server] = []

    async def start(response: bytes) -> tuple[TestServer, asyncio.Server]:
        server, upstream = await canned_origin(response)
        servers.append(server)
        return await make_proxy(upstream), server

    yield start
    for server in servers:
        server.close()


async def test_response_hop_by_hop_and_repeated_headers(
    canned: Callable[[bytes], Awaitable[tuple[TestServer, asyncio.Server]]],
) -> None:
    proxy, _ = await canned(
        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nConnection: close, X-Internal\r\n"
        b"X-Internal: secret\r\nKeep-Alive: timeout=1\r\nProxy-Authenticate: Basic\r\n"
        b"Set-Cookie: a=1\r\nSet-Cookie: b=2\r\nLink: <x>\r\nSet-Cookie: c=3\r\n"
        b"Content-Length: 2\r\n\r\nok"
    )
    async with aiohttp.ClientSession() as s, s.get(url(proxy, "/")) as r:
        assert await r.read() == b"ok"
        assert "X-Internal" not in r.headers
        assert "Keep-Alive" not in r.headers
        assert "Proxy-Authenticate" not in r.headers
        assert r.headers.getall("Set-Cookie") == ["a=1", "b=2", "c=3"]
        assert r.headers.getall("Link") == ["<x>"]


async def test_xff_from_untrusted_peer_is_overwritten(proxy: TestServer) -> None:
    async with aiohttp.ClientSession() as s:
        async with s.get(
            url(proxy, "/echo"),
            headers={
                "X-Forwarded-For": "1.2.3.4",
                "X-Real-IP": "1.2.3.4",
                "Forwarded": "for=1.2.3.4",
                "X-Forwarded-Proto": "https",
                "X-Forwarded-Host": "evil.example",
            },
        ) as r:
            seen = headers_of(await r.read())
    assert seen["x-forwarded-for"] == ["127.0.0.1"]
    assert "x-real-ip" not in seen and "forwarded" not in seen
    assert seen["x-forwarded-proto"] == ["http"]
    assert seen["x-forwarded-host"] != ["evil.example"]


async def test_trusted_proxies_give_rightmost_untrusted(
    origin: TestServer, make_proxy: MakeProxy
) -> None:
    import ipaddress

    proxy = await make_proxy(
        url(origin, "/"),
        trusted_proxies=(ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("10.0.0.0/8")),
    )
    async with aiohttp.ClientSession() as s:
        async with s.get(
            url(proxy, "/echo"),
            headers={
                "X-Forwarded-For": "6.6.6.6, 203.0.113.9, 10.1.1.1",
                "X-Forwarded-Proto": "https",
            },
        ) as r:
            seen = headers_of(await r.read())
    assert seen["x-forwarded-for"] == ["203.0.113.9"]
    assert seen["x-forwarded-proto"] == ["https"]


@pytest.mark.parametrize(
    ("request_line", "status"),
    [
        (b"GET http://169.254.169.254/latest HTTP/1.1", 400),
        (b"CONNECT 169.254.169.254:80 HTTP/1.1", 405),
        (b"OPTIONS * HTTP/1.1", 400),
    ],
)
async def test_never_leaves_the_origin(
    proxy: TestServer, origin: TestServer, request_line: bytes, status: int
) -> None:
    response = await raw_request(proxy, request_line + b"\r\nHost: 169.254.169.254\r\n\r\n")
    assert status_of(response) == status
    body = response.partition(b"\r\n\r\n")[2]
    assert b"169.254" not in body
    assert b"<h1>%d " % status in body  # the generic page, not aiohttp's


async def test_double_slash_path_goes_to_origin(proxy: TestServer) -> None:
    response = await raw_request(proxy, b"GET //evil.example/echo HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status_of(response) == 404  # the origin's own 404: it was asked for //evil.example/echo


SMUGGLED = b"GET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n"
REFUSED_REQUESTS = {
    "dup-host": b"GET /echo HTTP/1.1\r\nHost: a.example\r\nHost: b.example\r\n\r\n",
    "nul-host": b"GET /echo HTTP/1.1\r\nHost: a.ex\x00ample\r\n\r\n",
    "cl-te": b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "dup-cl": b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
    "signed-cl": b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: +3\r\n\r\nabc",
    "empty-cl": b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: \r\n\r\n",
    "empty-cl-no-space": b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length:\r\n\r\n",
    "hex-cl": b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 0x3\r\n\r\nabc",
    "hex-digit-cl": b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 3a\r\n\r\nabc",
    "disguised-te": b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n",
    "bad-chunk": b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n",
    "cr-in-value": b"GET /echo HTTP/1.1\r\nHost: a\r\nX-A: b\rc\r\n\r\n",
    "cr-in-name": b"GET /echo HTTP/1.1\r\nHost: a\r\nX-A\r: b\r\n\r\n",
    "cr-before-crlf": b"GET /echo HTTP/1.1\r\nHost: a\r\nX-A: b\r\r\n\r\n",
    "cr-as-line-end": b"GET /echo HTTP/1.1\r\nHost: a\rX-A: b\r\n\r\n",
    "cr-in-request-line": b"GET /echo\r HTTP/1.1\r\nHost: a\r\n\r\n",
    "http-0.9": b"GET /echo\r\n\r\n",
    "http-0.9-with-headers": b"GET /echo\r\nHost: a\r\n\r\n",
    "http-1.0-chunked": (
        b"POST /echo HTTP/1.0\r\nHost: a\r\nConnection: keep-alive\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"
    ),
    "http-1.0-chunked-get": b"GET /echo HTTP/1.0\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "http-1.0-chunked-and-cl": (
        b"POST /echo HTTP/1.0\r\nHost: a\r\nContent-Length: 3\r\n"
        b"Transfer-Encoding: chunked\r\n\r\nabc"
    ),
}


@pytest.fixture
async def recorder(
    make_proxy: MakeProxy,
) -> AsyncIterator[tuple[TestServer, list[bytes]]]:
    """The proxy in front of an origin that keeps every byte it is sent and answers
    each request head with a small 200."""
    received: list[bytes] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            while data := await reader.read(65536):
                received.append(data)
                for _ in range(data.count(b"\r\n\r\n")):
                    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    yield await make_proxy(f"http://127.0.0.1:{port}"), received
    server.close()


async def exchange_until_closed(proxy: TestServer, *parts: bytes) -> tuple[bytes, bool]:
    """Everything the proxy answers on one connection to ``parts``, each written 0.2 s
    after the one before (while the connection lasts), and whether it then closed the
    connection (within 3 s)."""
    reader, writer = await asyncio.open_connection(proxy.host, proxy.port)
    for i, part in enumerate(parts):
        if i:
            await asyncio.sleep(0.2)
        with contextlib.suppress(ConnectionError):
            writer.write(part)
            await writer.drain()
    answer = b""
    try:
        while chunk := await asyncio.wait_for(reader.read(65536), 3):
            answer += chunk
        closed = True
    except (TimeoutError, ConnectionResetError):
        closed = False
    writer.close()
    return answer, closed


@pytest.mark.parametrize("request_bytes", REFUSED_REQUESTS.values(), ids=REFUSED_REQUESTS.keys())
async def test_ambiguous_requests_refused(
    recorder: tuple[TestServer, list[bytes]], request_bytes: bytes
) -> None:
    """RELIABILITY (Framing, cases 15-21): a request whose framing or Host is
    ambiguous, faulty or lenient (HTTP/0.9, HTTP/1.0 with Transfer-Encoding, a stray
    CR, an empty or hex length) gets 400 and the connection closed; a request smuggled
    behind it on the same connection is never read; the origin sees nothing at all."""
    proxy, received = recorder
    for parts in ([request_bytes + SMUGGLED], [request_bytes, SMUGGLED]):  # one write, two
        answer, closed = await exchange_until_closed(proxy, *parts)
        assert answer.startswith((b"HTTP/1.1 400 ", b"HTTP/1.0 400 ")), answer[:100]
        assert answer.count(b"HTTP/1.") == 1, "only one answer: the smuggled request was read"
        assert closed, "the connection stays open after a refused request"
        await asyncio.sleep(0.1)
        assert received == []
    answer, _ = await exchange_until_closed(
        proxy, SMUGGLED.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n")
    )
    assert answer.startswith(b"HTTP/1.1 200 ") and received  # the recorder records


async def test_unknown_transfer_coding_is_501(recorder: tuple[TestServer, list[bytes]]) -> None:
    """A coding before ``chunked`` would reach the origin still applied (the proxy
    re-frames the body, the coding header is hop-by-hop): 501, as nginx answers."""
    proxy, received = recorder
    request = b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n"
    for parts in ([request + SMUGGLED], [request, SMUGGLED]):
        answer, closed = await exchange_until_closed(proxy, *parts)
        assert answer.startswith(b"HTTP/1.1 501 ") and answer.count(b"HTTP/1.") == 1
        assert closed and received == []


async def test_origin_down_is_502_generic(make_proxy: MakeProxy) -> None:
    proxy = await make_proxy("http://127.0.0.1:9")
    async with aiohttp.ClientSession() as s, s.get(url(proxy, "/secret?token=abc")) as r:
        body = await r.text()
    assert r.status == 502
    assert "127.0.0.1" not in body and "token" not in body and "Traceback" not in body


async def test_no_headers_in_time_is_504(proxy: TestServer) -> None:
    async with aiohttp.ClientSession() as s, s.get(url(proxy, "/slow-headers?s=5")) as r:
        assert r.status == 504
        assert "late" not in await r.text()


@pytest.mark.parametrize(
    "query",
    ["?size=300000", "?size=300000&length=1", "?type=text/plain", "?type=text/plain&length=1"],
)
async def test_origin_reset_mid_body_is_visible_truncation(proxy: TestServer, query: str) -> None:
    async with aiohttp.ClientSession() as s, s.get(url(proxy, "/reset" + query)) as r:
        assert r.status == 200
        with pytest.raises(aiohttp.ClientPayloadError):
            await r.read()


@pytest.mark.parametrize("ctype", ["text/plain", "text/html"])
async def test_origin_pausing_inside_its_body_is_cut_after_read_timeout(
    proxy: TestServer, ctype: str
) -> None:
    """read_timeout (2 s here): a longer pause cuts the transfer, a shorter one does not."""
    async with aiohttp.ClientSession() as s:
        started = time.monotonic()
        async with s.get(url(proxy, f"/paused-body?s=30&type={ctype}")) as r:
            assert r.status == 200
            with pytest.raises(aiohttp.ClientPayloadError):
                await r.read()
        assert time.monotonic() - started < 10
        async with s.get(url(proxy, f"/paused-body?s=1&type={ctype}")) as r:
            assert len(await r.read()) == 200_000


async def test_deadlines_of_different_lengths_share_one_timer(
    make_proxy: MakeProxy, origin: TestServer
) -> None:
    """A short read_timeout is kept though the answer deadline is long; a client that
    takes every byte is not blamed for the origin's pause, even when client_timeout
    is shorter than that pause (100 KB sent, so the client is being watched)."""
    proxy = await make_proxy(
        url(origin, "/"), upstream_timeout=20.0, read_timeout=1.0, client_timeout=0.3
    )
    async with aiohttp.ClientSession() as s:
        started = time.monotonic()
        async with s.get(url(proxy, "/paused-body?s=30")) as r:
            with pytest.raises(aiohttp.ClientPayloadError):
                await r.read()
        assert time.monotonic() - started < 10  # cut after about 1 s, not 20
        async with s.get(url(proxy, "/paused-body?s=0.8")) as r:
            assert len(await r.read()) == 200_000


async def test_origin_reset_before_the_page_began_is_502(proxy: TestServer) -> None:
    # Nothing of the page could be sent yet (its encoding is found in its first 1024
    # bytes): a clean 502. After its first bytes were sent: a cut transfer.
    async with aiohttp.ClientSession() as s:
        async with s.get(url(proxy, "/reset?size=0")) as r:
            assert r.status == 502
        async with s.get(url(proxy, "/reset?size=20000")) as r:
            assert r.status == 200
            with pytest.raises(aiohttp.ClientPayloadError):
                await r.read()


async def test_garbage_from_origin_is_502(
    canned: Callable[[bytes], Awaitable[tuple[TestServer, asyncio.Server]]],
) -> None:
    for response in (
        b"HTTP/1.1 200 OK\r\nX-Bad: a\rb\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nX-Bad: a\x00b\r\nContent-Length: 0\r\n\r\n",
        b"NOT HTTP AT ALL\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nno colon here\r\nContent-Length: 0\r\n\r\n",
    ):
        proxy, _ = await canned(response)
        async with aiohttp.ClientSession() as s, s.get(url(proxy, "/")) as r:
            assert r.status == 502, response


async def test_unencoded_html_leaves_unencoded(proxy: TestServer) -> None:
    """A page the origin sent without Content-Encoding is rewritten and leaves without
    one, whatever the client accepts (the origin chose not to spend that CPU)."""
    async with aiohttp.ClientSession(auto_decompress=False) as s:
        async with s.get(url(proxy, "/html"), headers={"Accept-Encoding": "identity"}) as r:
            plain = await r.read()
        async with s.get(url(proxy, "/html"), headers={"Accept-Encoding": "gzip, br"}) as r:
            assert "Content-Encoding" not in r.headers
            assert await r.read() == plain
            assert r.headers["ETag"].startswith("W/")  # rewritten, not passed through


@pytest.mark.parametrize("coding", ["gzip", "br", "zstd", "deflate"])
async def test_encoded_html_round_trip(proxy: TestServer, coding: str) -> None:
    async with aiohttp.ClientSession(auto_decompress=False) as s:
        async with s.get(
            url(proxy, f"/html-{coding}"), headers={"Accept-Encoding": "gzip, br"}
        ) as r:
            raw = await r.read()
            assert r.headers["Content-Encoding"] in ("br", "gzip")
            decoded = (
                brotli.decompress(raw)
                if r.headers["Content-Encoding"] == "br"
                else gzip.decompress(raw)
            )
            assert decoded == PAGE
            assert "Content-Length" not in r.headers or int(r.headers["Content-Length"]) == len(raw)
            assert "Accept-Encoding" in r.headers.get("Vary", "")
        async with s.get(
            url(proxy, f"/html-{coding}"), headers={"Accept-Encoding": "identity"}
        ) as r:
            assert "Content-Encoding" not in r.headers
            assert await r.read() == PAGE


@pytest.mark.parametrize("coding", ["gzip", "br", "zstd", "deflate"])
async def test_encoded_html_cut_short_never_looks_complete(proxy: TestServer, coding: str) -> None:
    """A body that ends before its end marker: 502 while nothing was sent, else a
    visibly truncated transfer."""
    async with aiohttp.ClientSession() as s:
        async with s.get(url(proxy, f"/cut-small-{coding}")) as r:
            assert r.status == 502
        async with s.get(url(proxy, f"/cut-big-{coding}")) as r:
            assert r.status == 200
            with pytest.raises(aiohttp.ClientPayloadError):
                await r.read()


async def test_zstd_body_of_several_frames_is_decoded_whole(proxy: TestServer) -> None:
    async with aiohttp.ClientSession() as s:
        async with s.get(url(proxy, "/zstd-frames")) as r:
            assert r.status == 200
            assert await r.read() == PAGE + PAGE


async def test_non_html_keeps_encoding_and_bytes(proxy: TestServer) -> None:
    async with aiohttp.ClientSession(auto_decompress=False) as s:
        async with s.get(url(proxy, "/css-gzip"), headers={"Accept-Encoding": "gzip"}) as r:
            body = await r.read()
    assert r.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(body) == b"body{color:red}" * 100
    assert int(r.headers["Content-Length"]) == len(body)


async def test_origin_offered_only_decodable_encodings(proxy: TestServer) -> None:
    async with aiohttp.ClientSession() as s:
        async with s.get(
            url(proxy, "/echo"), headers={"Accept-Encoding": "gzip, compress, sdch, br;q=0"}
        ) as r:
            seen = headers_of(await r.read())
    assert seen["accept-encoding"] == ["gzip"]


@pytest.mark.parametrize("path", ["/bomb", "/bomb-pieces"])
async def test_decompression_bomb_is_502(proxy: TestServer, path: str) -> None:
    gzip_bomb()  # made before the request: the origin answers at once
    async with aiohttp.ClientSession() as s, s.get(url(proxy, path)) as r:
        assert r.status == 502


async def test_html_headers_match_new_body(proxy: TestServer) -> None:
    async with aiohttp.ClientSession() as s:
        async with s.get(url(proxy, "/html"), headers={"Range": "bytes=0-10"}) as r:
            body = await r.read()
    assert r.status == 200 and body == PAGE
    assert "Accept-Ranges" not in r.headers
    assert r.headers["ETag"].startswith('W/"page-1')


async def test_html_range_refetched_whole_pdf_range_kept(proxy: TestServer) -> None:
    async with aiohttp.ClientSession() as s:
        async with s.get(url(proxy, "/range/html"), headers={"Range": "bytes=0-10"}) as r:
            assert r.status == 200
            assert await r.read() == PAGE
        async with s.get(url(proxy, "/range/pdf"), headers={"Range": "bytes=0-3"}) as r:
            assert r.status == 206
            assert await r.read() == b"%PDF"


async def test_head_204_304_have_no_body(proxy: TestServer) -> None:
    for method, path, status in (("HEAD", "/html", 200), ("GET", "/204", 204)):
        response = await raw_request(
            proxy, f"{method} {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode(), timeout=1
        )
        head, _, body = response.partition(b"\r\n\r\n")
        assert status_of(response) == status
        assert body == b""
        assert b"transfer-encoding: chunked" not in head.lower() or method == "HEAD"
    async with aiohttp.ClientSession() as s:
        async with s.get(url(proxy, "/etag")) as r:
            tag = r.headers["ETag"]
        async with s.get(url(proxy, "/etag"), headers={"If-None-Match": tag}) as r:
            assert r.status == 304
            assert r.headers["ETag"] == tag
            assert await r.read() == b""
        async with s.get(
            url(proxy, "/etag?type=image/png"), headers={"If-None-Match": '"doc-7"'}
        ) as r:
            assert r.status == 304
            assert r.headers["ETag"] == '"doc-7"'


async def test_stale_variant_etag_never_gets_304(proxy: TestServer) -> None:
    async with aiohttp.ClientSession() as s:
        async with s.get(
            url(proxy, "/etag"), headers={"If-None-Match": 'W/"doc-7~othervariant"'}
        ) as r:
            assert r.status == 200


async def test_html_without_content_type_is_sniffed(
    canned: Callable[[bytes], Awaitable[tuple[TestServer, asyncio.Server]]],
) -> None:
    page = b"\n <!DOCTYPE html><p>sniffed</p>"
    proxy, _ = await canned(
        b'HTTP/1.1 200 OK\r\nContent-Length: %d\r\nETag: "s"\r\n\r\n%s' % (len(page), page)
    )
    async with aiohttp.ClientSession() as s, s.get(url(proxy, "/")) as r:
        assert await r.read() == page
    # Treated as HTML: the validators were made to match a rewritten body.
    assert r.headers["ETag"].startswith('W/"s~')
    assert "Accept-Encoding" in r.headers["Vary"]


async def test_redirects_not_followed(proxy: TestServer) -> None:
    async with aiohttp.ClientSession() as s:
        async with s.get(url(proxy, "/redirect"), allow_redirects=False) as r:
            assert r.status == 302
            assert r.headers["Location"] == "/echo"


async def test_cookies_not_shared_between_visitors(proxy: TestServer) -> None:
    async with aiohttp.ClientSession() as s:
        async with s.get(url(proxy, "/cookies")) as r:
            assert len(r.headers.getall("Set-Cookie")) == 3
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as s:
        async with s.get(url(proxy, "/echo")) as r:
            assert "cookie" not in headers_of(await r.read())


async def test_body_cap_applies_while_streaming(origin: TestServer, make_proxy: MakeProxy) -> None:
    proxy = await make_proxy(url(origin, "/"), max_body=100_000)

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(50):
            yield b"x" * 10_000

    async with aiohttp.ClientSession() as s:
        async with s.post(url(proxy, "/upload"), data=b"y" * 50_000) as r:
            assert (await r.json())["received"] == 50_000
        async with s.post(url(proxy, "/upload"), data=chunks()) as r:
            assert r.status == 413
    response = await raw_request(
        proxy,
        b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 999999\r\n"
        b"Expect: 100-continue\r\n\r\n",
        timeout=2,
    )
    assert status_of(response) == 413
    assert b"100 Continue" not in response


async def test_websocket_echo_both_ways(proxy: TestServer) -> None:
    async with aiohttp.ClientSession() as s:
        async with s.ws_connect(url(proxy, "/ws"), protocols=("chat",)) as ws:
            assert ws.protocol == "chat"
            await ws.send_str("hi")
            assert (await ws.receive_str()) == "echo:hi"
            await ws.send_bytes(b"abc")
            assert (await ws.receive_bytes()) == b"cba"
            await ws.send_str("close")
            msg = await ws.receive()
            assert msg.type == aiohttp.WSMsgType.CLOSE
            assert ws.close_code == 4000 or msg.data == 4000


async def test_keepalive_upgrade_insecure_is_not_a_websocket(proxy: TestServer) -> None:
    response = await raw_request(
        proxy,
        b"GET /echo HTTP/1.1\r\nHost: x\r\n"
        b"Connection: keep-alive, upgrade-insecure-requests\r\n"
        b"Upgrade-Insecure-Requests: 1\r\n\r\n",
    )
    assert status_of(response) == 200


async def test_error_pages_from_origin_go_through_rewrite(proxy: TestServer) -> None:
    async with aiohttp.ClientSession() as s, s.get(url(proxy, "/error")) as r:
        assert r.status == 500
        assert await r.read() == PAGE
        assert r.headers["Vary"] == "Accept-Encoding"


async def test_client_gone_releases_upstream(proxy: TestServer, origin: TestServer) -> None:
    _, writer = await asyncio.open_connection(proxy.host, proxy.port)
    writer.write(b"GET /slow-headers?s=1 HTTP/1.1\r\nHost: x\r\n\r\n")
    await writer.drain()
    await asyncio.sleep(0.3)  # the proxy is waiting for the origin now
    writer.close()
    await asyncio.sleep(1.2)
    async with aiohttp.ClientSession() as s:
        async with s.get(url(origin, "/abandoned")) as r:
            assert await r.json() == [True]  # the proxy let go of the origin too
        async with s.get(url(proxy, "/echo")) as r:
            assert r.status == 200


async def test_preserve_host(origin: TestServer, make_proxy: MakeProxy) -> None:
    proxy = await make_proxy(url(origin, "/"), preserve_host=True)
    async with aiohttp.ClientSession() as s:
        async with s.get(url(proxy, "/echo"), headers={"Host": "shop.example"}) as r:
            seen = headers_of(await r.read())
    assert seen["host"] == ["shop.example"]


async def test_responses_that_set_cookies_are_never_shared_cacheable(
    canned: Callable[[bytes], Awaitable[tuple[TestServer, asyncio.Server]]],
) -> None:
    proxy, _ = await canned(
        b"HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nCache-Control: public, max-age=600, s-maxage=900\r\n"
        b"Set-Cookie: sid=1; Path=/\r\nContent-Length: 2\r\n\r\nok"
    )
    async with aiohttp.ClientSession() as s, s.get(url(proxy, "/")) as r:
        assert r.headers["Cache-Control"] == "private, max-age=600"
        assert await r.read() == b"ok"


async def test_client_trickling_headers_is_cut_off(
    make_proxy: MakeProxy, origin: TestServer
) -> None:
    proxy = await make_proxy(url(origin, "/"), client_timeout=1.0)
    reader, writer = await asyncio.open_connection(proxy.host, proxy.port)
    start = asyncio.get_running_loop().time()
    closed_after = None
    try:
        for byte in b"GET /echo HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 40:
            writer.write(bytes([byte]))
            await writer.drain()
            with contextlib.suppress(TimeoutError):
                if await asyncio.wait_for(reader.read(1), 0.1) == b"":
                    closed_after = asyncio.get_running_loop().time() - start
                    break
    except ConnectionError:
        closed_after = asyncio.get_running_loop().time() - start
    finally:
        writer.close()
    assert closed_after is not None, "a client trickling its headers was never cut off"
    assert 0.9 <= closed_after < 3.0


async def test_client_trickling_a_body_gets_408(make_proxy: MakeProxy, origin: TestServer) -> None:
    proxy = await make_proxy(url(origin, "/"), client_timeout=0.5)
    reader, writer = await asyncio.open_connection(proxy.host, proxy.port)
    writer.write(b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n" + b"y" * 10)
    await writer.drain()
    response = await asyncio.wait_for(reader.read(65536), 5)
    writer.close()
    assert status_of(response) == 408
    assert b"connection: close" in response.lower()


async def test_slow_upload_still_gets_its_answer(make_proxy: MakeProxy, origin: TestServer) -> None:
    # The upstream deadline (1 s here) counts from the end of the body, so an upload
    # that takes longer than it but never pauses for long is answered.
    proxy = await make_proxy(url(origin, "/"), upstream_timeout=1.0, client_timeout=1.0)

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(8):
            await asyncio.sleep(0.2)
            yield b"z" * 1000

    async with aiohttp.ClientSession() as s, s.post(url(proxy, "/upload"), data=chunks()) as r:
        assert r.status == 200
        assert (await r.json())["received"] == 8000


@pytest.mark.parametrize("kind", ["text/plain", "text/html"])
async def test_client_taking_nothing_is_cut_off(
    make_proxy: MakeProxy, origin: TestServer, kind: str
) -> None:
    proxy = await make_proxy(url(origin, "/"), client_timeout=1.0, read_timeout=30.0)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, (proxy.host, proxy.port))
    reader, writer = await asyncio.open_connection(sock=sock)
    size = 40 * 1024 * 1024
    writer.write(f"GET /big?size={size}&type={kind} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    await writer.drain()
    await asyncio.sleep(3.5)  # take nothing: the proxy gives up after 1 s without progress
    received = 0
    with contextlib.suppress(ConnectionError):
        while chunk := await asyncio.wait_for(reader.read(1 << 20), 5):
            received += len(chunk)
    writer.close()
    assert received < size  # cut off, not served whole
    async with aiohttp.ClientSession() as s, s.get(url(origin, "/abandoned")) as r:
        assert await r.json() == [True]  # and the origin's connection was let go
