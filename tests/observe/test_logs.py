"""The access log: JSON lines with no query, no cookie and no address, only a network;
written in batches; the visitor behind a trusted front; responses counted by class."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from proxy.observe.logs import open_log, truncate_ip

MakeProxy = Callable[..., Awaitable[TestServer]]


def url(server: TestServer, path: str) -> str:
    return str(server.make_url(path))


async def test_access_log_is_json_without_query_and_full_ip(
    proxy: TestServer, tmp_path: object
) -> None:
    async with (
        aiohttp.ClientSession() as s,
        s.get(url(proxy, "/echo?email=a@b.example"), headers={"Cookie": "sid=secret"}) as r,
    ):
        await r.read()
    log = (tmp_path / "access.log").read_text()  # type: ignore[operator]
    record = json.loads(log.strip().splitlines()[-1])
    assert record["path"] == "/echo" and record["status"] == 200 and record["method"] == "GET"
    assert isinstance(record["duration_us"], int) and record["duration_us"] > 0
    assert abs(record["time"] - time.time()) < 60 and record["bytes"] > 0
    assert record["client"] == "127.0.0.0"
    assert "email" not in log and "secret" not in log


async def test_log_lines_wait_at_most_log_flush(tmp_path: Path) -> None:
    """Lines are written in batches: none is written at once, every one within
    log_flush seconds, and closing the log writes what waits."""
    path = tmp_path / "batched.log"
    log = open_log("test", str(path), flush_after=0.2)
    log.write_line('{"n":1}')
    log.write_line('{"n":2}')
    assert path.read_text() == ""  # waiting in memory
    await asyncio.sleep(0.6)
    assert path.read_text() == '{"n":1}\n{"n":2}\n'
    log.write_line('{"n":3}')
    log.close()
    assert path.read_text().endswith('{"n":3}\n')


@pytest.mark.parametrize(
    ("address", "network"),
    [
        ("203.0.113.77", "203.0.113.0"),
        ("2001:db8:abcd:12:1::7", "2001:db8:abcd::"),
        ("::ffff:198.51.100.9", "198.51.100.0"),
        ("fe80::1%eth0", "fe80::"),
        ("garbage", "-"),
        (None, "-"),
    ],
)
def test_logged_addresses_are_networks(address: str | None, network: str) -> None:
    assert truncate_ip(address) == network


@pytest.mark.parametrize(
    ("trusted", "client"),
    [
        ((ipaddress.ip_network("127.0.0.0/8"),), "203.0.113.0"),  # the front's word
        ((), "127.0.0.0"),  # anyone else's X-Forwarded-For is ignored
    ],
)
async def test_access_log_names_the_visitor_behind_a_trusted_front(
    origin: TestServer,
    make_proxy: MakeProxy,
    tmp_path: Path,
    trusted: tuple[ipaddress.IPv4Network, ...],
    client: str,
) -> None:
    proxy = await make_proxy(url(origin, "/"), trusted_proxies=trusted)
    async with (
        aiohttp.ClientSession() as s,
        s.get(url(proxy, "/echo"), headers={"X-Forwarded-For": "203.0.113.9"}) as r,
    ):
        await r.read()
    record = json.loads((tmp_path / "access.log").read_text().strip().splitlines()[-1])
    assert record["client"] == client


async def test_access_log_counts_responses_by_class(proxy: TestServer) -> None:
    async with aiohttp.ClientSession() as s:
        for path in ("/echo", "/echo", "/no-such-page"):
            async with s.get(url(proxy, path)) as r:
                await r.read()
        await asyncio.sleep(0.1)  # each line is written once its response has gone
        async with s.get(url(proxy, "/_consent/metrics")) as r:
            text = await r.text()
    assert 'consent_proxy_responses_total{class="2xx"} 2' in text
    assert 'consent_proxy_responses_total{class="4xx"} 1' in text
