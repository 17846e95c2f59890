"""Every common embed code of the vendors click-to-load is for (YouTube, Vimeo, Google
Maps, Spotify, SoundCloud, Instagram, X, TikTok, Facebook posts) leaves a refusing
visitor's page with nothing that would contact the vendor: judged by html5lib and a
list of the vendors' hosts kept here, independent of the rules and the catalogue.

The judge over-approximates: any attribute or running script naming a vendor host
fails, but for a link's href and a post quote's cite and permalink (a citation the
visitor may follow, never a load), and the address a Facebook plugin's div gives the
SDK (the SDK, held, would load it).
"""

from __future__ import annotations

import re

import pytest

from proxy.consent.enforce import page_for
from proxy.consent.model import ConsentPolicy, parse_consent_arg
from proxy.consent.plans import compile_plan
from proxy.consent.rules import load_rules
from proxy.ui.furniture import PageFurniture
from proxy.ui.templates import Templates
from tests.support import ROOT, oracle

RULES = load_rules(ROOT / "rules")
FURNITURE = PageFurniture(Templates(), banner=False)
VENDORS = (
    "youtube.com", "youtube-nocookie.com", "ytimg.com", "ggpht.com", "googlevideo.com",
    "google.com", "googleapis.com", "gstatic.com", "vimeo.com", "vimeocdn.com",
    "spotify.com", "scdn.co", "soundcloud.com", "sndcdn.com", "instagram.com",
    "cdninstagram.com", "twitter.com", "twimg.com", "x.com", "tiktok.com",
    "facebook.com", "facebook.net", "fbcdn.net",
)  # fmt: skip
VENDOR = re.compile(r"(?<![\w-])(?:[\w-]+\.)*(?:" + "|".join(map(re.escape, VENDORS)) + r")\b")
CITATIONS = {("a", "href"), ("blockquote", "cite"), ("blockquote", "data-instgrm-permalink")}
CITATIONS |= {("div", "data-href")}  # the address a Facebook plugin's div names: the SDK's
# Each: an embed code as the vendor documents it (the usual shape, shortened ids).
EMBEDS = {
    "youtube": '<iframe width="560" height="315" src="https://www.youtube.com/embed/M7lc1UVf-VE?si=x" title="YouTube video player" frameborder="0" allow="accelerometer; autoplay" referrerpolicy="strict-origin-when-cross-origin" allowfullscreen></iframe>',
    "youtube-nocookie": '<iframe width="560" height="315" src="https://www.youtube-nocookie.com/embed/M7lc1UVf-VE" allowfullscreen></iframe>',
    "youtube-lazy": '<iframe class="lazyload" data-src="https://www.youtube.com/embed/x" width="560" height="315"></iframe>',
    "youtube-thumbnail": '<a href="https://www.youtube.com/watch?v=x"><img src="https://i.ytimg.com/vi/x/hqdefault.jpg" srcset="https://i.ytimg.com/vi/x/maxresdefault.jpg 2x" alt="video"></a>',
    "youtube-poster": '<video controls poster="https://i.ytimg.com/vi/x/hqdefault.jpg" src="/own.mp4"></video>',
    "lite-youtube": '<lite-youtube videoid="x" style="background-image: url(\'https://i.ytimg.com/vi/x/hqdefault.jpg\');"></lite-youtube>',
    "youtube-api": '<div id="player"></div><script src="https://www.youtube.com/iframe_api"></script>',
    "vimeo": '<iframe src="https://player.vimeo.com/video/76979871?h=8272103f6e" width="640" height="360" frameborder="0" allow="autoplay; fullscreen; picture-in-picture" allowfullscreen></iframe><script src="https://player.vimeo.com/api/player.js"></script>',
    "maps": '<iframe src="https://www.google.com/maps/embed?pb=!1m18!1m12" width="600" height="450" style="border:0;" allowfullscreen="" loading="lazy" referrerpolicy="no-referrer-when-downgrade"></iframe>',
    "maps-old": '<iframe width="425" height="350" src="https://maps.google.com/maps?q=Paris&amp;output=embed"></iframe>',
    "maps-api": '<div id="map"></div><script async src="https://maps.googleapis.com/maps/api/js?key=K&callback=initMap"></script>',
    "maps-static": '<img src="https://maps.googleapis.com/maps/api/staticmap?center=Paris&zoom=13&size=600x300&key=K" alt="map">',
    "spotify": '<iframe style="border-radius:12px" src="https://open.spotify.com/embed/track/4cOdK2wGLETKBW3PvgPWqT?utm_source=generator" width="100%" height="352" frameBorder="0" allowfullscreen="" allow="autoplay; clipboard-write; encrypted-media" loading="lazy"></iframe>',
    "soundcloud": '<iframe width="100%" height="166" scrolling="no" frameborder="no" allow="autoplay" src="https://w.soundcloud.com/player/?url=https%3A//api.soundcloud.com/tracks/293&color=%23ff5500"></iframe>',
    "instagram": '<blockquote class="instagram-media" data-instgrm-captioned data-instgrm-permalink="https://www.instagram.com/p/ABC/?utm_source=ig_embed" data-instgrm-version="14" style="background:#FFF; max-width:540px;"><div><a href="https://www.instagram.com/p/ABC/?utm_source=ig_embed" target="_blank">View this post on Instagram</a></div></blockquote><script async src="//www.instagram.com/embed.js"></script>',
    "instagram-iframe": '<iframe src="https://www.instagram.com/p/ABC/embed/" width="400" height="480" frameborder="0" scrolling="no" allowtransparency="true"></iframe>',
    "x": '<blockquote class="twitter-tweet"><p lang="en" dir="ltr">Hello</p>&mdash; X (@x) <a href="https://twitter.com/x/status/1?ref_src=twsrc%5Etfw">May 1, 2024</a></blockquote> <script async src="https://platform.twitter.com/widgets.js" charset="utf-8"></script>',
    "x-iframe": '<iframe src="https://platform.twitter.com/embed/Tweet.html?id=1" width="550" height="600"></iframe>',
    "tiktok": '<blockquote class="tiktok-embed" cite="https://www.tiktok.com/@x/video/1" data-video-id="1" style="max-width: 605px;min-width: 325px;"><section><a target="_blank" href="https://www.tiktok.com/@x">@x</a></section></blockquote> <script async src="https://www.tiktok.com/embed.js"></script>',
    "facebook-post": '<div id="fb-root"></div><script async defer crossorigin="anonymous" src="https://connect.facebook.net/en_US/sdk.js#xfbml=1&version=v19.0"></script><div class="fb-post" data-href="https://www.facebook.com/x/posts/1" data-width="500" data-show-text="true"></div>',
    "facebook-iframe": '<iframe src="https://www.facebook.com/plugins/post.php?href=https%3A%2F%2Fwww.facebook.com%2Fx%2Fposts%2F1&show_text=true&width=500" width="500" height="600" style="border:none;overflow:hidden" scrolling="no" frameborder="0" allowfullscreen="true"></iframe>',
    "hints": '<link rel="preconnect" href="https://www.youtube.com"><link rel="dns-prefetch" href="//i.ytimg.com"><link rel="preload" as="script" href="https://www.instagram.com/embed.js">',
}  # fmt: skip


def leaks(page: bytes) -> list[str]:
    """Where the parsed page still names a vendor host, other than in a citation."""
    found = []
    for el in oracle.parse(page).iter():
        if not isinstance(el.tag, str):
            continue
        tag = el.tag.rpartition("}")[2]
        for name, value in el.attrib.items():
            if (tag, name) not in CITATIONS and VENDOR.search(value):
                found.append(f"<{tag} {name}={value!r}>")
        if tag == "script" and el.text and VENDOR.search(el.text):
            found.append(f"<script>{el.text[:80]!r}")
    return found


def rewrite(body: str, consent: str) -> bytes:
    visitor = parse_consent_arg(consent, ConsentPolicy())
    plan = compile_plan(RULES, visitor, surrogates=FURNITURE.surrogates)
    page = page_for(plan, visitor, "/", FURNITURE)
    data = f"<!doctype html><html><head><title>t</title></head><body>{body}</body></html>"
    return page.feed(data.encode()) + page.close()


@pytest.mark.parametrize("name", EMBEDS)
def test_a_refusing_visitor_contacts_no_vendor(name: str) -> None:
    page = f"<!doctype html><html><body>{EMBEDS[name]}</body></html>".encode()
    assert leaks(page), "the judge sees the embed as it came"
    assert leaks(rewrite(EMBEDS[name], "none")) == []


@pytest.mark.parametrize("name", ["youtube", "maps", "spotify", "soundcloud", "instagram"])
def test_media_alone_denied_holds_the_media_embeds(name: str) -> None:
    """Social, analytics and advertising granted: the media embeds are still held."""
    consent = "analytics=1&advertising=1&social=1&preferences=1&media=0"
    assert leaks(rewrite(EMBEDS[name], consent)) == []
