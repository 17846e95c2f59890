"""Compile the supported CSS selector subset into predicates over elements.

Supported: type, ``*``, ``#id``, ``.class``, ``[attr]``, ``[attr=v]``, ``[attr~=v]``,
``[attr|=v]``, ``[attr^=v]``, ``[attr$=v]``, ``[attr*=v]`` (each with an optional
``i`` flag), ``:not(compound)``, selector lists and the descendant and child
combinators. Anything else raises :class:`SelectorError` naming the selector.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NamedTuple, Protocol

from proxy.html.skip import Needle  # a selector's always names its attribute

SUPPORTED = (
    "type, *, #id, .class, [attr], [attr=v], [attr~=v], [attr|=v], [attr^=v], "
    "[attr$=v], [attr*=v], the i flag, :not(compound), selector lists, "
    "descendant (space) and child (>) combinators"
)


class SelectorError(ValueError):
    """A selector outside the supported subset, or malformed."""


class ElementLike(Protocol):
    """What a selector looks at: a lower-case tag name and attribute lookup."""

    @property
    def tag(self) -> str: ...

    def get(self, name: str) -> str | None: ...


Predicate = Callable[[ElementLike], bool]

_IDENT = r"-?(?:[A-Za-z_]|[^\x00-\x7f]|\\.)(?:[-\w]|[^\x00-\x7f]|\\.)*"
_TOKEN = re.compile(
    rf"""
    (?P<ws>\s+)
  | (?P<comma>,)
  | (?P<child>>)
  | (?P<star>\*)
  | (?P<type>{_IDENT})
  | \#(?P<id>{_IDENT})
  | \.(?P<cls>{_IDENT})
  | \[\s*(?P<attr>{_IDENT})\s*
      (?:(?P<op>[~|^$*]?=)\s*
         (?:"(?P<dq>[^"]*)"|'(?P<sq>[^']*)'|(?P<bare>{_IDENT}))\s*
         (?P<flag>[iIsS])?\s*)?\]
  | (?P<not>:not\()
  | (?P<close>\))
    """,
    re.VERBOSE,
)
_WS = " \t\n\r\f"


def _unescape(ident: str) -> str:
    return re.sub(r"\\(.)", r"\1", ident)


def _attr_test(name: str, op: str | None, value: str, ci: bool) -> Predicate:
    if ci:
        value = value.lower()

    def norm(v: str) -> str:
        return v.lower() if ci else v

    if op is None:
        return lambda el: el.get(name) is not None
    if op in ("^=", "$=", "*=") and not value:
        return lambda el: False
    tests: dict[str, Callable[[str], bool]] = {
        "=": lambda v: norm(v) == value,
        "~=": lambda v: value in norm(v).split(),
        "|=": lambda v: norm(v) == value or norm(v).startswith(value + "-"),
        "^=": lambda v: norm(v).startswith(value),
        "$=": lambda v: norm(v).endswith(value),
        "*=": lambda v: value in norm(v),
    }
    test = tests[op]

    def pred(el: ElementLike) -> bool:
        got = el.get(name)
        return got is not None and test(got)

    return pred


class Condition(NamedTuple):
    """One attribute test of a compound as written, for tools that reason about
    selectors (which rules can pick the same element); ``negated`` inside ``:not()``."""

    attr: str
    op: str | None  # None: the attribute is present
    value: str
    ci: bool
    negated: bool = False


def _negate(inner: Compound) -> Predicate:
    return lambda el: not inner.matches(el)


@dataclass(frozen=True)
class Compound:
    """One compound selector: an optional type and a list of conditions."""

    tag: str | None
    tests: tuple[Predicate, ...]
    needles: tuple[Needle, ...] = ()
    # The tests as written; a :not() of anything but one attribute test is left out.
    conditions: tuple[Condition, ...] = ()

    @property
    def needle(self) -> Needle | None:
        """A string that every matching start tag contains (in any letter case when
        the flag says so) unless the tag has a character reference; None if none."""
        return max(self.needles, key=lambda n: len(n[0])) if self.needles else None

    def matches(self, el: ElementLike) -> bool:
        if self.tag is not None and el.tag != self.tag:
            return False
        for test in self.tests:  # noqa: SIM110 (a loop costs less than all() of a generator)
            if not test(el):
                return False
        return True


@dataclass(frozen=True)
class Complex:
    """Compounds joined by combinators, subject last. ``links[i]`` joins ``parts[i]``
    to ``parts[i + 1]`` and is ``" "`` (descendant) or ``">"`` (child)."""

    text: str
    parts: tuple[Compound, ...]
    links: tuple[str, ...]

    @property
    def subject(self) -> Compound:
        return self.parts[-1]

    def matches(self, el: ElementLike, ancestors: Sequence[ElementLike]) -> bool:
        """``ancestors`` are the open elements around ``el``, outermost first. The
        definition, by backtracking over the ancestors (tests check against it); the
        rewriter gets the same answers from :mod:`proxy.html.matcher` without the walk."""
        if not self.subject.matches(el):
            return False
        return self._match_from(len(self.parts) - 2, ancestors, len(ancestors))

    def _match_from(self, i: int, ancestors: Sequence[ElementLike], limit: int) -> bool:
        if i < 0:
            return True
        part, link = self.parts[i], self.links[i]
        if link == ">":
            return (
                limit > 0
                and part.matches(ancestors[limit - 1])
                and self._match_from(i - 1, ancestors, limit - 1)
            )
        return any(
            part.matches(ancestors[j]) and self._match_from(i - 1, ancestors, j)
            for j in range(limit - 1, -1, -1)
        )


def _fail(text: str, pos: int, what: str) -> SelectorError:
    return SelectorError(f"selector {text!r}: {what} at position {pos}; supported: {SUPPORTED}")


def _parse_compound(text: str, pos: int, nested: bool) -> tuple[Compound, int]:
    tag: str | None = None
    tests: list[Predicate] = []
    needles: list[Needle] = []
    conditions: list[Condition] = []
    start = pos
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            raise _fail(text, pos, f"unsupported syntax {text[pos : pos + 12]!r}")
        kind = m.lastgroup if m.group("attr") is None else "attr"
        if kind in ("ws", "comma", "child", "close"):
            break
        if kind in ("type", "star"):
            if pos != start:
                raise _fail(text, pos, "a type selector must come first in a compound")
            tag = None if kind == "star" else _unescape(m.group("type")).lower()
        elif kind == "id":
            ident = _unescape(m.group("id"))
            needles.append((ident, False, "id"))
            tests.append(_attr_test("id", "=", ident, False))
            conditions.append(Condition("id", "=", ident, False))
        elif kind == "cls":
            ident = _unescape(m.group("cls"))
            needles.append((ident, False, "class"))
            tests.append(_attr_test("class", "~=", ident, False))
            conditions.append(Condition("class", "~=", ident, False))
        elif kind == "attr":
            value = m.group("dq") if m.group("dq") is not None else m.group("sq")
            if value is None:
                value = _unescape(m.group("bare") or "")
            flag = (m.group("flag") or "").lower()
            attr = _unescape(m.group("attr")).lower()
            if m.group("op") and value:  # a name alone gives none: needles are values
                needles.append((value, flag == "i", attr))
            tests.append(_attr_test(attr, m.group("op"), value, flag == "i"))
            conditions.append(Condition(attr, m.group("op"), value, flag == "i"))
        elif kind == "not":
            if nested:
                raise _fail(text, pos, ":not() cannot nest")
            inner, end = _parse_compound(text, m.end(), nested=True)
            close = _TOKEN.match(text, end)
            if close is None or close.lastgroup != "close":
                raise _fail(text, end, "expected ')' closing :not(")
            tests.append(_negate(inner))
            if inner.tag is None and len(inner.conditions) == 1:
                conditions.append(inner.conditions[0]._replace(negated=True))
            pos = close.end()
            continue
        pos = m.end()
    if pos == start:
        raise _fail(text, pos, "expected a compound selector")
    return Compound(tag, tuple(tests), tuple(needles), tuple(conditions)), pos


@functools.lru_cache(maxsize=1024)
def parse_selector(text: str) -> tuple[Complex, ...]:
    """Parse a selector list into complex selectors; raise SelectorError if unsupported."""
    result: list[Complex] = []
    for piece_start, piece in _split_list(text):
        parts: list[Compound] = []
        links: list[str] = []
        pos = 0
        while True:
            while pos < len(piece) and piece[pos] in _WS:
                pos += 1
            if pos >= len(piece):
                break
            if parts:
                link = " "
                if piece[pos] == ">":
                    link = ">"
                    pos += 1
                    while pos < len(piece) and piece[pos] in _WS:
                        pos += 1
                elif piece[pos - 1] not in _WS:
                    raise _fail(text, piece_start + pos, "expected a combinator")
                links.append(link)
            compound, pos = _parse_compound(piece, pos, nested=False)
            parts.append(compound)
        if not parts or len(links) != len(parts) - 1:
            raise _fail(text, piece_start, "empty selector")
        result.append(Complex(piece.strip(), tuple(parts), tuple(links)))
    return tuple(result)


def _split_list(text: str) -> list[tuple[int, str]]:
    """Split on top-level commas (outside brackets, quotes and parentheses)."""
    pieces: list[tuple[int, str]] = []
    depth, quote, start = 0, "", 0
    for i, ch in enumerate(text):
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "\"'":
            quote = ch
        elif ch in "[(":
            depth += 1
        elif ch in "])":
            depth -= 1
        elif ch == "," and depth == 0:
            pieces.append((start, text[start:i]))
            start = i + 1
    pieces.append((start, text[start:]))
    return pieces
