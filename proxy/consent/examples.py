"""``consent-proxy check`` and ``rewrite``: run rule examples and rewrite pages offline."""

from __future__ import annotations

import re
from dataclasses import dataclass

from proxy.consent.enforce import ConsentRewrite, compile_plan
from proxy.consent.model import ConsentPolicy, parse_consent_arg
from proxy.consent.rules import Example, Rule, RuleSet

_PLACEHOLDER = re.compile(
    r'(?:<style[^>]*>[^<]*</style>)?<span class="cp-ph"[^>]*data-consent-placeholder="([^"]+)">'
    r".*?</button></span>",
    re.DOTALL,
)
_FORM = re.compile(r'<form id="cp-grant-[^"]*"[^>]*>.*?</form>', re.DOTALL)


def collapse_placeholders(html: str) -> str:
    """Placeholder markup shortened to ``[placeholder:<rule id>]`` and the forms they
    post dropped, as rule examples write them."""
    return _FORM.sub("", _PLACEHOLDER.sub(lambda m: f"[placeholder:{m.group(1)}]", html))


@dataclass(frozen=True)
class Outcome:
    rule: Rule
    example: Example
    got: str

    @property
    def passed(self) -> bool:
        return self.got == self.example.expected

    def message(self) -> str:
        where = f"{self.rule.file}:{self.example.line}" if self.example.line else self.rule.file
        return f"{where}: example: expected {self.example.expected!r}\n  but got {self.got!r}"


def run_example(
    rule: Rule, example: Example, policy: ConsentPolicy, examine_all: bool = False
) -> Outcome:
    """The example's html through this rule alone, under the example's consent
    (``examine_all``: see Rewriter; the same answer, nothing compiled for the rule)."""
    consent = parse_consent_arg(example.consent, policy)
    plan = compile_plan(RuleSet((rule,), "example"), consent)
    rewrite = ConsentRewrite(plan, "/", debug_headers=False, examine_all=examine_all)
    out = rewrite.feed(example.html.encode()) + rewrite.close()
    return Outcome(rule, example, collapse_placeholders(out.decode()))


def run_examples(ruleset: RuleSet, policy: ConsentPolicy) -> list[Outcome]:
    return [run_example(rule, ex, policy) for rule in ruleset.rules for ex in rule.examples]
