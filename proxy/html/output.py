"""What leaves the rewriter: the bytes it emits, matched elements as their handlers
edited them, and the elements it follows to their end.

A *watch* is an element whose end matters: a removed one (nothing is emitted until it
ends, then the HTML a handler put after it) or one with HTML to add at its end
(``append`` before its end tag, ``after`` behind it). A stream does not say where an
element ends, so the *region* follows every element opened inside a watch and ends
them as a browser's tree builder would: by their end tag, by a start tag that implies
their end (``<li>`` ending an open ``<li>``, a block ending an open ``<p>``), or by the
end tag of an element enclosing them. Outside every watch nothing is followed: the
region is empty and a tag costs one test of an empty list.
"""

from __future__ import annotations

from dataclasses import dataclass

from proxy.html import spec
from proxy.html.element import Element


@dataclass
class Watch:
    """What to do when a watched element ends: it was removed, or content follows it."""

    remove: bool
    append: bytes = b""
    after: bytes = b""


class Output:
    """The rewriter's output: ``emit`` what passes (nothing inside a removed element),
    ``write`` what is inserted whatever the region, ``flush`` what is ready to send."""

    def __init__(self) -> None:
        self._out: list[bytes] = []
        self.region: list[tuple[str, Watch | None]] = []  # open elements around watches
        # Entries of the region per name: the end tags and start tags that look for one
        # find none at no cost, and a search always ends in popping what it passed.
        self._in_region: dict[str, int] = {}
        self.removing = 0  # removed elements open here: nothing is emitted, nor matched

    def emit(self, data: bytes) -> None:
        if data and not self.removing:
            self._out.append(data)

    def write(self, data: bytes) -> None:
        """Emit ``data`` even inside a removed element (the document's inserts)."""
        self._out.append(data)

    def flush(self) -> bytes:
        out = b"".join(self._out)
        self._out.clear()
        return out

    def open(self, name: str, raw: bytes, watch: Watch | None = None) -> None:
        """Emit an unchanged start tag and follow it if a watch is open around it."""
        self.emit(raw)
        if watch is not None:
            self._push(name, watch)
            self.removing += watch.remove
        elif self.region and name not in spec.VOID and not raw.endswith(b"/>"):
            self._push(name, None)

    def element(self, el: Element, name: str, empty: bool = False) -> None:
        """Emit a matched element's start tag as its handlers edited it (or what
        replaces it), and watch it when it was removed or content goes at its end.
        ``empty``: an XHTML self-closing tag, with no content and no end tag."""
        before = el._encode(el.before_html)
        after = el._encode(el.after_html)
        void = empty or name in spec.VOID
        if el.removed:
            self.emit(before + el._encode([el.replacement]))
            if void:
                self.emit(after)
            else:
                self._push(name, Watch(remove=True, after=after))
                self.removing += 1
            return
        head = before + el.start_tag() + el._encode(el.prepend_html)
        append = el._encode(el.append_html)
        if void:
            self.emit(head + append + after)
        else:
            self.open(name, head, Watch(False, append, after) if append or after else None)

    def end_tag(self, name: str, raw: bytes) -> None:
        """Emit an end tag, ending the region's elements it closes."""
        if self._in_region.get(name):
            self._pop(self._innermost(name), raw)
            return
        if name in spec.SCOPE_CLOSERS:
            keep = len(self.region)
            while keep and self.region[keep - 1][0] in spec.IMPLIED_END:
                keep -= 1
            self._pop(keep, None)
        self.emit(raw)

    def close_implied(self, name: str) -> None:
        """A start tag that implicitly ends open elements ends watches on them too."""
        region = self.region
        if not region:
            return
        if name in spec.P_CLOSERS and self._in_region.get("p"):
            self._pop(self._innermost("p"), None)
            return
        if spec.closes(region[-1][0], name):
            self._pop(len(region) - 1, None)

    def close(self) -> None:
        """End of document: every element still followed ends without an end tag."""
        self._pop(0, None)

    def _push(self, name: str, watch: Watch | None) -> None:
        self.region.append((name, watch))
        self._in_region[name] = self._in_region.get(name, 0) + 1

    def _innermost(self, name: str) -> int:
        """The index of the innermost region entry named ``name`` (there is one)."""
        region = self.region
        i = len(region) - 1
        while region[i][0] != name:
            i -= 1
        return i

    def _pop(self, index: int, end_raw: bytes | None) -> None:
        """Close ``region[index:]``; ``end_raw`` is the end tag that closed
        ``region[index]`` (None when the elements ended without one)."""
        while len(self.region) > index:
            name, watch = self.region.pop()
            self._in_region[name] -= 1
            own = end_raw if len(self.region) == index else None
            if watch is None:
                if own is not None:
                    self.emit(own)
                continue
            self.removing -= watch.remove
            if watch.remove:
                self.emit(watch.after)
            else:
                self.emit(watch.append + (own or b"") + watch.after)
