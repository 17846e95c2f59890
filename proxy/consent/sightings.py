"""The inventory's gate: where the rewriter's pass finds third-party hosts no rule or
catalogue entry covers, and what ``unknown_third_party`` does to them (inventory.py
keeps the records and the classification).

``InventoryGate`` wraps the catalogue's gate (coverage.py). Its ``stops`` finds
every authority written in the bytes the rewriter holds (authorities.py: ``//host``,
``\\\\host``; and ``https:host`` while holding), looks each up in the book's ``known``
(what covers it, for this page host: a dict lookup), and reads an unknown host's
start tag in C: its name and the attribute around it (a sighting: no stop, no Python
step per element). A tag that may hide a host (character references, escapes, a tab
in a name, a srcdoc) goes through ``handle``, which reads its URLs as a browser
would; so does, while unknown hosts are held, every tag naming one.
"""

from __future__ import annotations

import bisect
import functools
import re
from collections.abc import Callable

from proxy.consent import authorities, suspects
from proxy.consent.contacts import (
    FETCHING_RELS,
    REMOVE,
    STRIP,
    contacts,
    plain_attributes,
    script_runs,
)
from proxy.consent.coverage import ONCE, TEXTS, CatalogueGate, Held
from proxy.consent.inventory import (
    INLINE,
    PLACEHOLDER,
    RULE_ID,
    UNCOVERED,
    PageWatch,
    owned,
)
from proxy.consent.sizing import embed_size
from proxy.consent.urls import url_target
from proxy.html import Element, Gate, Handler, lexer

# What block and placeholder hold: scripts, frames and embeds, images (pixels).
_FRAMES = frozenset({"iframe", "frame", "embed", "object"})
_HELD = _FRAMES | {"script", "img", "image", "input", "source", "a", "area"}

# While unknown hosts are held, authorities after http: / https: with no slash too
# (browsers read https:host as a host), each pattern beginning with a literal byte
# (Python's re skips to it in C; the four run at 490 MB/s).
_HOSTISH = b"(" + authorities.HOSTISH + b")"
_SCHEME_ONLY = tuple(
    re.compile(start + behind + rb"(?![/\\])" + _HOSTISH)
    for start, behind in (
        (b"p:", rb"(?<=[hH][tT][tT][pP]:)"),
        (b"P:", rb"(?<=[hH][tT][tT][pP]:)"),
        (b"s:", rb"(?<=[hH][tT][tT][pP][sS]:)"),
        (b"S:", rb"(?<=[hH][tT][tT][pP][sS]:)"),
    )
)


class InventoryGate:
    """The catalogue's gate (``inner``, None when it does nothing for this visitor)
    with the inventory and ``unknown_third_party`` on top.

    Two ways an unknown host is recorded. Sighted: ``stops`` finds it written in a
    start tag and reads the tag's name and the attribute around it with a few
    searches in C (no stop, no Python step per element). Read: a tag that may hide
    a host (character references, escapes: the catalogue's suspects), and, while
    unknown hosts are held, every tag naming one, goes through ``handle``, which reads
    its URLs as a browser would."""

    def __init__(
        self,
        watch: PageWatch,
        inner: CatalogueGate | None,
        placeholder: Callable[[Element, Held], bool],
        counts: dict[tuple[str, str], int],
    ) -> None:
        self._watch = watch
        self._read = False  # a page served from the rewrite cache is never read
        self._inner = inner
        self._placeholder = placeholder
        self.counts = counts
        self._covered: set[str] = set()  # covered hosts this page counted
        self._texts: set[tuple[str, str]] = set()  # (host, kind) found in text here
        self._flagged: set[bytes] = set()  # start tags handle reads, as written

    def stops(self, buf: bytes) -> list[int]:
        """The catalogue's stops, and the start tags ``handle`` must read (all those
        naming an unknown host while holding); sightings recorded on the way."""
        watch = self._watch
        if not self._read:
            self._read = True
            watch.inventory.pages += 1
        held: list[int] = []
        starts = self._inner.stops(buf) if self._inner is not None else _suspects(buf)
        written = authorities.find(buf)
        if watch.hold:  # https:host too (a host to browsers): four passes of re
            written += [(m.start(), m.group(1)) for p in _SCHEME_ONLY for m in p.finditer(buf)]
        known, own, classify, covered = watch.book.known, watch.own, watch.written, self._covered
        for at, raw in written:
            found = known.get((own, raw), _UNSEEN)
            if found is _UNSEEN:
                found = classify(raw)
            if found is None:
                continue  # no host, or the site's own
            host, cover = found
            if cover is not UNCOVERED:
                if host not in covered:
                    covered.add(host)
                    watch.inventory.add_covered(host, cover)
            elif self._sighted(buf, at, host, starts):  # handle reads the tag
                held.append(at)
        return sorted({*starts, *held}) if held else starts

    def rewriter_gate(self, handler: Handler) -> Gate:
        """What the rewriter is given of this gate: ``handler`` reads what it stops at."""
        return Gate(self.stops, handler, TEXTS, text_stops=self.text_stops)

    def text_stops(self, name: str) -> list[int]:
        """Of the last ``stops``, those that count in the text of a raw-text element
        ``name``: the catalogue's (``handle`` reads start tags only)."""
        return self._inner.text_stops(name) if self._inner is not None else []

    def _sighted(self, buf: bytes, at: int, host: str, starts: list[int]) -> bool:
        """Record an unknown host written at ``at``; True when ``handle`` must read
        the start tag it is in instead: holding, or a tag one of ``starts`` (the
        catalogue's stops) lies in, which the rewriter hands to ``handle`` anyway (and
        which may hide hosts: the catalogue's suspects are among its stops)."""
        lt = buf.rfind(b"<", max(0, at - _REACH), at)
        if lt == -1:
            return False
        name = _TAG_NAME.match(buf, lt + 1)
        gt = buf.find(b">", lt, at)
        if gt != -1:  # in text: a <script> or <style>'s?
            kind = _TEXT_KINDS.get(name.group().lower()) if name is not None else None
            if kind is None or name is None or (host, kind) in self._texts:
                return False
            if kind == INLINE and not _runs(buf[lt : gt + 1], name.end() - lt):
                return False  # JSON-LD and other data blocks name URLs, load none
            self._texts.add((host, kind))  # once per page: text is scanned again
            self._record(host, kind)
            return False
        end = buf.find(b">", at)
        if name is None or end == -1:
            return False  # an end tag or a comment; or the rest comes with more bytes
        i = bisect.bisect_left(starts, lt)
        if self._watch.hold or (i < len(starts) and starts[i] < end):
            self._flagged.add(buf[lt : end + 1])
            return True
        eq = buf.rfind(b"=", lt, at)
        attribute = _NAME_BACKWARDS.match(buf[max(lt, eq - 64) : eq][::-1]) if eq != -1 else None
        if attribute is None:
            return False
        reading = _reading(name.group(), attribute.group(1))
        if reading is None:
            return False  # an attribute the browser loads nothing from (a link's href)
        tag, condition = reading
        if condition is None or condition.search(buf[lt : end + 1]) is not None:
            self._record(host, tag)
        return False

    def _record(self, host: str, kind: str) -> None:
        self._watch.inventory.add_uncovered(host, kind)
        self._watch.book.totals[kind] += 1

    def handle(self, el: Element) -> None:
        raw = el.start_tag()  # as written (the catalogue may strip attributes)
        inner = self._inner
        if inner is not None:
            inner.handle(el)
            if el.removed:
                return
        # Flagged by stops, or hiding hosts from them; not a tag sighted and recorded
        # there (a script reaches here whatever stops said).
        if raw in self._flagged or _hides(raw):
            self._look(el)

    def _look(self, el: Element) -> None:
        """Record the unknown hosts ``el`` contacts, and hold them if the mode says so."""
        watch = self._watch
        classify, own = watch.classifier.classify, watch.own
        tag = el.tag
        remove = strip = False
        hosts: list[str] = []
        for contact in contacts(tag, el.get):
            target = url_target(contact.url, None)
            if target is None or owned(target[0], own):
                continue
            host, path = target
            if classify(host, path) is not UNCOVERED:
                continue
            self._record(host, tag)
            hosts.append(host)
            if watch.hold and tag in _HELD:
                if contact.action == REMOVE:
                    remove = True
                elif contact.attribute == "ping":
                    el.remove_attribute("ping")
                    strip = True
        if remove:
            if watch.hold == PLACEHOLDER and tag in _FRAMES:
                held = self._placeholder(el, Held(hosts[0], watch.category, embed_size(el.get)))
                self._count(PLACEHOLDER if held else ONCE)
            else:
                el.remove()
                self._count(REMOVE)
        elif strip:
            self._count(STRIP)

    def _count(self, action: str) -> None:
        key = (RULE_ID, action)
        self.counts[key] = self.counts.get(key, 0) + 1


_ENTITY = re.compile(rb"&(?!(?:amp|quot|lt|gt|apos|nbsp);)[#A-Za-z]")
_CSS_ESCAPE = re.compile(rb"\\[0-9A-Fa-f]")
# A tab, newline or carriage return in an authority (browsers drop them; a line
# break between attributes is no such thing).
_BROKEN = re.compile(rb"(?:[/\\]{2}|[sSpP]:)[^/\\?#\"'<> \f\t\n\r]*[\t\n\r]")
_UNSEEN = ("", UNCOVERED)  # not in a watch's memo yet (None there: nothing to record)
_REACH = 16384  # how far back a tag's "<" is looked for
_TAG_NAME = re.compile(rb"[A-Za-z][A-Za-z0-9:-]*")
_TEXT_KINDS = {b"script": INLINE, b"style": "inline-style"}
# The name of the attribute whose value holds a sighting, read backwards from its "=".
_NAME_BACKWARDS = re.compile(rb"[\t\n\f\r ]*([-A-Za-z0-9_:.]+)")
_FETCHING = re.compile(
    rb"(?i)\brel[\t\n\f\r ]*=[\t\n\f\r ]*[\"']?[^\"'>]*\b(?:"
    + b"|".join(re.escape(r.encode()) for r in sorted(FETCHING_RELS))
    + rb")\b"
)
_IMAGE_INPUT = re.compile(rb"(?i)\btype[\t\n\f\r ]*=[\t\n\f\r ]*[\"']?[\t\n\f\r ]*image\b")
_REFRESH = re.compile(rb"(?i)\bhttp-equiv[\t\n\f\r ]*=[\t\n\f\r ]*[\"']?[\t\n\f\r ]*refresh\b")
_CONDITIONAL = {
    ("link", "href"): _FETCHING,
    ("link", "imagesrcset"): _FETCHING,
    ("input", "src"): _IMAGE_INPUT,
    ("meta", "content"): _REFRESH,
}


def _runs(start_tag: bytes, name_end: int) -> bool:
    """Whether a <script> start tag is one whose text a browser runs."""
    values = {a.name: a.value for a in lexer.parse_attributes(start_tag, name_end, "latin-1")}
    return script_runs(values.get)


@functools.lru_cache(maxsize=1024)
def _reading(
    name: bytes, attribute_backwards: bytes
) -> tuple[str, re.Pattern[bytes] | None] | None:
    """Whether a URL in an attribute (its name as written, backwards) of a start tag
    (its name as written) is one the browser contacts (contacts.py's forms): None
    when it is not, else the tag's name and the test of the raw tag a conditional form
    needs (a link's rel, an input's type, a meta's http-equiv). Remembered: a page
    names a few dozen pairs."""
    tag = name.lower().decode("latin-1")
    attribute = attribute_backwards[::-1].lower().decode("latin-1")
    condition = _CONDITIONAL.get((tag, attribute))
    if condition is not None:
        return tag, condition
    return (tag, None) if attribute in plain_attributes(tag) else None


def _hides(raw: bytes) -> bool:
    """Whether a start tag may hide a host from the authority patterns: a character
    reference, a CSS escape, a tab or newline in an authority, a srcdoc (percent
    escapes and non-ASCII names are read by the patterns). A byte test before each
    search: most tags need none."""
    if b"&" in raw and _ENTITY.search(raw) is not None:
        return True
    if b"\\" in raw and _CSS_ESCAPE.search(raw) is not None:
        return True
    if (b"\t" in raw or b"\n" in raw or b"\r" in raw) and _BROKEN.search(raw) is not None:
        return True
    return b"srcdoc" in raw.lower()


def _suspects(buf: bytes) -> list[int]:
    """Where a host may hide from a literal scan (suspects.py's cases), for pages
    the catalogue does not examine."""
    return suspects.starts(buf)
