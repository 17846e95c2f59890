"""Rule examples: each ``[[example]]`` of a rule file run through that rule alone.

An example gives a fragment of HTML, a consent and the expected output, in which a
held element reads ``[placeholder:<rule id>]``: the examples check what a rule does,
not how the visitor-facing layer draws it (``consent-proxy check`` runs them, see
offline.py).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

from proxy.consent.enforce import page_for
from proxy.consent.model import ChangeAt, ConsentPolicy, parse_consent_arg
from proxy.consent.plans import compile_plan
from proxy.consent.rules import Example, Rule, RuleSet


class Markers:
    """Furniture that writes a held element as ``[placeholder:<rule id>]`` and adds
    nothing else (no banner, no surrogates, no styles, no forms, policies left as they
    are)."""

    banner = False
    surrogates: Mapping[str, str] = MappingProxyType({})

    def banner_html(self, path: str) -> str:
        return ""

    def placeholder(
        self, rule: Rule, anchor: str, path: str, size: str = "", change: ChangeAt | None = None
    ) -> str:
        return f"[placeholder:{rule.id}]"

    def embed_placeholder(
        self, rule: Rule, anchor: str, path: str, size: str, change: ChangeAt | None = None
    ) -> str:
        return f"[placeholder:{rule.id}]"

    def once_form(self) -> str:
        return ""

    def placeholder_style(self) -> str:
        return ""

    def grant_form(self, category: str) -> str:
        return ""

    def make_room(self, policy: str, styles: Sequence[str], scripts: Sequence[str]) -> str:
        return policy

    def script_nonce(self, policies: Sequence[str]) -> str | None:
        return None

    def allows_nonce(self, policy: str, nonce: str) -> bool:
        return True


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
    (``examine_all``: see Rewriter; the same answer, nothing compiled for the rule); a
    rule that is off runs as if on (its examples say what it does when it is on)."""
    consent = parse_consent_arg(example.consent, policy)
    plan = compile_plan(RuleSet((dataclasses.replace(rule, enabled=True),), "example"), consent)
    page = page_for(plan, consent, "/", Markers(), examine_all=examine_all)
    out = page.feed(example.html.encode()) + page.close()
    return Outcome(rule, example, out.decode())


def run_examples(ruleset: RuleSet, policy: ConsentPolicy) -> list[Outcome]:
    return [run_example(rule, ex, policy) for rule in ruleset.rules for ex in rule.examples]
