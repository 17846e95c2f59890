"""``consent-proxy demo``: a small 2014-style company site (ours, in demo_site/) full of
trackers, served on a loopback port, with the proxy in front of it, in one process.

``existing-banner.html`` stands in for a site that already runs a consent banner (a
OneTrust-style box that sets ``OptanonConsent``) and carries Google's tags: with
``--consent-sources onetrust,own`` the proxy enforces that box's choice, and
``--consent-mode advanced`` shows Consent Mode's advanced mode."""

from __future__ import annotations

import asyncio
import dataclasses
import sys
from importlib import resources

from aiohttp import web

from proxy.app import create_app
from proxy.consent.rules import RuleError, all_errors
from proxy.selftest import SelfTestError
from proxy.server import ProxyRunner, server_options, stopped
from proxy.settings import EXIT_USAGE, Settings

SPACER_GIF = (
    b"GIF89a\x01\x00\x01\x00\x80\x00\x00\x00\x00\x00\xff\xff\xff!\xf9\x04\x01\x00\x00\x00\x00"
    b",\x00\x00\x00\x00\x01\x00\x01\x00\x00\x02\x02D\x01\x00;"
)
PAGES = ("index", "bikes", "workshop", "order", "thanks", "privacy", "existing-banner")
_TYPES = {".css": "text/css", ".svg": "image/svg+xml"}


def _asset(name: str) -> str:
    return resources.files("proxy").joinpath("demo_site", name).read_text(encoding="utf-8")


def render(page: str) -> str:
    """One demo page: its first line is ``title: ...``, the rest goes into the layout."""
    first, _, content = _asset(f"{page}.html").partition("\n")
    title = first.removeprefix("title:").strip()
    return (
        _asset("_layout.html")
        .replace("{title}", title)
        .replace("{slug}", page)
        .replace("{content}", content.rstrip())
    )


def origin_app() -> web.Application:
    """The demo origin: pages, static files, a first-party spacer GIF."""

    async def page(request: web.Request) -> web.StreamResponse:
        name = request.match_info.get("name") or "index"
        if name not in PAGES:
            raise web.HTTPNotFound(
                text=render("index").replace("Handmade bicycles since 1987", "Not found", 1),
                content_type="text/html",
            )
        response = web.Response(
            text=render(name),
            content_type="text/html",
            headers={"Cache-Control": "public, max-age=60"},
        )
        response.enable_compression()  # as most web servers do for HTML (gzip or deflate)
        return response

    async def static(request: web.Request) -> web.StreamResponse:
        name = request.match_info["file"]
        if name == "spacer.gif":
            return web.Response(body=SPACER_GIF, content_type="image/gif")
        suffix = name[name.rfind(".") :]
        if name not in ("site.css", "logo.svg"):
            raise web.HTTPNotFound()
        return web.Response(text=_asset(name), content_type=_TYPES[suffix])

    app = web.Application()
    app.router.add_get("/", page)
    app.router.add_get("/{name}.html", page)
    app.router.add_get("/static/{file}", static)
    return app


async def _serve(settings: Settings) -> None:
    origin = web.AppRunner(origin_app(), access_log=None)
    await origin.setup()
    origin_site = web.TCPSite(origin, "127.0.0.1", 0)
    await origin_site.start()
    port = origin.addresses[0][1]
    settings = dataclasses.replace(
        settings,
        upstream=f"http://127.0.0.1:{port}",
        privacy_url=settings.privacy_url or "/privacy.html",
    )
    try:
        app = create_app(settings)
    except RuleError as exc:
        await origin.cleanup()
        raise SystemExit("\n".join(f"consent-proxy: error: {e}" for e in all_errors(exc))) from None
    except SelfTestError as exc:
        await origin.cleanup()
        raise SystemExit(f"consent-proxy: error: {exc}; not serving") from None
    runner = ProxyRunner(app, **server_options(app))
    await runner.setup()
    host, listen_port = settings.host_port
    site = web.TCPSite(runner, host, listen_port)
    try:
        await site.start()
    except OSError as exc:
        await origin.cleanup()
        raise SystemExit(
            f"consent-proxy: error: --listen {settings.listen}: {exc.strerror}"
        ) from None
    shown = "127.0.0.1" if host in ("0.0.0.0", "") else host
    url = f"http://{shown}:{runner.addresses[0][1]}"
    print(
        f"consent-proxy demo: the demo site is behind the proxy at {url}/\n"
        f"Try:\n"
        f"  curl -si {url}/ | head -20                                 # no consent yet\n"
        f"  curl -s {url}/ | grep -c google-analytics                  # trackers left\n"
        f"  curl -s -H 'Cookie: consent=v=1&analytics=1&advertising=1&social=1' {url}/ \\\n"
        f"      | grep -c google-analytics                                # after consent\n"
        f"  curl -s {url}/_consent/health\n"
        f"  curl -s -b 'consent=v=1&analytics=1' {url}/existing-banner.html \\\n"
        f"      | grep -o \"gtag('consent','default'[^;]*\"                # Consent Mode\n"
        f"Behind an existing banner: {url}/existing-banner.html, with the demo started as\n"
        f"  consent-proxy demo --consent-sources onetrust,own [--consent-mode advanced]\n"
        f"  (now: consent sources {','.join(settings.consent_sources)}; "
        f"Consent Mode {settings.consent_mode or 'as each Google rule says'})\n"
        f"Stop with Ctrl-C.",
        flush=True,
    )
    await stopped()
    await runner.cleanup()
    await origin.cleanup()


def run(settings: Settings) -> int:
    try:
        asyncio.run(_serve(settings))
    except SystemExit as exc:
        print(exc, file=sys.stderr)
        return EXIT_USAGE
    return 0
