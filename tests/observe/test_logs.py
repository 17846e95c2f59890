"""What the logs keep, whatever a visitor sends: a real proxy process in front of a
real origin, hostile paths, headers and cookies, and its three logs read back (the
access log, the decision log with its consent records, the text log on stderr). The
access log: no query, no cookie, a network for an address, written in batches; the
visitor behind a trusted front; responses counted by status class."""

from __future__ import annotations

import asyncio
import io
import ipaddress
import json
import logging
import re
import shutil
import signal
import socket
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import pytest
from aiohttp.test_utils import TestServer

from proxy.observe.logs import OneLineFormatter, log_path, open_log, truncate_ip
from tests.support import ROOT
from tests.support.sockets import free_port
from tests.test_cli import read_response, serve, spawn, wait_for_port

# Each would be a record of its own if a log wrote it unescaped.
FORGED = '{"kind":"decision","forged":true}'
FORGED_ENCODED = "%0D%0A%7B%22kind%22%3A%22decision%22%2C%22forged%22%3Atrue%7D%0D%0A"
FORGED_RAW_PATH = '"},{"kind":"decision","forged":true},{"x":"'  # quotes pass the parser

ORIGIN = """
import asyncio, sys
from aiohttp import web
PAGE = (
    "<!doctype html><html><head><title>t</title>"
    "<script src='https://www.google-analytics.com/analytics.js'></script>"
    "</head><body><p>page</p></body></html>"
)
async def any_path(request):
    if request.raw_path.startswith("/dead"):
        request.transport.abort()  # no answer at all: the proxy logs a warning
        return web.Response()
    if request.raw_path.startswith("/html"):
        return web.Response(text=PAGE, content_type="text/html")
    return web.Response(text="ok")
async def main():  # no router: its patterns do not match a decoded CR or LF
    runner = web.ServerRunner(web.Server(any_path))
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", int(sys.argv[1])).start()
    await asyncio.Event().wait()
asyncio.run(main())
"""


def send(port: int, head: bytes, body: bytes = b"") -> bytes:
    """One request on its own connection; the whole answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(head + b"\r\n\r\n" + body)
        return read_response(sock)


def status(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


HOSTILE: list[tuple[str, bytes, bytes, int]] = [
    # (what, request head without the blank line, body, status)
    (
        "CR/LF percent-encoded in a page's path",
        f"GET /html/a{FORGED_ENCODED}b HTTP/1.1\r\nHost: x".encode(),
        b"",
        200,
    ),
    (
        "CR/LF percent-encoded in the path of a failing request",
        f"GET /dead/a{FORGED_ENCODED}b HTTP/1.1\r\nHost: x".encode(),
        b"",
        502,
    ),
    (
        "quotes and braces raw in a path",
        f"GET /html/{FORGED_RAW_PATH} HTTP/1.1\r\nHost: x".encode(),
        b"",
        200,
    ),
    (
        "path parameters and a query carrying secrets",
        b"GET /html;jsessionid=SECRET1/a;v=SECRET2/b?q=SECRET3 HTTP/1.1\r\nHost: x",
        b"",
        200,
    ),
    (
        "invalid UTF-8, U+2028 and a tab in X-Forwarded-For from a trusted peer",
        b"GET /plain HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 1.2.3.4\xff\xe2\x80\xa8\t"
        + FORGED.encode(),
        b"",
        200,
    ),
    (
        "a consent cookie with percent-encoded CR/LF",
        f"GET /html/c HTTP/1.1\r\nHost: x\r\nCookie: consent=v=1&analytics=1{FORGED_ENCODED}".encode(),
        b"",
        200,
    ),
    (
        "a consent cookie with U+2028, invalid UTF-8 and a tab",
        b"GET /html/d HTTP/1.1\r\nHost: x\r\nCookie: consent=v=1&analytics=1\xe2\x80\xa8\xff\t"
        + FORGED.encode(),
        b"",
        200,
    ),
    (
        "vendor cookie names (_ga_*) with U+2028, invalid UTF-8 and quotes on a withdrawal",
        b"POST /_consent HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n"
        b"Content-Length: 34\r\nCookie: _ga_\xe2\x80\xa8"
        + FORGED.encode()
        + b'=1; _ga_\xff=2; _ga_"<x>=3; _ga_ok=4',
        b"reject=all&next=/a%0D%0Ab%0D%0A%7B",
        303,
    ),
]


def test_hostile_input_never_forges_a_log_line(tmp_path: Path) -> None:
    """RELIABILITY (privacy, case 72): CR/LF, U+2028, tabs, quotes and invalid UTF-8 in
    paths, headers that reach the logs and cookies never end a log line early: every
    line of the access and decision logs is one JSON object the proxy wrote, every
    line of the text log starts a record (or is indented under one), and path
    parameters and queries are kept out (point 10)."""
    rules = tmp_path / "rules"
    shutil.copytree(ROOT / "rules", rules)
    origin_port = free_port()
    origin = spawn([sys.executable, "-c", ORIGIN, str(origin_port)], tmp_path / "origin")
    access, decisions = tmp_path / "access.log", tmp_path / "decisions.log"
    try:
        wait_for_port(origin_port, origin)
        port, proc = serve(
            tmp_path / "proxy",
            "--upstream",
            f"http://127.0.0.1:{origin_port}",
            "--access-log",
            str(access),
            "--decision-log",
            str(decisions),
            "--trusted-proxies",
            "127.0.0.1/32",
            "--rules",
            str(rules),
        )
        try:
            for what, head, body, expected in HOSTILE:
                answer = send(port, head + b"\r\nConnection: close", body)
                assert status(answer) == expected, (what, answer[:300])
                if expected == 303:
                    location = re.search(rb"(?im)^location: *(\S*)", answer)
                    assert location and location.group(1) == b"/", location
                    expired = re.findall(rb"(?im)^set-cookie: *([^=]*)=;", answer)
                    assert expired == [b"_ga_ok"]  # names that are no token are left alone
            # A rule file whose name carries a line of its own: the reload error names it.
            (rules / f"bad\n{FORGED}.toml").write_text('name = "x"\n')
            deadline = time.monotonic() + 10
            while "rules not reloaded" not in (tmp_path / "proxy.err").read_text():
                assert time.monotonic() < deadline, "the bad rule file was not reported"
                time.sleep(0.2)
        finally:
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=20) == 0
    finally:
        origin.terminate()
        origin.wait()

    access_records = json_lines(access)
    assert len(access_records) == len(HOSTILE)
    assert {r["kind"] for r in access_records} == {"access"}
    decision_records = json_lines(decisions)
    kinds = [r["kind"] for r in decision_records]
    assert kinds.count("consent") == 1 and set(kinds) == {"decision", "consent"}
    assert kinds.count("decision") == 5  # the five pages
    paths = [r["path"] for r in access_records]
    assert paths[0] == f"/html/a{FORGED_ENCODED}b"  # as sent: percent-encoded
    assert paths[2] == f"/html/{FORGED_RAW_PATH}"
    assert paths[3] == "/html/a/b"
    assert "/html/a/b" in [r.get("path") for r in decision_records]
    assert access_records[4]["client"] == "127.0.0.0"  # garbage in the chain: the peer
    consent = next(r for r in decision_records if r["kind"] == "consent")
    assert consent["granted"] == [] and consent["expired_cookies"] == ["_ga_ok"]
    for log in (access, decisions):
        text = log.read_text(encoding="utf-8")
        assert "SECRET" not in text

    errors = (tmp_path / "proxy.err").read_text(encoding="utf-8")
    for line in errors.splitlines():
        assert line.startswith(("INFO ", "WARNING ", "ERROR ", "consent-proxy:", "    ")), line
    assert f"upstream failed: GET /dead/a{FORGED_ENCODED}b: " in errors
    assert re.search(r"rules not reloaded.*bad\\x0a\{", errors), errors
    assert "SECRET" not in errors


def json_lines(path: Path) -> list[dict[str, object]]:
    """Each line of ``path`` as a JSON object; any other line fails the test."""
    records = []
    for line in path.read_text(encoding="utf-8").split("\n")[:-1]:
        record = json.loads(line)
        assert isinstance(record, dict), line
        # Strict readers refuse lone surrogates (what invalid UTF-8 decodes to).
        json.dumps(record, ensure_ascii=False).encode("utf-8")
        assert "forged" not in record, line
        records.append(record)
    return records


@pytest.mark.parametrize(
    ("raw_path", "logged"),
    [
        ("/page;jsessionid=SECRET", "/page"),
        ("/a;v=1/b;sid=2/c?q=3", "/a/b/c"),
        ("/a%3Bb/c", "/a%3Bb/c"),  # an encoded ; is part of the name, not a parameter
        ("/;x", "/"),
        ("/a?b;c", "/a"),
        ("/a#frag;x", "/a"),
        ("/", "/"),
    ],
)
def test_logged_paths_lose_query_and_path_parameters(raw_path: str, logged: str) -> None:
    assert log_path(raw_path) == logged


def test_text_log_records_stay_one_line_each() -> None:
    """A message quoting input is one line; a traceback's lines are indented under
    its record, so no line at the margin is written by anyone but the proxy."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(OneLineFormatter("%(levelname)s %(name)s: %(message)s"))
    logger = logging.getLogger("test_logs.one_line")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("bad path %s", "/a\r\nERROR forged\u2028\udcff")
        try:
            raise ValueError("oops\nERROR forged too")
        except ValueError:
            logger.exception("failed for %s", "x\ny")
    finally:
        logger.removeHandler(handler)
    lines = stream.getvalue().splitlines()
    assert lines[0] == r"WARNING test_logs.one_line: bad path /a\x0d\x0aERROR forged\u2028\udcff"
    assert lines[1] == r"ERROR test_logs.one_line: failed for x\x0ay"
    assert all(line.startswith("    ") for line in lines[2:]) and len(lines) > 3
    assert "    ERROR forged too" in lines


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
