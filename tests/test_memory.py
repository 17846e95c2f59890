"""Memory of long bodies, measured in the proxy's own process (/proc): a 50 MB HTML page
streams through the rewrite (no cap on its length) with the process's peak resident
memory growing by less than 32 MB, a 200 MB non-HTML body by less than 16 MB."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from tests.support.sockets import free_port
from tests.test_cli import spawn, wait_for_port

ROOT = Path(__file__).resolve().parent.parent
MB = 1024 * 1024
Serve = Callable[..., Awaitable[TestServer]]

# A slice of an ordinary long page: text, images, links, a tracker and an inline script.
BLOCK = (
    b'<div class="post"><h2>Title</h2><p>' + b"Some text of the article. " * 40 + b"</p>"
    b'<img src="/photo.jpg" alt=""><a href="/next">next</a>'
    b'<script src="https://www.google-analytics.com/analytics.js"></script>'
    b"<script>var views = 1;</script></div>\n"
)


async def stream(request: web.Request, size: int, ctype: str, piece: bytes) -> web.StreamResponse:
    out = web.StreamResponse(headers={"Content-Type": ctype})
    await out.prepare(request)
    chunk = piece * (64 * 1024 // len(piece) + 1)
    sent = 0
    while sent < size:
        await out.write(chunk)
        sent += len(chunk)
    await out.write_eof()
    return out


async def big_html(request: web.Request) -> web.StreamResponse:
    head = b"<!doctype html><html><head><title>Long</title></head><body>"
    out = web.StreamResponse(headers={"Content-Type": "text/html; charset=utf-8"})
    await out.prepare(request)
    await out.write(head)
    chunk = BLOCK * (64 * 1024 // len(BLOCK) + 1)
    for _ in range(50 * MB // len(chunk) + 1):
        await out.write(chunk)
    await out.write(b"</body></html>")
    await out.write_eof()
    return out


async def big_binary(request: web.Request) -> web.StreamResponse:
    return await stream(request, 200 * MB, "application/octet-stream", bytes(range(256)))


async def small(request: web.Request) -> web.Response:
    return web.Response(body=b"<html><body>" + BLOCK + b"</body></html>", content_type="text/html")


@pytest.fixture
async def proxy_process(aiohttp_server: Serve, tmp_path: Path) -> AsyncIterator[tuple[str, int]]:
    """``consent-proxy serve`` with the built-in rules in front of a real origin: its
    URL and process id."""
    app = web.Application()
    app.router.add_get("/html", big_html)
    app.router.add_get("/bin", big_binary)
    app.router.add_get("/small", small)
    origin = await aiohttp_server(app)
    port = free_port()
    args = [
        sys.executable,
        "-m",
        "proxy",
        "serve",
        "--upstream",
        str(origin.make_url("/")).rstrip("/"),
        "--listen",
        f"127.0.0.1:{port}",
        "--access-log",
        str(tmp_path / "access.log"),
        "--decision-log",
        str(tmp_path / "decisions.log"),
        "--read-timeout",
        "30",
    ]
    proc = spawn(args, tmp_path / "proxy")
    try:
        wait_for_port(port, proc)
        yield f"http://127.0.0.1:{port}", proc.pid
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


def status(pid: int, field: str) -> int:
    """A memory figure of /proc/PID/status, in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no {field} in /proc/{pid}/status")


def reset_peak(pid: int) -> int:
    """Start measuring the peak resident memory from now; the memory now."""
    Path(f"/proc/{pid}/clear_refs").write_text("5")  # resets VmHWM to VmRSS
    return status(pid, "VmRSS")


async def fetch(url: str) -> tuple[int, int, bytes]:
    """Status, body length and its last bytes, the body read as it streams (and
    dropped); a cut transfer raises."""
    size, last = 0, b""
    timeout = aiohttp.ClientTimeout(total=600)
    async with aiohttp.ClientSession(timeout=timeout) as s:
        async with s.get(url, headers={"Accept-Encoding": "identity"}) as r:
            async for chunk in r.content.iter_chunked(256 * 1024):
                size += len(chunk)
                last = (last + chunk)[-64:]
            return r.status, size, last


@pytest.mark.timeout(600)
async def test_long_bodies_stream_in_bounded_memory(proxy_process: tuple[str, int]) -> None:
    url, pid = proxy_process
    for path in ("/small", "/small", "/bin"):  # warm: pools, buffers, the decision log
        await fetch(url + path)

    before = reset_peak(pid)
    code, size, last = await fetch(url + "/html")
    html_growth = status(pid, "VmHWM") - before
    assert code == 200 and size > 45 * MB and last.endswith(b"</body></html>")

    before = reset_peak(pid)
    code, size, _ = await fetch(url + "/bin")
    binary_growth = status(pid, "VmHWM") - before
    assert code == 200 and size >= 200 * MB

    print(
        f"RSS growth: 50 MB page {html_growth / MB:.1f} MB, 200 MB body {binary_growth / MB:.1f} MB"
    )
    assert html_growth < 32 * MB, f"{html_growth / MB:.1f} MB for a 50 MB page"
    assert binary_growth < 16 * MB, f"{binary_growth / MB:.1f} MB for a 200 MB body"
