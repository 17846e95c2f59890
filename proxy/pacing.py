"""Deadlines for slow clients while a response is sent.

A client that stops taking bytes would hold a response (and its upstream connection)
forever; one whose transport buffer does not drain for ``pause`` seconds, while the
proxy has written nothing more, is cut off. The timer starts only once more than
aiohttp writes without waiting has been written, so small responses pay nothing.
"""

from __future__ import annotations

import asyncio
import logging

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
