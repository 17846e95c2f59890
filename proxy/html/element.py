"""An element as handlers see it, and as the selector machine sees an open one.

``Element`` is what a handler gets for each element its selector matches: the tag
name, its attributes (parsed on first use, the first of a name counting, as in a
browser), the text of a raw-text element, and the edits the handler records (remove,
replace, attributes, a raw-text element's text, HTML around or inside). ``Rewriter``
applies them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from proxy.html import lexer

Handler = Callable[["Element"], None]


class Tag:
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
