"""Embeds that are no iframe: markup a vendor's script turns into the embed, and the
script that draws a map. Each gets the embed placeholder ("Load this", "Always
allow") while its category is denied, as an iframe does (holding.py).

- A post's ``<blockquote>`` (X/Twitter, Instagram, TikTok): the post's text and link,
  which the vendor's script (widgets.js, embed.js) replaces by the embed. It contacts
  nobody and is the readable fallback, so it stays; the placeholder follows it. The
  page's own copy of the script goes by the rules or the catalogue as before (it may
  be anywhere, once for several posts). Shown once, the post gets the vendor's script
  right after it, and every other held post of the page loses the class the scripts
  look for, so that only this one turns into the embed.
- Facebook's embedded content in XFBML (``<div class="fb-post" data-href=...>``,
  fb-video, fb-page, fb-comments): Facebook's SDK turns each into its iframe. They
  go as the posts do (an fb-post's div holds the post's text as its fallback); shown
  once, the SDK (sdk.js, with ``xfbml=1``: it parses the page on load) follows the
  element. Its buttons (fb-like, ...) stay the facebook rule's grant placeholders.
- A facade element (``<lite-youtube videoid=...>``, ``<lite-vimeo>``): the page's own
  script gives it the vendor's thumbnail and, on a click, the player. It is held like
  an iframe: the placeholder stands in for it; shown once, it is left as it came.
- The Google Maps JavaScript API (a script from maps.googleapis.com/maps/api/js, or
  the inline loader that names it) draws a map into a div of the page's choosing:
  the catalogue holds the script (coverage.py asks ``embed_script``), the placeholder
  stands where it was (at the start of <body> for one in <head>); shown once, the
  script stays.

Whose each one is, and so its category: the built-in rule that blocks the vendor's
script, while it is active (X's widgets.js: the ``twitter`` rule, Facebook's SDK: the
``facebook`` rule, both social), else the
catalogue's entry for the vendor's host (Instagram, TikTok, YouTube, Vimeo: media),
unless the catalogue is told to leave that entity alone.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

from proxy.consent.catalogue import Catalogue
from proxy.consent.holding import ONCE, PLACEHOLDER, PagePlaceholders, catalogue_rule
from proxy.consent.model import Consent
from proxy.consent.rules import Rule
from proxy.consent.sizing import embed_size
from proxy.consent.urls import url_target
from proxy.html import Element, Handler, Hints

if TYPE_CHECKING:  # scan.py gives the program these slots (KEYS)
    from proxy.consent.scan import Scan

MAPS_API = "maps.googleapis.com/maps/api/js"  # the script that draws Google's maps


@dataclass(frozen=True)
class Facade:
    """One kind of embed markup: the elements (``selector``, found by ``hints``),
    whose it is (the rule or catalogue entry of ``host``), and how it is held:
    ``script``, added after a post shown once (its element stays, readable, and
    ``classes`` are what the script looks for), or, when empty, the element is held
    like an iframe."""

    selector: str
    hints: Hints
    host: str
    script: str = ""
    classes: tuple[str, ...] = ()
    rule: str = ""  # the built-in rule that blocks the vendor's script, if one does


def _post(
    tokens: tuple[str, ...], host: str, script: str, rule: str = "", tag: str = "blockquote"
) -> Facade:
    selector = ", ".join(f"{tag}.{t}" for t in tokens)
    return Facade(selector, Hints(tag=tokens, attrs=("class",)), host, script, tokens, rule)


# The classes Facebook's SDK turns into embedded content (its documented social
# plugins, the retired Like Box and Group included: pages still carry them). Its
# buttons (fb-like, fb-share-button, ...) stay the facebook rule's: a widget, no embed.
FACEBOOK_PLUGINS = (
    "fb-post", "fb-video", "fb-page", "fb-comments", "fb-comment-embed", "fb-group",
    "fb-like-box",
)  # fmt: skip
# The SDK as Facebook's embed code loads it: xfbml=1 parses the page when it loads (no
# FB.init needed); the version is one the SDK accepts (Facebook retires old ones).
FACEBOOK_SDK = "https://connect.facebook.net/en_US/sdk.js#xfbml=1&version=v22.0"


# The embed codes the vendors hand out (their documented markup and script URLs).
FACADES = (
    _post(
        ("twitter-tweet", "twitter-video"),
        "platform.twitter.com",
        "https://platform.twitter.com/widgets.js",
        "twitter",
    ),
    _post(("instagram-media",), "www.instagram.com", "https://www.instagram.com/embed.js"),
    _post(("tiktok-embed",), "www.tiktok.com", "https://www.tiktok.com/embed.js"),
    _post(FACEBOOK_PLUGINS, "connect.facebook.net", FACEBOOK_SDK, "facebook", tag="div"),
    Facade("lite-youtube", Hints(), "www.youtube.com"),
    Facade("lite-vimeo", Hints(), "player.vimeo.com"),
)
SELECTORS = tuple(f.selector for f in FACADES)
HINTS = tuple(f.hints for f in FACADES)
KEYS = tuple(zip(SELECTORS, HINTS, strict=True))  # the scan's last slots (scan.py)


def embed_script(el: Element) -> bool:
    """Whether a script is one that draws an embed (the Maps JavaScript API, by its
    URL or an inline loader naming it): held behind a placeholder, not removed."""
    if el.tag != "script":
        return False
    src = el.get("src")
    if src is None:
        return MAPS_API in el.text
    target = url_target(src, None)
    return target is not None and f"{target[0]}{target[1]}".startswith(MAPS_API)


class PageFacades:
    """The facades of one page for one visitor: the handlers of the scan's facade
    slots (``handlers``, in ``FACADES`` order)."""

    def __init__(
        self,
        scan: Scan,
        catalogue: Catalogue | None,
        exempt: frozenset[str],
        consent: Consent,
        holding: PagePlaceholders,
    ) -> None:
        """``scan``, ``catalogue``, ``exempt``: the plan's (catalogue None: it holds
        nothing for this visitor)."""
        self._scan = scan
        self._catalogue = catalogue
        self._exempt = exempt
        self._consent = consent
        self._holding = holding
        self._owners: dict[str, Rule | None] = {}

    def handlers(self, count: Callable[[str, str], None]) -> list[Handler]:
        """The handlers, in ``FACADES`` order; ``count(rule id, action)`` gets each one
        held (PLACEHOLDER) or shown once (ONCE)."""
        return [partial(self._handle, f, count) for f in FACADES]

    def _owner(self, facade: Facade) -> Rule | None:
        """What stands for the vendor: its rule (``facade.rule``) when active, else
        the catalogue's entity of its host (as a rule); None when neither holds it."""
        if facade.selector in self._owners:
            return self._owners[facade.selector]
        members = (m for slot in self._scan.ahead for m in slot.members)
        owner = next((rule for rule, _ in members if rule.id == facade.rule), None)
        if owner is None and self._catalogue is not None:
            entry = self._catalogue.lookup(facade.host)
            if entry is not None and entry.entity not in self._exempt:
                owner = catalogue_rule(entry.entity, entry.category)
        self._owners[facade.selector] = owner
        return owner

    def _handle(self, facade: Facade, count: Callable[[str, str], None], el: Element) -> None:
        rule = self._owner(facade)
        if rule is None:
            return
        holding = self._holding
        if self._consent.allows(rule.category):  # shown: numbered as when it was held
            if holding.return_to is not None and holding.return_to[0] == rule.category:
                holding.shown(el, rule.category)
            return
        if facade.script:
            held = holding.hold_post(el, rule, facade.script, facade.classes)
        else:
            held = holding.hold_embed(el, rule, embed_size(el.get))
        count(rule.id, PLACEHOLDER if held else ONCE)
