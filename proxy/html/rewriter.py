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

This module drives the parts over the bytes (skip patterns, tags, raw text, the
document inserts, the gate): ``program`` is what the selectors and hints compile to,
``dispatch`` decides which handlers a start tag gets and runs them, ``output`` emits
what leaves (elements as their handlers edited them, nothing inside a removed one).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from proxy.html import lexer, spec
from proxy.html.dispatch import Dispatcher
from proxy.html.element import Element, Handler, Tag
from proxy.html.gate import Gate, sees
from proxy.html.matcher import OpenElements
from proxy.html.output import Output
from proxy.html.program import SKIP_ALL, HandlerSpec, Program, compile_program, program_keys

# An annotation-xml start tag whose content is HTML (an HTML integration point).
_HTML_ENCODING = re.compile(
    rb"encoding[\t\n\f\r ]*=[\t\n\f\r ]*[\"']?(?:text/html|application/xhtml\+xml)"
)


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
        self._text_end = -1  # where its raw text ends, when _gated found it
        self._identity = not handlers and not any(self._doc.values()) and gate is None
        self._skip_fast = program.skip_doc if any(self._doc.values()) else program.skip
        self._buf = b""
        self._output = Output()
        self._elements = OpenElements(program.machine)  # tracked ones, for combinators
        dispatcher = Dispatcher(program, [h[1] for h in handlers], self._elements, encoding)
        self._dispatcher = dispatcher
        self._raw: _Raw | None = None
        self._plaintext = False
        # Open svg/math elements and HTML integration points in them (spec.FOREIGN).
        self._foreign: list[str] = []

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
        return self._output.flush()

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
            self._output.emit(rest)  # EOF inside a tag or comment: leave the bytes alone
        self._raw = None
        self._output.close()
        for key in ("head_start", "head_end", "body_end"):
            self._insert(key)
        return self._output.flush()

    # -- scanning -----------------------------------------------------------------

    def _run(self, buf: bytes) -> int:
        pos, n = 0, len(buf)
        while pos < n:
            if self._plaintext:
                self._output.emit(buf[pos:])
                return n
            if self._raw is not None:
                pos = self._run_raw(self._raw, buf, pos)
                if self._raw is not None:
                    return pos
                continue
            slow = (
                self._program.full
                or self._output.region
                or self._doc["head_start"]
                or self._doc["head_end"]
            )
            skip = SKIP_ALL if slow else self._skip_fast
            limit = n
            if self._gate is not None:
                stops, i = self._stops, self._next_stop
                while i < len(stops) and stops[i] <= pos:
                    i += 1
                self._next_stop = i
                limit = stops[i] if i < len(stops) else n
            end = skip.match(buf, pos, limit).end()  # type: ignore[union-attr]
            if end > pos:
                self._output.emit(buf[pos:end])
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

    # -- tags -----------------------------------------------------------------------

    def _start_tag(self, name: str, raw: bytes, name_end: int) -> None:
        if (self._doc["head_start"] or self._doc["head_end"]) and self._head_progress(name, raw):
            return
        self._text_end = -1
        self._output.close_implied(name)
        el: Element | None = None
        deferred: list[Handler] = []
        if not self._output.removing:
            el = self._dispatcher.start_tag(name, raw, name_end, deferred)
            if self._gate is not None and (el is None or not el.removed) and self._gated(name):
                if el is None:
                    el = Element(name, raw, name_end, self._encoding)
                if name in spec.RAWTEXT:
                    deferred.append(self._gate.handler)
                else:
                    self._gate.handler(el)
        if name in spec.FOREIGN_STOPS:
            self._enter(name, raw)
        # XHTML, or foreign content: a self-closing tag has nothing inside, no end tag.
        empty = raw.endswith(b"/>") and (self._xml or self._in_foreign(raw))
        if name in spec.RAWTEXT and not empty:
            limit = self._text_limit
            # What the gate reads, it reads whole (a script's tracker may come after
            # its first 64 KB): up to its own limit.
            if el is not None and (name == "script" or name in self._gate_texts):
                limit = max(limit, self._gate_text_limit)
            self._raw = _Raw(name, name == "script", el, deferred, limit=limit)
            if self._text_end >= 0:  # found by _gated: the text is not searched twice
                self._raw.scan = self._text_end - self._tag_at[1]
            if el is None:
                self._output.open(name, raw)
        elif el is not None:
            for handler in deferred:  # a raw-text element with no text
                handler(el)
                if el.removed:
                    break
            self._output.element(el, name, empty)
        else:
            self._output.open(name, raw)
        if name == "plaintext" and not empty:
            self._plaintext = True
        if not empty:
            self._track(name, raw, name_end)

    def _enter(self, name: str, raw: bytes) -> None:
        """Follow a start tag of spec.FOREIGN_STOPS (foreign content and its HTML
        integration points)."""
        if lexer.self_closing(raw):
            return
        foreign = bool(self._foreign) and self._foreign[-1] in spec.FOREIGN
        point = name == "foreignobject" or _HTML_ENCODING.search(raw.lower()) is not None
        if name in spec.FOREIGN or (foreign and point):
            self._foreign.append(name)

    def _in_foreign(self, raw: bytes) -> bool:
        """Whether a start tag ending in "/>" is a whole element: self-closing in
        foreign content (not in one of its HTML integration points)."""
        foreign = self._foreign
        return bool(foreign) and foreign[-1] in spec.FOREIGN and lexer.self_closing(raw)

    def _gated(self, name: str) -> bool:
        """Whether the gate sees this start tag (gate.py's ``sees``); the end of its
        raw text, when found, is kept for ``_run_raw``."""
        assert self._gate is not None
        seen, self._text_end = sees(self._gate, self._stops, self._buf, name, self._tag_at)
        return seen

    def _end_tag(self, name: str, raw: bytes) -> None:
        if name == "head" and self._head_open:
            self._insert("head_end")
            self._head_open = False
        elif name in ("body", "html"):
            for key in ("head_start", "head_end", "body_end"):
                self._insert(key)
        if name in spec.FOREIGN_STOPS and name in self._foreign:
            while self._foreign.pop() != name:
                pass
        self._output.end_tag(name, raw)
        self._elements.close(name)

    def _head_progress(self, name: str, raw: bytes) -> bool:
        """Place head inserts; True when the start tag was emitted here."""
        if name == "html":
            return False
        if name == "head":
            if self._head_open or (not self._doc["head_start"] and not self._doc["head_end"]):
                return False
            self._output.emit(raw)
            self._insert("head_start")
            self._head_open = True
            return True
        self._insert("head_start")
        self._head_open = True
        if name not in spec.HEAD_CONTENT:
            self._insert("head_end")
            self._head_open = False
        return False

    def _insert(self, key: str) -> None:
        data = self._doc[key]
        if data:
            self._doc[key] = b""
            if callable(data):
                data = data().encode(self._encoding, "xmlcharrefreplace")
            self._output.write(data)

    def _track(self, name: str, raw: bytes, name_end: int) -> None:
        if name in spec.VOID or not (self._program.full or name in self._program.tracked):
            return
        elements = self._elements
        top = elements.top
        if top is not None and spec.closes(top, name):
            elements.close_top()
        elements.open(Tag(name, raw, name_end, self._encoding))  # as the origin sent it

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
            self._output.emit(data)
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
        self._output.element(el, raw.name)
        if el.new_text is not None:
            content = el._encode([el.new_text])
        self._output.emit(content)
