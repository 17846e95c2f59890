"""Rules of different categories that claim the same elements (``consent-proxy check``).

An element is taken while any enabled rule that claims it has its category denied.
So when two rules of different categories can take the same element, it reaches
only a visitor who granted both: an analytics rule that lists facebook.com keeps the
Facebook Pixel image from a visitor who granted advertising (the Pixel's category)
but not analytics. Each host and each inline signature should belong to one category.

Two ``[[block]]`` entries of enabled rules in different categories overlap when

- host: a host of one is a host of the other, or a subdomain of it (hosts match
  subdomains), or
- text: a ``contains`` string of one includes one of the other's (a script holding
  the longer string holds the shorter),

and their selectors can pick the same element. Selectors are told apart by what they
say: different element types, a test and its ``:not()``, or different values for the
same URL attribute (``script[src*='fbevents.js']`` and ``script[src*='/sdk.js']``,
neither value inside the other: the rule author's distinction is taken at its word).
Blocks with neither hosts nor text (``div.fb-like``) are not compared.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from proxy.consent.rules import Block, Rule, RuleSet
from proxy.html.selectors import Compound, Condition, parse_selector

_VALUE_OPS = ("=", "^=", "$=", "*=")


@dataclass(frozen=True)
class Claim:
    """One rule's ``[[block]]`` entry, by its place in the rule file."""

    rule: Rule
    index: int
    block: Block

    def where(self) -> str:
        return f"{self.rule.file} block[{self.index}] ({self.block.selector!r})"


@dataclass(frozen=True)
class Overlap:
    """Two rules of different categories that can take the same element."""

    first: Claim
    second: Claim
    kind: str  # "host" | "text"
    what: str  # the shared host(s) or signature(s)

    def message(self) -> str:
        a, b = self.first.rule, self.second.rule
        return (
            f"{a.id} ({a.category}) and {b.id} ({b.category}) both claim {self.kind} "
            f"{self.what}: such an element reaches only visitors who granted both "
            f"{a.category} and {b.category}; give it to one rule "
            f"({self.first.where()}; {self.second.where()})"
        )


def find_overlaps(ruleset: RuleSet) -> list[Overlap]:
    """Every pair of blocks of enabled rules in different categories that claim the
    same host or inline signature, with selectors that can pick the same element."""
    claims = [
        Claim(rule, i, block)
        for rule in ruleset.active
        for i, block in enumerate(rule.blocks)
        if block.hosts or block.contains
    ]
    found = []
    for i, a in enumerate(claims):
        for b in claims[i + 1 :]:
            if a.rule.category == b.rule.category or not _selectors_meet(a.block, b.block):
                continue
            hosts = _shared_hosts(a.block.hosts, b.block.hosts)
            if a.block.hosts and b.block.hosts and not hosts:
                continue  # each names hosts, and no element can be on both
            if hosts:
                found.append(Overlap(a, b, "host", ", ".join(hosts)))
            elif a.block.contains and b.block.contains:
                texts = _shared_texts(a.block.contains, b.block.contains)
                if texts:
                    found.append(Overlap(a, b, "text", ", ".join(texts)))
    return found


def _shared_hosts(a: tuple[str, ...], b: tuple[str, ...]) -> list[str]:
    """The hosts both lists take, each named by the more specific of the two."""
    shared = set()
    for x in a:
        for y in b:
            if x == y or x.endswith("." + y):
                shared.add(x)
            elif y.endswith("." + x):
                shared.add(y)
    return sorted(shared)


def _shared_texts(a: tuple[str, ...], b: tuple[str, ...]) -> list[str]:
    """Signatures of one list that any text holding one of the other's also holds."""
    return sorted({repr(min(x, y, key=len)) for x in a for y in b if x in y or y in x})


def _selectors_meet(a: Block, b: Block) -> bool:
    return any(
        _compounds_meet(x.subject, y.subject)
        for x in parse_selector(a.selector)
        for y in parse_selector(b.selector)
    )


def _compounds_meet(a: Compound, b: Compound) -> bool:
    """False when no element can match both: different types, a test and its negation,
    or different values for the same attribute (see the module docstring)."""
    if a.tag is not None and b.tag is not None and a.tag != b.tag:
        return False
    return not any(_exclusive(x, y) for x in a.conditions for y in b.conditions)


def _exclusive(x: Condition, y: Condition) -> bool:
    if x.attr != y.attr:
        return False
    if x.negated != y.negated:
        return x._replace(negated=False) == y._replace(negated=False)
    if x.negated or x.op not in _VALUE_OPS or y.op not in _VALUE_OPS:
        return False
    u, v = (x.value.lower(), y.value.lower()) if x.ci or y.ci else (x.value, y.value)
    return u not in v and v not in u


def overlap_lines(ruleset: RuleSet) -> Iterator[str]:
    """One line per overlap, for ``consent-proxy check``."""
    for overlap in find_overlaps(ruleset):
        yield overlap.message()
