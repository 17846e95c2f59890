"""Find every catalogued domain and loader signature in HTML bytes in one pass: a
multi-literal prefilter whose hits tell a scanner where to look closer.

Hits are hints, never verdicts: a hit says "a host or a signature is written
here", not what it means (a hit in a tag is read by parsing the tag's URLs; no hit
does not clear a tag whose values hide a host behind character references,
percent escapes or tabs: ``SUSPECT`` finds those).

Both engines give exactly the same hits, ``(start, end, pattern index)`` sorted:

- a domain (any ASCII letter case) hits where the bytes equal it and neither the
  byte before nor the byte after is a host-name character ``[A-Za-z0-9_-]`` (a dot
  is fine on either side: ``ad.doubleclick.net`` holds a hit of ``doubleclick.net``);
- a signature (exact case) hits where the bytes equal it and, when its first (last)
  character is an identifier character ``[A-Za-z0-9_$]``, the byte before (after)
  is not one.

``HyperscanEngine`` uses Intel's Hyperscan (PyPI ``hyperscan``, x86-64 wheels) for
the literals; ``PythonEngine`` anchors domains on their last label (".com", ".net"
and the other ends the catalogue has) and signatures on their rarest byte, with
``re``. ``build_prefilter`` picks the first that works. Building costs a few
hundred ms: do it once per rules generation, off the request path.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Protocol

Hit = tuple[int, int, int]  # (start, end, index into Prefilter.patterns)

_HOST_BYTES = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")
_IDENT_BYTES = frozenset(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_$")

# What can hide a host from a literal scan of a tag's raw bytes, while a browser
# (and ``url_target``) still reads it: a character reference other than the common
# harmless ones, a percent escape in an authority, a tab or newline between host
# characters, a non-ASCII byte in an authority (IDNA maps full-width letters and
# dots to ASCII), a CSS escape, and any srcdoc (a document inside a value, decoded
# twice). A tag holding none of these and no hit names no catalogued host.
SUSPECT = re.compile(
    rb"&(?!(?:amp|quot|lt|gt|apos|nbsp);)[#A-Za-z]"
    rb"|(?:[/\\]{2}|:)[^/\\?#\s\"'<>]*[%\x80-\xff]"
    rb"|[A-Za-z0-9._-][\t\n\r]+[A-Za-z0-9._-]"
    rb"|\\[0-9A-Fa-f]"
    rb"|[sS][rR][cC][dD][oO][cC]"
)


@dataclass(frozen=True)
class Pattern:
    """A literal: a domain (lower case, matched in any case) or a signature."""

    text: bytes
    caseless: bool


class Prefilter(Protocol):
    patterns: tuple[Pattern, ...]
    engine: str

    def scan(self, data: bytes) -> list[Hit]:
        """Every hit in ``data``, a whole document or text."""
        ...

    def stream(self) -> PrefilterStream:
        """A scan over a document arriving in chunks."""
        ...


class _Engine:
    """The boundary rules and streaming shared by both engines; an engine supplies
    ``_candidates``: a superset of the hits (any order, duplicates allowed)."""

    engine = "none"

    def __init__(self, patterns: Iterable[Pattern]) -> None:
        self.patterns = tuple(patterns)
        self._longest = max((len(p.text) for p in self.patterns), default=0)
        # Per pattern: the bytes that must not touch its first / last character.
        self._left: list[frozenset[int] | None] = []
        self._right: list[frozenset[int] | None] = []
        for p in self.patterns:
            chars = _HOST_BYTES if p.caseless else _IDENT_BYTES
            self._left.append(chars if p.text[:1] and p.text[0] in chars else None)
            self._right.append(chars if p.text[-1:] and p.text[-1] in chars else None)

    def _candidates(self, data: bytes) -> Iterable[Hit]:
        raise NotImplementedError

    def scan(self, data: bytes) -> list[Hit]:
        return self._hits(data, 0, final=True)

    def stream(self) -> PrefilterStream:
        return PrefilterStream(self)

    def _hits(self, data: bytes, low: int, final: bool) -> list[Hit]:
        """Hits ending at or after ``low``; one ending at the very end of ``data``
        only when ``final`` (the byte after it decides, and it is not known yet)."""
        n = len(data)
        out = []
        left, right = self._left, self._right
        for start, end, index in self._candidates(data):
            if end < low or (end == n and not final):
                continue
            chars = left[index]
            if chars is not None and start > 0 and data[start - 1] in chars:
                continue
            chars = right[index]
            if chars is not None and end < n and data[end] in chars:
                continue
            out.append((start, end, index))
        out.sort()
        return out


class PrefilterStream:
    """Feed chunks, get the hits completed so far, with offsets from the start of
    the stream; ``close()`` gives the ones at the very end. The same hits as one
    ``scan`` of the whole document, whatever the chunking. Keeps the last few bytes
    (the longest pattern and one more), so hits across chunk borders are found."""

    def __init__(self, engine: _Engine) -> None:
        self._engine = engine
        self._tail = b""
        self._offset = 0  # stream offset of self._tail[0]

    def feed(self, chunk: bytes) -> list[Hit]:
        buf = self._tail + bytes(chunk)
        hits = self._engine._hits(buf, len(self._tail), final=False)
        base = self._offset
        keep = min(len(buf), self._engine._longest + 1)
        self._offset += len(buf) - keep
        self._tail = buf[len(buf) - keep :]
        return [(s + base, e + base, i) for s, e, i in hits] if base else hits

    def close(self) -> list[Hit]:
        tail, base = self._tail, self._offset
        self._tail = b""
        return [(s + base, e + base, i) for s, e, i in self._engine._hits(tail, len(tail), True)]


class HyperscanEngine(_Engine):
    """The literals in one Hyperscan block-mode database (all hits reported). Safe
    to share between threads: each thread scans with its own scratch space."""

    engine = "hyperscan"

    def __init__(self, patterns: Iterable[Pattern]) -> None:
        import hyperscan  # optional: ImportError when not installed

        super().__init__(patterns)
        self._lengths = [len(p.text) for p in self.patterns]
        self._db = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
        if self.patterns:
            self._db.compile(
                expressions=[p.text for p in self.patterns],
                ids=list(range(len(self.patterns))),
                flags=[hyperscan.HS_FLAG_CASELESS if p.caseless else 0 for p in self.patterns],
                literal=True,
            )
        self._local = threading.local()
        self._local.scratch = self._db.scratch

    def _candidates(self, data: bytes) -> Iterable[Hit]:
        if not self.patterns or not data:
            return ()
        found: list[Hit] = []
        lengths = self._lengths
        append = found.append

        def on_match(index: int, _from: int, end: int, _flags: int, _context: object) -> None:
            append((end - lengths[index], end, index))

        scratch = getattr(self._local, "scratch", None)
        if scratch is None:
            scratch = self._local.scratch = self._db.scratch.clone()
        self._db.scan(data, match_event_handler=on_match, scratch=scratch)
        return found


class PythonEngine(_Engine):
    """Pure Python: domains found by their last label, then every suffix of the host
    written there looked up; signatures found at their rarest byte."""

    engine = "python"

    def __init__(self, patterns: Iterable[Pattern]) -> None:
        super().__init__(patterns)
        self._domains: dict[bytes, int] = {}
        signatures: list[tuple[bytes, int]] = []
        for index, p in enumerate(self.patterns):
            if p.caseless:
                self._domains.setdefault(p.text.lower(), index)
            else:
                signatures.append((p.text, index))
        ends = {d.rpartition(b".")[2] for d in self._domains}
        # A domain ends with ".label" and then a byte that is no host character.
        self._ends = re.compile(rb"\." + _alternation(ends) + rb"(?![a-z0-9_-])") if ends else None
        self._singles = sorted(d for d in self._domains if b"." not in d)
        self._signatures = _PivotSearch(signatures) if signatures else None

    def _candidates(self, data: bytes) -> Iterator[Hit]:
        if self._ends is not None:
            yield from self._domain_hits(data.lower())
        if self._signatures is not None:
            yield from self._signatures.find(data)

    def _domain_hits(self, lower: bytes) -> Iterator[Hit]:
        domains = self._domains
        run = _HOST_RUN.match
        for m in self._ends.finditer(lower):  # type: ignore[union-attr]
            end = m.end()
            back = lower[max(0, end - 256) : end][::-1]
            found = run(back)  # the host written here, read backwards: it always matches
            start = end - (found.end() if found else 0)
            at = start
            while at < end:
                index = domains.get(lower[at:end])
                if index is not None:
                    yield at, end, index
                dot = lower.find(b".", at, end)
                if dot < 0:
                    break
                at = dot + 1
        for single in self._singles:  # a domain without a dot ("localhost"): rare
            at = lower.find(single)
            while at >= 0:
                yield at, at + len(single), domains[single]
                at = lower.find(single, at + 1)


_HOST_RUN = re.compile(rb"[a-z0-9_.-]*")

# Printable bytes from most to least frequent in HTML pages (counted over the 83
# pages of the shared corpus): a signature is looked for at its rarest byte.
_COMMON = (
    b" etainosrl\"cd-pm./hu><g=02f1b:,4wv3_y85796;kx%'Aj)({}CT&qzFIMSENDBLPRO"
    b"#\\[]UWHGYVZQ+!?JKX|*$@^~`"
)


class _PivotSearch:
    """Exact literals, each looked for at its rarest byte (the pivot) with ``re``: the
    text runs at the speed of one character-set test per byte, the rest of a literal
    is checked (in C, by lookarounds) only at its pivots."""

    def __init__(self, literals: list[tuple[bytes, int]]) -> None:
        self._by_pivot: dict[int, list[tuple[bytes, int, int]]] = {}
        for text, index in literals:
            at = max(range(len(text)), key=lambda i: _rank(text[i]))
            self._by_pivot.setdefault(text[at], []).append((text, at, index))
        branches = []
        for char, group in sorted(self._by_pivot.items()):
            checks = b"|".join(
                b"(?<=" + re.escape(text[: at + 1]) + b")(?=" + re.escape(text[at + 1 :]) + b")"
                for text, at, _ in group
            )
            branches.append(re.escape(bytes([char])) + b"(?:" + checks + b")")
        self._pattern = re.compile(b"|".join(branches))

    def find(self, data: bytes) -> Iterator[Hit]:
        by_pivot = self._by_pivot
        for m in self._pattern.finditer(data):
            pos = m.start()
            for text, at, index in by_pivot[data[pos]]:  # which of them, all of them
                start = pos - at
                if start >= 0 and data.startswith(text, start):
                    yield start, start + len(text), index


def _rank(byte: int) -> int:
    at = _COMMON.find(bytes([byte]))
    return len(_COMMON) if at < 0 else at


_Trie = dict[int, "_Trie"]


def _alternation(words: Iterable[bytes]) -> bytes:
    """A pattern matching any of ``words`` (a trie, every word kept: a longer word
    is not dropped for a shorter one, the lookahead after it decides)."""
    trie: _Trie = {}
    for word in words:
        node = trie
        for byte in word:
            node = node.setdefault(byte, {})
        node[-1] = {}

    def emit(node: _Trie) -> bytes:
        branches = [re.escape(bytes([b])) + emit(node[b]) for b in sorted(node) if b != -1]
        if not branches:
            return b""
        body = b"(?:" + b"|".join(branches) + b")"
        return body + b"?" if -1 in node else body

    return emit(trie)


ENGINES: tuple[Callable[[Iterable[Pattern]], _Engine], ...] = (HyperscanEngine, PythonEngine)


def build_prefilter(patterns: Iterable[Pattern], engine: str = "auto") -> _Engine:
    """The prefilter for ``patterns``: ``engine`` "hyperscan", "python" or "auto"
    (Hyperscan when it is installed and works on this CPU, else Python)."""
    patterns = tuple(patterns)
    if engine == "python":
        return PythonEngine(patterns)
    if engine == "hyperscan":
        return HyperscanEngine(patterns)
    if engine != "auto":
        raise ValueError(f"prefilter engine {engine!r}: expected auto, hyperscan or python")
    try:
        return HyperscanEngine(patterns)
    except Exception:  # not installed, or a CPU without the instructions it needs
        return PythonEngine(patterns)
