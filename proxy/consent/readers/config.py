"""The operator's side of the readers: the mappings a site edits, from settings text.

Three mappings are settings (flags, ``CONSENT_PROXY_*`` variables, keys of the config
TOML), each a comma-separated list of ``key=category`` pairs; a key named twice maps to
each category given (``marketing=advertising,marketing=social``). In the TOML file
a table says the same (``onetrust_groups = {C0004 = ["advertising", "social"]}``).

- ``onetrust_groups``: OneTrust group id -> category. Unset: the reader's default
  (C0002=analytics, C0003=preferences, C0004=advertising, C0005=social). Set, it
  replaces the default whole; a category no group maps is denied.
- ``klaro_services``: Klaro service name (the site's own, as in its Klaro config) ->
  category. Unset: none, so a Klaro cookie denies every category.
- ``tcf_vendors``: category -> a GVL vendor id whose consent the category also needs
  in the TC string (``advertising=755``: Google). Unset: purposes alone decide.
- ``tcf_purposes``: category -> the TCF purposes that grant it, ``+`` between purposes
  all needed, ``|`` between alternatives (``analytics=1+8|9``: 1, and 8 or 9). A
  category named replaces its default rule; the others keep theirs. TCF has no purpose
  for social or media, so they are denied unless given a rule here (``media=1+10``).

Errors are ``ValueError`` naming the pair and what was expected.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from types import MappingProxyType

from proxy.consent.readers.banners import KlaroConfig, OneTrustConfig
from proxy.consent.readers.base import CATEGORIES
from proxy.consent.readers.sources import ReadersConfig
from proxy.consent.readers.tcf import PURPOSES, PurposeRule, TcfConfig

Keys = Mapping[str, tuple[str, ...]]

# OneTrust group ids as the reader accepts them (C0002, STACK42, SPD_BG).
_GROUP_ID = re.compile(r"[A-Za-z0-9_]{1,64}")
# Klaro service names are the site's JSON keys: anything printable but the separators.
_SERVICE = re.compile(r"[^\s,=\x00-\x1f\x7f]{1,128}")
MAX_VENDOR_ID = 0xFFFF  # vendor ids are 16-bit fields in the TC string


def _pairs(text: str) -> list[tuple[str, str]]:
    out = []
    for piece in text.split(","):
        if not piece.strip():
            continue
        key, sep, value = piece.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise ValueError(f"{piece.strip()!r}: expected key=category")
        out.append((key.strip(), value.strip()))
    return out


def _category(value: str, pair: str) -> str:
    if value not in CATEGORIES:
        raise ValueError(
            f"{pair!r}: {value!r} is not a category; expected one of {', '.join(CATEGORIES)}"
        )
    return value


def _keys(text: str, key_pattern: re.Pattern[str], what: str) -> Keys:
    mapping: dict[str, tuple[str, ...]] = {}
    for key, value in _pairs(text):
        pair = f"{key}={value}"
        if not key_pattern.fullmatch(key):
            raise ValueError(f"{pair!r}: {key!r} is not a {what}")
        category = _category(value, pair)
        if category not in mapping.get(key, ()):
            mapping[key] = (*mapping.get(key, ()), category)
    return MappingProxyType(mapping)


def parse_onetrust_groups(text: str) -> Keys:
    """``C0002=analytics,C0004=advertising`` -> group id -> categories."""
    return _keys(text, _GROUP_ID, "OneTrust group id (letters, digits, _)")


def parse_klaro_services(text: str) -> Keys:
    """``google-analytics=analytics,youtube=social`` -> service name -> categories."""
    return _keys(text, _SERVICE, "Klaro service name")


def parse_tcf_vendors(text: str) -> Mapping[str, frozenset[int]]:
    """``advertising=755`` -> category -> vendor ids whose consent it needs."""
    vendors: dict[str, frozenset[int]] = {}
    for key, value in _pairs(text):
        pair = f"{key}={value}"
        category = _category(key, pair)
        if not value.isdigit() or not 1 <= int(value) <= MAX_VENDOR_ID:
            raise ValueError(f"{pair!r}: {value!r} is not a vendor id (1-{MAX_VENDOR_ID})")
        vendors[category] = vendors.get(category, frozenset()) | {int(value)}
    return MappingProxyType(vendors)


def parse_tcf_purposes(text: str) -> Mapping[str, PurposeRule]:
    """``media=1+10,analytics=1+8|9`` -> category -> the purposes that grant it."""
    rules: dict[str, PurposeRule] = {}
    for key, value in _pairs(text):
        pair = f"{key}={value}"
        category = _category(key, pair)
        if category in rules:
            raise ValueError(f"{pair!r}: {category!r} is given a rule twice")
        all_of: set[int] = set()
        any_of: list[frozenset[int]] = []
        for term in value.split("+"):
            ids = term.split("|")
            if not all(i.strip().isdigit() and int(i) in PURPOSES for i in ids):
                raise ValueError(
                    f"{pair!r}: {term.strip()!r} is not a TCF purpose "
                    f"({PURPOSES[0]}-{PURPOSES[-1]}, or alternatives joined by |)"
                )
            if len(ids) == 1:
                all_of.add(int(ids[0]))
            else:
                any_of.append(frozenset(int(i) for i in ids))
        rules[category] = PurposeRule(frozenset(all_of), tuple(any_of))
    return MappingProxyType(rules)


def describe(mapping: Mapping[str, tuple[str, ...]]) -> str:
    """A mapping as settings text (the inverse of the parsers above)."""
    return ",".join(f"{key}={c}" for key, cats in mapping.items() for c in cats)


DEFAULT_ONETRUST_GROUPS = describe(OneTrustConfig().groups)


def readers_config(
    *,
    onetrust_groups: Keys | None = None,
    klaro_services: Keys | None = None,
    tcf_vendors: Mapping[str, frozenset[int]] | None = None,
    tcf_purposes: Mapping[str, PurposeRule] | None = None,
) -> ReadersConfig:
    """The readers' configuration with the operator's mappings (None: the default)."""
    config = ReadersConfig()
    if onetrust_groups is not None:
        onetrust = dataclasses.replace(config.onetrust, groups=onetrust_groups)
        config = dataclasses.replace(config, onetrust=onetrust)
    if klaro_services is not None:
        config = dataclasses.replace(config, klaro=KlaroConfig(services=klaro_services))
    if tcf_vendors is not None:
        config = dataclasses.replace(config, tcf=TcfConfig(vendors=tcf_vendors))
    if tcf_purposes is not None:
        purposes = MappingProxyType({**config.tcf.purposes, **tcf_purposes})
        tcf = dataclasses.replace(config.tcf, purposes=purposes)
        config = dataclasses.replace(config, tcf=tcf)
    return config
