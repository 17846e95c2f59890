"""The inventory: which third-party hosts the site's pages make browsers contact, what
covers each (a hand-written rule, the catalogue, the operator's allow lists) and which
ones nothing covers, recorded per rules generation; and what happens to those unknown
hosts (``unknown_third_party``: allow, block or placeholder).

What covers a host: ``Classifier`` (first_party, a rule's ``url_hosts``, the
catalogue with its "off" entries and allow list). Records: ``Inventory``, one per
generation, kept by the ``InventoryBook`` with the operator's settings; each page
gets a ``PageWatch``, which sightings.py's gate records through.

Bounded: at most ``limit`` hosts per generation (10,000 by default); beyond it, hosts
not yet listed are counted in ``dropped``, never stored. The site's own hosts (the
page's Host and the ``first_party`` setting, subdomains included) are never third
parties.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from proxy.consent.model import Consent
from proxy.consent.rules import RuleSet
from proxy.consent.urls import DomainTable, normalize_host

ALLOW, BLOCK, PLACEHOLDER = "allow", "block", "placeholder"
MODES = (ALLOW, BLOCK, PLACEHOLDER)
# Unknown hosts are held until the visitor grants all of these (block, placeholder).
HELD_UNTIL = ("advertising", "analytics", "social")
RULE_ID = "unknown-third-party"  # how headers, logs and counts name what it does
MAX_HOSTS = 10_000
_MAX_CACHE = 50_000  # written authorities classified per generation (then started over)
_MAX_WATCHES = 1024  # remembered (page host, granted categories) pairs
INLINE = "inline-script"  # the kind of a host named in a running inline script's text


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
        # The site's own entities, as the catalogue's gate exempts them (coverage.py):
        # those of first_party, and per page those of its host (``page_entities``).
        catalogue = ruleset.catalogue
        self._own = catalogue.own_entities(first_party) if catalogue is not None else frozenset()
        self._pages: dict[str, frozenset[str]] = {}

    def page_entities(self, page_host: str | None) -> frozenset[str]:
        """The entity of a page's host (remembered), which a page's own hosts share."""
        catalogue = self.ruleset.catalogue
        if not page_host or catalogue is None:
            return frozenset()
        found = self._pages.get(page_host)
        if found is None:
            if len(self._pages) >= _MAX_CACHE:
                self._pages.clear()
            found = self._pages[page_host] = catalogue.own_entities((page_host,))
        return found

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
        if entity in self._own:  # a first_party host's entity: the gate's exemption
            return FIRST_PARTY
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
        self.uncovered: dict[str, dict[str, int]] = {}  # host -> kind -> elements
        self.covered: dict[str, tuple[Cover, list[int]]] = {}  # host -> cover, [pages]

    def _room(self, listed: bool) -> bool:
        if listed:
            return True
        if len(self.uncovered) + len(self.covered) >= self.limit:
            self.dropped += 1
            return False
        return True

    def add_uncovered(self, host: str, kind: str) -> None:
        kinds = self.uncovered.get(host)
        if kinds is None:
            if not self._room(False):
                return
            kinds = self.uncovered[host] = {}
        kinds[kind] = kinds.get(kind, 0) + 1

    def add_covered(self, host: str, cover: Cover) -> None:
        """A covered host seen on one more page."""
        if self._room(host in self.covered):
            self.covered.setdefault(host, (cover, [0]))[1][0] += 1

    def as_json(self) -> dict[str, object]:
        """What the admin endpoint and ``consent-proxy inventory --json`` give."""
        uncovered = sorted(self.uncovered.items(), key=lambda kv: (-sum(kv[1].values()), kv[0]))
        covered = sorted(self.covered.items(), key=lambda kv: (-kv[1][1][0], kv[0]))
        return {
            "generation": self.generation,
            "pages": self.pages,
            "limit": self.limit,
            "hosts": len(self.uncovered) + len(self.covered),
            "dropped": self.dropped,
            "uncovered": [
                {"host": h, "count": sum(kinds.values()), "kinds": dict(sorted(kinds.items()))}
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
        record: bool = True,
    ) -> None:
        """``record``: False leaves pages alone while ``mode`` is allow (benchmarks)."""
        if mode not in MODES:
            raise ValueError(f"unknown_third_party = {mode!r}; expected one of {', '.join(MODES)}")
        self.first_party = tuple(h for h in map(normalize_host, first_party) if h)
        self.mode = mode
        self.record = record
        self.limit = limit
        self.totals: Counter[str] = Counter() if totals is None else totals
        self._classifier: Classifier | None = None
        self.current: Inventory | None = None
        # Watches already made, by page host and granted categories, for the current
        # classifier and inventory: one per request cost more than the rest of an
        # accepting visitor's consent work (a frozen dataclass, a host normalized).
        self._watches: dict[tuple[str | None, frozenset[str]], PageWatch] = {}
        # What ``PageWatch.written`` said of an authority as written, by page host:
        # most authorities on a page were written before (a dict lookup each).
        self.known: dict[tuple[str | None, bytes], tuple[str, Cover] | None] = {}

    def classifier(self, ruleset: RuleSet) -> Classifier:
        """The classifier of ``ruleset`` (a new generation starts a new inventory)."""
        classifier = self._classifier
        if classifier is None or classifier.ruleset is not ruleset:
            classifier = self._classifier = Classifier(ruleset, self.first_party)
            self._watches, self.known = {}, {}
            if self.current is None or self.current.generation != ruleset.generation:
                self.current = Inventory(ruleset.generation, self.limit)
        return classifier

    def watch(self, ruleset: RuleSet, consent: Consent, page_host: str | None) -> PageWatch | None:
        """One page's watch (``page_host``: the host the browser addressed)."""
        if not self.record and self.mode == ALLOW:
            return None
        classifier = self.classifier(ruleset)
        key = (page_host, consent.granted)
        watch = self._watches.get(key)
        if watch is not None:
            return watch
        assert self.current is not None
        holds = self.mode != ALLOW and not all(consent.allows(c) for c in HELD_UNTIL)
        category = next((c for c in HELD_UNTIL if not consent.allows(c)), HELD_UNTIL[0])
        own = normalize_host(page_host) if page_host else None
        mode = self.mode if holds else ""
        entities = classifier.page_entities(own)
        watch = PageWatch(self, classifier, self.current, own, mode, category, entities)
        if len(self._watches) >= _MAX_WATCHES:  # hosts are the site's few; else start over
            self._watches.clear()
        self._watches[key] = watch
        return watch


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
    entities: frozenset[str] = frozenset()  # the catalogue's entity of ``own``

    def written(self, raw: bytes) -> tuple[str, Cover] | None:
        """(host, cover) of an authority as written in a page; None when it names no
        host or the site's own (``mine``). Remembered in the book's ``known``, by
        ``own`` and ``raw``."""
        found = self.classifier.written(raw)
        if found is not None and self.mine(*found):
            found = None
        known = self.book.known
        if len(known) >= _MAX_CACHE:
            known.clear()
        known[self.own, raw] = found
        return found

    def mine(self, host: str, cover: Cover) -> bool:
        """Whether ``host`` (covered by ``cover``) is the site's own: first_party, the
        page's host or a subdomain, or a host the catalogue files under the page
        host's entity (which the catalogue's gate leaves alone)."""
        if cover is FIRST_PARTY or owned(host, self.own):
            return True
        return cover.by == "catalogue" and cover.entity in self.entities
