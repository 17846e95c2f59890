"""The rewriter's gate: a handler for elements that a pass over the bytes finds
(``Gate``), and which start tags it sees (``sees``)."""

from __future__ import annotations

import bisect
from collections.abc import Callable
from dataclasses import dataclass

from proxy.html import lexer
from proxy.html.element import Handler


@dataclass(frozen=True)
class Gate:
    """A handler for elements that a pass over the bytes finds, rather than a selector:
    ``stops(buf)`` gives sorted offsets in a buffer where something the handler looks
    for may be written (hits of a multi-literal prefilter, say). A start tag holding a
    stop goes to ``handler`` (after the selector handlers, unless they removed it);
    the skip pattern runs with ``endpos`` at the next stop, so no needle is tested in
    it. ``texts``: the raw-text elements (besides <script>) whose text the handler
    reads too. A <script> or one of ``texts`` that the skip pattern does not pass
    whole goes to the handler with its text when a stop lies in its start tag or its
    text, or when its end is not in the buffer yet (its text may hold a stop in bytes
    not scanned); one with no stop in it passes as it came, held for nobody. Texts
    are read whole up to ``text_limit`` (a page's whole stylesheet can be inline: a
    handler that edits it needs all of it; a script's tracker may come after a long
    first part). ``text_stops(name)``: the offsets, among those the last ``stops``
    call gave, that matter inside the text of a raw-text element ``name`` (a stop
    that only counts in a tag, say); None: all of them."""

    stops: Callable[[bytes], list[int]]
    handler: Handler
    texts: frozenset[str] = frozenset()
    text_limit: int = 4 * 1024 * 1024  # the longest text of ``texts`` read whole
    text_stops: Callable[[str], list[int]] | None = None


def _stop_between(stops: list[int], start: int, end: int) -> bool:
    """Whether one of ``stops`` (sorted) lies in ``[start, end)``."""
    i = bisect.bisect_left(stops, start)
    return i < len(stops) and stops[i] < end


def sees(
    gate: Gate, stops: list[int], buf: bytes, name: str, tag: tuple[int, int]
) -> tuple[bool, int]:
    """Whether ``gate`` sees the start tag ``name`` at ``tag`` (offsets in ``buf``;
    ``stops``: the gate's in ``buf``): a stop lies in it, or it is a script or one of
    the gate's ``texts`` with a stop in its text (the ``text_stops`` for its name),
    or whose end is not in the buffer yet. Also where its raw text ends (-1: not
    looked for, or not found)."""
    start, end = tag
    if _stop_between(stops, start, end):
        return True, -1
    if name != "script" and name not in gate.texts:
        return False, -1
    if name == "script":
        text_end = lexer.find_script_end(buf, end, lexer.SCRIPT_DATA)[0]
    else:
        m = lexer.RAW_END[name].search(buf, end)
        text_end = m.start() if m else -1
    if text_end < 0 or lexer.TAG.match(buf, text_end) is None:
        return True, -1  # its text may continue in bytes not scanned yet
    inside = stops if gate.text_stops is None else gate.text_stops(name)
    return _stop_between(inside, end, text_end), text_end
