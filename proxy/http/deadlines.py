"""The deadlines of forwarded requests, kept by one timer for all of them.

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

One timer for all requests in flight (``Watchdog``): every ``tick`` it looks at the
deadlines of each, and stops when there are none. A request costs no timer of its own,
only a place in a set; a chunk costs three increments (``read`` and ``sent``). A
deadline is found within a tick of being due, never before.
"""

from __future__ import annotations

import asyncio
import logging
import select

import aiohttp
from aiohttp import web

log = logging.getLogger("consent_proxy")

# aiohttp's writer waits for the client only after this much since it last waited.
UNWAITED = 64 * 1024


class Watchdog:
    """The deadlines of every request in flight, looked at every ``tick`` seconds while
    there are any (``tick``: a quarter second, or less for short deadlines)."""

    def __init__(self, answer: float, read_pause: float, client_pause: float) -> None:
        self.answer = answer
        self.read_pause = read_pause
        self.client_pause = client_pause
        self.tick = min(0.25, answer / 4, read_pause / 4, client_pause / 4)
        self._active: set[RequestDeadlines] = set()
        self._handle: asyncio.TimerHandle | None = None

    def start(self, request: web.BaseRequest) -> RequestDeadlines:
        """The deadlines of ``request``, from now; in the request's own task."""
        loop = asyncio.get_running_loop()
        deadlines = RequestDeadlines(self, request, loop.time() + self.answer)
        self._active.add(deadlines)
        if self._handle is None:
            self._handle = loop.call_later(self.tick, self._look)
        return deadlines

    def stop(self, deadlines: RequestDeadlines) -> None:
        self._active.discard(deadlines)

    def _look(self) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        for deadlines in [p for p in self._active if not p.look(now)]:
            self._active.discard(deadlines)  # cut: nothing more to watch
        self._handle = loop.call_later(self.tick, self._look) if self._active else None


class RequestDeadlines:
    """One request's deadlines (made by ``Watchdog.start``): call ``answered()`` when
    the origin's headers arrive and ``close()`` when done. ``turns`` goes up when the
    proxy starts waiting for a chunk of the origin's body and when the chunk comes: it
    is odd while the proxy waits. ``sent`` counts the bytes written to the client."""

    def __init__(self, watchdog: Watchdog, request: web.BaseRequest, answer_by: float) -> None:
        self._watchdog = watchdog
        self._task = asyncio.current_task()
        self._request = request
        self._answer_by: float | None = answer_by  # None: not waiting for headers

    # Until they change (one request sets few of them; these are its defaults).
    expired = False  # the answer deadline passed (the task was cancelled)
    origin: aiohttp.ClientResponse | None = None
    turns = 0
    sent = 0  # bytes written to the client: add each write's before it
    _origin_due: float | None = None  # the next look at the origin
    _origin_seen = -1  # turns at the last look
    _seen = -1  # sent at the last look at the client
    _client_due: float | None = None  # the next look at the client
    _peeked = b""  # read by ``waiting``: what ``read`` returns next

    def expect_answer(self) -> None:
        """A request (or its last body byte) went out: the answer is due from now."""
        self._answer_by = asyncio.get_running_loop().time() + self._watchdog.answer

    def answered(self, origin: aiohttp.ClientResponse) -> None:
        self._answer_by = None
        self.origin = origin

    async def read(self) -> bytes:
        """The origin's next chunk, as it arrives (b"" at its end)."""
        assert self.origin is not None
        if self._peeked:
            chunk, self._peeked = self._peeked, b""
            return chunk
        self.turns += 1
        chunk = await self.origin.content.readany()
        self.turns += 1
        return chunk

    def ended(self) -> bool:
        """Whether the origin's body has ended and all of it was read."""
        assert self.origin is not None
        return not self._peeked and self.origin.content.at_eof()

    def waiting(self) -> bool:
        """Whether the next ``read()`` would wait for the origin: none of its body is
        buffered or waits in its connection's socket, and the body has not ended. (A
        rewrite sends what it has when the origin pauses, instead of waiting.)"""
        assert self.origin is not None
        content = self.origin.content
        if self._peeked or content.is_eof():
            return False
        self._peeked = content.read_nowait()  # public: the buffer, never waiting
        return not self._peeked and not _socket_readable(self.origin)

    def close(self) -> None:
        self._watchdog.stop(self)

    def look(self, now: float) -> bool:
        """Acts on the deadlines that are due; False when it cut the request."""
        watchdog = self._watchdog
        answer_by = self._answer_by
        if answer_by is not None and now >= answer_by:
            self._answer_by = None
            self.expired = True
            if self._task is not None:
                self._task.cancel()
            return False
        if self.origin is not None:
            if self._origin_due is None:  # from now on, watch the origin
                self._origin_seen = self.turns
                self._origin_due = now + watchdog.read_pause
            elif now >= self._origin_due:
                if self._origin_stalled():
                    return False
                self._origin_due = now + watchdog.read_pause
        if self._client_due is None:
            if self.sent > UNWAITED:  # from now on, watch the client
                self._seen = self.sent
                self._client_due = now + watchdog.client_pause
        elif now >= self._client_due:
            if self._client_stalled():
                return False
            self._seen = self.sent
            self._client_due = now + watchdog.client_pause
        return True

    def _origin_stalled(self) -> bool:
        """Closes the origin's connection when the proxy was waiting for it at the last
        look and is still, with nothing read in between."""
        seen = self.turns
        if seen % 2 and seen == self._origin_seen:
            assert self.origin is not None
            pause = self._watchdog.read_pause
            log.warning("origin paused over %s s inside its body: cut", pause)
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
            # Imported here: observe.logs imports upstream, which imports this module.
            from proxy.observe.logs import log_path

            log.warning(
                "client too slow: took no bytes for %s s: %s %s",
                self._watchdog.client_pause,
                request.method,
                log_path(request.raw_path),
            )
            transport.abort()
            return True
        return False


def _socket_readable(origin: aiohttp.ClientResponse) -> bool:
    """Whether bytes (or the end) wait in the socket of ``origin``'s connection, not yet
    handed to its stream by the event loop (which reads sockets between the turns of
    tasks). Unknown (no socket): no, so the caller acts as if the origin paused."""
    connection = origin.connection
    transport = connection.transport if connection is not None else None
    sock = transport.get_extra_info("socket") if transport is not None else None
    if sock is None:
        return False
    poller = select.poll()  # not select(): descriptors past FD_SETSIZE work too
    poller.register(sock.fileno(), select.POLLIN)
    return bool(poller.poll(0))
