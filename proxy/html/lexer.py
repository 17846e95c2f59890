"""Byte-level HTML tokenizer pieces (WHATWG tokenizer states that locate elements).

Regular expressions for tags, comments and the rest, the end of raw-text content
(with the script data escape states), attribute spans, and the few tree-construction
facts the rewriter needs (void elements, implied end tags). Pure functions only.
"""

from __future__ import annotations

import functools
import html
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

WS = rb"\t\n\f\r "


def _many(group: bytes) -> bytes:
    """``group`` any number of times, never given back: a greedy loop in an atomic group.

    ``(?:group)*+`` means the same, but CPython 3.11.0-3.11.4 (Debian 12's python3 is
    3.11.2) match a possessive repeat of a group that can backtrack wrongly (gh-106052,
    fixed in 3.11.5): ``(?:<(?:b|(?=[^a-z]))x*+)*+`` takes the '<' of ``<a``, so a skip
    pattern would swallow tags it must stop at. Atomic groups match correctly there,
    and 3.11.5+ run a possessive group repeat as this very construct. A possessive
    quantifier on one character (``[^<]*+``) is a different opcode, not affected."""
    return b"(?>(?:" + group + b")*)"


# A literal a tag must contain: its text, whether any letter case matches, and the
# attribute whose value holds it (None: any attribute's).
Needle = tuple[str, bool, str | None]


def _tag_rest(needles: Iterable[Needle] = ()) -> bytes:
    """The rest of a start or end tag after its first letter, through '>'."""
    return rb"[^\t\n\f\r />]*+" + _attrs(needles) + b">"


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
        return lambda neg: b"[^" + neg + b"]*+"
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
        return plain + b"*+" + _many(pivot + plain + b"*+")

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
    name = rb"[^\t\n\f\r />][^\t\n\f\r />=]*+"
    if not needles or any(attr is None for _, _, attr in needles):
        return _attributes(name + _value(_runs(_texts(needles))))
    by_attr: dict[str, list[Needle]] = {}
    for needle in needles:
        by_attr.setdefault(str(needle[2]).lower(), []).append(needle)
    names = [_ci(attr) + rb"(?=[\t\n\f\r />=])" for attr in sorted(by_attr)]
    checked = [
        test + _value(_runs(_texts(by_attr[attr])))
        for test, attr in zip(names, sorted(by_attr), strict=True)
    ]
    # Any other attribute: one whose name is none of those.
    other = b"(?!" + b"|".join(names) + b")" + name + _value(_runs([]))
    return _attributes(b"(?:" + b"|".join([*checked, other]) + b")")


def _texts(needles: Iterable[Needle]) -> list[tuple[str, bool]]:
    return [(text, any_case) for text, any_case, _ in needles]


def _value(run: Callable[[bytes], bytes]) -> bytes:
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


def _attributes(attribute: bytes) -> bytes:
    # Unrolled: one turn of the loop per attribute, the spaces after it taken along.
    return rb"[\t\n\f\r /]*+" + _many(attribute + rb"[\t\n\f\r /]*+")


_ATTRS = _attrs()
TAG = re.compile(rb"<(/?)([A-Za-z][^\t\n\f\r />]*+)(" + _ATTRS + rb")>")
ATTR = re.compile(
    rb"([^\t\n\f\r />][^\t\n\f\r />=]*)"
    rb"(?:[\t\n\f\r ]*=[\t\n\f\r ]*(\"[^\"]*\"|'[^']*'|[^\t\n\f\r >]*))?"
)

RAWTEXT = frozenset(
    {"script", "style", "textarea", "title", "xmp", "iframe", "noembed", "noframes"}
)
VOID = frozenset(
    {
        "area",
        "base",
        "basefont",
        "bgsound",
        "br",
        "col",
        "embed",
        "frame",
        "hr",
        "img",
        "image",
        "input",
        "keygen",
        "link",
        "meta",
        "param",
        "source",
        "track",
        "wbr",
    }
)
HEAD_CONTENT = frozenset(
    {
        "base",
        "basefont",
        "bgsound",
        "link",
        "meta",
        "title",
        "noscript",
        "noframes",
        "style",
        "script",
        "template",
    }
)
P_CLOSERS = frozenset(
    {
        "address",
        "article",
        "aside",
        "blockquote",
        "center",
        "details",
        "dialog",
        "dir",
        "div",
        "dl",
        "fieldset",
        "figcaption",
        "figure",
        "footer",
        "form",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "header",
        "hgroup",
        "hr",
        "li",
        "listing",
        "main",
        "menu",
        "nav",
        "ol",
        "p",
        "plaintext",
        "pre",
        "search",
        "section",
        "summary",
        "table",
        "ul",
        "dd",
        "dt",
        "xmp",
    }
)
_CLOSED_BY: dict[str, frozenset[str]] = {
    "p": P_CLOSERS,
    "li": frozenset({"li"}),
    "dt": frozenset({"dt", "dd"}),
    "dd": frozenset({"dt", "dd"}),
    "option": frozenset({"option", "optgroup"}),
    "optgroup": frozenset({"optgroup"}),
    "tr": frozenset({"tr", "tbody", "thead", "tfoot"}),
    "td": frozenset({"td", "th", "tr", "tbody", "thead", "tfoot"}),
    "th": frozenset({"td", "th", "tr", "tbody", "thead", "tfoot"}),
}
# End tags that close elements with implied ends (p, li, ...) that are still open.
SCOPE_CLOSERS = P_CLOSERS | frozenset(
    {"body", "html", "button", "select", "tbody", "thead", "tfoot", "tr", "td", "th", "caption"}
)
# Elements whose end is implied by an end tag of an element that encloses them.
IMPLIED_END = frozenset(_CLOSED_BY) | {"rb", "rp", "rt", "rtc", "tbody", "thead", "tfoot"}


def closes(open_name: str, start_name: str) -> bool:
    """Whether a start tag ``start_name`` implicitly ends an open ``open_name``."""
    closers = _CLOSED_BY.get(open_name)
    return closers is not None and start_name in closers


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


def _ci(text: str) -> bytes:
    """``text`` as a pattern matching any ASCII letter case."""
    out = []
    for byte in text.encode("utf-8"):
        ch = bytes([byte])
        out.append(b"[" + ch.lower() + ch.upper() + b"]" if ch.isalpha() else re.escape(ch))
    return b"".join(out)


def _guard(names: Iterable[str]) -> bytes:
    """Fails at a tag name in ``names``; a first-letter check keeps the common case cheap."""
    names = sorted(set(names))
    if not names:
        return b""
    letters = "".join(sorted({n[0].lower() for n in names} | {n[0].upper() for n in names}))
    alts = b"|".join(_ci(n) for n in names)
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
        always |= RAWTEXT - set(filtered) - _PLAIN_RAW
        name_rest = rb"[A-Za-z]" + _tag_rest()
        tags.append(_guard(always | set(filtered) | RAWTEXT) + name_rest)
        tags.append(b"/" + _guard(end_names) + name_rest)
        for name, needles in sorted(filtered.items()):
            tag = _ci(name) + rb"(?=[\t\n\f\r />])" + _tag_rest(needles)
            if name in RAWTEXT:
                tag += _raw_body(name, _texts(in_text.get(name, [])))
            tags.append(tag)
        for name in sorted(_PLAIN_RAW - always - set(filtered)):
            start = _ci(name) + rb"(?=[\t\n\f\r />])" + _tag_rest()
            tags.append(start + _raw_body(name))
    others = [
        rb"!--(?:>|->|.*?--!?>)",
        rb"!(?!--)[^>]*+>",
        rb"\?[^>]*+>",
        rb"/(?![A-Za-z])[^>]*+>",
        rb"(?=[^A-Za-z!/?])",
    ]
    token = b"<(?:" + b"|".join(tags + others) + b")"
    # Unrolled: one turn of the loop per token, the text after it taken along.
    return re.compile(rb"[^<]*+" + _many(token + rb"[^<]*+"), re.DOTALL)


# Raw-text elements whose content ends at the first matching end tag (not script).
_PLAIN_RAW = frozenset({"style", "textarea", "title", "xmp", "iframe", "noembed", "noframes"})


def _raw_body(name: str, needles: list[tuple[str, bool]] | None = None) -> bytes:
    """Raw-text content and its end tag; script content with '<!--' is left to Python,
    and so is content holding one of ``needles`` (text, any letter case?)."""
    end = b"/" + _ci(name) + rb"(?=[\t\n\f\r />])"
    stop = end + (b"|!--" if name == "script" else b"")
    text = _runs(needles or [], refs=False)(b"<")
    return text + _many(b"<(?!" + stop + b")" + text) + b"<" + end + _tag_rest()


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
