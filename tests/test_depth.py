"""No page can stall the proxy: a page nested thousands of elements deep is rewritten
at the cost of a flat one, and other requests are answered while it is."""

from __future__ import annotations

import asyncio
import gzip
import json
import re
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer

from proxy.html import Element, Rewriter
from proxy.http.timeslice import Timesliced

if TYPE_CHECKING:
    from _typeshed import TraceFunction

MakeProxy = Callable[..., Awaitable[TestServer]]

DEPTH = 3000
# Ten rules of descendant selectors: three take the page's trackers, the others look
# for ancestors the page has many candidates for, or none (the costly misses).
SELECTORS = (
    "article div script",
    "html div img",
    "body div.box iframe",
    "div.a div img",
    "main div.x img",
    "section div.l1 div script",
    "aside div a",
    "nav div.share a",
    "div#top div script",
    "header div.l2 div img",
)
TRACKERS = (
    '<img src="https://www.facebook.com/tr?id=1&amp;ev=PageView" height="1" width="1">',
    '<script src="https://www.googletagmanager.com/gtag/js?id=G-1"></script>',
    '<iframe src="https://www.facebook.com/plugins/like.php?href=x"></iframe>',
)


def deep_page(depth: int = DEPTH, nested: bool = True, copies: int = 1) -> bytes:
    """``depth`` divs, each inside the previous one (``nested``) or all side by side,
    with trackers at a third, two thirds and the bottom of the nesting; the same bytes
    in another order, so both are the same size (about 119 KB for 3,000). With
    ``copies``, that many such articles one after the other."""
    opens, closes = [], []
    for i in range(depth):
        tracker = TRACKERS[i // 1000 % 3] if i % 1000 == 999 else ""
        opens.append(f'<div class="l{i % 10} box">at level {i:04} {tracker}')
        closes.append("</div>")
    if nested:
        body = "".join(opens) + "".join(closes)
    else:
        body = "".join(o + c for o, c in zip(opens, closes, strict=True))
    article = f"<article>{body}</article>" * copies
    return f"<!doctype html><html><head><title>deep</title></head><body>{article}</body></html>".encode()


def rule_file() -> str:
    blocks = "".join(f'\n[[block]]\nselector = "{s}"\n' for s in SELECTORS)
    return f'name = "Deep"\ncategory = "analytics"\n{blocks}'


def lines_run(job: Callable[[], bytes]) -> tuple[bytes, int]:
    """What ``job`` returns, and how many lines of Python it ran (loop turns included):
    a measure of the work that the machine's speed and load do not change."""
    count = 0

    def trace(frame: FrameType, event: str, arg: object) -> TraceFunction:
        nonlocal count
        count += event == "line"
        return trace

    sys.settrace(trace)
    try:
        out = job()
    finally:
        sys.settrace(None)
    return out, count


def rewrite(page: bytes, selectors: Sequence[str] = SELECTORS) -> Callable[[], bytes]:
    """A job: the page through a rewriter removing what ``selectors`` select."""

    def job() -> bytes:
        rw = Rewriter([(s, remove) for s in selectors])
        return rw.feed(page) + rw.close()

    return job


def test_the_page_is_the_one_of_the_report() -> None:
    page = deep_page()
    assert 110_000 < len(page) < 125_000
    assert page.count(b"<div") == DEPTH and len(deep_page(nested=False)) == len(page)


def test_deep_page_rewritten_with_about_the_work_of_a_flat_one() -> None:
    rewrite(deep_page())()  # compiled once, outside the measure
    out_deep, deep = lines_run(rewrite(deep_page()))
    out_flat, flat = lines_run(rewrite(deep_page(nested=False)))
    # Every tracker is inside <article> and a div: taken in both shapes.
    for out in (out_deep, out_flat):
        assert b"facebook" not in out and b"googletagmanager" not in out
        assert out.count(b"<div") == DEPTH and b"level 2999" in out
    assert deep < 3 * flat, (deep, flat)  # about 1.9x: the state of every nested div


def test_deep_nesting_inside_a_removed_element_costs_what_flat_nesting_does() -> None:
    """Everything inside a removed element is followed to find its end (and implied
    ends): that must not cost more per element when the content is deeply nested."""
    out_deep, deep = lines_run(rewrite(deep_page(6000), ["article"]))
    out_flat, flat = lines_run(rewrite(deep_page(6000, nested=False), ["article"]))
    assert (
        out_deep
        == out_flat
        == b"<!doctype html><html><head><title>deep</title></head><body></body></html>"
    )
    assert deep < 3 * flat, (deep, flat)  # about 1.6x (a scan of the open elements: 100x)


def remove(el: Element) -> None:
    el.remove()


async def test_timesliced_feed_gives_what_one_feed_gives() -> None:
    page = deep_page(copies=2)
    whole = Rewriter([(s, remove) for s in SELECTORS])
    expected = whole.feed(page) + whole.close()
    rw = Rewriter([(s, remove) for s in SELECTORS])
    sliced = Timesliced(rw.feed)
    out = await sliced.feed(page[:70000]) + await sliced.feed(page[70000:]) + rw.close()
    assert out == expected


async def test_health_is_answered_while_a_deep_page_is_rewritten(
    aiohttp_server: Callable[..., Awaitable[TestServer]], make_proxy: MakeProxy, tmp_path: Path
) -> None:
    """A health request reaches the proxy just before a page of three copies of the
    deep page does, gzipped so that it arrives in one read (no wait for the network
    gives the event loop a turn). The proxy must finish the health response first."""
    page = deep_page(copies=3)
    ask: list[Callable[[], None]] = []

    async def serve(request: web.Request) -> web.StreamResponse:
        body = gzip.compress(page)
        out = web.StreamResponse(
            headers={"Content-Type": "text/html; charset=utf-8", "Content-Encoding": "gzip"}
        )
        out.content_length = len(body)
        await out.prepare(request)
        ask.pop()()  # the health request leaves (on loopback: at once) ...
        await out.write(body)  # ... then the whole page
        await out.write_eof()
        return out

    app = web.Application()
    app.router.add_get("/deep", serve)
    origin = await aiohttp_server(app)
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "deep.toml").write_text(rule_file())
    proxy = await make_proxy(
        str(origin.make_url("/")), rewrite=None, ruleset=None, rules=str(rules)
    )
    health = b"GET /_consent/health HTTP/1.1\r\nHost: proxy\r\n\r\n"
    reader, writer = await asyncio.open_connection(proxy.host, proxy.port)

    async def answer() -> bytes:
        head = await reader.readuntil(b"\r\n\r\n")
        length = re.search(rb"(?i)\r\ncontent-length: *(\d+)", head)
        assert length is not None, head
        await reader.readexactly(int(length.group(1)))
        return head

    # No connect timeout: with a stalled loop the test fails on the order, not on that.
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=600)) as session:
        try:
            writer.write(health)  # once first: the connection is open and waiting
            assert (await answer()).startswith(b"HTTP/1.1 200")
            ask.append(lambda: writer.write(health))
            asked = asyncio.create_task(answer())
            async with session.get(proxy.make_url("/deep")) as r:
                body = await r.read()
            assert (await asked).startswith(b"HTTP/1.1 200")
        finally:
            writer.close()
    # The access log has a line per response, written when the proxy finished it.
    lines = [json.loads(line) for line in (tmp_path / "access.log").read_text().splitlines()]
    assert [line["path"] for line in lines] == ["/_consent/health", "/_consent/health", "/deep"]
    assert r.status == 200
    assert b"facebook" not in body and b"googletagmanager" not in body
    assert body.count(b'<div class="l') == 3 * DEPTH and b"level 2999" in body
