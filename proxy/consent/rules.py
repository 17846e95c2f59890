"""Rule files: ``Rule``/``RuleSet`` records, loading and validating ``rules/*.toml``.

One TOML file per vendor; the file name is the rule id. Every problem is reported as
a ``RuleError`` naming the file, the line (where it can be found), the key and what
was expected. The format is documented in rules/README.md.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from proxy.consent import rule_fields, standins
from proxy.consent.toml_lines import KeyLines
from proxy.html import spec
from proxy.html.fragments import unbalanced
from proxy.html.selectors import SelectorError, parse_selector

if TYPE_CHECKING:
    from proxy.consent.catalogue import Catalogue

ACTIONS = ("remove", "placeholder")
PLACES = ("head-start", "head-end", "body-end")
# Google Consent Mode v2, for rules that cover Google tags (see consent_mode.py).
CONSENT_MODES = rule_fields.CONSENT_MODES
_TOP_KEYS = {"name", "category", "enabled", "description", "consent_mode", "surrogate"}
_TOP_KEYS |= {"block", "inject", "cookies", "example"}
_BLOCK_KEYS = {"selector", "contains", "url_hosts", "hosts", "action"}
_INJECT_KEYS = {"where", "html"}
_COOKIE_KEYS = {"names"}
_EXAMPLE_KEYS = {"html", "consent", "expected"}
_HOST = re.compile(r"(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}")
# RFC 6265's cookie-name (an RFC 9110 token); choices.py expires only such names too.
COOKIE_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


class RuleError(ValueError):
    """A rule file that does not validate; ``str()`` reads ``file:line: key: problem``."""

    def __init__(self, file: str, line: int | None, key: str, problem: str) -> None:
        self.file, self.line, self.key, self.problem = file, line, key, problem
        self.others: list[RuleError] = []  # further problems found in the same load
        where = f"{file}:{line}" if line else file
        super().__init__(f"{where}: {key}: {problem}")


@dataclass(frozen=True)
class Block:
    """Elements to strip or hold while the rule's category is not granted."""

    selector: str
    contains: tuple[str, ...]  # the element's text holds one (raw-text elements)
    hosts: tuple[str, ...]  # a URL attribute points at one (``url_hosts`` in the file)
    action: str


@dataclass(frozen=True)
class Inject:
    where: str
    html: str


@dataclass(frozen=True)
class Example:
    html: str
    consent: str
    expected: str
    line: int | None


@dataclass(frozen=True)
class Rule:
    id: str
    name: str
    category: str
    enabled: bool
    description: str
    blocks: tuple[Block, ...]
    injects: tuple[Inject, ...]
    cookies: tuple[str, ...]
    examples: tuple[Example, ...]
    file: str
    notes: tuple[str, ...] = ()  # what the file still says the old way (check shows them)
    consent_mode: str | None = None  # None: not a Google rule (consent_mode.py)
    source: str = "added"  # built-in | override | added (proxy.consent.layers)
    surrogates: tuple[str, ...] = ()  # stand-ins for what it removes (see standins.py)


@dataclass(frozen=True)
class RuleSet:
    """A consistent set of rules; ``generation`` names its exact file contents.
    ``catalogue``: the built-in catalogue of third parties as this set's
    ``catalogue.toml`` (or the shipped one) classifies it; None: none at all."""

    rules: tuple[Rule, ...]
    generation: str
    catalogue: Catalogue | None = None

    @property
    def active(self) -> tuple[Rule, ...]:
        return tuple(r for r in self.rules if r.enabled)


EMPTY = RuleSet((), "empty")


def parse_rule(rule_id: str, text: str, file: str, base: Rule | None = None) -> Rule:
    """Validate one rule file's text; raise RuleError on the first problem.

    ``base``: the built-in rule this file overrides. A file without ``[[block]]`` or
    ``[[inject]]`` then only switches it (see ``_switch``); one with them replaces it."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        line = re.search(r"line (\d+)", str(exc))
        raise RuleError(file, int(line.group(1)) if line else None, "toml", str(exc)) from None
    lines = KeyLines(text)
    if "\0" in text:
        raise RuleError(file, None, "file", "contains a NUL byte")

    def fail(key: str, problem: str, table: str | None = None, index: int = 0) -> RuleError:
        return RuleError(
            file,
            lines.of(key, table, index),
            key if table is None else f"{table}[{index}].{key}",
            problem,
        )

    for key in data:
        if key not in _TOP_KEYS:
            raise fail(key, f"unknown key; expected one of {', '.join(sorted(_TOP_KEYS))}")
    if "block" not in data and "inject" not in data:
        if base is not None:
            return _switch(base, data, fail, file)
        if data.keys() <= _SWITCH_KEYS and "name" not in data:
            raise fail(
                next(iter(data), "enabled"),
                f"no built-in rule is named {rule_id!r}: a file that only switches a rule "
                "must be named after a built-in rule (see `consent-proxy rules`); a new "
                "rule needs name, category and a [[block]] or [[inject]]",
            )
    name = rule_fields.text(data, "name", fail, required=True)
    rule_fields.text(data, "category", fail, required=True)
    category, enabled, description, consent_mode = rule_fields.top(data, fail, "", True, "", None)
    blocks = tuple(
        _block(t, i, fail) for i, t in enumerate(rule_fields.tables(data, "block", fail))
    )
    notes = [
        f"{file}:{lines.of('hosts', 'block', i)}: block[{i}].hosts: still read; "
        "its new name is url_hosts"
        for i, table in enumerate(rule_fields.tables(data, "block", fail))
        if "hosts" in table
    ]
    injects = tuple(
        _inject(t, i, fail) for i, t in enumerate(rule_fields.tables(data, "inject", fail))
    )
    cookies: list[str] = []
    for i, table in enumerate(rule_fields.tables(data, "cookies", fail)):
        rule_fields.known(table, _COOKIE_KEYS, "cookies", i, fail)
        for pattern in rule_fields.strings(table, "names", "cookies", i, fail):
            if not COOKIE_NAME.fullmatch(pattern.replace("*", "x")):
                raise fail(
                    "names",
                    f"{pattern!r} is not a cookie name (a * may stand for any text)",
                    "cookies",
                    i,
                )
            cookies.append(pattern)
    examples = []
    for i, table in enumerate(rule_fields.tables(data, "example", fail)):
        rule_fields.known(table, _EXAMPLE_KEYS, "example", i, fail)
        values = {}
        for key in _EXAMPLE_KEYS:
            value = table.get(key)
            if not isinstance(value, str):
                raise fail(key, "expected a string", "example", i)
            values[key] = value
        examples.append(
            Example(
                values["html"],
                values["consent"],
                values["expected"],
                lines.of("[[example]]", "example", i),
            )
        )
    if not blocks and not injects:
        raise fail(
            "block",
            "a rule needs at least one [[block]] or [[inject]] (a file that only sets "
            "enabled must be named after a built-in rule: see `consent-proxy rules`)",
        )
    return Rule(
        rule_id,
        name,
        category,
        enabled,
        description,
        blocks,
        injects,
        tuple(cookies),
        tuple(examples),
        file,
        tuple(notes),
        consent_mode,
        surrogates=standins.names(data.get("surrogate", []), bool(blocks), fail),
    )


_SWITCH_KEYS = {"enabled", "name", "category", "description", "consent_mode", "surrogate"}


def _switch(base: Rule, data: dict[str, Any], fail: Any, file: str) -> Rule:
    """An override file with no entries of its own: the built-in rule ``base`` with the
    top-level keys the file sets (``enabled = false`` turns it off)."""
    for key in data:
        if key not in _SWITCH_KEYS:
            raise fail(
                key,
                f"a file that switches the built-in rule {base.id!r} may only set "
                f"{', '.join(sorted(_SWITCH_KEYS))}; to replace the rule, give its "
                "[[block]] or [[inject]] entries too",
            )
    category, enabled, description, consent_mode = rule_fields.top(
        data, fail, base.category, base.enabled, base.description, base.consent_mode
    )
    name = rule_fields.text(data, "name", fail) or base.name
    surrogates = base.surrogates
    if "surrogate" in data:  # `surrogate = []` turns the rule's surrogates off
        surrogates = standins.names(data["surrogate"], bool(base.blocks), fail)
    return dataclasses.replace(
        base,
        name=name,
        category=category,
        enabled=enabled,
        description=description,
        consent_mode=consent_mode,
        surrogates=surrogates,
        file=file,
    )


def _block(table: dict[str, Any], index: int, fail: Any) -> Block:
    rule_fields.known(table, _BLOCK_KEYS, "block", index, fail)
    selector = rule_fields.text(table, "selector", fail, required=True, table="block", index=index)
    try:
        complexes = parse_selector(selector)
    except SelectorError as exc:
        raise fail("selector", str(exc), "block", index) from None
    contains = rule_fields.strings(table, "contains", "block", index, fail)
    if contains and not all(cx.subject.tag in spec.RAWTEXT for cx in complexes):
        raise fail(
            "contains",
            "looks at the text of script, style or other raw-text elements; "
            "the selector must name such an element",
            "block",
            index,
        )
    # url_hosts: the host of the URL an element's src, href, ... points at; "hosts" is
    # its old name, still read (a rule's notes say so).
    key = "hosts" if "hosts" in table else "url_hosts"
    if "hosts" in table and "url_hosts" in table:
        raise fail("hosts", "give url_hosts only (hosts is its old name)", "block", index)
    hosts = tuple(h.lower() for h in rule_fields.strings(table, key, "block", index, fail))
    for host in hosts:
        if not _HOST.fullmatch(host):
            raise fail(key, f"{host!r} is not a host name like example.com", "block", index)
    action = table.get("action", "remove")
    if action not in ACTIONS:
        raise fail(
            "action",
            f"{action!r} is not an action; expected one of {', '.join(ACTIONS)}",
            "block",
            index,
        )
    return Block(selector, contains, hosts, action)


def _inject(table: dict[str, Any], index: int, fail: Any) -> Inject:
    rule_fields.known(table, _INJECT_KEYS, "inject", index, fail)
    where = table.get("where")
    if where not in PLACES:
        raise fail(
            "where",
            f"{where!r} is not a place; expected one of {', '.join(PLACES)}",
            "inject",
            index,
        )
    html = table.get("html")
    if not isinstance(html, str) or not html.strip() or "\0" in html:
        raise fail("html", "expected a non-empty string of HTML", "inject", index)
    problem = unbalanced(html)
    if problem:
        raise fail("html", problem, "inject", index)
    return Inject(where, html)


CATALOGUE_FILE = "catalogue.toml"  # the catalogue's mapping table, beside the rules
IGNORED = re.compile(r"^(\.|#)|~$|\.(swp|swx|tmp|bak)$")


def read_dir(directory: Path) -> dict[str, str]:
    """The text of every rule file (name → text); editor temp files are skipped."""
    files: dict[str, str] = {}
    for path in sorted(directory.glob("*.toml")):
        if IGNORED.search(path.name) or not path.is_file():
            continue
        files[path.name] = path.read_bytes().decode("utf-8", "replace")
    return files


def build_ruleset(files: dict[str, str], directory: str) -> RuleSet:
    """Parse a snapshot of rule files; RuleError (with ``errors`` for all) on problems.
    ``catalogue.toml`` is not a vendor rule (proxy.consent.catalogue reads it; without
    one, the shipped table is used), but its text is part of the generation."""
    # Imported here: the catalogue reads RuleError and CATALOGUE_FILE from this module.
    from proxy.consent.catalogue import builtin_path, compiled_catalogue

    files = dict(files)
    table_file = f"{directory}/{CATALOGUE_FILE}"
    if CATALOGUE_FILE not in files:
        table_file = str(builtin_path())
        try:
            files[CATALOGUE_FILE] = builtin_path().read_text(encoding="utf-8")
        except OSError as exc:
            raise RuleError(table_file, None, "file", f"cannot be read: {exc}") from None
    rules, errors = [], []
    for name, text in sorted(files.items()):
        if name == CATALOGUE_FILE:
            continue
        try:
            rules.append(parse_rule(name[: -len(".toml")], text, f"{directory}/{name}"))
        except RuleError as exc:
            errors.append(exc)
    try:
        catalogue = compiled_catalogue(files[CATALOGUE_FILE], table_file)
    except RuleError as exc:
        errors.append(exc)
    raise_all(errors)
    return RuleSet(tuple(rules), generation_of(files), catalogue)


def load_rules(directory: str | Path) -> RuleSet:
    path = Path(directory)
    if not path.is_dir():
        raise RuleError(str(directory), None, "rules", "is not a directory")
    return build_ruleset(read_dir(path), str(directory))


def all_errors(exc: RuleError) -> list[RuleError]:
    return [exc, *exc.others]


def raise_all(errors: list[RuleError]) -> None:
    """Raise the first error carrying the others, if there are any."""
    if errors:
        errors[0].others = errors[1:]
        raise errors[0]


def generation_of(*layers: dict[str, str], extra: str = "") -> str:
    """A short digest naming exactly these rule files (name → text, per layer)."""
    digest = hashlib.sha256()
    for index, files in enumerate(layers):
        if index:
            digest.update(b"\1layer\0")
        for name, text in sorted(files.items()):
            digest.update(name.encode() + b"\0" + text.encode("utf-8", "surrogateescape") + b"\0")
    if extra:
        digest.update(b"\1" + extra.encode())
    return digest.hexdigest()[:12]
