"""Streaming, byte-preserving HTML rewriter with CSS-selector element handlers.

    rw = Rewriter([("script[src]", handler), ...], document_handlers=DocumentInserts(...))
    out = rw.feed(chunk) + ... + rw.close()

A handler may come with Hints, literals every element it acts on contains (in given
attribute values, or in a script's text): elements of its type without one pass in a
single regular-expression match, never stopping in Python.

Bytes that no handler changes leave exactly as they came, whatever the chunking.
Elements are found as a browser's tokenizer finds them (comments, raw text, script
escapes, quoted attributes); only what a handler needs is held back. Knows nothing
about consent.
"""

from __future__ import annotations

import bisect
import functools
import html as htmllib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from proxy.html import lexer, skip, spec
from proxy.html.matcher import Machine, OpenElements
from proxy.html.selectors import Complex, parse_selector

Handler = Callable[["Element"], None]


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
class Gate:
    """A handler for elements that a pass over the bytes finds, rather than a selector:
    ``stops(buf)`` gives sorted offsets in a buffer where something the handler looks
    for may be written (hits of a multi-literal prefilter, say). A start tag holding a
    stop, and every <script> the skip pattern does not pass whole, goes to
    ``handler`` (after the selector handlers, unless they removed it); the skip
    pattern runs with ``endpos`` at the next stop, so no needle is tested in it.
    ``texts``: the raw-text elements (besides <script>) whose text the handler reads
    too: one the skip pattern does not pass whole (a stop may lie in its text) goes
    to it with its text, as a script does, read whole up to ``text_limit`` (a
    page's whole stylesheet can be inline: a handler that edits it needs all of it)."""

    stops: Callable[[bytes], list[int]]
    handler: Handler
    texts: frozenset[str] = frozenset()
    text_limit: int = 4 * 1024 * 1024  # the longest text of ``texts`` read whole


class RewriteLimitError(ValueError):
    """A construct that must be held back grew past the rewriter's buffer limit."""


@dataclass(frozen=True)
class DocumentInserts:
    """HTML inserted at the start and end of <head> and at the end of <body>; a
    callable is asked for its HTML when the place is reached."""

    head_start: str | Callable[[], str] = ""
    head_end: str | Callable[[], str] = ""
    body_end: str | Callable[[], str] = ""


DocumentHandlers = DocumentInserts  # its old name (it holds HTML, not handlers): deprecated


class _Tag:
    """A start tag as combinators see it (an open element): attributes are parsed on
    first use, and the first of a name counts, as in a browser."""

    __slots__ = ("_encoding", "_name_end", "_raw", "_values", "tag")

    def __init__(self, tag: str, raw: bytes, name_end: int, encoding: str) -> None:
        self.tag = tag
        self._raw = raw
        self._name_end = name_end
        self._encoding = encoding
        self._values: dict[str, str] | None = None

    def get(self, name: str) -> str | None:
        values = self._values
        if values is None:
            values = {}
            for a in lexer.parse_attributes(self._raw, self._name_end, self._encoding):
                values.setdefault(a.name, a.value)
            self._values = values
        return values.get(name.lower())


class Element:
    """A matched element, handed to handlers, which record what to do with it."""

    def __init__(self, tag: str, raw: bytes, name_end: int, encoding: str) -> None:
        self.tag = tag
        self._raw = raw
        self._encoding = encoding
        self._name_end = name_end
        self._parsed: list[lexer.Attribute] | None = None
        self._values: dict[str, str] | None = None  # by name, for get
        self._edits: dict[str, str | None] = {}
        self.removed = False
        self.replacement = ""
        self.before_html: list[str] = []
        self.after_html: list[str] = []
        self.prepend_html: list[str] = []
        self.append_html: list[str] = []
        self.text: str = ""
        self.text_truncated = False
        self.new_text: str | None = None

    @property
    def _attrs(self) -> list[lexer.Attribute]:
        if self._parsed is None:  # parsed on first use: most candidates never need it
            self._parsed = lexer.parse_attributes(self._raw, self._name_end, self._encoding)
        return self._parsed

    @property
    def attributes(self) -> list[tuple[str, str]]:
        return [(a.name, a.value) for a in self._attrs]

    def get(self, name: str) -> str | None:
        name = name.lower()
        if name in self._edits:
            return self._edits[name]
        values = self._values
        if values is None:  # the attributes' first of a name only: parse_attributes'
            values = self._values = {a.name: a.value for a in self._attrs}
        return values.get(name)

    def may_have(self, names: Sequence[bytes]) -> bool:
        """False when no attribute named one of ``names`` (ASCII, lower case) is in
        the start tag as sent, nor set by a handler: a test of the raw bytes, made
        before any attribute is parsed (names hold no character references)."""
        if any(value is not None for value in self._edits.values()):
            return True
        lower = self._raw.lower()
        return any(name in lower for name in names)

    def remove(self) -> None:
        self.removed = True

    def replace(self, html: str) -> None:
        self.removed = True
        self.replacement = html

    def set_text(self, text: str) -> None:
        """A raw-text element's (script, style) text replaced, start and end tag kept;
        for handlers that see the text (deferred), and only a whole one: ValueError
        when ``text_truncated`` (what follows the part seen would be lost)."""
        if self.text_truncated:
            raise ValueError(f"<{self.tag}>: its text was truncated; expected a whole one")
        self.new_text = text

    def set_attribute(self, name: str, value: str) -> None:
        self._edits[name.lower()] = value

    def remove_attribute(self, name: str) -> None:
        self._edits[name.lower()] = None

    def before(self, html: str) -> None:
        self.before_html.append(html)

    def after(self, html: str) -> None:
        self.after_html.insert(0, html)

    def prepend(self, html: str) -> None:
        self.prepend_html.insert(0, html)

    def append(self, html: str) -> None:
        self.append_html.append(html)

    def start_tag(self) -> bytes:
        """The start tag with attribute edits applied; untouched bytes kept."""
        if not self._edits:
            return self._raw
        raw, out, pos = self._raw, [], 0
        pending = dict(self._edits)
        for a in self._attrs:
            if a.name not in pending:
                continue
            value = pending.pop(a.name)
            start = a.start
            if value is None:
                while start > 0 and raw[start - 1] in lexer.WS:
                    start -= 1
                out += [raw[pos:start]]
            else:
                out += [raw[pos:start], self._format(a.name, value)]
            pos = a.end
        tail_at = len(raw) - (2 if raw.endswith(b"/>") else 1)
        out.append(raw[pos:tail_at])
        out += [b" " + self._format(n, v) for n, v in pending.items() if v is not None]
        out.append(raw[tail_at:])
        return b"".join(out)

    def _format(self, name: str, value: str) -> bytes:
        return name.encode("latin-1") + b'="' + lexer.escape_attribute(value, self._encoding) + b'"'

    def _encode(self, parts: Sequence[str]) -> bytes:
        return "".join(parts).encode(self._encoding, "xmlcharrefreplace")


@dataclass
class _Watch:
    """What to do when a watched element ends: it was removed, or content follows it."""

    remove: bool
    append: bytes = b""
    after: bytes = b""


@dataclass
class _Raw:
    """Inside the raw-text content (script, style, ...) of the current element."""

    name: str
    script: bool
    element: Element | None = None
    handlers: list[Handler] = field(default_factory=list)
    held: bytearray = field(default_factory=bytearray)
    state: int = lexer.SCRIPT_DATA
    scan: int = 0
    limit: int = 64 * 1024  # the longest text held for the handlers


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
    # every tag stops, the pattern is _SKIP_ALL).
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


_SKIP_ALL = skip.skip_pattern(None)
# Programs and skip patterns compiled in this process: the proxy compiles before a rule
# set serves, never on a request (tests count them).
_COMPILED = [0]


def compilations() -> int:
    """How many selector programs and skip patterns this process has compiled."""
    return _COMPILED[0]


def _skip_pattern(args: tuple[Any, ...] | None) -> re.Pattern[bytes]:
    if args is None:
        return _SKIP_ALL
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
    skip: tuple[Any, ...] | None = None  # full: every tag stops (_run uses _SKIP_ALL)
    skip_doc: tuple[Any, ...] | None = None
    if not full:
        skip = (always, needles, named, in_text)
        skip_doc = (always | doc_names, needles, named | doc_names, in_text)
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


class Rewriter:
    """Feed bytes, get bytes; see the module docstring."""

    def __init__(
        self,
        handlers: Sequence[HandlerSpec] = (),
        document_handlers: DocumentInserts | None = None,
        *,
        encoding: str = "utf-8",
        xml: bool = False,
        gate: Gate | None = None,
        text_limit: int = 64 * 1024,
        buffer_limit: int = 8 * 1024 * 1024,
        examine_all: bool = False,
        program: Program | None = None,
    ) -> None:
        """``xml``: the page is XHTML, where a self-closing tag (``<script src=x/>``)
        is a whole element with no content, not the start of raw text. ``examine_all``:
        every tag stops in Python and hints are ignored (every handler sees every element
        its selector matches). Nothing is compiled for the hints (skip patterns take tens
        of milliseconds to compile): for a few short documents, as the self-test
        rewrites. ``program``: ``compile_program(program_keys(handlers))``, compiled
        ahead (by default it is looked up, or compiled, now)."""
        self._encoding = encoding
        self._xml = xml
        self._text_limit = text_limit
        self._buffer_limit = buffer_limit
        if program is None:  # the key of the compiled program: plain tuples, compared in C
            program = compile_program(program_keys(handlers), examine_all)
        self._program = program
        self._handlers = [h[1] for h in handlers]
        doc = document_handlers or DocumentInserts()
        self._doc: dict[str, bytes | Callable[[], str]] = {
            key: value if callable(value) else value.encode(encoding, "xmlcharrefreplace")
            for key in ("head_start", "head_end", "body_end")
            for value in (getattr(doc, key),)
        }
        self._head_open = False
        self._gate = gate
        self._gate_texts = gate.texts if gate is not None else frozenset()
        self._gate_text_limit = gate.text_limit if gate is not None else text_limit
        self._stops: list[int] = []
        self._next_stop = 0  # index into _stops of the first stop not passed yet
        self._tag_at = (0, 0)  # the start tag being handled, as offsets in the buffer
        self._identity = not handlers and not any(self._doc.values()) and gate is None
        self._skip_fast = program.skip_doc if any(self._doc.values()) else program.skip
        self._buf = b""
        self._out: list[bytes] = []
        self._elements = OpenElements(program.machine)  # tracked ones, for combinators
        self._region: list[tuple[str, _Watch | None]] = []  # open elements around watches
        # Entries of the region per name: the end tags and start tags that look for one
        # find none at no cost, and a search always ends in popping what it passed.
        self._in_region: dict[str, int] = {}
        self._removing = 0
        self._raw: _Raw | None = None
        self._plaintext = False

    # -- public ---------------------------------------------------------------

    def feed(self, chunk: bytes) -> bytes:
        """Take the next bytes of the document; return what is safe to send."""
        if self._identity:
            return bytes(chunk)
        self._buf = self._buf + chunk if self._buf else bytes(chunk)
        if self._gate is not None:  # the held bytes are scanned again: a few at most
            self._stops, self._next_stop = self._gate.stops(self._buf), 0
        pos = self._run(self._buf)
        self._buf = self._buf[pos:]
        if len(self._buf) > self._buffer_limit:
            raise RewriteLimitError(
                f"an HTML construct longer than {self._buffer_limit} bytes is held back "
                f"at {self._buf[:40]!r}; expected tags and comments to close sooner"
            )
        return self._flush()

    def close(self) -> bytes:
        """End of document: return the rest, with pending inserts at their fallbacks."""
        if self._identity:
            return b""
        rest, self._buf = self._buf, b""
        raw = self._raw
        if raw is not None and raw.element is not None:
            self._raw_content(raw, rest)
            self._release_raw(raw, truncated=False)
        else:
            self._emit(rest)  # EOF inside a tag or comment: leave the bytes alone
        self._raw = None
        self._pop_region(0, None)
        for key in ("head_start", "head_end", "body_end"):
            self._insert(key)
        return self._flush()

    # -- scanning -----------------------------------------------------------------

    def _run(self, buf: bytes) -> int:
        pos, n = 0, len(buf)
        while pos < n:
            if self._plaintext:
                self._emit(buf[pos:])
                return n
            if self._raw is not None:
                pos = self._run_raw(self._raw, buf, pos)
                if self._raw is not None:
                    return pos
                continue
            slow = (
                self._program.full
                or self._region
                or self._doc["head_start"]
                or self._doc["head_end"]
            )
            skip = _SKIP_ALL if slow else self._skip_fast
            limit = n
            if self._gate is not None:
                stops, i = self._stops, self._next_stop
                while i < len(stops) and stops[i] <= pos:
                    i += 1
                self._next_stop = i
                limit = stops[i] if i < len(stops) else n
            end = skip.match(buf, pos, limit).end()  # type: ignore[union-attr]
            if end > pos:
                self._emit(buf[pos:end])
                pos = end
                continue
            m = lexer.TAG.match(buf, pos)
            if m is None:
                if limit < n:  # a stop inside a comment or a doctype: look past it
                    self._next_stop += 1
                    continue
                return pos  # an incomplete construct: wait for more bytes
            name = m.group(2).lower().decode("latin-1")
            pos = m.end()
            if m.group(1):
                self._end_tag(name, m.group())
            else:
                self._tag_at = (m.start(), pos)
                self._start_tag(name, m.group(), m.start(3) - m.start())
        return pos

    def _emit(self, data: bytes) -> None:
        if data and not self._removing:
            self._out.append(data)

    def _flush(self) -> bytes:
        out = b"".join(self._out)
        self._out.clear()
        return out

    def _insert(self, key: str) -> None:
        data = self._doc[key]
        if data:
            self._doc[key] = b""
            if callable(data):
                data = data().encode(self._encoding, "xmlcharrefreplace")
            self._out.append(data)

    # -- tags -----------------------------------------------------------------------

    def _start_tag(self, name: str, raw: bytes, name_end: int) -> None:
        if (self._doc["head_start"] or self._doc["head_end"]) and self._head_progress(name, raw):
            return
        self._close_implied(name)
        el: Element | None = None
        deferred: list[Handler] = []
        if not self._removing:
            el = self._match(name, raw, name_end, deferred)
            if self._gate is not None and (el is None or not el.removed) and self._gated(name):
                if el is None:
                    el = Element(name, raw, name_end, self._encoding)
                if name in spec.RAWTEXT:
                    deferred.append(self._gate.handler)
                else:
                    self._gate.handler(el)
        empty = self._xml and raw.endswith(b"/>")  # XHTML: nothing inside, no end tag
        if name in spec.RAWTEXT and not empty:
            limit = self._text_limit
            if el is not None and name in self._gate_texts:
                limit = max(limit, self._gate_text_limit)
            self._raw = _Raw(name, name == "script", el, deferred, limit=limit)
            if el is None:
                self._open(name, raw)
        elif el is not None:
            for handler in deferred:  # a raw-text element with no text
                handler(el)
                if el.removed:
                    break
            self._apply(el, name, empty)
        else:
            self._open(name, raw)
        if name == "plaintext" and not empty:
            self._plaintext = True
        if not empty:
            self._track(name, raw, name_end)

    def _gated(self, name: str) -> bool:
        """Whether the gate sees this start tag: a stop lies in it, or it is a script
        or one of the gate's ``texts`` (one that reaches here was not passed whole:
        its text may hold a stop, or may continue in bytes not yet scanned)."""
        if name == "script" or name in self._gate_texts:
            return True
        start, end = self._tag_at
        i = bisect.bisect_left(self._stops, start)
        return i < len(self._stops) and self._stops[i] < end

    def _open(self, name: str, raw: bytes, watch: _Watch | None = None) -> None:
        """Emit an unchanged start tag and follow it if a watch is open around it."""
        self._emit(raw)
        if watch is not None:
            self._push_region(name, watch)
            self._removing += watch.remove
        elif self._region and name not in spec.VOID and not raw.endswith(b"/>"):
            self._push_region(name, None)

    def _push_region(self, name: str, watch: _Watch | None) -> None:
        self._region.append((name, watch))
        self._in_region[name] = self._in_region.get(name, 0) + 1

    def _innermost(self, name: str) -> int:
        """The index of the innermost region entry named ``name`` (-1: none)."""
        if not self._in_region.get(name):
            return -1
        region = self._region
        i = len(region) - 1
        while region[i][0] != name:
            i -= 1
        return i

    def _end_tag(self, name: str, raw: bytes) -> None:
        if name == "head" and self._head_open:
            self._insert("head_end")
            self._head_open = False
        elif name in ("body", "html"):
            for key in ("head_start", "head_end", "body_end"):
                self._insert(key)
        index = self._innermost(name)
        if index >= 0:
            self._pop_region(index, raw)
        else:
            if name in spec.SCOPE_CLOSERS:
                keep = len(self._region)
                while keep and self._region[keep - 1][0] in spec.IMPLIED_END:
                    keep -= 1
                self._pop_region(keep, None)
            self._emit(raw)
        self._elements.close(name)

    def _close_implied(self, name: str) -> None:
        """A start tag that implicitly ends open elements ends watches on them too."""
        region = self._region
        if not region:
            return
        if name in spec.P_CLOSERS:
            index = self._innermost("p")
            if index >= 0:
                self._pop_region(index, None)
                return
        if spec.closes(region[-1][0], name):
            self._pop_region(len(region) - 1, None)

    def _pop_region(self, index: int, end_raw: bytes | None) -> None:
        """Close ``region[index:]``; ``end_raw`` is the end tag that closed
        ``region[index]`` (None when the elements ended without one)."""
        while len(self._region) > index:
            name, watch = self._region.pop()
            self._in_region[name] -= 1
            own = end_raw if len(self._region) == index else None
            if watch is None:
                if own is not None:
                    self._emit(own)
                continue
            self._removing -= watch.remove
            if watch.remove:
                self._emit(watch.after)
            else:
                self._emit(watch.append + (own or b"") + watch.after)

    def _head_progress(self, name: str, raw: bytes) -> bool:
        """Place head inserts; True when the start tag was emitted here."""
        if name == "html":
            return False
        if name == "head":
            if self._head_open or (not self._doc["head_start"] and not self._doc["head_end"]):
                return False
            self._emit(raw)
            self._insert("head_start")
            self._head_open = True
            return True
        self._insert("head_start")
        self._head_open = True
        if name not in spec.HEAD_CONTENT:
            self._insert("head_end")
            self._head_open = False
        return False

    def _match(
        self, name: str, raw: bytes, name_end: int, deferred: list[Handler]
    ) -> Element | None:
        """Run the handlers of matching selectors, once each (those of raw-text elements
        wait for their text, in ``deferred``); return the element if any matched."""
        candidates = self._program.by_tag.get(name, ())
        anywhere = self._program.by_tag.get(None)
        if anywhere:
            candidates = (*candidates, *anywhere)
        if not candidates:
            return None
        el: Element | None = None
        probe = Element(name, raw, name_end, self._encoding)
        elements = self._elements
        active = -1  # the steps active here: computed when a candidate gets this far
        # A literal every match contains must be in the tag (with character references
        # decoded): a cheap test before any attribute is parsed.
        text = raw
        if b"&" in raw:
            decoded = htmllib.unescape(raw.decode(self._encoding, "surrogateescape"))
            try:
                text = decoded.encode(self._encoding, "surrogateescape")
            except UnicodeEncodeError:  # a reference to what the encoding lacks (&nbsp; in ASCII)
                text = decoded.encode("utf-8", "surrogatepass")
        lower = b""
        union = self._program.union.get(name) if anywhere is None else None
        if union is not None:
            lower = text.lower()
            if union.search(lower) is None:  # no filtered candidate can match
                candidates = tuple(c for c in candidates if not c.filtered)
        for cand in candidates:
            if cand.filtered:
                hit = cand.exact is not None and cand.exact.search(text) is not None
                if not hit and cand.any_case is not None:
                    lower = lower or text.lower()
                    hit = cand.any_case.search(lower) is not None
                if not hit:
                    continue
            if active < 0:
                active = elements.active()
            if any(elements.matches(i, probe, active) for i in cand.selectors):
                el = probe
                if name in spec.RAWTEXT:
                    deferred.append(self._handlers[cand.index])
                else:
                    self._handlers[cand.index](el)
                    if el.removed:
                        break
        return el

    def _apply(self, el: Element, name: str, empty: bool = False) -> None:
        before = el._encode(el.before_html)
        after = el._encode(el.after_html)
        void = empty or name in spec.VOID
        if el.removed:
            self._emit(before + el._encode([el.replacement]))
            if void:
                self._emit(after)
            else:
                self._push_region(name, _Watch(remove=True, after=after))
                self._removing += 1
            return
        head = before + el.start_tag() + el._encode(el.prepend_html)
        append = el._encode(el.append_html)
        if void:
            self._emit(head + append + after)
        else:
            self._open(name, head, _Watch(False, append, after) if append or after else None)

    def _track(self, name: str, raw: bytes, name_end: int) -> None:
        if name in spec.VOID or not (self._program.full or name in self._program.tracked):
            return
        elements = self._elements
        top = elements.top
        if top is not None and spec.closes(top, name):
            elements.close_top()
        elements.open(_Tag(name, raw, name_end, self._encoding))  # as the origin sent it

    # -- raw text -------------------------------------------------------------------

    def _run_raw(self, raw: _Raw, buf: bytes, pos: int) -> int:
        start = pos + raw.scan
        if raw.script:
            end, raw.state, resume = lexer.find_script_end(buf, start, raw.state)
        else:
            m = lexer.RAW_END[raw.name].search(buf, start)
            end = m.start() if m else -1
            resume = max(start, len(buf) - len(raw.name) - 2)
        if end < 0:
            self._raw_content(raw, buf[pos:resume])
            raw.scan = 0
            return resume
        tag = lexer.TAG.match(buf, end)
        self._raw_content(raw, buf[pos:end])
        if tag is None:
            raw.scan = 0
            return end  # the end tag is not complete yet
        self._raw = None
        if raw.element is not None:
            self._release_raw(raw, truncated=False)
        self._end_tag(raw.name, tag.group())
        return tag.end()

    def _raw_content(self, raw: _Raw, data: bytes) -> None:
        if raw.element is None:
            self._emit(data)
            return
        raw.held += data
        if len(raw.held) > raw.limit:
            self._release_raw(raw, truncated=True)

    def _release_raw(self, raw: _Raw, truncated: bool) -> None:
        """Run the deferred handlers of a raw-text element now that its text is known."""
        el = raw.element
        assert el is not None
        raw.element = None
        content = bytes(raw.held)
        raw.held = bytearray()
        el.text = content[: raw.limit].decode(self._encoding, "replace")
        el.text_truncated = truncated
        for handler in raw.handlers:
            handler(el)
            if el.removed:
                break
        self._apply(el, raw.name)
        if el.new_text is not None:
            content = el._encode([el.new_text])
        self._emit(content)
