"""Requests/s and latency through consent-proxy, next to the alternatives, in one run.

    .venv/bin/python -m bench.proxy [--seconds 4] [--connections 32] [--rounds 3]

Starts an origin (a 2 KB text file and a 150 KB HTML page from the corpus), then loads,
one after the other on loopback: the origin directly, consent-proxy in front of it with
its built-in rules (for a visitor who accepted everything: the page passes untouched;
for one yet to decide: trackers removed, banner added), a bare aiohttp forwarding loop,
and nginx proxy_pass (when nginx is installed). The load generator is wrk (Debian
package `wrk`) or, without it, a bounded aiohttp client.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT.parent / "shared" / "corpus" / "pages" / "with-trackers" / "medicalnewstoday.html"

ORIGIN = """
import sys
from aiohttp import web
page = open(sys.argv[2], "rb").read()
small = b"x" * 2048
async def p(request): return web.Response(body=page, content_type="text/html")
async def s(request): return web.Response(body=small, content_type="text/plain")
app = web.Application(); app.router.add_get("/page", p); app.router.add_get("/small", s)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)
"""

BARE = """
import sys, aiohttp
from aiohttp import web
upstream = sys.argv[2]
async def session(app):
    app["s"] = aiohttp.ClientSession(auto_decompress=False)
    yield
    await app["s"].close()
async def forward(request):
    async with request.app["s"].request(request.method, upstream + request.path_qs,
                                        headers=request.headers) as r:
        out = web.StreamResponse(status=r.status, headers=r.headers)
        await out.prepare(request)
        async for chunk in r.content.iter_any():
            await out.write(chunk)
        await out.write_eof()
        return out
app = web.Application(); app.cleanup_ctx.append(session)
app.router.add_route("*", "/{t:.*}", forward)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)
"""

NGINX = """
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  client_body_temp_path {dir}; proxy_temp_path {dir}; fastcgi_temp_path {dir};
  uwsgi_temp_path {dir}; scgi_temp_path {dir};
  upstream origin {{ server 127.0.0.1:{origin}; keepalive 64; }}
  server {{
    listen 127.0.0.1:{port};
    location / {{ proxy_pass http://origin; proxy_http_version 1.1;
                 proxy_set_header Connection ""; proxy_buffering off; }}
  }}
}}
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listening on {port}")


def proxy_command(origin: str, port: int) -> list[str]:
    """consent-proxy in front of ``origin`` on ``port``, its logs going nowhere."""
    return [
        *(sys.executable, "-m", "proxy", "serve", "--upstream", origin),
        *("--listen", f"127.0.0.1:{port}", "--access-log", os.devnull),
        *("--decision-log", os.devnull),
    ]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time used so far by process ``pid`` (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextmanager
def started(args: list[str], port: int) -> Iterator[int]:
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(port)
        yield proc.pid
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


WRK_PREFIX: list[str] = []
ACCEPTED = "Cookie: consent=v=1&preferences=1&analytics=1&advertising=1&social=1"


def wrk(url: str, seconds: int, connections: int, header: str = "") -> tuple[float, float, float]:
    extra = ["-H", header] if header else []
    out = subprocess.run(
        [*WRK_PREFIX, "wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", *extra, url],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]

    def pct(p: str) -> float:
        m = re.search(rf"\s{p}%\s+([\d.]+)(us|ms|s)", out)
        if not m:
            return float("nan")
        scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}[m.group(2)]
        return float(m.group(1)) * scale

    return rps, pct("50"), pct("99")


def aiohttp_load(
    url: str, seconds: int, connections: int, header: str = ""
) -> tuple[float, float, float]:
    import aiohttp

    headers = dict([header.split(": ", 1)]) if header else {}

    async def run() -> tuple[float, float, float]:
        latencies: list[float] = []
        deadline = time.monotonic() + seconds
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=connections)) as s:

            async def worker() -> None:
                while time.monotonic() < deadline:
                    start = time.perf_counter()
                    async with s.get(url, headers=headers) as r:
                        await r.read()
                    latencies.append((time.perf_counter() - start) * 1000)

            await asyncio.gather(*(worker() for _ in range(connections)))
        latencies.sort()
        n = len(latencies)
        return n / seconds, latencies[n // 2], latencies[min(n - 1, int(n * 0.99))]

    return asyncio.run(run())


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=int, default=4)
    parser.add_argument("--connections", type=int, default=32)
    # Shared machines drift by tens of percent within a minute: alternate the targets
    # and keep each one's best round.
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    load = wrk if shutil.which("wrk") else aiohttp_load
    py = sys.executable
    origin_port, proxy_port, bare_port, nginx_port = (free_port() for _ in range(4))
    origin = f"http://127.0.0.1:{origin_port}"
    proxy_cmd = proxy_command(origin, proxy_port)
    # (name, command or None for the origin itself, port, request header)
    targets: list[tuple[str, list[str] | None, int, str]] = [
        ("origin direct", None, origin_port, ""),
        ("consent-proxy, visitor who accepted all", proxy_cmd, proxy_port, ACCEPTED),
        ("consent-proxy, visitor yet to decide", proxy_cmd, proxy_port, ""),
        ("bare aiohttp forwarding loop", [py, "-c", BARE, str(bare_port), origin], bare_port, ""),
    ]
    tmp = tempfile.mkdtemp(prefix="bench-nginx-")
    nginx = shutil.which("nginx") or (
        "/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None
    )
    if nginx:
        conf = Path(tmp) / "nginx.conf"
        conf.write_text(NGINX.format(dir=tmp, origin=origin_port, port=nginx_port))
        targets.append(
            ("nginx proxy_pass", [nginx, "-c", str(conf), "-g", "daemon off;"], nginx_port, "")
        )
    print(
        f"load: {load.__name__}, {args.connections} connections, {args.seconds}s per row, "
        f"best of {args.rounds} alternating rounds; "
        f"page: {PAGE.name} ({PAGE.stat().st_size // 1024} KB)"
    )
    with started([py, "-c", ORIGIN, str(origin_port), str(PAGE)], origin_port):
        for path in ("/small", "/page"):
            # name -> (req/s, p50 ms, p99 ms, CPU us per request of the proxy process)
            results: dict[str, tuple[float, float, float, float]] = {}
            for _ in range(args.rounds):
                for name, cmd, port, header in targets:
                    url = f"http://127.0.0.1:{port}{path}"
                    if cmd is None:
                        row = (*load(url, args.seconds, args.connections, header), 0.0)
                    else:
                        with started(cmd, port) as pid:
                            load(url, 1, args.connections, header)  # warm up
                            before = cpu_seconds(pid)
                            rps, p50, p99 = load(url, args.seconds, args.connections, header)
                            cpu = (cpu_seconds(pid) - before) / max(rps * args.seconds, 1) * 1e6
                            row = (rps, p50, p99, cpu)
                    best = results.get(name)
                    if best is None or row[0] > best[0]:
                        results[name] = row
            bare_rps, _, _, bare_cpu = results["bare aiohttp forwarding loop"]
            print(
                f"\n{path}  {'target':<42} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} "
                f"{'vs bare':>8} {'CPU us/req':>11} {'vs bare':>8}"
            )
            for name, (rps, p50, p99, cpu) in results.items():
                pad = " " * len(path)
                # CPU per request: a lower figure is better, so the ratio is bare / this.
                cpu_text = f"{cpu:11.0f} {bare_cpu / cpu:7.2f}x" if cpu else f"{'-':>11} {'':>8}"
                print(
                    f"{pad}  {name:<42} {rps:9.0f} {p50:8.2f} {p99:8.2f} "
                    f"{rps / bare_rps:7.2f}x {cpu_text}"
                )
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
