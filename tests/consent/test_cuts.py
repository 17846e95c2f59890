"""Inline scripts that mix site code with a tracker's loader: the statements jsparts.py
finds, what cuts.py keeps of a script and what it hands the absorbing stand-in, and
what a refusing visitor's page gets through the page rewrite (rules and catalogue)."""

from __future__ import annotations

import re

import pytest

from proxy.consent import cuts, jsparts
from proxy.consent.cuts import MAX_SPLIT, cut, stand_in_names
from proxy.consent.enforce import EnforcedPage, page_for
from proxy.consent.jsparts import TextMemo, statements
from proxy.consent.model import ConsentPolicy, parse_consent_arg
from proxy.consent.plans import compile_plan
from proxy.consent.rules import RuleSet, load_rules
from proxy.ui import surrogates
from proxy.ui.furniture import PageFurniture
from proxy.ui.templates import Templates
from tests.support import ROOT

RULES = load_rules(ROOT / "rules")
TRACKERS = ("google-analytics.com", "_gaq.push", "krxd.net", "gtag('config', 'G-")


def blocked(text: str) -> bool:
    return any(t in text for t in TRACKERS)


def split(text: str) -> list[str] | None:
    found = statements(text)
    return None if found is None else [text[s.start : s.end] for s in found]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a(); b()", ["a();", "b()"]),
        # A line break ends a statement before a name, not before "(", "[", "+" or "/".
        (
            "a = 1\nb()\nc\n(d)\ne\n[0]\nf\n/ 2 /g",
            ["a = 1", "b()", "c\n(d)", "e\n[0]", "f\n/ 2 /g"],
        ),
        ("if (a) b(); else c(); d()", ["if (a) b(); else c();", "d()"]),
        ("if (a) {b()} else {c()} d()", ["if (a) {b()} else {c()}", "d()"]),
        ("if (a)\nb()\nc()", ["if (a)\nb()", "c()"]),
        ("do {a()} while (b); c()", ["do {a()} while (b);", "c()"]),
        # Not told apart (no harm: a part may hold several statements).
        ("do a(); while (b)\nc()", ["do a(); while (b)\nc()"]),
        ("try {a()} catch (e) {} finally {} b()", ["try {a()} catch (e) {} finally {}", "b()"]),
        (
            "function f() {}\nvar x = function () {}\n(g)",
            ["function f() {}", "var x = function () {}\n(g)"],
        ),
        ("!function () {}(); x = 1", ["!function () {}();", "x = 1"]),
        ("var s = `a${ {b: 1}.b }c;${`d;`}`; t()", ["var s = `a${ {b: 1}.b }c;${`d;`}`;", "t()"]),
        ("x = a / b / c; y = /;[}]/g.test(z)", ["x = a / b / c;", "y = /;[}]/g.test(z)"]),
        (
            "for (;;) {a()} class A { #p = 1; m() { return -this.#p } }",
            ["for (;;) {a()}", "class A { #p = 1; m() { return -this.#p } }"],
        ),
        ("x = 'a;\\'}'; /* ; } */ y = \"//\" // ;\nz", ["x = 'a;\\'}';", 'y = "//"', "z"]),
        ("var a\n= 1\nb()", ["var a\n= 1", "b()"]),
        ("return\n", ["return"]),
        ("", []),
    ],
)
def test_statements(text: str, expected: list[str]) -> None:
    assert split(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "x = 'open",
        "x = `open ${a}",
        "/* open",
        "x = (1",
        "x = [1)",
        "x = 1 }",
        "<!-- hidden\nx()",
        "x()\n--> hidden",
        "\\u0061 = 1",
        "x = /open",
        "x = @y",
        # What a browser would refuse to run (text escaped twice: & amp; for &&): no
        # part of such a script may be made to run.
        "a(); & amp; b()",
        "if (a & amp; & amp; b) c()",
        "for (i = 0; i & lt; n; i++) f()",
        "x = [1; 2]",
        "f({ & x })",
        "& y",
    ],
)
def test_statements_refuse_what_they_are_unsure_of(text: str) -> None:
    assert statements(text) is None


MEDIUM = (
    "if (window.top !== window.self) window.top.location = window.self.location.href;"
    "var OB_startTime = new Date().getTime(); function _onerror(e) { OB_loadErrors.push(e) };"
    ' function _asyncScript(u) {var s = document.createElement("script"); s.src = u;'
    " document.head.appendChild(s);}function _asyncStyles(u) {var s ="
    ' document.createElement("link"); s.rel = "stylesheet"; s.href = u;'
    " document.head.appendChild(s); return s}var _gaq = _gaq || [];"
    ' _gaq.push(["_setAccount", "UA-1-2"]); _gaq.push(["_trackPageview"]);'
    ' _asyncScript(("https:" == document.location.protocol ? "https://ssl" : "http://www")'
    ' + ".google-analytics.com/ga.js");(new Image()).src = "/_/stat?event=pixel.load";'
)
KRUX = """
window.Krux || ((Krux = function() { Krux.q.push(arguments) }).q = []);
(function() {
  var k = document.createElement('script'); k.async = true;
  k.src = 'https://cdn.krxd.net/controltag/HrUwtkcl.js';
  var s = document.getElementsByTagName('script')[0]; s.parentNode.insertBefore(k, s);
})();
"""


def test_a_site_bootstrap_keeps_its_functions_and_loses_the_loader_and_queue() -> None:
    done = cut(MEDIUM, blocked)
    assert done is not None
    parts = split(done.text) or []
    assert [p.rstrip(";") for p in parts if p != ";"] == [
        "if (window.top !== window.self) window.top.location = window.self.location.href",
        "var OB_startTime = new Date().getTime()",
        "function _onerror(e) { OB_loadErrors.push(e) }",
        'function _asyncScript(u) {var s = document.createElement("script"); s.src = u;'
        " document.head.appendChild(s);}",
        'function _asyncStyles(u) {var s = document.createElement("link"); s.rel = "stylesheet";'
        " s.href = u; document.head.appendChild(s); return s}",
        '(new Image()).src = "/_/stat?event=pixel.load"',
    ]
    assert done.removed == 4 and done.names == ()  # the queue, two pushes, the loader
    assert not blocked(done.text)


def test_a_queue_loader_goes_whole_and_names_its_function() -> None:
    assert cut(KRUX, blocked) is None
    assert stand_in_names(KRUX) == ("Krux",)


def test_a_script_too_long_to_split_is_named_by_the_patterns_alone() -> None:
    """Past MAX_SPLIT a script is not tokenized (seconds of Python for a bundle):
    window.NAME = function and the queue stub idiom still name its functions, a bare
    NAME = function (whose brace depth needs the tokens) does not."""
    filler = "var a = {b: 1};\n" * (MAX_SPLIT // 16 + 1)
    text = f"window.track = function(){{}}; q.push = q.push || function(){{}};{filler}f = function(){{}}"
    assert len(text) > MAX_SPLIT
    assert stand_in_names(text) == ("track", "push")
    short = text.replace(filler, "var a = {b: 1};\n")
    assert stand_in_names(short) == ("track", "push", "f")


@pytest.mark.parametrize(
    ("text", "why"),
    [
        (
            "window.dataLayer = window.dataLayer || []; function gtag(){dataLayer.push(arguments);}"
            " gtag('js', new Date()); gtag('config', 'G-1');",
            "a queue, its stub and their calls",
        ),
        (
            "(function(i,s,o,g,r){i[r]=i[r]||function(){(i[r].q=i[r].q||[]).push(arguments)};"
            "})(window,document,'script','https://www.google-analytics.com/analytics.js','__ga');"
            "__ga('create', 'UA-1-1', 'auto'); __ga('send', 'pageview');",
            "calls of the name the snippet gives as a string",
        ),
        (
            "var tracker_id = 7, tracker_on = true; load('//www.google-analytics.com/ga.js');",
            "only the tracker's settings would be left",
        ),
        (
            "f(); load('//www.google-analytics.com/ga.js') // see google-analytics.com/ga.js",
            "what is left still names the tracker",
        ),
        (
            "site(); var ga = load('//www.google-analytics.com/ga.js'); ga.ready(site)",
            "what is left uses what was cut",
        ),
        ("site(); load('//www.google-analytics.com/ga.js'); x = 'open", "cannot be read"),
    ],
)
def test_scripts_that_go_whole(text: str, why: str) -> None:
    done = cut(text, blocked)
    if why == "what is left uses what was cut":
        assert done is not None and done.text.replace(";\n", "").strip() == "site();", why
    else:
        assert done is None, why


def test_functions_the_cut_part_defined_go_to_the_stand_in() -> None:
    text = (
        "function site() {} function track() { _gaq.push(['_trackEvent']) }"
        " window.hj = window.hj || function () { (hj.q = hj.q || []).push(arguments) };"
        " (function () { var local = function () {}; load('//www.google-analytics.com/ga.js') })();"
        " gtag = function () {}; site();"
    )
    done = cut(text, blocked)
    assert done is not None
    assert done.names == ("track", "hj")  # not the IIFE's own variable, nor gtag (a surrogate's)
    assert "function site() {}" in done.text and "site();" in done.text


# -- through the page rewrite -----------------------------------------------------------


def rewrite(html: str, consent: str = "none", *, xml: bool = False) -> tuple[str, dict[str, int]]:
    furniture = PageFurniture(Templates(), banner=False)
    parsed = parse_consent_arg(consent, ConsentPolicy())
    plan = compile_plan(RULES, parsed, surrogates=furniture.surrogates)
    page = page_for(plan, parsed, "/", furniture)
    page.set_format("utf-8", xml)
    out = (page.feed(html.encode()) + page.close()).decode()
    return out, {f"{r}={a}": n for (r, a), n in page.counts.items()}


SCRIPTS = re.compile(r"<script([^>]*)>(.*?)</script>", re.S)


def test_a_rule_cuts_the_script_and_puts_its_surrogate_before_it() -> None:
    out, counts = rewrite(f"<p>a</p><script>{MEDIUM}</script><p>b</p>")
    (ga, kept) = SCRIPTS.findall(out)
    assert ga == (' data-consent-surrogate="ga"', surrogates.load("ga").text)
    assert kept[0] == "" and "function _asyncStyles(u)" in kept[1]
    assert "google-analytics" not in kept[1] and "_gaq" not in kept[1]
    assert counts == {"google-analytics=cut": 1, "google-analytics=surrogate": 1}
    assert out.startswith("<p>a</p>") and out.endswith("</script><p>b</p>")


def test_the_catalogue_removes_a_queue_loader_and_puts_the_stand_in_in_its_place() -> None:
    out, counts = rewrite(f'<script class="kxct">{KRUX}</script><script>Krux("page")</script>')
    assert SCRIPTS.findall(out) == [
        (' data-consent-surrogate="absorb" data-names="Krux"', surrogates.absorbing().text),
        ("", 'Krux("page")'),
    ]
    assert counts == {"catalogue=remove": 1, "catalogue=surrogate": 1}


def test_granted_pages_and_xhtml_are_not_cut() -> None:
    page = f"<script>{MEDIUM}</script>"
    assert rewrite(page, "all")[0] == page
    out, counts = rewrite(page, xml=True)
    assert "function _asyncStyles" not in out and counts["google-analytics=remove"] == 1


def test_without_surrogate_texts_scripts_are_still_cut_but_get_no_stand_in() -> None:
    parsed = parse_consent_arg("none", ConsentPolicy())
    plan = compile_plan(RULES, parsed)  # as `consent-proxy check` runs the examples
    assert plan.absorbing == "" and plan.surrogates == {}
    page = page_for(plan, parsed, "/", PageFurniture(Templates(), banner=False))
    out = page.feed(f"<script>{MEDIUM}</script><script>{KRUX}</script>".encode()) + page.close()
    assert b"data-consent-surrogate" not in out and b"_asyncStyles" in out
    assert b"Krux" not in out


def test_a_restricting_policy_gets_the_stand_in_hash() -> None:
    furniture = PageFurniture(Templates(), banner=False)
    parsed = parse_consent_arg("none", ConsentPolicy())
    plan = compile_plan(RULES, parsed, surrogates=furniture.surrogates)
    page = page_for(plan, parsed, "/", furniture)
    assert isinstance(page, EnforcedPage)
    policy = page.make_room("script-src 'self'")
    assert surrogates.absorbing().csp_source in policy
    plain = compile_plan(RuleSet((), "none"), parsed, surrogates=furniture.surrogates)
    assert plain.absorbing == ""  # a plan that removes nothing adds nothing


def test_the_surrogate_globals_list_covers_every_name_a_rule_surrogate_defines() -> None:
    """The absorbing stand-in never takes a name a shipped surrogate defines: those
    names are listed in cuts.SURROGATE_GLOBALS (a stand-in there would hide the real
    no-op API with its callbacks)."""
    for name in surrogates.available():
        text = surrogates.load(name).text
        assigned = set(re.findall(r"\bw\.([A-Za-z_$][\w$]*)\s*=(?!=)", text))
        assigned |= set(re.findall(r"\bw\[\s*\"([A-Za-z_$][\w$]*)\"\s*\]\s*=(?!=)", text))
        assert assigned <= cuts.SURROGATE_GLOBALS, (name, assigned - cuts.SURROGATE_GLOBALS)


@pytest.mark.parametrize(
    ("policy", "nonce", "cut_it"),
    [
        ("script-src 'self' 'unsafe-inline'", "", True),
        ("default-src 'self'; script-src 'nonce-abc'", ' nonce="abc"', True),
        ("script-src 'sha256-AAAA' 'nonce-abc'", ' nonce="abc"', True),
        # Let in by its hash: a cut text has another hash, so the script goes whole.
        ("script-src 'self' 'sha256-AAAA'", "", False),
        ("default-src 'self' 'sha384-AAAA'", "", False),
    ],
)
def test_a_script_a_policy_lets_in_by_its_hash_is_not_cut(
    policy: str, nonce: str, cut_it: bool
) -> None:
    furniture = PageFurniture(Templates(), banner=False)
    parsed = parse_consent_arg("none", ConsentPolicy())
    plan = compile_plan(RULES, parsed, surrogates=furniture.surrogates)
    for header in (True, False):
        page = page_for(plan, parsed, "/", furniture)
        assert isinstance(page, EnforcedPage)
        meta = f'<meta http-equiv="Content-Security-Policy" content="{policy}">'
        page.begin([policy] if header else [])
        html = ("" if header else meta) + f"<script{nonce}>{MEDIUM}</script>"
        out = (page.feed(html.encode()) + page.close()).decode()
        assert ("function _asyncStyles" in out) is cut_it, (policy, header)
        assert "google-analytics.com" not in out


def test_text_memo_is_bounded_by_the_text_it_holds() -> None:
    """Scripts split once per text (a site repeats its scripts on every page); the
    memo keeps at most its budget of text, none over an eighth of it."""
    made: list[str] = []

    def make(text: str) -> int:
        made.append(text)
        return len(text)

    memo: TextMemo[int] = TextMemo(80)
    assert memo.get("a" * 10, make) == 10 and memo.get("a" * 10, make) == 10
    assert made == ["a" * 10]  # the second answer was remembered
    memo.get("b" * 11, make), memo.get("b" * 11, make)
    assert made[-2:] == ["b" * 11] * 2  # over an eighth: not kept
    for i in range(9):  # 9 texts of 10 characters: the memo starts over once
        memo.get(str(i) * 10, make)
    memo.get("a" * 10, make)
    assert made[-1] == "a" * 10  # forgotten when the memo was full


def test_every_character_skipping_can_begin_with_is_a_skip_start() -> None:
    """The tokenizer reads white space and comments only where one of SKIP_STARTS
    stands: no character outside it begins a skip (the fast path misses nothing)."""
    for code in range(0x10000):
        c = chr(code)
        if c not in jsparts.SKIP_STARTS:
            assert jsparts._SKIP.match(c + "/ ").end() == 0, hex(code)  # type: ignore[union-attr]
    found = jsparts.tokens("a\u2003/* c */\u3000b\u2028// d\nc")
    assert [(t.text, t.newline) for t in found or []] == [("a", False), ("b", False), ("c", True)]
