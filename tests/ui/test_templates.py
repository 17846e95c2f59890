"""The one template loader: a file in ``--templates`` replaces ours, placeholders too."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer

from proxy.consent.rules import load_rules
from proxy.ui import csp
from proxy.ui.templates import Templates
from tests.support import ROOT

RULES = load_rules(ROOT / "rules")
MakeProxy = Callable[..., Awaitable[TestServer]]
PAGE = (
    "<!doctype html><html><head><title>t</title></head><body>"
    '<p>Like us: <div class="fb-like" data-href="https://shop.example/"></div></p>'
    "</body></html>"
)
OUR_CSS = ".ours{color:#123}"
OUR_BOX = (
    '<span class="ours" id="${anchor}" data-consent-placeholder="${rule}">'
    "${vendor} {braces} are text here, <b>${category_label}</b>"
    '<button form="cp-grant-${category}" name="next" value="${next}">Show</button></span>'
)


def test_operator_file_first_then_ours(tmp_path: Path) -> None:
    (tmp_path / "placeholder.css").write_text(OUR_CSS)
    templates = Templates(str(tmp_path))
    assert templates.text("placeholder.css") == OUR_CSS
    assert templates.text("placeholder.html") == Templates().text("placeholder.html")
    assert "${anchor}" in Templates().text("placeholder.html")


async def test_placeholders_use_the_operators_templates(
    aiohttp_server: Callable[..., Awaitable[TestServer]], make_proxy: MakeProxy, tmp_path: Path
) -> None:
    (tmp_path / "placeholder.css").write_text(OUR_CSS)
    (tmp_path / "placeholder.html").write_text(OUR_BOX)

    async def serve(request: web.Request) -> web.Response:
        policy = "default-src 'self'; style-src 'self'"
        return web.Response(
            text=PAGE, content_type="text/html", headers={"Content-Security-Policy": policy}
        )

    app = web.Application()
    app.router.add_get("/", serve)
    origin = await aiohttp_server(app)
    proxy = await make_proxy(
        str(origin.make_url("/")), rewrite=None, ruleset=RULES, templates=str(tmp_path)
    )
    async with aiohttp.ClientSession() as s, s.get(proxy.make_url("/?a=1")) as r:
        page = await r.text()
        policy = r.headers["Content-Security-Policy"]
    assert f"<style>{OUR_CSS}</style>" in page and ".cp-ph{" not in page
    assert (
        '<span class="ours" id="cp-social-1" data-consent-placeholder="facebook">'
        "Facebook {braces} are text here, <b>social media</b>"
        '<button form="cp-grant-social" name="next" value="/?a=1#cp-social-1">Show</button>'
        "</span>"
    ) in page
    assert 'id="cp-grant-social"' in page  # the form it posts: still ours
    assert csp.sha256_source(OUR_CSS) in policy  # the styles actually sent are allowed
