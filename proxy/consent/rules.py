"""Rule files: ``Rule``/``RuleSet`` records, loading and validating ``rules/*.toml``.

One TOML file per vendor; the file name is the rule id. Every problem is reported as
a ``RuleError`` naming the file, the line (where it can be found), the key and what
was expected. The format is documented in rules/README.md.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from proxy.consent.model import OPTIONAL
from proxy.html import lexer
from proxy.html.selectors import SelectorError, parse_selector

if TYPE_CHECKING:
    from proxy.consent.catalogue import Catalogue

ACTIONS = ("remove", "placeholder")
PLACES = ("head-start", "head-end", "body-end")
# Google Consent Mode v2, for rules that cover Google tags (see consent_mode.py).
CONSENT_MODES = ("off", "basic", "advanced")
_TOP_KEYS = {
    "name",
    "category",
    "enabled",
    "description",
    "consent_mode",
    "block",
    "inject",
    "cookies",
    "example",
}
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


class _Lines:
    """Finds the line of a key in a TOML text, for messages (TOML gives no positions)."""

    def __init__(self, text: str) -> None:
        self.lines = text.splitlines()

    def of(self, key: str, table: str | None = None, index: int = 0) -> int | None:
        start = 0
        if table is not None:
            heads = [
                i for i, ln in enumerate(self.lines) if re.match(rf"\s*\[\[\s*{table}\s*\]\]", ln)
            ]
            if index >= len(heads):
                return None
            start = heads[index]
            if key == f"[[{table}]]":
                return start + 1
        for i in range(start, len(self.lines)):
            if i > start and table is not None and re.match(r"\s*\[", self.lines[i]):
                break
            if table is None and re.match(r"\s*\[", self.lines[i]):
                break
            if re.match(rf"\s*{re.escape(key)}\s*=", self.lines[i]):
                return i + 1
        return start + 1 if table is not None else None


def _single_line(value: str) -> bool:
    return not any(c in value for c in "\r\n\0")


def parse_rule(rule_id: str, text: str, file: str) -> Rule:
    """Validate one rule file's text; raise RuleError on the first problem."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        line = re.search(r"line (\d+)", str(exc))
        raise RuleError(file, int(line.group(1)) if line else None, "toml", str(exc)) from None
    lines = _Lines(text)
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
    name = _text(data, "name", fail, required=True)
    category = _text(data, "category", fail, required=True)
    if category not in OPTIONAL:
        raise fail(
            "category", f"{category!r} is not a category; expected one of {', '.join(OPTIONAL)}"
        )
    enabled = data.get("enabled", True)
    if not isinstance(enabled, bool):
        raise fail("enabled", f"{enabled!r} is not true or false")
    description = data.get("description", "")
    if not isinstance(description, str) or "\0" in description:
        raise fail("description", "expected a string")
    consent_mode = data.get("consent_mode")
    if consent_mode is not None and consent_mode not in CONSENT_MODES:
        raise fail(
            "consent_mode",
            f"{consent_mode!r} is not a Consent Mode; expected one of {', '.join(CONSENT_MODES)}",
        )
    blocks = tuple(_block(t, i, fail) for i, t in enumerate(_tables(data, "block", fail)))
    notes = [
        f"{file}:{lines.of('hosts', 'block', i)}: block[{i}].hosts: still read; "
        "its new name is url_hosts"
        for i, table in enumerate(_tables(data, "block", fail))
        if "hosts" in table
    ]
    injects = tuple(_inject(t, i, fail) for i, t in enumerate(_tables(data, "inject", fail)))
    cookies: list[str] = []
    for i, table in enumerate(_tables(data, "cookies", fail)):
        _known(table, _COOKIE_KEYS, "cookies", i, fail)
        for pattern in _strings(table, "names", "cookies", i, fail):
            if not COOKIE_NAME.fullmatch(pattern.replace("*", "x")):
                raise fail(
                    "names",
                    f"{pattern!r} is not a cookie name (a * may stand for any text)",
                    "cookies",
                    i,
                )
            cookies.append(pattern)
    examples = []
    for i, table in enumerate(_tables(data, "example", fail)):
        _known(table, _EXAMPLE_KEYS, "example", i, fail)
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
        raise fail("block", "a rule needs at least one [[block]] or [[inject]]")
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
    )


def _text(
    data: dict[str, Any],
    key: str,
    fail: Any,
    required: bool = False,
    table: str | None = None,
    index: int = 0,
) -> str:
    value = data.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or not value.strip():
        raise fail(key, "expected a non-empty string", table, index)
    if not _single_line(value):
        raise fail(key, "must not contain CR, LF or NUL", table, index)
    return value


def _tables(data: dict[str, Any], key: str, fail: Any) -> list[dict[str, Any]]:
    value = data.get(key, [])
    if not isinstance(value, list) or not all(isinstance(t, dict) for t in value):
        raise fail(key, f"expected [[{key}]] tables")
    return value


def _known(table: dict[str, Any], allowed: set[str], name: str, index: int, fail: Any) -> None:
    for key in table:
        if key not in allowed:
            raise fail(
                key, f"unknown key; expected one of {', '.join(sorted(allowed))}", name, index
            )


def _strings(table: dict[str, Any], key: str, name: str, index: int, fail: Any) -> tuple[str, ...]:
    value = table.get(key, [])
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise fail(key, "expected a list of non-empty strings", name, index)
    for v in value:
        if not _single_line(v):
            raise fail(key, f"{v!r} must not contain CR, LF or NUL", name, index)
    return tuple(value)


def _block(table: dict[str, Any], index: int, fail: Any) -> Block:
    _known(table, _BLOCK_KEYS, "block", index, fail)
    selector = _text(table, "selector", fail, required=True, table="block", index=index)
    try:
        complexes = parse_selector(selector)
    except SelectorError as exc:
        raise fail("selector", str(exc), "block", index) from None
    contains = _strings(table, "contains", "block", index, fail)
    if contains and not all(cx.subject.tag in lexer.RAWTEXT for cx in complexes):
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
    hosts = tuple(h.lower() for h in _strings(table, key, "block", index, fail))
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
    _known(table, _INJECT_KEYS, "inject", index, fail)
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


def unbalanced(html: str) -> str | None:
    """Why a fragment of HTML would not close what it opens, or None if it does."""
    stack: list[str] = []
    data = html.encode("utf-8", "surrogateescape")
    pos = 0
    while True:
        lt = data.find(b"<", pos)
        if lt < 0:
            break
        if data.startswith(b"<!--", lt):
            end = data.find(b"-->", lt + 4)
            if end < 0:
                return "an HTML comment is not closed"
            pos = end + 3
            continue
        m = lexer.TAG.match(data, lt)
        if m is None:
            if re.match(rb"</?[A-Za-z]", data[lt:]):
                return "a tag is not closed with '>'"
            pos = lt + 1
            continue
        name = m.group(2).lower().decode("latin-1")
        pos = m.end()
        if m.group(1):
            if not stack or stack[-1] != name:
                return f"</{name}> does not close the element opened last"
            stack.pop()
        elif name in lexer.RAWTEXT:
            close = lexer.RAW_END[name].search(data, pos)
            if close is None:
                return f"<{name}> is not closed"
            pos = close.start()
            stack.append(name)
        elif name not in lexer.VOID and not m.group(0).endswith(b"/>"):
            stack.append(name)
    return f"<{stack[-1]}> is not closed" if stack else None


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
    if errors:
        errors[0].others = errors[1:]
        raise errors[0]
    digest = hashlib.sha256()
    for name, text in sorted(files.items()):
        digest.update(name.encode() + b"\0" + text.encode("utf-8", "surrogateescape") + b"\0")
    return RuleSet(tuple(rules), digest.hexdigest()[:12], catalogue)


def load_rules(directory: str | Path) -> RuleSet:
    path = Path(directory)
    if not path.is_dir():
        raise RuleError(str(directory), None, "rules", "is not a directory")
    return build_ruleset(read_dir(path), str(directory))


def all_errors(exc: RuleError) -> list[RuleError]:
    return [exc, *exc.others]
