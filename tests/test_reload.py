"""Rule reloads: under load every response comes from one consistent rule set; swaps
that keep names, sizes and times (cp -p, Kubernetes ..data symlinks) are seen."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer

from proxy.consent.rules import build_ruleset

PAGE = b'<html><head><script src="/a.js"></script><script src="/b.js"></script></head><body>x</body></html>'
RULE = 'name = "Test"\ncategory = "analytics"\n\n[[block]]\nselector = "script[src*=\'{js}\']"\n'
V1, V2 = RULE.format(js="/a.js"), RULE.format(js="/b.js")
BROKEN = 'name = "Broken"\ncategory = "nope"\n[[block]]\nselector = "a"\n'


def generation(files: dict[str, str], directory: Path) -> str:
    return build_ruleset(files, str(directory)).generation


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
        str(origin.make_url("/")), rewrite=None, ruleset=None, rules=str(rules)
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
    return await make_proxy(str(origin.make_url("/")), rewrite=None, ruleset=None, rules=str(rules))


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
