"""A real origin for the proxy's tests: pages, encodings, faults on purpose."""

from __future__ import annotations

import asyncio
import functools
import gzip
import hashlib
import json
import zlib
from collections.abc import Callable

import brotli
import zstandard
from aiohttp import WSMsgType, web

PAGE = (
    b"<!doctype html><html><head><title>Origin page</title>"
    b'<script src="https://www.google-analytics.com/analytics.js"></script></head>'
    b"<body><h1>Hello</h1><p>caf\xc3\xa9</p>" + b"<p>filler text</p>" * 2000 + b"</body></html>"
)


@functools.cache
def gzip_bomb() -> bytes:
    """A gzip body of 200 MB of zeros: about 200 KB on the wire (made once: it takes
    seconds on a busy machine, longer than the origin deadline of the tests)."""
    comp = zlib.compressobj(9, zlib.DEFLATED, 31)
    block = b"\0" * (1 << 20)
    return b"".join(comp.compress(block) for _ in range(200)) + comp.flush()


ENCODERS: dict[str, Callable[[bytes], bytes]] = {
    "gzip": gzip.compress,
    "br": functools.partial(brotli.compress, quality=5),  # 11 takes seconds for big pages
    "zstd": zstandard.ZstdCompressor().compress,
    "deflate": zlib.compress,
}


async def echo(request: web.Request) -> web.Response:
    body = await request.read()
    return web.json_response(
        {
            "method": request.method,
            "path_qs": request.raw_path,
            "headers": [[k, v] for k, v in request.headers.items()],
            "body_length": len(body),
        }
    )


async def html(request: web.Request) -> web.Response:
    return web.Response(
        body=PAGE,
        content_type="text/html",
        charset="utf-8",
        headers={"ETag": '"page-1"', "Accept-Ranges": "bytes"},
    )


async def encoded(request: web.Request) -> web.Response:
    coding = request.match_info["coding"]
    return web.Response(
        body=ENCODERS[coding](PAGE),
        headers={"Content-Type": "text/html; charset=utf-8", "Content-Encoding": coding},
    )


@functools.cache
def big_page() -> bytes:
    """About 600 KB of HTML that compresses poorly (more than the proxy reads before
    it answers)."""
    rows = (f"<p>{hashlib.sha256(str(i).encode()).hexdigest()}</p>\n" for i in range(8000))
    return b"<!doctype html><html><body>" + "".join(rows).encode() + b"</body></html>"


async def encoded_cut(request: web.Request) -> web.StreamResponse:
    """An encoded page whose last bytes are missing (its Content-Length says so too);
    the big one pauses after its first 64 KB (the proxy sends what it has meanwhile)."""
    coding = request.match_info["coding"]
    page = big_page() if request.match_info["size"] == "big" else PAGE
    body = ENCODERS[coding](page)[:-6]
    headers = {"Content-Type": "text/html; charset=utf-8", "Content-Encoding": coding}
    if request.match_info["size"] != "big":
        return web.Response(body=body, headers=headers)
    out = web.StreamResponse(headers=headers)
    out.content_length = len(body)
    await out.prepare(request)
    await out.write(body[: 64 * 1024])
    await asyncio.sleep(0.2)
    await out.write(body[64 * 1024 :])
    return out


async def zstd_frames(request: web.Request) -> web.Response:
    frame = zstandard.ZstdCompressor().compress
    return web.Response(
        body=frame(PAGE) + frame(PAGE),
        headers={"Content-Type": "text/html; charset=utf-8", "Content-Encoding": "zstd"},
    )


async def encoded_css(request: web.Request) -> web.Response:
    return web.Response(
        body=gzip.compress(b"body{color:red}" * 100),
        headers={"Content-Type": "text/css", "Content-Encoding": "gzip"},
    )


async def bomb(request: web.Request) -> web.Response:
    return web.Response(
        body=gzip_bomb(), headers={"Content-Type": "text/html", "Content-Encoding": "gzip"}
    )


ABANDONED = web.AppKey("abandoned", list)


async def bomb_in_pieces(request: web.Request) -> web.StreamResponse:
    """The bomb in 4 KB writes with pauses: each piece alone is under the cap."""
    resp = web.StreamResponse(headers={"Content-Type": "text/html", "Content-Encoding": "gzip"})
    await resp.prepare(request)
    data = gzip_bomb()
    for i in range(0, len(data), 4096):
        await resp.write(data[i : i + 4096])
        if i < 80_000:
            await asyncio.sleep(0.002)
    await resp.write_eof()
    return resp


async def paused_body(request: web.Request) -> web.StreamResponse:
    """100 KB of body, a pause of ``s`` seconds, then the rest (as ``type``)."""
    resp = web.StreamResponse(headers={"Content-Type": request.query.get("type", "text/plain")})
    resp.content_length = 200_000
    await resp.prepare(request)
    await resp.write(b"<p>" + b"a" * 99_997)
    await asyncio.sleep(float(request.query.get("s", "5")))
    await resp.write(b"b" * 100_000)
    await resp.write_eof()
    return resp


async def slow_headers(request: web.Request) -> web.Response:
    """Answers late; records whether the proxy dropped the connection meanwhile."""
    try:
        await asyncio.sleep(float(request.query.get("s", "5")))
    except asyncio.CancelledError:  # this test server cancels handlers of lost clients
        request.app[ABANDONED].append(True)
        raise
    request.app[ABANDONED].append(request.transport is None or request.transport.is_closing())
    return web.Response(text="late")


async def big(request: web.Request) -> web.StreamResponse:
    """``size`` bytes in 64 KB writes; records whether the proxy stopped taking them."""
    resp = web.StreamResponse(headers={"Content-Type": request.query.get("type", "text/plain")})
    await resp.prepare(request)
    size, piece = int(request.query.get("size", "1000000")), b"<p>" + b"x" * 65533
    try:
        for _ in range(size // len(piece)):
            await resp.write(piece)
        await resp.write_eof()
    except (ConnectionError, asyncio.CancelledError):
        request.app[ABANDONED].append(True)
        raise
    return resp


async def abandoned(request: web.Request) -> web.Response:
    return web.json_response(request.app[ABANDONED])


async def reset_mid_body(request: web.Request) -> web.StreamResponse:
    resp = web.StreamResponse(headers={"Content-Type": request.query.get("type", "text/html")})
    size = int(request.query.get("size", "20000"))
    if request.query.get("length"):
        resp.content_length = size * 2
    await resp.prepare(request)
    await resp.write(b"<html><body>" + b"x" * size)
    await asyncio.sleep(0.05)
    assert request.transport is not None
    request.transport.abort()
    return resp


async def cookies(request: web.Request) -> web.Response:
    resp = web.Response(text="<p>cookies</p>", content_type=request.query.get("type", "text/html"))
    for i in range(3):
        resp.headers.add("Set-Cookie", f"c{i}=v{i}; Path=/")
    resp.headers.add("Link", "</a.css>; rel=preload")
    resp.headers.add("Link", "</b.js>; rel=preload")
    return resp


async def etag(request: web.Request) -> web.Response:
    tag = '"doc-7"'
    inm = request.headers.get("If-None-Match", "")
    if tag in inm or tag.strip('"') in inm:
        return web.Response(status=304, headers={"ETag": tag})
    ctype = request.query.get("type", "text/html")
    return web.Response(text="<p>versioned</p>", content_type=ctype, headers={"ETag": tag})


async def no_content(request: web.Request) -> web.Response:
    return web.Response(status=204, headers={"X-Origin": "yes"})


async def ranged(request: web.Request) -> web.StreamResponse:
    ctype = "text/html" if request.match_info["kind"] == "html" else "application/pdf"
    body = PAGE if ctype == "text/html" else b"%PDF-1.4 " + b"0" * 1000
    rng = request.http_range
    if rng.start is not None or rng.stop is not None:
        part = body[rng]
        return web.Response(
            status=206,
            body=part,
            content_type=ctype,
            headers={
                "Content-Range": f"bytes {rng.start or 0}-{(rng.start or 0) + len(part) - 1}/{len(body)}",
                "Accept-Ranges": "bytes",
            },
        )
    return web.Response(body=body, content_type=ctype, headers={"Accept-Ranges": "bytes"})


async def redirect(request: web.Request) -> web.Response:
    raise web.HTTPFound("/echo")


async def upload(request: web.Request) -> web.Response:
    total = 0
    async for chunk in request.content.iter_any():
        total += len(chunk)
    return web.json_response({"received": total})


async def ws_echo(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse(protocols=("chat",))
    await ws.prepare(request)
    async for msg in ws:
        if msg.type == WSMsgType.TEXT:
            if msg.data == "close":
                await ws.close(code=4000)
            else:
                await ws.send_str("echo:" + msg.data)
        elif msg.type == WSMsgType.BINARY:
            await ws.send_bytes(msg.data[::-1])
    return ws


async def error_page(request: web.Request) -> web.Response:
    return web.Response(status=500, body=PAGE, content_type="text/html")


def origin_app() -> web.Application:
    gzip_bomb()  # made before the first request waits for it
    app = web.Application()
    app[ABANDONED] = []
    app.router.add_get("/abandoned", abandoned)
    app.router.add_get("/big", big)
    app.router.add_route("*", "/echo", echo)
    app.router.add_route("*", "/echo/{tail:.*}", echo)
    app.router.add_get("/html", html)
    app.router.add_get("/html-{coding}", encoded)
    app.router.add_get("/cut-{size}-{coding}", encoded_cut)
    app.router.add_get("/zstd-frames", zstd_frames)
    app.router.add_get("/css-gzip", encoded_css)
    app.router.add_get("/bomb", bomb)
    app.router.add_get("/bomb-pieces", bomb_in_pieces)
    app.router.add_get("/slow-headers", slow_headers)
    app.router.add_get("/paused-body", paused_body)
    app.router.add_get("/reset", reset_mid_body)
    app.router.add_get("/cookies", cookies)
    app.router.add_get("/etag", etag)
    app.router.add_get("/204", no_content)
    app.router.add_get("/range/{kind}", ranged)
    app.router.add_get("/redirect", redirect)
    app.router.add_post("/upload", upload)
    app.router.add_get("/ws", ws_echo)
    app.router.add_get("/error", error_page)
    return app


def headers_of(data: bytes) -> dict[str, list[str]]:
    """The echo endpoint's headers as name (lower case) → values."""
    out: dict[str, list[str]] = {}
    for k, v in json.loads(data)["headers"]:
        out.setdefault(k.lower(), []).append(v)
    return out
