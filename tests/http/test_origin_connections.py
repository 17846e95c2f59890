"""Connections to the origin: a pooled connection carries another visitor's request only
when the exchange before ended exactly where its framing said, and nothing came while it
waited; failures after a request was sent are never papered over by sending it again.

The origin here is written on raw sockets (tests/support/raw_origin.py), so it can misbehave in
exactly the ways small servers do: leave a body unread (its bytes become the next
request), send an answer nobody asked for, send more or fewer bytes than its
Content-Length says.
"""

from __future__ import annotations

import asyncio
import inspect
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import aiohttp
import pytest
from aiohttp.connector import BaseConnector
from aiohttp.http_parser import HttpResponseParser
from aiohttp.test_utils import TestServer

from proxy.consent.rules import load_rules
from proxy.http import pages, pool
from proxy.settings import Settings
from tests.support.raw_origin import RawRequest, raw_origin, read_body, response
from tests.support.sockets import raw_request, status_of

MakeProxy = Callable[..., Awaitable[TestServer]]
RULES = load_rules(Path(__file__).resolve().parent.parent.parent / "rules")
POOL_LOG = "consent_proxy.pool"


def url(server: TestServer, path: str) -> str:
    return str(server.make_url(path))


def cookie_of(request: RawRequest) -> str:
    return (request.header("Cookie") or "visitor=-").partition("=")[2]


def own_page(path: str, who: str) -> bytes:
    return f"<p>page {path} for {who}</p>".encode()


def visitor_page(request: RawRequest) -> bytes:
    """The answer that belongs to ``request`` alone: its path and cookie in the body,
    its cookie in Set-Cookie (text/html for paths that say html)."""
    who = cookie_of(request)
    kind = "text/html" if "html" in request.target else "text/plain"
    return response(
        own_page(request.target, who),
        headers=(("Content-Type", kind), ("Set-Cookie", f"seen={who}")),
    )


STALE = response(
    b"<p>stale answer for nobody</p>",
    headers=(("Content-Type", "text/html"), ("Set-Cookie", "seen=stale")),
)


def client() -> aiohttp.ClientSession:
    return aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar())


async def visit(s: aiohttp.ClientSession, proxy: TestServer, path: str, who: str) -> None:
    """One visitor's request: the answer must be that visitor's own page."""
    async with s.get(url(proxy, path), headers={"Cookie": f"visitor={who}"}) as r:
        body = await r.read()
        assert (r.status, body) == (200, own_page(path, who)), (path, who)
        assert r.headers.getall("Set-Cookie") == [f"seen={who}"], (path, who)


async def fifty_visitors(s: aiohttp.ClientSession, proxy: TestServer, name: str) -> None:
    """50 requests with distinct paths and cookies, half of them HTML, one after the
    other (each would take the pooled connection the one before left)."""
    for i in range(50):
        path = f"/{name}/{i}" + ("/html" if i % 2 else "")
        await visit(s, proxy, path, f"{name}{i}")


def pool_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == POOL_LOG]


ARRIVALS = ("one-segment", "with-the-last-body-bytes", "while-idle")


async def answer_then(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    answer: bytes,
    extra: bytes,
    arrival: str,
) -> bool | None:
    """Writes ``answer``, then ``extra`` bytes nobody asked for: in the answer's own
    segment; with its last body bytes (the head went before, so the proxy is reading
    the body when they come: aiohttp releases the connection from inside its parser,
    before the bytes after the body are parsed); or later, while the connection waits
    in the pool. For the last: whether the proxy closed the connection at once (as
    nginx does), long before the next request would take it."""
    if arrival == "one-segment":
        writer.write(answer + extra)
    elif arrival == "with-the-last-body-bytes":
        head, _, body = answer.partition(b"\r\n\r\n")
        writer.write(head + b"\r\n\r\n")
        await writer.drain()
        await asyncio.sleep(0.05)
        writer.write(body + extra)
    else:
        writer.write(answer)
        await writer.drain()
        await asyncio.sleep(0.2)
        writer.write(extra)
        await writer.drain()
        try:
            return await asyncio.wait_for(reader.read(), 0.5) == b""
        except TimeoutError:
            return False
    await writer.drain()
    return None


async def settle(arrival: str) -> None:
    """Waits until bytes sent while idle have come (and half a second more)."""
    if arrival == "while-idle":
        await asyncio.sleep(1.0)


@pytest.mark.parametrize("later", [0.0, 0.2], ids=["at-once", "while-idle"])
async def test_body_the_origin_leaves_unread_never_answers_another_visitor(
    make_proxy: MakeProxy, caplog: pytest.LogCaptureFixture, later: float
) -> None:
    """Trigger 1: the origin answers a POST without reading its body; the body is an
    HTTP request, which the origin then answers too."""

    async def respond(
        request: RawRequest, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        if request.target == "/smuggled":
            await asyncio.sleep(later)
        writer.write(visitor_page(request))  # the body is never read
        await writer.drain()

    smuggled = b"GET /smuggled HTTP/1.1\r\nHost: origin\r\nCookie: visitor=attacker\r\n\r\n"
    async with raw_origin(respond) as origin:
        proxy = await make_proxy(origin.url)
        async with client() as s:
            headers = {"Cookie": "visitor=attacker", "Content-Type": "text/plain"}
            async with s.post(url(proxy, "/form?token=t0ken"), data=smuggled, headers=headers) as r:
                assert await r.read() == own_page("/form?token=t0ken", "attacker")
            await asyncio.sleep(later and later + 0.8)  # the answer came while idle
            await fifty_visitors(s, proxy, "after-post")
        assert "/smuggled" in [r.target for r in origin.requests]  # the attack reached it
    logged = pool_warnings(caplog)
    assert len(logged) == 1, logged
    assert "t0ken" not in logged[0] and "attacker" not in logged[0]


@pytest.mark.parametrize("arrival", ARRIVALS)
async def test_unsolicited_answer_never_reaches_a_visitor(
    make_proxy: MakeProxy, caplog: pytest.LogCaptureFixture, arrival: str
) -> None:
    """Trigger 2: the origin sends an extra answer after a real one."""
    closed: list[bool | None] = []

    async def respond(
        request: RawRequest, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        await read_body(request, reader)
        if request.target.startswith("/double"):
            closed.append(await answer_then(reader, writer, visitor_page(request), STALE, arrival))
        else:
            await answer_then(reader, writer, visitor_page(request), b"", "one-segment")

    async with raw_origin(respond) as origin:
        proxy = await make_proxy(origin.url)
        async with client() as s:
            for path in ("/double", "/double/html"):
                await visit(s, proxy, path, "first")
                await settle(arrival)
                await fifty_visitors(s, proxy, "after" + path.replace("/", "-"))
    assert len(pool_warnings(caplog)) == 2, pool_warnings(caplog)
    assert closed == ([True, True] if arrival == "while-idle" else [None, None])


@pytest.mark.parametrize("arrival", ARRIVALS)
@pytest.mark.parametrize(
    "extra", [STALE, b"BYTES NO ANSWER STARTS WITH\r\n\r\n"], ids=["an-answer", "junk"]
)
async def test_body_longer_than_its_length_never_becomes_the_next_answer(
    make_proxy: MakeProxy, arrival: str, extra: bytes
) -> None:
    closed: list[bool | None] = []

    async def respond(
        request: RawRequest, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        if request.target.startswith("/long"):
            closed.append(await answer_then(reader, writer, visitor_page(request), extra, arrival))
        else:
            await answer_then(reader, writer, visitor_page(request), b"", "one-segment")

    async with raw_origin(respond) as origin:
        proxy = await make_proxy(origin.url)
        async with client() as s:
            for path in ("/long", "/long/html"):
                async with s.get(url(proxy, path), headers={"Cookie": "visitor=first"}) as r:
                    # Junk in the answer's own segment makes that segment unreadable
                    # (a 502); otherwise the answer itself is whole.
                    if r.status != 502 or extra is STALE or arrival != "one-segment":
                        assert await r.read() == own_page(path, "first")
                await settle(arrival)
                await fifty_visitors(s, proxy, "after" + path.replace("/", "-"))
    assert closed == ([True, True] if arrival == "while-idle" else [None, None])


@pytest.mark.parametrize("kind", ["text/plain", "text/html"])
@pytest.mark.parametrize("then", ["closes", "waits"])
async def test_body_shorter_than_its_length_is_a_truncated_transfer(
    make_proxy: MakeProxy, kind: str, then: str
) -> None:
    """The client never gets a complete-looking page: plain text arrives cut short
    (its length announced, fewer bytes, then the connection cut), HTML (held until its
    first 64 KB are rewritten) gets a 502; the rest never reaches anyone."""

    async def respond(
        request: RawRequest, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        if request.target != "/short":
            writer.write(visitor_page(request))
            await writer.drain()
            return
        head = response(b"", headers=(("Content-Type", kind),), length=1000)
        writer.write(head + b"<p>" + b"a" * 97)
        await writer.drain()
        if then == "closes":
            writer.close()
            return
        await asyncio.sleep(3)  # after the proxy gave up: the rest, and an answer
        writer.write(b"b" * 900 + STALE)
        await writer.drain()

    async with raw_origin(respond) as origin:
        proxy = await make_proxy(origin.url, read_timeout=0.5)
        async with client() as s:
            async with s.get(url(proxy, "/short"), headers={"Cookie": "visitor=first"}) as r:
                if kind == "text/plain":
                    assert r.status == 200 and r.headers["Content-Length"] == "1000"
                    with pytest.raises(aiohttp.ClientPayloadError):
                        await r.read()
                else:
                    assert r.status == 502
            await fifty_visitors(s, proxy, "after-short")


async def test_answer_before_the_body_was_sent_closes_the_connection(
    make_proxy: MakeProxy,
) -> None:
    """The origin answers an upload at once, without reading it, while the client is
    still sending: what the proxy had sent of the body must never be read as the start
    of the next visitor's request on that connection."""

    async def respond(
        request: RawRequest, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        writer.write(visitor_page(request))  # the body is never read
        await writer.drain()

    async def slow_body() -> AsyncIterator[bytes]:
        for _ in range(3):
            yield b"POST /half-a-request HTTP/1.1\r\n"
            await asyncio.sleep(0.2)

    async with raw_origin(respond) as origin:
        proxy = await make_proxy(origin.url)
        async with client() as s:
            headers = {"Cookie": "visitor=uploader"}
            async with s.post(url(proxy, "/upload"), data=slow_body(), headers=headers) as r:
                assert await r.read() == own_page("/upload", "uploader")
            await fifty_visitors(s, proxy, "after-upload")
    upload, *after = origin.requests
    assert upload.connection not in {r.connection for r in after}
    assert len({r.connection for r in after}) == 1  # the next connection, reused 50 times


async def test_aiohttp_internals_the_pool_relies_on() -> None:
    """proxy/http/pool.py hooks into aiohttp's client below its public API. This names the
    hook that broke when an aiohttp upgrade changes one: the connector makes its
    protocols with ``_factory`` and has ``_get``/``_release``; the protocol is told
    ``set_response_params`` before each request and ``start_timeout`` once it is
    written whole, keeps parsed answers in ``_buffer`` and its parser in ``_parser``
    (whose ``feed_eof`` returns a started answer); the session has
    ``_retry_connection``."""
    assert inspect.signature(BaseConnector._release).parameters.keys() == {
        "self",
        "key",
        "protocol",
        "should_close",
    }, "BaseConnector._release changed"
    assert inspect.signature(BaseConnector._get).parameters.keys() == {"self", "key", "traces"}, (
        "BaseConnector._get changed"
    )
    assert "feed_eof" in dir(HttpResponseParser), "the response parser has no feed_eof"

    async def respond(
        request: RawRequest, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        await read_body(request, reader)
        writer.write(visitor_page(request))
        await writer.drain()

    async def body() -> AsyncIterator[bytes]:
        yield b"streamed"

    async with raw_origin(respond) as origin:
        async with pool.origin_session(Settings(upstream=origin.url)) as session:
            assert "_retry_connection" in session.ATTRS, "ClientSession._retry_connection is gone"
            assert session._retry_connection is False
            for data in (None, b"bytes", body()):
                async with session.post(origin.url + "/x", data=data) as r:
                    await r.read()
            connector = session.connector
            assert isinstance(connector, pool.OriginConnector)
            [(protocol, _)] = [c for conns in connector._conns.values() for c in conns]
            assert isinstance(protocol, pool.OriginProtocol), "connector._factory is not used"
            assert protocol._request_sent, (
                "start_timeout is no longer called once a request is sent"
            )
            assert "data_received" in vars(protocol), "the pooled connection is not parked"
            assert isinstance(protocol._buffer, deque) and not protocol._buffer
            assert protocol._parser is not None and protocol._parser.feed_eof() is None
        # Sent whole and answered exactly, three times: one connection for all three.
        assert origin.connections == 1, "connections fit for reuse were closed"


@pytest.mark.parametrize(
    ("method", "body", "attempts"),
    [
        ("POST", b"a=1", 1),
        ("PUT", b"new text", 1),
        ("PUT", b"", 1),
        ("PATCH", b"x", 1),
        ("DELETE", b"", 1),
        ("GET", b"", 2),  # no side effect, no body: once more, as nginx does
    ],
    ids=["POST", "PUT", "PUT-no-body", "PATCH", "DELETE", "GET"],
)
async def test_request_that_changes_something_is_never_sent_twice(
    make_proxy: MakeProxy, method: str, body: bytes, attempts: int
) -> None:
    """The origin reads the request whole, then closes the connection without an
    answer: a request with a side effect gets a 502 and reached the origin once."""

    async def respond(
        request: RawRequest, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        await read_body(request, reader)
        if request.target == "/change":
            writer.close()  # the connection fails after the request was sent
            return
        writer.write(visitor_page(request))
        await writer.drain()

    async with raw_origin(respond) as origin:
        proxy = await make_proxy(origin.url)
        async with client() as s:
            await visit(s, proxy, "/warm", "w")  # a pooled connection for the request
            async with s.request(method, url(proxy, "/change"), data=body) as r:
                assert r.status == 502
            await visit(s, proxy, "/after", "a")
    assert [r.method for r in origin.requests if r.target == "/change"] == [method] * attempts


async def test_upstream_name_that_does_not_resolve_is_502_generic(make_proxy: MakeProxy) -> None:
    proxy = await make_proxy("http://origin.invalid:8000")  # .invalid never resolves
    async with client() as s, s.get(url(proxy, "/page?token=t0ken")) as r:
        body = await r.read()
    assert r.status == 502
    assert body == pages.error(502).body


async def test_chunked_request_body_is_reframed_exactly(make_proxy: MakeProxy) -> None:
    """A chunked body with an extension, a chunk whose data looks like framing and a
    request, and a trailer: the origin gets canonical chunks (no extension, no
    trailer) whose data is the body, the terminator, and nothing after it; the same
    connection then carries the next request cleanly."""
    received: list[bytes] = []

    async def respond(
        request: RawRequest, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        received.append(await read_body(request, reader))
        writer.write(visitor_page(request))
        await writer.drain()

    decoy = b"\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: origin\r\n\r\n"
    payload = b"hello" + decoy
    client_body = (
        b"5;name=value\r\nhello\r\n"
        + f"{len(decoy):x}\r\n".encode()
        + decoy
        + b"\r\n0\r\nX-Trailer: evil\r\n\r\n"
    )
    async with raw_origin(respond) as origin:
        proxy = await make_proxy(origin.url)
        answer = await raw_request(
            proxy,
            b"POST /upload HTTP/1.1\r\nHost: site.example\r\nCookie: visitor=uploader\r\n"
            b"Transfer-Encoding: chunked\r\nContent-Type: text/plain\r\n\r\n" + client_body,
        )
        assert status_of(answer) == 200 and answer.endswith(own_page("/upload", "uploader"))
        async with client() as s:
            await visit(s, proxy, "/after", "next")
    upload, after = origin.requests
    head = upload.head.decode("latin-1").lower()
    assert head.count("transfer-encoding: chunked\r\n") == 1
    assert "content-length" not in head and "x-trailer" not in head and "evil" not in head
    chunks = strict_chunks(received[0])
    assert b"".join(chunks) == payload
    assert received[0] == b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks) + b"0\r\n\r\n"
    assert (after.target, after.connection) == ("/after", upload.connection)


def strict_chunks(raw: bytes) -> list[bytes]:
    """The chunks of a body framed canonically (lower-case hex sizes, no extensions,
    no trailers, nothing after the terminator); AssertionError otherwise."""
    chunks: list[bytes] = []
    while True:
        size_line, sep, raw = raw.partition(b"\r\n")
        assert sep and size_line == b"%x" % int(size_line, 16), size_line
        size = int(size_line, 16)
        if size == 0:
            assert raw == b"\r\n", raw
            return chunks
        assert raw[size : size + 2] == b"\r\n"
        chunks.append(raw[:size])
        raw = raw[size + 2 :]


TRACKED_PAGE = (
    b"<!doctype html><html><head><title>Long</title>"
    b'<script src="https://www.google-analytics.com/analytics.js"></script></head><body>'
    + b"\n"
    + b"".join(b"<p>row %d</p>\n" % i for i in range(20_000))
    + b"</body></html>\n"
)


async def test_close_delimited_html_is_rewritten_whole_and_not_reused(
    make_proxy: MakeProxy,
) -> None:
    """An HTML answer with neither Content-Length nor chunked framing ends when the
    origin stops sending (here: half-closes, still reading): it is rewritten (the
    tracker goes) and delivered whole, and its connection never carries another
    request."""

    async def respond(
        request: RawRequest, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        if request.target != "/page":
            writer.write(visitor_page(request))
            await writer.drain()
            return
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n")
        for i in range(0, len(TRACKED_PAGE), 16_384):
            writer.write(TRACKED_PAGE[i : i + 16_384])
            await writer.drain()
        writer.write_eof()  # the end of the body; the origin goes on reading

    async with raw_origin(respond) as origin:
        proxy = await make_proxy(origin.url, rewrite=None, ruleset=RULES)
        async with client() as s:
            async with s.get(url(proxy, "/page")) as r:
                assert r.status == 200
                page = await r.read()
            await visit(s, proxy, "/after", "next")
    assert b"google-analytics.com" not in page
    rows = [int(line[7:-4]) for line in page.split(b"\n") if line.startswith(b"<p>row ")]
    assert rows == list(range(20_000))
    assert page.rstrip().endswith(b"</html>")
    assert [(r.target, r.connection) for r in origin.requests] == [("/page", 1), ("/after", 2)]
