"""The box an embed takes on the page, as CSS for the placeholder that stands in
for it, so the page does not jump when one replaces the other.

``embed_size`` reads an element's ``width``/``height`` attributes (what most embed
codes give: ``width="560" height="315"``, ``width="100%"``) and the sizing
declarations of its ``style`` attribute, which win over the attributes as they do in
a browser: width, height, their min-/max- forms, aspect-ratio, and the position and
offsets of an embed laid over a sized wrapper (``position:absolute; top:0; left:0;
width:100%; height:100%`` in a ``padding-bottom:56.25%`` box). The height is written
as min-height (see ``embed_size``). Every value is parsed and written again from its
number and unit, never copied: anything else (calc(), var(), a keyword, a stray
character) is left out, and a style with a CSS escape or a comment (which a plain
split on ";" would misread) is not read at all, so nothing of the page's text
reaches the placeholder's style.
"""

from __future__ import annotations

import re
from collections.abc import Callable

_ATTR_LENGTH = re.compile(r"[ \t\n\f\r]*([0-9]{1,5})(?:\.[0-9]*)?(px|%)?[ \t\n\f\r]*")
_NUMBER = r"([0-9]{1,5}(?:\.[0-9]{1,4})?)"
_CSS_LENGTH = re.compile(_NUMBER + r"(px|%|em|rem|vw|vh|vmin|vmax)?", re.I)
_RATIO = re.compile(_NUMBER + r"(?:\s*/\s*" + _NUMBER + r")?")
_LENGTHS = ("width", "height", "min-width", "min-height", "max-width", "max-height")
_OFFSETS = ("top", "right", "bottom", "left")
_POSITIONS = frozenset({"absolute", "relative"})
# The order declarations are written in (the attributes' come first).
_ORDER = (*_LENGTHS, "aspect-ratio", "position", *_OFFSETS)
_MAX_STYLE = 2048  # longer style attributes are read up to here


def embed_size(get: Callable[[str], str | None]) -> str:
    """CSS declarations (``width:560px;min-height:315px``) sizing a placeholder like
    the element whose attribute getter is ``get``; empty when it gives no size."""
    found: dict[str, str] = {}
    for name in ("width", "height"):
        value = get(name)
        m = _ATTR_LENGTH.fullmatch(value) if value else None
        if m is not None:
            found[name] = f"{int(m.group(1))}{m.group(2) or 'px'}"
    style = get("style")
    if style and "\\" not in style and "/*" not in style:  # escapes, comments: not read
        found.update(style_size(style))
    # The height as the least one: a box smaller than its text and buttons (a Like
    # button's 80px) grows rather than hiding them; an embed's usual box fits them.
    if "height" in found and "min-height" not in found:
        found["min-height"] = found.pop("height")
    return ";".join(f"{name}:{found[name]}" for name in _ORDER if name in found)


def style_size(style: str) -> dict[str, str]:
    """The sizing declarations of a style attribute, each value parsed and written
    again (later declarations win, as in CSS); others are left out."""
    out: dict[str, str] = {}
    for declaration in style[:_MAX_STYLE].split(";"):
        name, sep, raw = declaration.partition(":")
        if not sep:
            continue
        name = name.strip(" \t\n\f\r").lower()
        value = raw.strip(" \t\n\f\r")
        if value.lower().endswith("important"):  # "!important": the value counts alike
            value = value[: value.rfind("!")].strip(" \t\n\f\r") if "!" in value else value
        parsed = _declaration(name, value)
        if parsed is not None:
            out[name] = parsed
    return out


def _declaration(name: str, value: str) -> str | None:
    if name in _LENGTHS or name in _OFFSETS:
        return _length(value)
    if name == "aspect-ratio":
        m = _RATIO.fullmatch(value)
        if m is None:
            return None
        width = _number(m.group(1))
        return f"{width} / {_number(m.group(2))}" if m.group(2) else width
    if name == "position":
        return value.lower() if value.lower() in _POSITIONS else None
    return None


def _length(value: str) -> str | None:
    """A CSS length or percentage, written again; a bare number only when 0."""
    m = _CSS_LENGTH.fullmatch(value)
    if m is None:
        return None
    number, unit = _number(m.group(1)), (m.group(2) or "").lower()
    if not unit and number != "0":
        return None  # quirks mode reads it as px; a standards page ignores it
    return number + unit


def _number(text: str) -> str:
    """A number as CSS reads it, written without needless zeros (``12.50`` → 12.5)."""
    whole, _, fraction = text.partition(".")
    whole = str(int(whole))
    fraction = fraction.rstrip("0")
    return f"{whole}.{fraction}" if fraction else whole
