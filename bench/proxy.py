"""Requests/s and CPU per request through consent-proxy, next to the alternatives, in one run.

    .venv/bin/python -m bench.proxy [--seconds 4] [--connections 32] [--rounds 3]

Starts an origin (a 2 KB text file and a 150 KB HTML page from the corpus) and, once
each, the servers in front of it: consent-proxy with its built-in rules (one worker, and
``--workers 2``), a bare aiohttp forwarding loop, nginx proxy_pass (when installed) and
mitmdump in reverse mode (when installed: in a venv of its own, as mitmproxy pins a
brotli older than aiohttp decodes with: ``python3 -m venv .venv-bench &&
.venv-bench/bin/pip install mitmproxy``; found there or on PATH). Then it
loads them one after the other, round after round (each row's best round is kept: a
shared machine drifts by tens of percent within a minute). consent-proxy's page rows:
a visitor who accepted everything (whose page gets only Google Consent Mode's default,
all granted, when Google's rules are in force: from the rewrite cache; and, with
``--consent-mode off``, the origin's bytes untouched), one yet to decide and one
who refused, each on a cache miss (a new query on every request: the page is rewritten)
and, for the undecided visitor, on a hit of the rewrite cache (the same URL again).
CPU per request is the user + system time of the server's processes over the requests
it answered; the origin's and wrk's are printed too (they share the 2 cores: with them,
what ``--workers 2`` can gain at most over one worker). The load generator is wrk
(Debian package ``wrk``) or, without it, a bounded aiohttp client.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import os
import re
import resource
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
from typing import NamedTuple

from proxy.consent.model import OPTIONAL

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


def wait_port(port: int, timeout: float = 180) -> None:
    """Until something listens on ``port`` (consent-proxy compiles its rules first:
    seconds on a busy machine)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listening on {port}")


def proxy_command(
    origin: str, port: int, workers: int = 1, extra: tuple[str, ...] = ()
) -> list[str]:
    """consent-proxy in front of ``origin`` on ``port``, its logs going nowhere."""
    return [
        *(sys.executable, "-m", "proxy", "serve", "--upstream", origin),
        *("--listen", f"127.0.0.1:{port}", "--access-log", os.devnull),
        *("--decision-log", os.devnull, "--workers", str(workers), *extra),
    ]


def mitmdump_command(origin: str, port: int) -> list[str] | None:
    """mitmdump as a reverse proxy in front of ``origin`` (None: not installed)."""
    mitmdump = shutil.which("mitmdump") or str(ROOT / ".venv-bench" / "bin" / "mitmdump")
    if not Path(mitmdump).exists():
        return None
    return [
        *(mitmdump, "--mode", f"reverse:{origin}", "--listen-host", "127.0.0.1"),
        *("--listen-port", str(port), "-q"),
    ]


def cpu_seconds(pid: int) -> float:
    """User + system CPU time used so far by process ``pid`` and its children (Linux
    /proc: nginx's worker, consent-proxy's workers)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    total = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    for task in Path(f"/proc/{pid}/task").iterdir():
        children = (task / "children").read_text().split()
        total += sum(cpu_seconds(int(child)) for child in children)
    return total


def nginx_binary() -> str | None:
    """nginx's path (None: not installed)."""
    found = shutil.which("nginx")
    return found or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)


def load_average() -> str:
    """The machine's load averages (1, 5, 15 min), printed with every figure: on a
    shared machine they say how far to trust it."""
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


@contextmanager
def started(args: list[str], port: int, timeout: float = 180) -> Iterator[int]:
    """Runs ``args`` until the block ends; gives its pid once ``port`` listens."""
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_port(port, timeout)
        yield proc.pid
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


WRK_PREFIX: list[str] = []
# Every optional category, whatever the list (a category added later, as media was,
# would turn the accepting visitor's passthrough into a rewrite).
ACCEPTED = "Cookie: consent=v=1&" + "&".join(f"{c}=1" for c in OPTIONAL)
REFUSED = "Cookie: consent=v=1&" + "&".join(f"{c}=0" for c in OPTIONAL)
# A new query on every request: a page the rewrite cache has not seen.
UNIQUE = """
counter = 0
request = function()
  counter = counter + 1
  return wrk.format(nil, wrk.path .. "?n=" .. counter)
end
"""


@functools.cache
def unique_script() -> str:
    script = Path(tempfile.mkdtemp(prefix="bench-wrk-")) / "unique.lua"
    script.write_text(UNIQUE)
    return str(script)


def wrk(
    url: str, seconds: int, connections: int, header: str = "", unique: bool = False
) -> tuple[float, float, float]:
    extra = ["-H", header] if header else []
    if unique:
        extra += ["-s", unique_script()]
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
    url: str, seconds: int, connections: int, header: str = "", unique: bool = False
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
                    target = f"{url}?n={len(latencies)}-{id(start)}" if unique else url
                    async with s.get(target, headers=headers) as r:
                        await r.read()
                    latencies.append((time.perf_counter() - start) * 1000)

            await asyncio.gather(*(worker() for _ in range(connections)))
        latencies.sort()
        n = len(latencies)
        return n / seconds, latencies[n // 2], latencies[min(n - 1, int(n * 0.99))]

    return asyncio.run(run())


class Row(NamedTuple):
    name: str
    server: str  # which server answers (started once), "" for the origin itself
    header: str = ""
    unique: bool = False  # a new query on every request (a rewrite cache miss)


PAGE_ROWS = [
    Row("origin direct", ""),
    Row("consent-proxy, accepted all (gtag default)", "proxy", ACCEPTED),
    # Without Consent Mode's default the accepting visitor's page passes untouched.
    Row("consent-proxy, accepted, consent mode off", "passing", ACCEPTED),
    Row("consent-proxy, undecided, cache miss", "proxy", "", True),
    Row("consent-proxy, undecided, cache hit", "proxy"),
    Row("consent-proxy, refused, cache miss", "proxy", REFUSED, True),
    Row("consent-proxy --workers 2, undecided, miss", "proxy2", "", True),
    Row("bare aiohttp forwarding loop", "bare"),
    Row("nginx proxy_pass", "nginx"),
    Row("mitmdump reverse mode", "mitmdump"),
]
SMALL_ROWS = [
    Row("origin direct", ""),
    Row("consent-proxy (not HTML)", "proxy"),
    Row("bare aiohttp forwarding loop", "bare"),
    Row("nginx proxy_pass", "nginx"),
    Row("mitmdump reverse mode", "mitmdump"),
]


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
    names = ("", "proxy", "proxy2", "passing", "bare", "nginx", "mitmdump")
    ports = {name: free_port() for name in names}
    origin = f"http://127.0.0.1:{ports['']}"
    commands: dict[str, list[str]] = {
        "proxy": proxy_command(origin, ports["proxy"]),
        "proxy2": proxy_command(origin, ports["proxy2"], workers=2),
        "passing": proxy_command(origin, ports["passing"], extra=("--consent-mode", "off")),
        "bare": [py, "-c", BARE, str(ports["bare"]), origin],
    }
    tmp = tempfile.mkdtemp(prefix="bench-nginx-")
    nginx = nginx_binary()
    if nginx:
        conf = Path(tmp) / "nginx.conf"
        conf.write_text(NGINX.format(dir=tmp, origin=ports[""], port=ports["nginx"]))
        commands["nginx"] = [nginx, "-c", str(conf), "-g", "daemon off;"]
    mitm = mitmdump_command(origin, ports["mitmdump"])
    if mitm:
        commands["mitmdump"] = mitm
    print(
        f"load: {load.__name__}, {args.connections} connections, {args.seconds}s per row, "
        f"best of {args.rounds} alternating rounds; "
        f"page: {PAGE.name} ({PAGE.stat().st_size // 1024} KB); "
        f"not installed: {', '.join(n for n in ('nginx', 'mitmdump') if n not in commands)}; "
        f"load average {load_average()}"
    )
    with contextlib.ExitStack() as stack:
        pids = {
            "": stack.enter_context(
                started([py, "-c", ORIGIN, str(ports[""]), str(PAGE)], ports[""])
            )
        }
        for name, command in commands.items():
            pids[name] = stack.enter_context(started(command, ports[name]))
        for path, rows in (("/small", SMALL_ROWS), ("/page", PAGE_ROWS)):
            rows = [r for r in rows if r.server in pids]
            # name -> (req/s, p50 ms, p99 ms, CPU us per request of the server)
            results: dict[str, Result] = {}
            for _ in range(args.rounds):
                for row in rows:
                    url = f"http://127.0.0.1:{ports[row.server]}{path}"
                    load(url, 1, args.connections, row.header, row.unique)  # warm up
                    pid = pids[row.server]
                    before, origin_before = cpu_seconds(pid), cpu_seconds(pids[""])
                    wrk_before = _children_cpu()
                    rps, p50, p99 = load(
                        url, args.seconds, args.connections, row.header, row.unique
                    )
                    answered = max(rps * args.seconds, 1)
                    cpu = (cpu_seconds(pid) - before) / answered * 1e6
                    origin_cpu = (cpu_seconds(pids[""]) - origin_before) / answered * 1e6
                    wrk_cpu = (_children_cpu() - wrk_before) / answered * 1e6
                    result = Result(rps, p50, p99, cpu if row.server else 0.0, origin_cpu, wrk_cpu)
                    best = results.get(row.name)
                    if best is None or result[0] > best[0]:
                        results[row.name] = result
            report(path, results)
    print(f"\nload average at the end: {load_average()}")
    shutil.rmtree(tmp, ignore_errors=True)


class Result(NamedTuple):
    rps: float
    p50: float
    p99: float
    cpu: float  # the server's CPU per request, us
    origin: float  # the origin's
    wrk: float  # the load generator's (wrk; 0 for the in-process client)


def _children_cpu() -> float:
    """User + system CPU time of the finished child processes (wrk runs)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def report(path: str, results: dict[str, Result]) -> None:
    bare_rps, bare_cpu = results["bare aiohttp forwarding loop"][0::3]
    print(
        f"\n{path}  {'target':<44} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'vs bare':>8} {'CPU us/req':>11} {'vs bare':>8} {'origin us':>10} {'wrk us':>7}"
    )
    for name, (rps, p50, p99, cpu, origin, load) in results.items():
        pad = " " * len(path)
        # CPU per request: a lower figure is better, so the ratio is bare / this.
        cpu_text = f"{cpu:11.0f} {bare_cpu / cpu:7.2f}x" if cpu else f"{'-':>11} {'':>8}"
        print(
            f"{pad}  {name:<44} {rps:9.0f} {p50:8.2f} {p99:8.2f} {rps / bare_rps:7.2f}x {cpu_text}"
            f" {origin:10.0f} {load:7.0f}"
        )
    one = results.get("consent-proxy, undecided, cache miss")
    two = results.get("consent-proxy --workers 2, undecided, miss")
    if one is not None and two is not None and one.cpu:
        # One worker serves at most 1/P requests a second (one core); two, sharing both
        # cores with the origin and wrk, at most 2/(P + origin + wrk).
        ceiling = 2 * two.cpu / (two.cpu + two.origin + two.wrk)
        print(
            f"{' ' * len(path)}  --workers 2: {two.rps / one.rps:.2f}x one worker's req/s; "
            f"CPU per request {one.cpu:.0f} us with one worker, {two.cpu:.0f} with two; "
            f"the 2 cores allow at most {ceiling:.2f}x (origin and wrk included)"
        )


if __name__ == "__main__":
    main()
