"""Rule reloads: under load every response comes from one consistent rule set; swaps
that keep names, sizes and times (cp -p, Kubernetes ..data symlinks) are seen; no 304
confirms a page of the old rules; every worker of --workers 2 reloads."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer

from proxy.consent.layers import Layers
from tests.support import ROOT
from tests.support.sockets import free_port

PAGE = b'<html><head><script src="/a.js"></script><script src="/b.js"></script></head><body>x</body></html>'
RULE = 'name = "Test"\ncategory = "analytics"\n\n[[block]]\nselector = "script[src*=\'{js}\']"\n'
V1, V2 = RULE.format(js="/a.js"), RULE.format(js="/b.js")
BROKEN = 'name = "Broken"\ncategory = "nope"\n[[block]]\nselector = "a"\n'


def generation(files: dict[str, str], directory: Path) -> str:
    """The generation of the operator files ``files`` alone (these tests run without the
    built-in rules: the first page of a new generation with them waits for the
    rewriter's compile, which is not what they measure)."""
    return Layers(directory, builtin=False).build(files).generation


async def test_reload_under_load(
    aiohttp_server: Callable[..., Awaitable[TestServer]],
    make_proxy: Callable[..., Awaitable[TestServer]],
    tmp_path: Path,
) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "x.toml").write_text(V1)
    gen1 = generation({"x.toml": V1}, rules)
    gen2 = generation({"x.toml": V2}, rules)
    expect = {gen1: (b"/a.js", b"/b.js"), gen2: (b"/b.js", b"/a.js")}  # (removed, kept)

    async def page(request: web.Request) -> web.Response:
        return web.Response(body=PAGE, content_type="text/html")

    app = web.Application()
    app.router.add_get("/", page)
    origin = await aiohttp_server(app)
    proxy = await make_proxy(
        str(origin.make_url("/")), rewrite=None, ruleset=None, rules=str(rules), builtin_rules=False
    )

    seen: list[str] = []
    failures: list[str] = []
    stop = asyncio.Event()

    async def client() -> None:
        async with aiohttp.ClientSession() as s:
            while not stop.is_set():
                async with s.get(proxy.make_url("/")) as r:
                    body = await r.read()
                    if r.status != 200:
                        failures.append(f"status {r.status}")
                        continue
                    m = re.search(r"rules=(\w+)", r.headers.get("X-Consent", ""))
                    gen = m.group(1) if m else "?"
                    seen.append(gen)
                    if gen not in expect:
                        failures.append(f"unknown generation {gen}")
                        continue
                    removed, kept = expect[gen]
                    if removed in body or kept not in body:
                        failures.append(f"body does not match generation {gen}: {body!r}")

    async def wait_for(gen: str) -> None:
        n = len(seen)
        for _ in range(60):  # up to 3 s; the promise is 2 s (asserted below)
            await asyncio.sleep(0.05)
            if seen[n:] and seen[-1] == gen:
                return
        raise AssertionError(f"generation {gen} not served; last {seen[-1:]}")

    def rename_into_place(text: str) -> None:
        tmp = rules / ".x.toml.tmp"
        tmp.write_text(text)
        os.replace(tmp, rules / "x.toml")

    clients = [asyncio.create_task(client()) for _ in range(4)]
    try:
        await asyncio.sleep(0.3)
        start = asyncio.get_running_loop().time()
        rename_into_place(V2)  # an editor's save
        await wait_for(gen2)
        assert asyncio.get_running_loop().time() - start < 2.0
        with open(rules / "x.toml", "w") as f:  # a slow in-place write
            for line in V1.splitlines(keepends=True):
                f.write(line)
                f.flush()
                await asyncio.sleep(0.15)
        await wait_for(gen1)
        (rules / "y.toml").write_text(BROKEN)  # refused: the old set keeps serving
        await asyncio.sleep(1.5)
        assert seen[-1] == gen1
        (rules / "y.toml").unlink()
        for i in range(100):  # a hundred saves in a second, ending on V2
            rename_into_place(V2 if i % 2 else V1)
            await asyncio.sleep(0.01)
        await wait_for(gen2)
        await asyncio.sleep(0.5)
    finally:
        stop.set()
        await asyncio.gather(*clients)
    assert not failures, failures[:5]
    assert len(seen) > 50
    assert set(seen) == {gen1, gen2}


# Swaps that keep names, sizes and modification times, seen by a running proxy.


async def start_site(
    aiohttp_server: Callable[..., Awaitable[TestServer]],
    make_proxy: Callable[..., Awaitable[TestServer]],
    rules: Path,
) -> TestServer:
    """An origin whose page has a validator (ETag, 304), behind a proxy watching
    ``rules``."""

    async def page(request: web.Request) -> web.Response:
        if request.headers.get("If-None-Match") in ('"p1"', 'W/"p1"'):
            return web.Response(status=304, headers={"ETag": '"p1"'})
        return web.Response(body=PAGE, content_type="text/html", headers={"ETag": '"p1"'})

    app = web.Application()
    app.router.add_get("/", page)
    origin = await aiohttp_server(app)
    return await make_proxy(
        str(origin.make_url("/")), rewrite=None, ruleset=None, rules=str(rules), builtin_rules=False
    )


async def fetch(
    proxy: TestServer, headers: dict[str, str] | None = None
) -> tuple[int, str, str | None, bytes]:
    """One GET of the page: status, rules generation, ETag, body."""
    async with aiohttp.ClientSession() as s:
        async with s.get(proxy.make_url("/"), headers=headers or {}) as r:
            body = await r.read()
            m = re.search(r"rules=(\w+)", r.headers.get("X-Consent", ""))
            return r.status, m.group(1) if m else "?", r.headers.get("ETag"), body


async def wait_for_generation(proxy: TestServer, gen: str, within: float = 2.0) -> float:
    """Seconds until the proxy serves ``gen``; fails after ``within`` (the promise)."""
    loop = asyncio.get_running_loop()
    start = loop.time()
    seen = "?"
    while loop.time() - start < within:
        _, seen, _, body = await fetch(proxy)
        if seen == gen:
            assert b"/b.js" not in body and b"/a.js" in body  # the new rules' page
            return loop.time() - start
        await asyncio.sleep(0.05)
    raise AssertionError(f"generation {gen} not served within {within} s; still {seen}")


def same_times(path: Path, like: Path) -> None:
    st = like.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


async def test_reload_sees_a_cp_p_copy_with_same_size_and_mtime(
    aiohttp_server: Callable[..., Awaitable[TestServer]],
    make_proxy: Callable[..., Awaitable[TestServer]],
    tmp_path: Path,
) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "x.toml").write_text(V1)
    proxy = await start_site(aiohttp_server, make_proxy, rules)
    assert (await fetch(proxy))[1] == generation({"x.toml": V1}, rules)
    release = tmp_path / "release"
    release.mkdir()
    (release / "x.toml").write_text(V2)  # same length as V1
    same_times(release / "x.toml", rules / "x.toml")
    before = (rules / "x.toml").stat()
    subprocess.run(["cp", "-p", str(release / "x.toml"), str(rules / "x.toml")], check=True)
    after = (rules / "x.toml").stat()
    assert (after.st_size, after.st_mtime_ns) == (before.st_size, before.st_mtime_ns)
    await wait_for_generation(proxy, generation({"x.toml": V2}, rules))


async def test_reload_sees_a_kubernetes_data_symlink_swap(
    aiohttp_server: Callable[..., Awaitable[TestServer]],
    make_proxy: Callable[..., Awaitable[TestServer]],
    tmp_path: Path,
) -> None:
    """What the kubelet does to a mounted ConfigMap: the files are symlinks through
    ``..data`` into a timestamped directory, and an update renames a new ``..data``
    symlink over the old one in one step."""
    rules = tmp_path / "rules"
    rules.mkdir()
    old = rules / "..2026_01_01_00_00_00.000000001"
    old.mkdir()
    (old / "x.toml").write_text(V1)
    (rules / "..data").symlink_to(old.name)
    (rules / "x.toml").symlink_to("..data/x.toml")
    proxy = await start_site(aiohttp_server, make_proxy, rules)
    assert (await fetch(proxy))[1] == generation({"x.toml": V1}, rules)
    new = rules / "..2026_01_01_00_05_00.000000002"
    new.mkdir()
    (new / "x.toml").write_text(V2)
    same_times(new / "x.toml", old / "x.toml")
    (rules / "..data_tmp").symlink_to(new.name)
    os.replace(rules / "..data_tmp", rules / "..data")
    shutil.rmtree(old)
    await wait_for_generation(proxy, generation({"x.toml": V2}, rules))


async def test_no_304_confirms_a_page_of_the_old_rules(
    aiohttp_server: Callable[..., Awaitable[TestServer]],
    make_proxy: Callable[..., Awaitable[TestServer]],
    tmp_path: Path,
) -> None:
    """A client holding the ETag of a page rewritten under generation G asks again
    after a reload to G': it gets the new page, never a 304 for the old one."""
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "x.toml").write_text(V1)
    gen1, gen2 = generation({"x.toml": V1}, rules), generation({"x.toml": V2}, rules)
    proxy = await start_site(aiohttp_server, make_proxy, rules)
    status, gen, old_tag, body = await fetch(proxy)
    assert (status, gen) == (200, gen1) and old_tag and gen1 in old_tag and b"/a.js" not in body
    assert (await fetch(proxy, {"If-None-Match": old_tag}))[0] == 304  # same rules: confirmed
    tmp = rules / ".x.toml.tmp"
    tmp.write_text(V2)
    os.replace(tmp, rules / "x.toml")
    await wait_for_generation(proxy, gen2)
    status, gen, new_tag, body = await fetch(proxy, {"If-None-Match": old_tag})
    assert (status, gen) == (200, gen2)
    assert b"/a.js" in body and b"/b.js" not in body
    assert new_tag and new_tag != old_tag and gen2 in new_tag
    status, *_ = await fetch(proxy, {"If-None-Match": f"{old_tag}, {new_tag}"})
    assert status == 304


# A rule change reaches every worker of `serve --workers 2`.


def worker_pids(parent: int) -> set[int]:
    children = Path(f"/proc/{parent}/task/{parent}/children").read_text()
    return {int(p) for p in children.split()}


def serving_pid(server_port: int, client_port: int, pids: set[int]) -> int | None:
    """The process holding the server side of the connection from ``client_port``."""
    sockets = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                local, remote = fields[1], fields[2]
                if int(local.rsplit(":", 1)[1], 16) == server_port and (
                    int(remote.rsplit(":", 1)[1], 16) == client_port
                ):
                    sockets.add(f"socket:[{fields[9]}]")
    for pid in pids:
        with contextlib.suppress(OSError):
            for fd in os.listdir(f"/proc/{pid}/fd"):
                with contextlib.suppress(OSError):
                    if os.readlink(f"/proc/{pid}/fd/{fd}") in sockets:
                        return pid
    return None


async def served_by(port: int, pids: set[int]) -> tuple[int | None, str]:
    """One page on a fresh connection: the worker that answered, the generation."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(b"GET / HTTP/1.1\r\nHost: shop.test\r\n\r\n")
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 20)
        client_port = writer.get_extra_info("sockname")[1]
        pid = serving_pid(port, client_port, pids)  # the connection is still open
    finally:
        writer.close()
    m = re.search(rb"(?im)^x-consent:.*rules=(\w+)", head)
    return pid, m.group(1).decode() if m else "?"


async def test_rule_change_reaches_every_worker(
    aiohttp_server: Callable[..., Awaitable[TestServer]], tmp_path: Path
) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "x.toml").write_text(V1)
    gen1, gen2 = generation({"x.toml": V1}, rules), generation({"x.toml": V2}, rules)

    async def page(request: web.Request) -> web.Response:
        return web.Response(body=PAGE, content_type="text/html")

    app = web.Application()
    app.router.add_get("/", page)
    origin = await aiohttp_server(app)
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        *(sys.executable, "-m", "proxy", "serve", "--listen", f"127.0.0.1:{port}"),
        *("--upstream", str(origin.make_url("/")), "--workers", "2", "--rules", str(rules)),
        "--no-builtin-rules",
        *("--access-log", str(tmp_path / "a.log"), "--decision-log", str(tmp_path / "d.log")),
        cwd=ROOT,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 30
        pids: set[int] = set()
        latest: dict[int | None, str] = {}
        while len(latest.keys() - {None}) < 2:  # until both workers have answered
            assert loop.time() < deadline, f"workers {pids} did not both answer: {latest}"
            pids = worker_pids(proc.pid)
            try:
                pid, gen = await served_by(port, pids)
            except OSError:
                await asyncio.sleep(0.1)
                continue
            latest[pid] = gen
        assert set(latest.values()) == {gen1} and None not in latest, latest
        workers = {pid for pid in latest if pid is not None}  # not the resource tracker
        tmp = rules / ".x.toml.tmp"
        tmp.write_text(V2)
        os.replace(tmp, rules / "x.toml")
        start = loop.time()
        reached: dict[int, float] = {}
        while reached.keys() != workers:
            assert loop.time() - start < 2.0, f"not every worker reloaded in 2 s: {latest}"
            pid, gen = await served_by(port, workers)
            assert pid is not None
            latest[pid] = gen
            if gen == gen2:
                reached.setdefault(pid, loop.time() - start)
        after = [await served_by(port, workers) for _ in range(40)]
        assert {gen for _, gen in after} == {gen2}
        assert {pid for pid, _ in after} == workers  # fresh connections reach both
    finally:
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 20) == 0
