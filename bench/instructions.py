"""Instructions per request (valgrind callgrind), consent-proxy next to the bare loop.

    .venv/bin/python -m bench.instructions [--requests 300]

Wall-clock and CPU-time figures on a shared machine move by tens of percent between
runs; the number of instructions a process executes barely moves (about 1%), so this
is the benchmark to compare two versions of the code with. Each server runs under
``valgrind --tool=callgrind`` twice, answering 100 and then 100 + N requests after the
same warm-up; the difference divided by N is what one request costs, start-up and
shutdown excluded. Needs valgrind (Debian package ``valgrind``). Slow: about a minute
per row.
"""

from __future__ import annotations

import argparse
import asyncio
import glob
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

from bench.proxy import ACCEPTED, BARE, ORIGIN, PAGE, free_port, proxy_command, started, wait_port


async def _load(url: str, count: int, header: str) -> None:
    headers = dict([header.split(": ", 1)]) if header else {}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=4)) as session:
        gate = asyncio.Semaphore(4)

        async def one() -> None:
            async with gate, session.get(url, headers=headers) as r:
                await r.read()

        await asyncio.gather(*(one() for _ in range(count)))


def instructions(cmd: list[str], port: int, url: str, count: int, header: str) -> int:
    """Instructions the server executes for start-up, 50 + ``count`` requests, stop."""
    out = tempfile.mkdtemp(prefix="bench-callgrind-")
    proc = subprocess.Popen(
        ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}/cg.%p", *cmd],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_port(port, timeout=300)
        asyncio.run(_load(url, 50, header))  # warm-up: caches, connections
        asyncio.run(_load(url, count, header))
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=300)
    total = 0
    for path in glob.glob(f"{out}/cg.*"):
        for line in Path(path).read_text().splitlines():
            if line.startswith(("summary:", "totals:")):
                total = max(total, int(line.split()[1]))
    shutil.rmtree(out, ignore_errors=True)
    return total


def per_request(cmd: list[str], port: int, url: str, extra: int, header: str) -> float:
    base = instructions(cmd, port, url, 100, header)
    more = instructions(cmd, port, url, 100 + extra, header)
    return (more - base) / extra


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=300)
    args = parser.parse_args()
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed (Debian package valgrind)")
    py = sys.executable
    origin_port, proxy_port, bare_port = free_port(), free_port(), free_port()
    origin = f"http://127.0.0.1:{origin_port}"
    proxy_cmd = proxy_command(origin, proxy_port)
    bare_cmd = [py, "-c", BARE, str(bare_port), origin]
    print(f"instructions per request, {args.requests} requests after a warm-up; page: {PAGE.name}")
    print(f"{'path':<8} {'target':<42} {'instructions':>13} {'vs bare':>8}")
    with started([py, "-c", ORIGIN, str(origin_port), str(PAGE)], origin_port):
        for path in ("/small", "/page"):
            start = time.monotonic()
            bare = per_request(
                bare_cmd, bare_port, f"http://127.0.0.1:{bare_port}{path}", args.requests, ""
            )
            ours = per_request(
                proxy_cmd,
                proxy_port,
                f"http://127.0.0.1:{proxy_port}{path}",
                args.requests,
                ACCEPTED,
            )
            for name, value in (
                ("consent-proxy, visitor who accepted all", ours),
                ("bare aiohttp forwarding loop", bare),
            ):
                print(f"{path:<8} {name:<42} {value:13,.0f} {bare / value:7.2f}x")
            print(f"{'':<8} ({time.monotonic() - start:.0f} s)")


if __name__ == "__main__":
    main()
