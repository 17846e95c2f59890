"""Time to first body byte of a page whose origin sends its head and then pauses (server
rendering, a slow query): consent-proxy, which rewrites the page, against a bare aiohttp
forwarding loop and the origin itself, in one run.

    .venv/bin/python -m bench.ttfb [--requests 30] [--pause 0.2]

The origin sends the page's head (2 KB: title, stylesheets, a tracker script), pauses,
then the body. Each target gets the requests in turn (alternating, one keep-alive
connection each); the median and the best time from sending the request to the first
body byte are printed, and consent-proxy's difference from the bare loop. A visitor yet
to decide: consent-proxy rewrites every rule, banner included.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time

import aiohttp

from bench.proxy import BARE, free_port, load_average, proxy_command, started

ORIGIN = """
import asyncio, sys
from aiohttp import web
pause = float(sys.argv[2])
head = (b"<!doctype html><html><head><title>Slow page</title>"
        + b'<link rel="stylesheet" href="/site.css">' * 20
        + b'<script src="https://www.google-analytics.com/analytics.js"></script>'
        + b"<!-- head -->" * 60 + b"</head>")
body = b"<body><h1>Rendered</h1>" + b"<p>text</p>" * 2000 + b"</body></html>"
async def slow(request):
    out = web.StreamResponse(headers={"Content-Type": "text/html; charset=utf-8"})
    await out.prepare(request)
    await out.write(head)
    await asyncio.sleep(pause)
    await out.write(body)
    await out.write_eof()
    return out
app = web.Application(); app.router.add_get("/slow", slow)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)
"""


async def first_byte(session: aiohttp.ClientSession, url: str) -> float:
    """Seconds from sending the request to the first body byte (the body is read whole)."""
    start = time.perf_counter()
    async with session.get(url, headers={"Accept-Encoding": "identity"}) as r:
        first = await r.content.readany()
        elapsed = time.perf_counter() - start
        assert first, url
        await r.read()
    return elapsed


async def measure(urls: dict[str, str], requests: int) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {name: [] for name in urls}
    sessions = {name: aiohttp.ClientSession() for name in urls}
    try:
        for name, url in urls.items():  # warm: connections, the proxy's first page
            await first_byte(sessions[name], url)
        for _ in range(requests):
            for name, url in urls.items():
                times[name].append(await first_byte(sessions[name], url))
    finally:
        for session in sessions.values():
            await session.close()
    return times


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=30)
    parser.add_argument("--pause", type=float, default=0.2)
    args = parser.parse_args()
    py = sys.executable
    origin_port, proxy_port, bare_port = free_port(), free_port(), free_port()
    origin = f"http://127.0.0.1:{origin_port}"
    with (
        started([py, "-c", ORIGIN, str(origin_port), str(args.pause)], origin_port),
        started(proxy_command(origin, proxy_port), proxy_port),
        started([py, "-c", BARE, str(bare_port), origin], bare_port),
    ):
        urls = {
            "origin direct": f"{origin}/slow",
            "consent-proxy, visitor yet to decide": f"http://127.0.0.1:{proxy_port}/slow",
            "bare aiohttp forwarding loop": f"http://127.0.0.1:{bare_port}/slow",
        }
        times = asyncio.run(measure(urls, args.requests))
    print(
        f"time to first body byte, origin pausing {args.pause * 1000:.0f} ms after the head; "
        f"{args.requests} requests each; load average {load_average()}"
    )
    print(f"{'target':<40} {'median ms':>10} {'best ms':>10}")
    for name, values in times.items():
        print(f"{name:<40} {statistics.median(values) * 1000:10.2f} {min(values) * 1000:10.2f}")
    ours = statistics.median(times["consent-proxy, visitor yet to decide"])
    bare = statistics.median(times["bare aiohttp forwarding loop"])
    print(f"consent-proxy - bare loop (medians): {(ours - bare) * 1000:+.2f} ms")


if __name__ == "__main__":
    main()
