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

from proxy.consent.contacts import FETCHING_RELS, REMOVE, STRIP, contacts, plain_attributes
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

# Authorities as written in HTML, each pattern beginning with a literal byte (Python's
# re skips to it in C): after two slashes of either kind (475 MB/s over the corpus
# for both); while unknown hosts are held, also after http: / https: with no slash
# (browsers read https:host as a host; the four run at 490 MB/s). The class stops
# before a path, query, quote, space, tag end or character reference.
_HOSTISH = rb"([A-Za-z0-9._~%@:\[\]\x80-\xff-]{3,260})"
_AUTHORITIES = (re.compile(rb"/[/\\]" + _HOSTISH), re.compile(rb"\\[/\\]" + _HOSTISH))
_SCHEME_ONLY = tuple(
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

    def classifier(self, ruleset: RuleSet) -> Classifier:
        """The classifier of ``ruleset`` (a new generation starts a new inventory)."""
        classifier = self._classifier
        if classifier is None or classifier.ruleset is not ruleset:
            classifier = self._classifier = Classifier(ruleset, self.first_party)
            if self.current is None or self.current.generation != ruleset.generation:
                self.current = Inventory(ruleset.generation, self.limit)
        return classifier

    def watch(self, ruleset: RuleSet, consent: Consent, page_host: str | None) -> PageWatch | None:
        """One page's watch (``page_host``: the host the browser addressed)."""
        if not self.record and self.mode == ALLOW:
            return None
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
    with the inventory and ``unknown_third_party`` on top.

    Two ways an unknown host is recorded. Sighted: ``stops`` finds it written in a
    start tag and reads the tag's name and the attribute around it with a few
    searches in C (no stop, no Python step per element). Read: a tag that may hide
    a host (character references, escapes: the catalogue's suspects), and, while
    unknown hosts are held, every tag naming one, goes through ``handle``, which reads
    its URLs as a browser would."""

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
        self._covered: set[str] = set()  # covered hosts this page counted
        self._texts: set[tuple[str, str]] = set()  # (host, kind) found in text here
        self._unknown: set[bytes] = set()  # unknown authorities as written (held)

    def stops(self, buf: bytes) -> list[int]:
        """The catalogue's stops (and, holding, every place an unknown host is
        written); sightings recorded on the way."""
        watch = self._watch
        written, own, hold = watch.classifier.written, watch.own, watch.hold
        held: list[int] = []
        for pattern in (*_AUTHORITIES, *_SCHEME_ONLY) if hold else _AUTHORITIES:
            for m in pattern.finditer(buf):
                found = written(m.group(1))
                if found is None:
                    continue
                host, cover = found
                if cover is FIRST_PARTY or owned(host, own):
                    continue
                if cover is not UNCOVERED:
                    if host not in self._covered:
                        self._covered.add(host)
                        watch.inventory.add_covered(host, cover)
                elif self._sighted(buf, m.start(), host) and hold:
                    held.append(m.start())
                    self._unknown.add(m.group(1))
        starts = self._inner.stops(buf) if self._inner is not None else _suspects(buf)
        return sorted({*starts, *held}) if held else starts

    def _sighted(self, buf: bytes, at: int, host: str) -> bool:
        """Record an unknown host written at ``at``; True when it is in a start tag
        (where, holding, ``handle`` reads and records it instead)."""
        lt = buf.rfind(b"<", max(0, at - _REACH), at)
        if lt == -1:
            return False
        name = _TAG_NAME.match(buf, lt + 1)
        if buf.find(b">", lt, at) != -1:  # in text: a <script> or <style>'s?
            kind = _TEXT_KINDS.get(name.group().lower()) if name is not None else None
            if kind is not None and (host, kind) not in self._texts:
                self._texts.add((host, kind))  # once per page: text is scanned again
                self._record(host, kind)
            return False
        end = buf.find(b">", at)
        if name is None or end == -1:
            return False  # an end tag or a comment; or the rest comes with more bytes
        tag_bytes = buf[lt : end + 1]
        if self._watch.hold or _hides(tag_bytes):
            return True  # handle reads it
        tag = name.group().lower().decode("latin-1")
        eq = buf.rfind(b"=", lt, at)
        attribute = _NAME_BACKWARDS.match(buf[max(lt, eq - 64) : eq][::-1]) if eq != -1 else None
        if attribute is None:
            return True
        if _loads(tag, attribute.group(1)[::-1].lower().decode("latin-1"), tag_bytes):
            self._record(host, tag)
        return True

    def _record(self, host: str, kind: str) -> None:
        self._watch.inventory.add_uncovered(host, kind)
        self._watch.book.totals[kind] += 1

    def handle(self, el: Element) -> None:
        inner = self._inner
        if inner is not None:
            inner.handle(el)
            if el.removed:
                return
        raw = el.start_tag()
        if (self._unknown and any(u in raw for u in self._unknown)) or _hides(raw):
            self._look(el)

    def _look(self, el: Element) -> None:
        """Record the unknown hosts ``el`` contacts, and hold them if the mode says so."""
        watch = self._watch
        classify, own = watch.classifier.classify, watch.own
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
            self._record(host, tag)
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

    def _count(self, action: str) -> None:
        key = (RULE_ID, action)
        self.counts[key] = self.counts.get(key, 0) + 1


_ENTITY = re.compile(rb"&(?!(?:amp|quot|lt|gt|apos|nbsp);)[#A-Za-z]")
_CSS_ESCAPE = re.compile(rb"\\[0-9A-Fa-f]")
# A tab, newline or carriage return between name characters, one pattern per byte,
# each beginning with it (a class at the start is tried at every byte).
_BROKEN = {
    c: re.compile(
        re.escape(c) + rb"(?<=[A-Za-z0-9._-]" + re.escape(c) + rb")[\t\n\r]*[A-Za-z0-9._-]"
    )
    for c in (b"\t", b"\n", b"\r")
}
_REACH = 16384  # how far back a tag's "<" is looked for
_TAG_NAME = re.compile(rb"[A-Za-z][A-Za-z0-9:-]*")
_TEXT_KINDS = {b"script": INLINE, b"style": "inline-style"}
# The name of the attribute whose value holds a sighting, read backwards from its "=".
_NAME_BACKWARDS = re.compile(rb"[\t\n\f\r ]*([-A-Za-z0-9_:.]+)")
_FETCHING = re.compile(
    rb"(?i)\brel[\t\n\f\r ]*=[\t\n\f\r ]*[\"']?[^\"'>]*\b(?:"
    + b"|".join(re.escape(r.encode()) for r in sorted(FETCHING_RELS))
    + rb")\b"
)
_IMAGE_INPUT = re.compile(rb"(?i)\btype[\t\n\f\r ]*=[\t\n\f\r ]*[\"']?[\t\n\f\r ]*image\b")
_REFRESH = re.compile(rb"(?i)\bhttp-equiv[\t\n\f\r ]*=[\t\n\f\r ]*[\"']?[\t\n\f\r ]*refresh\b")
_CONDITIONAL = {
    ("link", "href"): _FETCHING,
    ("link", "imagesrcset"): _FETCHING,
    ("input", "src"): _IMAGE_INPUT,
    ("meta", "content"): _REFRESH,
}


def _loads(tag: str, attribute: str, tag_bytes: bytes) -> bool:
    """Whether a URL in ``attribute`` of a ``tag`` start tag is one the browser
    contacts (contacts.py's forms, read from the raw tag)."""
    condition = _CONDITIONAL.get((tag, attribute))
    if condition is not None:
        return condition.search(tag_bytes) is not None
    return attribute in plain_attributes(tag)


def _hides(raw: bytes) -> bool:
    """Whether a start tag may hide a host from the authority patterns: a character
    reference, a CSS escape, a tab or newline inside a name, a srcdoc (percent
    escapes and non-ASCII names are read by the patterns). A byte test before each
    search: most tags need none."""
    if b"&" in raw and _ENTITY.search(raw) is not None:
        return True
    if b"\\" in raw and _CSS_ESCAPE.search(raw) is not None:
        return True
    for byte, pattern in _BROKEN.items():
        if byte in raw and pattern.search(raw) is not None:
            return True
    return b"srcdoc" in raw.lower()


def _suspects(buf: bytes) -> list[int]:
    """Where a host may hide from a literal scan (coverage.py's cases), for pages
    the catalogue does not examine."""
    starts = {m.start() for pattern in _SUSPECTS for m in pattern.finditer(buf)}
    starts.update(m.start() for m in _SRCDOC.finditer(buf.lower()))
    return sorted(starts)
