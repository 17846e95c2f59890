"""Fixtures: a real origin, the real proxy in front of it (helpers: tests/support/)."""

from __future__ import annotations

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
from tests.support.origin import origin_app

Factory = Callable[..., Awaitable[TestServer]]
FIRST = "browsing"  # the xdist group that takes longest: started first (see .ci/run)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The browsing run (tests/support/browsing.py, minutes of one process) first, so
    that under ``pytest -n 2`` the other process takes the rest of the suite meanwhile
    instead of the run starting when everything else is done."""

    def group(item: pytest.Item) -> str:
        mark = item.get_closest_marker("xdist_group")
        return str(mark.args[0]) if mark is not None and mark.args else ""

    items.sort(key=lambda item: group(item) != FIRST)  # stable: the rest keep their order


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
