"""Known answers the rewriter and the loaded rules must give before a rule set serves.

A rewriter that silently changes nothing lets every tracker through: CPython 3.11.0 to
3.11.4 (Debian 12's python3) matched the tokenizer's patterns wrongly (gh-106052), and
pages came out untouched without a word. So ``serve``, ``demo`` and ``rewrite`` run
``verify`` at start-up (exit 2 when it fails) and the rules watcher runs it before a
reloaded set takes over (refused when it fails: the last good set keeps serving).

Two parts, a few milliseconds once the process is warm:

- a fixed page through the consent rewrite exactly as the proxy runs it, with the
  generated patterns: a tracker script, iframe, img and inline snippet must go (the
  iframe behind a placeholder), the banner must appear, the rest must stay;
- every ``[[example]]`` of the enabled rules (what ``consent-proxy check`` runs), with
  the rewriter examining every element (``examine_all``): the same answers, without
  compiling patterns per rule, which takes seconds per worker.
"""

from __future__ import annotations

import platform
from collections.abc import Callable
from dataclasses import dataclass

from proxy.consent.enforce import page_for
from proxy.consent.examples import run_example
from proxy.consent.model import ConsentPolicy, read_consent
from proxy.consent.plans import compile_plan
from proxy.consent.reload import Refused
from proxy.consent.returning import anchor_id
from proxy.consent.rules import Example, Rule, RuleSet, parse_rule
from proxy.ui.furniture import PageFurniture
from proxy.ui.templates import Templates


class SelfTestError(Refused):
    """A known answer did not come out; ``str()`` names the case and what was expected."""

    def __init__(self, case: str, problem: str) -> None:
        self.case, self.problem = case, problem
        super().__init__(f"self-test failed: {case}: {problem}")


# The fixed case's own rules (the operator's may name other vendors). Each block makes
# the tokenizer generate a different pattern: hosts in script, img and iframe URLs,
# snippets in script text.
_TRACKER_RULE = """
name = "Self-test tracker"
category = "analytics"
[[block]]
selector = "script[src], img"
hosts = ["tracker-selftest.example"]
[[block]]
selector = "script"
contains = ["trackerSelftest("]
"""
_WIDGET_RULE = """
name = "Self-test widget"
category = "social"
[[block]]
selector = "iframe"
hosts = ["tracker-selftest.example"]
action = "placeholder"
"""

# Tokenizer work on the way: a raw-text title holding '<', a style, a comment that holds
# a tracker tag (which must stay), attributes quoted three ways, a character reference.
_PAGE = b"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>a < b</title>
<style>p > a { color: #333 }</style>
<script async type="text/javascript" src="https://cdn.tracker-selftest.example/t.js"></script>
<script src="/app.js" defer></script>
</head><body><!-- <img src="https://px.tracker-selftest.example/in-comment.gif"> -->
<p class="intro" data-x='1' hidden=no>Kept &amp; shown</p>
<iframe width="300" title="widget" src="https://widgets.tracker-selftest.example/w"></iframe>
<img alt="" src="https://px.tracker-selftest.example/p.gif?e=1&amp;r=2" width=1 height=1>
<img src="/logo.png" alt="logo">
<script>window.q = []; trackerSelftest('init');</script>
<script>var app = 1;</script>
</body></html>
"""

_KEPT = (
    b"<title>a < b</title>",
    b"<style>p > a { color: #333 }</style>",
    b'<script src="/app.js" defer></script>',
    b'<!-- <img src="https://px.tracker-selftest.example/in-comment.gif"> -->',
    b"<p class=\"intro\" data-x='1' hidden=no>Kept &amp; shown</p>",
    b'<img src="/logo.png" alt="logo">',
    b"<script>var app = 1;</script>",
)


@dataclass(frozen=True)
class Expectation:
    """One thing the rewritten page must show, and how a failure reads."""

    what: str
    holds: Callable[[bytes], bool]


@dataclass(frozen=True)
class RewriterCase:
    """A page rewritten for a visitor who has not decided, and what must come out."""

    name: str
    page: bytes
    rules: RuleSet
    expectations: tuple[Expectation, ...]


def tracker_page(templates: Templates) -> RewriterCase:
    """The fixed case: every kind of element the rules block, on one page."""
    tracker = parse_rule("selftest-tracker", _TRACKER_RULE, "<self-test>")
    widget = parse_rule("selftest-widget", _WIDGET_RULE, "<self-test>")
    # The page's first placeholder of its category, on the page at "/".
    furniture = PageFurniture(templates)
    anchor = anchor_id(widget.category, 1)
    # An iframe: the embed placeholder, sized by the iframe's width attribute.
    placeholder = furniture.embed_placeholder(widget, anchor, "/", "width:300px").encode()
    banner = furniture.banner_html("/").encode()

    def gone(marker: bytes) -> Callable[[bytes], bool]:
        return lambda out: marker not in out

    def kept(marker: bytes) -> Callable[[bytes], bool]:
        return lambda out: marker in out

    expectations = (
        Expectation("the tracker <script src> removed", gone(b"/t.js")),
        Expectation("the tracker <img> removed", gone(b"/p.gif")),
        Expectation("the inline tracker snippet removed", gone(b"trackerSelftest('init')")),
        Expectation("the tracker <iframe> removed", gone(b"widgets.tracker-selftest")),
        Expectation("a placeholder where the <iframe> was", kept(placeholder)),
        Expectation("the consent banner shown", kept(banner)),
        *(Expectation(f"{part.decode()!r} kept as it was", kept(part)) for part in _KEPT),
    )
    rules = RuleSet((tracker, widget), "self-test")
    return RewriterCase("tracker page", _PAGE, rules, expectations)


def check_rewriter(case: RewriterCase, templates: Templates) -> None:
    """``case`` through the consent rewrite, whole and in small chunks (SelfTestError)."""
    consent = read_consent({}, ConsentPolicy())  # undecided, nothing granted
    plan = compile_plan(case.rules, consent)
    furniture = PageFurniture(templates)
    outputs = []
    for size in (len(case.page), 61):  # 61: chunks end inside tags, values and text
        rewrite = page_for(plan, consent, "/", furniture)
        out = b"".join(
            rewrite.feed(case.page[i : i + size]) for i in range(0, len(case.page), size)
        )
        outputs.append(out + rewrite.close())
    python = f"Python {platform.python_version()}"
    for out in outputs:
        for expected in case.expectations:
            if not expected.holds(out):
                raise SelfTestError(
                    f"rewriter case {case.name!r}",
                    f"expected {expected.what}, but it was not ({python}; the rewriter does "
                    f"not work on this interpreter or installation)",
                )
    if outputs[0] != outputs[1]:
        raise SelfTestError(
            f"rewriter case {case.name!r}",
            f"expected the same page whole and in chunks, but they differ ({python})",
        )


def check_examples(ruleset: RuleSet, policy: ConsentPolicy) -> None:
    """Every example of the enabled rules gives its expected page (SelfTestError)."""
    for rule in ruleset.active:
        for example in rule.examples:
            outcome = run_example(rule, example, policy, examine_all=True)
            if not outcome.passed:
                raise SelfTestError(_where(rule, example.line), _mismatch(outcome.got, example))


def _where(rule: Rule, line: int | None) -> str:
    return f"{rule.file}:{line} [[example]]" if line else f"{rule.file} [[example]]"


def _mismatch(got: str, example: Example) -> str:
    return f"expected {example.expected!r} but got {got!r}"


def verify(ruleset: RuleSet, policy: ConsentPolicy, templates: Templates) -> None:
    """The whole self-test: the fixed rewriter case, then the rules' examples."""
    check_rewriter(tracker_page(templates), templates)
    check_examples(ruleset, policy)
