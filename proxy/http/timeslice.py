"""One page's rewrite never holds the event loop for long: its body is fed to the
rewrite in slices, and the loop gets a turn whenever about ``BUDGET`` seconds of work
have piled up since the last one.

The rewriter itself knows nothing of asyncio; this is the HTTP body path's part.
Slices are sized from the speed of the previous one (a quarter of the budget's worth
of bytes, between ``MIN_SLICE`` and ``MAX_SLICE``), so a normal page goes through in
the chunks the network delivered, at the cost of two clock readings per chunk, and a
page that is slow to rewrite is cut finely enough for the loop to get its turns.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

BUDGET = 0.01  # seconds of work between two turns of the event loop
MIN_SLICE = 1024
MAX_SLICE = 1 << 20


class Timesliced:
    """``feed`` of a rewrite (bytes in, bytes out), awaited in slices."""

    __slots__ = ("_feed", "_size", "_work")

    def __init__(self, feed: Callable[[bytes], bytes]) -> None:
        self._feed = feed
        self._size = 1 << 16
        self._work = 0.0  # seconds of work since the loop last had a turn

    async def feed(self, data: bytes) -> bytes:
        """What ``feed(data)`` returns, computed in slices, yielding in between when
        the budget is spent."""
        out: list[bytes] = []
        pos = 0
        while True:
            piece = data[pos : pos + self._size] if pos or len(data) > self._size else data
            pos += len(piece)
            start = time.perf_counter()
            out.append(self._feed(piece))
            spent = time.perf_counter() - start
            if spent > 0 and len(piece) >= MIN_SLICE:  # small ones: mostly fixed costs
                self._size = min(MAX_SLICE, max(MIN_SLICE, int(len(piece) * BUDGET / 4 / spent)))
            self._work += spent
            if self._work >= BUDGET:
                self._work = 0.0
                await asyncio.sleep(0)
            if pos >= len(data):
                return out[0] if len(out) == 1 else b"".join(out)
