"""Every element form that makes a browser contact a catalogued host, in its hostile
variants, read through the real rewriter (its Element.get decodes the values), and
the text check of inline scripts."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from proxy.consent import contacts
from proxy.consent.catalogue import Catalogue, load_catalogue
from proxy.consent.contacts import REMOVE, STRIP, refresh_url, script_runs
from proxy.consent.prefilter import SUSPECT
from proxy.consent.verdicts import Verdict, decide_element, decide_text, text_hits
from proxy.html import Element, Rewriter

pytestmark = pytest.mark.xdist_group("verdicts")  # its module fixture, once

DENIED = frozenset({"preferences", "analytics", "advertising", "social", "media"})
TRACKER = "ad.doubleclick.net"


@pytest.fixture(scope="module")
def catalogue() -> Catalogue:
    return load_catalogue()


@dataclass(frozen=True)
class Variant:
    """A way to write https://ad.doubleclick.net/x.gif that a browser still loads."""

    name: str
    url: str
    scheme: str = "https"
    spaces: bool = False  # holds whitespace: not for space-separated lists (srcset, ping)
    css: bool = True  # means the same inside a CSS url("...")


VARIANTS = [
    Variant("plain", "https://ad.doubleclick.net/x.gif"),
    Variant("upper case", "HTTPS://AD.DoubleClick.NET/X.GIF"),
    Variant("protocol-relative", "//ad.doubleclick.net/x.gif"),
    Variant("backslashes", "https:\\\\ad.doubleclick.net\\x.gif", css=False),
    Variant("no slashes, http page", "https:ad.doubleclick.net/x.gif", scheme="http"),
    Variant("tab in host", "https://ad.double\tclick.net/x.gif", spaces=True),
    Variant("newline in host", "https://ad.doubleclick.\nnet/x.gif", spaces=True),
    Variant("spaces around", " \n //ad.doubleclick.net/x.gif \t", spaces=True),
    Variant("numeric reference", "https://ad.double&#99;lick.net/x.gif"),
    Variant("hex references", "&#x2F;&#x2f;ad.doubleclick.net/x.gif"),
    Variant("named references", "https:&sol;&sol;ad&period;doubleclick&period;net/x.gif"),
    Variant("percent escape", "https://ad.double%63lick.net/x.gif"),
    Variant("full-width dot", "https://ad.doubleclick\u3002net/x.gif"),
    Variant("user and port", "https://me@ad.doubleclick.net:443/x.gif"),
]


@dataclass(frozen=True)
class Form:
    """An element that contacts ``{url}``: its tag, attributes (in source order),
    the attribute the hit is reported in, and what stops it."""

    tag: str
    attrs: tuple[tuple[str, str], ...]
    attribute: str
    action: str = REMOVE
    listed: bool = False  # the URL is one of a space-separated list (srcset, ping)
    css: bool = False
    text: bool = False  # found by the text check (no entity decoding there)


def form(tag: str, attribute: str, *attrs: tuple[str, str], **kw: object) -> Form:
    return Form(tag, attrs, attribute, **kw)  # type: ignore[arg-type]


U = "{url}"
FORMS = [
    form("script", "src", ("src", U)),
    form("script", "href", ("href", U)),  # svg <script href>
    form("script", "xlink:href", ("xlink:href", U)),
    form("iframe", "src", ("src", U)),
    form("frame", "src", ("src", U)),
    form("iframe", "srcdoc", ("srcdoc", f'<p>hi</p><img src="{U}">')),
    form(
        "iframe", "srcdoc", ("srcdoc", f"<iframe srcdoc='<script src=&quot;{U}&quot;></script>'>")
    ),
    form("img", "src", ("src", U)),
    form("img", "srcset", ("srcset", f"a.png 1x, {U} 2x"), listed=True),
    form("img", "srcset", ("srcset", f"{U}"), listed=True),
    form("img", "data-src", ("src", "blank.gif"), ("data-src", U)),
    form("img", "data-srcset", ("data-srcset", f"{U} 300w, b.png 600w"), listed=True),
    form("img", "data-lazy-src", ("data-lazy-src", U)),
    form("img", "data-lazy-srcset", ("data-lazy-srcset", f"{U} 1x"), listed=True),
    form("img", "data-original", ("data-original", U)),
    form("source", "src", ("src", U)),
    form("source", "srcset", ("srcset", f"{U} 1x"), listed=True),
    form("source", "data-srcset", ("data-srcset", f"{U} 1x"), listed=True),
    form("picture", "data-src", ("data-src", U)),
    form("video", "src", ("src", U)),
    form("video", "poster", ("src", "/movie.mp4"), ("poster", U), action=STRIP),
    form("audio", "src", ("src", U)),
    form("track", "src", ("src", U)),
    form("embed", "src", ("src", U)),
    form("object", "data", ("data", U)),
    form("input", "src", ("type", "image"), ("src", U)),
    form("input", "src", ("type", " IMAGE "), ("src", U)),
    form("image", "href", ("href", U)),  # svg <image>
    form("image", "xlink:href", ("xlink:href", U)),
    form("image", "src", ("src", U)),  # HTML <image> is <img>
    form("feimage", "href", ("href", U)),
    form("a", "ping", ("href", "/article"), ("ping", f"/local {U}"), action=STRIP, listed=True),
    form("area", "ping", ("href", "/"), ("ping", U), action=STRIP, listed=True),
    form("base", "href", ("href", U)),
    form("meta", "content", ("http-equiv", "refresh"), ("content", f"0; url={U}")),
    form("meta", "content", ("http-equiv", "Refresh"), ("content", f"5;URL='{U}'")),
    form("meta", "content", ("http-equiv", "refresh"), ("content", f"0,{U}")),
    form("body", "background", ("background", U), action=STRIP),
    form("td", "background", ("background", U), action=STRIP),
    form("div", "style", ("style", f'background: url("{U}")'), action=STRIP, css=True),
    form("div", "data-src", ("class", "lazy"), ("data-src", U), action=STRIP),
    *[
        form("link", "href", ("rel", rel), ("href", U))
        for rel in [
            "preconnect",
            "dns-prefetch",
            "preload",
            "prefetch",
            "modulepreload",
            "prerender",
            "stylesheet",
            "icon",
            "shortcut icon",
            "apple-touch-icon",
            "alternate stylesheet",
            "PreConnect",
            "manifest",
        ]
    ],
    form(
        "link",
        "imagesrcset",
        ("rel", "preload"),
        ("as", "image"),
        ("imagesrcset", f"{U} 1x"),
        listed=True,
    ),
]


def quoted(name: str, value: str, quote: str) -> str | None:
    """``name=value`` as HTML source with ``quote`` (None when unquoted cannot hold it)."""
    if quote == '"':
        return f'{name}="{value.replace(chr(34), "&quot;")}"'
    if quote == "'":
        return f"{name}='{value.replace(chr(39), '&#39;')}'"
    if any(c in value for c in " \t\n\f\r\"'=<>`") or not value:
        return None
    return f"{name}={value}"


def element_source(f: Form, url: str, quote: str, upper: bool) -> str | None:
    parts = []
    for name, value in f.attrs:
        attr = quoted(name.upper() if upper else name, value.replace(U, url), quote)
        if attr is None:
            return None
        parts.append(attr)
    tag = f.tag.upper() if upper else f.tag
    return f"<{tag} {' '.join(parts)}>" + ("" if f.tag in VOID else f"</{tag}>")


VOID = {"img", "source", "embed", "track", "input", "base", "meta", "link", "area", "frame"}


def verdicts(
    html: str, catalogue: Catalogue, scheme: str, denied: frozenset[str] = DENIED
) -> list[tuple[str, Verdict | None, bytes]]:
    """Each element of ``html`` as the rewriter hands it to a handler: its tag, the
    verdict, and its start tag's raw bytes."""
    seen: list[tuple[str, Verdict | None, bytes]] = []

    def look(el: Element) -> None:
        verdict = decide_element(el.tag, el.get, catalogue, denied, scheme=scheme)
        seen.append((el.tag, verdict, el.start_tag()))

    rw = Rewriter([("*", look)])
    rw.feed(html.encode("utf-8"))
    rw.close()
    return seen


@pytest.mark.parametrize("f", FORMS, ids=lambda f: f"{f.tag}[{','.join(n for n, _ in f.attrs)}]")
def test_every_form_in_every_hostile_variant(f: Form, catalogue: Catalogue) -> None:
    failures = []
    for variant in VARIANTS:
        if (f.listed and variant.spaces) or (f.css and not variant.css):
            continue
        for quote in ('"', "'", ""):
            for upper in (False, True):
                source = element_source(f, variant.url, quote, upper)
                if source is None:
                    continue
                found = [
                    v for tag, v, _ in verdicts(source, catalogue, variant.scheme) if tag == f.tag
                ]
                verdict = found[0] if found else None
                expected = (f.action, f.attribute, TRACKER, "advertising")
                got = (
                    None
                    if verdict is None
                    else (
                        verdict.action,
                        verdict.hits[0].attribute,
                        verdict.hits[0].found,
                        verdict.hits[0].category,
                    )
                )
                if got != expected:
                    failures.append(f"{variant.name}: {source!r} -> {got}")
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("f", FORMS, ids=lambda f: f"{f.tag}[{','.join(n for n, _ in f.attrs)}]")
def test_a_tag_with_a_hit_is_never_missed_by_the_prefilter_and_suspect(
    f: Form, catalogue: Catalogue
) -> None:
    """The contract a streaming scanner relies on: a start tag that contacts a
    catalogued host holds a prefilter hit or a SUSPECT match in its raw bytes."""
    for variant in VARIANTS:
        for quote in ('"', "'", ""):
            source = element_source(f, variant.url, quote, upper=False)
            if source is None:
                continue
            for _, verdict, raw in verdicts(source, catalogue, variant.scheme):
                if verdict is not None:
                    assert catalogue.prefilter.scan(raw) or SUSPECT.search(raw), raw


def test_a_srcdoc_encoded_twice_is_still_suspect(catalogue: Catalogue) -> None:
    html = '<iframe srcdoc="<img src=&quot;https://ad.double&amp;#99;lick.net/x&quot;>"></iframe>'
    [(_, verdict, raw)] = verdicts(html, catalogue, "https")
    assert verdict is not None and verdict.hits[0].found == TRACKER
    assert not catalogue.prefilter.scan(raw) and SUSPECT.search(raw)


@pytest.mark.parametrize(
    ("html", "scheme"),
    [
        ('<a href="https://ad.doubleclick.net/click">an ad link is a navigation</a>', "https"),
        ('<form action="https://ad.doubleclick.net/post"><input name=q></form>', "https"),
        ('<input type="text" src="https://ad.doubleclick.net/x">', "https"),
        ('<link rel="canonical" href="https://ad.doubleclick.net/">', "https"),
        ('<link rel="alternate" type="application/rss+xml" href="//ad.doubleclick.net/">', "https"),
        ('<meta http-equiv="content-type" content="0; url=//ad.doubleclick.net/">', "https"),
        ('<meta name="refresh" content="0; url=//ad.doubleclick.net/">', "https"),
        ('<meta http-equiv="refresh" content="5">', "https"),
        ('<img src="https:ad.doubleclick.net/x.gif">', "https"),  # a path on an https page
        ('<img src="/ad.doubleclick.net/x.gif">', "https"),
        ('<img src="https://notdoubleclick.net/x.gif">', "https"),
        ('<img src="https://doubleclick.net.example/x.gif">', "https"),
        ('<img src="https://example.org/?u=https://ad.doubleclick.net/">', "https"),
        ('<img src="data:image/gif;base64,R0lGOD//ad.doubleclick.net">', "https"),
        ('<img srcset="https://ad.double\tclick.net/x.gif 2x">', "https"),  # two tokens
        ('<img src="https://cdn.example.org/a.png" alt="ad.doubleclick.net">', "https"),
        ('<div data-x="https://ad.doubleclick.net/">data, not a load</div>', "https"),
        ('<video src="/v.mp4" poster="/p.jpg"></video>', "https"),
        ('<iframe srcdoc="<p>ad.doubleclick.network</p>"></iframe>', "https"),
        ('<img src="https://cloudfront.net/x.png">', "https"),  # a CDN, not catalogued
        ('<script src="https://vjs.zencdn.net/8/video.min.js"></script>', "https"),  # carved out
    ],
)
def test_no_contact_no_verdict(html: str, scheme: str, catalogue: Catalogue) -> None:
    assert [v for _, v, _ in verdicts(html, catalogue, scheme) if v is not None] == []


def test_the_visitor_s_granted_categories_pass(catalogue: Catalogue) -> None:
    html = (
        '<img src="//ad.doubleclick.net/x"><iframe src="https://www.youtube.com/embed/x"></iframe>'
    )
    denied_media = verdicts(html, catalogue, "https", frozenset({"media"}))
    assert [(t, v.hits[0].entity if v else None) for t, v, _ in denied_media] == [
        ("img", None),
        ("iframe", "YouTube"),
    ]
    assert all(v is None for _, v, _ in verdicts(html, catalogue, "https", frozenset()))


def test_the_first_denied_load_decides_and_decorations_are_listed(catalogue: Catalogue) -> None:
    get = {
        "src": "https://www.youtube.com/embed/x",
        "style": "background-image:url(//ad.doubleclick.net/p.gif)",
        "ping": "https://www.google-analytics.com/collect",
    }.get
    remove = decide_element("iframe", get, catalogue, DENIED)
    assert remove is not None and remove.action == REMOVE and remove.attributes == ()
    assert remove.hits[0].entity == "YouTube"
    strip = decide_element("iframe", get, catalogue, {"advertising"})
    assert strip is not None and strip.action == STRIP and strip.attributes == ("style",)
    ping = decide_element("a", get, catalogue, {"analytics", "advertising"})
    assert ping is not None and ping.attributes == ("ping", "style")


def test_the_page_s_own_host_is_never_a_third_party(catalogue: Catalogue) -> None:
    get = {"src": "https://www.doubleclick.net/x.gif"}.get
    assert decide_element("img", get, catalogue, DENIED, page_host="doubleclick.net") is None
    assert decide_element("img", get, catalogue, DENIED, page_host="www.example.org") is not None


def test_style_urls_decode_css_escapes(catalogue: Catalogue) -> None:
    for style in [
        'background:url("https://ad.double\\63 lick.net/x")',
        "background:URL( 'https://ad.doubleclick.net/x' )",
        "background:url(https://ad.doubleclick.net/x)",
        'background-image:image-set("//ad.doubleclick.net/x.png" 1x)',
    ]:
        verdict = decide_element("div", {"style": style}.get, catalogue, DENIED)
        assert verdict is not None and verdict.attributes == ("style",), style
    assert (
        decide_element("p", {"style": "font-family: 'ad.doubleclick.net'"}.get, catalogue, DENIED)
        is None
    )


@example("'a url(x) b'")  # a string across a url(): read with one space there
@settings(max_examples=500, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("uUrRlL()\"'\\\n x3a\u0130\uf101")), max_size=40))
def test_css_readings_find_what_the_patterns_find_everywhere(text: str) -> None:
    """The CSS readings jump between the places a url() or a string can begin
    (``contacts._finditer``): the same matches as the patterns tried everywhere,
    in any letter case, with escapes, and where lowering moves offsets (U+0130)."""
    for pattern, starts in [
        (contacts._CSS_TOKEN, ('"', "'", "url(")),
        (contacts._CSS_URL, ("url(",)),
        (contacts._CSS_STRING, ('"', "'")),
    ]:
        spans = [m.span() for m in contacts._finditer(pattern, text, starts, jump_from=0)]
        assert spans == [m.span() for m in pattern.finditer(text)]
    long = "p{background:url(/a.png)}" * 20 + text  # long enough to be read by jumps
    decoded = contacts._CSS_ESCAPE.sub(contacts._css_unescape, long)
    urls = [
        next(g for g in m.groups() if g is not None) for m in contacts._CSS_URL.finditer(decoded)
    ]
    rest = contacts._CSS_URL.sub(" ", decoded)
    urls += [
        m.group(1) if m.group(1) is not None else m.group(2)
        for m in contacts._CSS_STRING.finditer(rest)
    ]
    assert list(contacts.style_urls(long)) == urls


@pytest.mark.parametrize(
    ("content", "url"),
    [
        ("0; url=https://t.example/", "https://t.example/"),
        ("0;URL='https://t.example/'", "https://t.example/"),
        ('  3 , url = "//t.example/x" ', "//t.example/x"),
        ("0 https://t.example/", "https://t.example/"),
        (".5; https://t.example/", "https://t.example/"),
        ("0; urlx=//t.example/", "urlx=//t.example/"),
        ("0;url='//t.example/x'rest", "//t.example/x"),
        ("5", None),
        ("x; url=//t.example/", None),
        ("0x; url=//t.example/", None),
        ("", None),
    ],
)
def test_refresh_urls_as_the_html_standard_reads_them(content: str, url: str | None) -> None:
    assert refresh_url(content) == url


# -- the text check -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "entity", "category"),
    [
        # Google Publisher Tag's loader builds its script element at run time.
        (
            "var gads = document.createElement('script'); gads.async = true;"
            "gads.src = (useSSL ? 'https:' : 'http:') + '//www.googletagservices.com/tag/js/gpt.js';",
            "Google/Doubleclick Ads",
            "advertising",
        ),
        (
            "googletag.cmd.push(function() { googletag.display('div-1'); });",
            "Google Publisher Tag",
            "advertising",
        ),
        (
            "window.dataLayer = window.dataLayer || []; gtag('config', 'G-XXXX');",
            "Google tag",
            "analytics",
        ),
        (
            "var _gaq = _gaq || []; _gaq.push(['_setAccount', 'UA-1-1']);",
            "Google Analytics",
            "analytics",
        ),
        (
            "ga('create', 'UA-1-1', 'auto'); ga('send', 'pageview');",
            "Google Analytics",
            "analytics",
        ),
        (
            "(function(){ ga.src = 'https://ssl' + '.google-analytics.com/ga.js'; })()",
            "Google Analytics",
            "analytics",
        ),
        ("fbq('init', '123'); fbq('track', 'PageView');", "Facebook Pixel", "advertising"),
        (
            "window._taboola = window._taboola || []; _taboola.push({article:'auto'});",
            "Taboola",
            "advertising",
        ),
        (
            "window.criteo_q = window.criteo_q || []; criteo_q.push({event: 'viewHome'});",
            "Criteo",
            "advertising",
        ),
        (
            "var OB_ADV_ID = 1; _window.obApi = function() {}; obApi('track', 'PAGE_VIEW');",
            "Outbrain",
            "advertising",
        ),
        (
            '<img src="https://secure.adnxs.com/seg?add=1" width=1 height=1>',
            "AppNexus",
            "advertising",
        ),
        ("s.src='//widgets.outbrain.com/outbrain.js'", "Outbrain", "advertising"),
        ("load('//CDN.TABOOLA.COM/libtrc/site/loader.js')", "Taboola", "advertising"),
        ("var u = 'https://www.youtube.com/iframe_api';", "YouTube", "media"),
        ("var m = 'https://www.google.com/maps/embed?pb=1';", "Google Maps", "media"),
    ],
)
def test_scripts_naming_a_catalogued_host_or_a_loader(
    text: str, entity: str, category: str, catalogue: Catalogue
) -> None:
    hit = decide_text(text, catalogue, DENIED)
    assert hit is not None and (hit.entity, hit.category) == (entity, category)
    assert decide_text(text, catalogue, DENIED - {category}) is None


@pytest.mark.parametrize(
    "text",
    [
        "function omega(a){return a} omega(1); mega('create'); yoga('send')",
        "var notdoubleclick = 'notdoubleclick.net'; x = 'doubleclick.network';",
        "my_gaq = 1; x_fbq(1); gtagx(2); googletag_cmd = 3",
        "var u = 'https://www.google.com/search?q=maps';",
        "window.dataLayer = window.dataLayer || [];",
        # Host names that are not URLs (site code testing its referrer): they load nothing.
        'if (document.referrer.match("facebook.com")) { ref = "facebook"; }',
        "var share = {network: 'twitter.com', via: \"/t.co/\"};",
        "",
    ],
)
def test_scripts_that_only_look_alike(text: str, catalogue: Catalogue) -> None:
    assert list(text_hits(text, catalogue)) == []


@pytest.mark.parametrize(
    "text",
    [
        "u = '//connect.facebook.net';",
        "u = 'https:\\/\\/connect.facebook.net';",  # JSON-escaped slashes
        "u = 'connect.facebook.net/en_US/sdk.js';",
        "u = 'https://ssl' + '.connect.facebook.net/x.js';",
    ],
)
def test_a_host_in_a_script_counts_as_a_url(text: str, catalogue: Catalogue) -> None:
    """After "//" or followed by a path: a URL the script may load."""
    assert [h.found for h in text_hits(text, catalogue)] == ["connect.facebook.net"]


def test_text_hits_are_listed_once_each(catalogue: Catalogue) -> None:
    text = "fbq('init'); fbq('track'); x='//connect.facebook.net/a'; y='//connect.facebook.net/b'"
    assert [(h.found, h.signature) for h in text_hits(text, catalogue)] == [
        ("fbq(", True),
        ("connect.facebook.net", False),
    ]


@pytest.mark.parametrize(
    ("attrs", "runs"),
    [
        ({}, True),
        ({"type": ""}, True),
        ({"type": "text/javascript"}, True),
        ({"type": " Text/JavaScript "}, True),
        ({"type": "application/x-javascript"}, True),
        ({"type": "module"}, True),
        ({"type": "speculationrules"}, True),
        ({"language": "JavaScript"}, True),
        ({"language": ""}, True),
        ({"type": "", "language": "vbscript"}, True),
        ({"language": "vbscript"}, False),
        ({"type": "application/ld+json"}, False),
        ({"type": "text/plain"}, False),
        ({"type": "text/x-template"}, False),
        ({"type": "text/javascript; charset=utf-8"}, False),
    ],
)
def test_the_text_check_is_for_scripts_that_run(attrs: dict[str, str], runs: bool) -> None:
    assert script_runs(attrs.get) is runs


@settings(max_examples=300, deadline=None)
@given(
    tag=st.sampled_from(["img", "a", "meta", "link", "iframe", "div", "input", "video", "x-y"]),
    values=st.dictionaries(
        st.sampled_from(
            [
                "src",
                "srcset",
                "ping",
                "content",
                "http-equiv",
                "rel",
                "srcdoc",
                "style",
                "type",
                "data-src",
            ]
        ),
        st.text(
            alphabet=st.sampled_from(list("ad.oubleclick/\\:;,= \t\n'\"<>&#%()url-1x\u3002\u00ad")),
            max_size=60,
        ),
    ),
)
def test_any_attribute_values_give_a_verdict_or_none_never_an_error(
    tag: str, values: dict[str, str], catalogue: Catalogue
) -> None:
    verdict = decide_element(tag, values.get, catalogue, DENIED, scheme="https")
    assert verdict is None or verdict.hits
    for value in values.values():
        list(text_hits(value, catalogue))
