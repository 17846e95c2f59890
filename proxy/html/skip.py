"""Generated skip patterns: the rewriter's fast path, one regular expression per set
of selectors and hints.

The rewriter hands every byte of a page to the regular-expression engine first:
``skip_pattern(...).match(buf, pos)`` consumes, in one call that stays in C, the text,
comments, doctypes and complete tags the rewriter need not see, and stops at the
first one it must (a start tag a handler may want, an end tag of a tracked element,
a construct the buffer does not yet hold whole). On a typical page that is nearly
everything: Python sees a few tags, not thousands.

Why one pattern per selector set. What stops the pattern is written into it as
literals: the tag names handlers act on, and the needles (``Needle``) that a tag of a
filtered name must hold in an attribute value for a handler to care (``[src*=x]`` in
a selector, or the rewriter's ``Hints``), and for raw-text elements the literals
their text must hold. Python's ``re`` has no parameters, so each set of selectors and
hints (each ``Program``, program.py) gets a pattern generated for it, compiled once
(tens of milliseconds; ``skip_pattern`` keeps the last 256 by their arguments) and
before any page needs it (the proxy compiles at start-up and in the rules reload).

What a pivot is. A filtered tag's attribute values are taken by "runs": any number
of characters but the value's delimiter. Testing, at every character, whether one of
N needles starts there would make the engine try N branches per byte. Instead each
needle is checked at one of its characters only, its pivot: its rarest letter by the
frequency of letters in tags and inline scripts (``_FREQUENT``), else its last
character that no run stops at. The run is a byte class of everything but the
delimiter and the pivot characters, which sre takes in a tight C loop; at a pivot
character it looks behind for the needle's head and ahead for its tail (every needle
that has this pivot), and, when none completes, takes the character and runs on. A
rare pivot means few stops. A pivot may not be a character that delimits a run or
that the check itself uses (spaces, quotes, ``= < > / &``); a needle with no other
character, or with a character a tag's bytes need not show literally (``& " ' < >``,
which a character reference hides), is not safe to look for this way: tags of its
name always stop, and Python looks. So does a character reference that could spell
part of a needle (``_RISKY_REF``): values are compared decoded.

Why 64 needles. The checks at a pivot are alternatives that sre tries one by one, and
every pivot character is one more stop of the fast loop: the cost per byte of a
filtered tag grows with the number of needles, while a tag that stops costs one
search of all its literals at once in Python (the candidates' union in dispatch.py,
a prefix tree from ``literals_pattern``). Past a point the pattern is the slower way; a tag
name with more than ``_MAX_NEEDLES`` distinct needles (or raw-text literals) is not
filtered by the pattern and always stops. The figure is a bound, not a measured
optimum: it was raised from 8 so that the built-in rules' largest sets fit (about 50
distinct needles for <img>, and as many script-text literals, after
``minimal_needles``), which lets most scripts and images pass in C.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterable

from proxy.html.lexer import ATTR_NAME, attr_value, attributes, ci, many, plain_run, tag_rest
from proxy.html.spec import PLAIN_RAWTEXT, RAWTEXT

# A literal a tag must contain: its text, whether any letter case matches, and the
# attribute whose value holds it (None: any attribute's).
Needle = tuple[str, bool, str | None]


def _tag_rest(needles: Iterable[Needle] = ()) -> bytes:
    """The rest of a start or end tag after its first letter, through '>'."""
    return tag_rest(_attrs(needles))


# After a '&': a character reference that could spell part of an ASCII needle, a
# numeric one or a named one with its semicolon (legacy names without one decode to
# '&<>"' or to non-ASCII characters). The ones URLs and quoted text are full of decode
# to characters no needle holds, and do not stop the skip.
_RISKY_REF = rb"#|(?!(?:amp|quot|lt|gt|apos|nbsp);)[A-Za-z0-9]++;"


def _runs(needles: list[tuple[str, bool]], refs: bool = True) -> Callable[[bytes], bytes]:
    """Builds 'any number of characters not in ``neg``' that do not complete a needle, nor
    start a character reference when ``refs`` (in a tag one could spell a needle).

    Each needle is checked at its rarest character, the pivot: once it is taken, by
    looking back over it and ahead for the rest. Other characters run on at full
    speed, and each pivot character is tested only for the needles it belongs to."""
    if not needles:
        return plain_run
    checks: dict[bytes, list[bytes]] = {}
    if refs:  # any '&' when a needle is not ASCII ((?!) fails: it always stops)
        ascii_only = all(n.isascii() for n, _ in needles)
        checks[b"&"] = [_RISKY_REF if ascii_only else b""]
    for text, any_case in needles:
        raw = text.encode("utf-8")
        units = [_unit(byte, any_case) for byte in raw]
        at = _pivot(raw)
        behind = b"(?<=" + b"".join(units[: at + 1]) + b")" if at else b""
        pivot = raw[at : at + 1]
        for char in {pivot.lower(), pivot.upper()} if any_case else {pivot}:
            checks.setdefault(char, []).append(behind + b"".join(units[at + 1 :]))
    starts = b"".join(re.escape(c) for c in sorted(checks))
    pivot = (
        b"(?:"
        + b"|".join(
            re.escape(char) + b"(?!" + b"|".join(rests) + b")"
            for char, rests in sorted(checks.items())
        )
        + b")"
    )

    def run(neg: bytes) -> bytes:
        plain = b"[^" + neg + starts + b"]"
        # Unrolled (a loop iteration per pivot character, not per run): sre pays for
        # every turn of a repeated group.
        return plain + b"*+" + many(pivot + plain + b"*+")

    return run


# Letters from most to least frequent in tags and inline scripts (counted over the
# pages of the test corpus).
_FREQUENT = b"eatisnlorcdpmhufgbwvykxjqz"


_NOT_PIVOT = frozenset(b"\t\n\f\r /=<>&\"'")  # they delimit runs (or are the check's own)


def _pivot(text: bytes) -> int:
    """Where to check for ``text``: at its rarest letter, else at its last character
    that cannot delimit a run (-1: nowhere)."""
    best, rank = -1, -2
    for i, byte in enumerate(text):
        if byte in _NOT_PIVOT:
            continue
        r = _FREQUENT.find(bytes([byte]).lower())  # -1: not a letter
        if r >= rank:
            best, rank = i, r
    return best


def _unit(byte: int, any_case: bool) -> bytes:
    ch = bytes([byte])
    return b"[" + ch.lower() + ch.upper() + b"]" if any_case and ch.isalpha() else re.escape(ch)


def _attrs(needles: Iterable[Needle] = ()) -> bytes:
    """The attributes of a tag up to its closing '>'. An attribute is a name (whose
    first character may be '='), then optionally '=' and a value; a quoted value must
    be closed, so an unterminated quote never ends a tag early.

    With ``needles``, the pattern fails on a tag with one of them in the value of its
    attribute (of any attribute when a needle names none), or with a character
    reference there that could spell one. Other values are taken at full speed.
    """
    needles = list(needles)
    name = ATTR_NAME
    if not needles or any(attr is None for _, _, attr in needles):
        return attributes(name + attr_value(_runs(_texts(needles))))
    by_attr: dict[str, list[Needle]] = {}
    for needle in needles:
        by_attr.setdefault(str(needle[2]).lower(), []).append(needle)
    names = [ci(attr) + rb"(?=[\t\n\f\r />=])" for attr in sorted(by_attr)]
    checked = [
        test + attr_value(_runs(_texts(by_attr[attr])))
        for test, attr in zip(names, sorted(by_attr), strict=True)
    ]
    # Any other attribute: one whose name is none of those.
    other = b"(?!" + b"|".join(names) + b")" + name + attr_value(plain_run)
    return attributes(b"(?:" + b"|".join([*checked, other]) + b")")


def _texts(needles: Iterable[Needle]) -> list[tuple[str, bool]]:
    return [(text, any_case) for text, any_case, _ in needles]


_Trie = dict[str, "_Trie"]


def literals_pattern(words: Iterable[str]) -> str:
    """A regular expression that finds where any of ``words`` occurs, for ``search``
    (a word that contains another is found by the shorter one), factored into a
    prefix tree: the engine then makes one character-set test per position instead
    of trying forty branches, so forty literals cost about what a few do.
    """
    root: _Trie = {}
    for word in words:
        node = root
        for ch in word:
            node = node.setdefault(ch, {})
        node[""] = {}  # a word ends here

    def emit(node: _Trie) -> str:
        if "" in node:
            return ""  # a whole word matched; longer ones need not be looked at
        alts = [re.escape(ch) + emit(sub) for ch, sub in sorted(node.items())]
        return alts[0] if len(alts) == 1 else "(?:" + "|".join(alts) + ")"

    return emit(root) if root else "(?!)"


def _guard(names: Iterable[str]) -> bytes:
    """Fails at a tag name in ``names``; a first-letter check keeps the common case cheap."""
    names = sorted(set(names))
    if not names:
        return b""
    letters = "".join(sorted({n[0].lower() for n in names} | {n[0].upper() for n in names}))
    alts = b"|".join(ci(n) for n in names)
    return b"(?:(?=[^" + re.escape(letters.encode()) + b"])|(?!(?:" + alts + rb")[\t\n\f\r />]))"


_MAX_NEEDLES = 64
# Needles never hold what a harmless character reference (&amp; &quot; &lt; &gt;
# &apos;) decodes to: the tag's bytes would not show them.
_TAG_NEEDLE = re.compile(r"[^&\"'<>]+")


def minimal_needles(needles: Iterable[Needle]) -> list[Needle]:
    """The needles without those that contain another in the same place (which finds
    them anyway)."""
    unique = sorted(set(needles), key=lambda n: (len(n[0]), n[0], n[1], str(n[2])))
    kept: list[Needle] = []
    for text, any_case, attr in unique:
        lower = text.lower()
        if not any(
            ((k.lower() in lower) if k_any else (k in text))
            for k, k_any, k_attr in kept
            if (k_any or not any_case) and k_attr in (None, attr)
        ):
            kept.append((text, any_case, attr))
    return kept


def skip_pattern(
    start_names: Iterable[str] | None,
    filtered: dict[str, list[Needle]] | None = None,
    end_names: Iterable[str] = (),
    text_needles: dict[str, list[Needle]] | None = None,
) -> re.Pattern[bytes]:
    def items(needles: dict[str, list[Needle]] | None) -> _Needles:
        return tuple(
            sorted((k, tuple(sorted(set(v), key=str))) for k, v in (needles or {}).items())
        )

    key = (
        None if start_names is None else frozenset(start_names),
        items(filtered),
        frozenset(end_names),
        items(text_needles),
    )
    return _skip_pattern(*key)


_Needles = tuple[tuple[str, tuple[Needle, ...]], ...]


@functools.lru_cache(maxsize=256)
def _skip_pattern(
    start_names: frozenset[str] | None,
    filtered_items: _Needles,
    end_names: frozenset[str],
    text_items: _Needles,
) -> re.Pattern[bytes]:
    """A pattern consuming, in one C-level call, text, comments, doctypes and every
    complete tag the rewriter need not see.

    Start tags named in ``start_names`` and end tags named in ``end_names`` stop it
    (``start_names=None``: every tag stops it). A start tag named in ``filtered``
    stops it only if it contains one of the needles (text, any letter case?) or a '&';
    raw-text elements consumed that way take their content and end tag along, unless
    the content holds one of their ``text_needles``.
    """
    # Every token but text starts with '<': one test of that character, then the
    # branches after it, most frequent first (sre tries branches one by one).
    tags: list[bytes] = []
    if start_names is not None:
        filtered = {k: list(v) for k, v in filtered_items}
        in_text = {k: minimal_needles(v) for k, v in text_items}
        always = set(start_names) | {"plaintext"}
        for name, needles in list(filtered.items()):
            needles = minimal_needles(needles)
            filtered[name] = needles
            text = in_text.get(name, [])
            # Many needles make the per-character check dearer than letting Python look.
            too_many = len({n for n, _, _ in needles}) > _MAX_NEEDLES or len(text) > _MAX_NEEDLES
            safe = all(_TAG_NEEDLE.fullmatch(n) for n, _, _ in needles)
            safe = safe and all(_pivot(n.encode("utf-8")) >= 0 for n, _, _ in needles + text)
            if name in always or too_many or not safe:
                always.add(name)
                del filtered[name]
        always |= RAWTEXT - set(filtered) - PLAIN_RAWTEXT
        name_rest = rb"[A-Za-z]" + _tag_rest()
        tags.append(_guard(always | set(filtered) | RAWTEXT) + name_rest)
        tags.append(b"/" + _guard(end_names) + name_rest)
        for name, needles in sorted(filtered.items()):
            tag = ci(name) + rb"(?=[\t\n\f\r />])" + _tag_rest(needles)
            if name in RAWTEXT:
                tag += _SELF_CLOSING + _raw_body(name, _texts(in_text.get(name, [])))
            tags.append(tag)
        for name in sorted(PLAIN_RAWTEXT - always - set(filtered)):
            start = ci(name) + rb"(?=[\t\n\f\r />])" + _tag_rest()
            tags.append(start + _SELF_CLOSING + _raw_body(name))
    others = [
        rb"!--(?:>|->|.*?--!?>)",
        rb"!(?!--)[^>]*+>",
        rb"\?[^>]*+>",
        rb"/(?![A-Za-z])[^>]*+>",
        rb"(?=[^A-Za-z!/?])",
    ]
    token = b"<(?:" + b"|".join(tags + others) + b")"
    # Unrolled: one turn of the loop per token, the text after it taken along.
    return re.compile(rb"[^<]*+" + many(token + rb"[^<]*+"), re.DOTALL)


# A raw-text start tag ending in "/>" stops: in foreign content it has no text (the
# rewriter knows where it is; the pattern does not).
_SELF_CLOSING = rb"(?<!/>)"


def _raw_body(name: str, needles: list[tuple[str, bool]] | None = None) -> bytes:
    """Raw-text content and its end tag; script content with '<!--' is left to Python,
    and so is content holding one of ``needles`` (text, any letter case?)."""
    end = b"/" + ci(name) + rb"(?=[\t\n\f\r />])"
    stop = end + (b"|!--" if name == "script" else b"")
    text = _runs(needles or [], refs=False)(b"<")
    return text + many(b"<(?!" + stop + b")" + text) + b"<" + end + _tag_rest()
