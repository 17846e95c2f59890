"""The proxy's own paths (never forwarded to the origin): /_consent (the visitor's
choice: GET state or preferences page, POST a choice), /.well-known/gpc.json, and the
admin endpoints /_consent/health, /_consent/metrics and /_consent/inventory.

The one module of ``proxy.ui`` that speaks HTTP (aiohttp). What it needs to know of a
request beyond its headers (the site the browser addressed, behind a trusted front,
and the visitor's address) comes from the HTTP layer as a ``Sender`` (app.py wires
it). Admin endpoints answer only loopback peers that came without a proxy in between,
or requests bearing ``Authorization: Bearer <admin_token>``.
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import parse_qs

from aiohttp import web
from multidict import MultiDict

from proxy.consent import choices, once, returning
from proxy.consent.inventory import InventoryBook
from proxy.consent.model import (
    OPTIONAL,
    Consent,
    ConsentReader,
    choice_value,
    set_cookie_header,
)
from proxy.consent.reload import RulesState
from proxy.observe.decisions import DecisionLog
from proxy.observe.metrics import METRICS
from proxy.ui import banner, csp, elsewhere
from proxy.ui.templates import Templates

STARTED = web.AppKey("started", float)
# The proxy's own paths and the methods they answer; nothing under /_consent/ is ever
# forwarded to the origin (other methods get 405, other paths 404).
OWN_PATHS = {
    "/_consent": "GET, HEAD, POST",
    "/_consent/health": "GET, HEAD",
    "/_consent/metrics": "GET, HEAD",
    "/_consent/inventory": "GET, HEAD",
    "/.well-known/gpc.json": "GET, HEAD",
}


GPC_SINCE = "2026-11-29"
_MAX_FORM = 16 * 1024


@dataclass(frozen=True)
class Sender:
    """Who sent a consent post, as the HTTP layer reads the request (a trusted front's
    X-Forwarded-Host and -Proto count)."""

    same_site: bool  # not a cross-site post (the CSRF check)
    site: str | None  # this site's origin as the browser addressed it (for the refusal)
    secure: bool  # the browser used HTTPS: cookies get Secure
    host: str | None  # the host the browser addressed, without port (cookie domains)
    client: str | None  # the visitor's address (only its network is logged)


@dataclass(frozen=True)
class EndpointSettings:
    """What the endpoints are configured with."""

    read_consent: ConsentReader  # the one way consent is read (app.py shares it)
    templates: Templates
    max_age: int  # of the consent cookie, seconds
    admin_token: str


def add_routes(
    app: web.Application,
    config: EndpointSettings,
    rules: RulesState,
    proofs: DecisionLog,
    sender: Callable[[web.Request], Sender],
) -> None:
    """``proofs``: the decision log, which gets one record per consent change."""
    app[STARTED] = time.monotonic()
    templates = config.templates
    read_consent = config.read_consent
    policy = read_consent.policy

    def state(request: web.Request) -> dict[str, object]:
        consent = read_consent(request.headers)
        vendors = banner.vendors_by_category(rules.current)
        return {
            "decided": consent.decided,
            "source": consent.source,
            # Where a choice is changed: "own" (a post here), or the source that decides.
            "change_at": consent.elsewhere or "own",
            "policy_version": policy.version,
            "categories": {
                c: {
                    "granted": consent.allows(c),
                    "source": dict(consent.sources)[c],
                    "vendors": vendors[c],
                }
                for c in OPTIONAL
            },
            # What each consent source asked said (for QA: why one had no decision).
            "notes": dict(consent.notes),
        }

    async def get_consent(request: web.Request) -> web.StreamResponse:
        if _wants_json(request):
            return web.json_response(state(request), headers=_PRIVATE)
        consent = read_consent(request.headers)
        next_path = request.query.get("next", "/")
        if consent.elsewhere:  # the proxy's cookie would not count: no switches
            return preferences(
                elsewhere.elsewhere_page(templates, consent, rules.current, next_path)
            )
        return preferences(banner.preferences_page(templates, consent, rules.current, next_path))

    def preferences(page: str, status: int = 200) -> web.StreamResponse:
        css = templates.text("preferences.css").strip()
        headers = {
            **_PRIVATE,
            "Content-Security-Policy": (
                f"default-src 'none'; style-src {csp.sha256_source(css)}; form-action 'self'; "
                "frame-ancestors 'none'; base-uri 'none'"
            ),
            "X-Frame-Options": "DENY",
            "Referrer-Policy": "same-origin",
        }
        return web.Response(text=page, status=status, content_type="text/html", headers=headers)

    async def post_consent(request: web.Request) -> web.StreamResponse:
        who = sender(request)
        if not who.same_site:
            return web.json_response(
                {
                    "error": "cross-site consent changes are refused: the post came from "
                    "another site than this one (behind a proxy, see the README's Deployment)",
                    "site": who.site,
                },
                status=403,
                headers=_PRIVATE,
            )
        fields = await _fields(request)
        if fields is None:
            return web.json_response(
                {"error": "expected a form or a JSON object"}, status=400, headers=_PRIVATE
            )
        if "once" in fields:  # an embed's "Load this": no consent change (once.py)
            return load_once(request, fields, who)
        current = read_consent(request.headers)
        granted = choices.chosen(current, fields)
        if granted is None:
            return web.json_response(
                {
                    "error": "expected accept=all, reject=all or category=0|1 for one of "
                    + ", ".join(OPTIONAL)
                },
                status=400,
                headers=_PRIVATE,
            )
        if current.elsewhere:  # the cookie set here would not count: say so, set nothing
            return refuse_elsewhere(request, current, banner.safe_next(_first(fields, "next")))
        cookie = set_cookie_header(
            choice_value(granted, policy.version),
            policy,
            secure=who.secure,
            max_age=config.max_age,
        )
        denied = {c for c in OPTIONAL if c not in granted}
        expire = choices.cookies_to_expire(request.headers.get("Cookie", ""), rules.current, denied)
        next_path = banner.safe_next(_first(fields, "next"))
        if _wants_json(request):
            response: web.StreamResponse = web.json_response(
                {"granted": sorted(granted), "policy_version": policy.version}, headers=_PRIVATE
            )
        else:
            response = web.Response(status=303, headers={**_PRIVATE, "Location": next_path})
        response.headers.add("Set-Cookie", cookie)
        anchor = returning.anchor_in(next_path) if response.status == 303 else None
        if anchor is not None:  # from a placeholder: back to its widget (returning.py)
            response.headers.add(
                "Set-Cookie", returning.set_header(anchor, policy.cookie, secure=who.secure)
            )
        for header in choices.expiry_headers(expire, who.host, who.secure):
            response.headers.add("Set-Cookie", header)
        # Proof of consent: what was chosen, when, under which policy and rules.
        proofs.consent_change(
            policy_version=policy.version,
            granted=sorted(granted),
            denied=sorted(denied),
            before={c: current.allows(c) for c in OPTIONAL} if current.decided else None,
            rules=rules.current.generation,
            expired_cookies=expire,
            client=who.client,
        )
        return response

    def refuse_elsewhere(
        request: web.Request, current: Consent, next_path: str
    ) -> web.StreamResponse:
        """409 for a choice posted by a visitor whose choice another source makes (as
        ``current.elsewhere`` names): no cookie, no proof of a change that did not
        happen; a browser gets the preferences page saying where to change it."""
        if _wants_json(request):
            return web.json_response(
                {"error": elsewhere.refusal_text(current), "change_at": current.elsewhere},
                status=409,
                headers=_PRIVATE,
            )
        page = elsewhere.elsewhere_page(templates, current, rules.current, next_path, refused=True)
        return preferences(page, status=409)

    def load_once(
        request: web.Request, fields: Mapping[str, Sequence[str]], who: Sender
    ) -> web.StreamResponse:
        next_path = banner.safe_next(_first(fields, "next"))
        target = once.target(next_path) if _first(fields, "once") == "1" else None
        cookie = (
            once.set_header(target[1], target[0], policy.cookie, secure=who.secure)
            if target
            else None
        )
        if target is None or cookie is None:
            return web.json_response(
                {"error": "expected once=1 and next=/path#cp-<category>-<n> (a placeholder's)"},
                status=400,
                headers=_PRIVATE,
            )
        if _wants_json(request):
            response: web.StreamResponse = web.json_response(
                {"once": target[1], "path": target[0]}, headers=_PRIVATE
            )
        else:
            response = web.Response(status=303, headers={**_PRIVATE, "Location": next_path})
        response.headers.add("Set-Cookie", cookie)
        return response

    async def health(request: web.Request) -> web.StreamResponse:
        if not is_admin(request, config.admin_token):
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

    async def metrics(request: web.Request) -> web.StreamResponse:
        if not is_admin(request, config.admin_token):
            raise web.HTTPNotFound()
        text = request.app[METRICS].render(
            rules.current.generation, rules.error is not None, len(asyncio.all_tasks())
        )
        return web.Response(
            text=text, content_type="text/plain", headers={"Cache-Control": "no-store"}
        )

    async def gpc(request: web.Request) -> web.StreamResponse:
        # Global Privacy Control: this site honours Sec-GPC (denies advertising, social).
        return web.json_response(
            {"gpc": True, "lastUpdate": GPC_SINCE},
            headers={"Cache-Control": "public, max-age=86400"},
        )

    app.router.add_get("/_consent", get_consent)
    app.router.add_post("/_consent", post_consent)
    app.router.add_get("/_consent/health", health)
    app.router.add_get("/_consent/metrics", metrics)
    app.router.add_get("/.well-known/gpc.json", gpc)


_PRIVATE = {"Cache-Control": "no-store", "Vary": "Cookie"}


def _wants_json(request: web.Request) -> bool:
    accept = request.headers.get("Accept", "")
    return "application/json" in accept or request.content_type == "application/json"


def _first(fields: Mapping[str, Sequence[str]], key: str) -> str | None:
    values = fields.get(key)
    return values[0] if values else None


async def _fields(request: web.Request) -> Mapping[str, Sequence[str]] | None:
    """The posted fields, from a form or a JSON object; None when unreadable."""
    if request.content_length is not None and request.content_length > _MAX_FORM:
        return None
    raw = await request.content.read(_MAX_FORM + 1)
    if len(raw) > _MAX_FORM:
        return None
    if request.content_type == "application/json":
        try:
            data = json.loads(raw or b"{}")
        except ValueError:
            return None
        if not isinstance(data, dict):
            return None
        out: MultiDict[str] = MultiDict()
        for key, value in data.items():
            if isinstance(value, bool):
                value = "1" if value else "0"
            if isinstance(value, (str, int)):
                out.add(str(key), str(value))
        return {k: out.getall(k) for k in out}
    try:
        return parse_qs(raw.decode("utf-8"), keep_blank_values=True, max_num_fields=64)
    except (UnicodeDecodeError, ValueError):
        return None


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


def add_inventory_route(
    app: web.Application, book: InventoryBook, rules: RulesState, token: str
) -> None:
    """/_consent/inventory (admin, like metrics): the third-party hosts pages showed
    under the rules in force, what covers each, and those nothing covers."""

    async def inventory(request: web.Request) -> web.StreamResponse:
        if not is_admin(request, token):
            raise web.HTTPNotFound()
        book.classifier(rules.current)  # a new generation starts empty
        current = book.current
        body: dict[str, object] = current.as_json() if current is not None else {}
        body["first_party"] = list(book.first_party)
        body["unknown_third_party"] = book.mode
        return web.json_response(body, headers={"Cache-Control": "no-store"})

    app.router.add_get("/_consent/inventory", inventory)
