"""Surrogates put in by the proxy: where (the first running script a denied rule
removes), how often (once per page), what they are told (data- attributes), how they
get past a Content-Security-Policy, and how operators turn them off. Pages go through
the real proxy in front of a real origin; a few cases through the page rewrite alone."""

from __future__ import annotations

import dataclasses
import re
import shutil
import xml.etree.ElementTree as ET
from collections.abc import Awaitable, Callable
from pathlib import Path
from urllib.parse import quote

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from proxy.consent import standins
from proxy.consent.enforce import page_for
from proxy.consent.model import ConsentPolicy, parse_consent_arg
from proxy.consent.plans import compile_plan
from proxy.consent.rules import RuleSet, load_rules
from proxy.ui import surrogates
from proxy.ui.furniture import PageFurniture
from proxy.ui.templates import Templates
from tests.support import ROOT

RULES = load_rules(ROOT / "rules")
REFUSED = "consent=v=1&preferences=0&analytics=0&advertising=0&social=0"
ACCEPTED = "consent=v=1&preferences=1&analytics=1&advertising=1&social=1"
MakeProxy = Callable[..., Awaitable[TestServer]]
Server = Callable[..., Awaitable[TestServer]]
SURROGATE = re.compile(r'<script data-consent-surrogate="([a-z]+)"([^>]*)>')

HEAD = "<!doctype html><html><head><title>t</title>"
GA_SNIPPET = (
    "<script>(function(i,s,o,g,r,a,m){i['GoogleAnalyticsObject']=r;i[r]=i[r]||function(){"
    "(i[r].q=i[r].q||[]).push(arguments)},i[r].l=1*new Date();a=s.createElement(o),"
    "m=s.getElementsByTagName(o)[0];a.async=1;a.src=g;m.parentNode.insertBefore(a,m)"
    "})(window,document,'script','https://www.google-analytics.com/analytics.js','__gaTracker');"
    "__gaTracker('create', 'UA-1-1', 'auto');</script>"
)
GTM_SNIPPET = (
    "<script>(function(w,d,s,l,i){w[l]=w[l]||[];w[l].push({'gtm.start':new Date().getTime(),"
    "event:'gtm.js'});var f=d.getElementsByTagName(s)[0],j=d.createElement(s),"
    "dl=l!='dataLayer'?'&l='+l:'';j.async=true;j.src='https://www.googletagmanager.com/gtm.js"
    "?id='+i+dl;f.parentNode.insertBefore(j,f);})(window,document,'script','appLayer','GTM-AB12');"
    "</script>"
)
PAGES = {
    # A resource hint and a CMP-held copy come first: neither is a script that runs.
    "/ga": HEAD
    + '<link rel="preconnect" href="https://www.google-analytics.com">'
    + '<script type="text/plain" data-cookieconsent="statistics" '
    + 'src="https://www.google-analytics.com/analytics.js"></script>'
    + GA_SNIPPET
    + '<script async src="https://www.google-analytics.com/analytics.js"></script>'
    + "</head><body><p>Text</p>"
    + "<script>var _gaq = _gaq || []; _gaq.push(['_trackPageview']);</script>"
    + '<img src="https://www.google-analytics.com/collect?v=1" width="1" height="1">'
    + "<script>__gaTracker('send', 'event', 'a', 'b');</script></body></html>",
    "/ads": HEAD
    + '<script async src="https://securepubads.g.doubleclick.net/tag/js/gpt.js"></script>'
    + "</head><body>"
    + '<script async src="https://pagead2.googlesyndication.com/pagead/js/adsbygoogle.js"></script>'
    + '<ins class="adsbygoogle" data-ad-client="ca-pub-1"></ins>'
    + "<script>(adsbygoogle = window.adsbygoogle || []).push({});</script></body></html>",
    "/gtm": HEAD + GTM_SNIPPET + "</head><body><p>Text</p></body></html>",
    "/clean": HEAD + "</head><body><script>var x = 1;</script></body></html>",
}


@pytest.fixture
async def origin(aiohttp_server: Server) -> TestServer:
    async def page(request: web.Request) -> web.Response:
        text = PAGES.get(request.path)
        if text is None:
            raise web.HTTPNotFound()
        headers = {}
        if "csp" in request.query:
            headers["Content-Security-Policy"] = request.query["csp"]
        return web.Response(text=text, content_type="text/html", headers=headers)

    app = web.Application()
    app.router.add_get("/{name}", page)
    return await aiohttp_server(app)


async def get(server: TestServer, path: str, cookie: str = REFUSED) -> aiohttp.ClientResponse:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as session:
        async with session.get(server.make_url(path), headers={"Cookie": cookie}) as r:
            await r.read()
            return r


async def body(server: TestServer, path: str, cookie: str = REFUSED) -> str:
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as session:
        async with session.get(server.make_url(path), headers={"Cookie": cookie}) as r:
            return await r.text()


def found(html: str) -> list[tuple[str, str]]:
    """The surrogates in a page, in order, with their data- attributes."""
    return [(m.group(1), m.group(2).strip()) for m in SURROGATE.finditer(html)]


async def test_the_first_running_script_of_a_denied_rule_becomes_its_surrogate(
    origin: TestServer, make_proxy: MakeProxy
) -> None:
    proxy = await make_proxy(str(origin.make_url("/")), rewrite=None, ruleset=RULES)
    html = await body(proxy, "/ga")
    assert found(html) == [("ga", 'data-name="__gaTracker"')]
    ga = surrogates.load("ga").text
    # In place of the snippet: after the (removed) hint and held copy, before the rest.
    assert html.startswith(
        HEAD + f'<script data-consent-surrogate="ga" data-name="__gaTracker">{ga}</script></head>'
    )
    assert "google-analytics.com" not in html and "_gaq" not in html.replace(ga, "")
    assert "__gaTracker('send'" in html  # the page's own call stays, for the surrogate
    r = await get(proxy, "/ga")  # from the rewrite cache: the same page, the same actions
    actions, cache = r.headers["X-Consent-Actions"].split("; ")
    assert actions == "google-analytics=remove*6, google-analytics=surrogate*1"
    assert cache == "cache=hit"
    # A rule that names two: both, in its order, where its first script was.
    ads = await body(proxy, "/ads")
    assert [name for name, _ in found(ads)] == ["gpt", "adsbygoogle"]
    assert ads.index('data-consent-surrogate="adsbygoogle"') < ads.index("</head>")
    # The Tag Manager snippet's data layer and container go to the surrogate.
    assert found(await body(proxy, "/gtm")) == [("gtm", 'data-layer="appLayer" data-id="GTM-AB12"')]


async def test_granted_clean_or_switched_off_pages_get_none(
    origin: TestServer, make_proxy: MakeProxy, tmp_path: Path
) -> None:
    upstream = str(origin.make_url("/"))
    proxy = await make_proxy(upstream, rewrite=None, ruleset=RULES)
    assert found(await body(proxy, "/ga", ACCEPTED)) == []
    assert found(await body(proxy, "/clean")) == []
    # The surrogates setting off: the trackers still go, nothing stands in.
    off = await make_proxy(upstream, rewrite=None, ruleset=RULES, surrogates=False)
    html = await body(off, "/ga")
    assert found(html) == [] and "google-analytics.com" not in html
    # An operator turns one rule's off (surrogate = [] or false); the others stay.
    rules = tmp_path / "rules"
    shutil.copytree(ROOT / "rules", rules)
    for name, value in (("google-analytics", "[]"), ("google-ads", "false")):
        path = rules / f"{name}.toml"
        text = re.sub(r"(?m)^surrogate = .*$", f"surrogate = {value}", path.read_text())
        path.write_text(text)
    own = await make_proxy(upstream, rewrite=None, ruleset=load_rules(rules))
    assert found(await body(own, "/ga")) == []
    assert found(await body(own, "/ads")) == []
    assert [name for name, _ in found(await body(own, "/gtm"))] == ["gtm"]


@pytest.mark.parametrize(
    ("policy", "added"),
    [
        ("default-src 'self'; script-src 'nonce-abc' 'strict-dynamic'", True),
        ("script-src-elem 'self' 'sha256-AAAA'; img-src *", True),
        ("default-src 'self'", True),  # default-src governs scripts too
        ("script-src 'self' 'unsafe-inline'", False),  # a hash would switch unsafe-inline off
        ("img-src 'self'", False),  # nothing restricts scripts
    ],
)
async def test_a_restricting_script_policy_gets_the_surrogates_hashes(
    origin: TestServer, make_proxy: MakeProxy, policy: str, added: bool
) -> None:
    proxy = await make_proxy(str(origin.make_url("/")), rewrite=None, ruleset=RULES)
    r = await get(proxy, "/ga?csp=" + quote(policy))
    got = r.headers["Content-Security-Policy"]
    # Every surrogate the plan may put in (the headers leave before the page is read).
    for name in ("ga", "gtm", "gpt", "adsbygoogle", "fbq", "fbsdk", "twttr", "linkedin"):
        assert (surrogates.load(name).csp_source in got) is added, (name, got)
    assert surrogates.load("tcfapi").csp_source not in got  # no built-in rule names it


def rewrite(html: str, consent: str, *, xml: bool = False, ruleset: RuleSet = RULES) -> str:
    """``html`` as the proxy's page rewrite makes it for ``consent``."""
    furniture = PageFurniture(Templates(), banner=False)
    parsed = parse_consent_arg(consent, ConsentPolicy())
    plan = compile_plan(ruleset, parsed, surrogates=furniture.surrogates)
    page = page_for(plan, parsed, "/", furniture)
    page.set_format("utf-8", xml)
    return (page.feed(html.encode()) + page.close()).decode()


def test_xhtml_gets_the_text_escaped_so_that_xml_reads_it_back() -> None:
    page = (
        '<?xml version="1.0"?><html xmlns="http://www.w3.org/1999/xhtml"><head><title>x</title>'
        '<script src="https://www.googletagservices.com/tag/js/gpt.js"/></head>'
        "<body><p>x</p></body></html>"
    )
    out = rewrite(page, "none", xml=True)
    tree = ET.fromstring(out)
    scripts = tree.findall(".//{http://www.w3.org/1999/xhtml}script")
    assert [s.get("data-consent-surrogate") for s in scripts] == ["gpt", "adsbygoogle"]
    for script in scripts:
        name = script.get("data-consent-surrogate") or ""
        assert script.text == surrogates.load(name).text  # and so its CSP hash holds


def test_examples_and_plans_without_surrogate_texts_get_none() -> None:
    plain = compile_plan(RULES, parse_consent_arg("none", ConsentPolicy()))
    assert plain.surrogates == {}
    page = page_for(plain, plain.consent, "/", PageFurniture(Templates(), banner=False))
    out = page.feed(PAGES["/ga"].encode()) + page.close()
    assert b"data-consent-surrogate" not in out


def test_a_rule_that_names_a_surrogate_with_no_text_gets_none() -> None:
    """Texts come from the wiring; a name without one (an older package, a test)
    puts nothing in and removes as before."""
    rule = next(r for r in RULES.rules if r.id == "google-analytics")
    only = dataclasses.replace(RULES, rules=(rule,))
    parsed = parse_consent_arg("none", ConsentPolicy())
    plan = compile_plan(only, parsed, surrogates={"gtm": "/* no ga here */"})
    assert plan.surrogates == {} and plan.inline_scripts == ()


@pytest.mark.parametrize(
    ("name", "src", "text", "expected"),
    [
        ("ga", None, GA_SNIPPET, {"name": "__gaTracker"}),
        ("ga", None, "window.GoogleAnalyticsObject = 'mi';", {"name": "mi"}),
        (
            "ga",
            "https://www.googletagmanager.com/gtag/js?id=G-1&l=appLayer",
            "",
            {"layer": "appLayer"},
        ),
        (
            "ga",
            None,
            "window.myLayer = []; function gtag(){myLayer.push(arguments);}",
            {"layer": "myLayer"},
        ),
        ("ga", "https://www.google-analytics.com/analytics.js", "", {}),
        ("gtm", None, GTM_SNIPPET, {"layer": "appLayer", "id": "GTM-AB12"}),
        (
            "gtm",
            "https://www.googletagmanager.com/gtm.js?id=GTM-X1&l=dl2",
            "",
            {"layer": "dl2", "id": "GTM-X1"},
        ),
        # What is not an identifier or a container id is left out.
        ("gtm", 'https://www.googletagmanager.com/gtm.js?id=GTM-1"><b&l=a b', "", {}),
        ("gtm", "http://[bad", "", {}),
        ("fbq", "https://connect.facebook.net/en_US/fbevents.js?l=x", "", {}),
    ],
)
def test_attributes_from_the_removed_script(
    name: str, src: str | None, text: str, expected: dict[str, str]
) -> None:
    assert standins.attributes(name, src, text) == expected
