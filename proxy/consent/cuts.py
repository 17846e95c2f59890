"""Inline scripts that mix a site's own code with a tracker's loader: the tracker's
statements cut out and the rest kept, or the script removed whole with an absorbing
stand-in for the global functions it defined.

A denied rule's ``contains`` or a catalogued host in a running inline script removes
it whole: a site that defines its own functions in the same script as the tracker's
loader (``function _asyncStyles(u) {...} ... _asyncScript('//www.google-analytics.com/
ga.js')``) loses them, and its later code breaks. ``cut`` keeps what it can tell
apart: the script's top-level statements (jsparts.py) without

- the statements a denied rule or the catalogue would remove the script for
  (``blocked``: the loader, the configuration naming the tracker);
- the tracker's queue: a function that only pushes its ``arguments`` (``function
  gtag(){dataLayer.push(arguments)}``, ``Krux = function(){Krux.q.push(arguments)}``),
  the array a cut statement queues to (``var _gaq = _gaq || []``), and every statement
  that uses a name a cut statement defined, or that calls a name a cut statement
  gives as a string (``(function(i,s,o,g,r){...})(..., 'ga'); ga('create', ...)``).

It fails closed: None (the script goes whole) when the script cannot be split
(jsparts.py), when nothing of it is left, or when what is left would still be
removed. What is kept is checked with the same ``blocked`` as the whole script was,
so it names no tracker the visitor refused.

Where a script goes whole, or a cut statement defined a global function
(``window.hj = window.hj || function(){...}``, ``Krux = function``, ``function f()``
at the top level), page code after it may call that function: ``names`` are given to
the absorbing stand-in (proxy/ui/assets/absorbing.js), which accepts any call and
property chain. The names the shipped surrogates define are left to them.
"""

from __future__ import annotations

import bisect
import itertools
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from proxy.consent import standins
from proxy.consent.contacts import REMOVE, script_runs
from proxy.consent.cutmemo import Book, CutMemo
from proxy.consent.jsparts import NAME, PUNCT, STRING, Statement, TextMemo, Token, statements
from proxy.html import Element

CUT = "cut"  # the action counted for a script kept without its tracker statements
# Scripts longer than this are not split into statements (Python, ~14 calls a token:
# a 4 MB bundle would take seconds): never cut, removed whole, their stand-in's names
# found by the patterns alone (window.NAME = function, the queue stub idiom).
MAX_SPLIT = 256 * 1024
_ID = r"[A-Za-z_$][\w$]*"
_GLOBAL = r"\b(?:window|self|globalThis|top)"
_FUNCTION = rf"(?:async\s+)?(?:function\b|\([^()]*\)\s*=>|{_ID}\s*=>)"
# window.NAME = [window.NAME ||] function / window['NAME'] = ...
_WINDOW_FUNCTION = re.compile(
    rf"{_GLOBAL}\s*(?:\.\s*({_ID})|\[\s*(['\"])({_ID})\2\s*\])\s*=(?!=)\s*"
    rf"(?:[^;{{}}()]{{0,100}}?\|\|\s*)?{_FUNCTION}"
)
# X.NAME = X.NAME || function (a queue stub on the object a snippet gets as window)
_MEMBER_STUB = re.compile(rf"\b({_ID})\s*\.\s*({_ID})\s*=\s*\1\s*\.\s*\2\s*\|\|\s*{_FUNCTION}")
# NAME = [NAME ||] function, at the start of a statement or of a parenthesis
_BARE_FUNCTION = re.compile(rf"(?:^|[(;{{}}!&|])\s*({_ID})\s*=(?!=)\s*(?:\1\s*\|\|\s*)?{_FUNCTION}")
# A function that only queues its arguments: function(){ X.push(arguments) }
_STUB = re.compile(
    r"function\s*[\w$]*\s*\(\s*\)\s*\{\s*\(?\s*[\w$.\[\]'\"]+(?:\s*=\s*[\w$.\[\]'\"]+\s*\|\|\s*"
    r"\[\s*\]\s*\))?\s*\.push\(\s*arguments\s*\)\s*;?\s*\}"
)
# [var] [window.]X = [window.]X = ... [[window.]X ||] []
_QUEUE = re.compile(
    rf"(?:(?:var|let|const)\s+)?(?:(?:window\s*\.\s*)?({_ID})\s*=\s*)+"
    rf"(?:(?:window\s*\.\s*)?{_ID}\s*\|\|\s*)?\[\s*\]\s*;?"
)
# var NAME = a literal, ...: a tracker's settings (kept alone, the script goes whole)
_LITERAL = r"""(?:-?[\d.]+|"[^"\\]*"|'[^'\\]*'|true|false|null)"""
_INERT = re.compile(
    rf"(?:var|let|const)\s+{_ID}\s*=\s*{_LITERAL}(?:\s*,\s*{_ID}\s*=\s*{_LITERAL})*\s*;?"
)
# var X = document.createElement(...): with X's src cut, the rest of its loader goes
_ELEMENT = re.compile(rf"(?:var|let|const)\s+({_ID})\s*=\s*[\w$.]*createElement\(")
_DECLARING = frozenset({"var", "let", "const"})
# What the shipped surrogates define (proxy/ui/assets/surrogates/): theirs to define,
# never an absorbing stand-in's (one would hide the real API they give, callbacks and all).
SURROGATE_GLOBALS = frozenset(
    {"ga", "gtag", "_gaq", "_gat", "dataLayer", "GoogleAnalyticsObject", "google_tag_manager"}
    | {"googletag", "adsbygoogle", "fbq", "_fbq", "FB", "fbAsyncInit", "twttr", "lintrk"}
    | {"_linkedin_data_partner_ids", "__tcfapi"}
)


@dataclass(frozen=True)
class Cut:
    """A script with the tracker's statements cut out: the text kept, how many
    statements went, and the global functions they defined (for the stand-in)."""

    text: str
    removed: int
    names: tuple[str, ...]


def cut(text: str, blocked: Callable[[str], bool]) -> Cut | None:
    """``text`` (a classic script's) without its tracker statements, ``blocked``
    telling which text would be removed; None when the script must go whole."""
    parts = statements(text)
    if not parts:
        return None
    pieces = [text[p.start : p.end] for p in parts]
    gone = {i for i, piece in enumerate(pieces) if blocked(piece) or _STUB.search(piece)}
    if not gone or len(gone) == len(parts):
        return None
    related = _Related(parts, pieces)
    more = gone
    while more := related.also_cut(gone, more):
        gone |= more
    if all(i in gone or _INERT.fullmatch(pieces[i]) for i in range(len(parts))):
        return None  # what is left only sets values for the tracker: nothing to keep
    out, at = [], 0
    for i, part in enumerate(parts):
        # A cut statement leaves a semicolon: the statements before and after it stay
        # apart (a "(" after a function expression would call it).
        out.append(";\n" if i in gone else text[at : part.end])
        at = part.end
    out.append(text[at:])
    kept = "".join(out)
    if blocked(kept):
        return None
    own = set().union(*(related.declared[i] for i in range(len(parts)) if i not in gone))
    names = [n for i in sorted(gone) for n in _defined(pieces[i], parts[i])]
    return Cut(kept, len(gone), _usable(names, own))


class _Related:
    """One script's statements, read for what ties them to the cut ones (module
    docstring): each statement read once, however many rounds the cut takes."""

    def __init__(self, parts: Sequence[Statement], pieces: list[str]) -> None:
        self._parts = parts
        self._pieces = pieces
        self.declared = [_declared(p) for p in parts]
        self._defined: set[str] = set()  # what the cut statements declare and define
        self._said: set[str] = set()  # the strings they give
        self._used: set[str] = set()  # the names they use as variables
        self._mentions: dict[int, set[str]] = {}
        self._queues: dict[int, str | None] = {}
        self._elements: dict[int, str | None] = {}

    def also_cut(self, gone: set[int], new: set[int]) -> set[int]:
        """The statements kept so far that belong to the cut ones, ``new`` the cut
        statements not seen before (every one of ``gone`` the first time)."""
        parts, pieces = self._parts, self._pieces
        for i in new:
            self._defined |= self.declared[i]
            self._defined.update(_defined(pieces[i], parts[i]))
            self._said |= {t.text[1:-1] for t in parts[i].tokens if t.kind == STRING}
            self._used |= _references(parts[i].tokens)
        kept = [i for i in range(len(parts)) if i not in gone]
        own = set().union(*(self.declared[i] for i in kept))
        defined, said, used = self._defined - own, self._said, self._used
        more = set()
        for i in kept:
            toks = parts[i].tokens
            # Any mention counts: window.X is read as w.X too, or as w["X"].
            if not self._mentions_of(i).isdisjoint(defined):
                more.add(i)
            elif toks[0].kind == NAME and toks[0].text in said and toks[0].text not in own:
                if len(toks) > 1 and toks[1].text in ("(", "."):
                    more.add(i)
            elif (queue := self._queue(i)) is not None and queue in used:
                more.add(i)
            elif (made := self._element(i)) is not None and made in used:
                more.add(i)  # the element a cut statement gives the tracker's URL
        return more

    def _mentions_of(self, i: int) -> set[str]:
        found = self._mentions.get(i)
        if found is None:
            toks = self._parts[i].tokens
            found = self._mentions[i] = {
                t.text.strip("'\"") for t in toks if t.kind in (NAME, STRING)
            }
        return found

    def _queue(self, i: int) -> str | None:
        if i not in self._queues:
            queue = _QUEUE.fullmatch(self._pieces[i])
            self._queues[i] = queue.group(1) if queue else None
        return self._queues[i]

    def _element(self, i: int) -> str | None:
        if i not in self._elements:
            made = _ELEMENT.match(self._pieces[i])
            self._elements[i] = made.group(1) if made else None
        return self._elements[i]


def _references(toks: tuple[Token, ...]) -> set[str]:
    """The names a statement uses as variables (not as properties after a dot)."""
    out = set()
    for before, t in zip((None, *toks), toks, strict=False):
        if t.kind == NAME and not (before and before.kind == PUNCT and before.text in (".", "?.")):
            out.add(t.text)
    return out


def _declared(part: Statement) -> set[str]:
    """The names a top-level statement declares or assigns: var/let/const names,
    a function or class declaration's, NAME = ... and window.NAME = ...."""
    toks = part.tokens
    first = toks[0].text
    out: set[str] = set()
    if first in _DECLARING:
        expect = True
        for t in toks[1:]:
            if expect and t.kind == NAME:
                out.add(t.text)
            expect = t.level == toks[0].level and t.text == ","
    elif first in ("function", "class", "async") and len(toks) > 2:
        named = toks[2] if first == "async" else toks[1]
        if named.kind == NAME:
            out.add(named.text)
    elif len(toks) > 1 and toks[0].kind == NAME and toks[1].text == "=":
        out.add(first)
    elif len(toks) > 3 and first == "window" and toks[1].text == "." and toks[3].text == "=":
        out.add(toks[2].text)
    return out


def functions(text: str, part: Statement | None = None) -> list[str]:
    """The global functions ``text`` (a statement, ``part``, or a whole script)
    defines: top-level function declarations, window.NAME = function, the queue
    stub idiom X.NAME = X.NAME || function, and NAME = function."""
    found: list[str] = []
    if part is None and len(text) > MAX_SPLIT:
        found += [m.group(1) or m.group(3) for m in _WINDOW_FUNCTION.finditer(text)]
        return found + [m.group(2) for m in _MEMBER_STUB.finditer(text)]
    parts = [part] if part is not None else statements(text) or []
    for p in parts:
        toks = p.tokens
        if toks[0].text == "function" and len(toks) > 1 and toks[1].kind == NAME:
            found.append(toks[1].text)
    # Each pattern below ends in a function expression, assigned ("="): without both
    # in the text none can match (and each would try every position of it).
    if "=" not in text or ("function" not in text and "=>" not in text):
        return found
    for m in _WINDOW_FUNCTION.finditer(text):
        found.append(m.group(1) or m.group(3))
    if "||" in text:
        found += [m.group(2) for m in _MEMBER_STUB.finditer(text)]
    # NAME = function inside a braced body is most likely that function's own
    # variable: only outside braces (Krux's `window.Krux || ((Krux = function...`).
    bare = list(_BARE_FUNCTION.finditer(text))
    if not bare:
        return found  # most statements: their braces need not be found
    base = part.start if part is not None else 0
    braces = [(t.start - base, t.text) for p in parts for t in p.tokens if t.text in ("{", "}")]
    at_brace = [pos for pos, _ in braces]
    # Depth after each brace, so the depth at a match is one bisection (not a sum).
    depth = [0, *itertools.accumulate(1 if b == "{" else -1 for _, b in braces)]
    for m in bare:
        if depth[bisect.bisect_left(at_brace, m.start(1))] == 0:
            found.append(m.group(1))
    return found


def _defined(piece: str, part: Statement) -> list[str]:
    """``functions`` of one statement, remembered by its text (its positions count
    from its own start)."""
    return _PIECES.get(piece, lambda text: functions(text, part))


_PIECES: TextMemo[list[str]] = TextMemo(256 * 1024)


def _usable(names: list[str], own: set[str]) -> tuple[str, ...]:
    """Names for the absorbing stand-in: once each, not the page's own (kept), not
    a surrogate's, not a word JavaScript reserves."""
    skip = own | SURROGATE_GLOBALS | _RESERVED
    return tuple(n for n in dict.fromkeys(names) if n not in skip)


def stand_in_names(text: str) -> tuple[str, ...]:
    """The names the absorbing stand-in takes for a script removed whole."""
    return _NAMES.get(text, lambda t: _usable(functions(t), set()))


_NAMES: TextMemo[tuple[str, ...]] = TextMemo(1024 * 1024)


_RESERVED = frozenset(
    {"window", "self", "top", "document", "globalThis", "this", "function", "var", "let"}
    | {"const", "new", "return", "typeof", "void", "delete", "in", "of", "if", "else"}
    | {"undefined", "null", "true", "false", "arguments", "eval", "location", "name"}
)


class PageCuts:
    """One page's way with the running inline scripts that a denied rule's text block
    or the catalogue removes: cut where it can be, else removed whole with the absorbing
    stand-in (``remove``). ``blocked`` is the judge of both: the denied rules'
    snippets (``patterns``, the plan's text blocks) and ``catalogue`` (the catalogue
    gate's judge of a text, set by the page when the catalogue acts)."""

    def __init__(self, patterns: tuple[re.Pattern[str], ...], absorbing: str) -> None:
        self._patterns = patterns
        self._absorbing = absorbing
        self._catalogue: Callable[[str], bool] | None = None
        self._book: Book[Cut | None] | None = None  # this page's in the memo, at the first cut
        self.xml = False  # XHTML: scripts are not cut (an XML parser reads their text)
        self.hashed = False  # a policy allows scripts by hash: only those with a nonce are cut

    @property
    def catalogue(self) -> Callable[[str], bool] | None:
        """The catalogue's judge of a text (cutmemo.py: a ``TextJudge``, or any
        callable that compares equal only where it answers alike)."""
        return self._catalogue

    @catalogue.setter
    def catalogue(self, judge: Callable[[str], bool] | None) -> None:
        self._catalogue = judge
        self._book = None  # another judge: other cuts

    def blocked(self, text: str) -> bool:
        """Whether a script with ``text`` would be removed for it."""
        if any(p.search(text) for p in self._patterns):
            return True
        return self._catalogue is not None and self._catalogue(text)

    def cut(self, text: str) -> Cut | None:
        """``cut(text, self.blocked)``, remembered per text and judge (cutmemo.py)."""
        if self._book is None:
            patterns = tuple((p.pattern, p.flags) for p in self._patterns)
            self._book = _CUTS.book((patterns, self._catalogue))
        return self._book.get(text, self._cut_text)

    def _cut_text(self, text: str) -> Cut | None:
        return cut(text, self.blocked)

    def remove(self, el: Element, before: str = "", cut: bool = True) -> tuple[str, int]:
        """``el`` removed, ``before`` (its rule's surrogates) in its place; or, when
        ``cut`` and ``el`` is a running inline script that can be cut, kept without its
        tracker statements, ``before`` in front of it. The absorbing stand-in goes in
        too, for the global functions of what went. Returns the action ("remove",
        "cut") and how many absorbing stand-ins went in (0 or 1)."""
        done = self._cut(el) if cut else None
        if done is None:
            absorbing = self.stand_in(el)
            el.replace(before + absorbing)
            return REMOVE, int(bool(absorbing))
        el.set_text(done.text)
        absorbing = standins.absorbing_markup(done.names, self._absorbing)
        if before or absorbing:
            el.before(before + absorbing)
        return CUT, int(bool(absorbing))

    def _cut(self, el: Element) -> Cut | None:
        if self.xml or not _inline(el) or el.text_truncated or "\ufffd" in el.text:
            return None
        if len(el.text) > MAX_SPLIT:
            return None
        if self.hashed and el.get("nonce") is None:
            return None
        return self.cut(el.text)

    def stand_in(self, el: Element) -> str:
        """The absorbing stand-in for the global functions ``el`` defines, when it is
        a running inline script that goes whole; "" otherwise."""
        if not self._absorbing or not _inline(el):
            return ""
        return standins.absorbing_markup(stand_in_names(el.text), self._absorbing, self.xml)


# Cuts of ~1 MB of script text (a site's ~20 inline scripts cut per page, a few hundred
# KB over its pages), for up to 64 judges (generations, variants and sites).
_CUTS: CutMemo[Cut | None] = CutMemo(1024 * 1024, 64)

_HASHES = re.compile(
    r"(?:^|;)\s*(?:script-src(?:-elem)?|default-src)\s[^;]*'sha(?:256|384|512)-", re.I
)


def by_hash(policies: Sequence[str]) -> bool:
    """Whether a Content-Security-Policy of ``policies`` may let inline scripts run by
    their hash (a script-src, script-src-elem or default-src with a hash source): a
    cut script's hash is not the one listed, so only scripts with a nonce are cut."""
    return any(_HASHES.search(policy) for policy in policies)


def _inline(el: Element) -> bool:
    """Whether ``el`` is an inline script whose text runs."""
    return el.tag == "script" and el.get("src") is None and bool(el.text) and script_runs(el.get)
