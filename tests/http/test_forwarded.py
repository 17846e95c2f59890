"""Behind a TLS terminator that rewrites Host: the host and scheme the browser used come
from a trusted front's X-Forwarded-Host/-Proto (or Forwarded), for the same-origin check
of consent posts and the Domain of expired vendor cookies; an untrusted peer's are
ignored. Table tests of the pure helpers, the proxy over HTTP, and a real nginx."""

from __future__ import annotations

import asyncio
import ipaddress
import shutil
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from proxy.consent.rules import load_rules
from proxy.http.forwarded import (
    Authority,
    Origin,
    claimed_host,
    claimed_scheme,
    forwarded_elements,
    parse_authority,
    parse_origin,
    same_origin_post,
)
from tests.support.sockets import free_port

ROOT = Path(__file__).resolve().parent.parent.parent
RULES = load_rules(ROOT / "rules")
MakeProxy = Callable[..., Awaitable[TestServer]]
LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"),)
PAGE = "<!doctype html><html><head><title>t</title></head><body><p>hi</p></body></html>"
NGINX = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")
OPENSSL = shutil.which("openssl")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("shop.example", Authority("shop.example")),
        ("WWW.Shop.Example.", Authority("www.shop.example")),
        ("shop.example:8443", Authority("shop.example", 8443)),
        (" shop.example ", Authority("shop.example")),
        ("localhost", Authority("localhost")),
        ("internal_name.lan", Authority("internal_name.lan")),
        ("203.0.113.9", Authority("203.0.113.9")),
        ("203.0.113.9:80", Authority("203.0.113.9", 80)),
        ("[2001:DB8::1]", Authority("2001:db8::1")),
        ("[2001:db8::1]:8080", Authority("2001:db8::1", 8080)),
        ("[::ffff:192.0.2.1]", Authority("::ffff:c000:201")),
        # hostile or broken: never half-read
        ("", None),
        ("a.example, b.example", None),
        ("a.example b.example", None),
        ("shop.example:0", None),
        ("shop.example:65536", None),
        ("shop.example:99999999", None),
        ("shop.example:", None),
        ("shop.example:http", None),
        ("shop.example:80:80", None),
        ("2001:db8::1", None),
        ("[2001:db8::1", None),
        ("[fe80::1%eth0]", None),
        ("[not-v6]", None),
        ("[1.2.3.4]", None),
        ("999.1.1.1", None),
        ("1.2.3", None),
        ("user@shop.example", None),
        ("shop.example/path", None),
        ("shop.example\\x", None),
        ("shop.example\r\nSet-Cookie: a=1", None),
        ("shop.example;domain=evil", None),
        ("-shop.example", None),
        ("shop..example", None),
        (".shop.example", None),
        (".", None),
        ("a" * 64 + ".example", None),
        (".".join(["a" * 60] * 5), None),
        ("ünicode.example", None),
        ('"shop.example"', None),
    ],
)
def test_parse_authority(value: str, expected: Authority | None) -> None:
    assert parse_authority(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("https://shop.example", Origin("https", "shop.example", 443)),
        ("https://shop.example:443", Origin("https", "shop.example", 443)),
        ("HTTP://Shop.Example:8080", Origin("http", "shop.example", 8080)),
        ("http://[::1]:8080", Origin("http", "::1", 8080)),
        ("null", None),
        ("", None),
        ("ftp://shop.example", None),
        ("https://", None),
        ("https://shop.example/", None),
        ("https://user@shop.example", None),
        ("shop.example", None),
    ],
)
def test_parse_origin(value: str, expected: Origin | None) -> None:
    assert parse_origin(value) == expected


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (
            ["for=192.0.2.60;proto=http;by=203.0.113.43"],
            [{"for": "192.0.2.60", "proto": "http", "by": "203.0.113.43"}],
        ),
        (
            ['for=192.0.2.43, for="[2001:db8:cafe::17]:4711";host="shop.example:8443"'],
            [
                {"for": "192.0.2.43"},
                {"for": "[2001:db8:cafe::17]:4711", "host": "shop.example:8443"},
            ],
        ),
        (["Host=a.example", "host=b.example"], [{"host": "a.example"}, {"host": "b.example"}]),
        (['host="a\\"b"'], [{"host": 'a"b'}]),
        (['host="a,b.example";proto=https'], [{"host": "a,b.example", "proto": "https"}]),
        (["host=shop.example:8443"], [{"host": "shop.example:8443"}]),
        (["for=a;"], [{"for": "a"}]),
        ([""], []),
        (["host"], None),
        (["=x"], None),
        (["host=a b"], None),
        (['host="unterminated'], None),
        (["host=a;host=b"], None),
        (["for=a,,for=b"], None),
        (["for=a", "garbage"], None),
        (['host="a\x01b"'], None),
    ],
)
def test_forwarded_elements(values: list[str], expected: list[dict[str, str]] | None) -> None:
    assert forwarded_elements(values) == expected


@pytest.mark.parametrize(
    ("xfh", "forwarded", "expected"),
    [
        ([], [], None),
        (["shop.example"], [], Authority("shop.example")),
        (["shop.example:8443"], [], Authority("shop.example", 8443)),
        # several: the rightmost was written by the trusted peer itself
        (["evil.example, shop.example"], [], Authority("shop.example")),
        (["evil.example", "shop.example"], [], Authority("shop.example")),
        (["shop.example, "], [], None),
        (["shop.example, evil.example/x"], [], None),
        ([""], ["host=shop.example"], None),  # present but empty: nothing believed
        (["garbage value"], ["host=shop.example"], None),
        ([], ["for=1.2.3.4;host=shop.example;proto=https"], Authority("shop.example")),
        (
            [],
            ['host=evil.example, for=1.2.3.4;host="shop.example:8443"'],
            Authority("shop.example", 8443),
        ),
        ([], ["host=evil.example, for=1.2.3.4"], None),  # the peer's element names no host
        ([], ["host=shop.example;host=evil.example"], None),
        ([], ['host="[2001:db8::1]:443"'], Authority("2001:db8::1", 443)),
        (["xfh.example"], ["host=fwd.example"], Authority("xfh.example")),
    ],
)
def test_claimed_host(xfh: list[str], forwarded: list[str], expected: Authority | None) -> None:
    assert claimed_host(xfh, forwarded) == expected


@pytest.mark.parametrize(
    ("xfp", "forwarded", "expected"),
    [
        ([], [], None),
        (["https"], [], "https"),
        (["HTTPS"], [], "https"),
        (["https, http"], [], "http"),
        (["http, https"], [], "https"),
        (["wss"], [], None),
        (["https://"], [], None),
        ([], ["proto=https"], "https"),
        ([], ["proto=https, for=1.2.3.4"], None),
        ([], ["proto=ftp"], None),
        ([], ["proto"], None),
    ],
)
def test_claimed_scheme(xfp: list[str], forwarded: list[str], expected: str | None) -> None:
    assert claimed_scheme(xfp, forwarded) == expected


SITE = Origin("https", "shop.example", 443)


@pytest.mark.parametrize(
    ("headers", "site", "allowed"),
    [
        ({}, SITE, True),  # not a browser
        ({}, None, True),
        ({"Origin": "https://shop.example"}, SITE, True),
        ({"Origin": "https://shop.example:443"}, SITE, True),
        ({"Origin": "https://SHOP.example"}, SITE, True),
        ({"Origin": "http://shop.example"}, SITE, False),  # another scheme: another origin
        ({"Origin": "https://shop.example:8443"}, SITE, False),
        ({"Origin": "https://evil.example"}, SITE, False),
        ({"Origin": "https://shop.example.evil.example"}, SITE, False),
        ({"Origin": "https://sub.shop.example"}, SITE, False),
        ({"Origin": "null"}, SITE, False),
        ({"Origin": "garbage"}, SITE, False),
        ({"Origin": "https://shop.example"}, None, False),  # no readable host: refuse
        ({"Origin": "http://[::1]:8080"}, Origin("http", "::1", 8080), True),
        # the browser's own judgement, whatever a front did to Host
        ({"Sec-Fetch-Site": "same-origin", "Origin": "https://shop.example"}, None, True),
        ({"Sec-Fetch-Site": "same-origin", "Origin": "http://10.0.0.2:8080"}, SITE, True),
        ({"Sec-Fetch-Site": "none"}, SITE, True),
        ({"Sec-Fetch-Site": "same-site", "Origin": "https://shop.example"}, SITE, False),
        ({"Sec-Fetch-Site": "cross-site", "Origin": "https://shop.example"}, SITE, False),
        ({"Sec-Fetch-Site": "garbage"}, SITE, False),
    ],
)
def test_same_origin_post(headers: dict[str, str], site: Origin | None, allowed: bool) -> None:
    assert same_origin_post(headers, site) is allowed


# The proxy over HTTP: aiohttp's client on loopback is the front (trusted or not).


@pytest.fixture
async def origin_url(aiohttp_server: Callable[..., Awaitable[TestServer]]) -> str:
    async def page(request: web.Request) -> web.Response:
        return web.Response(text=PAGE, content_type="text/html")

    app = web.Application()
    app.router.add_get("/{tail:.*}", page)
    return str((await aiohttp_server(app)).make_url("/"))


async def consent_post(
    proxy: TestServer, headers: dict[str, str]
) -> tuple[int, str | None, list[str]]:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as s:
        async with s.post(
            proxy.make_url("/_consent"),
            data={"reject": "all", "next": "/shop?x=1"},
            headers={"Cookie": "_ga=GA1.2.3; mine=1", **headers},
            allow_redirects=False,
        ) as r:
            await r.read()
            return r.status, r.headers.get("Location"), r.headers.getall("Set-Cookie", [])


FRONT = {
    "X-Forwarded-Host": "www.shop.example",
    "X-Forwarded-Proto": "https",
    "Origin": "https://www.shop.example",
}
EXPIRED = "_ga=; Path=/; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT"


@pytest.mark.parametrize(
    "headers",
    [
        FRONT,
        {
            "Forwarded": "for=198.51.100.7;host=www.shop.example;proto=https",
            "Origin": FRONT["Origin"],
        },
        {**FRONT, "X-Forwarded-Host": "evil.example, www.shop.example"},
    ],
)
async def test_trusted_front_names_the_site(
    origin_url: str, make_proxy: MakeProxy, headers: dict[str, str]
) -> None:
    proxy = await make_proxy(origin_url, rewrite=None, ruleset=RULES, trusted_proxies=LOOPBACK)
    status, location, cookies = await consent_post(proxy, headers)
    assert status == 303
    # A path: the browser resolves it against the URL it used (the front's host).
    assert location == "/shop?x=1"
    assert cookies[0].startswith("consent=v=1&") and cookies[0].endswith("; Secure")
    assert cookies[1:] == [
        f"{EXPIRED}; Secure",
        f"{EXPIRED}; Domain=www.shop.example; Secure",
        f"{EXPIRED}; Domain=shop.example; Secure",
    ]


async def test_trusted_front_site_is_not_the_rewritten_host(
    origin_url: str, make_proxy: MakeProxy
) -> None:
    proxy = await make_proxy(origin_url, rewrite=None, ruleset=RULES, trusted_proxies=LOOPBACK)
    internal = str(proxy.make_url("/")).rstrip("/")
    status, _, cookies = await consent_post(
        proxy, {"X-Forwarded-Host": "www.shop.example", "Origin": internal}
    )
    assert status == 403 and cookies == []
    # An unreadable X-Forwarded-Host is ignored: the Host header names the site.
    status, _, cookies = await consent_post(
        proxy, {"X-Forwarded-Host": "evil.example/x", "Origin": internal}
    )
    assert status == 303


@pytest.mark.parametrize(
    "headers",
    [FRONT, {"Forwarded": "host=www.shop.example;proto=https", "Origin": FRONT["Origin"]}],
)
async def test_untrusted_peer_cannot_name_the_site(
    origin_url: str, make_proxy: MakeProxy, headers: dict[str, str]
) -> None:
    proxy = await make_proxy(origin_url, rewrite=None, ruleset=RULES)  # no trusted proxies
    status, _, cookies = await consent_post(proxy, headers)
    assert status == 403 and cookies == []
    # Without Origin (not a browser) the post passes; the cookie Domain is still the
    # Host that reached the proxy, never the claimed one, and nothing is Secure.
    status, _, cookies = await consent_post(
        proxy,
        {"X-Forwarded-Host": "www.shop.example", "X-Forwarded-Proto": "https", "Host": "shop.test"},
    )
    assert status == 303
    assert cookies[1:] == [EXPIRED, f"{EXPIRED}; Domain=shop.test"]


async def test_origin_gets_the_trusted_fronts_rightmost_host(
    origin: TestServer, make_proxy: MakeProxy
) -> None:
    proxy = await make_proxy(str(origin.make_url("/")), trusted_proxies=LOOPBACK)
    cases = [
        ({"X-Forwarded-Host": "evil.example, www.shop.example"}, "www.shop.example", "http"),
        (
            {"Forwarded": 'for=1.2.3.4;host="www.shop.example:8443";proto=https'},
            "www.shop.example:8443",
            "https",
        ),
        ({"X-Forwarded-Host": "bad host", "Host": "shop.test"}, "shop.test", "http"),
    ]
    async with aiohttp.ClientSession() as s:
        for headers, host, proto in cases:
            async with s.get(proxy.make_url("/echo"), headers=headers) as r:
                seen = {k.lower(): v for k, v in (await r.json())["headers"]}
            assert (seen["x-forwarded-host"], seen["x-forwarded-proto"]) == (host, proto), headers


# A real nginx in front, terminating TLS and rewriting Host as it does by default.

NGINX_CONF = """
daemon off;
master_process off;
pid {tmp}/nginx.pid;
error_log {tmp}/error.log warn;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    server {{
        listen 127.0.0.1:{port} ssl;
        server_name www.shop.example;
        ssl_certificate {tmp}/cert.pem;
        ssl_certificate_key {tmp}/key.pem;
        location / {{
            proxy_pass http://127.0.0.1:{upstream};
{forwarding}
        }}
    }}
}}
"""
# What the README's Deployment section tells the operator to add.
FORWARDING = """\
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header X-Forwarded-Host $http_host;"""


@pytest.fixture
async def nginx_front(tmp_path: Path) -> AsyncIterator[Callable[[int], Awaitable[int]]]:
    """Start nginx (TLS on a free port) in front of a proxy port; returns the port."""
    if NGINX is None or OPENSSL is None:
        pytest.skip("nginx and openssl are needed (apt-get install nginx)")
    procs: list[asyncio.subprocess.Process] = []

    async def start(upstream: int) -> int:
        subprocess.run(
            [
                OPENSSL,
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-days",
                "1",
                "-subj",
                "/CN=www.shop.example",
                "-keyout",
                str(tmp_path / "key.pem"),
                "-out",
                str(tmp_path / "cert.pem"),
            ],
            check=True,
            capture_output=True,
            timeout=30,
        )
        port = free_port()
        conf = tmp_path / "nginx.conf"
        conf.write_text(
            NGINX_CONF.format(tmp=tmp_path, port=port, upstream=upstream, forwarding=FORWARDING)
        )
        proc = await asyncio.create_subprocess_exec(
            NGINX,
            "-p",
            str(tmp_path),
            "-c",
            str(conf),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        procs.append(proc)
        for _ in range(100):
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.close()
                return port
            except OSError:
                await asyncio.sleep(0.05)
        raise AssertionError(f"nginx did not start: {(tmp_path / 'error.log').read_text()}")

    yield start
    for proc in procs:
        proc.terminate()
        await proc.wait()


async def curl_through(port: int, *args: str) -> str:
    """curl to https://www.shop.example:PORT (resolved to loopback); headers and body."""
    proc = await asyncio.create_subprocess_exec(
        shutil.which("curl") or "curl",
        "-sk",
        "-i",
        "--max-time",
        "60",  # the first page of a rule set compiles its patterns: seconds on a busy machine
        "--resolve",
        f"www.shop.example:{port}:127.0.0.1",
        *args,
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await proc.communicate()
    assert proc.returncode == 0, args
    return out.decode()


async def test_consent_post_through_nginx_that_rewrites_host(
    origin_url: str, make_proxy: MakeProxy, nginx_front: Callable[[int], Awaitable[int]]
) -> None:
    proxy = await make_proxy(origin_url, rewrite=None, ruleset=RULES, trusted_proxies=LOOPBACK)
    port = await nginx_front(proxy.port or 0)
    site = f"https://www.shop.example:{port}"
    post = ["-d", "reject=all&next=/shop", "-H", "Cookie: _ga=1", f"{site}/_consent"]
    # An older browser (Origin, no Sec-Fetch-Site): nginx sent Host 127.0.0.1:PORT.
    answer = await curl_through(port, "-H", f"Origin: {site}", *post)
    head = answer.lower()
    assert answer.startswith("HTTP/1.1 303"), answer[:300]
    assert "\r\nlocation: /shop\r\n" in head
    assert "set-cookie: consent=v=1&" in head and "; secure\r\n" in head
    assert "domain=www.shop.example; secure" in head and "domain=shop.example; secure" in head
    assert "127.0.0.1" not in answer
    # Following the redirect lands on the public host, through nginx, on the page.
    page = await curl_through(port, "-L", "-H", f"Origin: {site}", *post)
    assert page.count("HTTP/1.1 200") == 1 and "<p>hi</p>" in page
    # A cross-site post through the same front is still refused.
    refused = await curl_through(port, "-H", "Origin: https://evil.example", *post)
    assert refused.startswith("HTTP/1.1 403") and "set-cookie" not in refused.lower()
    # A current browser says what it knows: same-origin.
    fetch = await curl_through(
        port, "-H", f"Origin: {site}", "-H", "Sec-Fetch-Site: same-origin", *post
    )
    assert fetch.startswith("HTTP/1.1 303")


async def test_through_nginx_without_trusting_it_refuses_origin_posts(
    origin_url: str, make_proxy: MakeProxy, nginx_front: Callable[[int], Awaitable[int]]
) -> None:
    """The misconfiguration the README warns about: nginx not in --trusted-proxies."""
    proxy = await make_proxy(origin_url, rewrite=None, ruleset=RULES)
    port = await nginx_front(proxy.port or 0)
    site = f"https://www.shop.example:{port}"
    answer = await curl_through(
        port, "-H", f"Origin: {site}", "-d", "reject=all", f"{site}/_consent"
    )
    assert answer.startswith("HTTP/1.1 403")
    assert '"site": "http://127.0.0.1:' in answer  # the error names what the proxy saw
