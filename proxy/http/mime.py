"""What a response's Content-Type headers say, read the way browsers read them.

Browsers combine every Content-Type header into one list and take the last valid
MIME type in it (Fetch, "extract a MIME type": ``image/png`` then ``text/html`` is
HTML; a charset given earlier for the same type is kept). With no valid type at all
(none sent, an empty one, ``foo``) or one of the "unknown" types, they sniff the body
(WHATWG MIME Sniffing); so does the proxy, with patterns that accept at least what
browsers accept. Checked against Chromium: see tests/html/test_charset.py.

``response_type`` is called for every response: it is cached per header tuple.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from proxy.http import codec

HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
XHTML = "application/xhtml+xml"
# Types a browser treats as "no type given": the body is sniffed (Chromium).
_UNKNOWN = frozenset({"unknown/unknown", "application/unknown"})
_TOKEN = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
_HTTP_WS = " \t\r\n"


@dataclass(frozen=True)
class MediaType:
    """A parsed MIME type: lower-case essence, parameters in order (names lower case)."""

    essence: str
    params: tuple[tuple[str, str], ...] = ()

    @property
    def charset(self) -> str | None:
        return next((v for k, v in self.params if k == "charset"), None)

    def serialize(self) -> str:
        out = [self.essence]
        for name, value in self.params:
            if not value or not _TOKEN.issuperset(value):
                value = '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
            out.append(f"{name}={value}")
        return ";".join(out)


@dataclass(frozen=True)
class ResponseType:
    """What the proxy makes of one response's Content-Type headers."""

    html: bool | None  # True: HTML; False: not; None: the body decides (sniffed)
    xml: bool  # XHTML: the XML rules find its encoding, self-closing tags are empty
    charset: str | None  # the charset label the headers give, as given
    header: str | None  # the one Content-Type to send (None: none, as the origin)
    changed: bool  # ``header`` is not what the origin sent (several, a list, empty)


UNTYPED = ResponseType(None, False, None, None, False)


@functools.lru_cache(maxsize=512)
def response_type(values: tuple[str, ...]) -> ResponseType:
    """Read the Content-Type header values of a response (in order).

    HTML when any value names an HTML type (fail closed: the proxy rewrites what a
    browser might render as HTML), sniffed when no valid type is given, otherwise
    not HTML. Exactly one Content-Type leaves: the origin's own when it sent one
    with one type in it, otherwise the type a browser would have used (or none)."""
    if not values:
        return UNTYPED
    items = split_list(", ".join(values))
    parsed = [t for t in map(parse_mime_type, items) if t is not None]
    effective = extract(parsed)
    named = [t.essence for t in parsed if t.essence in HTML_TYPES]
    if effective is not None and effective.essence in HTML_TYPES:
        named.append(effective.essence)
    html: bool | None
    if named:
        html = True
    elif effective is None or effective.essence in _UNKNOWN:
        html = None
    else:
        html = False
    charset = effective.charset if effective is not None else None
    if len(values) == 1 and len(items) == 1 and items[0]:
        return ResponseType(html, bool(named) and named[-1] == XHTML, charset, values[0], False)
    header = effective.serialize() if effective is not None else None
    return ResponseType(html, bool(named) and named[-1] == XHTML, charset, header, True)


def extract(types: list[MediaType]) -> MediaType | None:
    """Fetch's choice among the parsed types of a header list: the last one that is
    not ``*/*``, keeping an earlier charset of the same essence."""
    charset: str | None = None
    essence: str | None = None
    chosen: MediaType | None = None
    for mime in types:
        if mime.essence == "*/*":
            continue
        chosen = mime
        if mime.essence != essence:
            charset, essence = mime.charset, mime.essence
        elif mime.charset is None and charset is not None:
            chosen = MediaType(mime.essence, (*mime.params, ("charset", charset)))
    return chosen


def split_list(value: str) -> list[str]:
    """A header value split at commas that are not inside quoted strings, each part
    stripped of spaces and tabs (Fetch, "get, decode, and split")."""
    parts: list[str] = []
    current: list[str] = []
    i, n = 0, len(value)
    while i < n:
        c = value[i]
        if c == '"':
            end = _quoted_end(value, i)
            current.append(value[i:end])
            i = end
            continue
        if c == ",":
            parts.append("".join(current).strip(" \t"))
            current = []
        else:
            current.append(c)
        i += 1
    parts.append("".join(current).strip(" \t"))
    return parts


def _quoted_end(value: str, start: int) -> int:
    """The index just after the quoted string that starts at ``start`` (or the end)."""
    i = start + 1
    while i < len(value):
        if value[i] == "\\":
            i += 2
            continue
        if value[i] == '"':
            return i + 1
        i += 1
    return len(value)


def _unquote(value: str, start: int) -> tuple[str, int]:
    """The text of the quoted string at ``start`` and the index after it."""
    out: list[str] = []
    i = start + 1
    while i < len(value):
        c = value[i]
        if c == "\\" and i + 1 < len(value):
            out.append(value[i + 1])
            i += 2
            continue
        if c == '"':
            return "".join(out), i + 1
        out.append(c)
        i += 1
    return "".join(out), i


def parse_mime_type(text: str) -> MediaType | None:
    """A MIME type (WHATWG MIME Sniffing, "parse a MIME type"); None when invalid."""
    text = text.strip(_HTTP_WS)
    slash = text.find("/")
    if slash <= 0 or not _TOKEN.issuperset(text[:slash]):
        return None
    semi = text.find(";", slash)
    subtype = (text[slash + 1 :] if semi < 0 else text[slash + 1 : semi]).rstrip(_HTTP_WS)
    if not subtype or not _TOKEN.issuperset(subtype):
        return None
    essence = f"{text[:slash]}/{subtype}".lower()
    params: list[tuple[str, str]] = []
    i = len(text) if semi < 0 else semi
    while i < len(text):
        i += 1  # past ";"
        while i < len(text) and text[i] in _HTTP_WS:
            i += 1
        end = i
        while end < len(text) and text[end] not in ";=":
            end += 1
        name = text[i:end].lower()
        i = end
        if i >= len(text):
            break
        if text[i] == ";":
            continue
        i += 1  # past "="
        if i < len(text) and text[i] == '"':
            value, i = _unquote(text, i)
            while i < len(text) and text[i] != ";":
                i += 1
        else:
            end = text.find(";", i)
            end = len(text) if end < 0 else end
            value, i = text[i:end].rstrip(_HTTP_WS), end
            if not value:
                continue
        valid_value = all(c == "\t" or " " <= c <= "~" or "\x80" <= c <= "\xff" for c in value)
        known = any(k == name for k, _ in params)
        if name and _TOKEN.issuperset(name) and valid_value and not known:
            params.append((name, value))
    return MediaType(essence, tuple(params))


# What browsers take for HTML at the start of an untyped body (after whitespace):
# the WHATWG patterns, as prefixes (a superset: "<a" also covers "<abbr").
_HTML_STARTS = (
    b"<!doctype html",
    b"<html",
    b"<head",
    b"<script",
    b"<iframe",
    b"<h1",
    b"<div",
    b"<font",
    b"<table",
    b"<a",
    b"<style",
    b"<title",
    b"<b",
    b"<p",
    b"<!--",
)
_LONGEST = max(map(len, _HTML_STARTS))
SNIFF_LIMIT = 64 * 1024  # whitespace beyond this: no browser looks that far
_BOMS = ((b"\xef\xbb\xbf", "utf-8"), (b"\xfe\xff", "utf-16-be"), (b"\xff\xfe", "utf-16-le"))


def _visible_start(data: bytes) -> bytes:
    """The first bytes after a byte order mark and whitespace, as ASCII-compatible
    bytes (a UTF-16 start is decoded for the look)."""
    for bom, name in _BOMS:
        if data.startswith(bom):
            data = data[len(bom) :]
            if name != "utf-8":
                data = data[: 2 * SNIFF_LIMIT].decode(name, "replace").encode("utf-8", "replace")
            break
    return data.lstrip(b" \t\n\r\f")


def sniff_needs_more(data: bytes) -> bool:
    """Whether ``data`` (the start of a body) is too short to tell whether it is HTML."""
    return len(data) < SNIFF_LIMIT and len(_visible_start(data)) < _LONGEST


def sniffs_as_html(data: bytes) -> bool:
    """Whether a browser might render an untyped body starting with ``data`` as HTML
    (WHATWG MIME Sniffing's HTML patterns, after a byte order mark and whitespace)."""
    return _visible_start(data)[:_LONGEST].lower().startswith(_HTML_STARTS)


class Sniffer:
    """Takes the first chunks of an untyped body until it can tell whether a browser
    might render it as HTML: as the bytes came and, when they carry a Content-Encoding,
    as decoded (browsers decode, then sniff; one that cannot be decoded is looked at
    as it came, as Chromium does)."""

    def __init__(self, content_encoding: str | None) -> None:
        self._raw = b""
        self._decoded = b""
        self._decoder: codec.Decoder | None = None
        if content_encoding is not None:
            try:
                # A cap on what a few bytes may decode to: a bomb is not sniffed whole.
                limit = 2 * 1024 * 1024
                self._decoder = codec.Decoder(codec.parse_encodings(content_encoding), limit)
            except codec.DecodeError:
                pass

    def feed(self, chunk: bytes) -> bool:
        """Take the next chunk; True once there is enough to tell."""
        self._raw += chunk
        decoder = self._decoder
        # Small slices: the decoding stops as soon as enough has come out.
        for i in range(0, len(chunk), 1024):
            if decoder is None or not sniff_needs_more(self._decoded):
                break
            try:
                self._decoded += decoder.feed(chunk[i : i + 1024])
            except codec.DecodeError:
                self._decoder = decoder = None
        undecided = decoder is not None and sniff_needs_more(self._decoded)
        return not sniff_needs_more(self._raw) and not undecided

    @property
    def html(self) -> bool:
        return sniffs_as_html(self._raw) or (
            self._decoder is not None and sniffs_as_html(self._decoded)
        )
