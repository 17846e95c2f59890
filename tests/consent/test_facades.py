"""Embeds that are no iframe, as pages get them from the real rewriter and the built-in
rules (no browser; tests/ui/test_browser_facades.py is Chromium's side): posts'
<blockquote>s stay readable with a click-to-load placeholder after them, lite-youtube
and the Maps JavaScript API get the placeholder in their place, "Load this" shows
that one, and a visitor back from "Always allow" lands on it."""

from __future__ import annotations

import dataclasses
import re

import pytest

from proxy.consent.enforce import page_for
from proxy.consent.model import ConsentPolicy, parse_consent_arg
from proxy.consent.plans import compile_plan
from proxy.consent.rules import RuleSet, load_rules
from proxy.ui.furniture import PageFurniture
from proxy.ui.templates import Templates
from tests.support import ROOT
from tests.support.judge import judge

RULES = load_rules(ROOT / "rules")
FURNITURE = PageFurniture(Templates(), banner=False)
REFUSED = "analytics=0&advertising=0&social=0&preferences=0&media=0"
MEDIA_ONLY = REFUSED.replace("media=0", "media=1")

TWEET = (
    '<blockquote class="twitter-tweet"><p lang="en">Hello world</p>&mdash; X (@x) '
    '<a href="https://twitter.com/x/status/1">May 1</a></blockquote>'
)
TWEET_JS = '<script async src="https://platform.twitter.com/widgets.js" charset="utf-8"></script>'
INSTAGRAM = (
    '<blockquote class="instagram-media" data-instgrm-permalink="https://www.instagram.com/p/A/"'
    ' data-instgrm-version="14"><a href="https://www.instagram.com/p/A/">A post</a></blockquote>'
)
INSTAGRAM_JS = '<script async src="//www.instagram.com/embed.js"></script>'
TIKTOK = (
    '<blockquote class="tiktok-embed" cite="https://www.tiktok.com/@u/video/1" data-video-id="1"'
    ' style="max-width: 605px;min-width: 325px;"><section><a href="https://www.tiktok.com/@u">'
    "@u</a> a video</section></blockquote>"
)
TIKTOK_JS = '<script async src="https://www.tiktok.com/embed.js"></script>'
FB_SDK = (
    '<div id="fb-root"></div><script async defer crossorigin="anonymous"'
    ' src="https://connect.facebook.net/en_US/sdk.js#xfbml=1&version=v19.0"></script>'
)
FB_POST = (
    '<div class="fb-post" data-href="https://www.facebook.com/x/posts/1" data-width="500">'
    '<blockquote cite="https://www.facebook.com/x/posts/1" class="fb-xfbml-parse-ignore">'
    "A post on Facebook</blockquote></div>"
)
FB_VIDEO = '<div class="fb-video" data-href="https://www.facebook.com/x/videos/2/"></div>'
FB_LIKE = '<div class="fb-like" data-href="https://example.com/"></div>'
LITE = '<lite-youtube videoid="ogfYd705cRs" playlabel="Play: Keynote"></lite-youtube>'
MAPS_JS = (
    '<script async src="https://maps.googleapis.com/maps/api/js?key=K&callback=initMap"></script>'
)
MAPS_LOADER = (
    "<script>(g=>{var h,a,k,p='The Google Maps JavaScript API',c='google',l='importLibrary';"
    "a=document.createElement('script');a.src='https://maps.googleapis.com/maps/api/js?'"
    "+p;document.head.append(a)})({key:'K',v:'weekly'});</script>"
)


def rewrite(
    body: str,
    consent: str = REFUSED,
    head: str = "",
    once: tuple[str, int] | None = None,
    back: tuple[str, int] | None = None,
    rules: RuleSet = RULES,
) -> str:
    visitor = parse_consent_arg(consent, ConsentPolicy())
    plan = compile_plan(rules, visitor, surrogates=FURNITURE.surrogates)
    page = page_for(plan, visitor, "/p", FURNITURE, load_once=once, return_to=back)
    data = f"<!doctype html><html><head><title>t</title>{head}</head><body>{body}</body></html>"
    return (page.feed(data.encode()) + page.close()).decode()


def placeholders(out: str) -> list[tuple[str, str]]:
    """(id, vendor) of each embed placeholder, in page order."""
    return re.findall(
        r'<span class="cp-ph cp-ph-embed"[^>]*? id="([^"]+)" role="group" aria-label="([^"]+) content',
        out,
    )


@pytest.mark.parametrize(
    ("post", "script", "vendor", "anchor"),
    [
        (TWEET, TWEET_JS, "X (Twitter)", "cp-social-1"),
        (INSTAGRAM, INSTAGRAM_JS, "Instagram", "cp-media-1"),
        (TIKTOK, TIKTOK_JS, "TikTok", "cp-media-1"),
        (FB_POST, FB_SDK, "Facebook", "cp-social-1"),
        (FB_VIDEO, FB_SDK, "Facebook", "cp-social-1"),
    ],
    ids=["x", "instagram", "tiktok", "facebook-post", "facebook-video"],
)
def test_a_post_stays_readable_with_a_placeholder_after_it(
    post: str, script: str, vendor: str, anchor: str
) -> None:
    out = rewrite(f"<p>Look:</p>{post}{script}<p>end</p>")
    # The post's text as it came, the placeholder (after its style) right after it.
    assert re.search(
        re.escape(f"<p>Look:</p>{post}") + "(<style>.*?</style>)?<span class=", out, re.S
    )
    assert placeholders(out) == [(anchor, vendor)]
    assert ">Load this</button>" in out and "Always allow" in out
    assert 'id="cp-load-once"' in out  # the form "Load this" posts
    assert judge(out) == []  # nothing contacts the vendor
    # Granted its category: the page's own script stays, no placeholder.
    granted = rewrite(f"{post}{script}", consent="v=1&analytics=1&advertising=1&social=1&media=1")
    assert f"{post}{script}" in granted and "cp-ph" not in granted


def test_load_this_adds_the_vendors_script_after_that_post_only() -> None:
    """Shown once: the second post gets the id and widgets.js; the first and the
    Instagram post stay held, and the other tweet loses the class widgets.js looks
    for (so that it stays text)."""
    body = f"{TWEET}{TWEET_JS}{INSTAGRAM}{TWEET.replace('Hello', 'Bye')}"
    out = rewrite(body, once=("social", 2))
    assert placeholders(out) == [("cp-social-1", "X (Twitter)"), ("cp-media-1", "Instagram")]
    shown = TWEET.replace("Hello", "Bye").replace('tweet"', 'tweet" id="cp-social-2"')
    assert shown + TWEET_JS in out
    assert '<blockquote class="cp-held-twitter-tweet">' in out
    assert out.count("platform.twitter.com/widgets.js") == 1  # the page's own still goes


def test_load_this_on_a_facebook_post_adds_the_sdk_after_it_only() -> None:
    """The SDK loaded once parses the whole page: the other plugin's div loses its
    class, the Like button keeps the facebook rule's grant placeholder, and the
    page's own SDK still goes, with no fbsdk surrogate (the SDK would not start over
    its FB)."""
    body = f"{FB_SDK}{FB_VIDEO}{FB_LIKE}{FB_POST}"
    held = rewrite(body)
    assert placeholders(held) == [("cp-social-1", "Facebook"), ("cp-social-3", "Facebook")]
    assert FB_VIDEO in held and FB_POST in held and "fb-like" not in held  # its grant box
    assert 'data-consent-surrogate="fbsdk">' in held  # for the page's FB.* calls
    assert judge(held) == []
    out = rewrite(body, once=("social", 3))
    shown = FB_POST.replace('data-width="500"', 'data-width="500" id="cp-social-3"')
    sdk = "https://connect.facebook.net/en_US/sdk.js#xfbml=1&amp;version=v22.0"
    assert f'{shown}<script async src="{sdk}" charset="utf-8"></script>' in out
    assert out.count("connect.facebook.net") == 1  # the page's own still goes
    assert '<div class="cp-held-fb-video" data-href=' in out
    assert placeholders(out) == [("cp-social-1", "Facebook")]
    # The surrogate took the place of the page's SDK before the post came: marked, it
    # steps aside when the SDK appears.
    assert 'data-consent-surrogate="fbsdk" data-once="1">' in out
    # The post first, the page's SDK after it: no surrogate at all.
    late = rewrite(f"{FB_POST}{FB_SDK}", once=("social", 1))
    assert "connect.facebook.net/en_US/sdk.js#xfbml=1&amp;version=v22.0" in late
    assert "data-consent-surrogate" not in late
    # Another social embed loads once: the surrogate is marked, as it may come.
    other = rewrite(f"{FB_SDK}{TWEET}{FB_POST}", once=("social", 1))
    assert 'data-consent-surrogate="fbsdk" data-once="1">' in other
    assert "cp-held-fb-post" in other and TWEET_JS in other


def test_without_the_facebook_rule_the_catalogue_holds_its_plugins() -> None:
    """No facebook rule (a rule set without it; one switched off lets Facebook
    through): the catalogue's Facebook entity (social) holds the SDK and gives the
    plugins their placeholder, the same "Load this"."""
    rules = dataclasses.replace(RULES, rules=tuple(r for r in RULES.rules if r.id != "facebook"))
    out = rewrite(f"{FB_SDK}{FB_POST}", rules=rules)
    assert placeholders(out) == [("cp-social-1", "Facebook")]
    assert 'data-consent-placeholder="catalogue"' in out and judge(out) == []
    once = rewrite(f"{FB_SDK}{FB_POST}", once=("social", 1), rules=rules)
    assert once.count("connect.facebook.net") == 1 and "v22.0" in once


def test_lite_youtube_is_held_like_an_iframe() -> None:
    page = f"{LITE}<script src='/js/lite-yt-embed.js'></script>"
    out = rewrite(page)
    assert "<lite-youtube" not in out and placeholders(out) == [("cp-media-1", "YouTube")]
    assert "/js/lite-yt-embed.js" in out  # the site's own script
    once = rewrite(page, once=("media", 1))
    assert LITE.replace('Keynote"', 'Keynote" id="cp-media-1"') in once
    assert "cp-ph" not in once.split("<body>")[1].split("<form")[0]


@pytest.mark.parametrize("script", [MAPS_JS, MAPS_LOADER], ids=["src", "inline-loader"])
def test_the_maps_api_gets_a_placeholder_where_its_script_was(script: str) -> None:
    body = f'<div id="map" style="height:400px"></div>{script}<p>end</p>'
    out = rewrite(body)
    assert '<div id="map" style="height:400px"></div><style>' in out
    assert placeholders(out) == [("cp-media-1", "Google Maps")]
    assert "maps.googleapis.com" not in out
    # In <head>: the placeholder at the start of <body>, the head left whole.
    out = rewrite("<p>text</p>", head=script)
    head, body_part = out.split("<body>")
    assert "cp-ph" not in head and "maps.googleapis.com" not in head
    assert body_part.startswith("<style>") and placeholders(body_part)[0][1] == "Google Maps"
    # "Load this": the script stays where it was, the anchor at the start of <body>.
    once = rewrite("<p>text</p>", head=script, once=("media", 1))
    assert script in once.split("<body>")[0]
    assert once.split("<body>")[1].startswith('<span id="cp-media-1"></span><p>text</p>')


def test_back_from_always_allow_lands_on_the_embed_it_was() -> None:
    """Posts, lite-youtube, the Maps script and an iframe are numbered alike when held
    and when shown: back after granting media at the third, the third is marked."""
    iframe = '<iframe src="https://www.youtube.com/embed/x" width="560" height="315"></iframe>'
    body = f"{INSTAGRAM}{INSTAGRAM_JS}{LITE}{iframe}<div id=map></div>{MAPS_JS}"
    held = rewrite(body)
    assert [a for a, _ in placeholders(held)] == [f"cp-media-{n}" for n in (1, 2, 3, 4)]
    for n, marked in [
        (1, 'data-instgrm-version="14" id="cp-media-1">'),
        (2, 'Keynote" id="cp-media-2"></lite-youtube>'),
        (3, 'height="315" id="cp-media-3"></iframe>'),
        (4, '<span id="cp-media-4"></span><script async src="https://maps'),
    ]:
        out = rewrite(body, consent=MEDIA_ONLY, back=("media", n))
        assert marked in out, n
        assert out.count('id="cp-media-') == 1
