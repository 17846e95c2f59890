"""/_consent over HTTP: setting and reading a choice, CSRF, redirects, cookie expiry,
the banner's placement, and the page's Content-Security-Policy."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from proxy.consent.rules import load_rules
from proxy.ui import csp
from tests.support import ROOT

RULES = load_rules(ROOT / "rules")
MakeProxy = Callable[..., Awaitable[TestServer]]
PAGE = "<!doctype html><html><head><title>t</title></head><body><p>hi</p></body></html>"


@pytest.fixture
async def site(
    aiohttp_server: Callable[..., Awaitable[TestServer]], make_proxy: MakeProxy
) -> TestServer:
    return await make_site(aiohttp_server, make_proxy)


async def make_site(
    aiohttp_server: Callable[..., Awaitable[TestServer]], make_proxy: MakeProxy, **settings: object
) -> TestServer:
    async def page(request: web.Request) -> web.Response:
        headers = {}
        if request.query.get("csp"):
            headers["Content-Security-Policy"] = request.query["csp"]
        body = PAGE if not request.query.get("fragment") else "<li>item</li>"
        if request.query.get("bodyless"):  # a document whose <body> start tag is left out
            body = "<!doctype html><title>t</title><p>hi</p>"
        return web.Response(text=body, content_type="text/html", headers=headers)

    app = web.Application()
    app.router.add_get("/{tail:.*}", page)
    origin = await aiohttp_server(app)
    return await make_proxy(
        str(origin.make_url("/")),
        rewrite=None,
        ruleset=RULES,
        trusted_proxies=(ipaddress.ip_network("127.0.0.0/8"),),
        **settings,
    )


async def post(
    site: TestServer, data: object, headers: dict[str, str] | None = None, json: bool = False
) -> aiohttp.ClientResponse:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as s:
        url = site.make_url("/_consent")
        request = (
            s.post(url, json=data, allow_redirects=False, headers=headers or {})
            if json
            else s.post(url, data=data, allow_redirects=False, headers=headers or {})
        )
        async with request as r:
            await r.read()
            return r


async def test_accept_all_sets_cookie_and_redirects(site: TestServer) -> None:
    r = await post(site, {"accept": "all", "next": "/shop?x=1"})
    assert r.status == 303 and r.headers["Location"] == "/shop?x=1"
    (cookie,) = r.headers.getall("Set-Cookie")
    assert cookie == (
        "consent=v=1&preferences=1&analytics=1&advertising=1&social=1&media=1; Path=/; "
        "SameSite=Lax; Max-Age=15724800"
    )
    assert r.headers["Cache-Control"] == "no-store"


async def test_refusal_is_stored_and_secure_over_https(site: TestServer) -> None:
    r = await post(site, {"reject": "all"}, {"X-Forwarded-Proto": "https"})
    cookie = r.headers["Set-Cookie"]
    assert cookie.startswith(
        "consent=v=1&preferences=0&analytics=0&advertising=0&social=0&media=0;"
    )
    assert cookie.endswith("; Secure")


@pytest.mark.parametrize(
    "target",
    [
        "//evil.example/",
        "https://evil.example/",
        "/\\evil.example",
        "javascript:x",
        "/ok\r\nSet-Cookie: x=1",
        "",
        "/del\x7fin-a-header",
        "/c1\x85control",
        "/line\u2028separator",
    ],
)
async def test_next_must_be_a_same_site_path(site: TestServer, target: str) -> None:
    r = await post(site, {"accept": "all", "next": target})
    assert r.headers["Location"] == "/"


async def test_placeholder_grant_returns_to_its_widget(site: TestServer) -> None:
    """A placeholder's button posts next=/page#cp-<category>-<n>: the fragment is kept and
    a one-minute cookie asks the next page to mark the widget (returning.py)."""
    r = await post(site, {"social": "1", "next": "/p?x=1#cp-social-2"})
    assert r.status == 303 and r.headers["Location"] == "/p?x=1#cp-social-2"
    consent, back = r.headers.getall("Set-Cookie")
    assert consent.startswith("consent=v=1&")
    assert back == "consent-return=cp-social-2; Path=/; SameSite=Lax; HttpOnly; Max-Age=60"
    r = await post(site, {"social": "1", "next": "/p#cp-social-1"}, {"X-Forwarded-Proto": "https"})
    assert r.headers.getall("Set-Cookie")[1].endswith("; Max-Age=60; Secure")
    for target, location in [
        ("/p#top", "/p#top"),  # a fragment of the page's own: kept, no cookie
        ("/p#cp-social-0", "/p#cp-social-0"),
        ("/p#cp-unknown-1", "/p#cp-unknown-1"),
        ("//evil.example/#cp-social-1", "/"),  # the same safe-redirect rule as ever
        ("https://evil.example/#cp-social-1", "/"),
    ]:
        r = await post(site, {"social": "1", "next": target})
        assert r.headers["Location"] == location
        assert len(r.headers.getall("Set-Cookie")) == 1, target
    r = await post(site, {"social": "1", "next": "/p#cp-social-1"}, json=True)
    assert r.status == 200 and len(r.headers.getall("Set-Cookie")) == 1  # no redirect


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "https://evil.example"},
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},
        {"Origin": "null"},
    ],
)
async def test_cross_site_posts_refused(site: TestServer, headers: dict[str, str]) -> None:
    r = await post(site, {"accept": "all"}, headers)
    assert r.status == 403 and "Set-Cookie" not in r.headers


async def test_same_origin_browser_post_accepted(site: TestServer) -> None:
    origin = str(site.make_url("/")).rstrip("/")
    r = await post(site, {"accept": "all"}, {"Origin": origin, "Sec-Fetch-Site": "same-origin"})
    assert r.status == 303


async def test_one_category_keeps_the_others(site: TestServer) -> None:
    r = await post(
        site, {"social": "1"}, {"Cookie": "consent=v=1&analytics=1&advertising=0&social=0"}
    )
    assert r.headers["Set-Cookie"].startswith(
        "consent=v=1&preferences=0&analytics=1&advertising=0&social=1&media=0;"
    )
    form = [
        ("analytics", "0"),
        ("analytics", "1"),
        ("social", "0"),
    ]  # hidden 0 + checked box; unchecked
    r = await post(site, form)
    assert r.headers["Set-Cookie"].startswith(
        "consent=v=1&preferences=0&analytics=1&advertising=0&social=0&media=0;"
    )


async def test_withdrawal_expires_vendor_cookies_on_host_and_parents(site: TestServer) -> None:
    r = await post(
        site,
        {"reject": "all"},
        {"Cookie": "_ga=GA1.2.3; _ga_ABC=1; _fbp=fb.1; mine=keep", "Host": "www.shop.example"},
    )
    cookies = r.headers.getall("Set-Cookie")
    assert cookies[0].startswith("consent=")
    expired = [c for c in cookies[1:]]
    for name in ("_ga", "_ga_ABC", "_fbp"):
        for domain in ("", "; Domain=www.shop.example", "; Domain=shop.example"):
            assert (
                f"{name}=; Path=/; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT{domain}"
                in expired
            )
    assert not any(c.startswith("mine=") for c in cookies)


async def test_json_api(site: TestServer) -> None:
    r = await post(
        site, {"analytics": True, "social": False}, {"Accept": "application/json"}, json=True
    )
    assert r.status == 200 and r.headers["Set-Cookie"].startswith(
        "consent=v=1&preferences=0&analytics=1&"
    )
    async with aiohttp.ClientSession() as s:
        async with s.get(
            site.make_url("/_consent"),
            headers={"Accept": "application/json", "Cookie": "consent=v=1&analytics=1"},
        ) as g:
            state = await g.json()
    assert state["decided"] is True and state["categories"]["analytics"]["granted"] is True
    assert "Google Analytics" in state["categories"]["analytics"]["vendors"]
    bad = await post(site, {"x": 1}, {"Accept": "application/json"}, json=True)
    assert bad.status == 400
    bad = await post(site, b"not json", {"Content-Type": "application/json"})
    assert bad.status == 400


async def test_preferences_page(site: TestServer) -> None:
    async with aiohttp.ClientSession() as s:
        async with s.get(
            site.make_url("/_consent?next=/back"), headers={"Cookie": "consent=v=1&social=1"}
        ) as r:
            page = await r.text()
    assert r.status == 200 and "Cookie preferences" in page
    assert 'name="social" value="1" checked' in page and 'name="analytics" value="1"  ' in page
    assert 'value="/back"' in page and "Facebook" in page
    assert r.headers["Content-Security-Policy"].startswith("default-src 'none'; style-src 'sha256-")


async def test_banner_only_for_undecided_and_only_on_pages(site: TestServer) -> None:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as s:
        async with s.get(site.make_url("/a?b=c")) as r:
            page = await r.text()
        # First in <body>: the first thing the keyboard and screen readers meet.
        assert page.index("<body><style>#cp-banner") == page.index("<body>")
        assert page.count('id="cp-banner"') == 1 and page.endswith("<p>hi</p></body></html>")
        assert '<input type="hidden" name="next" value="/a?b=c" />' in page
        async with s.get(site.make_url("/a?bodyless=1")) as r:
            page = await r.text()
        assert page.startswith("<!doctype html><title>t</title><p>hi</p><style>#cp-banner")
        assert page.count('id="cp-banner"') == 1
        async with s.get(site.make_url("/a"), headers={"Cookie": "consent=v=1&analytics=0"}) as r:
            assert "cp-banner" not in await r.text()
        async with s.get(site.make_url("/a?fragment=1")) as r:
            assert await r.text() == "<li>item</li>"


async def test_page_csp_gets_hashes_for_our_styles(site: TestServer) -> None:
    policy = "default-src 'self'; style-src 'nonce-abc'; form-action 'none'"
    async with aiohttp.ClientSession() as s:
        async with s.get(site.make_url("/"), params={"csp": policy}) as r:
            got = r.headers["Content-Security-Policy"]
    # default-src governs scripts here: it gets the surrogates' hashes (GA's stand-in).
    assert got.startswith("default-src 'self' 'sha256-")
    assert "; style-src 'nonce-abc' 'sha256-" in got
    assert got.endswith("form-action 'self'")
    loose = "default-src 'self'; style-src 'self' 'unsafe-inline'"
    async with aiohttp.ClientSession() as s:
        async with s.get(site.make_url("/"), params={"csp": loose}) as r:
            # Styles rely on 'unsafe-inline': untouched (scripts get the surrogates' hashes).
            assert r.headers["Content-Security-Policy"].endswith("; " + loose.split("; ")[1])


@pytest.mark.parametrize(
    ("policy", "kind", "expected"),
    [
        ("default-src 'self'", "style", "default-src 'self' H"),
        ("script-src 'nonce-x'", "style", "script-src 'nonce-x'"),  # styles unrestricted
        (
            "style-src 'unsafe-inline'",
            "style",
            "style-src 'unsafe-inline'",
        ),  # relies on it: untouched
        ("style-src 'unsafe-inline' 'nonce-y'", "style", "style-src 'unsafe-inline' 'nonce-y' H"),
        ("style-src 'none'; img-src *", "style", "style-src H; img-src *"),
        (
            "style-src-elem 'self'; style-src 'unsafe-inline'",
            "style",
            "style-src-elem 'self' H; style-src 'unsafe-inline'",
        ),
        (
            "default-src 'none'; script-src 'strict-dynamic' 'nonce-z'",
            "script",
            "default-src 'none'; script-src 'strict-dynamic' 'nonce-z' H",
        ),
    ],
)
def test_allow_inline(policy: str, kind: str, expected: str) -> None:
    h = csp.sha256_source("x{}")
    assert csp.allow_inline(policy, kind, ["x{}"]) == expected.replace("H", h)


async def test_meta_csp_gets_hashes_too(
    aiohttp_server: Callable[..., Awaitable[TestServer]], make_proxy: MakeProxy
) -> None:
    page = (
        '<!doctype html><html><head><meta http-equiv="Content-Security-Policy" '
        "content=\"style-src 'self'; form-action 'none'\"></head><body>x</body></html>"
    )

    async def serve(request: web.Request) -> web.Response:
        return web.Response(text=page, content_type="text/html")

    app = web.Application()
    app.router.add_get("/", serve)
    origin = await aiohttp_server(app)
    proxy = await make_proxy(str(origin.make_url("/")), rewrite=None, ruleset=RULES)
    async with aiohttp.ClientSession() as s, s.get(proxy.make_url("/")) as r:
        body = await r.text()
    meta = body[body.index("<meta") : body.index(">", body.index("<meta")) + 1]
    assert "style-src 'self' 'sha256-" in meta and "form-action 'self'" in meta
    banner_css = body[
        body.index("<style>#cp-banner") + len("<style>") : body.index(
            "</style>", body.index("<style>#cp-banner")
        )
    ]
    assert csp.sha256_source(banner_css) in meta


async def test_operator_templates_replace_ours(
    aiohttp_server: Callable[..., Awaitable[TestServer]], make_proxy: MakeProxy, tmp_path: Path
) -> None:
    from proxy.settings import load_settings

    (tmp_path / "banner.toml").write_text(
        'lang = "fr"\ntitle = "Vos choix"\ntext = "Nous aimerions utiliser des cookies."\n'
        'privacy_label = "Confidentialit\u00e9"\naccept = "Tout accepter"\nreject = "Tout refuser"\n'
        'choose = "Choisir"\n',
        encoding="utf-8",
    )
    settings = load_settings({"templates": str(tmp_path), "privacy_url": "/vie-privee"}, env={})
    assert (settings.templates, settings.privacy_url) == (str(tmp_path), "/vie-privee")

    async def serve(request: web.Request) -> web.Response:
        return web.Response(text=PAGE, content_type="text/html")

    app = web.Application()
    app.router.add_get("/", serve)
    origin = await aiohttp_server(app)
    proxy = await make_proxy(
        str(origin.make_url("/")),
        rewrite=None,
        ruleset=RULES,
        templates=settings.templates,
        privacy_url=settings.privacy_url,
    )
    async with aiohttp.ClientSession() as s, s.get(proxy.make_url("/")) as r:
        page = await r.text()
    assert 'lang="fr"' in page and "Vos choix" in page and ">Tout refuser<" in page
    assert '<a href="/vie-privee">Confidentialit\u00e9</a>' in page


def test_privacy_url_must_be_a_path_or_http_url() -> None:
    from proxy.settings import SettingsError, load_settings

    with pytest.raises(SettingsError, match="privacy_url = 'javascript:alert"):
        load_settings({"privacy_url": "javascript:alert(1)"}, env={})


async def test_every_consent_change_is_logged_as_proof(site: TestServer, tmp_path: Path) -> None:
    import json

    await post(site, {"reject": "all"}, {"Cookie": "consent=v=1&analytics=1; _ga=GA1"})
    line = (tmp_path / "decisions.log").read_text().strip().splitlines()[-1]
    record = json.loads(line)
    assert record["kind"] == "consent" and record["policy_version"] == 1
    assert record["granted"] == [] and "analytics" in record["denied"]
    assert record["before"]["analytics"] is True and record["expired_cookies"] == ["_ga"]
    assert record["client"] == "127.0.0.0" and "GA1" not in line


async def test_metrics_for_the_operator(
    aiohttp_server: Callable[..., Awaitable[TestServer]], make_proxy: MakeProxy
) -> None:
    # Without Consent Mode, whose default an accepting visitor's page would get.
    site = await make_site(aiohttp_server, make_proxy, consent_mode="off")
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as s:
        async with s.get(site.make_url("/")) as r:
            await r.read()
        async with s.get(
            site.make_url("/"),
            headers={
                "Cookie": "consent=v=1&analytics=1&advertising=1&social=1&preferences=1&media=1"
            },
        ) as r:
            await r.read()
    await post(site, {"accept": "all"})
    async with aiohttp.ClientSession() as s:
        async with s.get(site.make_url("/_consent/metrics")) as r:
            text = await r.text()
        async with s.get(
            site.make_url("/_consent/metrics"), headers={"X-Forwarded-For": "1.2.3.4"}
        ) as r:
            assert r.status == 404
    assert 'consent_proxy_pages_total{how="rewritten"} 1' in text
    assert 'consent_proxy_pages_total{how="untouched"} 1' in text
    assert 'consent_proxy_consents_total{kind="accept_all"} 1' in text
    assert 'consent_proxy_responses_total{class="2xx"}' in text
    assert f'consent_proxy_rules_info{{generation="{RULES.generation}"}} 1' in text
    tasks = re.search(r"(?m)^consent_proxy_asyncio_tasks (\d+)$", text)
    assert tasks and int(tasks.group(1)) >= 1  # at least the task answering this request


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("PUT", "/_consent", 405),
        ("DELETE", "/_consent/health", 405),
        ("POST", "/.well-known/gpc.json", 405),
        ("GET", "/_consent/nothing-here", 404),
        ("POST", "/_consent/x?y=1", 404),
    ],
)
async def test_own_paths_never_reach_the_origin(
    site: TestServer, method: str, path: str, status: int
) -> None:
    async with aiohttp.ClientSession() as s, s.request(method, site.make_url(path)) as r:
        assert r.status == status
        body = await r.text()
    assert f"<h1>{status} " in body  # the proxy's own page, not the origin's answer
    if status == 405:
        assert "GET" in r.headers["Allow"]


EMBED_PAGE = (
    "<!doctype html><html><head><title>t</title></head><body><p>hi</p>"
    '<iframe src="https://www.facebook.com/plugins/like.php?href=x" width="250"></iframe>'
    "</body></html>"
)
HOSTILE_TARGETS = [
    '/p"><script>alert(1)</script>?q="><script>alert(2)</script>&a=<b>&c=\'',
    "/p'onmouseover='alert(1)'?x=&quot;&amp;&lt;",
    "/javascript:alert(1)",
    "//evil.example/p",
    "/\\evil.example/p",
    "/%5C%5Cevil.example/p",
    "/p%0D%0ALocation:%20https://evil.example/%0D%0A",
    "/" + "long/" * 1200,
]


def form_submissions(tree: Any) -> list[list[tuple[str, str]]]:
    """What a browser would post for each submit button of each form in ``tree``:
    the form's inputs, and the button's own name and value (a button outside its
    form names it with ``form=``)."""
    buttons = [b for b in tree.iter("button") if b.get("type", "submit") == "submit"]
    out = []
    for form in tree.iter("form"):
        fields = [(i.get("name", ""), i.get("value", "")) for i in form.iter("input")]
        own = [b for b in form.iter("button")]
        own += [b for b in buttons if b.get("form") and b.get("form") == form.get("id")]
        for button in own:
            extra = [(button.get("name", ""), button.get("value", ""))]
            out.append([(k, v) for k, v in fields + extra if k])
    return out


@pytest.mark.parametrize("target", HOSTILE_TARGETS, ids=range(len(HOSTILE_TARGETS)))
async def test_hostile_paths_in_banner_and_placeholder_forms(
    aiohttp_server: Callable[..., Awaitable[TestServer]], make_proxy: MakeProxy, target: str
) -> None:
    """RELIABILITY (Injection, case 62): a path and query with quotes, markup,
    ``javascript:``, ``//host``, encoded CR/LF or 6 KB of length land escaped in the
    banner's and the placeholders' forms (no element or attribute of their own), each
    form's ``next`` is the page itself or ``/``, and posting any of the forms (and the
    preferences page the banner links to) never redirects off the site."""
    from tests.support.oracle import parse
    from tests.support.sockets import raw_request

    async def page(request: web.BaseRequest) -> web.Response:
        return web.Response(text=EMBED_PAGE, content_type="text/html")

    runner = web.ServerRunner(web.Server(page))  # any target at all, no router
    await runner.setup()
    origin_site = web.TCPSite(runner, "127.0.0.1", 0)
    await origin_site.start()
    try:
        site = await make_proxy(f"http://127.0.0.1:{origin_site.port}", rewrite=None, ruleset=RULES)
        answer = await raw_request(
            site, f"GET {target} HTTP/1.1\r\nHost: site.example\r\n\r\n".encode()
        )
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200"), head
        tree = parse(body)
        assert [e for e in tree.iter() if e.tag == "script"] == []
        assert [a for e in tree.iter() for a in e.attrib if a.lower().startswith("on")] == []
        submissions = form_submissions(tree)
        # The banner's two buttons, the embed placeholder's two (grant, load once).
        assert len(submissions) == 4
        expected = target if target.startswith("/") and target[1:2] not in "/\\" else "/"
        for fields in submissions:
            (next_value,) = [v for k, v in fields if k == "next"]
            assert next_value in (expected, f"{expected}#cp-social-1")
        (choose,) = [e.get("href", "") for e in tree.iter("a") if e.get("class") == "cpb-choose"]
        assert choose.startswith("/_consent?next=")
        preferences = await raw_request(
            site, f"GET {choose} HTTP/1.1\r\nHost: site.example\r\n\r\n".encode()
        )
        pref_tree = parse(preferences.partition(b"\r\n\r\n")[2])
        assert [e for e in pref_tree.iter() if e.tag == "script"] == []
        (pref_next,) = [
            i.get("value", "") for i in pref_tree.iter("input") if i.get("name") == "next"
        ]
        submissions.append([("next", pref_next), ("reject", "all")])
        for fields in submissions:
            r = await post(site, fields, {"Host": "site.example"})
            location = r.headers["Location"]
            assert r.status == 303 and location.startswith("/"), location
            assert urljoin("http://site.example/x/", location).startswith("http://site.example/")
            assert not any(c in location for c in "\r\n\\") and not location.startswith("//")
    finally:
        await runner.cleanup()
