"""The embed placeholder as pages get it (no browser): for each common embed code,
the vendor named, the box sized like the embed, both buttons and the forms they
post, placed once per page."""

from __future__ import annotations

import html
import re

import pytest

from proxy.consent.enforce import page_for
from proxy.consent.model import ConsentPolicy, parse_consent_arg
from proxy.consent.plans import compile_plan
from proxy.consent.rules import load_rules
from proxy.ui.furniture import PageFurniture
from proxy.ui.templates import Templates
from tests.support import ROOT

RULES = load_rules(ROOT / "rules")
FURNITURE = PageFurniture(Templates(), banner=False)
REFUSED = "analytics=0&advertising=0&social=0&preferences=0&media=0"
LOAD_FORM = (
    '<form id="cp-load-once" method="post" action="/_consent" hidden="hidden">'
    '<input type="hidden" name="once" value="1" /></form>'
)
GRANT_MEDIA = (
    '<form id="cp-grant-media" method="post" action="/_consent" hidden="hidden">'
    '<input type="hidden" name="media" value="1" /></form>'
)


def rewrite(body: str, consent: str = REFUSED, path: str = "/visit?x=1") -> str:
    visitor = parse_consent_arg(consent, ConsentPolicy())
    plan = compile_plan(RULES, visitor, surrogates=FURNITURE.surrogates)
    page = page_for(plan, visitor, path, FURNITURE)
    data = f"<!doctype html><html><head><title>t</title></head><body>{body}</body></html>"
    return (page.feed(data.encode()) + page.close()).decode()


def boxes(out: str) -> list[dict[str, str]]:
    """Each placeholder's attributes (values unescaped)."""
    found = []
    for tag in re.findall(r'<span class="cp-ph(?: cp-ph-embed)?"[^>]*>', out):
        attrs = re.findall(r'([a-z-]+)="([^"]*)"', tag)
        found.append({k: html.unescape(v) for k, v in attrs})
    return found


@pytest.mark.parametrize(
    ("embed", "vendor", "style"),
    [
        (
            '<iframe width="560" height="315" src="https://www.youtube.com/embed/x" '
            'title="YouTube video player" frameborder="0" allowfullscreen></iframe>',
            "YouTube",
            "width:560px;min-height:315px",
        ),
        (
            '<iframe src="https://www.youtube-nocookie.com/embed/x" width="100%" '
            'height="400"></iframe>',
            "YouTube",
            "width:100%;min-height:400px",
        ),
        (
            '<iframe data-src="https://www.youtube.com/embed/lazy" class="lazyload" '
            'width="640" height="360"></iframe>',
            "YouTube",
            "width:640px;min-height:360px",
        ),
        (
            '<iframe src="https://www.google.com/maps/embed?pb=!1m18" width="600" height="450" '
            'style="border:0;" allowfullscreen="" loading="lazy"></iframe>',
            "Google Maps",
            "width:600px;min-height:450px",
        ),
        (
            '<iframe src="https://maps.google.com/maps?q=x&amp;output=embed" width="425" '
            'height="350"></iframe>',
            "Google Maps",
            "width:425px;min-height:350px",
        ),
        (
            '<iframe src="https://player.vimeo.com/video/76979871?h=8272103f6e" width="640" '
            'height="360" frameborder="0" allow="autoplay; fullscreen"></iframe>',
            "Vimeo",
            "width:640px;min-height:360px",
        ),
        (
            '<iframe style="border-radius:12px" src="https://open.spotify.com/embed/track/4c" '
            'width="100%" height="352" frameBorder="0"></iframe>',
            "Spotify",
            "width:100%;min-height:352px",
        ),
        (
            '<iframe width="100%" height="166" scrolling="no" frameborder="no" '
            'src="https://w.soundcloud.com/player/?url=https%3A//api.soundcloud.com/tracks/1">'
            "</iframe>",
            "SoundCloud",
            "width:100%;min-height:166px",
        ),
        (
            '<iframe src="https://www.instagram.com/p/ABC/embed" width="400" height="480">'
            "</iframe>",
            "Instagram",
            "width:400px;min-height:480px",
        ),
        (
            '<iframe src="https://www.tiktok.com/embed/v2/123" style="width:325px;height:740px">'
            "</iframe>",
            "TikTok",
            "width:325px;min-height:740px",
        ),
        (
            '<div class="video" style="position:relative;padding-bottom:56.25%">'
            '<iframe src="https://www.youtube.com/embed/x" style="position:absolute;top:0;'
            'left:0;width:100%;height:100%" allowfullscreen></iframe></div>',
            "YouTube",
            "width:100%;min-height:100%;position:absolute;top:0;left:0",
        ),
    ],
)
def test_each_embed_code_gets_a_sized_placeholder(embed: str, vendor: str, style: str) -> None:
    out = rewrite(embed)
    assert "<iframe" not in out
    (box,) = boxes(out)
    assert box["aria-label"] == f"{vendor} content blocked"
    assert box["style"] == style
    assert box["id"] == "cp-media-1"
    assert f"<strong>{vendor}</strong> content is not shown" in out


def test_both_buttons_and_their_forms_once_per_page() -> None:
    video = '<iframe src="https://www.youtube.com/embed/{}" width="560" height="315"></iframe>'
    out = rewrite("".join(video.format(n) for n in range(3)))
    assert [b["id"] for b in boxes(out)] == ["cp-media-1", "cp-media-2", "cp-media-3"]
    buttons = re.findall(r"<button [^>]*>[^<]*</button>", out)
    assert buttons[:2] == [
        '<button type="submit" form="cp-load-once" name="next" value="/visit?x=1#cp-media-1" '
        'class="cp-ph-button" aria-label="Load this YouTube content">Load this</button>',
        '<button type="submit" form="cp-grant-media" name="next" value="/visit?x=1#cp-media-1" '
        'class="cp-ph-button cp-ph-always">Always allow embedded content from other sites</button>',
    ]
    assert len(buttons) == 6
    assert out.count(LOAD_FORM) == 1 and out.count(GRANT_MEDIA) == 1
    assert out.endswith(GRANT_MEDIA + LOAD_FORM + "</body></html>")
    assert out.count("<style>.cp-ph{") == 1


def test_an_embed_after_the_body_brings_its_forms() -> None:
    late = '<iframe src="https://player.vimeo.com/video/1" width="640" height="360"></iframe>'
    visitor = parse_consent_arg(REFUSED, ConsentPolicy())
    page = page_for(compile_plan(RULES, visitor), visitor, "/", FURNITURE)
    data = f"<!doctype html><html><body><p>x</p></body></html>{late}"
    out = (page.feed(data.encode()) + page.close()).decode()
    assert out.count(LOAD_FORM) == 1 and out.count(GRANT_MEDIA) == 1
    assert out.index(LOAD_FORM) > out.index('id="cp-media-1"')


def test_widgets_that_are_no_embeds_keep_the_grant_placeholder() -> None:
    """A Like button (a div the SDK fills) cannot show by itself: no "Load this"."""
    out = rewrite('<div class="fb-like" data-href="https://example.com/"></div>')
    (box,) = boxes(out)
    assert box["class"] == "cp-ph" and "style" not in box
    assert "Load this" not in out and "cp-load-once" not in out
    assert "Allow social media cookies and show it" in out


def test_granted_media_leaves_the_embeds() -> None:
    embed = '<iframe src="https://www.youtube.com/embed/x" width="560" height="315"></iframe>'
    assert embed in rewrite(embed, REFUSED.replace("media=0", "media=1"))
