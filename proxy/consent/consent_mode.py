"""Google Consent Mode v2: the consent default Google's tags read, from the visitor's
consent, as the first script of the page's head.

A rule that covers Google tags says ``consent_mode = "off" | "basic" | "advanced"``
(the built-in Google Analytics, Tag Manager and Ads rules: basic). Rules without the
key are not Google's and are left alone.

- basic: the rule's tags are removed while its category is denied, as any rule's.
  When they are allowed, the page gets the consent default first in its head.
- advanced: the rule's tags stay while its category is denied, and the page always
  gets the default, with denied values where the visitor did not consent: Google's
  tags then send cookieless pings. Elements that load without any script (img,
  iframe, embed, object: the ``<noscript>`` fallbacks and pixels) cannot read the
  consent state, so the rule's blocks still remove them while denied; so does a
  block whose selector names no element type (it may match one of them).
- off: the rule acts as any other rule; it adds no default.

The default sets all seven types from the categories (``MAPPING``): analytics ->
analytics_storage; advertising -> ad_storage, ad_user_data, ad_personalization;
preferences -> functionality_storage, personalization_storage; security_storage is
always granted (it covers what the site needs to be safe). No ``update`` call and no
``wait_for_update``: the proxy knows the visitor's state before the page is built, and
the next page after a choice carries the new default. ``ads_data_redaction`` and
``url_passthrough`` add ``gtag('set', ...)`` calls after the default.

The plan keeps the script's text (``google_defaults``); each page places it
(``PageDefault``) with the nonce of the page's Content-Security-Policy when it has one.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable
from dataclasses import dataclass

from proxy.consent.model import Consent
from proxy.consent.rules import CONSENT_MODES, Block, Rule, RuleSet
from proxy.html import Rewriter
from proxy.html.selectors import parse_selector

__all__ = ["CONSENT_MODES"]

# Consent Mode's types, in the order Google's documentation lists them, and the
# category each follows (None: always granted).
MAPPING: dict[str, str | None] = {
    "ad_storage": "advertising",
    "analytics_storage": "analytics",
    "ad_user_data": "advertising",
    "ad_personalization": "advertising",
    "functionality_storage": "preferences",
    "personalization_storage": "preferences",
    "security_storage": None,
}
# Elements that fetch by themselves, with no script to read the consent state.
LOADS_WITHOUT_SCRIPT = frozenset({"img", "iframe", "embed", "object"})
# A CSP nonce is base64 (RFC 4648, either alphabet); nothing else goes into the tag.
_NONCE = re.compile(r"[A-Za-z0-9+/_-]+={0,2}")


@dataclass(frozen=True)
class ConsentModeSettings:
    """The operator's settings: ``override`` replaces every Google rule's mode ("":
    each rule's own); the two flags add their ``gtag('set', ...)`` calls."""

    override: str = ""
    ads_data_redaction: bool = False
    url_passthrough: bool = False

    def __post_init__(self) -> None:
        if self.override and self.override not in CONSENT_MODES:
            raise ValueError(
                f"consent_mode {self.override!r}: expected one of {', '.join(CONSENT_MODES)}"
            )


DEFAULT = ConsentModeSettings()


def mode_of(rule: Rule, settings: ConsentModeSettings = DEFAULT) -> str:
    """The rule's consent mode: "off" for rules that are not Google's."""
    if rule.consent_mode is None:
        return "off"
    return settings.override or rule.consent_mode


def defaults(consent: Consent) -> dict[str, str]:
    """Each Consent Mode type -> "granted" or "denied" for this consent."""
    return {
        kind: "granted" if category is None or consent.allows(category) else "denied"
        for kind, category in MAPPING.items()
    }


def google_defaults(consent: Consent, settings: ConsentModeSettings = DEFAULT) -> str:
    """The default's script text (what goes between <script> and </script>)."""
    values = json.dumps(defaults(consent), separators=(",", ":"))
    parts = [
        "window.dataLayer = window.dataLayer || [];",
        "function gtag(){dataLayer.push(arguments);}",
        f"gtag('consent','default',{values});",
    ]
    if settings.ads_data_redaction:
        parts.append("gtag('set','ads_data_redaction',true);")
    if settings.url_passthrough:
        parts.append("gtag('set','url_passthrough',true);")
    return " ".join(parts)


def plan_defaults(
    ruleset: RuleSet, consent: Consent, settings: ConsentModeSettings = DEFAULT
) -> str:
    """The default's script text for pages of this consent under these rules, or ""
    when no Google tag runs on them (basic rules all denied, no advanced rule)."""
    for rule in ruleset.active:
        mode = mode_of(rule, settings)
        if mode == "advanced" or (mode == "basic" and consent.allows(rule.category)):
            return google_defaults(consent, settings)
    return ""


def denied_blocks(rule: Rule, settings: ConsentModeSettings = DEFAULT) -> tuple[Block, ...]:
    """The blocks that act while ``rule``'s category is denied: all of them, but for an
    advanced rule only those (and the parts of their selectors) that can match an
    element loading without script."""
    if mode_of(rule, settings) != "advanced":
        return rule.blocks
    kept = (_without_scripts(block) for block in rule.blocks)
    return tuple(block for block in kept if block is not None)


def _without_scripts(block: Block) -> Block | None:
    complexes = parse_selector(block.selector)  # validated when the rule was loaded
    kept = [cx.text for cx in complexes if _fetches_alone(cx.subject.tag)]
    if not kept:
        return None
    if len(kept) == len(complexes):
        return block
    return dataclasses.replace(block, selector=", ".join(kept))


def _fetches_alone(tag: str | None) -> bool:
    return tag is None or tag in LOADS_WITHOUT_SCRIPT


def usable_nonce(value: str | None) -> str | None:
    """``value`` if it can go into a nonce attribute as it is, else None."""
    return value if value and len(value) <= 256 and _NONCE.fullmatch(value) else None


def script_tag(script: str, nonce: str | None = None) -> str:
    """The default as an element: with ``nonce`` (the page policy's), else bare (its
    hash is then added to the page's policy)."""
    nonce = usable_nonce(nonce)
    attribute = f' nonce="{nonce}"' if nonce else ""
    return f"<script{attribute}>{script}</script>"


# Bytes fed to the rewriter at a time while only the default is to be placed.
_SLICE = 512


class PageDefault:
    """The default on one page: placed first in the head (``tag``), carrying the nonce
    of the page's policy (set ``nonce`` before the first ``feed``). Where it is
    ``alone`` (nothing else on the page changes: a visitor who allows everything),
    ``feed`` gives the rewriter only what precedes it; the rest passes as it came."""

    def __init__(self, script: str, *, alone: bool) -> None:
        self.script = script
        self.alone = alone
        self.nonce: str | None = None
        self.placed = False  # the start of the head has gone out
        self.done = False  # and, alone, the rest passes as it came

    def tag(self, document: bool) -> str:
        """The element, at the start of the head; none in an HTML fragment (loaded
        into a page that has its own default)."""
        self.placed = True
        return script_tag(self.script, self.nonce) if document else ""

    def scripts(
        self, scripts: tuple[str, ...], policy: str, allows_nonce: Callable[[str, str], bool]
    ) -> tuple[str, ...]:
        """``scripts`` (inline scripts ``policy`` must allow by their hash), and the
        default's unless it carries a nonce ``policy`` allows."""
        if self.nonce and allows_nonce(policy, self.nonce):
            return scripts
        return (*scripts, self.script)

    def feed(self, chunk: bytes, rewriter: Rewriter) -> bytes:
        """``chunk`` through ``rewriter`` until the default is placed (in slices: the
        start of the head comes early), then as it came."""
        if self.done:
            return chunk
        out = []
        for at in range(0, len(chunk), _SLICE):
            out.append(rewriter.feed(chunk[at : at + _SLICE]))
            if self.placed:
                out.append(rewriter.close())  # what it held back (an unfinished tag)
                out.append(chunk[at + _SLICE :])
                self.done = True
                break
        return b"".join(out)
