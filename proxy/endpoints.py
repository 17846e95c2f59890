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
from proxy.watch import RulesState

STARTED = web.AppKey("started", float)
GPC_SINCE = "2026-11-29"


def add_routes(app: web.Application, settings: Settings, rules: RulesState) -> None:
    app[STARTED] = time.monotonic()

    async def health(request: web.Request) -> web.StreamResponse:
        if not is_admin(request, settings.admin_token):
            raise web.HTTPNotFound()
        body = {
            "status": "ok" if rules.error is None else "degraded",
            "uptime_s": round(time.monotonic() - request.app[STARTED], 1),
            "rules": {
                "generation": rules.current.generation,
                "count": len(rules.current.rules),
                "enabled": [r.id for r in rules.current.active],
                "loaded_at": round(rules.loaded_at, 3),
                "reload_error": rules.error,
            },
        }
        return web.json_response(body, headers={"Cache-Control": "no-store"})

    async def gpc(request: web.Request) -> web.StreamResponse:
        # Global Privacy Control: this site honours Sec-GPC (denies advertising, social).
        return web.json_response(
            {"gpc": True, "lastUpdate": GPC_SINCE},
            headers={"Cache-Control": "public, max-age=86400"},
        )

    app.router.add_get("/_consent/health", health)
    app.router.add_get("/.well-known/gpc.json", gpc)


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
