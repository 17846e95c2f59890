"""Fixtures: a real origin, the real proxy in front of it, raw-socket clients."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from aiohttp.web_runner import BaseRunner

from proxy.app import create_app
from proxy.consent.rules import EMPTY, RuleSet
from proxy.http.hook import RewriteFactory, identity_factory
from proxy.server import ProxyRunner, server_options
from proxy.settings import Settings
from tests.origin import origin_app

Factory = Callable[..., Awaitable[TestServer]]


@pytest.fixture
async def origin(aiohttp_server: Factory) -> TestServer:
    return await aiohttp_server(origin_app())


class ProxyServer(TestServer):
    """The test server, run as ``consent-proxy serve`` runs the app (ProxyRunner)."""

    async def _make_runner(self, **kwargs: Any) -> BaseRunner:
        return ProxyRunner(self.app, **kwargs)


@pytest.fixture
async def make_proxy(tmp_path: Any) -> AsyncIterator[Callable[..., Awaitable[TestServer]]]:
    servers: list[TestServer] = []

    async def start(
        upstream: str,
        app: web.Application | None = None,
        *,
        rewrite: RewriteFactory | None = identity_factory,
        ruleset: RuleSet | None = EMPTY,
        **changes: Any,
    ) -> TestServer:
        """The proxy in front of ``upstream``; by default with the identity rewrite
        (the proxy's mechanics); ``rewrite=None`` enforces consent with ``ruleset``
        (None: load ``rules=DIR`` from settings and watch the directory)."""
        settings = dataclasses.replace(
            Settings(
                upstream=upstream,
                access_log=str(tmp_path / "access.log"),
                decision_log=str(tmp_path / "decisions.log"),
                log_flush=0.0,  # tests read the logs right after a response
                upstream_timeout=2.0,
                read_timeout=2.0,
            ),
            **changes,
        )
        app = app or create_app(settings, rules=ruleset, rewrite=rewrite)
        options = server_options(app)
        options.pop("shutdown_timeout")
        options.pop("handler_cancellation")  # the test server always sets it
        server = ProxyServer(app, host="127.0.0.1")
        await server.start_server(**options)
        servers.append(server)
        return server

    yield start
    while servers:
        await servers.pop().close()


@pytest.fixture
async def proxy(origin: TestServer, make_proxy: Callable[..., Awaitable[TestServer]]) -> TestServer:
    return await make_proxy(str(origin.make_url("/")))


async def raw_request(server: TestServer, data: bytes, timeout: float = 5.0) -> bytes:
    """Send bytes on a fresh connection; read until the server closes or goes quiet."""
    reader, writer = await asyncio.open_connection(server.host, server.port)
    writer.write(data)
    await writer.drain()
    chunks = []
    try:
        while True:
            chunk = await asyncio.wait_for(reader.read(65536), timeout)
            if not chunk:
                break
            chunks.append(chunk)
            if b"\r\n\r\n" in b"".join(chunks) and _complete(b"".join(chunks)):
                break
    except TimeoutError:
        pass
    finally:
        writer.close()
    return b"".join(chunks)


def _complete(data: bytes) -> bool:
    head, _, body = data.partition(b"\r\n\r\n")
    lower = head.lower()
    for line in lower.split(b"\r\n"):
        if line.startswith(b"content-length:"):
            return len(body) >= int(line.split(b":")[1])
    if b"transfer-encoding: chunked" in lower:
        return body.endswith(b"0\r\n\r\n")
    return False


def status_of(response: bytes) -> int:
    return int(response.split(b" ", 2)[1])


async def canned_origin(response: bytes, *, close: bool = True) -> tuple[asyncio.Server, str]:
    """An origin that answers every request with the given bytes (for broken origins)."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(response)
            await writer.drain()
            if close:
                writer.close()
            else:
                await asyncio.sleep(30)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    return server, f"http://127.0.0.1:{port}"
