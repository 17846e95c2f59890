"""Soak: minutes of mixed traffic through the real proxy; memory, open files and
asyncio tasks must stay flat.

    .venv/bin/python -m bench.soak [--seconds 600] [--concurrency 8] [--sample 5] [--reload 5]

Starts the demo origin (its pages are full of trackers) and ``consent-proxy serve`` in
front of it with a copy of the built-in rules and its logs in files, then sends, from
``--concurrency`` clients at once: pages for visitors yet to decide (banner), who
refused (trackers removed, placeholders), who accepted (untouched), with a query on
some so the per-path caches fill up; assets; consent posts; one request in ten on a
new connection. Every ``--reload`` seconds a rule file changes (a new rules
generation, swapped in while the traffic runs). Every ``--sample`` seconds it reads the
proxy process's resident memory and open file descriptors (``/proc/PID``) and its
asyncio task count (``/_consent/metrics``). It prints one row per sample, then for each
measure whether it stayed flat: the floor (lowest value) of the last third of the
samples after the warm-up within 10% of the floor of the first third. Floors, because
a sample also counts what is in flight at that instant (a task and a socket per
request being answered), which comes and goes; a leak raises the floor.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

from bench.proxy import ACCEPTED as PROXY_ACCEPTED
from bench.proxy import REFUSED as PROXY_REFUSED
from bench.proxy import free_port, wait_port

ROOT = Path(__file__).resolve().parent.parent
ORIGIN = """
import sys
from aiohttp import web
from proxy.demo import origin_app
web.run_app(origin_app(), host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)
"""
PAGES = ("/", "/bikes.html", "/workshop.html", "/privacy.html")
ASSETS = ("/static/site.css", "/static/logo.svg", "/static/spacer.gif")
REFUSED = PROXY_REFUSED.removeprefix("Cookie: ")
ACCEPTED = PROXY_ACCEPTED.removeprefix("Cookie: ")
# (kind, weight): what a site's traffic looks like, roughly.
KINDS = (
    ("page, visitor yet to decide", 3),
    ("page, visitor who refused", 2),
    ("page, visitor who accepted", 2),
    ("asset", 4),
    ("consent post", 1),
)
FLAT = 0.10  # the largest change, either way, that still counts as flat


@dataclass
class Traffic:
    """What the clients sent and got, for the whole run and for the current sample."""

    sent: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    latencies: list[float] = field(default_factory=list)  # ms, since the last sample
    reloads: int = 0


@dataclass(frozen=True)
class Sample:
    at: float  # seconds since the start
    rss_mib: float
    fds: int
    tasks: int
    requests: int
    errors: int
    p50_ms: float
    p99_ms: float
    generation: str


def request_for(kind: str, rng: random.Random) -> tuple[str, str, dict[str, str], dict[str, str]]:
    """(method, path, headers, form) for one request of ``kind``."""
    page = rng.choice(PAGES)
    if rng.random() < 0.3:  # distinct targets: the banner's per-path cache fills up
        page += f"?v={rng.randrange(5000)}"
    if kind == "asset":
        return "GET", rng.choice(ASSETS), {}, {}
    if kind == "consent post":
        choice = rng.choice(({"accept": "all"}, {"reject": "all"}, {"analytics": "1"}))
        return "POST", "/_consent", {}, {**choice, "next": page}
    cookie = {"page, visitor who refused": REFUSED, "page, visitor who accepted": ACCEPTED}
    return "GET", page, ({"Cookie": cookie[kind]} if kind in cookie else {}), {}


async def client(base: str, stop: float, traffic: Traffic, seed: int) -> None:
    rng = random.Random(seed)
    kinds = [kind for kind, _ in KINDS]
    weights = [weight for _, weight in KINDS]
    expected = {"GET": 200, "POST": 303}
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as session:
        while time.monotonic() < stop:
            kind = rng.choices(kinds, weights)[0]
            method, path, headers, form = request_for(kind, rng)
            if rng.random() < 0.1:
                headers["Connection"] = "close"  # churn: accept, serve, close
            started = time.perf_counter()
            try:
                async with session.request(
                    method,
                    base + path,
                    headers=headers,
                    data=form or None,
                    allow_redirects=False,
                ) as response:
                    await response.read()
                    if response.status != expected[method]:
                        traffic.errors[f"{kind}: {response.status}"] += 1
            except (aiohttp.ClientError, TimeoutError) as exc:
                traffic.errors[f"{kind}: {type(exc).__name__}"] += 1
            traffic.latencies.append((time.perf_counter() - started) * 1000)
            traffic.sent[kind] += 1


async def reloader(rules: Path, every: float, stop: float, traffic: Traffic) -> None:
    """A new rules generation every ``every`` seconds: one file's description changes,
    written beside it and renamed into place (as deploy tools do)."""
    target = rules / "comscore.toml"
    original = target.read_text()
    while time.monotonic() + every < stop:
        await asyncio.sleep(every)
        traffic.reloads += 1
        text = re.sub(
            r'(?m)^description = "(.*)"$',
            lambda m: f'description = "{m.group(1)} (soak {traffic.reloads})"',
            original,
            count=1,
        )
        temporary = rules / ".comscore.toml.tmp"
        temporary.write_text(text)
        temporary.replace(target)


def rss_mib(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    match = re.search(r"(?m)^VmRSS:\s+(\d+) kB", status)
    return int(match.group(1)) / 1024 if match else float("nan")


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


async def metrics(session: aiohttp.ClientSession, base: str) -> tuple[int, str]:
    """The proxy's asyncio task count and rules generation, from its metrics."""
    async with session.get(base + "/_consent/metrics") as response:
        text = await response.text()
    tasks = re.search(r"(?m)^consent_proxy_asyncio_tasks (\d+)$", text)
    generation = re.search(r'consent_proxy_rules_info\{generation="([^"]*)"\}', text)
    return (int(tasks.group(1)) if tasks else -1), (generation.group(1) if generation else "?")


async def sampler(
    pid: int, base: str, every: float, stop: float, start: float, traffic: Traffic
) -> list[Sample]:
    samples: list[Sample] = []
    async with aiohttp.ClientSession() as session:
        while time.monotonic() + every <= stop:
            await asyncio.sleep(every)
            tasks, generation = await metrics(session, base)
            latencies = sorted(traffic.latencies)
            traffic.latencies.clear()
            n = len(latencies)
            sample = Sample(
                at=time.monotonic() - start,
                rss_mib=rss_mib(pid),
                fds=open_fds(pid),
                tasks=tasks,
                requests=sum(traffic.sent.values()),
                errors=sum(traffic.errors.values()),
                p50_ms=latencies[n // 2] if n else float("nan"),
                p99_ms=latencies[min(n - 1, int(n * 0.99))] if n else float("nan"),
                generation=generation,
            )
            samples.append(sample)
            print(
                f"{sample.at:7.0f} {sample.requests:9d} {sample.errors:6d} "
                f"{sample.p50_ms:7.1f} {sample.p99_ms:8.1f} {sample.rss_mib:8.2f} "
                f"{sample.fds:5d} {sample.tasks:6d}  {sample.generation}",
                flush=True,
            )
    return samples


def verdicts(samples: list[Sample], warmup: float) -> list[str]:
    """Per measure: the floor of the first third after the warm-up, of the last third,
    the highest value, and whether the later floor is within FLAT of the first."""
    after = [s for s in samples if s.at > warmup]
    if len(after) < 3:
        return [f"too few samples after the {warmup:.0f} s warm-up to judge (need 3)"]
    third = max(1, len(after) // 3)
    lines = []
    for name, unit in (("rss_mib", "MiB"), ("fds", "open files"), ("tasks", "asyncio tasks")):
        values = [float(getattr(s, name)) for s in after]
        baseline = min(values[:third])
        end = min(values[-third:])
        change = end / baseline - 1 if baseline else float("inf")
        flat = abs(change) <= FLAT
        lines.append(
            f"{unit:>14}: {baseline:8.2f} -> {end:8.2f} (max {max(values):.2f}), "
            f"{change:+.1%}: {'flat' if flat else 'NOT flat'} within {FLAT:.0%}"
        )
    return lines


async def soak(args: argparse.Namespace, pid: int, base: str, rules: Path) -> None:
    traffic = Traffic()
    start = time.monotonic()
    stop = start + args.seconds
    print(
        f"{'t s':>7} {'requests':>9} {'errors':>6} {'p50 ms':>7} {'p99 ms':>8} "
        f"{'RSS MiB':>8} {'fds':>5} {'tasks':>6}  rules"
    )
    watched = asyncio.create_task(sampler(pid, base, args.sample, stop, start, traffic))
    jobs = [client(base, stop, traffic, seed) for seed in range(args.concurrency)]
    await asyncio.gather(*jobs, reloader(rules, args.reload, stop, traffic))
    samples = await watched
    elapsed = time.monotonic() - start
    total = sum(traffic.sent.values())
    generations = len({s.generation for s in samples})
    print(
        f"\n{total} requests in {elapsed:.0f} s ({total / elapsed:.0f}/s), "
        f"{sum(traffic.errors.values())} unexpected answers, {traffic.reloads} rule changes "
        f"({generations} generations seen in samples)"
    )
    for kind, _ in KINDS:
        print(f"  {kind:<30} {traffic.sent[kind]:8d}")
    for error, count in traffic.errors.most_common(5):
        print(f"  unexpected: {error} x{count}")
    warmup = args.warmup if args.warmup is not None else min(60.0, args.seconds / 3)
    print(f"\nafter a {warmup:.0f} s warm-up (floor of the first third -> of the last third):")
    for line in verdicts(samples, warmup):
        print("  " + line)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=600)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--sample", type=float, default=5, help="seconds between samples")
    parser.add_argument("--reload", type=float, default=5, help="seconds between rule changes")
    parser.add_argument("--warmup", type=float, default=None, help="default: min(60, seconds/3)")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="soak-"))
    rules = tmp / "rules"
    shutil.copytree(ROOT / "rules", rules)
    origin_port, proxy_port = free_port(), free_port()
    origin = subprocess.Popen(
        [sys.executable, "-c", ORIGIN, str(origin_port)], cwd=ROOT, stdout=subprocess.DEVNULL
    )
    proxy = subprocess.Popen(
        [
            *(sys.executable, "-m", "proxy", "serve"),
            *("--upstream", f"http://127.0.0.1:{origin_port}"),
            *("--listen", f"127.0.0.1:{proxy_port}", "--rules", str(rules)),
            *("--access-log", str(tmp / "access.log")),
            *("--decision-log", str(tmp / "decisions.log")),
        ],
        cwd=ROOT,
        stderr=open(tmp / "proxy.err", "w"),  # noqa: SIM115
    )
    try:
        wait_port(origin_port)
        wait_port(proxy_port)
        print(
            f"soak: {args.seconds:.0f} s, {args.concurrency} clients, a sample every "
            f"{args.sample:.0f} s, a rule change every {args.reload:.0f} s; proxy pid {proxy.pid}"
        )
        asyncio.run(soak(args, proxy.pid, f"http://127.0.0.1:{proxy_port}", rules))
    finally:
        proxy.send_signal(signal.SIGTERM)
        code = proxy.wait(timeout=30)
        origin.terminate()
        origin.wait()
        warnings = (tmp / "proxy.err").read_text().count("WARNING")
        with open(tmp / "access.log", "rb") as log:
            lines = sum(1 for _ in log)
        print(f"proxy exit {code}; {lines} access log lines; {warnings} warnings in its log")
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
