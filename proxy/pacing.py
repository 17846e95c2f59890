"""The deadlines of one forwarded request, kept by one timer.

- The origin answers (sends its response headers) within ``answer`` seconds of the
  request, counted from the last request-body byte sent: otherwise the waiting task
  gets TimeoutError (a 504).
- The origin does not pause inside its body: when the proxy has waited for it through
  a whole ``read_pause`` (it is found between one and two of them) with no byte coming,
  its connection is closed and the client sees a truncated transfer. Time spent
  waiting for a slow client does not count against the origin.
- The client takes bytes: when nothing more could be written to it through a whole
  ``client_pause`` (found between one and two of them) while bytes wait in its
  transport, its connection is aborted (it would hold the response and its upstream
  connection forever). Watched only once more than aiohttp writes without waiting has
  been written, so small responses pay nothing.

One timer per request, whatever happens: a fast request arms it once and cancels it
once, and a chunk costs three increments (``read`` and ``sent``). The timer wakes at
least every ``min(answer, read_pause, client_pause)`` seconds while the request lasts
and looks at each deadline that is due.
"""

from __future__ import annotations

import asyncio
import logging

import aiohttp
from aiohttp import web

log = logging.getLogger("consent_proxy")

# aiohttp's writer waits for the client only after this much since it last waited.
UNWAITED = 64 * 1024


class Pacing:
    """Made in the request's own task, before the request is sent upstream; call
    ``answered()`` when the origin's headers arrive and ``close()`` when done.
    ``turns`` goes up when the proxy starts waiting for a chunk of the origin's body
    and when the chunk comes: it is odd while the proxy waits. ``sent`` counts the
    bytes written to the client."""

    def __init__(
        self, request: web.BaseRequest, answer: float, read_pause: float, client_pause: float
    ) -> None:
        loop = self._loop = asyncio.get_running_loop()
        self._task = asyncio.current_task()
        self._request = request
        self._answer = answer
        self._read_pause = read_pause
        self._client_pause = client_pause
        self._period = min(answer, read_pause, client_pause)
        now = loop.time()
        self._answer_by: float | None = now + answer  # None: not waiting for headers
        self._handle = loop.call_at(now + self._period, self._check)

    # Until they change (one request sets few of them; these are its defaults).
    expired = False  # the answer deadline passed (the task was cancelled)
    origin: aiohttp.ClientResponse | None = None
    turns = 0
    sent = 0  # bytes written to the client: add each write's before it
    _origin_due: float | None = None  # the next look at the origin
    _origin_seen = -1  # turns at the last look
    _seen = -1  # sent at the last look at the client
    _client_due: float | None = None  # the next look at the client

    def expect_answer(self) -> None:
        """A request (or its last body byte) went out: the answer is due from now."""
        self._answer_by = self._loop.time() + self._answer

    def answered(self, origin: aiohttp.ClientResponse) -> None:
        self._answer_by = None
        self.origin = origin

    async def read(self) -> bytes:
        """The origin's next chunk, as it arrives (b"" at its end)."""
        assert self.origin is not None
        self.turns += 1
        chunk = await self.origin.content.readany()
        self.turns += 1
        return chunk

    def close(self) -> None:
        self._handle.cancel()

    def _check(self) -> None:
        now = self._loop.time()
        due = now + self._period
        answer_by = self._answer_by
        if answer_by is not None:
            if now >= answer_by:
                self._answer_by = None
                self.expired = True
                if self._task is not None:
                    self._task.cancel()
                return
            due = min(due, answer_by)
        if self.origin is not None:
            origin_due = self._origin_due
            if origin_due is None or now >= origin_due:
                if self._origin_stalled():
                    return
                origin_due = self._origin_due = now + self._read_pause
            due = min(due, origin_due)
        client_due = self._client_due
        if client_due is None and self.sent > UNWAITED:  # from now on, watch the client
            self._seen = self.sent
            client_due = self._client_due = now + self._client_pause
        if client_due is not None:
            if now >= client_due:
                if self._client_stalled():
                    return
                self._seen = self.sent
                client_due = self._client_due = now + self._client_pause
            due = min(due, client_due)
        self._handle = self._loop.call_at(due, self._check)

    def _origin_stalled(self) -> bool:
        """Closes the origin's connection when the proxy was waiting for it at the last
        look and is still, with nothing read in between."""
        seen = self.turns
        if seen % 2 and seen == self._origin_seen:
            assert self.origin is not None
            log.warning("origin paused over %s s inside its body: cut", self._read_pause)
            self.origin.close()  # the waiting read fails: the transfer is cut
            return True
        self._origin_seen = seen
        return False

    def _client_stalled(self) -> bool:
        """Aborts the client's connection when nothing was written since the last look
        and bytes still wait in its transport."""
        request = self._request
        transport = request.transport
        if transport is None or transport.is_closing():
            return True
        if self.sent == self._seen and transport.get_write_buffer_size() > 0:
            log.warning(
                "client too slow: took no bytes for %s s: %s %s",
                self._client_pause,
                request.method,
                request.path,
            )
            transport.abort()
            return True
        return False
