"""Consent enforced by the real proxy on real pages: no leaks, nothing else lost,
byte identity when everything is granted, headers as QA sees them with curl."""

from __future__ import annotations

import asyncio
import gzip
import json
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from proxy.consent.consent_mode import ConsentModeSettings
from proxy.consent.jsparts import statements, tokens
from proxy.consent.model import OPTIONAL
from proxy.consent.rules import load_rules
from tests.html.test_rewriter import head_noscript
from tests.support import ROOT, oracle, trackers
from tests.support.corpus import page as corpus_page
from tests.support.corpus import pages

RULES = load_rules(ROOT / "rules")
ALL = "consent=v=1&" + "&".join(f"{c}=1" for c in OPTIONAL)
NONE = "consent=v=1&" + "&".join(f"{c}=0" for c in OPTIONAL)
MakeProxy = Callable[..., Awaitable[TestServer]]
TRACKER_PAGES = pages("with-trackers")
NO_CONSENT_MODE = ConsentModeSettings("off")
GOOGLE_DEFAULT = re.compile(
    rb"<script>window\.dataLayer = window\.dataLayer \|\| \[\]; "
    rb"function gtag\(\)\{dataLayer\.push\(arguments\);\} gtag\('consent','default',[^<]*</script>"
)


def without_google_default(body: bytes) -> bytes:
    """The page without the Consent Mode default a visitor who allows Google's tags
    gets first in the head (test_consent_mode.py); it must be there once."""
    stripped, n = GOOGLE_DEFAULT.subn(b"", body, count=1)
    assert n == 1, "no Consent Mode default in the page"
    return stripped


async def page_origin(aiohttp_server: Callable[..., Awaitable[TestServer]]) -> TestServer:
    async def serve(request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        path = next(p for p in TRACKER_PAGES + pages("clean") if p.name == name)
        headers = {
            "ETag": '"v1"',
            "Last-Modified": "Mon, 01 Jan 2024 00:00:00 GMT",
            "Cache-Control": "public, max-age=300, s-maxage=600",
        }
        return web.Response(body=path.read_bytes(), content_type="text/html", headers=headers)

    app = web.Application()
    app.router.add_get("/p/{name}", serve)
    return await aiohttp_server(app)


@pytest.fixture
async def site(
    aiohttp_server: Callable[..., Awaitable[TestServer]], make_proxy: MakeProxy
) -> TestServer:
    origin = await page_origin(aiohttp_server)
    return await make_proxy(str(origin.make_url("/")), rewrite=None, ruleset=RULES)


async def fetch(
    proxy: TestServer, path: str, cookie: str | None = None, headers: dict[str, str] | None = None
) -> tuple[bytes, aiohttp.ClientResponse]:
    hdrs = dict(headers or {})
    if cookie:
        hdrs["Cookie"] = cookie
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as s:
        async with s.get(proxy.make_url(path), headers=hdrs) as r:
            return await r.read(), r


# -- the tree check: output = input minus whole elements -------------------------------------

REMOVABLE = {
    "statement",
    "script",
    "iframe",
    "img",
    "link",
    "ins",
    "div",
    "a",
    "embed",
    "object",
    "noscript",
}


COMMENT: object = ET.Comment


def _children(node: ET.Element) -> list[ET.Element]:
    return [c for c in node if isinstance(c.tag, str) or c.tag is COMMENT]


def _same(a: ET.Element, b: ET.Element) -> bool:
    # Attributes may go (the catalogue strips a tracker's ping, poster or style), not change.
    kept = b.attrib.items() <= a.attrib.items()
    return a.tag == b.tag and kept and (a.tag is not COMMENT or a.text == b.text)


_CSS_VALUES = re.compile(
    r"(?<=url\()\s*(?:\"[^\"\n]*\"|'[^'\n]*'|[^)\"'\s]*)|\"[^\"\n]*\"|'[^'\n]*'"
)


def pruned(inp: ET.Element, out: ET.Element, removed: list[str]) -> bool:
    """Whether ``out`` is ``inp`` with some whole elements taken out (their tags are
    appended to ``removed``); text must be unchanged except for what they held."""
    ins, outs = _children(inp), _children(out)
    text_in, text_out = [inp.text or ""], [out.text or ""]
    if inp.tag == "style":  # the catalogue empties the URLs of trackers in CSS
        text_in = [_CSS_VALUES.sub('""', t) for t in text_in]
        text_out = [_CSS_VALUES.sub('""', t) for t in text_out]
    if inp.tag == "script" and text_in != text_out:  # a tracker's statements cut out
        if not cut_from(text_in[0], text_out[0]):
            return False
        removed.append("statement")
        text_in = text_out
    j = 0
    for child in ins:
        nested: list[str] = []
        if j < len(outs) and _same(child, outs[j]) and pruned(child, outs[j], nested):
            removed.extend(nested)
            text_in.append("\0")
            text_out += ["\0", outs[j].tail or ""]
            j += 1
        else:
            removed.append(str(child.tag))
        text_in.append(child.tail or "")
    # Whitespace aside: a parser moves the white space around a removed <head> element
    # into or out of <body>.
    return j == len(outs) and "".join("".join(text_in).split()) == "".join(
        "".join(text_out).split()
    )


def cut_from(original: str, kept: str) -> bool:
    """Whether ``kept`` is the script ``original`` with some top-level statements
    taken out (each leaves a semicolon), the rest as they were (proxy/consent/cuts.py)."""
    whole, left = statements(original), tokens(kept)
    if whole is None or left is None:
        return False
    rest = [t.text for t in left if t.text != ";"]
    for part in whole:
        mine = [t.text for t in part.tokens if t.text != ";"]
        if mine and rest[: len(mine)] == mine:
            rest = rest[len(mine) :]
    return not rest


def without_proxy_markup(root: ET.Element) -> ET.Element:
    """Drop what the proxy adds: placeholders, their forms and their style, surrogates."""
    parents = {id(c): p for p in root.iter() for c in p}
    for el in list(root.iter()):
        cls = el.get("class", "") if isinstance(el.tag, str) else ""
        added = (
            "cp-ph" in cls.split()
            or (el.tag == "form" and el.get("id", "").startswith(("cp-grant-", "cp-load-once")))
            or (
                el.tag == "style"
                and (".cp-ph" in (el.text or "") or "#cp-banner" in (el.text or ""))
            )
            or (isinstance(el.tag, str) and el.get("id") == "cp-banner")
            or (el.tag == "script" and trackers.our_surrogate(el))
        )
        if added and id(el) in parents:
            oracle.remove(root, [el])
    return root


@pytest.mark.parametrize("path", TRACKER_PAGES, ids=lambda p: p.name)
async def test_tracker_pages_through_the_proxy(site: TestServer, path: Path) -> None:
    original = path.read_bytes()
    # html5lib re-parents what a <noscript> in <head> holds, differently once elements
    # near it are gone; the tree comparison is skipped there (leaks are still checked).
    compare_trees = not head_noscript(original)
    before = trackers.leaks(oracle.parse(original))
    denied, r = await fetch(site, f"/p/{path.name}")
    assert r.status == 200
    tree = oracle.parse(denied)
    assert trackers.leaks(tree) == [], "a tracker is left with everything denied"
    removed: list[str] = []
    if compare_trees:
        assert pruned(oracle.parse(original), without_proxy_markup(tree), removed), (
            "more than whole elements changed"
        )
        assert set(removed) <= REMOVABLE, removed
        assert removed or not before
    granted, r2 = await fetch(site, f"/p/{path.name}", ALL)
    assert without_google_default(granted) == original, (
        "with everything granted the page must be byte-identical, but for the Consent Mode default"
    )
    # Nothing removed (the rewrite cache may add where the page came from).
    assert r2.headers["X-Consent-Actions"].split(";")[0] == "none"


async def test_clean_pages_unchanged_either_way(site: TestServer) -> None:
    for path in pages("clean")[:10]:
        body, _ = await fetch(site, f"/p/{path.name}", NONE)
        # Clean of the built-in vendors, not of the catalogue's (video embeds, Gravatar,
        # a news site's social widgets): what changes is whole elements and attributes.
        original = path.read_bytes()
        if body != original:
            tree = without_proxy_markup(oracle.parse(body))
            assert pruned(oracle.parse(original), tree, []), path.name


async def test_consent_headers(site: TestServer) -> None:
    page = "/p/tmz-1.html"
    _, denied = await fetch(site, page)
    _, granted = await fetch(site, page, ALL)
    _, gpc = await fetch(site, page, headers={"Sec-GPC": "1"})
    for r in (denied, granted):
        assert r.headers["Cache-Control"] == "private, max-age=300"
        assert [v.strip() for v in r.headers["Vary"].split(",")] == [
            "Accept-Encoding",
            "Cookie",
            "Sec-GPC",
        ]
        assert "Last-Modified" not in r.headers
        assert r.headers["ETag"].startswith('W/"v1~')
    assert denied.headers["ETag"] != granted.headers["ETag"]
    assert denied.headers["X-Consent"] == (
        "analytics=0; advertising=0; social=0; preferences=0; media=0; source=default; "
        f"rules={RULES.generation}"
    )
    assert gpc.headers["X-Consent"].endswith(f"source=gpc; rules={RULES.generation}")
    assert granted.headers["X-Consent"].startswith(
        "analytics=1; advertising=1; social=1; preferences=1; media=1; source=cookie"
    )
    listed, *notes = denied.headers["X-Consent-Actions"].split("; ")
    assert notes[-1] == "cache=miss"
    actions = listed.split(", ")
    assert any(a.startswith("google-analytics=remove*") for a in actions), actions
    assert any(a.startswith("comscore=remove*") for a in actions), actions


async def test_304_only_for_the_same_variant(site: TestServer) -> None:
    _, denied = await fetch(site, "/p/tmz-1.html")
    tag = denied.headers["ETag"]
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as s:
        async with s.get(site.make_url("/p/tmz-1.html"), headers={"If-None-Match": tag}) as r:
            assert r.status == 200  # this origin has no conditional support: a full page
        async with s.get(
            site.make_url("/p/tmz-1.html"), headers={"If-None-Match": tag, "Cookie": ALL}
        ) as r:
            body = await r.read()
            assert r.status == 200 and b"google-analytics" in body


async def test_demo_page_placeholders(
    aiohttp_server: Callable[..., Awaitable[TestServer]], make_proxy: MakeProxy
) -> None:
    from proxy.demo import origin_app

    origin = await aiohttp_server(origin_app())
    proxy = await make_proxy(str(origin.make_url("/")), rewrite=None, ruleset=RULES)
    body, _r = await fetch(proxy, "/?utm=1")
    text = body.decode()
    # Two Facebook (the Like iframe's an embed's), one Twitter.
    assert len(re.findall('class="cp-ph(?: cp-ph-embed)?"', text)) == 3
    assert text.count("<style>.cp-ph") == 1
    assert text.count('id="cp-banner"') == 1
    assert '<form id="cp-grant-social" method="post" action="/_consent" hidden="hidden">' in text
    assert '<input type="hidden" name="next" value="/?utm=1" />' in text or 'value="/"' in text
    assert text.index('id="cp-grant-social"') < text.index("</body>")
    assert 'form="cp-grant-social"' in text
    assert "/static/spacer.gif" in text  # the first-party 1x1 spacer stays
    assert trackers.leaks(oracle.parse(body)) == []
    social_only, _ = await fetch(proxy, "/", "consent=v=1&social=1")
    assert b"fb-like" in social_only and b"google-analytics" not in social_only


async def test_placeholders_and_the_way_back_to_their_widgets(
    aiohttp_server: Callable[..., Awaitable[TestServer]], make_proxy: MakeProxy
) -> None:
    """Each placeholder has an id and its button comes back to it; the page after the
    grant marks the widget with that id, once (the return cookie is expired)."""
    from proxy.demo import origin_app, render

    origin = await aiohttp_server(origin_app())
    proxy = await make_proxy(str(origin.make_url("/")), rewrite=None, ruleset=RULES)
    text = (await fetch(proxy, "/?utm=1", "consent=v=1&social=0"))[0].decode()
    for n in (1, 2, 3):  # in page order: the iframe in the main column, then the sidebar's
        assert text.count(f'id="cp-social-{n}"') == 1
        assert f'name="next" value="/?utm=1#cp-social-{n}"' in text
    assert 'id="cp-social-4"' not in text
    assert '<form id="cp-grant-social" method="post" action="/_consent" hidden="hidden">' in text
    assert 'name="next"' not in text[text.index('<form id="cp-grant-social"') :]

    origin_page = render("index")
    iframe = origin_page[origin_page.index("<iframe src=") :]
    iframe = iframe[: iframe.index(">") + 1]
    assert "facebook.com/plugins" in iframe and " id=" not in iframe
    granted = "consent=v=1&social=1&analytics=0&advertising=0&preferences=0"
    body, r = await fetch(proxy, "/?utm=1", f"{granted}; consent-return=cp-social-1")
    page = body.decode()
    assert page.count('id="cp-social-') == 1
    assert iframe[:-1] + ' id="cp-social-1">' in page  # the widget itself: scrolled to its top
    assert r.headers.getall("Set-Cookie") == ["consent-return=; Path=/; Max-Age=0"]
    body, _ = await fetch(proxy, "/?utm=1", f"{granted}; consent-return=cp-social-3")
    assert body.count(b'id="cp-social-') == 1
    assert b'class="twitter-share-button" data-via="larkspurbikes" id="cp-social-3">' in body
    # Without the return cookie: no mark and no cookie (an accepting visitor gets the
    # origin's bytes); with one, the mark whatever else the visitor allows.
    again, r = await fetch(proxy, "/?utm=1", granted)
    assert b'id="cp-social-' not in again and "Set-Cookie" not in r.headers
    everything = (await fetch(proxy, "/", ALL))[0]
    assert without_google_default(everything) == origin_page.encode()
    marked, r = await fetch(proxy, "/", f"{ALL}; consent-return=cp-social-1")
    assert marked.count(b'id="cp-social-1"') == 1 and "Set-Cookie" in r.headers
    # One that names no widget on the page, or nothing readable: the page as it is.
    for value in ("cp-social-9", "cp-social-x", "cp-nothing-1", "<script>"):
        body, _ = await fetch(proxy, "/", f"{ALL}; consent-return={value}")
        assert without_google_default(body) == origin_page.encode(), value


async def test_decision_log(site: TestServer, tmp_path: Path) -> None:
    await fetch(site, "/p/tmz-1.html?email=a@b.example", "consent=v=1&analytics=1; session=secret")
    lines = (tmp_path / "decisions.log").read_text().strip().splitlines()
    record = json.loads(lines[-1])
    assert record["kind"] == "decision" and record["path"] == "/p/tmz-1.html"
    assert record["status"] == 200 and record["rules"] == RULES.generation
    assert record["consent"]["analytics"] == "cookie" and record["source"] == "cookie"
    assert "analytics" in record["granted"] and "advertising" not in record["granted"]
    assert {"rule": "google-analytics", "action": "remove"} not in [
        {k: a[k] for k in ("rule", "action")} for a in record["actions"]
    ]
    analytics = {r.id for r in RULES.rules if r.category == "analytics"}
    assert record["actions"] and not {a["rule"] for a in record["actions"]} & analytics
    # Surrogates stand in for removed scripts, so the page may grow: it changed.
    assert record["bytes_in"] > 0 and record["bytes_out"] > 0 and record["rewrite_ms"] >= 0
    assert record["bytes_in"] != record["bytes_out"]
    assert len(record["request_id"]) == 16
    log = (tmp_path / "decisions.log").read_text()
    assert "secret" not in log and "email" not in log


async def test_fail_closed_on_undecodable_html(make_proxy: MakeProxy) -> None:
    from tests.support.sockets import canned_origin

    body = b"<html><script src='https://www.google-analytics.com/ga.js'></script>"
    garbage = b"\x1f\x8b\x08\x00" + b"\xff" * 40
    server, upstream = await canned_origin(
        b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n%s"
        % (len(garbage), garbage)
    )
    proxy = await make_proxy(upstream, rewrite=None, ruleset=RULES)
    got, r = await fetch(proxy, "/")
    assert r.status == 502 and b"google-analytics" not in got
    server.close()
    unknown = await canned_origin(
        b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Encoding: compress\r\nContent-Length: %d\r\n\r\n%s"
        % (len(body), body)
    )
    proxy = await make_proxy(unknown[1], rewrite=None, ruleset=RULES)
    got, r = await fetch(proxy, "/")
    assert r.status == 502 and b"google-analytics" not in got
    unknown[0].close()


async def test_bomb_mid_page_never_sends_the_rest(
    aiohttp_server: Callable[..., Awaitable[TestServer]], make_proxy: MakeProxy
) -> None:
    """A page whose compressed stream turns into a bomb after its head has left: the
    transfer is cut (no complete-looking page), the tracker after it never sent."""

    async def big(request: web.Request) -> web.StreamResponse:
        headers = {"Content-Type": "text/html", "Content-Encoding": "gzip"}
        resp = web.StreamResponse(headers=headers)
        await resp.prepare(request)
        comp = zlib.compressobj(9, zlib.DEFLATED, 31)
        head = comp.compress(b"<html><body>" + b"<p>text</p>" * 10_000)
        await resp.write(head + comp.flush(zlib.Z_SYNC_FLUSH))
        await asyncio.sleep(0.2)
        bomb = b"".join(comp.compress(b"\0" * (1 << 20)) for _ in range(64))
        tracker = b"<script src='https://www.google-analytics.com/ga.js'></script>"
        await resp.write(bomb + comp.compress(tracker) + comp.flush())
        await resp.write_eof()
        return resp

    app = web.Application()
    app.router.add_get("/", big)
    origin = await aiohttp_server(app)
    proxy = await make_proxy(str(origin.make_url("/")), rewrite=None, ruleset=RULES)
    async with aiohttp.ClientSession() as s, s.get(proxy.make_url("/")) as r:
        assert r.status == 200
        got = b""
        with pytest.raises(aiohttp.ClientPayloadError):
            async for chunk in r.content.iter_any():
                got += chunk
    assert b"<p>text</p>" in got and b"google-analytics" not in got


async def test_gpc_json(site: TestServer) -> None:
    async with aiohttp.ClientSession() as s, s.get(site.make_url("/.well-known/gpc.json")) as r:
        assert r.status == 200
        assert (await r.json())["gpc"] is True


async def test_gzip_page_is_rewritten_too(
    aiohttp_server: Callable[..., Awaitable[TestServer]], make_proxy: MakeProxy
) -> None:
    page = corpus_page("cnn.html").read_bytes()

    async def serve(request: web.Request) -> web.Response:
        return web.Response(
            body=gzip.compress(page),
            headers={"Content-Type": "text/html; charset=utf-8", "Content-Encoding": "gzip"},
        )

    app = web.Application()
    app.router.add_get("/", serve)
    origin = await aiohttp_server(app)
    proxy = await make_proxy(str(origin.make_url("/")), rewrite=None, ruleset=RULES)
    body, _r = await fetch(proxy, "/", headers={"Accept-Encoding": "gzip"})
    assert trackers.leaks(oracle.parse(body)) == []
    assert trackers.leaks(oracle.parse(page))


@pytest.fixture
async def curl_target(site: TestServer) -> AsyncIterator[str]:
    if shutil.which("curl") is None:
        pytest.fail("curl is required (apt-get install curl)")
    yield str(site.make_url("/p/cnn.html"))


async def curl(*args: str) -> str:
    proc = await asyncio.create_subprocess_exec("curl", "-s", *args, stdout=subprocess.PIPE)
    out, _ = await proc.communicate()
    return out.decode("utf-8", "replace")


async def test_headers_with_curl_as_qa_would(curl_target: str) -> None:
    head = await curl("-D", "-", "-o", "/dev/null", curl_target)
    assert (
        "X-Consent: analytics=0; advertising=0; social=0; preferences=0; media=0; source=default"
        in head
    )
    assert "X-Consent-Actions: " in head and "google-ads=remove*" in head
    assert "Cache-Control: private" in head
    granted = await curl("-D", "-", "-o", "/dev/null", "-b", ALL, curl_target)
    assert "source=cookie" in granted and "X-Consent-Actions: none" in granted
    body = await curl("-b", NONE, curl_target)
    assert "google-analytics.com" not in body


def test_rewrite_command_offline(tmp_path: Path) -> None:
    page = corpus_page("cnn.html")
    result = subprocess.run(
        [sys.executable, "-m", "proxy", "rewrite", str(page), "--consent", "none", "--explain"],
        capture_output=True,
        cwd=ROOT,
    )
    assert result.returncode == 0
    assert trackers.leaks(oracle.parse(result.stdout)) == []
    assert b"google-ads: remove x" in result.stderr
    same = subprocess.run(
        [sys.executable, "-m", "proxy", "rewrite", "-", "--consent", "all"],
        input=page.read_bytes(),
        capture_output=True,
        cwd=ROOT,
    )
    assert without_google_default(same.stdout) == page.read_bytes()
    bad = subprocess.run(
        [sys.executable, "-m", "proxy", "rewrite", str(page), "--consent", "maybe"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert bad.returncode == 2 and "expected all, none" in bad.stderr


async def test_inject_for_granted_categories_only(
    aiohttp_server: Callable[..., Awaitable[TestServer]], make_proxy: MakeProxy
) -> None:
    from proxy.consent.rules import RuleSet, parse_rule

    rule = parse_rule(
        "chat",
        'name = "Chat"\ncategory = "preferences"\n[[inject]]\nwhere = "body-end"\n'
        'html = "<script src=\\"/chat.js\\"></script>"\n[[inject]]\nwhere = "head-start"\n'
        'html = "<meta name=\\"chat\\" content=\\"on\\">"\n',
        "chat.toml",
    )

    async def serve(request: web.Request) -> web.Response:
        return web.Response(
            text="<html><head><title>t</title></head><body><p>x</p></body></html>",
            content_type="text/html",
        )

    app = web.Application()
    app.router.add_get("/", serve)
    origin = await aiohttp_server(app)
    proxy = await make_proxy(
        str(origin.make_url("/")), rewrite=None, ruleset=RuleSet((rule,), "g1"), debug_headers=False
    )
    granted, r = await fetch(proxy, "/", "consent=v=1&preferences=1")
    assert granted == (
        b'<html><head><meta name="chat" content="on"><title>t</title></head>'
        b'<body><p>x</p><script src="/chat.js"></script></body></html>'
    )
    assert "X-Consent" not in r.headers and "X-Consent-Actions" not in r.headers
    assert r.headers["Cache-Control"].startswith("private")
    denied, _ = await fetch(proxy, "/")
    assert b"chat" not in denied


async def test_health_reports_a_refused_reload(
    aiohttp_server: Callable[..., Awaitable[TestServer]], make_proxy: MakeProxy, tmp_path: Path
) -> None:
    rules = tmp_path / "r"
    rules.mkdir()
    shutil.copy(ROOT / "rules" / "google-analytics.toml", rules)
    origin = await page_origin(aiohttp_server)
    proxy = await make_proxy(
        str(origin.make_url("/")), rewrite=None, ruleset=None, rules=str(rules), builtin_rules=False
    )
    async with aiohttp.ClientSession() as s:
        async with s.get(proxy.make_url("/_consent/health")) as r:
            health = await r.json()
        assert health["status"] == "ok" and health["rules"]["enabled"] == ["google-analytics"]
        (rules / "bad.toml").write_text('name = "B"\ncategory = "x"\n')
        for _ in range(40):
            await asyncio.sleep(0.1)
            async with s.get(proxy.make_url("/_consent/health")) as r:
                health = await r.json()
            if health["status"] != "ok":
                break
        assert health["status"] == "degraded"
        assert "bad.toml:2: category" in health["rules"]["reload_error"]
        async with s.get(
            proxy.make_url("/_consent/health"), headers={"X-Forwarded-For": "1.2.3.4"}
        ) as r:
            assert r.status == 404  # not for the public


async def test_accepting_visitor_gets_the_origins_bytes_and_framing(
    aiohttp_server: Callable[..., Awaitable[TestServer]], make_proxy: MakeProxy, tmp_path: Path
) -> None:
    page = corpus_page("cnn.html").read_bytes()
    packed = gzip.compress(page)

    async def serve(request: web.Request) -> web.Response:
        return web.Response(
            body=packed,
            headers={
                "Content-Type": "text/html",
                "Content-Encoding": "gzip",
                "ETag": '"e1"',
                "Cache-Control": "public, max-age=60",
            },
        )

    app = web.Application()
    app.router.add_get("/", serve)
    origin = await aiohttp_server(app)
    # With Consent Mode on, this visitor's pages get its default (test_consent_mode.py).
    proxy = await make_proxy(
        str(origin.make_url("/")), rewrite=None, ruleset=RULES, consent_mode="off"
    )
    async with aiohttp.ClientSession(auto_decompress=False) as s:
        async with s.get(
            proxy.make_url("/"), headers={"Cookie": ALL, "Accept-Encoding": "gzip"}
        ) as r:
            body = await r.read()
            assert body == packed  # not even re-compressed
            assert r.headers["Content-Length"] == str(len(packed))
            assert r.headers["Content-Encoding"] == "gzip"
            assert r.headers["Cache-Control"] == "private, max-age=60"
            assert "Cookie" in r.headers["Vary"] and r.headers["ETag"].startswith('W/"e1~')
            assert r.headers["X-Consent-Actions"] == "none"
        async with s.get(
            proxy.make_url("/"), headers={"Cookie": NONE, "Accept-Encoding": "gzip"}
        ) as r:
            assert trackers.leaks(oracle.parse(gzip.decompress(await r.read()))) == []
    records = [json.loads(line) for line in (tmp_path / "decisions.log").read_text().splitlines()]
    assert records[0]["bytes_in"] == records[0]["bytes_out"] == len(packed)
    assert records[0]["actions"] == [] and records[1]["actions"]


def test_untouched_says_what_a_rewrite_that_changes_nothing_says() -> None:
    """What the proxy makes for most pages (an untouched page) gives the headers,
    variant and decisions a rewrite of the same page would."""
    from multidict import CIMultiDict

    from proxy.consent.enforce import EnforcedPage, UntouchedPage
    from proxy.consent.model import ConsentPolicy, read_consent
    from proxy.consent.plans import compile_plan
    from proxy.http.consent_hook import EnforcedBody, UntouchedBody
    from proxy.http.mime import response_type
    from proxy.http.response_headers import response_headers
    from proxy.ui.furniture import PageFurniture
    from proxy.ui.templates import Templates

    consent = read_consent(CIMultiDict({"Cookie": ALL}), ConsentPolicy())
    plan = compile_plan(RULES, consent, NO_CONSENT_MODE)
    assert not plan.changes
    furniture = PageFurniture(Templates())
    full = EnforcedBody(EnforcedPage(plan, "/", furniture, consent=consent), True)
    fast = UntouchedBody(UntouchedPage(plan, consent), True)
    assert fast.passes_through and full.variant == fast.variant
    origin = CIMultiDict(
        {"Cache-Control": "public, max-age=60", "Vary": "Accept", "Last-Modified": "x"}
    )
    html = response_type(("text/html",))
    headers = [response_headers(origin, 200, html, "test", page=p) for p in (full, fast)]
    assert headers[0] == headers[1] and "Cookie" in headers[1]["Vary"]
    assert fast.decision() == full.decision()  # a HEAD: no body went through
    assert fast.untouched_members(10) == full.untouched_members(10)
    assert fast.feed(b"<p>x") + fast.close() == b"<p>x"
    assert full.feed(b"<p>x") + full.close() == b"<p>x"
