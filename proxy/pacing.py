"""Deadlines while a response is relayed: for a client that stops taking bytes, and
for an origin that stops sending them.

A client that stops taking bytes would hold a response (and its upstream connection)
forever; one whose transport buffer does not drain for ``pause`` seconds, while the
proxy has written nothing more, is cut off. The timer starts only once more than
aiohttp writes without waiting has been written, so small responses pay nothing.

An origin that pauses inside its body longer than ``read_timeout`` while the proxy
waits for it is cut off too (the client then sees a truncated transfer). One timer per
response does it; time spent waiting for a slow client does not count against the
origin.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web

log = logging.getLogger("consent_proxy")

# aiohttp's writer waits for the client only after this much since it last waited.
UNWAITED = 64 * 1024


class SendDeadline:
    """Aborts the connection of ``request`` when no write completes for ``pause``
    seconds while bytes wait in its transport. Call ``wrote(n)`` before each write of
    ``n`` bytes and ``cancel()`` when the response is done."""

    def __init__(self, request: web.BaseRequest, pause: float) -> None:
        self._request = request
        self._pause = pause
        self._size = 0
        self._writes = 0
        self._seen = -1
        self._handle: asyncio.TimerHandle | None = None

    def wrote(self, size: int) -> None:
        self._size += size
        self._writes += 1
        if self._handle is None and self._size > UNWAITED:
            self._handle = asyncio.get_running_loop().call_later(self._pause, self._check)

    def cancel(self) -> None:
        if self._handle is not None:
            self._handle.cancel()

    def _check(self) -> None:
        transport = self._request.transport
        if transport is None or transport.is_closing():
            return
        if self._writes == self._seen and transport.get_write_buffer_size() > 0:
            log.warning(
                "client too slow: took no bytes for %s s: %s %s",
                self._pause,
                self._request.method,
                self._request.path,
            )
            transport.abort()
            return
        self._seen = self._writes
        self._handle = asyncio.get_running_loop().call_later(self._pause, self._check)


class OriginBody:
    """The origin's body as it arrives (chunks as the network gives them, bounded by
    the client's read buffer), cut off when the proxy has waited ``pause`` seconds for
    the next one. Call ``close()`` when the response is done."""

    def __init__(self, upstream: aiohttp.ClientResponse, pause: float) -> None:
        self._upstream = upstream
        self._chunks: AsyncIterator[bytes] = upstream.content.iter_any().__aiter__()
        self._pause = pause
        self._first = b""
        self._loop = asyncio.get_running_loop()
        self._since: float | None = None  # when the current wait began
        self._handle = self._loop.call_later(pause, self._check)

    def __aiter__(self) -> OriginBody:
        return self

    async def __anext__(self) -> bytes:
        if self._first:
            first, self._first = self._first, b""
            return first
        self._since = self._loop.time()
        try:
            return await self._chunks.__anext__()
        finally:
            self._since = None

    def unread(self, data: bytes) -> None:
        """``data`` comes first again (what was read to sniff the type)."""
        self._first = data

    def close(self) -> None:
        self._handle.cancel()

    def _check(self) -> None:
        since, now = self._since, self._loop.time()
        if since is not None and now - since >= self._pause:
            log.warning("origin paused over %s s inside its body: cut", self._pause)
            self._upstream.close()  # the waiting read fails: the transfer is cut
            return
        wait = self._pause if since is None else self._pause - (now - since)
        self._handle = self._loop.call_later(wait, self._check)
