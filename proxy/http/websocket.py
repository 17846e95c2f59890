"""WebSocket upgrades: connect to the origin, then relay frames both ways."""

from __future__ import annotations

import asyncio
import contextlib
import weakref

import aiohttp
from aiohttp import web
from multidict import CIMultiDict
from yarl import URL

from proxy.http import pages
from proxy.http.upstream import connection_tokens


class OpenSockets:
    """The client sockets being relayed (weakly held: a closed relay drops out)."""

    def __init__(self) -> None:
        self.sockets: weakref.WeakSet[web.WebSocketResponse] = weakref.WeakSet()


OPEN = web.AppKey("open_websockets", OpenSockets)


def track(app: web.Application) -> None:
    """Keep the open client sockets so a shutdown can say goodbye (1001) to each."""
    app[OPEN] = OpenSockets()

    async def going_away(app: web.Application) -> None:
        for ws in list(app[OPEN].sockets):
            await ws.close(code=aiohttp.WSCloseCode.GOING_AWAY, message=b"server shutting down")

    app.on_shutdown.append(going_away)


def is_upgrade(request: web.Request) -> bool:
    """A WebSocket handshake: GET, ``Upgrade: websocket`` and ``upgrade`` in Connection
    (``Connection: keep-alive, upgrade-insecure-requests`` is not one)."""
    return (
        "Upgrade" in request.headers
        and request.method == "GET"
        and request.headers.get("Upgrade", "").strip().lower() == "websocket"
        and "upgrade" in connection_tokens(request.headers)
    )


async def relay(
    request: web.Request, session: aiohttp.ClientSession, url: URL, headers: CIMultiDict[str]
) -> web.StreamResponse:
    protocols = [
        p.strip()
        for v in request.headers.getall("Sec-WebSocket-Protocol", [])
        for p in v.split(",")
        if p.strip()
    ]
    for name in list(headers):
        if name.lower().startswith("sec-websocket-"):
            headers.popall(name, None)
    ws_url = url.with_scheme("wss" if url.scheme == "https" else "ws")
    try:
        upstream = await session.ws_connect(
            ws_url, headers=headers, protocols=protocols, autoping=False, max_msg_size=0
        )
    except (aiohttp.ClientError, OSError, TimeoutError):
        return pages.error(502)
    async with upstream:
        client = web.WebSocketResponse(
            protocols=[upstream.protocol] if upstream.protocol else (),
            autoping=False,
            max_msg_size=0,
        )
        await client.prepare(request)
        request.app[OPEN].sockets.add(client)
        down = asyncio.create_task(_pump(upstream, client))
        up = asyncio.create_task(_pump(client, upstream))
        try:
            await asyncio.wait({down, up}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (down, up):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        code = upstream.close_code or client.close_code or aiohttp.WSCloseCode.GOING_AWAY
        await client.close(code=code)
        await upstream.close(code=client.close_code or code)
        return client


Socket = web.WebSocketResponse | aiohttp.ClientWebSocketResponse


async def _pump(src: Socket, dst: Socket) -> None:
    async for msg in src:
        if msg.type == aiohttp.WSMsgType.TEXT:
            await dst.send_str(msg.data)
        elif msg.type == aiohttp.WSMsgType.BINARY:
            await dst.send_bytes(msg.data)
        elif msg.type == aiohttp.WSMsgType.PING:
            await dst.ping(msg.data)
        elif msg.type == aiohttp.WSMsgType.PONG:
            await dst.pong(msg.data)
        elif msg.type in (
            aiohttp.WSMsgType.CLOSE,
            aiohttp.WSMsgType.CLOSING,
            aiohttp.WSMsgType.CLOSED,
            aiohttp.WSMsgType.ERROR,
        ):
            break
