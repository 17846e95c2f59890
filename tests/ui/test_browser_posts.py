"""Posts loaded once over the page's own stand-ins, in Debian's Chromium through the
real proxy, with JavaScript on and off: X posts with the page's twttr snippet, and
Facebook's post and video plugins with the page's SDK loader.

The page's snippet and loader go (social denied); the twttr and fbsdk surrogates take
their place. "Load this" on a post adds the vendor's script after it, and that script
must start on a page that has the surrogate. The vendors' scripts are stand-ins served
here for platform.twitter.com and connect.facebook.net, written after the facts of the
real ones that matter: widgets.js keeps its state in ``__twttr`` (it starts unless
``__twttr.widgets.init``), takes over ``window.twttr`` (runs ``twttr._e``, replaces
``widgets``) and turns each ``blockquote.twitter-tweet`` into an iframe; Facebook's
SDK does not start while ``window.FB`` exists, calls ``fbAsyncInit`` and, with
``xfbml=1`` in its URL, turns each plugin div into an iframe. Every other request is
recorded and answered with an empty response (test_browser.py's harness).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

import pytest
from aiohttp.test_utils import TestServer
from playwright.async_api import BrowserContext, Page, Route

from tests.ui.test_browser import MakeProxy, Site, chromium, context_for, make_site, shot
from tests.ui.test_browser_embeds import REFUSED, consent_cookies, refusing_visitor
from tests.ui.test_browser_facades import held

WIDGETS = "https://platform.twitter.com/widgets.js"
SDK = "https://connect.facebook.net/en_US/sdk.js"
WIDGETS_JS = """(() => {
  const own = (window.__twttr = window.__twttr || {});
  own.widgets = own.widgets || {};
  if (own.widgets.init) return;
  own.widgets.init = true;
  const t = (window.twttr = window.twttr || {});
  t.init = true;
  let start;
  const ready = new Promise(r => (start = r));
  t.ready = f => ready.then(f);
  if (Array.isArray(t._e)) { t._e.forEach(f => ready.then(f)); delete t._e; }
  const load = () => {
    for (const q of document.querySelectorAll("blockquote.twitter-tweet")) {
      const frame = document.createElement("iframe");
      frame.src = "https://platform.twitter.com/embed/Tweet.html?id=" +
        q.querySelector("a[href*='/status/']").href.split("/status/")[1];
      q.classList.replace("twitter-tweet", "twitter-tweet-rendered");
      q.after(frame);
    }
    own.widgets.loaded = true;
  };
  t.widgets = { load, real: true };
  t.events = { bind() {}, unbind() {} };
  const go = () => { start(t); load(); };
  document.readyState == "loading" ? document.addEventListener("DOMContentLoaded", go) : go();
})();"""
SDK_JS = """(() => {
  if (window.FB) return;
  const xfbml = /[#&]xfbml=1/.test(document.currentScript.src);
  window.FB = { real: true, init() {}, XFBML: { parse() {} } };
  const init = window.fbAsyncInit;
  if (typeof init == "function" && !init.hasRun) { init.hasRun = true; init(); }
  if (!xfbml) return;
  for (const el of document.querySelectorAll(".fb-post, .fb-video, .fb-page, .fb-comments")) {
    const frame = document.createElement("iframe");
    frame.src = "https://www.facebook.com/plugins/" + el.className.split(" ")[0].slice(3) +
      ".php?href=" + encodeURIComponent(el.dataset.href);
    el.append(frame);
  }
})();"""
# The documented snippet, in a script of the site's own code: cut out, the rest kept.
X_SNIPPET = (
    "<script>function own() { document.documentElement.dataset.own = '1'; }\n"
    "window.twttr = (function(d, s, id) { var js, fjs = d.getElementsByTagName(s)[0],"
    " t = window.twttr || {}; if (d.getElementById(id)) return t; js = d.createElement(s);"
    f' js.id = id; js.src = "{WIDGETS}"; fjs.parentNode.insertBefore(js, fjs); t._e = [];'
    ' t.ready = function(f) { t._e.push(f); }; return t; }(document, "script", "twitter-wjs"));'
    "\nown();</script>"
)
PAGE = f"""<!doctype html><html><head><title>Posts</title>
{X_SNIPPET}
</head><body><h1>Posts</h1>
<script>twttr.ready(function (t) {{ document.body.dataset.x = t.widgets.real ? "real" : "stand-in"; }});</script>
<blockquote class="twitter-tweet"><p lang="en">Hello from X</p>&mdash; X (@x)
<a href="https://twitter.com/x/status/1">May 1</a></blockquote>
<blockquote class="twitter-tweet"><p lang="en">Bye from X</p>&mdash; X (@x)
<a href="https://twitter.com/x/status/2">May 2</a></blockquote>
<div id="fb-root"></div>
<script async defer crossorigin="anonymous" src="{SDK}#xfbml=1&version=v19.0"></script>
<script>window.fbAsyncInit = function () {{ document.body.dataset.fb = FB.real ? "real" : "stand-in"; }};</script>
<div class="fb-post" data-href="https://www.facebook.com/x/posts/1" data-width="500">
<blockquote cite="https://www.facebook.com/x/posts/1" class="fb-xfbml-parse-ignore">
A post on Facebook</blockquote></div>
<div class="fb-video" data-href="https://www.facebook.com/x/videos/2/" data-width="500"></div>
<p>The end.</p></body></html>"""
PLACEHOLDERS = ["X (Twitter)", "X (Twitter)", "Facebook", "Facebook"]  # page order
TWEET_1 = "https://platform.twitter.com/embed/Tweet.html?id=1"
FB_POST = (
    "https://www.facebook.com/plugins/post.php?href=https%3A%2F%2Fwww.facebook.com%2Fx%2Fposts%2F1"
)
FB_VIDEO = "https://www.facebook.com/plugins/video.php?href=https%3A%2F%2Fwww.facebook.com%2Fx%2Fvideos%2F2%2F"


async def serve_vendors(context: BrowserContext, site: Site) -> None:
    """The stand-in widgets.js and sdk.js (recorded as every request that leaves)."""

    async def serve(route: Route) -> None:
        url = route.request.url
        site.external.append(url)
        body = WIDGETS_JS if url == WIDGETS else SDK_JS
        await route.fulfill(status=200, body=body, content_type="text/javascript")

    await context.route(WIDGETS, serve)
    await context.route(f"{SDK}*", serve)


async def load_this(page: Page, nth: int) -> None:
    """Press "Load this" in the ``nth`` placeholder of the page and wait for the page."""
    async with page.expect_navigation():
        await page.locator(".cp-ph").nth(nth).get_by_role("button", name="Load this").click()
    await page.wait_for_load_state("load")
    await page.wait_for_timeout(500)


@pytest.mark.parametrize("javascript", [True, False], ids=["js", "no-js"])
async def test_a_post_loaded_once_starts_over_the_pages_stand_ins(
    aiohttp_server: Callable[..., Awaitable[TestServer]],
    make_proxy: MakeProxy,
    javascript: bool,
) -> None:
    site: Site = await make_site(aiohttp_server, make_proxy, {"/embeds": PAGE})
    async with chromium() as browser:
        context = await context_for(browser, site, javascript=javascript)
        await serve_vendors(context, site)
        page = await refusing_visitor(site, context)
        assert await held(page) == PLACEHOLDERS
        assert await page.get_by_text("A post on Facebook").is_visible()
        assert site.external == [], "a third party was contacted before any click"
        if javascript:  # the page's own code ran, its calls reached the surrogates
            found = "[document.documentElement.dataset.own, document.body.dataset.x, FB.real]"
            assert await page.evaluate(found) == ["1", "stand-in", None]

        # "Load this" on the first X post: widgets.js starts over the twttr surrogate
        # and renders that post alone.
        await load_this(page, 0)
        assert page.url == site.url("/embeds#cp-social-1")
        after = page.locator("#cp-social-1").locator("xpath=following-sibling::script[1]")
        assert await after.get_attribute("src") == WIDGETS
        assert await held(page) == PLACEHOLDERS[1:]
        assert site.external == ([WIDGETS, TWEET_1] if javascript else [])
        if javascript:
            assert await page.locator("iframe").count() == 1
            found = "[document.documentElement.dataset.own, twttr.widgets.real]"
            assert await page.evaluate(found) == ["1", True]  # widgets.js took over twttr

        # "Load this" on the Facebook post: the SDK starts (the fbsdk surrogate stepped
        # aside), calls the page's fbAsyncInit and renders that post alone.
        seen = len(site.external)
        await load_this(page, 1)
        assert page.url == site.url("/embeds#cp-social-3")
        post = page.locator("div#cp-social-3.fb-post")
        assert await post.locator("xpath=following-sibling::script[1]").get_attribute("src") == (
            f"{SDK}#xfbml=1&version=v22.0"
        )
        assert await page.locator("div.cp-held-fb-video").count() == 1
        assert await held(page) == ["X (Twitter)", "X (Twitter)", "Facebook"]
        assert site.external[seen:] == ([SDK, FB_POST] if javascript else [])
        if javascript:
            assert await page.evaluate("document.body.dataset.fb") == "real"
            assert await post.locator("iframe").count() == 1
        await page.screenshot(path=shot(f"posts-once-{'js' if javascript else 'nojs'}.png"))
        assert await consent_cookies(context) == {"consent": REFUSED}

        # "Always allow" at the video: social granted, the page's own snippet and SDK
        # load and render every post.
        seen = len(site.external)
        box = page.locator(".cp-ph").nth(2)
        async with page.expect_navigation():
            await box.get_by_role("button", name="Always allow").click()
        await page.wait_for_load_state("load")
        await page.wait_for_timeout(500)
        assert page.url == site.url("/embeds#cp-social-4")
        assert await held(page) == []
        now = sorted(urlsplit(u).path for u in site.external[seen:])
        expected = ["/en_US/sdk.js", "/embed/Tweet.html", "/embed/Tweet.html", "/widgets.js"]
        expected += ["/plugins/post.php", "/plugins/video.php"]
        assert now == (sorted(expected) if javascript else []), now
        await context.close()
