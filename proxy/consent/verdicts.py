"""Which catalogued third party an element or a script would make the browser
contact, and what to do about it for a visitor who denied some categories.

Pure functions over a ``Catalogue``, made for the rewriter's handlers: nothing is
compiled here, so one compiled catalogue serves every consent variant (the
variant is the ``denied`` argument, not a different program).

- ``element_hits`` / ``decide_element``: every URL of an element (``contacts``),
  its host read as a browser reads it (``url_target``), looked up in the catalogue.
  The page's own host and its subdomains are never third parties.
- ``clean_css``: a <style> element's text without the url() values and strings
  that would load a blocked host (the element stays: the page keeps its looks).
- ``text_hits`` / ``decide_text``: a script's (or a srcdoc's, or a <noscript>'s)
  text searched by the catalogue's prefilter for catalogued hosts and loader
  signatures; a host is read whole around the hit and looked up, so a hit inside a
  longer name (``notdoubleclick.net``) does not count.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass

from proxy.consent.catalogue import Catalogue
from proxy.consent.contacts import REMOVE, STRIP, Getter, contacts, css_urls, style_urls
from proxy.consent.urls import normalize_host, url_target

TEXT = "text"  # the attribute name of hits in an element's text


@dataclass(frozen=True)
class Hit:
    """A catalogued third party found: where (an attribute name, or ``text``), what
    (the host contacted, or a signature's text), whose, under which consent
    category, and what stops it (``remove`` the element, ``strip`` the attribute)."""

    attribute: str
    found: str
    entity: str
    category: str
    action: str
    signature: bool = False


@dataclass(frozen=True)
class Verdict:
    """What to do to an element: ``remove`` it (``hits`` holds the first reason), or
    ``strip`` the attributes in ``attributes`` (one hit each) and keep it."""

    action: str
    hits: tuple[Hit, ...]

    @property
    def attributes(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(h.attribute for h in self.hits)) if self.action == STRIP else ()


def element_hits(
    tag: str,
    get: Getter,
    catalogue: Catalogue,
    *,
    scheme: str | None = None,
    page_host: str | None = None,
) -> Iterator[Hit]:
    """Every catalogued host element ``tag`` (lower case) makes the browser contact,
    whatever its category. ``scheme`` is the page's ("http"/"https"; None reads
    ``https:host`` as a host, the cautious reading); ``page_host`` the page's own."""
    own = normalize_host(page_host) if page_host else None
    for contact in contacts(tag, get):
        hit = url_hit(contact.attribute, contact.url, contact.action, catalogue, scheme, own)
        if hit is not None:
            yield hit
    if tag == "iframe":
        srcdoc = get("srcdoc")
        if srcdoc:
            for hit in text_hits(srcdoc, catalogue):
                yield Hit("srcdoc", hit.found, hit.entity, hit.category, REMOVE, hit.signature)


def url_hit(
    attribute: str,
    url: str,
    action: str,
    catalogue: Catalogue,
    scheme: str | None,
    own: str | None,
) -> Hit | None:
    """The hit of one URL found in ``attribute``, if its host is catalogued and not
    the page's own (``own``: the page's host, normalized) or one of its subdomains."""
    target = url_target(url, scheme)
    if target is None:
        return None
    host, path = target
    if own is not None and (host == own or host.endswith("." + own)):
        return None
    entry = catalogue.lookup(host, path)
    if entry is None:
        return None
    return Hit(attribute, host, entry.entity, entry.category, action)


def clean_css(
    text: str,
    catalogue: Catalogue,
    blocked: Callable[[Hit], bool],
    *,
    scheme: str | None = None,
    page_host: str | None = None,
) -> tuple[str | None, tuple[Hit, ...]]:
    """CSS text (a <style> element's) without the URLs of the hits ``blocked`` says
    go: each such url() value or string emptied where it is written (``url("")``
    loads nothing), the rest of the text as it was. Returns (the text, or None when a
    blocked URL is written in a way that cannot be cleared in place, as an escaped
    ``url(``: the element must go; the hits)."""
    own = normalize_host(page_host) if page_host else None
    hits: list[Hit] = []
    parts: list[str] = []
    at = 0
    for found in css_urls(text):
        hit = url_hit(TEXT, found.url, STRIP, catalogue, scheme, own)
        if hit is not None and blocked(hit):
            hits.append(hit)
            parts += [text[at : found.start], '""']
            at = found.end
    cleaned = "".join(parts) + text[at:] if hits else text
    for url in style_urls(cleaned):
        hit = url_hit(TEXT, url, REMOVE, catalogue, scheme, own)
        if hit is not None and blocked(hit):
            return None, (*hits, hit)
    return cleaned, tuple(hits)


def decide_element(
    tag: str,
    get: Getter,
    catalogue: Catalogue,
    denied: Collection[str],
    *,
    scheme: str | None = None,
    page_host: str | None = None,
) -> Verdict | None:
    """What to do to an element for a visitor who denied the categories in
    ``denied``: None when it contacts no catalogued host of theirs."""
    if not denied:
        return None
    strips: list[Hit] = []
    for hit in element_hits(tag, get, catalogue, scheme=scheme, page_host=page_host):
        if hit.category not in denied:
            continue
        if hit.action == REMOVE:
            return Verdict(REMOVE, (hit,))
        strips.append(hit)
    return Verdict(STRIP, tuple(strips)) if strips else None


_HOST_LEFT = re.compile(rb"[A-Za-z0-9_.-]*")
_HOST_RIGHT = re.compile(rb"[A-Za-z0-9_.-]*")
_PATH = re.compile(rb"/[^\s\"'`?#\\<>]*")


def text_hits(text: str | bytes, catalogue: Catalogue) -> Iterator[Hit]:
    """Every catalogued host and signature in a text (script source, a srcdoc or
    <noscript> markup), whatever its category, each (found, category) once."""
    data = text.encode("utf-8", "surrogateescape") if isinstance(text, str) else text
    seen: set[tuple[str, str]] = set()
    for start, end, index in catalogue.prefilter.scan(data):
        signature = catalogue.signature(index)
        if signature is not None:
            hit = Hit(TEXT, signature.text, signature.entity, signature.category, REMOVE, True)
        else:
            found = _host_at(data, start, end, catalogue)
            if found is None:
                continue
            hit = found
        if (hit.found, hit.category) not in seen:
            seen.add((hit.found, hit.category))
            yield hit


def _host_at(data: bytes, start: int, end: int, catalogue: Catalogue) -> Hit | None:
    """The host written around a domain hit at ``[start, end)``, if catalogued."""
    left = _HOST_LEFT.match(data[max(0, start - 256) : start][::-1])
    right = _HOST_RIGHT.match(data, end, end + 256)
    first = start - (left.end() if left else 0)
    last = right.end() if right else end
    written = data[first:last].strip(b".-_").decode("ascii", "replace")
    host = normalize_host(written)
    if host is None:
        return None
    path = _PATH.match(data, last)
    # A URL, not a name: after "//" (or a JSON-escaped "\/\/"), or followed by a path.
    # Site code that only names a host ("facebook.com" in referrer.match) loads nothing,
    # and removing it would break the page (its globals go with it).
    before = data[max(0, first - 4) : first]
    if not (before.endswith((b"//", b"\\/\\/")) or (path and len(path.group()) > 1)):
        return None
    entry = catalogue.lookup(host, path.group().decode("latin-1") if path else "/")
    if entry is None:
        return None
    return Hit(TEXT, host, entry.entity, entry.category, REMOVE)


def decide_text(text: str | bytes, catalogue: Catalogue, denied: Collection[str]) -> Hit | None:
    """The first catalogued host or signature in a text whose category is in
    ``denied`` (the element holding the text goes), or None."""
    if not denied:
        return None
    for hit in text_hits(text, catalogue):
        if hit.category in denied:
            return hit
    return None
