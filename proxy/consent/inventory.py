"""The inventory: which third-party hosts the site's pages make browsers contact, what
covers each (a hand-written rule, the catalogue, the operator's allow lists) and which
ones nothing covers, recorded per rules generation; and what happens to those unknown
hosts (``unknown_third_party``: allow, block or placeholder).

Recording rides on the catalogue's gate (coverage.py): ``InventoryGate`` wraps it. Its
``stops`` runs a few literal-prefixed patterns over the bytes the rewriter holds to
find every written authority (``//host``, ``\\\\host``, ``https:host``), classifies each
distinct host once per generation (a dict, then ``classify``), and adds stops only at
the hosts nothing covers; its ``handle`` reads those elements as a browser would
(``contacts`` and ``url_target``), so only elements naming an unknown host cost a
Python step. Hosts hidden behind character references, escapes or tabs reach
``handle`` through the catalogue's suspect stops.

Bounded: at most ``limit`` hosts per generation (10,000 by default); beyond it, hosts
not yet listed are counted in ``dropped``, never stored. The site's own hosts (the
page's Host and the ``first_party`` setting, subdomains included) are never third
parties.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from proxy.consent.contacts import REMOVE, STRIP, contacts, script_runs
from proxy.consent.coverage import _SRCDOC, _SUSPECTS, CatalogueGate, Held, embed_size
from proxy.consent.model import Consent
from proxy.consent.rules import RuleSet
from proxy.consent.urls import DomainTable, normalize_host, url_target
from proxy.html import Element

ALLOW, BLOCK, PLACEHOLDER = "allow", "block", "placeholder"
MODES = (ALLOW, BLOCK, PLACEHOLDER)
# Unknown hosts are held until the visitor grants all of these (block, placeholder).
HELD_UNTIL = ("advertising", "analytics", "social")
RULE_ID = "unknown-third-party"  # how headers, logs and counts name what it does
MAX_HOSTS = 10_000
_MAX_CACHE = 50_000  # written authorities classified per generation (then started over)
INLINE = "inline-script"  # the kind of a host named in a running inline script's text
# What block and placeholder hold: scripts, frames and embeds, images (pixels).
_FRAMES = frozenset({"iframe", "frame", "embed", "object"})
_HELD = _FRAMES | {"script", "img", "image", "input", "source", "a", "area"}

# Authorities as written in HTML, each pattern beginning with a literal (Python's re
# skips to it in C): after two slashes of either kind, or after http: / https: with
# no slash (browsers read https:host as a host). The class stops before a path,
# query, quote, space, tag end or character reference.
_HOSTISH = rb"([A-Za-z0-9._~%@:\[\]\x80-\xff-]{3,260})"
_AUTHORITIES = tuple(
    re.compile(re.escape(start) + _HOSTISH) for start in (b"//", b"\\\\", b"/\\", b"\\/")
) + tuple(
    re.compile(start + behind + rb"(?![/\\])" + _HOSTISH)
    for start, behind in (
        (b"p:", rb"(?<=[hH][tT][tT][pP]:)"),
        (b"P:", rb"(?<=[hH][tT][tT][pP]:)"),
        (b"s:", rb"(?<=[hH][tT][tT][pP][sS]:)"),
        (b"S:", rb"(?<=[hH][tT][tT][pP][sS]:)"),
    )
)


@dataclass(frozen=True)
class Cover:
    """What covers a host: ``by`` is "rule" (``rule`` names it), "catalogue" (its
    ``entity``, consent ``category`` or "off", third-party-web ``source``), "allowed"
    (the catalogue's allow list), "first-party", or "" (nothing: unknown)."""

    by: str
    rule: str = ""
    entity: str = ""
    category: str = ""
    source: str = ""

    def as_json(self) -> dict[str, str | None]:
        return {
            "by": self.by,
            "rule": self.rule or None,
            "entity": self.entity or None,
            "category": self.category or None,
            "source": self.source or None,
        }


UNCOVERED = Cover("")
FIRST_PARTY = Cover("first-party")
ALLOWED = Cover("allowed")


def authority_host(written: str) -> str | None:
    """The host of an authority as a pattern found it (userinfo and port dropped,
    normalized); None for a name without a dot (``//TODO`` in a comment)."""
    rest = written.rpartition("@")[2]
    if rest.startswith("["):
        return None  # an IPv6 literal: never catalogued, url_target reads it in handle
    host = normalize_host(rest.partition(":")[0])
    return host if host and "." in host.strip(".") else None


def owned(host: str, own: str | None) -> bool:
    return own is not None and (host == own or host.endswith("." + own))


class Classifier:
    """What covers a host under one rule set and the operator's ``first_party``."""

    def __init__(self, ruleset: RuleSet, first_party: Iterable[str] = ()) -> None:
        self.ruleset = ruleset
        self._first = DomainTable((h, True) for h in first_party)
        self._rules = DomainTable(
            (host, rule.id)
            for rule in ruleset.active
            for block in rule.blocks
            for host in block.hosts
        )
        self._written: dict[bytes, tuple[str, Cover] | None] = {}

    def classify(self, host: str, path: str = "/") -> Cover:
        """A host (as ``url_target`` gives it) and path."""
        if self._first.lookup(host) is not None:
            return FIRST_PARTY
        catalogue = self.ruleset.catalogue
        entity = category = source = ""
        if catalogue is not None:
            entry = catalogue.lookup(host, path)
            if entry is None and catalogue.allow.lookup(host) is None:
                found = catalogue.table.lookup(host)  # "off" entries: known, not held
                entry = found[1] if found is not None else None
            if entry is not None:
                entity, category, source = entry.entity, entry.category, entry.source
        rule = self._rules.lookup(host)
        if rule is not None:
            return Cover("rule", rule[1], entity, category, source)
        if entity:
            return Cover("catalogue", "", entity, category, source)
        if catalogue is not None and catalogue.allow.lookup(host) is not None:
            return ALLOWED
        return UNCOVERED

    def written(self, raw: bytes) -> tuple[str, Cover] | None:
        """(host, cover) of an authority as written in a page (remembered)."""
        if raw in self._written:
            return self._written[raw]
        host = authority_host(raw.decode("utf-8", "replace"))
        found = None if host is None else (host, self.classify(host))
        if len(self._written) >= _MAX_CACHE:
            self._written.clear()
        self._written[raw] = found
        return found


class Inventory:
    """The hosts pages showed under one rules generation, at most ``limit`` of them."""

    def __init__(self, generation: str, limit: int = MAX_HOSTS) -> None:
        self.generation = generation
        self.limit = limit
        self.pages = 0
        self.dropped = 0  # sightings of hosts not listed: the limit was reached
        self.uncovered: dict[str, Counter[str]] = {}  # host -> kind -> elements
        self.covered: dict[str, tuple[Cover, list[int]]] = {}  # host -> cover, [pages]

    def _room(self, listed: bool) -> bool:
        if listed:
            return True
        if len(self.uncovered) + len(self.covered) >= self.limit:
            self.dropped += 1
            return False
        return True

    def add_uncovered(self, host: str, kind: str) -> None:
        if self._room(host in self.uncovered):
            self.uncovered.setdefault(host, Counter())[kind] += 1

    def add_covered(self, host: str, cover: Cover) -> None:
        """A covered host seen on one more page."""
        if self._room(host in self.covered):
            self.covered.setdefault(host, (cover, [0]))[1][0] += 1

    def as_json(self) -> dict[str, object]:
        """What the admin endpoint and ``consent-proxy inventory --json`` give."""
        uncovered = sorted(self.uncovered.items(), key=lambda kv: (-kv[1].total(), kv[0]))
        covered = sorted(self.covered.items(), key=lambda kv: (-kv[1][1][0], kv[0]))
        return {
            "generation": self.generation,
            "pages": self.pages,
            "limit": self.limit,
            "hosts": len(self.uncovered) + len(self.covered),
            "dropped": self.dropped,
            "uncovered": [
                {"host": h, "count": kinds.total(), "kinds": dict(sorted(kinds.items()))}
                for h, kinds in uncovered
            ],
            "covered": [{"host": h, **cover.as_json(), "pages": n[0]} for h, (cover, n) in covered],
        }


class InventoryBook:
    """The inventory of the rules generation in force, and the operator's settings:
    ``first_party`` hosts, ``mode`` for unknown hosts. ``totals`` counts unknown-host
    elements by kind since start (the Prometheus counter shares it)."""

    def __init__(
        self,
        first_party: Iterable[str] = (),
        mode: str = ALLOW,
        *,
        limit: int = MAX_HOSTS,
        totals: Counter[str] | None = None,
    ) -> None:
        if mode not in MODES:
            raise ValueError(f"unknown_third_party = {mode!r}; expected one of {', '.join(MODES)}")
        self.first_party = tuple(h for h in map(normalize_host, first_party) if h)
        self.mode = mode
        self.limit = limit
        self.totals: Counter[str] = Counter() if totals is None else totals
        self._classifier: Classifier | None = None
        self.current: Inventory | None = None

    def classifier(self, ruleset: RuleSet) -> Classifier:
        """The classifier of ``ruleset`` (a new generation starts a new inventory)."""
        classifier = self._classifier
        if classifier is None or classifier.ruleset is not ruleset:
            classifier = self._classifier = Classifier(ruleset, self.first_party)
            if self.current is None or self.current.generation != ruleset.generation:
                self.current = Inventory(ruleset.generation, self.limit)
        return classifier

    def watch(self, ruleset: RuleSet, consent: Consent, page_host: str | None) -> PageWatch:
        """One page's watch (``page_host``: the host the browser addressed)."""
        classifier = self.classifier(ruleset)
        assert self.current is not None
        holds = self.mode != ALLOW and not all(consent.allows(c) for c in HELD_UNTIL)
        category = next((c for c in HELD_UNTIL if not consent.allows(c)), HELD_UNTIL[0])
        own = normalize_host(page_host) if page_host else None
        return PageWatch(self, classifier, self.current, own, self.mode if holds else "", category)


@dataclass(frozen=True)
class PageWatch:
    """What one page needs of the book: ``hold`` is the mode acting on this visitor's
    page ("" when unknown hosts pass), ``category`` the one a placeholder asks for."""

    book: InventoryBook
    classifier: Classifier
    inventory: Inventory
    own: str | None
    hold: str
    category: str

    def gate(
        self,
        inner: CatalogueGate | None,
        placeholder: Callable[[Element, Held], None],
        counts: dict[tuple[str, str], int],
    ) -> InventoryGate:
        self.inventory.pages += 1
        return InventoryGate(self, inner, placeholder, counts)


class InventoryGate:
    """The catalogue's gate (``inner``, None when it does nothing for this visitor)
    with the inventory and ``unknown_third_party`` on top."""

    def __init__(
        self,
        watch: PageWatch,
        inner: CatalogueGate | None,
        placeholder: Callable[[Element, Held], None],
        counts: dict[tuple[str, str], int],
    ) -> None:
        self._watch = watch
        self._inner = inner
        self._placeholder = placeholder
        self.counts = counts
        self._seen: set[bytes] = set()  # authorities of this page already classified
        self._unknown: list[bytes] = []  # those naming an unknown host, as written
        self._unknown_text: list[str] = []

    def stops(self, buf: bytes) -> list[int]:
        """The catalogue's stops, and every place an unknown host is written."""
        watch = self._watch
        written = watch.classifier.written
        seen, own = self._seen, watch.own
        fresh: set[bytes] = set()
        for pattern in _AUTHORITIES:
            fresh.update(pattern.findall(buf))
        for raw in fresh - seen:
            seen.add(raw)
            found = written(raw)
            if found is None:
                continue
            host, cover = found
            if cover is UNCOVERED:
                if not owned(host, own):
                    self._unknown.append(raw)
                    self._unknown_text.append(raw.decode("utf-8", "replace"))
            elif cover is not FIRST_PARTY and not owned(host, own):
                watch.inventory.add_covered(host, cover)
        starts = self._inner.stops(buf) if self._inner is not None else _suspects(buf)
        if not self._unknown:
            return starts
        extra = set(starts)
        for raw in self._unknown:
            at = buf.find(raw)
            while at != -1:
                extra.add(at)
                at = buf.find(raw, at + 1)
        return sorted(extra)

    def handle(self, el: Element) -> None:
        inner = self._inner
        if inner is not None:
            inner.handle(el)
            if el.removed:
                return
        raw = el.start_tag()
        if any(u in raw for u in self._unknown) or _hides(raw):
            self._look(el)
        elif self._unknown and el.tag == "script" and el.text and script_runs(el.get):
            self._look_text(el)

    def _look(self, el: Element) -> None:
        """Record the unknown hosts ``el`` contacts, and hold them if the mode says so."""
        watch = self._watch
        classify, inventory, own = watch.classifier.classify, watch.inventory, watch.own
        tag = el.tag
        remove = strip = False
        hosts: list[str] = []
        for contact in contacts(tag, el.get):
            target = url_target(contact.url, None)
            if target is None or owned(target[0], own):
                continue
            host, path = target
            if classify(host, path) is not UNCOVERED:
                continue
            inventory.add_uncovered(host, tag)
            watch.book.totals[tag] += 1
            hosts.append(host)
            if watch.hold and tag in _HELD:
                if contact.action == REMOVE:
                    remove = True
                elif contact.attribute == "ping":
                    el.remove_attribute("ping")
                    strip = True
        if remove:
            if watch.hold == PLACEHOLDER and tag in _FRAMES:
                self._placeholder(el, Held(hosts[0], watch.category, embed_size(el.get)))
                self._count(PLACEHOLDER)
            else:
                el.remove()
                self._count(REMOVE)
        elif strip:
            self._count(STRIP)

    def _look_text(self, el: Element) -> None:
        """A running inline script that writes an unknown host: listed, not held (a
        script naming a URL is not always one that loads it)."""
        text = el.text
        for written in self._unknown_text:
            if written in text:
                host = authority_host(written)
                if host is not None:
                    self._watch.inventory.add_uncovered(host, INLINE)
                    self._watch.book.totals[INLINE] += 1

    def _count(self, action: str) -> None:
        key = (RULE_ID, action)
        self.counts[key] = self.counts.get(key, 0) + 1


def _hides(raw: bytes) -> bool:
    """Whether a start tag may hide a host from the authority patterns."""
    return any(p.search(raw) for p in _SUSPECTS) or _SRCDOC.search(raw.lower()) is not None


def _suspects(buf: bytes) -> list[int]:
    """Where a host may hide from a literal scan (coverage.py's cases), for pages
    the catalogue does not examine."""
    starts = {m.start() for pattern in _SUSPECTS for m in pattern.finditer(buf)}
    starts.update(m.start() for m in _SRCDOC.finditer(buf.lower()))
    return sorted(starts)
