"""The catalogue's mapping table (``rules/catalogue.toml``) read and validated: each
value checked as it is taken, every problem a ``RuleError`` naming the file, the
line, the key and what was expected. The format is documented in rules/README.md.
"""

from __future__ import annotations

import difflib
import json
import re
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from proxy.consent.rules import RuleError
from proxy.consent.urls import normalize_host

CATEGORIES = ("preferences", "analytics", "advertising", "social", "media")
OFF = "off"
_DOMAIN = re.compile(r"(?=.{1,253}$)([a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?\.)+[a-z0-9-]{2,63}")
_PATH = re.compile(r"/[\x21-\x7e]*")
_MIN_SIGNATURE = 4  # shorter ones hit too often to be worth a closer look


@dataclass(frozen=True)
class Signature:
    """Text that marks an inline script as a vendor's tag (matched as written)."""

    text: str
    entity: str
    category: str


def _suggest(name: str, known: set[str]) -> str:
    """``; did you mean ...?`` naming the closest known names, or nothing."""
    lowered = {k.lower(): k for k in known}
    close = [lowered[name.lower()]] if name.lower() in lowered else []
    close = close or difflib.get_close_matches(name, sorted(known), n=3, cutoff=0.6)
    return f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""


class Table:
    """A catalogue table's TOML, its values validated as they are read; the
    line of each key for messages."""

    def __init__(self, text: str, file: str) -> None:
        self.file = file
        if "\0" in text:
            raise RuleError(file, None, "file", "contains a NUL byte")
        try:
            self.data: dict[str, Any] = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            line = re.search(r"line (\d+)", str(exc))
            raise RuleError(file, int(line.group(1)) if line else None, "toml", str(exc)) from None
        self.lines = text.splitlines()

    def line(self, key: str, table: str | None = None, index: int | None = None) -> int | None:
        """The line of ``key`` at the top, in ``[table]``, or in the index-th
        ``[[table]]``; the table's header line when the key is not written there."""
        start = 0
        if table is not None:
            brackets = (r"\[", r"\]") if index is None else (r"\[\[", r"\]\]")
            header = re.compile(rf"\s*{brackets[0]}\s*{re.escape(table)}\s*{brackets[1]}")
            heads = [i for i, text in enumerate(self.lines) if header.match(text)]
            if len(heads) <= (index or 0):
                return None
            start = heads[index or 0]
        name = re.escape(key)
        key_re = re.compile(rf"\s*(\"{name}\"|'{name}'|{name})\s*=")
        for i in range(start, len(self.lines)):
            starts_table = re.match(r"\s*\[", self.lines[i]) is not None
            if starts_table and (i > start or table is None):
                break
            if key_re.match(self.lines[i]):
                return i + 1
        return start + 1 if table is not None else None

    def error(
        self, key: str, problem: str, table: str | None = None, index: int | None = None
    ) -> RuleError:
        if table is None:
            name = key
        elif index is None:
            name = f"{table}.{_key(key)}"
        else:
            name = f"{table}[{index}].{key}"
        return RuleError(self.file, self.line(key, table, index), name, problem)

    def strings(self, key: str) -> list[str]:
        value = self.data.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise self.error(key, "expected a list of non-empty strings")
        return value

    def hosts(self, key: str) -> list[str]:
        out = []
        for value in self.strings(key):
            host = normalize_host(value.strip().removeprefix("*."))
            if host is None or not _DOMAIN.fullmatch(host):
                raise self.error(key, f"{value!r} is not a host name like cdn.example.com")
            out.append(host)
        return out

    def mapping(self, name: str, known: set[str]) -> dict[str, str]:
        """A ``[name]`` table of keys from ``known`` to a consent category or "off"."""
        value = self.data.get(name, {})
        if not isinstance(value, dict):
            raise self.error(name, "expected a table of names to categories")
        what = "category" if name == "categories" else "entity"
        for key, category in value.items():
            if key not in known:
                listing = f"; expected one of {', '.join(sorted(known))}" if len(known) < 30 else ""
                raise self.error(
                    key,
                    f"not a third-party-web {what}{listing or _suggest(key, known)}",
                    name,
                )
            if category != OFF and category not in CATEGORIES:
                raise self.error(
                    key,
                    f"{category!r} is not a category; expected one of "
                    f"{', '.join(CATEGORIES)} or {OFF!r}",
                    name,
                )
        return dict(value)

    def tables(self, name: str) -> list[dict[str, Any]]:
        value = self.data.get(name, [])
        if not isinstance(value, list) or not all(isinstance(t, dict) for t in value):
            raise self.error(name, f"expected [[{name}]] tables")
        return value

    def field(self, item: dict[str, Any], key: str, name: str, index: int) -> str:
        value = item.get(key)
        if not isinstance(value, str) or not value.strip() or any(c in value for c in "\r\n\0"):
            raise self.error(key, "expected a non-empty string on one line", name, index)
        return value

    def known(self, item: dict[str, Any], keys: set[str], name: str, index: int) -> None:
        for key in item:
            if key not in keys:
                raise self.error(
                    key, f"unknown key; expected one of {', '.join(sorted(keys))}", name, index
                )

    def category(self, item: dict[str, Any], name: str, index: int, off: bool) -> str:
        value = self.field(item, "category", name, index)
        allowed = (*CATEGORIES, OFF) if off else CATEGORIES
        if value not in allowed:
            raise self.error(
                "category",
                f"{value!r} is not a category; expected one of {', '.join(allowed)}",
                name,
                index,
            )
        return value

    def additions(self) -> Iterator[tuple[str, str | None, str, str]]:
        """(domain, path or None, entity, category) of each ``[[add]]``."""
        for i, item in enumerate(self.tables("add")):
            self.known(item, {"domain", "entity", "category"}, "add", i)
            raw = self.field(item, "domain", "add", i).strip()
            host_part, slash, rest = raw.partition("/")
            host = normalize_host(host_part.removeprefix("*."))
            path = slash + rest if slash else None
            if host is None or not _DOMAIN.fullmatch(host) or (path and not _PATH.fullmatch(path)):
                raise self.error(
                    "domain",
                    f"{raw!r} is not a domain like ads.example.com, optionally with a path "
                    "like example.com/maps",
                    "add",
                    i,
                )
            entity = self.field(item, "entity", "add", i)
            yield host, path, entity, self.category(item, "add", i, True)

    def signatures(self) -> Iterator[Signature]:
        for i, item in enumerate(self.tables("signature")):
            self.known(item, {"text", "entity", "category"}, "signature", i)
            text = self.field(item, "text", "signature", i)
            if len(text) < _MIN_SIGNATURE:
                raise self.error(
                    "text",
                    f"{text!r} is too short; expected at least {_MIN_SIGNATURE} characters",
                    "signature",
                    i,
                )
            entity = self.field(item, "entity", "signature", i)
            yield Signature(text, entity, self.category(item, "signature", i, False))


def _key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else json.dumps(key)
