"""What a list of selectors and hints compiles to: the rewriter's ``Program``.

Per tag name, the candidates (the handlers whose selectors have that subject type)
with the literals a matching tag must hold; the selector machine for combinators;
and the arguments of the two skip patterns (skip.py) that pass every other element
without stopping in Python. ``compile_program`` compiles a program once per list of
selectors and hints, shared by every rewriter that uses it.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from proxy.html import skip, spec
from proxy.html.element import Handler
from proxy.html.matcher import Machine
from proxy.html.selectors import Complex, parse_selector


class Hints(NamedTuple):
    """Literals that every element a handler acts on contains (any letter case): in an
    attribute value (character references decoded; only in the values of ``attrs``
    when given), or, for raw-text elements (script, style, ...), in their text. The
    rewriter passes every other element of the selector's type without looking
    closer, and never calls the handler for it."""

    tag: tuple[str, ...] = ()
    text: tuple[str, ...] = ()
    attrs: tuple[str, ...] = ()


# (selector, handler), (selector, handler, hints) or (selector, handler, tag hints).
HandlerSpec = tuple[str, Handler] | tuple[str, Handler, Hints | tuple[str, ...]]


@dataclass(frozen=True)
class _Candidate:
    """The complex selectors of one handler whose subject has a given tag."""

    index: int  # which handler
    selectors: tuple[int, ...]  # its complex selectors, numbered as in the machine
    # Every match contains one of these literals unless the tag has a character
    # reference; None when some selector has no literal to look for.
    exact: re.Pattern[bytes] | None
    any_case: re.Pattern[bytes] | None
    filtered: bool
    literals: frozenset[bytes]  # those of exact and any_case, in lower case


@dataclass(frozen=True)
class Program:
    """What a list of selectors and hints compiles to (``compile_program``), shared by
    every rewriter that uses it. Its two skip patterns are compiled when first used
    (a rewriter with document inserts uses one, without them the other): ``prepare``
    compiles the one a rewriter will use ahead of it."""

    by_tag: dict[str | None, tuple[_Candidate, ...]]
    # Per tag name, every literal its filtered candidates look for (lower case): when
    # none is in a tag, no filtered candidate can match and none is tried.
    union: dict[str | None, re.Pattern[bytes] | None]
    full: bool  # every element must be seen (child combinator or untyped compound)
    tracked: frozenset[str]  # ancestor types the combinators look for
    machine: Machine  # the combinators' state on the stack of open elements
    # The arguments of skip.skip_pattern for ``skip`` and for ``skip_doc`` (None:
    # every tag stops, the pattern is SKIP_ALL).
    _skip_args: tuple[Any, ...] | None
    _doc_args: tuple[Any, ...] | None

    @functools.cached_property
    def skip(self) -> re.Pattern[bytes]:
        return _skip_pattern(self._skip_args)

    @functools.cached_property
    def skip_doc(self) -> re.Pattern[bytes]:
        """The same, also stopping at head/body/html (for document inserts)."""
        return _skip_pattern(self._doc_args)

    def prepare(self, inserts: bool) -> None:
        """Compile now what a rewriter with (or without) document inserts uses."""
        _ = self.skip_doc if inserts else self.skip


SKIP_ALL = skip.skip_pattern(None)
# Programs and skip patterns compiled in this process: the proxy compiles before a rule
# set serves, never on a request (tests count them).
_COMPILED = [0]


def compilations() -> int:
    """How many selector programs and skip patterns this process has compiled."""
    return _COMPILED[0]


def _skip_pattern(args: tuple[Any, ...] | None) -> re.Pattern[bytes]:
    if args is None:
        return SKIP_ALL
    _COMPILED[0] += 1
    return skip.skip_pattern(*args)


def _alternation(literals: set[bytes]) -> re.Pattern[bytes] | None:
    """A pattern that finds any of ``literals`` (bytes, searched as Latin-1 text)."""
    if not literals:
        return None
    source = skip.literals_pattern(x.decode("latin-1") for x in literals)
    return re.compile(source.encode("latin-1"))


ProgramKeys = tuple[tuple[str, Hints | tuple[str, ...] | None], ...]


def program_keys(handlers: Sequence[HandlerSpec]) -> ProgramKeys:
    """What the program of ``handlers`` is compiled from: each one's selector and hints."""
    return tuple((h[0], h[2] if len(h) > 2 else None) for h in handlers)


@functools.lru_cache(maxsize=256)
def compile_program(keys: ProgramKeys, examine_all: bool = False) -> Program:
    """The program of handlers with these ``program_keys`` (see Rewriter); the same
    keys give the same program, compiled once."""
    _COMPILED[0] += 1
    # Examining every element, hints would only spare handler calls; their literal
    # patterns cost more to compile than a short document takes to rewrite.
    specs = [(selector, None if examine_all else _hints(hints)) for selector, hints in keys]
    groups: dict[tuple[str | None, int], list[Complex]] = {}
    numbered: dict[int, int] = {}  # id of a complex selector -> its number in the machine
    complexes: list[Complex] = []
    tracked: set[str | None] = set()
    needles: dict[str, list[skip.Needle]] = {}
    in_text: dict[str, list[skip.Needle]] = {}  # raw-text elements: hints in their text
    unfiltered: set[str] = set()
    child = False
    for index, (selector, hints) in enumerate(specs):
        for cx in parse_selector(selector):
            if id(cx) not in numbered:  # the same selector text gives the same objects
                numbered[id(cx)] = len(complexes)
                complexes.append(cx)
            tag = cx.subject.tag
            groups.setdefault((tag, index), []).append(cx)
            tracked.update(part.tag for part in cx.parts[:-1])
            child = child or ">" in cx.links
            if tag is None:
                continue
            if hints is None and cx.subject.needle is not None:
                needles.setdefault(tag, []).append(cx.subject.needle)
            elif hints is not None and hints.text and tag in spec.RAWTEXT:
                in_text.setdefault(tag, []).extend((h, True, None) for h in hints.text)
                needles.setdefault(tag, []).extend(_in_values(hints))
            elif hints is not None and hints.tag and not hints.text:
                needles.setdefault(tag, []).extend(_in_values(hints))
            else:  # no literal to look for: every tag of this type stops
                unfiltered.add(tag)
    by_tag: dict[str | None, list[_Candidate]] = {}
    for (tag, index), group in groups.items():
        hints = specs[index][1]
        numbers = tuple(numbered[id(cx)] for cx in group)
        if hints is not None and hints.tag and not hints.text:
            lowered = frozenset(h.lower().encode("utf-8", "ignore") for h in hints.tag)
            candidate = _Candidate(index, numbers, None, _alternation(set(lowered)), True, lowered)
            by_tag.setdefault(tag, []).append(candidate)
            continue
        own = [cx.subject.needle for cx in group]
        filtered = all(n is not None for n in own)
        exact = {n[0].encode("utf-8", "ignore") for n in own if n is not None and not n[1]}
        any_case = {n[0].lower().encode("utf-8", "ignore") for n in own if n is not None and n[1]}
        candidate = _Candidate(
            index,
            numbers,
            _alternation(exact),
            _alternation(any_case),
            filtered,
            frozenset(x.lower() for x in exact | any_case),
        )
        by_tag.setdefault(tag, []).append(candidate)
    full = examine_all or child or None in tracked or None in by_tag
    named = frozenset(t for t in tracked if t is not None)
    always = unfiltered | named
    for name in always:
        needles.pop(name, None)
    doc_names = {"head", "body", "html"}
    skip: tuple[Any, ...] | None = None  # full: every tag stops (_run uses SKIP_ALL)
    skip_doc: tuple[Any, ...] | None = None
    if not full:  # foreign content changes what a self-closing tag is (rewriter.py)
        stops = always | spec.FOREIGN_STOPS
        ends = named | spec.FOREIGN_STOPS
        skip = (stops, needles, ends, in_text)
        skip_doc = (stops | doc_names, needles, ends | doc_names, in_text)
    union = {
        tag: _alternation({x for cand in candidates for x in cand.literals})
        for tag, candidates in by_tag.items()
    }
    return Program(
        {k: tuple(v) for k, v in by_tag.items()},
        union,
        full,
        named,
        Machine.compile(complexes),
        skip,
        skip_doc,
    )


def _in_values(hints: Hints) -> list[skip.Needle]:
    places: tuple[str | None, ...] = tuple(a.lower() for a in hints.attrs) or (None,)
    return [(h, True, attr) for h in hints.tag for attr in places]


def _hints(hints: Hints | tuple[str, ...] | None) -> Hints | None:
    if hints is not None and not isinstance(hints, Hints):
        hints = Hints(tag=hints)
    return hints if hints is not None and (hints.tag or hints.text) else None
