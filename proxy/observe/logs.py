"""What the proxy writes down: JSON-lines records with no raw IPs, cookies or queries.

``truncate_ip`` keeps a network, never an address (IPv4 /24, IPv6 /48); ``log_path``
keeps a path without its query or path parameters. The access log writes one line per
response through aiohttp's access-logger hook. ``OneLineFormatter`` keeps the text log
one line per record whatever the input in it.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import ipaddress
import itertools
import json
import logging
import os
import re
import sys
import time
from collections.abc import Callable
from typing import Any, TextIO

from aiohttp.abc import AbstractAccessLogger
from aiohttp.web import BaseRequest, StreamResponse

from proxy.observe.metrics import Metrics


@functools.lru_cache(maxsize=4096)
def truncate_ip(address: str | None) -> str:
    """The client's network: IPv4 with the last octet zeroed, IPv6 cut to /48."""
    if not address:
        return "-"
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return "-"
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    prefix = 24 if ip.version == 4 else 48
    return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False).network_address)


def log_path(raw_path: str) -> str:
    """``raw_path`` (the request target, still percent-encoded) as logs keep it: without
    the query or a fragment, and without the parameters of any segment (``/a;jsessionid=S/b``
    gives ``/a/b``; servlet containers and some frameworks put session ids there)."""
    path = raw_path.split("?", 1)[0]
    if "#" in path:
        path = path.split("#", 1)[0]
    if ";" in path:
        path = "/".join(segment.split(";", 1)[0] for segment in path.split("/"))
    return path


# C0 and C1 controls, DEL, the Unicode line and paragraph separators, and the lone
# surrogates that invalid UTF-8 in a header becomes (they cannot even be encoded).
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")


def _escaped(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def one_line(text: str) -> str:
    """``text`` with every character that could end or hide a log line escaped
    (``\\x0d``, ``\\u2028``): input quoted in a message cannot forge a record."""
    return _UNSAFE.sub(_escaped, text)


class OneLineFormatter(logging.Formatter):
    """Records as ``logging.Formatter`` writes them, with the message on one line
    (``one_line``) and the lines of a traceback indented, so every line that starts
    at the margin starts a record the proxy wrote."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        record.message = one_line(record.message)
        return super().formatMessage(record)

    def formatException(self, ei: Any) -> str:
        return _indented(super().formatException(ei))

    def formatStack(self, stack_info: str) -> str:
        return _indented(super().formatStack(stack_info))


def _indented(text: str) -> str:
    return "\n".join("    " + one_line(line) for line in text.split("\n"))


_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=True, default=str)
_c_make_encoder = getattr(json.encoder, "c_make_encoder", None)
# The C encoder built once (json.dumps builds one per call); None without the C module.
_ENCODE = (
    _c_make_encoder(
        None, str, json.encoder.encode_basestring_ascii, None, ":", ",", False, False, True
    )
    if _c_make_encoder is not None
    else None
)
json_string = json.encoder.encode_basestring_ascii  # a JSON string literal, ASCII only


_ID_PREFIX = os.urandom(4).hex()  # this process's
_ID_COUNTER = itertools.count(1 << 32)  # hex() of it: "0x1" and 8 digits (for 4e9 ids)


def request_id() -> str:
    """16 hex digits naming one request: this process's random prefix, a counter."""
    return _ID_PREFIX + hex(next(_ID_COUNTER))[3:]


class _Clock:
    """``time.time()`` as log lines carry it (seconds, three decimals), formatted once
    per millisecond: formatting a float costs more than the rest of a log line."""

    __slots__ = ("_next", "_text")

    def __init__(self) -> None:
        self._next = 0.0  # when the text is stale
        self._text = ""

    def __call__(self) -> str:
        now = time.time()
        if now >= self._next:
            ms = int(now * 1000)
            self._text = f"{ms / 1000:.3f}"
            self._next = (ms + 1) / 1000
        return self._text


log_time = _Clock()


def json_line(record: dict[str, Any]) -> str:
    """One record per line: JSON escapes CR/LF, so input cannot forge a line."""
    if _ENCODE is not None:
        return "".join(_ENCODE(record, 0))
    return _ENCODER.encode(record)


class JsonLines(logging.Logger):
    """A logger for JSON-lines records that also writes them straight to its stream
    (``write``), no LogRecord on the hot path. Lines wait in memory at most
    ``flush_after`` seconds (0: each is written at once): one write per batch instead
    of one per line. ``close`` writes what waits."""

    def __init__(self, name: str, stream: TextIO, flush_after: float = 0.0) -> None:
        super().__init__(name, logging.INFO)
        self.stream = stream
        self.flush_after = flush_after
        self._waiting = False  # lines wait, and a flush is scheduled
        handler = logging.StreamHandler(stream)
        handler.setFormatter(logging.Formatter("%(message)s"))
        self.addHandler(handler)

    def close(self) -> None:
        self._flush()
        if self.stream is not sys.stdout:
            self.stream.close()

    def write(self, record: dict[str, Any]) -> None:
        self.write_line(json_line(record))

    def write_line(self, line: str) -> None:
        try:
            self.stream.write(line + "\n")
        except (OSError, ValueError):  # a full disk or a closed pipe must not stop serving
            return
        if not self._waiting:
            self._schedule()

    def _schedule(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        if loop is None or self.flush_after <= 0:
            self._flush()
            return
        self._waiting = True
        loop.call_later(self.flush_after, self._flush)

    def _flush(self) -> None:
        self._waiting = False
        with contextlib.suppress(OSError, ValueError):  # as in write_line
            self.stream.flush()


def open_log(name: str, target: str, flush_after: float = 0.0) -> JsonLines:
    """A JSON-lines log writing to ``target`` (a path, or - for stdout)."""
    stream: TextIO = sys.stdout if target == "-" else open(target, "a", encoding="utf-8")  # noqa: SIM115
    return JsonLines(f"consent_proxy.{name}", stream, flush_after)


_CLASSES = {n: f"{n}xx" for n in range(1, 6)}


ClientOf = Callable[[BaseRequest], str]


class AccessLogger(AbstractAccessLogger):
    """aiohttp access log as JSON lines: path without query, truncated client address.

    aiohttp makes one per connection from ``(logger, log_format)``; ``access_logger``
    gives it the class that brings the rest: ``metrics`` counts every response by
    status class, and ``client`` names the visitor of a request (behind a trusted
    proxy, not its peer; None: the peer)."""

    def __init__(
        self,
        logger: logging.Logger,
        log_format: str,
        *,
        metrics: Metrics | None = None,
        client: ClientOf | None = None,
    ) -> None:
        super().__init__(logger, log_format)
        self._lines = logger if isinstance(logger, JsonLines) else None
        self._client = client
        self._metrics = metrics

    def log(self, request: BaseRequest, response: StreamResponse, time_taken: float) -> None:
        client = self._client(request) if self._client is not None else request.remote
        status = response.status
        # Built by hand (the hottest line the proxy writes); strings go through the
        # JSON string encoder, numbers are ints (formatting a float costs more).
        line = (
            f'{{"time":{log_time()},"kind":"access",'
            f'"method":{json_string(request.method)},'
            f'"path":{json_string(log_path(request.raw_path))},'
            f'"status":{status},"bytes":{response.body_length},'
            f'"duration_us":{int(time_taken * 1_000_000)},'
            f'"client":{json_string(truncate_ip(client))}}}'
        )
        if self._lines is not None:
            self._lines.write_line(line)
        else:
            self.logger.info(line)
        # Not request.app: a request that could not be parsed was never routed.
        if self._metrics is not None:
            self._metrics.responses[_CLASSES.get(status // 100, "other")] += 1


def access_logger(
    *, metrics: Metrics | None = None, client: ClientOf | None = None
) -> type[AccessLogger]:
    """The access-logger class to give aiohttp (``access_log_class``), bound to these
    arguments (see ``AccessLogger``)."""

    class Bound(AccessLogger):
        def __init__(self, logger: logging.Logger, log_format: str) -> None:
            super().__init__(logger, log_format, metrics=metrics, client=client)

    return Bound
