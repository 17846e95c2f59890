"""The rewrite cache through the real proxy: a page rewritten once is given to the
next visitor of the same consent variant and rules generation while the origin sends
the same bytes; never across variants or generations, never for what the origin keeps
private or uses to set cookies."""

from __future__ import annotations

import asyncio
import gzip
import json
import shutil
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import brotli
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from proxy.consent.model import OPTIONAL

ROOT = Path(__file__).resolve().parent.parent.parent
MakeProxy = Callable[..., Awaitable[TestServer]]
Serve = Callable[..., Awaitable[TestServer]]
REFUSED = "consent=v=1&" + "&".join(f"{c}=0" for c in OPTIONAL)
TRACKER = b'<script src="https://www.google-analytics.com/analytics.js"></script>'


def page(version: str, filler: int = 50) -> bytes:
    return (
        b"<!doctype html><html><head><title>Cached</title>" + TRACKER + b"</head><body>"
        b"<h1>" + version.encode() + b"</h1>" + b"<p>filler text</p>" * filler + b"</body></html>"
    )


class Origin:
    """Pages whose bytes, validators and caching headers the test sets."""

    def __init__(self) -> None:
        self.version = "v1"
        self.headers: dict[str, str] = {}
        self.filler = 50
        self.raw: bytes | None = None  # sent as it is instead of the page
        self.gzip = False  # the page gzip-encoded

    async def serve(self, request: web.Request) -> web.StreamResponse:
        body = page(self.version, self.filler) if self.raw is None else self.raw
        headers = {"Content-Type": "text/html; charset=utf-8", **self.headers}
        if self.gzip:
            body = gzip.compress(body, mtime=0)
            headers["Content-Encoding"] = "gzip"
        if request.match_info["kind"] == "etag":
            headers["ETag"] = f'"{self.version}"'
        elif request.match_info["kind"] == "modified":
            headers["Last-Modified"] = "Mon, 01 Jan 2024 00:00:00 GMT"
        elif request.match_info["kind"] == "streamed":  # long, sent in pieces
            out = web.StreamResponse(headers=headers)
            await out.prepare(request)
            for i in range(0, len(body), 16384):
                await out.write(body[i : i + 16384])
            await out.write_eof()
            return out
        response = web.Response(body=body, headers=headers)
        if "Set-Cookie" in self.headers:
            response.headers["Set-Cookie"] = self.headers["Set-Cookie"]
        return response


class Client:
    """Requests as a visitor (one consent cookie, one Accept-Encoding), reading what
    the cache did from X-Consent-Actions."""

    def __init__(self, proxy: TestServer) -> None:
        self.proxy = proxy

    async def get(
        self, path: str, cookie: str = "", coding: str = "identity"
    ) -> tuple[str, bytes, aiohttp.ClientResponse]:
        headers = {"Accept-Encoding": coding}
        if cookie:
            headers["Cookie"] = cookie
        async with aiohttp.ClientSession(
            auto_decompress=False, cookie_jar=aiohttp.DummyCookieJar()
        ) as s:
            async with s.get(self.proxy.make_url(path), headers=headers) as r:
                body = await r.read()
        actions = r.headers["X-Consent-Actions"]
        return actions.rsplit("cache=", 1)[1], body, r


@pytest.fixture
async def origin(aiohttp_server: Serve) -> tuple[Origin, TestServer]:
    origin = Origin()
    app = web.Application()
    app.router.add_get("/{kind}", origin.serve)
    return origin, await aiohttp_server(app)


@pytest.fixture
def rules(tmp_path: Path) -> Path:
    directory = tmp_path / "rules"
    directory.mkdir()
    shutil.copy(ROOT / "rules" / "google-analytics.toml", directory)
    return directory


@pytest.fixture
async def client(origin: tuple[Origin, TestServer], make_proxy: MakeProxy, rules: Path) -> Client:
    proxy = await make_proxy(
        str(origin[1].make_url("/")), rewrite=None, ruleset=None, rules=str(rules)
    )
    return Client(proxy)


def decisions(tmp_path: Path) -> list[dict[str, object]]:
    lines = (tmp_path / "decisions.log").read_text().splitlines()
    return [d for d in map(json.loads, lines) if d.get("kind") == "decision"]


@pytest.mark.parametrize("kind", ["etag", "modified", "digest", "streamed"])
async def test_hit_after_miss(
    client: Client, origin: tuple[Origin, TestServer], tmp_path: Path, kind: str
) -> None:
    """The second visitor gets the same bytes and headers without a rewrite: for a
    strong ETag, Last-Modified and length, or a digest of the body (read whole at once,
    or streamed past the first 64 KB and stored at its end)."""
    if kind == "streamed":
        origin[0].filler = 8000  # 144 KB
    status, first, r1 = await client.get(f"/{kind}")
    assert status == "miss" and TRACKER not in first and b"<h1>v1</h1>" in first
    status, second, r2 = await client.get(f"/{kind}")
    assert status == "hit"
    assert second == first
    assert r2.headers["Content-Length"] == str(len(first))
    actions = "google-analytics=remove*1, google-analytics=surrogate*1"  # GA's stand-in
    assert r2.headers["X-Consent-Actions"] == f"{actions}; cache=hit"
    for name in ("ETag", "Cache-Control", "Vary", "X-Consent", "Content-Type"):
        assert r2.headers.get(name) == r1.headers.get(name), name
    logged = decisions(tmp_path)[-2:]
    assert [d["cache"] for d in logged] == ["miss", "hit"]
    assert logged[1]["actions"] == logged[0]["actions"]
    assert logged[1]["rewrite_ms"] == 0.0 and logged[1]["complete"] is True


async def test_never_across_consent_variants(client: Client) -> None:
    assert (await client.get("/etag"))[0] == "miss"  # undecided: with the banner
    status, refused, _ = await client.get("/etag", REFUSED)
    assert status == "miss"  # the same page, another variant
    assert b"cp-banner" not in refused and TRACKER not in refused
    assert (await client.get("/etag", REFUSED))[0] == "hit"
    status, undecided, _ = await client.get("/etag")
    assert status == "hit" and b'id="cp-banner"' in undecided


async def test_each_coding_its_own_entry(client: Client, origin: tuple[Origin, TestServer]) -> None:
    origin[0].gzip = True  # an unencoded page would leave unencoded for every client
    assert (await client.get("/digest", coding="br"))[0] == "miss"
    assert (await client.get("/digest", coding="identity"))[0] == "miss"
    status, packed, r = await client.get("/digest", coding="br")
    assert status == "hit" and r.headers["Content-Encoding"] == "br"
    plain = (await client.get("/digest", coding="identity"))[1]
    assert brotli.decompress(packed) == plain


@pytest.mark.parametrize("kind", ["etag", "digest"])
async def test_origin_changing_its_bytes_is_a_miss(
    client: Client, origin: tuple[Origin, TestServer], kind: str
) -> None:
    assert (await client.get(f"/{kind}"))[0] == "miss"
    assert (await client.get(f"/{kind}"))[0] == "hit"
    origin[0].version = "v2"  # a new ETag, or other bytes
    status, body, _ = await client.get(f"/{kind}")
    assert status == "miss" and b"<h1>v2</h1>" in body
    assert (await client.get(f"/{kind}"))[0] == "hit"


async def test_the_same_bytes_under_another_coding_are_another_page(
    client: Client, origin: tuple[Origin, TestServer]
) -> None:
    """The origin's bytes as received prove sameness only under the same
    Content-Encoding: gzip bytes sent as they are, then the same bytes as gzip, are
    two pages (the second is the page with its tracker, rewritten)."""
    origin[0].raw = gzip.compress(page("v1"), mtime=0)
    status, garbled, _ = await client.get("/digest")
    assert status == "miss" and garbled == origin[0].raw
    origin[0].headers = {"Content-Encoding": "gzip"}
    status, body, _ = await client.get("/digest")
    assert status == "miss" and b"<h1>v1</h1>" in body and TRACKER not in body
    assert (await client.get("/digest"))[0] == "hit"


async def test_other_compressed_bytes_of_the_same_page_are_a_hit(
    client: Client, origin: tuple[Origin, TestServer]
) -> None:
    """An origin that compresses with a timestamp sends other bytes each time: the
    decoded body's digest still finds the page."""
    origin[0].headers = {"Content-Encoding": "gzip"}
    origin[0].raw = gzip.compress(page("v1"), mtime=1)
    status, first, _ = await client.get("/digest")
    assert status == "miss"
    origin[0].raw = gzip.compress(page("v1"), mtime=2)
    status, second, _ = await client.get("/digest")
    assert status == "hit" and second == first


async def test_a_body_cut_short_of_the_cached_one_is_a_miss(
    client: Client, origin: tuple[Origin, TestServer]
) -> None:
    """Bytes that match the start of what the cached page was made from, then end,
    are another page."""
    origin[0].raw = page("v1")
    assert (await client.get("/digest"))[0] == "miss"
    origin[0].raw = page("v1")[:-40]
    status, body, _ = await client.get("/digest")
    assert status == "miss" and b"</body>" not in body and b"filler text" in body
    assert TRACKER not in body
    assert (await client.get("/digest"))[0] == "hit"


@pytest.mark.parametrize(
    "headers",
    [
        {"Cache-Control": "no-store"},
        {"Cache-Control": "max-age=60, private"},
        {"Set-Cookie": "session=1; Path=/"},
        {"Vary": "*"},
        {"Content-Security-Policy": "script-src 'nonce-r4nd0m' 'strict-dynamic'"},
    ],
)
async def test_what_the_origin_keeps_private_bypasses(
    client: Client, origin: tuple[Origin, TestServer], headers: dict[str, str]
) -> None:
    origin[0].headers = headers
    for _ in range(2):
        status, body, _ = await client.get("/etag")
        assert status == "bypass" and TRACKER not in body


async def test_a_visitor_coming_back_to_a_widget_bypasses(client: Client) -> None:
    """That page marks the widget for this visitor alone (and expires a cookie)."""
    assert (await client.get("/etag", REFUSED))[0] == "miss"
    returning = f"{REFUSED}; consent-return=cp-analytics-1"
    for _ in range(2):
        assert (await client.get("/etag", returning))[0] == "bypass"
    assert (await client.get("/etag", REFUSED))[0] == "hit"


async def test_vary_keys_on_what_the_origin_varies_on(
    client: Client, origin: tuple[Origin, TestServer]
) -> None:
    origin[0].headers = {"Vary": "Accept-Encoding, User-Agent"}
    assert (await client.get("/etag"))[0] == "miss"
    assert (await client.get("/etag"))[0] == "hit"  # the same User-Agent (aiohttp's)


async def test_a_rules_reload_drops_the_cache(client: Client, rules: Path, tmp_path: Path) -> None:
    """Pages made under other rules are never given; and a reload drops them all: back
    to the first rules (and their generation), the page is rewritten again."""
    assert (await client.get("/etag"))[0] == "miss"
    assert (await client.get("/etag"))[0] == "hit"
    original = await generation(client)
    shutil.copy(ROOT / "rules" / "facebook.toml", rules)
    await reloaded(client, original)
    assert (await client.get("/etag"))[0] == "miss"
    assert (await client.get("/etag"))[0] == "hit"
    changed = await generation(client)
    (rules / "facebook.toml").unlink()
    await reloaded(client, changed)
    assert await generation(client) == original
    assert (await client.get("/etag"))[0] == "miss"


async def test_size_zero_turns_it_off(
    origin: tuple[Origin, TestServer], make_proxy: MakeProxy, rules: Path
) -> None:
    proxy = await make_proxy(
        str(origin[1].make_url("/")), rewrite=None, ruleset=None, rules=str(rules), rewrite_cache=0
    )
    client = Client(proxy)
    for _ in range(2):
        assert (await client.get("/etag"))[0] == "bypass"


async def test_a_page_too_big_for_an_entry_is_not_kept(
    origin: tuple[Origin, TestServer], make_proxy: MakeProxy, rules: Path
) -> None:
    origin[0].filler = 8000  # 144 KB, over an eighth of the cache
    proxy = await make_proxy(
        str(origin[1].make_url("/")),
        rewrite=None,
        ruleset=None,
        rules=str(rules),
        rewrite_cache=512 * 1024,
    )
    client = Client(proxy)
    for _ in range(2):
        assert (await client.get("/etag"))[0] == "miss"


async def generation(client: Client) -> str:
    async with aiohttp.ClientSession() as s:
        async with s.get(client.proxy.make_url("/_consent/health")) as r:
            rules: dict[str, str] = (await r.json())["rules"]
    return rules["generation"]


async def reloaded(client: Client, before: str) -> None:
    for _ in range(100):
        await asyncio.sleep(0.1)
        if await generation(client) != before:
            return
    raise AssertionError("the rules were not reloaded")
