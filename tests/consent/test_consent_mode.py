"""Google Consent Mode v2: the default's values, where it lands in a page, the rule key
and the settings, advanced mode's kept tags, and the page's Content-Security-Policy,
through the real proxy in front of a real origin."""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from proxy.consent.consent_mode import (
    ConsentModeSettings,
    defaults,
    denied_blocks,
    google_defaults,
    script_tag,
)
from proxy.consent.model import OPTIONAL, ConsentPolicy, parse_consent_arg
from proxy.consent.rules import RuleError, RuleSet, load_rules, parse_rule
from proxy.settings import SettingsError, load_settings
from proxy.ui import csp

ROOT = Path(__file__).resolve().parent.parent.parent
RULES = load_rules(ROOT / "rules")
GOOGLE = ("google-analytics", "google-tag-manager", "google-ads")
MakeProxy = Callable[..., Awaitable[TestServer]]
Server = Callable[..., Awaitable[TestServer]]


def cookie(**granted: int) -> str:
    return "consent=v=1&" + "&".join(f"{c}={granted.get(c, 0)}" for c in OPTIONAL)


ALL = cookie(preferences=1, analytics=1, advertising=1, social=1, media=1)
NONE = cookie()
ANALYTICS = cookie(analytics=1)

GTAG = (
    '<script async src="https://www.googletagmanager.com/gtag/js?id=G-1"></script>'
    "<script>window.dataLayer = window.dataLayer || []; function gtag(){dataLayer.push(arguments);}"
    " gtag('js', new Date()); gtag('config', 'G-1');</script>"
)
GTM_NOSCRIPT = (
    '<noscript><iframe src="https://www.googletagmanager.com/ns.html?id=GTM-1" '
    'height="0" width="0"></iframe></noscript>'
)
ADS = (
    '<script async src="https://securepubads.g.doubleclick.net/tag/js/gpt.js"></script>'
    '<img src="https://ad.doubleclick.net/ddm/activity/src=1;type=a" width="1" height="1" alt="">'
)
PAGE = (
    "<!doctype html><html><head><meta charset=utf-8><title>t</title>"
    f"{GTAG}</head><body><h1>Shop</h1>{GTM_NOSCRIPT}{ADS}</body></html>"
)


def granted_values(**categories: bool) -> dict[str, str]:
    def v(ok: bool) -> str:
        return "granted" if ok else "denied"

    ads = categories.get("advertising", False)
    prefs = categories.get("preferences", False)
    return {
        "ad_storage": v(ads),
        "analytics_storage": v(categories.get("analytics", False)),
        "ad_user_data": v(ads),
        "ad_personalization": v(ads),
        "functionality_storage": v(prefs),
        "personalization_storage": v(prefs),
        "security_storage": "granted",
    }


@pytest.mark.parametrize(
    ("consent", "expected"),
    [
        ("none", granted_values()),
        ("all", granted_values(analytics=True, advertising=True, preferences=True)),
        ("analytics=1", granted_values(analytics=True)),
        ("advertising=1", granted_values(advertising=True)),
        ("preferences=1&social=1", granted_values(preferences=True)),
    ],
)
def test_defaults_follow_the_documented_mapping(consent: str, expected: dict[str, str]) -> None:
    values = defaults(parse_consent_arg(consent, ConsentPolicy()))
    assert values == expected
    assert list(values) == [
        "ad_storage",
        "analytics_storage",
        "ad_user_data",
        "ad_personalization",
        "functionality_storage",
        "personalization_storage",
        "security_storage",
    ]


def test_the_script_sets_the_default_and_the_chosen_settings() -> None:
    consent = parse_consent_arg("analytics=1", ConsentPolicy())
    plain = google_defaults(consent)
    assert plain.startswith(
        "window.dataLayer = window.dataLayer || []; function gtag(){dataLayer.push(arguments);} "
        "gtag('consent','default',{"
    )
    assert "wait_for_update" not in plain and "'update'" not in plain and "'set'" not in plain
    both = google_defaults(consent, ConsentModeSettings("", True, True))
    assert both.endswith(
        "gtag('set','ads_data_redaction',true); gtag('set','url_passthrough',true);"
    )
    assert script_tag("x()", "abc+/=") == '<script nonce="abc+/=">x()</script>'
    assert script_tag("x()", 'a"><script>') == "<script>x()</script>"  # never into markup
    assert script_tag("x()") == "<script>x()</script>"


def test_builtin_google_rules_are_basic_and_others_have_no_mode() -> None:
    modes = {rule.id: rule.consent_mode for rule in RULES.rules}
    assert {k: modes[k] for k in GOOGLE} == dict.fromkeys(GOOGLE, "basic")
    assert all(mode is None for rid, mode in modes.items() if rid not in GOOGLE)


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ('consent_mode = "full"', "'full' is not a Consent Mode; expected one of off, basic"),
        ("consent_mode = true", "True is not a Consent Mode"),
    ],
)
def test_rule_key_errors_name_file_line_and_key(line: str, problem: str) -> None:
    text = f'name = "G"\ncategory = "analytics"\n{line}\n[[block]]\nselector = "script"\n'
    with pytest.raises(RuleError) as err:
        parse_rule("g", text, "rules/g.toml")
    assert str(err.value).startswith("rules/g.toml:3: consent_mode: ")
    assert problem in str(err.value)


def test_advanced_lifts_script_blocks_and_keeps_those_of_pixels() -> None:
    advanced = ConsentModeSettings("advanced")
    ads = next(r for r in RULES.rules if r.id == "google-ads")
    kept = denied_blocks(ads, advanced)
    # The mixed selector keeps its pixel parts; script-only blocks and ins go.
    assert [b.selector for b in kept] == ["iframe[src], img[src], embed[src], object[data]"]
    gtm = next(r for r in RULES.rules if r.id == "google-tag-manager")
    assert [b.selector for b in denied_blocks(gtm, advanced)] == ["iframe, img"]
    # A selector that names no element type may match a pixel: it stays (fail closed).
    rule = parse_rule(
        "g",
        'name = "G"\ncategory = "analytics"\nconsent_mode = "advanced"\n'
        '[[block]]\nselector = ".tracker"\n[[block]]\nselector = "script"\n',
        "g.toml",
    )
    assert [b.selector for b in denied_blocks(rule)] == [".tracker"]
    # Rules that are not Google's are never changed by the override.
    facebook = next(r for r in RULES.rules if r.id == "facebook")
    assert denied_blocks(facebook, advanced) == facebook.blocks


def test_nonces_are_read_from_the_governing_directive() -> None:
    assert csp.script_nonce(["default-src 'self'; script-src 'nonce-AbC' 'strict-dynamic'"]) == (
        "AbC"
    )
    assert csp.script_nonce(["script-src-elem 'self'; script-src 'nonce-x'"]) is None
    assert csp.script_nonce(["style-src 'nonce-s'", "default-src 'nonce-d'"]) == "d"
    assert csp.allows_nonce("script-src 'NONCE-AbC'", "AbC")
    assert not csp.allows_nonce("script-src 'nonce-abc'", "AbC")  # values are case-sensitive
    assert csp.allows_nonce("img-src 'self'", "x")  # nothing restricts scripts


# -- through the proxy -------------------------------------------------------------------


async def origin_of(
    aiohttp_server: Server, pages: Mapping[str, tuple[str, dict[str, str]]]
) -> TestServer:
    async def serve(request: web.Request) -> web.Response:
        text, headers = pages[request.path]
        return web.Response(text=text, content_type="text/html", headers=headers)

    app = web.Application()
    for path in pages:
        app.router.add_get(path, serve)
    return await aiohttp_server(app)


async def proxied(
    aiohttp_server: Server,
    make_proxy: MakeProxy,
    pages: Mapping[str, tuple[str, dict[str, str]]],
    ruleset: RuleSet = RULES,
    **settings: object,
) -> TestServer:
    origin = await origin_of(aiohttp_server, pages)
    return await make_proxy(str(origin.make_url("/")), rewrite=None, ruleset=ruleset, **settings)


async def get(
    proxy: TestServer, path: str, cookie: str | None = None
) -> tuple[str, aiohttp.ClientResponse]:
    headers = {"Cookie": cookie} if cookie else {}
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as session:
        async with session.get(proxy.make_url(path), headers=headers) as response:
            return await response.text(), response


DEFAULT_SCRIPT = re.compile(
    r"<script(?: nonce=\"([^\"]*)\")?>(window\.dataLayer = window\.dataLayer \|\| \[\]; "
    r"function gtag\(\)\{dataLayer\.push\(arguments\);\} gtag\('consent','default',[^<]*)</script>"
)


def default_in(page: str) -> tuple[dict[str, str] | None, str | None, int]:
    """The consent default a page carries, its nonce, and where it starts."""
    match = DEFAULT_SCRIPT.search(page)
    if match is None:
        return None, None, -1
    values = re.search(r"gtag\('consent','default',(\{[^}]*\})\)", match.group(2))
    assert values is not None
    return json.loads(values.group(1)), match.group(1), match.start()


async def test_the_default_is_the_first_script_when_google_tags_run(
    aiohttp_server: Server, make_proxy: MakeProxy
) -> None:
    early = (
        '<!doctype html><html><script src="https://www.googletagmanager.com/gtm.js?id=GTM-1">'
        "</script><head><title>t</title>" + GTAG + "</head><body>x</body></html>"
    )
    headless = "<!doctype html><title>t</title>" + GTAG + "<p>x</p>"
    fragment = "<div>" + GTAG + "</div>"
    proxy = await proxied(
        aiohttp_server,
        make_proxy,
        {
            "/": (PAGE, {}),
            "/early": (early, {}),
            "/headless": (headless, {}),
            "/frag": (fragment, {}),
        },
    )
    page, response = await get(proxy, "/", ALL)
    values, nonce, at = default_in(page)
    assert values == granted_values(analytics=True, advertising=True, preferences=True)
    assert nonce is None and at == page.index("<head>") + len("<head>")
    assert at < page.index("<meta charset") < page.index("gtag/js")
    assert "X-Consent-Actions: none" not in str(response.headers)
    custom, _ = await get(proxy, "/", ANALYTICS)
    assert default_in(custom)[0] == granted_values(analytics=True)
    assert "doubleclick.net" not in custom and "gtag/js" in custom
    # Before a tag the origin put in front of <head>, and where <head> was left out.
    for path in ("/early", "/headless"):
        page, _ = await get(proxy, path, ALL)
        _values, _nonce, at = default_in(page)
        assert at > 0 and at == page.index("<script")  # the first script of the page
    # An HTML fragment (loaded into a page that has its own default) gets none.
    frag, _ = await get(proxy, "/frag", ALL)
    assert default_in(frag)[0] is None and "gtag/js" in frag


@pytest.mark.parametrize("visitor", [None, NONE, cookie(social=1, preferences=1)])
async def test_basic_adds_nothing_while_every_google_tag_is_denied(
    aiohttp_server: Server, make_proxy: MakeProxy, visitor: str | None
) -> None:
    proxy = await proxied(aiohttp_server, make_proxy, {"/": (PAGE, {})})
    page, _ = await get(proxy, "/", visitor)
    assert default_in(page)[0] is None
    assert "googletagmanager" not in page and "doubleclick" not in page


@pytest.mark.parametrize(
    ("visitor", "expected"),
    [
        (None, granted_values()),
        (NONE, granted_values()),
        (ANALYTICS, granted_values(analytics=True)),
        (ALL, granted_values(analytics=True, advertising=True, preferences=True)),
    ],
)
async def test_advanced_keeps_google_scripts_and_removes_what_loads_without_script(
    aiohttp_server: Server,
    make_proxy: MakeProxy,
    visitor: str | None,
    expected: dict[str, str],
) -> None:
    proxy = await proxied(
        aiohttp_server,
        make_proxy,
        {"/": (PAGE, {})},
        consent_mode="advanced",
        ads_data_redaction=True,
        url_passthrough=True,
    )
    page, response = await get(proxy, "/", visitor)
    values, _nonce, _at = default_in(page)
    assert values == expected
    assert "gtag('set','ads_data_redaction',true); gtag('set','url_passthrough',true);" in page
    assert GTAG in page and "securepubads.g.doubleclick.net/tag/js/gpt.js" in page
    # GTM's <noscript> iframe and the pixel cannot read the consent state.
    assert ("ns.html" in page) == (expected["analytics_storage"] == "granted")
    assert ("ddm/activity" in page) == (expected["ad_storage"] == "granted")
    assert response.headers["X-Consent"].startswith("analytics=")


@pytest.mark.parametrize(
    ("visitor", "shown"), [(None, False), (NONE, False), (ANALYTICS, True), (ALL, True)]
)
async def test_gtm_noscript_iframe_follows_the_rule(
    aiohttp_server: Server, make_proxy: MakeProxy, visitor: str | None, shown: bool
) -> None:
    proxy = await proxied(aiohttp_server, make_proxy, {"/": (PAGE, {})})
    page, _ = await get(proxy, "/", visitor)
    assert ("googletagmanager.com/ns.html" in page) is shown
    assert ("<noscript></noscript>" in page) is not shown


async def test_rule_mode_off_and_the_override(
    aiohttp_server: Server, make_proxy: MakeProxy
) -> None:
    off = RuleSet(
        tuple(
            dataclasses.replace(r, consent_mode="off") if r.consent_mode else r for r in RULES.rules
        ),
        "off",
    )
    proxy = await proxied(aiohttp_server, make_proxy, {"/": (PAGE, {})}, ruleset=off)
    page, _ = await get(proxy, "/", ALL)
    assert default_in(page)[0] is None
    overridden = await proxied(
        aiohttp_server, make_proxy, {"/": (PAGE, {})}, ruleset=off, consent_mode="basic"
    )
    page, _ = await get(overridden, "/", ALL)
    assert default_in(page)[0] is not None


async def test_variants_get_their_own_default_and_etag(
    aiohttp_server: Server, make_proxy: MakeProxy
) -> None:
    proxy = await proxied(aiohttp_server, make_proxy, {"/": (PAGE, {"ETag": '"p1"'})})
    _a, all_response = await get(proxy, "/", ALL)
    _b, some_response = await get(proxy, "/", ANALYTICS)
    assert all_response.headers["ETag"] != some_response.headers["ETag"]
    assert "Cookie" in all_response.headers["Vary"]
    assert all_response.headers["Cache-Control"].startswith("private")


STRICT_NONCE = "default-src 'self'; script-src 'nonce-R4nd0m' 'strict-dynamic'; object-src 'none'"
STRICT_HASH = "default-src 'self'; script-src 'self' https://www.googletagmanager.com"
UNSAFE = "script-src 'self' 'unsafe-inline'"


async def test_the_page_policy_allows_the_default_by_nonce_or_hash(
    aiohttp_server: Server, make_proxy: MakeProxy
) -> None:
    meta_page = PAGE.replace(
        "<title>",
        f'<meta http-equiv="Content-Security-Policy" content="{STRICT_HASH}"><title>',
    )
    proxy = await proxied(
        aiohttp_server,
        make_proxy,
        {
            "/nonce": (PAGE, {"Content-Security-Policy": STRICT_NONCE}),
            "/hash": (PAGE, {"Content-Security-Policy": STRICT_HASH}),
            "/both": (
                PAGE,
                {
                    "Content-Security-Policy": STRICT_NONCE,
                    "Content-Security-Policy-Report-Only": STRICT_HASH,
                },
            ),
            "/unsafe": (PAGE, {"Content-Security-Policy": UNSAFE}),
            "/meta": (meta_page, {}),
        },
    )
    page, response = await get(proxy, "/nonce", ALL)
    values, nonce, _at = default_in(page)
    assert values is not None and nonce == "R4nd0m"
    script_src = "script-src 'nonce-R4nd0m' 'strict-dynamic'"
    assert script_src + ";" in response.headers["Content-Security-Policy"]  # untouched

    page, response = await get(proxy, "/hash", ALL)
    match = DEFAULT_SCRIPT.search(page)
    assert match is not None and match.group(1) is None
    digest = csp.sha256_source(match.group(2))
    script_src = "script-src 'self' https://www.googletagmanager.com"
    assert f"{script_src} {digest}" in response.headers["Content-Security-Policy"]

    page, response = await get(proxy, "/both", ALL)
    match = DEFAULT_SCRIPT.search(page)
    assert match is not None and match.group(1) == "R4nd0m"
    assert digest not in response.headers["Content-Security-Policy"]
    assert f"{script_src} {digest}" in response.headers["Content-Security-Policy-Report-Only"]

    page, response = await get(proxy, "/unsafe", ALL)
    assert response.headers["Content-Security-Policy"] == UNSAFE  # never weakened

    # A <meta> policy governs what follows it only, and the default comes first.
    page, _ = await get(proxy, "/meta", ALL)
    assert f'{script_src}">' in page and digest not in page
    assert page.index("gtag('consent','default'") < page.index("Content-Security-Policy")


def test_settings_for_consent_mode_are_validated() -> None:
    settings = load_settings(
        {"consent_mode": "advanced"},
        env={"CONSENT_PROXY_ADS_DATA_REDACTION": "yes", "CONSENT_PROXY_URL_PASSTHROUGH": "1"},
    )
    assert settings.consent_mode_settings == ConsentModeSettings("advanced", True, True)
    assert load_settings(env={}).consent_mode_settings == ConsentModeSettings()
    with pytest.raises(SettingsError, match=r"--consent-mode: consent_mode = 'full'.*off, basic"):
        load_settings({"consent_mode": "full"}, env={})
    with pytest.raises(SettingsError, match="environment CONSENT_PROXY_URL_PASSTHROUGH"):
        load_settings(env={"CONSENT_PROXY_URL_PASSTHROUGH": "maybe"})


@pytest.mark.parametrize("size", [1, 7, 100, 511, 512, 513, 4096, 1 << 20])
def test_an_accepting_visitors_page_is_the_origins_but_for_the_default(size: int) -> None:
    """Where the default is all a page gets, the bytes after it pass as they came,
    however the page arrives in pieces (even split inside a tag)."""
    from proxy.consent.enforce import EnforcedPage
    from proxy.consent.plans import compile_plan
    from proxy.ui.furniture import PageFurniture
    from proxy.ui.templates import Templates

    consent = parse_consent_arg("all", ConsentPolicy())
    plan = compile_plan(RULES, consent)
    body = (
        "<!DOCTYPE html><html><head ><meta charset=utf-8>"
        + GTAG
        + '<meta http-equiv="Content-Security-Policy" content="script-src \'self\'">'
        + "</head><body>"
        + "<p>caf\u00e9 <script>if (a < b) {}</script></p>" * 300
        + GTM_NOSCRIPT
        + "</body></html>"
    ).encode()
    page = EnforcedPage(plan, "/", PageFurniture(Templates()), consent=consent)
    out = b"".join(page.feed(body[i : i + size]) for i in range(0, len(body), size))
    out += page.close()
    tag = "<script>" + plan.google_defaults + "</script>"
    assert out == body.replace(b"<head >", b"<head >" + tag.encode(), 1)


async def test_a_page_whose_default_carries_a_nonce_is_not_cached(
    aiohttp_server: Server, make_proxy: MakeProxy
) -> None:
    """A nonce belongs to one response: the rewrite cache never gives such a page to
    the next visitor (here the origin even says the bytes are the same)."""
    nonces = iter(["first1", "second2"])

    async def serve(request: web.Request) -> web.Response:
        policy = f"script-src 'nonce-{next(nonces)}'"
        headers = {"Content-Security-Policy": policy, "ETag": '"same"'}
        return web.Response(text=PAGE, content_type="text/html", headers=headers)

    app = web.Application()
    app.router.add_get("/", serve)
    origin = await aiohttp_server(app)
    proxy = await make_proxy(str(origin.make_url("/")), rewrite=None, ruleset=RULES)
    first, response = await get(proxy, "/", ALL)
    assert default_in(first)[1] == "first1"
    assert response.headers["X-Consent-Actions"].endswith("cache=bypass")
    second, _ = await get(proxy, "/", ALL)
    assert default_in(second)[1] == "second2"
