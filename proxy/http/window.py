"""The first window of a rewritten page: what is read and rewritten before its
response headers leave.

Headers leave as soon as the rewriter has output and the origin has nothing more
ready (its next bytes would be waited for: the head of a page whose origin pauses to
render the rest reaches the browser at once, as through a plain proxy), or once 64 KB
are rewritten, whichever comes first. A page whose end has arrived by then is
answered whole (a Content-Length, X-Consent-Actions of the whole page). Whatever fails
in the window fails before anything was sent: a clean 502.

When the rewrite cache holds a page made from a body with the same digest (see
cache.py), the window first reads ahead without rewriting, while the origin sends
without pausing and no more than that page's length: a body that turns out the same
is not rewritten at all; any other is rewritten from what was read. Before that,
``read_same`` compares the bytes as they arrive with the ones the cache's page was made
from: a body that ends the same, byte for byte, needs neither decoding nor a digest,
nor anything made for a rewrite.
"""

from __future__ import annotations

from dataclasses import dataclass

from proxy.http.cache import Ticket
from proxy.http.codec import Decoder
from proxy.http.deadlines import RequestDeadlines
from proxy.http.timeslice import Timesliced
from proxy.http.transcode import PageText

WINDOW = 64 * 1024  # decoded bytes rewritten before the headers leave, at most


@dataclass(frozen=True)
class Window:
    pending: list[bytes]  # rewritten, to send first
    whole: bool  # the page ended in the window (closed: ``pending`` is all of it)
    same: bool  # read whole, and the same body as the cache's candidate: not rewritten


async def first_window(
    deadlines: RequestDeadlines,
    decoder: Decoder,
    sliced: Timesliced,
    text: PageText,
    ticket: Ticket,
    first: bytes,
) -> Window:
    """Read and rewrite the start of the page (``first``: bytes already read), through
    ``sliced``, the feed of ``text``. Raises what decoding, rewriting or reading raise."""
    pending: list[bytes] = []
    rewritten = 0
    candidate = ticket.candidate
    ahead: list[bytes] | None = [] if candidate is not None else None  # read, not rewritten
    while True:
        chunk, first = first or await deadlines.read(), b""
        if not chunk:
            break
        ticket.receive(chunk)
        data = decoder.feed(chunk)
        ticket.digest(data)
        if ahead is not None:
            ahead.append(data)
            assert candidate is not None
            if decoder.total <= candidate.decoded and not deadlines.waiting():
                continue
            data, ahead = b"".join(ahead), None  # paused, or longer: not the same page
        rewritten += len(data)
        data = await sliced.feed(data)
        if data:
            pending.append(data)
        if deadlines.ended():
            continue  # the next read says so: a whole page
        if rewritten >= WINDOW or (pending and deadlines.waiting()):
            return Window(pending, False, False)
    rest = decoder.flush()
    ticket.digest(rest)
    if ahead is not None:
        if ticket.same_as_candidate():
            return Window([], True, True)
        rest = b"".join(ahead) + rest
    pending.append(await sliced.feed(rest) + text.close())
    return Window(pending, True, False)


async def read_same(
    deadlines: RequestDeadlines, ticket: Ticket, first: bytes
) -> tuple[bool, bytes]:
    """Read the body while it matches, byte for byte, what the cache's candidate page
    was made from as received (``first``: bytes already read). (True, b""): it ended
    the same. Else (False, every byte read, ``first`` included): other bytes came,
    the body ended short, or the origin paused (the page then streams as it comes);
    the window starts with them. (False, ``first``) at once when there is nothing to
    compare with."""
    same = ticket.same_so_far()
    if same is None:
        return False, first
    matched = 0
    while True:
        chunk, first = first or await deadlines.read(), b""
        if not chunk:
            return (True, b"") if matched == len(same) else (False, same[:matched])
        if not same.startswith(chunk, matched):
            return False, same[:matched] + chunk
        matched += len(chunk)
        if deadlines.waiting():
            return False, same[:matched]
