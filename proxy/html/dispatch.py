"""Which element handlers a start tag gets, and running them.

For each candidate of the tag's name (``Program.by_tag``: the handlers whose selectors
have that subject type) the literals of its hints are looked for in the tag first, with
character references decoded, a cheap test before any attribute is parsed; only then
are its selectors tested against the open elements (``OpenElements``, which the
rewriter keeps). The handlers of a raw-text element (script, style, ...) wait for its
text: they are returned in ``deferred`` and the rewriter runs them once it is read.
"""

from __future__ import annotations

import html as htmllib

from proxy.html import spec
from proxy.html.element import Element, Handler
from proxy.html.matcher import OpenElements
from proxy.html.program import Program


class Dispatcher:
    """The element handlers of one rewriter, matched and run tag by tag."""

    def __init__(
        self, program: Program, handlers: list[Handler], elements: OpenElements, encoding: str
    ) -> None:
        self._program = program
        self._handlers = handlers
        self._elements = elements
        self._encoding = encoding

    def start_tag(
        self, name: str, raw: bytes, name_end: int, deferred: list[Handler]
    ) -> Element | None:
        """Run the handlers of matching selectors, once each (those of raw-text elements
        wait for their text, in ``deferred``); return the element if any matched."""
        candidates = self._program.by_tag.get(name, ())
        anywhere = self._program.by_tag.get(None)
        if anywhere:
            candidates = (*candidates, *anywhere)
        if not candidates:
            return None
        el: Element | None = None
        probe = Element(name, raw, name_end, self._encoding)
        elements = self._elements
        active = -1  # the steps active here: computed when a candidate gets this far
        # A literal every match contains must be in the tag (with character references
        # decoded): a cheap test before any attribute is parsed.
        text = raw
        if b"&" in raw:
            decoded = htmllib.unescape(raw.decode(self._encoding, "surrogateescape"))
            try:
                text = decoded.encode(self._encoding, "surrogateescape")
            except UnicodeEncodeError:  # a reference to what the encoding lacks (&nbsp; in ASCII)
                text = decoded.encode("utf-8", "surrogatepass")
        lower = b""
        union = self._program.union.get(name) if anywhere is None else None
        if union is not None:
            lower = text.lower()
            if union.search(lower) is None:  # no filtered candidate can match
                candidates = tuple(c for c in candidates if not c.filtered)
        for cand in candidates:
            if cand.filtered:
                hit = cand.exact is not None and cand.exact.search(text) is not None
                if not hit and cand.any_case is not None:
                    lower = lower or text.lower()
                    hit = cand.any_case.search(lower) is not None
                if not hit:
                    continue
            if active < 0:
                active = elements.active()
            if any(elements.matches(i, probe, active) for i in cand.selectors):
                el = probe
                if name in spec.RAWTEXT:
                    deferred.append(self._handlers[cand.index])
                else:
                    self._handlers[cand.index](el)
                    if el.removed:
                        break
        return el
