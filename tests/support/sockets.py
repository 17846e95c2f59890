"""Clients on raw sockets, origins that answer with canned bytes, free ports."""

from __future__ import annotations

import asyncio
import socket

from aiohttp.test_utils import TestServer


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


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
