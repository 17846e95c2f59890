"""Rules + consent → a plan: what to do to every page one consent variant gets.

``compile_plan`` picks the blocks of denied categories and the injects of granted ones,
slot by slot of the rules' scan (scan.py: what the rewriter looks for, the same for
every variant, compiled once per generation). A plan serves every visitor of its
variant: ``PlanCache`` keeps one per rules generation and consent variant, and the scan
of each generation, compiled ahead by ``prepare``.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property

from proxy.consent import consent_mode, standins
from proxy.consent.catalogue import Catalogue
from proxy.consent.consent_mode import ConsentModeSettings
from proxy.consent.model import Consent
from proxy.consent.rules import Block, Rule, RuleSet
from proxy.consent.scan import Member, Scan, scan_rules
from proxy.html import DocumentInserts

TextGroup = tuple[str, re.Pattern[str], tuple[tuple[Rule, Block], ...]]


@dataclass(frozen=True)
class Plan:
    """What to do to every page for one consent variant under one rule set."""

    generation: str
    consent: Consent
    blocks: tuple[tuple[Rule, Block], ...]
    inserts: DocumentInserts
    inline_styles: tuple[str, ...] = ()  # contents of inline <style>/<script> in injects,
    inline_scripts: tuple[str, ...] = ()  # for the page's Content-Security-Policy
    # Blocks that look at script text, by selector, searched with one pattern per selector.
    by_text: tuple[TextGroup, ...] = ()
    # Placeholder blocks of granted categories: they only find the widget a visitor
    # comes back to after a placeholder's grant (see consent/returning.py).
    shown: tuple[tuple[Rule, Block], ...] = ()
    # Google Consent Mode's default (script text), first in the head (consent_mode.py).
    google_defaults: str = ""
    # The rules' scan, and per slot (scan.ahead, then scan.marks) the blocks that act:
    # those of denied categories ahead, the placeholders of granted ones in marks.
    scan: Scan | None = dataclasses.field(default=None, compare=False, repr=False)
    acting: tuple[tuple[Member, ...], ...] = ()
    # Per denied rule id: its surrogates, (name, script text), which take the place of
    # the first script of the rule removed from a page (see EnforcedPage._stand_in).
    surrogates: Mapping[str, tuple[tuple[str, str], ...]] = dataclasses.field(
        default_factory=dict, compare=False
    )
    # The absorbing stand-in's text (cuts.py; "": none), for removed scripts' functions.
    absorbing: str = dataclasses.field(default="", compare=False, repr=False)
    # The catalogue of third parties, and the categories it holds for this variant
    # (empty: the catalogue does nothing to these visitors' pages).
    catalogue: Catalogue | None = None
    denied: frozenset[str] = frozenset()
    exempt: frozenset[str] = frozenset()  # catalogue entities a rule keeps on purpose
    # X-Consent for each visitor's consent under this plan (a plan serves many
    # visitors: each text is made once).
    _headers: dict[str, str] = dataclasses.field(default_factory=dict, compare=False, repr=False)

    @property
    def acts(self) -> bool:
        """Whether the plan removes or holds anything (its pages are counted)."""
        return bool(self.blocks or self.by_text or self.denied)

    @cached_property
    def changes(self) -> bool:
        """Whether pages change under this plan (the banner and the way back to a
        widget aside: they depend on the visitor, see enforce.py)."""
        inserts = self.inserts
        return bool(
            self.acts
            or self.google_defaults
            or inserts.head_start
            or inserts.head_end
            or inserts.body_end
        )

    @cached_property
    def variant(self) -> str:
        """Names what pages depend on under this plan (it goes into their ETags)."""
        return f"{self.consent.variant}-{self.generation}"

    def consent_header(self, consent: Consent) -> str:
        """The X-Consent value for ``consent`` (one of this plan's visitors): their
        answers and where they came from, and the rules generation."""
        key = consent.json_members
        header = self._headers.get(key)
        if header is None:
            header = self._headers[key] = f"{consent.header()}; rules={self.generation}"
        return header


def compile_plan(
    ruleset: RuleSet,
    consent: Consent,
    google: ConsentModeSettings = consent_mode.DEFAULT,
    scan: Scan | None = None,
    surrogates: Mapping[str, str] | None = None,
) -> Plan:
    """The plan for ``consent`` under ``ruleset``; ``google``: the operator's Consent
    Mode settings (which blocks an advanced Google rule keeps, and the default);
    ``scan``: the rules' scan under them (made now when not given; compiled when a page
    first needs it). ``surrogates``: the surrogate scripts pages may get, text by name
    (proxy.ui.surrogates ships them; the wiring hands them over). None or empty:
    pages get none."""
    scan = scan or scan_rules(ruleset, google)
    places: dict[str, list[str]] = {"head-start": [], "head-end": [], "body-end": []}
    shown: list[tuple[Rule, Block]] = []
    texts = surrogates or {}
    stand_ins: dict[str, tuple[tuple[str, str], ...]] = {}
    for rule in ruleset.active:
        if consent.allows(rule.category):
            for inject in rule.injects:
                places[inject.where].append(inject.html)
            shown += [(rule, b) for b in rule.blocks if b.action == "placeholder"]
        else:
            named = tuple((n, texts[n]) for n in rule.surrogates if n in texts)
            if named:
                stand_ins[rule.id] = named
    acting = [
        tuple(m for m in slot.members if not consent.allows(m[0].category)) for slot in scan.ahead
    ]
    blocks: list[Member] = []
    text_groups: list[TextGroup] = []
    for slot, act in zip(scan.ahead, acting, strict=True):
        if slot.pattern is None:
            blocks += act
        elif act:
            text_groups.append((slot.selector, slot.pattern, act))
    acting += [
        tuple(m for m in slot.members if consent.allows(m[0].category)) for slot in scan.marks
    ]
    inserts = DocumentInserts(
        "".join(places["head-start"]), "".join(places["head-end"]), "".join(places["body-end"])
    )
    injected = "".join(v for values in places.values() for v in values)
    styles = tuple(m.group(1) for m in _INLINE_STYLE.finditer(injected))
    scripts = tuple(m.group(1) for m in _INLINE_SCRIPT.finditer(injected))
    # Any surrogate may be inserted after the headers (and their CSP) have left.
    scripts += tuple(dict.fromkeys(text for named in stand_ins.values() for _, text in named))
    catalogue = ruleset.catalogue
    denied: frozenset[str] = frozenset()
    if catalogue is not None and catalogue.enabled:
        denied = frozenset(c for c in catalogue.categories if not consent.allows(c))
    # The absorbing stand-in may follow any script a block or the catalogue removes.
    absorbing = texts.get(standins.ABSORBING, "") if blocks or text_groups or denied else ""
    scripts += (absorbing,) if absorbing and absorbing not in scripts else ()
    return Plan(
        ruleset.generation,
        consent,
        tuple(blocks),
        inserts,
        styles,
        scripts,
        tuple(text_groups),
        shown=tuple(shown),
        google_defaults=consent_mode.plan_defaults(ruleset, consent, google),
        scan=scan,
        acting=tuple(acting),
        surrogates=stand_ins,
        absorbing=absorbing,
        catalogue=catalogue if denied else None,
        denied=denied,
        exempt=_kept_entities(ruleset, consent, google) if denied else frozenset(),
    )


def _kept_entities(
    ruleset: RuleSet, consent: Consent, google: ConsentModeSettings
) -> frozenset[str]:
    """The catalogue's entities a rule keeps on purpose (its hosts' entities, and the
    signatures its snippets name): a disabled rule's, and a denied rule's in Consent
    Mode's advanced mode. Hand-written rules take precedence over the catalogue."""
    catalogue = ruleset.catalogue
    if catalogue is None:
        return frozenset()
    kept: set[str] = set()
    for rule in ruleset.rules:
        # An operator's disabled rule keeps what it covers too: turning the rule off
        # means "do not block this vendor", not "leave it to the catalogue".
        advanced = consent_mode.mode_of(rule, google) == "advanced"
        if rule.enabled and (consent.allows(rule.category) or not advanced):
            continue
        for block in rule.blocks:
            for host in block.hosts:
                entry = catalogue.lookup(host)
                if entry is not None:
                    kept.add(entry.entity)
            for snippet in block.contains:
                kept.update(s.entity for s in catalogue.signatures if s.text in snippet)
    return frozenset(kept)


_INLINE_STYLE = re.compile(r"<style\b[^>]*>(.*?)</style", re.S | re.I)
_INLINE_SCRIPT = re.compile(r"<script\b(?![^>]*\bsrc=)[^>]*>(.*?)</script", re.S | re.I)


class PlanCache:
    """The compiled plan for a rule set and a consent, made once per rules generation
    and consent variant; the scan of each generation, once (``prepare`` compiles it
    before the generation serves: no request waits for that)."""

    LIMIT = 256  # plans kept; older generations' plans are dropped, oldest first
    SCANS = 4  # generations whose scans are kept (requests of the last may still run)

    def __init__(
        self,
        google: ConsentModeSettings = consent_mode.DEFAULT,
        surrogates: Mapping[str, str] | None = None,
    ) -> None:
        """``google``, ``surrogates``: what every plan is made with (``compile_plan``)."""
        self._surrogates = surrogates
        self._plans: dict[tuple[str, str], Plan] = {}
        self._google = google
        self._scans: dict[str, Scan] = {}

    def get(self, ruleset: RuleSet, consent: Consent) -> Plan:
        key = (ruleset.generation, consent.variant)
        plan = self._plans.get(key)
        if plan is None:
            if len(self._plans) >= self.LIMIT:
                del self._plans[next(iter(self._plans))]
            scan = self.scan(ruleset)
            plan = compile_plan(ruleset, consent, self._google, scan, self._surrogates)
            self._plans[key] = plan
        return plan

    def scan(self, ruleset: RuleSet) -> Scan:
        """The scan of ``ruleset``'s generation."""
        scan = self._scans.get(ruleset.generation)
        if scan is None:
            while len(self._scans) >= self.SCANS:
                del self._scans[next(iter(self._scans))]
            scan = self._scans[ruleset.generation] = scan_rules(ruleset, self._google)
        return scan

    def prepare(self, ruleset: RuleSet) -> None:
        """Compile the scan of ``ruleset`` now (it may run in a thread: requests of
        other generations meanwhile use their own)."""
        self.scan(ruleset).prepare()
