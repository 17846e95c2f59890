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
from proxy.consent.readers.tcf import TcfConfig

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


def describe(mapping: Mapping[str, tuple[str, ...]]) -> str:
    """A mapping as settings text (the inverse of the parsers above)."""
    return ",".join(f"{key}={c}" for key, cats in mapping.items() for c in cats)


DEFAULT_ONETRUST_GROUPS = describe(OneTrustConfig().groups)


def readers_config(
    *,
    onetrust_groups: Keys | None = None,
    klaro_services: Keys | None = None,
    tcf_vendors: Mapping[str, frozenset[int]] | None = None,
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
    return config
