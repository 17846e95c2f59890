"""An origin written on raw asyncio sockets, for tests that need exact bytes both ways:
what the proxy sends (framing of request bodies) and what a faulty origin answers
(bodies that do not match their length, unsolicited responses, bodies left unread).

Each connection reads request heads one after another; ``respond`` decides what is
written back for each, and whether the request's body is read at all (a handler that
does not read it leaves the body to be parsed as the next request, as small servers
do).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator, Awaitable, Callable


@dataclasses.dataclass(frozen=True)
class RawRequest:
    """One request head as the origin read it, on connection number ``connection``."""

    connection: int
    head: bytes
    method: str
    target: str
    headers: tuple[tuple[str, str], ...]

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key.lower() == name.lower():
                return value
        return None


Respond = Callable[[RawRequest, asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


def parse_head(connection: int, head: bytes) -> RawRequest:
    lines = head.decode("latin-1").split("\r\n")
    method, target, _version = lines[0].split(" ", 2)
    headers = tuple(
        (name.strip(), value.strip())
        for name, _, value in (line.partition(":") for line in lines[1:] if line)
    )
    return RawRequest(connection, head, method, target, headers)


class RawOrigin:
    """The origin on 127.0.0.1; ``requests`` lists every request head read, in order,
    ``connections`` counts the connections accepted."""

    def __init__(self, respond: Respond) -> None:
        self._respond = respond
        self.requests: list[RawRequest] = []
        self.connections = 0
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def url(self) -> str:
        assert self._server is not None
        port = self._server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    async def start(self) -> RawOrigin:
        self._server = await asyncio.start_server(self._connection, "127.0.0.1", 0)
        return self

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._server is not None:
            await self._server.wait_closed()

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self.connections += 1
        number = self.connections
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                request = parse_head(number, head)
                self.requests.append(request)
                await self._respond(request, reader, writer)
                if writer.is_closing():
                    return
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        except asyncio.CancelledError:
            pass  # closed by the test: the task ends normally (asyncio logs a cancelled one)
        finally:
            self._tasks.discard(task)
            writer.close()


@contextlib.asynccontextmanager
async def raw_origin(respond: Respond) -> AsyncIterator[RawOrigin]:
    origin = await RawOrigin(respond).start()
    try:
        yield origin
    finally:
        await origin.close()


def response(
    body: bytes,
    *,
    status: str = "200 OK",
    headers: tuple[tuple[str, str], ...] = (),
    length: int | None = None,
) -> bytes:
    """A response with a Content-Length (``length``: a false one, when given)."""
    lines = [f"HTTP/1.1 {status}"]
    lines += [f"{name}: {value}" for name, value in headers]
    lines.append(f"Content-Length: {len(body) if length is None else length}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


async def read_body(request: RawRequest, reader: asyncio.StreamReader) -> bytes:
    """The body exactly as it came on the wire (chunked framing included)."""
    length = request.header("Content-Length")
    if length is not None:
        return await reader.readexactly(int(length))
    if (request.header("Transfer-Encoding") or "").lower() != "chunked":
        return b""
    raw = b""
    while True:
        size_line = await reader.readuntil(b"\r\n")
        raw += size_line
        size = int(size_line.split(b";", 1)[0], 16)
        if size == 0:
            while (trailer := await reader.readuntil(b"\r\n")) != b"\r\n":
                raw += trailer
            return raw + b"\r\n"
        raw += await reader.readexactly(size + 2)
