"""Where a host can hide from the catalogue prefilter's literal scan while a browser
still reads it (what ``prefilter.SUSPECT`` describes): the offsets the catalogue
gate stops at besides the prefilter's hits.

The cases: a character reference other than the common harmless ones; a CSS
escape; a tab, newline, percent escape or non-ASCII byte in an authority (after two
slashes of either kind, or a special scheme's colon, as in ``https:host``); and
``srcdoc`` in any letter case. ``starts(buf)`` gives the sorted offsets where one
begins.

Two engines, the same offsets: Hyperscan, when installed, finds all of them in one
pass over the bytes (with start of match); without it, one ``re`` pattern per case,
each beginning with a literal that ``re`` skips to in C (one alternation of them
ran at 5 MB/s), and the page lowered for ``srcdoc``. Hyperscan has no lookahead:
the character-reference case is spelled out as "an ampersand and a byte that does
not continue one of the harmless names" (``_reference_pattern``); the tests check
the two engines agree.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable

_HARMLESS = (b"amp;", b"quot;", b"lt;", b"gt;", b"apos;", b"nbsp;")
_AUTHORITY_STARTS = (b"//", b"\\\\", b"/\\", b"\\/", b"s:", b"S:", b"p:", b"P:")
_AUTHORITY_RUN = rb"[^/\\?#\"'<> \f\t\n\r%\x80-\xff]*"
_AUTHORITY_END = rb"[\t\n\r%\x80-\xff]"
# A CSS escape: hex (\6f) or a backslash before any other character, which stands for
# it (doub\leclick.net): any that a host name can hold; or before a line break, which
# a CSS string drops with it (ad.double\<LF>click.net).
_CSS_ESCAPE = rb"\\[0-9A-Za-z.\-\n\r\f]"

# The re engine's patterns (a possessive run: the run and its end share no byte).
PATTERNS = (
    re.compile(rb"&(?!(?:" + b"|".join(re.escape(w) for w in _HARMLESS) + rb"))[#A-Za-z]"),
    re.compile(_CSS_ESCAPE),
    *(
        re.compile(re.escape(start) + _AUTHORITY_RUN + b"+" + _AUTHORITY_END)
        for start in _AUTHORITY_STARTS
    ),
)
_SRCDOC = re.compile(rb"srcdoc")


_Trie = dict[int, "_Trie"]


def _reference_pattern(end: bytes = b"$") -> bytes:
    """``&`` then ``#`` or a letter, unless the bytes after it spell one of the
    harmless names: PATTERNS[0] without a lookahead. A trie of the names: at each
    node, a byte that is not one of its children (or the end of the data, ``end``)
    completes a match; reaching the end of a name does not."""
    trie: _Trie = {}
    for word in _HARMLESS:
        node = trie
        for byte in word:
            node = node.setdefault(byte, {})

    def escape(byte: int) -> bytes:
        return b"\\x%02x" % byte

    def below(node: _Trie) -> bytes:
        if not node:
            return b"(?!)"  # a whole harmless name: never a match (not reached)
        branches = [b"[^" + b"".join(map(escape, sorted(node))) + b"]", end]
        for byte, child in sorted(node.items()):
            if child:
                branches.append(escape(byte) + below(child))
        return b"(?:" + b"|".join(branches) + b")"

    first = bytes(sorted(set(b"#" + bytes(range(65, 91)) + bytes(range(97, 123))) - set(trie)))
    branches = [b"[" + b"".join(map(escape, first)) + b"]"]
    branches += [escape(byte) + below(child) for byte, child in sorted(trie.items())]
    return b"&(?:" + b"|".join(branches) + b")"


def starts_re(buf: bytes) -> list[int]:
    """The offsets, with ``re`` (no Hyperscan)."""
    found = {m.start() for pattern in PATTERNS for m in pattern.finditer(buf)}
    found.update(m.start() for m in _SRCDOC.finditer(buf.lower()))
    return sorted(found)


class _Hyperscan:
    """Every case in one Hyperscan block-mode database, reporting starts of match.
    Shared between threads: each scans with its own scratch space."""

    def __init__(self) -> None:
        import hyperscan  # optional: ImportError when not installed

        expressions = [
            _reference_pattern(),
            _CSS_ESCAPE,
            *(re.escape(s) + _AUTHORITY_RUN + _AUTHORITY_END for s in _AUTHORITY_STARTS),
            b"srcdoc",
        ]
        som = hyperscan.HS_FLAG_SOM_LEFTMOST
        flags = [som] * (len(expressions) - 1) + [som | hyperscan.HS_FLAG_CASELESS]
        self._db = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
        self._db.compile(expressions=expressions, ids=list(range(len(expressions))), flags=flags)
        self._local = threading.local()
        self._local.scratch = self._db.scratch

    def starts(self, buf: bytes) -> list[int]:
        if not buf:
            return []
        found: set[int] = set()
        add = found.add

        def on_match(_index: int, start: int, _end: int, _flags: int, _context: object) -> None:
            add(start)

        scratch = getattr(self._local, "scratch", None)
        if scratch is None:
            scratch = self._local.scratch = self._db.scratch.clone()
        self._db.scan(buf, match_event_handler=on_match, scratch=scratch)
        return sorted(found)


_SCHEME_ENDS = frozenset(b"sSpP")  # the last letter of https, wss, ws; http, ftp
_SPECIAL = (b"https", b"http", b"wss", b"ws", b"ftp")


def in_raw_text(data: bytes, found: list[int]) -> list[int]:
    """Of ``found`` (``starts(data)``), the offsets where a host can hide in raw text
    (a <style>'s: no character reference is decoded there, and no srcdoc read): a CSS
    escape, a hiding byte in an authority, and ``s:`` or ``p:`` only where a special
    scheme's name ends (``https:host``; tabs and newlines in the name count for
    nothing, as a URL parser drops them). CSS is full of the other ``s:`` and ``p:``
    (``a:hover``, ``top:50%``): each would make a whole stylesheet be read."""
    kept = []
    for at in found:
        byte = data[at]
        if byte == 0x26:  # '&': a character reference, not decoded in raw text
            continue
        if byte in _SCHEME_ENDS and data[at + 1 : at + 2] == b":":
            name = data[max(0, at - 24) : at + 1].translate(None, b"\t\n\r")
            if not name.lower().endswith(_SPECIAL):
                continue
        elif byte in b"sS":  # srcdoc
            continue
        kept.append(at)
    return kept


def _engine() -> Callable[[bytes], list[int]]:
    try:
        return _Hyperscan().starts
    except Exception:  # not installed, or a CPU without the instructions it needs
        return starts_re


starts: Callable[[bytes], list[int]] = _engine()
