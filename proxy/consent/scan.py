"""What the rewriter looks for in the pages of one rules generation, whatever the
visitor's consent: one scan, compiled once, shared by every consent variant.

The consent variant chooses which handlers act, not what is scanned: every block of
every active rule has its slot, and a page's plan (plans.py) says, slot by slot, which
blocks act on it (those of denied categories; for a visitor coming back to a widget,
the placeholder blocks of granted ones). Compiling a program of selectors and hints
takes the generated patterns of every selector (about a second per program on a busy
machine): one per variant made the first visitor of each of 64 variants wait, with
the event loop blocked meanwhile. One per generation is compiled before the
generation serves (``prepare``: at start-up, and in the reload, off the event loop).

Slots, in the order the rewriter gets their handlers (the program's keys):

- a block slot per block with hosts (or with neither hosts nor snippets),
- a text slot per selector of the blocks that look at script text (one search for all
  of their snippets),
- the page's Content-Security-Policy ``<meta>`` and ``<body>`` (for the banner),
- a mark slot per placeholder block (the widget a visitor comes back to),
- a slot per kind of embed that is no iframe (facades.py: posts, lite-youtube).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property

from proxy.consent import consent_mode, facades
from proxy.consent.consent_mode import ConsentModeSettings
from proxy.consent.matching import hints_of, host_hints, snippets
from proxy.consent.rules import Block, Rule, RuleSet
from proxy.html import Hints, Program, compile_program
from proxy.html.skip import literals_pattern

META_CSP = "meta[http-equiv='content-security-policy' i]"
Member = tuple[Rule, Block]


@dataclass(frozen=True)
class Slot:
    """One handler's place in the scan: what it looks for and which blocks it serves."""

    selector: str
    hints: Hints
    members: tuple[Member, ...]  # one block, or a text slot's group
    pattern: re.Pattern[str] | None = None  # a text slot: finds any of its snippets
    mark: bool = False  # finds the widget a visitor comes back to (placeholder blocks)


@dataclass(frozen=True, eq=False)
class Scan:
    """The slots of a rule set (see the module docstring) and their compiled program."""

    ahead: tuple[Slot, ...]  # block and text slots
    marks: tuple[Slot, ...]

    @cached_property
    def keys(self) -> tuple[tuple[str, Hints | None], ...]:
        """The program's keys: the slots ahead, the CSP ``<meta>`` and ``<body>``, the
        mark slots, the embeds that are no iframe (facades.py)."""
        ahead = [(s.selector, s.hints) for s in self.ahead]
        marks = [(s.selector, s.hints) for s in self.marks]
        return (*ahead, (META_CSP, None), ("body", None), *marks, *facades.KEYS)

    @cached_property
    def program(self) -> Program:
        return compile_program(self.keys)

    def prepare(self) -> None:
        """Compile now what the pages of this scan use (they all insert at the end of
        <body>): no page waits for it."""
        self.program.prepare(inserts=True)


def scan_rules(ruleset: RuleSet, google: ConsentModeSettings = consent_mode.DEFAULT) -> Scan:
    """The scan of every active rule's blocks (nothing compiled yet): the blocks that act
    while its category is denied (under ``google``, the Consent Mode settings, an
    advanced Google rule keeps fewer), and its placeholders, for the way back."""
    slots: list[Slot] = []
    by_text: dict[str, list[Member]] = {}
    marks: list[Slot] = []
    for rule in ruleset.active:
        for block in consent_mode.denied_blocks(rule, google):
            if block.contains and not block.hosts:
                by_text.setdefault(block.selector, []).append((rule, block))
            else:
                slots.append(Slot(block.selector, host_hints(block), ((rule, block),)))
        for block in rule.blocks:
            if block.action == "placeholder":
                marks.append(Slot(block.selector, hints_of(block), ((rule, block),), mark=True))
    for selector, group in by_text.items():
        members = tuple(group)
        pattern = re.compile(literals_pattern(s for _, block in group for s in block.contains))
        slots.append(Slot(selector, Hints(text=snippets(members)), members, pattern))
    return Scan(tuple(slots), tuple(marks))
