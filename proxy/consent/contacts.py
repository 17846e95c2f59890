"""Every URL an HTML element makes the browser contact by being on the page, and
what it takes to stop that contact: removing the element, or one attribute.

Pure and catalogue-free: ``contacts(tag, get)`` reads an element through its
attribute getter (the rewriter's ``Element.get``: names lower case, values with
character references decoded) and yields one ``Contact`` per URL. The forms, as
browsers load them (FORMS holds the plain ones as data):

- loads: script src (and svg script href / xlink:href), iframe/frame src, iframe
  srcdoc (the URLs of the document inside it), img/source src and srcset, the
  lazy-loading attributes (data-src, data-srcset, data-lazy-src, data-lazy-srcset,
  data-original) that a loader script copies into place, video/audio/track src,
  embed src, object data, svg image and feImage href / xlink:href, input
  type=image src, link href and imagesrcset when a rel token fetches
  (stylesheet, icons, preconnect, dns-prefetch, preload, prefetch, modulepreload,
  prerender, manifest), base href (every relative URL after it would go there),
  meta http-equiv=refresh (the page navigates there by itself);
- decorations, whose attribute alone goes: a/area ping (the link stays), video
  poster, the legacy background attribute of body and table cells, url() and
  strings in a style attribute, and the lazy attributes of elements that load
  nothing themselves (a div whose loader script sets a background).

Not contacts: ``<a href>`` and ``<form action>`` (a navigation the visitor starts;
a form post sends what the visitor typed to where the page says, like a link),
``<use href>`` to another site (browsers refuse cross-origin use), event handler
attributes (their script is judged only if it runs some other way). CSS in
``<style>`` elements is text, not an attribute: ``css_urls`` finds its url() values
and strings, and the catalogue's gate empties those of denied hosts in place.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from proxy.consent.urls import srcset_urls
from proxy.html import lexer

REMOVE = "remove"  # the element goes, with its content
STRIP = "strip"  # the attribute goes, the element stays

Getter = Callable[[str], str | None]

# How an attribute's value holds URLs.
URL, SRCSET, LIST, REFRESH, STYLE, DOCUMENT = (
    "url",
    "srcset",
    "list",
    "refresh",
    "style",
    "document",
)

_SVG_HREF = (("href", URL, REMOVE), ("xlink:href", URL, REMOVE))
FORMS: dict[str, tuple[tuple[str, str, str], ...]] = {
    "script": (("src", URL, REMOVE), *_SVG_HREF),
    "iframe": (("src", URL, REMOVE), ("srcdoc", DOCUMENT, REMOVE)),
    "frame": (("src", URL, REMOVE),),
    "img": (("src", URL, REMOVE), ("srcset", SRCSET, REMOVE)),
    # An HTML <image> is parsed as <img>; an svg <image> loads its href.
    "image": (("src", URL, REMOVE), ("srcset", SRCSET, REMOVE), *_SVG_HREF),
    "feimage": _SVG_HREF,
    "source": (("src", URL, REMOVE), ("srcset", SRCSET, REMOVE)),
    "video": (("src", URL, REMOVE), ("poster", URL, STRIP), ("data-poster", URL, STRIP)),
    "audio": (("src", URL, REMOVE),),
    "track": (("src", URL, REMOVE),),
    "embed": (("src", URL, REMOVE),),
    "object": (("data", URL, REMOVE),),
    "base": (("href", URL, REMOVE),),
    "a": (("ping", LIST, STRIP),),
    "area": (("ping", LIST, STRIP),),
}
LAZY = (
    ("data-src", URL),
    ("data-srcset", SRCSET),
    ("data-lazy-src", URL),
    ("data-lazy-srcset", SRCSET),
    ("data-original", URL),
)
# Elements that load something themselves: a lazy URL on them is their load.
_LOADERS = frozenset(
    {"img", "image", "source", "picture", "iframe", "frame", "video", "audio", "track"}
    | {"embed", "object", "script"}
)
_BACKGROUND = frozenset({"body", "table", "thead", "tbody", "tfoot", "tr", "td", "th"})
FETCHING_RELS = frozenset(
    {"stylesheet", "icon", "apple-touch-icon", "apple-touch-icon-precomposed", "mask-icon"}
    | {"preconnect", "dns-prefetch", "preload", "prefetch", "modulepreload", "prerender"}
    | {"manifest"}
)
_ASCII_WS = " \t\n\f\r"
_MAX_DEPTH = 4  # levels of srcdoc inside srcdoc read for their elements


@dataclass(frozen=True)
class Contact:
    """One URL an element makes the browser contact: the attribute it is in (for a
    srcdoc, ``srcdoc``), the URL as written, and what stops it."""

    attribute: str
    url: str
    action: str


def contacts(tag: str, get: Getter, depth: int = 0) -> list[Contact]:
    """Every URL element ``tag`` (lower case) makes the browser contact. ``get`` is
    called for each attribute a form names: a dict's ``get`` (``dict(el.attributes)``)
    costs less than probing ``Element.get`` ten times."""
    found: list[Contact] = []
    for attribute, how, action in _plain_forms(tag):
        value = get(attribute)
        if value is not None:
            found += [Contact(attribute, url, action) for url in _urls(value, how, depth)]
    if tag in _CONDITIONAL:
        for attribute, how, action in _conditional_forms(tag, get):
            value = get(attribute)
            if value is not None:
                found += [Contact(attribute, url, action) for url in _urls(value, how, depth)]
    return found


@functools.lru_cache(maxsize=512)
def _plain_forms(tag: str) -> tuple[tuple[str, str, str], ...]:
    """The forms of a tag that depend on nothing but its name (made once per name)."""
    forms = list(FORMS.get(tag, ()))
    if tag in _BACKGROUND:
        forms.append(("background", URL, STRIP))
    lazy_action = REMOVE if tag in _LOADERS else STRIP
    forms += [(attribute, how, lazy_action) for attribute, how in LAZY]
    forms.append(("style", STYLE, STRIP))
    return tuple(forms)


@functools.lru_cache(maxsize=512)
def plain_attributes(tag: str) -> frozenset[str]:
    """The attributes ``contacts`` reads URLs from on any ``tag`` element (those that
    depend on another attribute aside: a link's href, an input's src, a meta's
    content)."""
    return frozenset(attribute for attribute, _, _ in _plain_forms(tag))


# The forms that depend on another attribute: a link's rel, an input's type, a
# meta's http-equiv.
_LINK_FORMS = (("href", URL, REMOVE), ("imagesrcset", SRCSET, REMOVE))
_IMAGE_INPUT_FORMS = (("src", URL, REMOVE),)
_REFRESH_FORMS = (("content", REFRESH, REMOVE),)
_CONDITIONAL = {"link": _LINK_FORMS, "input": _IMAGE_INPUT_FORMS, "meta": _REFRESH_FORMS}


def _conditional_forms(tag: str, get: Getter) -> tuple[tuple[str, str, str], ...]:
    """The conditional forms of ``tag`` that its attributes turn on."""
    if tag == "link":
        rels = (get("rel") or "").lower().split()
        if any(rel in FETCHING_RELS for rel in rels):
            return _LINK_FORMS
    elif tag == "input":
        if (get("type") or "").strip(_ASCII_WS).lower() == "image":
            return _IMAGE_INPUT_FORMS
    elif tag == "meta" and (get("http-equiv") or "").strip(_ASCII_WS).lower() == "refresh":
        return _REFRESH_FORMS
    return ()


@functools.lru_cache(maxsize=512)
def attribute_names(tag: str) -> tuple[bytes, ...]:
    """The names (ASCII, lower case) of the attributes that can hold a contact of
    element ``tag`` (lower case): an element with none of them contacts nothing, and a
    scanner can tell that from its raw start tag without parsing it."""
    forms = _plain_forms(tag) + _CONDITIONAL.get(tag, ())
    return tuple(dict.fromkeys(name.encode("ascii") for name, _, _ in forms))


def _urls(value: str, how: str, depth: int) -> Iterator[str]:
    if how == URL:
        yield value
    elif how == SRCSET:
        yield from srcset_urls(value)
    elif how == LIST:
        yield from value.split()
    elif how == REFRESH:
        url = refresh_url(value)
        if url is not None:
            yield url
    elif how == STYLE:
        yield from style_urls(value)
    elif how == DOCUMENT:
        yield from document_urls(value, depth + 1)


_JS_TYPES = frozenset(
    {"application/ecmascript", "application/javascript", "application/x-ecmascript"}
    | {"application/x-javascript", "text/ecmascript", "text/javascript", "text/jscript"}
    | {f"text/javascript1.{n}" for n in range(6)}
    | {"text/livescript", "text/x-ecmascript", "text/x-javascript"}
)
# Not JavaScript, but a browser acts on them: speculation rules prefetch and
# prerender the URLs they name, an import map says where modules come from.
_ACTED_ON = frozenset({"module", "speculationrules", "importmap"})


def script_runs(get: Getter) -> bool:
    """Whether a browser acts on a <script>'s text (the HTML standard's script type
    steps): JavaScript, a module, speculation rules, an import map. False for data
    blocks (``application/ld+json``, templates, ``text/plain`` held by a CMP), whose
    text is never run: the text check is for scripts that run."""
    kind = get("type")
    if kind is None or kind == "":
        language = get("language")
        if kind is None and language:
            kind = "text/" + language
        else:
            return True
    essence = kind.strip(_ASCII_WS).lower()
    return essence in _JS_TYPES or essence in _ACTED_ON


def refresh_url(content: str) -> str | None:
    """The URL a ``<meta http-equiv=refresh content=...>`` navigates to, read with
    the HTML standard's declarative-refresh steps (None: none, or not a refresh)."""
    text, pos, n = content, 0, len(content)

    def skip_ws(at: int) -> int:
        while at < n and text[at] in _ASCII_WS:
            at += 1
        return at

    pos = skip_ws(pos)
    digits = pos
    while pos < n and text[pos].isascii() and text[pos].isdigit():
        pos += 1
    if pos == digits and (pos >= n or text[pos] != "."):
        return None
    while pos < n and (text[pos] == "." or (text[pos].isascii() and text[pos].isdigit())):
        pos += 1
    if pos >= n:
        return None  # a refresh of the page itself
    if text[pos] not in ";," + _ASCII_WS:
        return None
    pos = skip_ws(pos)
    if pos < n and text[pos] in ";,":
        pos = skip_ws(pos + 1)
    url = text[pos:]
    if text[pos : pos + 3].lower() == "url":
        after = skip_ws(pos + 3)
        if after < n and text[after] == "=":
            pos = skip_ws(after + 1)
            url = text[pos:]
    if url[:1] in ("'", '"'):
        quote = url[0]
        url = url[1:]
        end = url.find(quote)
        if end != -1:
            url = url[:end]
    return url or None


_CSS_ESCAPE = re.compile(r"\\(?:([0-9A-Fa-f]{1,6})[ \t\n\r\f]?|(\r\n|.))", re.S)
_LINE_BREAKS = frozenset({"\n", "\r", "\f", "\r\n"})  # after a backslash: both go
_CSS_URL = re.compile(r"url\(\s*(?:\"([^\"]*)\"?|'([^']*)'?|([^)\s]*))", re.I)
_CSS_STRING = re.compile(r"\"([^\"]*)\"|'([^']*)'")


def style_urls(value: str) -> Iterator[str]:
    """The URLs in a style attribute: url(...) values and strings (image-set()
    takes plain strings), CSS escapes decoded."""
    if "url" not in value.lower() and "\\" not in value and "image-set" not in value.lower():
        return
    text = _CSS_ESCAPE.sub(_css_unescape, value) if "\\" in value else value
    if len(text) < _JUMP_FROM:  # a style attribute: sre's own search costs less
        for m in _CSS_URL.finditer(text):
            yield next(g for g in m.groups() if g is not None)
        for m in _CSS_STRING.finditer(_CSS_URL.sub(" ", text)):
            yield m.group(1) if m.group(1) is not None else m.group(2)
        return
    urls = list(_finditer(_CSS_URL, text, ("url(",)))
    for m in urls:
        yield next(g for g in m.groups() if g is not None)
    if urls:  # each url() read as one space, as _CSS_URL.sub(" ", text) would
        parts, at = [], 0
        for m in urls:
            parts += [text[at : m.start()], " "]
            at = m.end()
        text = "".join(parts) + text[at:]
    for m in _finditer(_CSS_STRING, text, ('"', "'")):
        yield m.group(1) if m.group(1) is not None else m.group(2)


_JUMP_FROM = 512  # shorter texts (style attributes): sre's own search costs less


def _finditer(
    pattern: re.Pattern[str], text: str, starts: tuple[str, ...], jump_from: int = _JUMP_FROM
) -> Iterator[re.Match[str]]:
    """``pattern.finditer(text)``, for a pattern whose every match begins with one of
    ``starts`` (lower case ASCII; matched in any letter case): the same matches, in a
    text of ``jump_from`` characters or more the text between them passed with
    ``str.find`` (on long stylesheets, sre trying the pattern at every character ran
    at about 30 MB/s)."""
    lower = text.lower() if len(text) >= jump_from else ""
    if len(lower) != len(text):  # short; or U+0130 lowers to two characters
        yield from pattern.finditer(text)
        return
    find = lower.find
    ahead = {start: find(start) for start in starts}
    pos = 0
    while True:
        at = -1
        for start, found in ahead.items():
            if 0 <= found < pos:
                found = ahead[start] = find(start, pos)
            if found >= 0 and (at < 0 or found < at):
                at = found
        if at < 0:
            return
        m = pattern.match(text, at)
        if m is None:
            pos = at + 1
            continue
        yield m
        pos = max(m.end(), at + 1)


# A url() or a string in CSS text, as written (escapes and all): the URL's span.
# (A string ends at a newline, as CSS reads it: an apostrophe in a comment does not
# swallow the lines after it.)
_CSS_TOKEN = re.compile(
    r"(url\(\s*)(\"(?:[^\"\\\n]|\\.)*\"?|'(?:[^'\\\n]|\\.)*'?|[^)\s\"']*)"
    r"|(\"(?:[^\"\\\n]|\\.)*\"?|'(?:[^'\\\n]|\\.)*'?)",
    re.I | re.S,
)


@dataclass(frozen=True)
class CssUrl:
    """A URL in CSS text: where its value is written (``text[start:end]``, quotes
    included) and the URL it means (CSS escapes decoded)."""

    start: int
    end: int
    url: str


def css_urls(text: str) -> Iterator[CssUrl]:
    """The url() values and strings of CSS text (a <style> element's), with their
    places, so that one can be cleared where it is written. A URL whose ``url(``
    itself is escaped is not found here (``style_urls`` finds it)."""
    if "url" not in text.lower() and "'" not in text and '"' not in text:
        return
    for m in _finditer(_CSS_TOKEN, text, ('"', "'", "url(")):
        group = 2 if m.group(1) is not None else 3
        value, at = m.group(group), m.start(group)
        inner = value
        if inner[:1] in ("'", '"'):
            inner = inner[1:-1] if len(inner) > 1 and inner[-1] == inner[0] else inner[1:]
        if inner:
            yield CssUrl(at, at + len(value), _CSS_ESCAPE.sub(_css_unescape, inner))


def _css_unescape(m: re.Match[str]) -> str:
    if m.group(1) is not None:
        code = int(m.group(1), 16)
        return chr(code) if 0 < code <= 0x10FFFF and not 0xD800 <= code <= 0xDFFF else "\ufffd"
    char = m.group(2)
    return "" if char in _LINE_BREAKS else char  # a string's line continued


def document_urls(html: str, depth: int = 1) -> Iterator[str]:
    """The URLs the elements of an HTML document (a srcdoc value) contact. Every
    tag is read, those in comments and scripts too: more than a browser loads,
    never less. Srcdocs nested deeper than a few levels are not read (their text
    still goes through the text check with the srcdoc that holds them)."""
    if depth > _MAX_DEPTH:
        return
    data = html.encode("utf-8", "surrogateescape")
    pos = data.find(b"<")
    while pos != -1:
        m = lexer.TAG.match(data, pos)
        if m is not None and not m.group(1):
            name = m.group(2).lower().decode("utf-8", "replace")
            attrs = lexer.parse_attributes(m.group(), m.start(3) - m.start(), "utf-8")
            values = {a.name: a.value for a in attrs}
            for contact in contacts(name, values.get, depth):
                yield contact.url
        pos = data.find(b"<", pos + 1)
