"""Where authorities are written in HTML bytes: the inventory's scan (sightings.py).

An authority is written after two slashes of either kind (``//host``, ``\\\\host``,
``/\\host``, ``\\/host``), as a run of 3 to 260 host bytes (the class below stops
before a path, query, quote, space, tag end or character reference). ``find(buf)``
gives every one as ``(start, written)``, ``start`` the offset of its first slash,
sorted, one per start: the same list as running ``//`` and ``\\\\``-led patterns with
``re.finditer`` (two runs of authorities cannot overlap: a run holds no slash).

Two engines, the same answer. Hyperscan (as the catalogue's prefilter uses, where it
installs) finds the starts at a few instructions per kilobyte, and only the starts
followed by three host bytes come back to Python; ``re`` runs two passes, each at
the speed of its first byte ("/" is among HTML's most frequent bytes): on a 150 KB
page the two cost 2 M instructions, the whole inventory's budget.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable

HOST_CLASS = rb"[A-Za-z0-9._~%@:\[\]\x80-\xff-]"
_MIN, _MAX = 3, 260
HOSTISH = HOST_CLASS + rb"{%d,%d}" % (_MIN, _MAX)
_RUN = re.compile(HOSTISH)
# re: each pattern begins with a literal byte, which re skips to in C.
_PATTERNS = (re.compile(rb"/[/\\](" + HOSTISH + rb")"), re.compile(rb"\\[/\\](" + HOSTISH + b")"))
# Hyperscan reports where a match ends: a fixed width puts each start at end - 5.
_HS_PATTERN = rb"[/\\][/\\]" + HOST_CLASS + rb"{%d}" % _MIN
_HS_WIDTH = 2 + _MIN

Found = list[tuple[int, bytes]]  # (offset of the first slash, the authority as written)


def find_re(buf: bytes) -> Found:
    """Every authority in ``buf``, with ``re`` (the reference)."""
    found = [(m.start(), m.group(1)) for pattern in _PATTERNS for m in pattern.finditer(buf)]
    found.sort()
    return found


class _Hyperscan:
    """The starts in one Hyperscan block-mode scan; each thread its own scratch."""

    def __init__(self) -> None:
        import hyperscan  # optional: ImportError where it does not install

        self._db = hyperscan.Database(mode=hyperscan.HS_MODE_BLOCK)
        self._db.compile(expressions=[_HS_PATTERN], ids=[0], flags=[0])
        self._local = threading.local()
        self._local.scratch = self._db.scratch

    def find(self, buf: bytes) -> Found:
        if len(buf) < _HS_WIDTH:
            return []
        ends: list[int] = []
        append = ends.append

        def on_match(_id: int, _from: int, end: int, _flags: int, _context: object) -> None:
            append(end)

        scratch = getattr(self._local, "scratch", None)
        if scratch is None:
            scratch = self._local.scratch = self._db.scratch.clone()
        self._db.scan(buf, match_event_handler=on_match, scratch=scratch)
        run = _RUN.match
        # Every match extends to at least _MIN host bytes, so run() always matches.
        return [(end - _HS_WIDTH, run(buf, end - _MIN).group()) for end in ends]  # type: ignore[union-attr]


def _engine() -> tuple[str, Callable[[bytes], Found]]:
    try:
        return "hyperscan", _Hyperscan().find
    except Exception:  # not installed, or a CPU without the instructions it needs
        return "re", find_re


ENGINE, find = _engine()
