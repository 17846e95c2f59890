"""Run proxy processes: bind, serve until SIGTERM, several workers on one port."""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import signal
import socket
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.http import HttpVersion10, HttpVersion11
from aiohttp.http_exceptions import BadHttpMessage, HttpProcessingError, LineTooLong

from proxy.app import ACCESS_LOG, ACCESS_LOGGER, MAX_REQUEST_LINE, SETTINGS, create_app, unroutable
from proxy.consent.rules import RuleError, all_errors
from proxy.http import pages
from proxy.observe import logs
from proxy.selftest import SelfTestError
from proxy.settings import EXIT_USAGE, Settings, parse_listen


def check_aiohttp() -> list[str]:
    """Problems with the installed aiohttp that weaken request-smuggling defences."""
    from aiohttp import http_parser

    problems = []
    version = tuple(int(p) for p in aiohttp.__version__.split(".")[:3] if p.isdigit())
    if version < (3, 14, 1):
        problems.append(f"aiohttp {aiohttp.__version__} is older than 3.14.1 (parser fixes)")
    if http_parser.HttpRequestParser.__module__ != "aiohttp._http_parser":
        problems.append(
            "aiohttp's compiled HTTP parser is not in use (AIOHTTP_NO_EXTENSIONS set, or no "
            "wheel for this platform); the pure-Python parser is slower and less strict"
        )
    return problems


def _bind(settings: Settings, reuse_port: bool) -> socket.socket:
    host, port = parse_listen(settings.listen)
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))  # listen() once the app is ready (serve)
    sock.setblocking(False)
    return sock


def serve(settings: Settings, reuse_port: bool = False) -> int:
    """Run one proxy process until SIGTERM/SIGINT; exit 0 after a graceful stop."""
    try:
        sock = _bind(settings, reuse_port)
    except OSError as exc:
        print(f"consent-proxy: error: --listen {settings.listen}: {exc.strerror}", file=sys.stderr)
        return EXIT_USAGE
    try:
        app = create_app(settings)
    except RuleError as exc:
        sock.close()
        for error in all_errors(exc):
            print(f"consent-proxy: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except SelfTestError as exc:
        sock.close()
        print(f"consent-proxy: error: {exc}; not serving", file=sys.stderr)
        return EXIT_USAGE
    # Bound early (a taken port is reported before the rules are read), listening only
    # now: no connection waits on a process that is still loading, or that refuses.
    sock.listen(1024)
    host, port = sock.getsockname()[:2]
    print(
        f"consent-proxy: serving http://{host}:{port} -> {settings.upstream} (pid {os.getpid()})",
        file=sys.stderr,
        flush=True,
    )
    asyncio.run(_serve(app, sock))
    return 0


async def _serve(app: web.Application, sock: socket.socket) -> None:
    runner = ProxyRunner(app, **server_options(app))
    await runner.setup()
    await web.SockSite(runner, sock).start()
    await stopped()
    await runner.cleanup()  # in-flight requests get shutdown_timeout to finish


async def stopped() -> None:
    """Returns at SIGTERM or SIGINT (unless SIGINT is ignored, as in workers)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        if signal.getsignal(sig) is not signal.SIG_IGN:
            loop.add_signal_handler(sig, stop.set)
    await stop.wait()


log = logging.getLogger("consent_proxy.server")


class _Connection(web.RequestHandler):
    """aiohttp's connection handler, answering requests that cannot be parsed with the
    proxy's generic pages: 414 for a request line too long, 431 for header lines too
    long or too many, 400 otherwise; one log line, no traceback, no echo of input."""

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if status == 500 or not isinstance(exc, HttpProcessingError):
            return super().handle_error(request, status, exc, message)
        if request.writer.output_size > 0:
            raise ConnectionError("a response has begun: no error page can follow")
        if isinstance(exc, LineTooLong):
            status = 414 if exc.args[1] == MAX_REQUEST_LINE else 431
        elif isinstance(exc, BadHttpMessage) and "Too many headers" in exc.message:
            status = 431
        client = logs.truncate_ip(request.remote)
        log.warning("unreadable request from %s: %s (%s)", client, status, type(exc).__name__)
        return pages.error(status, close=True)

    async def shutdown(self, timeout: float | None = 15.0) -> None:
        """The stop (SIGTERM): the listener is already closed. A request in flight
        finishes, and its answer says ``Connection: close`` (as nginx and HAProxy do
        while they stop), so no client sends another request on a connection that is
        about to end."""
        request = self._current_request
        if request is not None:
            answer_and_close(request)
        await super().shutdown(timeout)


def answer_and_close(request: web.BaseRequest, *, as_http11: bool = False) -> None:
    """The answer to ``request`` says ``Connection: close`` (and the connection ends
    after it), and with ``as_http11`` starts ``HTTP/1.1`` whatever version the request
    named. aiohttp takes both from the parsed request line and offers no public way to
    change them once a request exists: its parsed message is swapped for a copy."""
    request._message = request._message._replace(should_close=True)
    if as_http11:
        request._version = HttpVersion11
        request._cache.pop("version", None)  # reified from the request line


AnyHandler = Callable[[web.BaseRequest], Awaitable[web.StreamResponse]]


def refuse_before_routing(handler: AnyHandler) -> AnyHandler:
    """``handler`` (the app's), behind the answers to requests that must go no further:
    a target that is no path (CONNECT's host:port and OPTIONS's asterisk never match a
    route, and would get aiohttp's own 404; absolute-form targets are routed and refused
    in ``handle``), and framings RFC 9112 calls faulty that aiohttp's parser lets
    through (``faulty_framing``). The runner puts this in front of the app (a
    middleware would do the same at a cost on every request)."""

    def route(request: web.BaseRequest) -> Awaitable[web.StreamResponse]:
        # Not a coroutine itself: most requests go straight to the app's, no frame more.
        refused = unroutable(request.method, request.raw_path)
        if refused is None and (
            request.version != HttpVersion11 or "Transfer-Encoding" in request.headers
        ):
            refused = faulty_framing(request)
        return handler(request) if refused is None else _answered(refused)

    return route


async def _answered(response: web.StreamResponse) -> web.StreamResponse:
    return response


def faulty_framing(request: web.BaseRequest) -> web.StreamResponse | None:
    """The answer to a request whose framing a server must not trust, None for the rest.

    - HTTP/0.9 (a request line without a version; aiohttp's parser accepts it, even
      followed by headers): 400. Nothing is forwarded for it.
    - HTTP/1.0 with ``Transfer-Encoding``: 400 (RFC 9112 6.1: the framing is faulty,
      even with a Content-Length; an HTTP/1.0 front may have read the body as
      nothing, and the chunks as the next request).
    - HTTP/1.1 with a transfer coding other than ``chunked`` alone (``gzip, chunked``):
      501, as nginx answers; its body would reach the origin still coded.

    Each answer closes the connection: bytes after the request (a request smuggled
    behind it) are never read as another."""
    version = request.version
    codings = request.headers.getall("Transfer-Encoding", ())
    if version == HttpVersion11:
        if [c.strip().lower() for c in codings] == ["chunked"]:
            return None
        refused = pages.error(501, close=True)
    elif version == HttpVersion10:
        if not codings:
            return None
        refused = pages.error(400, close=True)
    else:
        refused = pages.error(400, close=True)
    client = logs.truncate_ip(request.remote)
    log.warning("faulty framing from %s: %s (HTTP/%d.%d)", client, refused.status, *version)
    answer_and_close(request, as_http11=version < HttpVersion10)
    return refused


class _Server(web.Server):
    """aiohttp's server making our connections: the same as its own ``__call__``
    (which names its handler class, with no hook to change it), our class instead."""

    def __call__(self) -> web.RequestHandler:
        return _Connection(self, loop=self._loop, **self._kwargs)


class ProxyRunner(web.AppRunner):
    """aiohttp's runner, with the proxy's answers to unparsable requests and to
    targets no route can match (CONNECT, ``OPTIONS *``)."""

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        server.__class__ = _Server  # the same server; its connections are ours
        server.request_handler = refuse_before_routing(server.request_handler)
        return server


def server_options(app: web.Application) -> dict[str, Any]:
    """Options for aiohttp's server shared by serve, demo and the workers."""
    return {
        "access_log_class": app[ACCESS_LOGGER],
        "access_log": app[ACCESS_LOG],
        "shutdown_timeout": app[SETTINGS].shutdown_timeout,
        # Also the deadline for a request's headers: aiohttp closes a connection whose
        # next request is not complete when the keep-alive time runs out.
        "keepalive_timeout": app[SETTINGS].client_timeout,
        "handler_cancellation": True,
        "auto_decompress": False,
    }


def _worker(settings: Settings) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    sys.exit(serve(settings, reuse_port=True))


def run_workers(settings: Settings) -> int:
    """N processes, each with its own SO_REUSEPORT socket on the same port."""
    ctx = multiprocessing.get_context("spawn")
    procs = [
        ctx.Process(target=_worker, args=(settings,), daemon=False) for _ in range(settings.workers)
    ]
    for proc in procs:
        proc.start()

    def forward(_signum: int, _frame: object) -> None:
        for proc in procs:
            if proc.pid is not None and proc.is_alive():
                os.kill(proc.pid, signal.SIGTERM)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    for proc in procs:
        proc.join()
    return max((proc.exitcode or 0) for proc in procs)
