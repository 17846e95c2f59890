"""Instructions per request (valgrind callgrind): consent-proxy's rows next to the bare
loop, nginx and mitmdump.

    .venv/bin/python -m bench.instructions [--requests 200] [--only TEXT ...]

Wall-clock and CPU-time figures on a shared machine move by tens of percent between
runs; the number of instructions a process executes barely moves (about 1% for the
bare loop and for rewrites; up to 7% for consent-proxy's cheap rows, where a collection
of its large heap falls into a counted window or not), so this is the benchmark to
compare two versions of the code with. Each server is started once
under ``valgrind --tool=callgrind``, uninstrumented until it listens (start-up, where
consent-proxy compiles its rules, runs a few times slower than native instead of
fifty), and asked, row after row: a warm-up, then its
counters zeroed, ``--requests`` requests and a dump, then zeroed again, twice as many
and a dump (``callgrind_control``); the difference of the two dumps over the
difference in requests is what one request costs, start-up, warm-up and the dumps
excluded. The rows are bench.proxy's (accepted, undecided on a miss and on a hit of
the rewrite cache, refused, the bare loop, nginx, mitmdump); ``--workers 2`` has no
row here (the instructions of a request do not depend on how many processes share
them). nginx runs as one process (``master_process off``) so that one count holds
all its work. Needs valgrind (Debian package ``valgrind``). Slow: a few minutes per
server, ``--only`` picks rows by a part of their name (repeatable).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

from bench.proxy import (
    BARE,
    NGINX,
    ORIGIN,
    PAGE,
    PAGE_ROWS,
    SMALL_ROWS,
    Row,
    free_port,
    load_average,
    mitmdump_command,
    nginx_binary,
    proxy_command,
    started,
)

_unique = itertools.count()


async def _load(url: str, count: int, row: Row) -> None:
    headers = dict([row.header.split(": ", 1)]) if row.header else {}
    # No deadline: under callgrind on a loaded machine one page can take minutes.
    timeout = aiohttp.ClientTimeout(total=None)
    connector = aiohttp.TCPConnector(limit=4)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        gate = asyncio.Semaphore(4)

        async def one() -> None:
            target = f"{url}?n={next(_unique)}" if row.unique else url
            async with gate, session.get(target, headers=headers) as r:
                await r.read()
                if r.status != 200:
                    raise RuntimeError(f"{target}: status {r.status}, expected 200")

        await asyncio.gather(*(one() for _ in range(count)))


class Counter:
    """A server running under callgrind, whose counts are zeroed and dumped on demand."""

    def __init__(self, pid: int, out: Path) -> None:
        self.pid = pid
        self.out = out
        self.dumps = 0

    def _control(self, option: str) -> None:
        subprocess.run(
            ["callgrind_control", option, str(self.pid)],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=300,
        )

    def instrument(self) -> None:
        """Count from now on (the server started with ``--instr-atstart=no``)."""
        self._control("--instr=on")

    def count(self, url: str, requests: int, row: Row) -> int:
        """Instructions the server executes for ``requests`` requests (and one dump)."""
        self._control("--zero")
        asyncio.run(_load(url, requests, row))
        self._control("--dump")
        self.dumps += 1
        dump = self.out / f"cg.{self.pid}.{self.dumps}"
        for _ in range(600):  # callgrind_control returns once the dump is written
            if dump.exists():
                break
            time.sleep(0.1)
        for line in dump.read_text().splitlines():
            if line.startswith("summary:"):
                return int(line.split()[1])
        raise RuntimeError(f"{dump}: no 'summary:' line, expected callgrind's totals")


def per_request(counter: Counter, url: str, requests: int, row: Row) -> float:
    asyncio.run(_load(url, 30, row))  # warm-up: caches, connections, the rewrite cache
    base = counter.count(url, requests, row)
    more = counter.count(url, 2 * requests, row)
    return (more - base) / requests


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        help="rows whose name holds this text (repeat it for several)",
    )
    # consent-proxy compiles its rules before it listens: seconds uninstrumented on an
    # idle machine, minutes on one loaded by other work.
    parser.add_argument("--start-timeout", type=float, default=1800, help="seconds")
    args = parser.parse_args()
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        raise SystemExit("valgrind is not installed (Debian package valgrind)")
    py = sys.executable
    ports = {name: free_port() for name in ("", "proxy", "passing", "bare", "nginx", "mitmdump")}
    origin = f"http://127.0.0.1:{ports['']}"
    tmp = Path(tempfile.mkdtemp(prefix="bench-callgrind-"))
    commands: dict[str, list[str]] = {
        "proxy": proxy_command(origin, ports["proxy"]),
        "passing": proxy_command(origin, ports["passing"], extra=("--consent-mode", "off")),
        "bare": [py, "-c", BARE, str(ports["bare"]), origin],
    }
    nginx = nginx_binary()
    if nginx:
        conf = tmp / "nginx.conf"
        text = NGINX.format(dir=tmp, origin=ports[""], port=ports["nginx"])
        conf.write_text("master_process off;\n" + text)
        commands["nginx"] = [nginx, "-c", str(conf), "-g", "daemon off;"]
    mitm = mitmdump_command(origin, ports["mitmdump"])
    if mitm:
        commands["mitmdump"] = mitm
    rows = [
        (path, row)
        for path, table in (("/small", SMALL_ROWS), ("/page", PAGE_ROWS))
        for row in table
        if row.server in commands and (not args.only or any(o in row.name for o in args.only))
    ]
    print(
        f"instructions per request: {args.requests} and {2 * args.requests} requests after "
        f"a warm-up, 4 at a time; page: {PAGE.name}; load average {load_average()}; "
        f"not installed: {', '.join(n for n in ('nginx', 'mitmdump') if n not in commands)}"
    )
    results: dict[tuple[str, str], float] = {}
    with started([py, "-c", ORIGIN, str(ports[""]), str(PAGE)], ports[""]):
        for server, command in commands.items():
            mine = [(path, row) for path, row in rows if row.server == server]
            if not mine:
                continue
            start = time.monotonic()
            out = tmp / server
            out.mkdir()
            valgrind = ["valgrind", "--tool=callgrind", "--instr-atstart=no"]
            valgrind.append(f"--callgrind-out-file={out}/cg.%p")
            with started([*valgrind, *command], ports[server], args.start_timeout) as pid:
                counter = Counter(pid, out)
                counter.instrument()
                print(f"  ({server}: listening after {time.monotonic() - start:.0f} s)")
                for path, row in mine:
                    url = f"http://127.0.0.1:{ports[server]}{path}"
                    value = per_request(counter, url, args.requests, row)
                    results[path, row.name] = value
                    print(f"  {path:<7} {row.name:<44} {value:13,.0f}", flush=True)
            print(f"  ({server}: {time.monotonic() - start:.0f} s)", flush=True)
    shutil.rmtree(tmp, ignore_errors=True)
    for path in ("/small", "/page"):
        bare = results.get((path, "bare aiohttp forwarding loop"))
        print(f"\n{path:<8} {'target':<44} {'instructions':>13} {'vs bare':>8}")
        for (where, name), value in results.items():
            if where == path:
                ratio = f"{bare / value:7.2f}x" if bare else ""
                print(f"{'':<8} {name:<44} {value:13,.0f} {ratio:>8}")


if __name__ == "__main__":
    main()
