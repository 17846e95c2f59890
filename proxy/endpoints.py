"""The proxy's own paths under /_consent/ (never forwarded to the origin).

Admin endpoints (health) answer only loopback peers that came without a proxy in
between, or requests bearing ``Authorization: Bearer <admin_token>``.
"""

from __future__ import annotations

import hmac
import ipaddress
import time

from aiohttp import web

from proxy.settings import Settings

STARTED = web.AppKey("started", float)


def add_routes(app: web.Application, settings: Settings) -> None:
    app[STARTED] = time.monotonic()

    async def health(request: web.Request) -> web.StreamResponse:
        if not is_admin(request, settings.admin_token):
            raise web.HTTPNotFound()
        return web.json_response(
            {"status": "ok", "uptime_s": round(time.monotonic() - request.app[STARTED], 1)},
            headers={"Cache-Control": "no-store"},
        )

    app.router.add_get("/_consent/health", health)


def is_admin(request: web.Request, token: str) -> bool:
    auth = request.headers.get("Authorization", "")
    if token and hmac.compare_digest(auth.encode(), f"Bearer {token}".encode()):
        return True
    try:
        loopback = ipaddress.ip_address(request.remote or "").is_loopback
    except ValueError:
        loopback = False
    proxied = any(h in request.headers for h in ("X-Forwarded-For", "Forwarded", "X-Real-IP"))
    return loopback and not proxied
