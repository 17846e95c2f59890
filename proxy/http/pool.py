"""Connections to the origin, and which of them may carry the next visitor's request.

aiohttp's client keeps a finished connection in its pool and parses whatever arrives
on it meanwhile; that parsed answer is handed to the next request taken over the
connection (and the connection stays one answer behind from then on). An origin sends
such bytes when it leaves a request body unread (the body, if it is an HTTP request,
is answered as a pipelined request), sends an unsolicited extra answer, or sends more
body than its Content-Length says. As nginx does with an idle upstream connection, the
proxy closes a connection on which anything unexpected arrives. A connection goes
back to the pool only when

- the request went out whole, body included (aiohttp calls ``start_timeout`` once it
  has: the request is marked sent there);
- the answer was framed exactly: its Content-Length consumed, or its chunked body
  terminated (aiohttp's parser marks a close-delimited answer ``should_close``, an
  answer cut short leaves its payload unfinished: both close);
- nothing came after the answer: no parsed answer nobody claimed, no start of one in
  the parser (looked at when the connection is released, and again when it is taken
  from the pool, since aiohttp releases a connection from inside its parser when the
  last body byte is parsed, before the bytes after it are);
- nothing came while it waited in the pool: an idle connection's ``data_received`` is
  replaced by one that closes it, so the answer bytes of busy connections pay nothing.

A close for the origin's own fault (bytes nobody asked for) writes one warning line;
the ordinary reasons (an answer that ended the connection, a body the origin did not
wait for) close silently. The log line names neither path nor query nor cookie: the
connection does not know them.

Also: aiohttp sends an idempotent request again when a connection fails under it.
That is switched off (``_retry_connection``); ``safe_to_retry`` says which requests
the proxy may send again itself (no side effects, no body).

The aiohttp internals this relies on are pinned by tests/http/test_origin_connections.py.
"""

from __future__ import annotations

import functools
import logging
from typing import Any

import aiohttp
from aiohttp.client_proto import ResponseHandler
from aiohttp.client_reqrep import ConnectionKey
from aiohttp.connector import Connection
from aiohttp.helpers import _EXC_SENTINEL
from aiohttp.http_exceptions import HttpProcessingError

from proxy.http.upstream import ExactRequest
from proxy.settings import Settings

log = logging.getLogger("consent_proxy.pool")

# Sent again once when a connection fails before an answer: no side effect, no body.
SAFE_TO_RETRY = frozenset({"GET", "HEAD", "OPTIONS"})


def safe_to_retry(method: str, has_body: bool) -> bool:
    return method in SAFE_TO_RETRY and not has_body


class OriginProtocol(ResponseHandler):
    """aiohttp's protocol for one origin connection, which knows whether its request
    went out whole and refuses to wait in the pool with bytes nobody asked for."""

    _request_sent = False
    _parked = False

    def set_response_params(self, **params: Any) -> None:
        # Called once per request, before it is written.
        self._request_sent = False
        super().set_response_params(**params)

    def start_timeout(self) -> None:
        # aiohttp calls this once the whole request (body included) is written.
        self._request_sent = True
        super().start_timeout()

    def unfit(self, taken: bool) -> tuple[str, bool] | None:
        """Why this connection must not carry another request, and whether that is
        the origin's fault (worth a warning); None when it may. ``taken``: it is being
        taken from the pool (else released to it)."""
        if self._upgraded or self._exception is not None or not self._request_sent:
            return "exchange not complete", False
        if self._buffer:
            return "an answer nobody asked for", True
        if not taken:
            # Close-delimited, cut short, Connection: close. Not looked at again when
            # taken: what could set it meanwhile (an answer nobody asked for) is in
            # the buffer by then.
            return ("answer ends the connection", False) if self.should_close else None
        # The parser is looked at only when the connection is taken: a release can
        # come from inside it (the last body byte's callback), when it is mid-step.
        parser = self._parser
        if parser is not None:
            try:
                started = parser.feed_eof()  # what is left: the start of a next answer
            except Exception:
                started = True
            if started is not None:
                return "bytes after the end of its answer", True
        return None

    def park(self) -> None:
        """Waits in the pool: from now on, any byte from the origin closes it."""
        self._parked = True
        # An instance attribute shadows the class's method: the transport looks
        # data_received up on every read, and busy connections keep the plain one.
        self.__dict__["data_received"] = self._while_idle

    def unpark(self) -> None:
        self._parked = False
        self.__dict__.pop("data_received", None)

    def _while_idle(self, data: bytes) -> None:
        if not data:
            # Not the origin: aiohttp resuming its parser (resume_reading). What that
            # parses is found when the connection is taken from the pool.
            ResponseHandler.data_received(self, data)
            return
        log.warning(
            "origin %s sent %d bytes on an idle connection: connection closed",
            _peer(self),
            len(data),
        )
        self.close()

    def set_exception(self, exc: BaseException, exc_cause: BaseException = _EXC_SENTINEL) -> None:
        if self._parked and self._exception is None and isinstance(exc, HttpProcessingError):
            # Bytes after an answer released from inside the parser, which are no
            # answer at all (aiohttp closes the connection).
            log.warning("origin %s sent bytes after its answer: connection closed", _peer(self))
        super().set_exception(exc, exc_cause)


class OriginConnector(aiohttp.TCPConnector):
    """aiohttp's TCP connector with ``OriginProtocol`` connections, releasing to the
    pool only the ones fit for another request and checking them again when taken."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._factory = functools.partial(OriginProtocol, loop=self._loop)  # type: ignore[assignment]

    def _release(
        self, key: ConnectionKey, protocol: ResponseHandler, *, should_close: bool = False
    ) -> None:
        if not should_close and isinstance(protocol, OriginProtocol):
            should_close = _refused(protocol, taken=False)
        super()._release(key, protocol, should_close=should_close)
        if not should_close and isinstance(protocol, OriginProtocol) and protocol.is_connected():
            protocol.park()

    async def _get(self, key: ConnectionKey, traces: list[Any]) -> Connection | None:
        while (connection := await super()._get(key, traces)) is not None:
            protocol = connection.protocol
            if not isinstance(protocol, OriginProtocol):
                return connection
            protocol.unpark()
            if not _refused(protocol, taken=True):
                return connection
            connection.close()
        return None


def _refused(protocol: OriginProtocol, *, taken: bool) -> bool:
    reason = protocol.unfit(taken)
    if reason is None:
        return False
    why, origins_fault = reason
    if origins_fault:
        when = "taken from the pool" if taken else "released"
        log.warning("origin %s: %s (%s): connection closed", _peer(protocol), why, when)
    return True


def _peer(protocol: ResponseHandler) -> str:
    transport = protocol.transport
    peer = transport.get_extra_info("peername") if transport is not None else None
    if isinstance(peer, tuple) and len(peer) >= 2:
        return f"{peer[0]}:{peer[1]}"
    return "?"


def origin_session(settings: Settings) -> aiohttp.ClientSession:
    """The proxy's one client session: no cookie jar, no decompression, no headers of
    its own (``request_class``), connections checked as above, no retries by aiohttp."""
    connector = OriginConnector(limit=0, limit_per_host=256, ttl_dns_cache=60)
    timeout = aiohttp.ClientTimeout(
        # No sock_read: it re-arms a timer on every packet; RequestDeadlines keeps one per
        # request for the wait for headers and for pauses inside a body.
        total=None,
        sock_connect=settings.upstream_timeout,
    )
    session = aiohttp.ClientSession(
        connector=connector,
        timeout=timeout,
        auto_decompress=False,
        cookie_jar=aiohttp.DummyCookieJar(),
        request_class=ExactRequest,
        trust_env=False,
    )
    # aiohttp sends GET, HEAD, OPTIONS, TRACE, PUT and DELETE again when the connection
    # fails under them (a PUT without a body included); the proxy decides that itself.
    session._retry_connection = False
    return session
