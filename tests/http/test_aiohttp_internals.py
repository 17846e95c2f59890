"""The aiohttp internals the proxy relies on, checked one by one, so that an aiohttp
release that changes one fails here by name rather than somewhere in the middle of a
proxy test. pyproject.toml keeps aiohttp below the next minor release for the same
reason; raise that bound only with this file green."""

from __future__ import annotations

import asyncio
import inspect
import tomllib
from pathlib import Path

import aiohttp
from aiohttp import http_exceptions, http_parser, http_writer, web
from packaging.requirements import Requirement

from proxy.app import create_app
from proxy.http.upstream import ExactRequest
from proxy.server import ProxyRunner, _Connection, _Server, check_aiohttp, server_options
from proxy.settings import Settings

ROOT = Path(__file__).resolve().parent.parent.parent
VERSION = aiohttp.__version__


def changed(what: str, user: str) -> str:
    return (
        f"aiohttp {VERSION} changed {what}, which {user} relies on: adapt it, then update "
        "the note and the bound in pyproject.toml"
    )


def test_the_installed_aiohttp_is_within_the_declared_bound() -> None:
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    spec = next(Requirement(d) for d in deps if Requirement(d).name == "aiohttp")
    assert any(s.operator == "<" for s in spec.specifier), "aiohttp needs an upper bound"
    assert spec.specifier.contains(VERSION), f"aiohttp {VERSION} is outside {spec.specifier}"
    assert check_aiohttp() == [], check_aiohttp()


def test_the_compiled_parser_is_where_check_aiohttp_looks() -> None:
    assert http_parser.HttpRequestParser.__module__ == "aiohttp._http_parser", changed(
        "the module of its compiled HTTP parser", "server.check_aiohttp"
    )


def test_server_builds_its_handlers_from_loop_and_kwargs() -> None:
    source = inspect.getsource(web.Server.__call__)
    assert "RequestHandler(self, loop=self._loop, **self._kwargs)" in source, changed(
        "web.Server.__call__", "server._Server (ProxyRunner's class swap)"
    )
    params = inspect.signature(web.RequestHandler.__init__).parameters
    assert list(params)[:3] == ["self", "manager", "loop"], changed(
        "web.RequestHandler's constructor", "server._Server"
    )
    assert inspect.iscoroutinefunction(web.AppRunner._make_server), changed(
        "web.AppRunner._make_server", "server.ProxyRunner"
    )


async def test_proxy_runner_swaps_in_its_own_connections() -> None:
    app = create_app(Settings(access_log="-", decision_log="-"))
    runner = ProxyRunner(app, **server_options(app))
    await runner.setup()
    try:
        server = runner.server
        assert server is not None
        assert type(server) is _Server, changed("AppRunner._make_server", "ProxyRunner")
        assert hasattr(server, "_loop") and hasattr(server, "_kwargs"), changed(
            "web.Server's _loop and _kwargs", "server._Server"
        )
        assert isinstance(server(), _Connection), changed("web.Server.__call__", "_Server")
        assert server.request_handler.__name__ != "_handle", changed(
            "web.Server.request_handler", "ProxyRunner (refuse_unroutable)"
        )
    finally:
        await runner.cleanup()


def test_error_pages_hooks() -> None:
    params = list(inspect.signature(web.RequestHandler.handle_error).parameters)
    assert params == ["self", "request", "status", "exc", "message"], changed(
        "RequestHandler.handle_error", "server._Connection"
    )
    assert hasattr(http_writer.StreamWriter, "output_size"), changed(
        "StreamWriter.output_size", "server._Connection"
    )
    assert http_exceptions.LineTooLong("x", 8190, "9000").args[1] == 8190, changed(
        "LineTooLong's args (line, limit, size)", "server._Connection (414 or 431)"
    )


def test_headers_can_wait_for_the_first_body_bytes() -> None:
    """responses.response(ready=...): a response class that turns this flag off has
    its headers sent with the first body bytes written, in one send."""
    assert web.StreamResponse._send_headers_immediately is True, changed(
        "StreamResponse._send_headers_immediately", "responses.response"
    )
    assert "self._send_headers_immediately" in inspect.getsource(
        web.StreamResponse._write_headers
    ), changed("StreamResponse._write_headers", "responses.response")
    assert "_send_headers_with_payload" in inspect.getsource(http_writer.StreamWriter.write), (
        changed("StreamWriter.write (headers sent with the payload)", "responses.response")
    )


def test_client_request_hooks() -> None:
    assert hasattr(aiohttp.ClientRequest, "_skip_auto_headers"), changed(
        "ClientRequest._skip_auto_headers", "upstream.ExactRequest"
    )
    params = list(inspect.signature(aiohttp.ClientRequest.update_auto_headers).parameters)
    assert params == ["self", "skip_auto_headers"], changed(
        "ClientRequest.update_auto_headers", "upstream.ExactRequest"
    )
    assert "request_class" in inspect.signature(aiohttp.ClientSession.__init__).parameters, changed(
        "ClientSession(request_class=...)", "app._client_session"
    )


async def test_exact_request_sends_only_the_headers_it_is_given() -> None:
    """The behaviour the hooks above are for: no User-Agent, Accept or Accept-Encoding
    of aiohttp's own reaches the origin."""
    seen: list[bytes] = []

    async def origin(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(await reader.readuntil(b"\r\n\r\n"))
        writer.write(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(origin, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with aiohttp.ClientSession(request_class=ExactRequest) as session:
            async with session.post(
                f"http://127.0.0.1:{port}/x", data=b"body", headers={"X-Mine": "1"}
            ) as r:
                assert r.status == 204
    finally:
        server.close()
        await server.wait_closed()
    head = seen[0].decode().lower()
    for name in ("user-agent:", "accept:", "accept-encoding:", "content-type:"):
        assert name not in head, changed("ClientRequest's default headers", "ExactRequest")
    assert "x-mine: 1" in head
