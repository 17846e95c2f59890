"""The catalogue on a page: which elements a refusing visitor's page loses.

One ``CatalogueGate`` per page. Its ``stops`` finds, in the bytes the rewriter holds,
every catalogued domain and loader signature (the catalogue's prefilter) and every
place a host could hide from a literal scan (``prefilter.SUSPECT``'s cases); the rewriter stops only
at tags holding one of those, and at scripts it does not pass whole. ``handle``
then reads the element as a browser would (``decide_element``; a script that runs
is searched with ``decide_text`` too) and removes it, strips the attributes that
contact a denied host, or, for an iframe of ``media`` (or the Maps API's script,
facades.py), has it replaced by a click-to-load placeholder. A <style> element's text
loses the url() values that would load a denied host (``clean_css``). The
hand-written rules have acted before it.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass

from proxy.consent import suspects
from proxy.consent.catalogue import Catalogue
from proxy.consent.contacts import REMOVE, STRIP, attribute_names, script_runs
from proxy.consent.cutmemo import TextJudge
from proxy.consent.cuts import PageCuts
from proxy.consent.facades import embed_script
from proxy.consent.holding import ONCE as ONCE
from proxy.consent.holding import PLACEHOLDER as PLACEHOLDER
from proxy.consent.holding import RULE_ID as RULE_ID
from proxy.consent.sizing import embed_size
from proxy.consent.verdicts import TEXT, Hit, Verdict, clean_css, element_hits, text_hits
from proxy.html import Element, Gate, Handler

TEXTS = frozenset({"style"})  # raw-text elements whose text the gate reads, besides scripts
SURROGATE = "surrogate"  # a stand-in put in where a script was removed or cut
_EMBEDS = frozenset({"iframe", "frame", "embed", "object"})
# Why a running script too long to be read whole goes (nothing in it was found).
UNREAD = Hit(TEXT, "(text too long to read whole)", "", "", REMOVE)


@dataclass(frozen=True)
class Held:
    """An embed to stand in for: whose it is, its category, and its size as CSS
    (``width:640px;height:360px``, empty when the element gave none)."""

    entity: str
    category: str
    size: str


def _embed(el: Element) -> bool:
    """An element held behind an embed placeholder while media is denied."""
    return el.tag in _EMBEDS or embed_script(el)


class CatalogueGate:
    """The catalogue's decisions on one page for one visitor (``denied``: the
    categories they did not grant). ``counts`` gets what it did, as
    ``(RULE_ID, action)``;
    ``placeholder(el, held)`` is called for a media embed instead of removing it: it
    holds the embed (True), or shows it this once ("Load this", once.py: False)."""

    def __init__(
        self,
        catalogue: Catalogue,
        denied: Collection[str],
        placeholder: Callable[[Element, Held], bool],
        counts: dict[tuple[str, str], int],
        *,
        page_host: str | None = None,
        scheme: str | None = None,
        exempt: frozenset[str] = frozenset(),
        first_party: tuple[str, ...] = (),
        shown: tuple[str, Callable[[Element], None]] | None = None,
    ) -> None:
        """``exempt``: entities a hand-written rule keeps on purpose (Google's tags
        under Consent Mode's advanced mode): the catalogue leaves them alone. So it
        does the site's own: the entity of ``page_host`` and of each ``first_party``
        host (a site's CDN domains are its entity's, e.g. a publisher catalogued as
        social, whose page names its own static hosts).
        ``shown``: (category, callback) for a visitor who comes back after granting
        that category at a placeholder (returning.py): each embed of it the page
        now shows goes to the callback, which numbers it as its placeholder was."""
        self._catalogue = catalogue
        self._denied = frozenset(denied)
        self._placeholder = placeholder
        self._host = page_host
        self._scheme = scheme
        self._exempt = exempt | catalogue.own_entities((page_host, *first_party))
        # The judge of a script's text (cuts.py's, remembered by its value: cutmemo.py).
        self.text_judge = TextJudge(catalogue, self._denied, self._exempt)
        self._scan = catalogue.prefilter.scan
        self._found: list[int] = []  # the last stops: the prefilter's hits
        self._stops: list[int] = []  # and the hidden hosts
        self._held, self._hidden = b"", self._stops  # the last buffer, its hidden hosts
        self._in_style: list[int] | None = None  # text_stops("style"), once asked
        self._shown = shown
        self.counts = counts
        self.cuts: PageCuts | None = None  # set by the page: scripts cut, not removed

    def stops(self, buf: bytes) -> list[int]:
        """Where, in ``buf``, a catalogued host, a signature or a hidden host may be."""
        found = self._found = sorted({start for start, _, _ in self._scan(buf)})
        hidden = suspects.starts(buf)
        self._stops = sorted({*found, *hidden}) if hidden else found
        self._held, self._hidden, self._in_style = buf, hidden, None
        return self._stops

    def rewriter_gate(self, handler: Handler) -> Gate:
        """What the rewriter is given of this gate: ``handler`` reads what it stops at."""
        return Gate(self.stops, handler, TEXTS, text_stops=self.text_stops)

    def text_stops(self, name: str) -> list[int]:
        """Of the last ``stops``, those that count in the text of a raw-text element
        ``name``: in a script's, the catalogued hosts and signatures only (its text
        is read for them, literally: ``text_hits``); in a style's, those and the
        hidden hosts that raw text can hold (``suspects.in_raw_text``: what
        ``_style`` looks for; not ``top:50%``, which looks like an authority)."""
        if name == "script":
            return self._found
        if self._in_style is None:
            raw = suspects.in_raw_text(self._held, self._hidden)
            self._in_style = sorted({*self._found, *raw}) if raw else self._found
        return self._in_style

    def handle(self, el: Element) -> None:
        verdict = self.verdict(el)
        if verdict is None and self._shown is not None and _embed(el):
            self._show(el, *self._shown)
            return
        if verdict is not None and verdict.action == STRIP:
            for name in verdict.attributes:
                el.remove_attribute(name)
            self._count(STRIP)
        elif verdict is not None:
            hit = verdict.hits[0]
            if hit.category == "media" and _embed(el):
                held = self._placeholder(el, Held(hit.entity, hit.category, embed_size(el.get)))
                self._count(PLACEHOLDER if held else ONCE)
            elif hit.attribute == TEXT and self.cuts is not None:
                self._script(el, self.cuts)
            else:
                el.remove()
                self._count(REMOVE)
            return
        if el.tag == "style" and el.text:
            self._style(el)

    def _style(self, el: Element) -> None:
        """A <style> loses the url() values and strings that load a denied host (the
        rest of its rules stay); it goes whole when one cannot be cleared in place,
        or when its text was too long to be read whole."""
        data = el.text.encode("utf-8", "surrogateescape")
        if (
            not self._scan(data)
            and b"\\" not in data  # a CSS escape, hex or not, can spell any byte
            and not suspects.in_raw_text(data, suspects.starts(data))
        ):
            return  # no catalogued domain and no hidden host in it
        text, hits = clean_css(
            el.text, self._catalogue, self._blocks, scheme=self._scheme, page_host=self._host
        )
        if not hits:
            return
        if text is None or el.text_truncated:
            el.remove()
            self._count(REMOVE)
        else:
            el.set_text(text)
            self._count(STRIP)

    def _script(self, el: Element, cuts: PageCuts) -> None:
        """A running inline script that names a denied host: its tracker statements
        cut out if they can be, else removed whole; the absorbing stand-in for the
        functions of what went (cuts.py)."""
        action, placed = cuts.remove(el)
        self._count(action)
        if placed:
            self._count(SURROGATE)

    def blocks_text(self, text: str) -> bool:
        """Whether a script with ``text`` names a host or signature this visitor's
        page loses (the judge of what cuts.py keeps)."""
        return self.text_judge(text)

    def _blocks(self, hit: Hit) -> bool:
        return hit.category in self._denied and hit.entity not in self._exempt

    def _show(self, el: Element, category: str, callback: Callable[[Element], None]) -> None:
        hits = list(
            element_hits(el.tag, el.get, self._catalogue, scheme=self._scheme, page_host=self._host)
        )
        if el.tag == "script":  # the Maps API's inline loader (facades.embed_script)
            hits += text_hits(el.text, self._catalogue)
        if any(h.category == category and h.entity not in self._exempt for h in hits):
            callback(el)

    def verdict(self, el: Element) -> Verdict | None:
        """What the catalogue does to ``el`` for this visitor (None: nothing)."""
        denied, exempt = self._denied, self._exempt
        strips = []
        hits = (
            element_hits(el.tag, el.get, self._catalogue, scheme=self._scheme, page_host=self._host)
            # Most tags a stop lies in hold it in a link's href or in text (not
            # contacts): the tag's raw bytes tell, without parsing its attributes.
            if el.may_have(attribute_names(el.tag))
            else ()
        )
        for hit in hits:
            if hit.category not in denied or hit.entity in exempt:
                continue
            if hit.action == REMOVE:
                return Verdict(REMOVE, (hit,))
            strips.append(hit)
        text = el.text if el.new_text is None else el.new_text  # a rule may have cut it
        if el.tag == "script" and text and script_runs(el.get):
            if el.text_truncated:  # longer than the rewriter reads (Gate.text_limit)
                return Verdict(REMOVE, (UNREAD,))  # fail closed: it may hold anything
            for hit in text_hits(text, self._catalogue):
                if hit.category in denied and hit.entity not in exempt:
                    return Verdict(REMOVE, (hit,))
        return Verdict(STRIP, tuple(strips)) if strips else None

    def _count(self, action: str) -> None:
        key = (RULE_ID, action)
        self.counts[key] = self.counts.get(key, 0) + 1
