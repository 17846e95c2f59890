"""The built-in catalogue of third parties: every domain third-party-web files under
a tracking category, classified into a consent category by an operator-editable
table (``rules/catalogue.toml``), compiled once into a ``Catalogue``.

A ``Catalogue`` answers "which entity and consent category does this host (and
path) belong to?" with one dict lookup per label of the host, the most specific
domain winning, and carries the literals and signatures its prefilter finds in
pages. Problems in the table are ``RuleError``s naming the file, line, key and what
was expected. Loading takes a few hundred ms (the prefilter is compiled): do it
when a rules generation is built, never on a request.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from types import MappingProxyType

from proxy.consent.catalogue_table import CATEGORIES, OFF, Signature, Table
from proxy.consent.prefilter import Pattern, Prefilter, build_prefilter
from proxy.consent.rules import CATALOGUE_FILE, RuleError
from proxy.consent.urls import DomainTable, normalize_host

FILE = CATALOGUE_FILE  # its name in a rules directory (not a vendor rule)
# A domain two entities claim goes to the category a visitor is least likely to
# have granted (the data has one: mediaplex.com, ad and analytics).
_PRECEDENCE = ("advertising", "analytics", "social", "media", "preferences", OFF)
_TOP_KEYS = {"enabled", "allow", "disabled_categories", "categories", "entities", "add"}
_TOP_KEYS |= {"signature", "description"}


@dataclass(frozen=True)
class Entry:
    """What the catalogue says of a domain: the entity behind it, the consent
    category it needs (or "off"), where that came from (its third-party-web
    category, or "catalogue.toml" for an ``[[add]]``) and the domain itself."""

    entity: str
    category: str
    source: str
    domain: str


@dataclass(frozen=True, eq=False)
class Catalogue:
    """One compiled catalogue (compared by identity). ``table`` maps domains to
    entries ("off" entries included: a more specific domain can carve a host out of
    a catalogued one), ``paths`` domains to (path prefix, entry) pairs, ``allow``
    the hosts never held. ``literals`` are the domains the prefilter finds;
    ``prefilter`` finds them and the signatures (patterns: literals, then
    signatures, in this order)."""

    table: DomainTable[Entry]
    paths: Mapping[str, tuple[tuple[str, Entry], ...]]
    allow: DomainTable[bool]
    signatures: tuple[Signature, ...]
    literals: tuple[str, ...]
    prefilter: Prefilter
    enabled: bool
    file: str
    digest: str

    def own_entities(self, hosts: Iterable[str | None]) -> frozenset[str]:
        """The entities of the site's own ``hosts`` (the page's, ``first_party``): the
        catalogue leaves them alone, and the inventory lists them as first-party (a
        publisher the catalogue files under a tracking category names its own
        static hosts)."""
        entries = (self.lookup(h) for h in hosts if h)
        return frozenset(e.entity for e in entries if e is not None)

    def lookup(self, host: str, path: str = "/") -> Entry | None:
        """The entry for a URL's host (as ``url_target`` gives it) and path, or None
        when it is not catalogued, switched off or allowed. An entry with a path
        (``google.com/maps``) wins over the host's own; otherwise the most specific
        domain wins, an "off" one included."""
        if self.allow.lookup(host) is not None:
            return None
        entry: Entry | None = None
        if self.paths:
            entry = self._by_path(host, path)
        if entry is None:
            found = self.table.lookup(host)
            entry = found[1] if found is not None else None
        return None if entry is None or entry.category == OFF else entry

    def _by_path(self, host: str, path: str) -> Entry | None:
        for suffix in _suffixes(host):
            for prefix, entry in self.paths.get(suffix, ()):
                if path == prefix or path.startswith(prefix.rstrip("/") + "/"):
                    return entry
        return None

    def signature(self, index: int) -> Signature | None:
        """The signature a prefilter hit's pattern index names (None: a domain)."""
        at = index - len(self.literals)
        return self.signatures[at] if at >= 0 else None

    @property
    def categories(self) -> frozenset[str]:
        """The consent categories something in the catalogue needs."""
        found = {e.category for e in self.table.values()}
        found |= {e.category for rules in self.paths.values() for _, e in rules}
        found |= {s.category for s in self.signatures}
        return frozenset(found - {OFF})


def _suffixes(host: str) -> Iterator[str]:
    yield host
    dot = host.find(".")
    while dot != -1:
        yield host[dot + 1 :]
        dot = host.find(".", dot + 1)


# -- the data -------------------------------------------------------------------------


@dataclass(frozen=True)
class Entity:
    """One third-party-web entity as the data file keeps it."""

    name: str
    category: str
    domains: tuple[str, ...]


DATA_FILE = "proxy/consent/data/third-party-web.json"


@functools.cache
def builtin_entities() -> tuple[Entity, ...]:
    """The vendored third-party-web entities (read once per process)."""
    text = resources.files("proxy.consent").joinpath("data", "third-party-web.json")
    return parse_entities(text.read_text(encoding="utf-8"), DATA_FILE)


def parse_entities(text: str, file: str) -> tuple[Entity, ...]:
    """The entities of a data file written by tools/update_catalogue.py; ValueError
    naming the file and the entity on anything else."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"{file}: not JSON: {exc}") from None
    items = data.get("entities") if isinstance(data, dict) else None
    if not isinstance(items, list):
        raise ValueError(f"{file}: expected an object with an 'entities' list")
    out = []
    for i, item in enumerate(items):
        name = item.get("name") if isinstance(item, dict) else None
        category = item.get("category") if isinstance(item, dict) else None
        domains = item.get("domains") if isinstance(item, dict) else None
        if not isinstance(name, str) or not isinstance(category, str):
            raise ValueError(f"{file}: entity #{i}: expected string 'name' and 'category'")
        if not isinstance(domains, list) or not all(isinstance(d, str) for d in domains):
            raise ValueError(f"{file}: entity #{i} ({name}): expected a list of domains")
        out.append(Entity(name, category, tuple(domains)))
    return tuple(out)


# -- the table --------------------------------------------------------------------------


def builtin_path() -> Path:
    """The shipped table: catalogue.toml beside the built-in rules (in the installed
    package, or the checkout's rules/)."""
    from proxy.consent.layers import builtin_directory

    return builtin_directory() / FILE


@functools.lru_cache(maxsize=4)
def compiled_catalogue(text: str, file: str) -> Catalogue:
    """``parse_catalogue`` remembered by text: a rules generation whose table did not
    change reuses the compiled one (compiling takes a few hundred ms)."""
    return parse_catalogue(text, file)


def load_catalogue(
    path: str | Path | None = None,
    *,
    first_party: Iterable[str] = (),
    engine: str = "auto",
) -> Catalogue:
    """Read and compile a catalogue table (default: the shipped one). ``first_party``
    hosts join its allow list (the site's own hosts are never third parties)."""
    path = Path(path) if path is not None else builtin_path()
    try:
        text = path.read_bytes().decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RuleError(str(path), None, "file", f"cannot be read as UTF-8: {exc}") from None
    return parse_catalogue(text, str(path), first_party=first_party, engine=engine)


def parse_catalogue(
    text: str,
    file: str,
    *,
    entities: tuple[Entity, ...] | None = None,
    first_party: Iterable[str] = (),
    engine: str = "auto",
) -> Catalogue:
    """Validate a table's text and compile it over ``entities`` (default: the
    built-in data). RuleError on the first problem."""
    entities = builtin_entities() if entities is None else entities
    table = Table(text, file)
    data = table.data
    for key in data:
        if key not in _TOP_KEYS:
            raise table.error(key, f"unknown key; expected one of {', '.join(sorted(_TOP_KEYS))}")
    enabled = data.get("enabled", True)
    if not isinstance(enabled, bool):
        raise table.error("enabled", f"{enabled!r} is not true or false")
    description = data.get("description", "")
    if not isinstance(description, str):
        raise table.error("description", "expected a string")
    allow = [*table.hosts("allow"), *filter(None, map(normalize_host, first_party))]
    disabled = set(table.strings("disabled_categories"))
    for category in disabled:
        if category not in CATEGORIES:
            raise table.error(
                "disabled_categories",
                f"{category!r} is not a category; expected some of {', '.join(CATEGORIES)}",
            )
    by_source = table.mapping("categories", {e.category for e in entities})
    by_entity = table.mapping("entities", {e.name for e in entities})
    entries: dict[str, Entry] = {}
    for entity in entities if enabled else ():
        category = by_entity.get(entity.name, by_source.get(entity.category, OFF))
        category = OFF if category in disabled else category
        for domain in entity.domains:
            normal = normalize_host(domain.strip().removeprefix("*."))
            if not normal:
                continue
            entry = Entry(entity.name, category, entity.category, normal)
            before = entries.get(normal)
            if before is None or _PRECEDENCE.index(category) < _PRECEDENCE.index(before.category):
                entries[normal] = entry
    paths: dict[str, list[tuple[str, Entry]]] = {}
    for domain, path, entity_name, category in table.additions():
        if not enabled:
            continue
        category = OFF if category in disabled else category
        entry = Entry(entity_name, category, FILE, domain + (path or ""))
        if path is None:
            entries[domain] = entry
        else:
            paths.setdefault(domain, []).append((path, entry))
    signatures = tuple(s for s in table.signatures() if enabled and s.category not in disabled)
    literals = sorted(
        {d for d, e in entries.items() if e.category != OFF}
        | {d for d, rules in paths.items() if any(e.category != OFF for _, e in rules)}
    )
    patterns = [Pattern(d.encode("ascii"), True) for d in literals]
    patterns += [Pattern(s.text.encode("utf-8"), False) for s in signatures]
    digest = hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()[:12]
    return Catalogue(
        table=DomainTable(entries.items()),
        paths=MappingProxyType(
            {d: tuple(sorted(rules, key=lambda r: -len(r[0]))) for d, rules in paths.items()}
        ),
        allow=DomainTable((h, True) for h in allow),
        signatures=signatures,
        literals=tuple(literals),
        prefilter=build_prefilter(patterns, engine),
        enabled=enabled,
        file=file,
        digest=digest,
    )
