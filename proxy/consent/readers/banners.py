"""Consent banners' own cookies: OneTrust, Cookiebot, Klaro and orestbida/cookieconsent.

Each banner records per banner category (or service) whether the visitor agreed; an
operator-editable mapping sends those keys to the proxy's categories (see
``base.map_choices``: granted when a mapped key is present and no present mapped key is
refused). A readable cookie states every category: those no key grants are denied,
since the banner did not obtain consent for them.

- OneTrust ``OptanonConsent``: a query string whose ``groups`` is ``C0001:1,C0002:0,...``.
  Default groups: C0002 performance -> analytics, C0003 functional -> preferences,
  C0004 targeting -> advertising, C0005 social media -> social; no default group
  grants media (OneTrust has no standard group for embeds). The groups are what
  OneTrust itself enforces, also before the visitor closes its banner (then they are
  the defaults of the visitor's region), so they count as a decision; with
  ``needs_interaction`` they count only once ``OptanonAlertBoxClosed`` is set or
  ``interactionCount`` is above 0.
- Cookiebot ``CookieConsent``: a %-encoded JavaScript object literal,
  ``{stamp:'..',necessary:true,preferences:false,statistics:true,marketing:false,...}``.
  Default: preferences -> preferences, statistics -> analytics, marketing ->
  advertising, social and media (Cookiebot files social and video embeds under
  marketing). The value ``-1`` is what Cookiebot stores for a visitor outside the
  regions it asks in (its server-side example reads it as "all cookies accepted"). By
  default that is no decision, so the proxy's own default for undecided visitors
  applies (the proxy cannot check Cookiebot's geolocation); ``not_applicable_grants``
  follows Cookiebot and grants every category.
- Klaro ``klaro``: JSON (raw or %-encoded) of service name -> true/false. Service names
  are the site's own, so the default mapping is empty (everything denied, media
  included) and the operator maps services to categories (``youtube=media``).
- orestbida/cookieconsent ``cc_cookie``: JSON with ``categories`` (v3) or ``level`` (v2),
  the list of accepted category names. Default: analytics -> analytics; functionality
  and preferences -> preferences; marketing, ads, advertising and targeting ->
  advertising; social -> social; media -> media (no other name grants media). With
  ``revision`` set, a cookie of another revision is no decision (the banner asks
  again then).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from proxy.consent.readers.base import (
    CATEGORIES,
    Cookies,
    ReadError,
    SourceDecision,
    decision,
    json_object,
    map_choices,
    no_decision,
    percent_decoded,
    single_value,
)

Keys = Mapping[str, tuple[str, ...]]


def _keys(pairs: dict[str, tuple[str, ...]]) -> Keys:
    return MappingProxyType(pairs)


@dataclass(frozen=True)
class OneTrustConfig:
    cookie: str = "OptanonConsent"
    closed_cookie: str = "OptanonAlertBoxClosed"
    groups: Keys = field(
        default_factory=lambda: _keys(
            {
                "C0002": ("analytics",),
                "C0003": ("preferences",),
                "C0004": ("advertising",),
                "C0005": ("social",),
            }
        )
    )
    needs_interaction: bool = False


@dataclass(frozen=True)
class CookiebotConfig:
    cookie: str = "CookieConsent"
    categories: Keys = field(
        default_factory=lambda: _keys(
            {
                "preferences": ("preferences",),
                "statistics": ("analytics",),
                "marketing": ("advertising", "social", "media"),
            }
        )
    )
    not_applicable_grants: bool = False


@dataclass(frozen=True)
class KlaroConfig:
    cookie: str = "klaro"
    services: Keys = field(default_factory=lambda: _keys({}))


@dataclass(frozen=True)
class CookieConsentConfig:
    cookie: str = "cc_cookie"
    categories: Keys = field(
        default_factory=lambda: _keys(
            {
                "analytics": ("analytics",),
                "functionality": ("preferences",),
                "preferences": ("preferences",),
                "marketing": ("advertising",),
                "ads": ("advertising",),
                "advertising": ("advertising",),
                "targeting": ("advertising",),
                "social": ("social",),
                "media": ("media",),  # embedded content, where a site names it so
            }
        )
    )
    revision: int | None = None


# OneTrust group ids are letters, digits and '_' (C0002, STACK42, SPD_BG, V2STACK1).
_GROUPS = re.compile(r"[A-Za-z0-9_]{1,64}:[01](?:,[A-Za-z0-9_]{1,64}:[01])*")


def parse_onetrust(value: str, where: str = "OptanonConsent") -> tuple[dict[str, bool], int]:
    """The groups (id -> granted) and the interactionCount (0 when absent)."""
    params: dict[str, list[str]] = {}
    for pair in value.split("&"):
        key, _, raw = pair.partition("=")
        params.setdefault(key, []).append(raw)
    if len(params.get("groups", ())) != 1:
        raise ReadError(f"{where}: expected one groups parameter")
    text = percent_decoded(params["groups"][0], f"{where} groups")
    if not _GROUPS.fullmatch(text):
        raise ReadError(f"{where}: groups are not id:0|1 separated by commas")
    groups: dict[str, bool] = {}
    for item in text.split(","):
        group, _, flag = item.partition(":")
        if groups.get(group, flag == "1") != (flag == "1"):
            raise ReadError(f"{where}: group {group} given twice with different values")
        groups[group] = flag == "1"
    count = params.get("interactionCount", ["0"])[0]
    return groups, int(count) if count.isdigit() and len(count) < 10 else 0


def read_onetrust(
    cookies: Cookies, config: OneTrustConfig, *, categories: tuple[str, ...] = CATEGORIES
) -> SourceDecision:
    """OneTrust's decision. Never raises."""
    try:
        groups, interactions = parse_onetrust(single_value(cookies, (config.cookie,)))
    except ReadError as err:
        return no_decision("onetrust", str(err))
    closed = bool(cookies.get(config.closed_cookie))
    if config.needs_interaction and not closed and interactions == 0:
        return no_decision("onetrust", f"{config.cookie}: banner not closed yet")
    granted = map_choices(config.groups, groups, categories)
    note = "banner closed" if closed or interactions else "region defaults (banner not closed)"
    return decision("onetrust", categories, granted, note=note)


# One member of a flat object literal: a key, then a quoted string, number, or literal.
_MEMBER = re.compile(
    r"\s*([A-Za-z_$][A-Za-z0-9_$]{0,63})\s*:\s*"
    r"('[^'\\]*'|\"[^\"\\]*\"|-?\d{1,20}(?:\.\d{1,20})?|true|false|null)\s*"
)


def parse_cookiebot(value: str, where: str = "CookieConsent") -> dict[str, Any] | None:
    """The object literal's members (strings, numbers, booleans, None); None for the
    ``-1`` of a visitor outside Cookiebot's regions. Nested values are not accepted."""
    text = percent_decoded(value, where).strip()
    if text == "-1":
        return None
    if len(text) < 2 or text[0] != "{" or text[-1] != "}":
        raise ReadError(f"{where}: expected an object literal {{...}} or -1")
    members: dict[str, Any] = {}
    body = text[1:-1]
    pos = 0
    while pos < len(body):
        match = _MEMBER.match(body, pos)
        if match is None:
            raise ReadError(f"{where}: unreadable member at character {pos + 1}")
        key, raw = match.groups()
        if key in members:
            raise ReadError(f"{where}: {key} given twice")
        members[key] = _literal(raw)
        pos = match.end()
        if pos < len(body):
            if body[pos] != ",":
                raise ReadError(f"{where}: expected ',' at character {pos + 1}")
            pos += 1
    return members


def _literal(raw: str) -> Any:
    if raw[0] in "'\"":
        return raw[1:-1]
    if raw in ("true", "false", "null"):
        return {"true": True, "false": False, "null": None}[raw]
    return float(raw) if "." in raw else int(raw)


def read_cookiebot(
    cookies: Cookies, config: CookiebotConfig, *, categories: tuple[str, ...] = CATEGORIES
) -> SourceDecision:
    """Cookiebot's decision. Never raises."""
    try:
        members = parse_cookiebot(single_value(cookies, (config.cookie,)))
    except ReadError as err:
        return no_decision("cookiebot", str(err))
    if members is None:
        if config.not_applicable_grants:
            return decision("cookiebot", categories, categories, note="-1: outside its regions")
        return no_decision("cookiebot", f"{config.cookie}: -1 (outside Cookiebot's regions)")
    choices = {}
    for key in config.categories:
        if key in members:
            if not isinstance(members[key], bool):
                return no_decision("cookiebot", f"{config.cookie}: {key} is not true or false")
            choices[key] = members[key]
    if not choices:
        return no_decision("cookiebot", f"{config.cookie}: none of its categories is set")
    method = members.get("method")  # how the visitor decided; only known words are logged
    note = f"method {method}" if method in ("explicit", "implied") else ""
    granted = map_choices(config.categories, choices, categories)
    return decision("cookiebot", categories, granted, note=note)


def read_klaro(
    cookies: Cookies, config: KlaroConfig, *, categories: tuple[str, ...] = CATEGORIES
) -> SourceDecision:
    """Klaro's decision. Never raises."""
    try:
        services = json_object(single_value(cookies, (config.cookie,)), config.cookie)
    except ReadError as err:
        return no_decision("klaro", str(err))
    if not services or not all(isinstance(v, bool) for v in services.values()):
        return no_decision("klaro", f"{config.cookie}: expected service names -> true/false")
    granted = map_choices(config.services, services, categories)
    return decision("klaro", categories, granted, note=f"{len(services)} services")


def read_cookieconsent(
    cookies: Cookies, config: CookieConsentConfig, *, categories: tuple[str, ...] = CATEGORIES
) -> SourceDecision:
    """orestbida/cookieconsent's decision (v3 ``categories``, v2 ``level``). Never raises."""
    try:
        data = json_object(single_value(cookies, (config.cookie,)), config.cookie)
    except ReadError as err:
        return no_decision("cookieconsent", str(err))
    accepted = data.get("categories", data.get("level"))
    if not isinstance(accepted, list) or not all(isinstance(c, str) for c in accepted):
        return no_decision("cookieconsent", f"{config.cookie}: expected a list of categories")
    revision = data.get("revision", 0)
    if config.revision is not None and revision != config.revision:
        return no_decision("cookieconsent", f"{config.cookie}: revision is not {config.revision}")
    version = "v3" if "categories" in data else "v2"
    granted = map_choices(config.categories, dict.fromkeys(accepted, True), categories)
    return decision("cookieconsent", categories, granted, note=version)
