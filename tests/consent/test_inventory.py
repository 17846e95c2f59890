"""The inventory through the real proxy: third-party hosts no rule or catalogue entry
covers are listed with their element kinds at /_consent/inventory (admin only) and
counted in the metrics; the site's own hosts (the Host, a trusted front's
X-Forwarded-Host, ``first_party``) never are; ``unknown_third_party`` block and
placeholder hold them until analytics, advertising and social are all granted."""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from proxy.consent.inventory import Inventory
from proxy.consent.model import OPTIONAL
from proxy.consent.rules import load_rules
from proxy.settings import SettingsError, load_settings
from tests.consent.test_enforce import without_google_default
from tests.support import ROOT

RULES = load_rules(ROOT / "rules")
ALL = "consent=v=1&" + "&".join(f"{c}=1" for c in OPTIONAL)
NONE = "consent=v=1&" + "&".join(f"{c}=0" for c in OPTIONAL)
HOST = "www.mysite.test"
OWN = "cdn.mysite-static.test"  # the first_party setting of these tests
MakeProxy = Callable[..., Awaitable[TestServer]]

# Each line: an element and what the inventory lists for it (host, kind), or None.
ELEMENTS = [
    ('<script src="https://unknown-tracker.io/t.js"></script>', ("unknown-tracker.io", "script")),
    ('<link rel="preconnect" href="https://fonts.unknown-cdn.example">', None),
    ('<link rel="canonical" href="https://canonical.example/x">', None),  # not fetched
    ('<script async src="https://widgets.outbrain.com/outbrain.js"></script>', None),
    ('<script src="https://www.google-analytics.com/analytics.js"></script>', None),
    ('<link rel="stylesheet" href="https://cdnjs.cloudflare.com/x.css">', None),
    # The hostile forms: upper case, protocol-relative, backslashes, an entity in
    # the host, a srcset candidate.
    ('<img src="HTTPS://Pixel.Unknown-Ads.COM/p.gif" alt="">', ("pixel.unknown-ads.com", "img")),
    (
        '<iframe src="//widgets.unknown-embed.example/w" width="300" height="200"></iframe>',
        ("widgets.unknown-embed.example", "iframe"),
    ),
    ('<img src="https:\\\\back.slash.example\\x.gif" alt="">', ("back.slash.example", "img")),
    ('<img src="https://&#101;nt.example/x.gif" alt="">', ("ent.example", "img")),
    # A newline in the host (browsers drop it), and one between attributes.
    ('<img src="https://li\nnes.example/x.gif" alt="">', ("lines.example", "img")),
    ('<img\n  src="https://two.lines.example/x.gif"\n  alt="">', ("two.lines.example", "img")),
    (
        '<img src="/a.png" srcset="/a2.png 2x, https://srcset.unknown.example/b.png 3x">',
        ("srcset.unknown.example", "img"),
    ),
    (
        "<script>var s=document.createElement('script');"
        "s.src='https://inline.loader.example/l.js';</script>",
        ("inline.loader.example", "inline-script"),
    ),
    # https:host with no slashes, on an http page: a host to a browser. Listed only
    # while unknown hosts are held (the pattern costs a pass of its own).
    ('<img src="https:scheme.only.example/x.gif" alt="">', None),
    ('<a href="https://link.example.org/">a link</a>', None),  # a link loads nothing
    ('<script type="application/ld+json">{"logo": "https://data.example/l.png"}</script>', None),
    # The site's own: the Host and its subdomains, first_party and its subdomains.
    (f'<img src="https://{HOST}/own.png" alt="">', None),
    (f'<img src="https://static.{HOST}/own.png" alt="">', None),
    (f'<img src="https://{OWN}/c.png" alt="">', None),
    (f'<img src="https://img.{OWN}/c.png" alt="">', None),
]
# fonts.unknown-cdn.example is listed too (a preconnect is a contact), not held.
UNCOVERED = {e for _, e in ELEMENTS if e is not None} | {("fonts.unknown-cdn.example", "link")}
HELD = ["unknown-tracker.io", "Pixel.Unknown-Ads.COM", "widgets.unknown-embed.example"]
HELD += ["back.slash.example", "&#101;nt.example", "srcset.unknown.example"]
HELD += ["scheme.only.example", "li\nnes.example", "two.lines.example"]
PAGE = (
    "<!DOCTYPE html><html><head><title>News</title></head><body><h1>Today</h1>"
    + "\n".join(e for e, _ in ELEMENTS)
    + "</body></html>"
).encode()


async def origin(aiohttp_server: Callable[..., Awaitable[TestServer]]) -> TestServer:
    async def page(request: web.Request) -> web.StreamResponse:
        return web.Response(body=PAGE, content_type="text/html")

    app = web.Application()
    app.router.add_get("/", page)
    return await aiohttp_server(app)


async def fetch(
    proxy: TestServer, path: str, cookie: str = NONE, **headers: str
) -> tuple[int, bytes, Any]:
    headers = {"Host": HOST, "Cookie": cookie, **headers}
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as s:
        async with s.get(proxy.make_url(path), headers=headers) as r:
            return r.status, await r.read(), r.headers


async def inventory(proxy: TestServer, **headers: str) -> dict[str, Any]:
    status, body, _ = await fetch(proxy, "/_consent/inventory", **headers)
    assert status == 200, body
    doc: dict[str, Any] = json.loads(body)
    return doc


def listed(doc: dict[str, Any]) -> set[tuple[str, str]]:
    return {(u["host"], kind) for u in doc["uncovered"] for kind in u["kinds"]}


async def test_inventory_lists_what_nothing_covers(
    aiohttp_server: Callable[..., Awaitable[TestServer]], make_proxy: MakeProxy
) -> None:
    site = await origin(aiohttp_server)
    proxy = await make_proxy(
        str(site.make_url("/")), rewrite=None, ruleset=RULES, first_party=(OWN,)
    )
    for path in ("/", "/?page=2"):  # two pages (one page twice: the rewrite cache's)
        status, _, _ = await fetch(proxy, path)
        assert status == 200
    doc = await inventory(proxy)
    assert listed(doc) == UNCOVERED
    assert doc["generation"] == RULES.generation and doc["pages"] == 2
    assert doc["first_party"] == [OWN] and doc["unknown_third_party"] == "allow"
    counts = {u["host"]: u["count"] for u in doc["uncovered"]}
    assert counts["pixel.unknown-ads.com"] == 2 and counts["inline.loader.example"] == 2
    covered = {c["host"]: c for c in doc["covered"]}
    assert covered["widgets.outbrain.com"]["entity"] == "Outbrain"
    assert covered["widgets.outbrain.com"]["category"] == "advertising"
    assert covered["www.google-analytics.com"]["by"] == "rule"
    assert covered["www.google-analytics.com"]["rule"] == "google-analytics"
    cdn = covered["cdnjs.cloudflare.com"]
    assert (cdn["by"], cdn["category"], cdn["source"]) == ("catalogue", "off", "cdn")
    assert not {HOST, f"static.{HOST}", OWN, f"img.{OWN}"} & {*counts, *covered}
    assert "link.example.org" not in counts and "canonical.example" not in counts


async def test_inventory_is_for_admins_only_and_counted_in_metrics(
    aiohttp_server: Callable[..., Awaitable[TestServer]], make_proxy: MakeProxy
) -> None:
    site = await origin(aiohttp_server)
    proxy = await make_proxy(
        str(site.make_url("/")), rewrite=None, ruleset=RULES, admin_token="s3cret"
    )
    await fetch(proxy, "/")
    proxied = {"X-Forwarded-For": "203.0.113.9"}  # through a front: not the operator
    status, body, _ = await fetch(proxy, "/_consent/inventory", **proxied)
    assert status == 404 and b"unknown-tracker" not in body
    wrong = {**proxied, "Authorization": "Bearer nope"}
    assert (await fetch(proxy, "/_consent/inventory", **wrong))[0] == 404
    doc = await inventory(proxy, **proxied, Authorization="Bearer s3cret")
    assert ("unknown-tracker.io", "script") in listed(doc)
    status, text, _ = await fetch(proxy, "/_consent/metrics")
    assert status == 200
    metrics = dict(
        line.rsplit(" ", 1)
        for line in text.decode().splitlines()
        if line.startswith("consent_proxy_uncovered_third_party_total")
    )
    total = "consent_proxy_uncovered_third_party_total"
    # The pixel, backslashes, entity, two newlines, srcset, the two of OWN (not
    # first_party here).
    assert metrics[f'{total}{{kind="img"}}'] == "8"
    assert metrics[f'{total}{{kind="script"}}'] == "1"
    assert metrics[f'{total}{{kind="iframe"}}'] == "1"
    assert (await fetch(proxy, "/_consent/metrics", **proxied))[0] == 404


@pytest.mark.parametrize("trusted", [True, False])
async def test_a_trusted_fronts_host_is_the_sites_own(
    aiohttp_server: Callable[..., Awaitable[TestServer]], make_proxy: MakeProxy, trusted: bool
) -> None:
    site = await origin(aiohttp_server)
    front = (ipaddress.ip_network("127.0.0.1/32"),) if trusted else ()
    proxy = await make_proxy(
        str(site.make_url("/")), rewrite=None, ruleset=RULES, trusted_proxies=front
    )
    await fetch(proxy, "/", Host="backend.internal.test", **{"X-Forwarded-Host": HOST})
    doc = await inventory(proxy, Host="backend.internal.test")
    hosts = {u["host"] for u in doc["uncovered"]}
    assert "unknown-tracker.io" in hosts
    assert (HOST in hosts) is not trusted  # an untrusted client does not choose it
    assert (f"static.{HOST}" in hosts) is not trusted


@pytest.mark.parametrize("own", ["host", "first_party"])
async def test_the_sites_own_entity_is_first_party_as_the_catalogue_has_it(
    aiohttp_server: Callable[..., Awaitable[TestServer]], make_proxy: MakeProxy, own: str
) -> None:
    """Chartbeat's own site (by its Host, or by naming another of Chartbeat's domains
    in first_party): the catalogue keeps static.chartbeat.com on the page, and the
    inventory says the same: it lists that host as nobody's third party (a
    rule-covered host stays listed: hand-written rules know no first party)."""
    page = (
        '<!doctype html><html><body><script src="https://static.chartbeat.com/js/c.js">'
        '</script><img src="https://cdn.optimizely.com/p.gif" alt=""></body></html>'
    )

    async def serve(request: web.Request) -> web.Response:
        return web.Response(text=page, content_type="text/html")

    app = web.Application()
    app.router.add_get("/", serve)
    site = await aiohttp_server(app)
    first_party = ("chartbeat.net",) if own == "first_party" else ()
    host = "www.chartbeat.com" if own == "host" else HOST
    proxy = await make_proxy(
        str(site.make_url("/")), rewrite=None, ruleset=RULES, first_party=first_party
    )
    _, body, _ = await fetch(proxy, "/", Host=host)
    assert b"static.chartbeat.com" in body  # the catalogue's exemption
    assert b"cdn.optimizely.com" not in body
    doc = await inventory(proxy, Host=host)
    assert [c["host"] for c in doc["covered"]] == ["cdn.optimizely.com"]
    assert doc["uncovered"] == []
    # On another site's page it is a covered third party, held as the catalogue has it.
    other = await make_proxy(str(site.make_url("/")), rewrite=None, ruleset=RULES)
    _, body, _ = await fetch(other, "/")
    assert b"static.chartbeat.com" not in body
    covered = {c["host"]: c for c in (await inventory(other))["covered"]}
    assert covered["static.chartbeat.com"]["entity"] == "Chartbeat"


async def test_block_holds_unknown_hosts_until_all_three_are_granted(
    aiohttp_server: Callable[..., Awaitable[TestServer]], make_proxy: MakeProxy, tmp_path: Path
) -> None:
    site = await origin(aiohttp_server)
    proxy = await make_proxy(
        str(site.make_url("/")),
        rewrite=None,
        ruleset=RULES,
        first_party=(OWN,),
        unknown_third_party="block",
    )
    _, body, headers = await fetch(proxy, "/")
    for host in HELD:
        assert host.encode() not in body, host
    assert "unknown-third-party=remove*9" in headers["X-Consent-Actions"]
    for kept in (f"https://{HOST}/own.png", f"https://static.{HOST}/", f"https://{OWN}/"):
        assert kept.encode() in body
    assert f"https://img.{OWN}/".encode() in body
    assert b"fonts.unknown-cdn.example" in body  # links, styles and fonts are not held
    assert b'<a href="https://link.example.org/">a link</a>' in body
    lines = (tmp_path / "decisions.log").read_text().splitlines()
    logged = [a for line in lines for a in json.loads(line).get("actions", [])]
    assert {"rule": "unknown-third-party", "action": "remove", "count": 9} in logged
    # Granted all three (media and preferences not): unknown hosts load.
    three = "consent=v=1&analytics=1&advertising=1&social=1&media=0&preferences=0"
    _, body, headers = await fetch(proxy, "/", three)
    assert all(host.encode() in body for host in HELD)
    assert "unknown-third-party" not in headers["X-Consent-Actions"]
    # One of them missing: held again.
    _, body, _ = await fetch(proxy, "/", three.replace("social=1", "social=0"))
    assert b"unknown-tracker.io" not in body
    _, body, _ = await fetch(proxy, "/", ALL)
    assert without_google_default(body) == PAGE


async def test_placeholder_stands_in_for_unknown_frames(
    aiohttp_server: Callable[..., Awaitable[TestServer]], make_proxy: MakeProxy
) -> None:
    site = await origin(aiohttp_server)
    proxy = await make_proxy(
        str(site.make_url("/")),
        rewrite=None,
        ruleset=RULES,
        first_party=(OWN,),
        unknown_third_party="placeholder",
    )
    _, body, headers = await fetch(proxy, "/")
    assert b'src="//widgets.unknown-embed.example' not in body
    assert b"<strong>widgets.unknown-embed.example</strong>" in body
    assert b'style="width:300px;min-height:200px"' in body  # sized like the frame
    assert b'name="advertising" value="1"' in body  # its button grants the first missing
    assert b"unknown-tracker.io" not in body and b"Pixel.Unknown-Ads.COM" not in body
    actions = headers["X-Consent-Actions"]
    assert "unknown-third-party=placeholder*1" in actions
    assert "unknown-third-party=remove*8" in actions


def test_settings_read_and_refuse_the_two_settings(tmp_path: Path) -> None:
    config = tmp_path / "proxy.toml"
    config.write_text('first_party = ["CDN.Example.com", "static.example.net"]\n')
    settings = load_settings(config=str(config), env={})
    assert settings.first_party == ("cdn.example.com", "static.example.net")
    assert settings.unknown_third_party == "allow"
    env = {"CONSENT_PROXY_UNKNOWN_THIRD_PARTY": "placeholder"}
    assert load_settings(env=env).unknown_third_party == "placeholder"
    with pytest.raises(SettingsError, match="allow, block or placeholder"):
        load_settings(env={"CONSENT_PROXY_UNKNOWN_THIRD_PARTY": "deny"})
    with pytest.raises(SettingsError, match=r"first_party = 'ok\.example,a/b' is not valid"):
        load_settings({"first_party": "ok.example,a/b"}, env={})


def test_an_inventory_keeps_at_most_its_limit_of_hosts() -> None:
    inv = Inventory("g", limit=2)
    for host in ("a.example", "b.example", "c.example", "a.example"):
        inv.add_uncovered(host, "img")
    assert set(inv.uncovered) == {"a.example", "b.example"}
    assert inv.uncovered["a.example"] == {"img": 2} and inv.dropped == 1
