"""The HTML tokenizer's patterns, at the byte level (WHATWG tokenizer states that
locate elements): tags with their attributes, the end of raw-text content (with the
script data escape states), and attribute values decoded. Pure functions only.

The attribute grammar (``attr_value``, ``attributes``) is shared with the generated
skip patterns (skip.py), which take values with a ``Run`` of their own.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from dataclasses import dataclass

from proxy.html.spec import RAWTEXT

WS = rb"\t\n\f\r "

# A pattern of "any number of characters not in ``neg``" (a byte class body), that
# may stop earlier (skip.py's runs stop where a needle could be).
Run = Callable[[bytes], bytes]


def many(group: bytes) -> bytes:
    """``group`` any number of times, never given back: a greedy loop in an atomic group.

    ``(?:group)*+`` means the same, but CPython 3.11.0-3.11.4 (Debian 12's python3 is
    3.11.2) match a possessive repeat of a group that can backtrack wrongly (gh-106052,
    fixed in 3.11.5): ``(?:<(?:b|(?=[^a-z]))x*+)*+`` takes the '<' of ``<a``, so a skip
    pattern would swallow tags it must stop at. Atomic groups match correctly there,
    and 3.11.5+ run a possessive group repeat as this very construct. A possessive
    quantifier on one character (``[^<]*+``) is a different opcode, not affected."""
    return b"(?>(?:" + group + b")*)"


def plain_run(neg: bytes) -> bytes:
    """Any number of characters not in ``neg``, never given back."""
    return b"[^" + neg + b"]*+"


# An attribute name: its first character may be '='.
ATTR_NAME = rb"[^\t\n\f\r />][^\t\n\f\r />=]*+"


def attr_value(run: Run) -> bytes:
    """An optional '=' and value after an attribute name, values made of ``run``."""
    return (
        rb"(?:[\t\n\f\r ]*+=[\t\n\f\r ]*+(?:"
        b'"' + run(b'"') + b'"'
        b"|'" + run(b"'") + b"'"
        # An unquoted value ends only at a space or '>' (where a needle stopped it, the
        # rest must not pass for the next attribute's name).
        rb"|(?![\"'])" + run(rb"\t\n\f\r >") + rb"(?=[\t\n\f\r >]))"
        rb"|(?![\t\n\f\r ]*=))"
    )


def attributes(attribute: bytes) -> bytes:
    """The attributes of a tag, each made of ``attribute``, up to its closing '>'."""
    # Unrolled: one turn of the loop per attribute, the spaces after it taken along.
    return rb"[\t\n\f\r /]*+" + many(attribute + rb"[\t\n\f\r /]*+")


def tag_rest(attrs: bytes | None = None) -> bytes:
    """The rest of a start or end tag after its first letter, through '>' (``attrs``:
    the attributes' pattern; every value taken whole by default)."""
    return rb"[^\t\n\f\r />]*+" + (_ATTRS if attrs is None else attrs) + b">"


def ci(text: str) -> bytes:
    """``text`` as a pattern matching any ASCII letter case."""
    out = []
    for byte in text.encode("utf-8"):
        ch = bytes([byte])
        out.append(b"[" + ch.lower() + ch.upper() + b"]" if ch.isalpha() else re.escape(ch))
    return b"".join(out)


_ATTRS = attributes(ATTR_NAME + attr_value(plain_run))
TAG = re.compile(rb"<(/?)([A-Za-z][^\t\n\f\r />]*+)(" + _ATTRS + rb")>")
ATTR = re.compile(
    rb"([^\t\n\f\r />][^\t\n\f\r />=]*)"
    rb"(?:[\t\n\f\r ]*=[\t\n\f\r ]*(\"[^\"]*\"|'[^']*'|[^\t\n\f\r >]*))?"
)

RAW_END = {
    name: re.compile(b"</" + name.encode() + rb"[\t\n\f\r />]", re.IGNORECASE) for name in RAWTEXT
}


_SCRIPT_EVENT = re.compile(rb"<!--|-->|</script[\t\n\f\r />]|<script[\t\n\f\r />]", re.IGNORECASE)
_LONGEST_EVENT = 9  # len(b"</script>")
# '</' first: a literal the search can look for quickly (IGNORECASE would hide it).
_SCRIPT_END = re.compile(rb"</(?=[sS][cC][rR][iI][pP][tT][\t\n\f\r />])")

# Script data states that matter for finding the end tag.
SCRIPT_DATA, ESCAPED, DOUBLE_ESCAPED = 0, 1, 2


def find_script_end(buf: bytes, pos: int, state: int) -> tuple[int, int, int]:
    """Scan script data in ``buf`` from ``pos`` in ``state``.

    Returns ``(end, state, resume)``: ``end`` is the offset of the ``</script`` that
    closes the element, or -1; then ``resume`` is where scanning continues once more
    bytes arrive, and everything before ``resume`` is known to be script content.
    """
    limit = len(buf) - _LONGEST_EVENT + 1
    if state == SCRIPT_DATA:  # the usual script: no '<!--' before its end tag
        first = _SCRIPT_END.search(buf, pos)
        if (
            first is not None
            and first.start() < limit
            and buf.find(b"<!--", pos, first.start()) < 0
        ):
            return first.start(), state, first.start()
    while True:
        m = _SCRIPT_EVENT.search(buf, pos)
        if m is None or m.start() >= limit:
            return -1, state, max(pos, min(limit, len(buf)))
        token = m.group().lower()
        if token == b"<!--":
            if state == SCRIPT_DATA:
                state = ESCAPED
            pos = m.start() + 2  # '<!-->' ends the escape at once
        elif token == b"-->":
            state = SCRIPT_DATA
            pos = m.end()
        elif token.startswith(b"</"):
            if state == DOUBLE_ESCAPED:
                state = ESCAPED
            else:
                return m.start(), state, m.start()
            pos = m.end() - 1
        else:
            if state == ESCAPED:
                state = DOUBLE_ESCAPED
            pos = m.end() - 1


def self_closing(tag: bytes) -> bool:
    """Whether a start tag ends with the self-closing "/>" (WHATWG tokenizer): not when
    the "/" ends an unquoted attribute value (``<script src=/x/>``), which takes it."""
    if not tag.endswith(b"/>"):
        return False
    last = None
    for m in ATTR.finditer(tag, 1, len(tag) - 1):
        last = m
    if last is None or last.end() != len(tag) - 1:
        return True  # the "/" follows a space, a quote or the name
    value = last.group(2)
    return value is None or value[:1] in (b'"', b"'")


@dataclass(frozen=True)
class Attribute:
    """One attribute of a tag: decoded name and value, and its byte span in the tag."""

    name: str
    value: str
    start: int
    end: int


def parse_attributes(tag: bytes, offset: int, encoding: str) -> list[Attribute]:
    """Attributes of ``tag`` after ``offset`` (the end of the tag name), first wins."""
    seen: set[str] = set()
    result: list[Attribute] = []
    for m in ATTR.finditer(tag, offset, len(tag) - 1):
        name = m.group(1).lower().decode("latin-1")
        if name in seen:
            continue
        seen.add(name)
        raw = m.group(2)
        if raw is None:
            value = ""
        else:
            if raw[:1] in (b'"', b"'"):
                raw = raw[1:-1]
            value = html.unescape(raw.decode(encoding, "surrogateescape"))
        result.append(Attribute(name, value, m.start(), m.end()))
    return result


def escape_attribute(value: str, encoding: str) -> bytes:
    text = value.replace("&", "&amp;").replace('"', "&quot;")
    return text.encode(encoding, "xmlcharrefreplace")
