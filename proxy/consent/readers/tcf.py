"""IAB TCF v2.2: the ``euconsent-v2`` cookie's TC string, read into categories.

Only the core segment (the first, before any '.') is read: the disclosed-vendors and
publisher-TC segments are ignored. The proxy never writes a TC string.

Fields and bit positions follow the IAB Tech Lab "Consent string and vendor list
formats v2" specification. Which strings count as a decision:

- version must be 2, CmpId at least 2 (0 and 1 are not assigned to CMPs);
- TcfPolicyVersion at least ``min_policy_version`` (default 4). TCF v2.2 is policy
  version 4 and the specification deems strings with a smaller one invalid after
  30 September 2023, so an older string is "no decision": the visitor is asked again,
  as the CMP itself would do;
- IsServiceSpecific must be 1 (the specification: a string with 0 is invalid);
- LastUpdated no more than ``max_age_days`` ago (default 395, the 13 months after which
  TCF requires asking again) and not in the future (2 days of clock skew allowed).

The mapping from purposes to categories (``TcfConfig.purposes``, editable):

- analytics: purposes 1 and (8 or 9) — store/access, and measuring content or
  audiences;
- advertising: purposes 1, 2, 3, 4 and 7 — the rules this proxy lifts for
  "advertising" are retargeting and profiling tags (DoubleClick, Ads, Pixel), so
  personalised ads (3: profile, 4: use it) are required, not a separate flag. A site
  that only runs contextual ads can drop 3 and 4 from the rule;
- preferences: purposes 1, 5 and 6 — personalised content needs both the profile (5)
  and its use (6), as advertising needs 3 and 4;
- social, media and any category without a rule: denied (TCF has no purpose for them).

A purpose counts when it has consent. Legitimate interest counts only for purposes
listed in ``legitimate_interest`` (default none; never for 1 and 3-6, which TCF v2.2
allows on consent only). ``vendors`` may require a vendor's consent per category (for
example Google, GVL id 755, for advertising); a publisher restriction of type 0 ("not
allowed") on one of the rule's purposes for that vendor denies the category too. With
PurposeOneTreatment set (purpose 1 was not asked: the publisher's jurisdiction does not
require it) purpose 1 still needs consent unless ``purpose_one_treatment_waives``.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Mapping, Set
from dataclasses import dataclass, field
from types import MappingProxyType

from proxy.consent.readers.base import (
    CATEGORIES,
    Cookies,
    ReadError,
    SourceDecision,
    decision,
    no_decision,
    single_value,
)
from proxy.consent.readers.bits import BitReader, decode_bits

SOURCE = "tcf"
PURPOSES = range(1, 25)
_CONSENT_ONLY = frozenset({1, 3, 4, 5, 6})
_SKEW = 2 * 86400  # seconds a LastUpdated may lie in the future (clocks differ)


@dataclass(frozen=True)
class PurposeRule:
    """Granted when every purpose of ``all_of`` counts and, for each set in ``any_of``,
    at least one of its purposes does."""

    all_of: frozenset[int] = frozenset()
    any_of: tuple[frozenset[int], ...] = ()

    def __post_init__(self) -> None:
        named = self.purposes
        if not named or any(not group for group in self.any_of):
            raise ValueError("a TCF purpose rule needs at least one purpose in each part")
        if not named <= set(PURPOSES):
            raise ValueError(f"TCF purposes are 1-24, got {sorted(named - set(PURPOSES))}")

    @property
    def purposes(self) -> frozenset[int]:
        return self.all_of.union(*self.any_of)

    def holds(self, purposes: Set[int]) -> bool:
        return self.all_of <= purposes and all(group & purposes for group in self.any_of)


def _default_purposes() -> Mapping[str, PurposeRule]:
    return MappingProxyType(
        {
            "analytics": PurposeRule(frozenset({1}), (frozenset({8, 9}),)),
            "advertising": PurposeRule(frozenset({1, 2, 3, 4, 7})),
            "preferences": PurposeRule(frozenset({1, 5, 6})),
        }
    )


@dataclass(frozen=True)
class TcfConfig:
    """How the TC string is read (see the module docstring for each setting's why)."""

    cookies: tuple[str, ...] = ("euconsent-v2",)
    purposes: Mapping[str, PurposeRule] = field(default_factory=_default_purposes)
    vendors: Mapping[str, frozenset[int]] = field(default_factory=lambda: MappingProxyType({}))
    legitimate_interest: frozenset[int] = frozenset()
    min_policy_version: int = 4
    require_service_specific: bool = True
    max_age_days: int | None = 395
    purpose_one_treatment_waives: bool = False


@dataclass(frozen=True)
class VendorSet:
    """Vendor ids 1..max_id as sorted, disjoint, inclusive ranges."""

    max_id: int
    ranges: tuple[tuple[int, int], ...]

    def __contains__(self, vendor: object) -> bool:
        if not isinstance(vendor, int):
            return False
        index = bisect_right(self.ranges, (vendor, 1 << 17)) - 1
        return index >= 0 and self.ranges[index][0] <= vendor <= self.ranges[index][1]


@dataclass(frozen=True)
class PublisherRestriction:
    """The publisher's restriction of one purpose for some vendors: type 0 not allowed,
    1 require consent, 2 require legitimate interest."""

    purpose: int
    kind: int
    vendors: VendorSet


@dataclass(frozen=True)
class TCString:
    """The core segment of a TC string. Times are deciseconds since the epoch, as
    encoded; sets hold the ids whose bit is 1."""

    version: int
    created: int
    last_updated: int
    cmp_id: int
    cmp_version: int
    consent_screen: int
    consent_language: str
    vendor_list_version: int
    policy_version: int
    is_service_specific: bool
    use_non_standard_texts: bool
    special_feature_opt_ins: frozenset[int]
    purpose_consents: frozenset[int]
    purpose_legitimate_interests: frozenset[int]
    purpose_one_treatment: bool
    publisher_cc: str
    vendor_consents: VendorSet
    vendor_legitimate_interests: VendorSet
    publisher_restrictions: tuple[PublisherRestriction, ...]

    def not_allowed(self, vendor: int, purposes: Set[int]) -> bool:
        """Whether the publisher flatly disallows ``vendor`` one of ``purposes``."""
        return any(
            r.kind == 0 and r.purpose in purposes and vendor in r.vendors
            for r in self.publisher_restrictions
        )


def parse_tc_string(text: str, where: str = "euconsent-v2") -> TCString:
    """The core segment of ``text`` (a TC string; other segments are ignored).
    ReadError names the field and bit where it stops making sense."""
    core = text.split(".", 1)[0]
    bits = BitReader(decode_bits(core, where), where)
    version = bits.uint(6, "Version")
    if version != 2:  # v1 strings have another layout: nothing after this is meaningful
        raise ReadError(f"{where}: Version is {version}, expected 2")
    created = bits.uint(36, "Created")
    updated = bits.uint(36, "LastUpdated")
    cmp_id = bits.uint(12, "CmpId")
    cmp_version = bits.uint(12, "CmpVersion")
    screen = bits.uint(6, "ConsentScreen")
    language = bits.letters(2, "ConsentLanguage")
    list_version = bits.uint(12, "VendorListVersion")
    policy = bits.uint(6, "TcfPolicyVersion")
    service_specific = bits.flag("IsServiceSpecific")
    non_standard = bits.flag("UseNonStandardTexts")
    features = _ids(bits.chunk(12, "SpecialFeatureOptIns"))
    consents = _ids(bits.chunk(24, "PurposesConsent"))
    interests = _ids(bits.chunk(24, "PurposesLITransparency"))
    one_treatment = bits.flag("PurposeOneTreatment")
    country = bits.letters(2, "PublisherCC")
    vendor_consents = _vendor_section(bits, "VendorConsents")
    vendor_interests = _vendor_section(bits, "VendorLegitimateInterests")
    restrictions = _publisher_restrictions(bits)
    return TCString(
        version,
        created,
        updated,
        cmp_id,
        cmp_version,
        screen,
        language,
        list_version,
        policy,
        service_specific,
        non_standard,
        features,
        consents,
        interests,
        one_treatment,
        country,
        vendor_consents,
        vendor_interests,
        restrictions,
    )


def read_tcf(
    cookies: Cookies,
    config: TcfConfig,
    *,
    now: float,
    categories: tuple[str, ...] = CATEGORIES,
) -> SourceDecision:
    """The decision the TC string in ``config.cookies`` holds at time ``now`` (seconds
    since the epoch). Never raises: an unreadable or invalid string is no decision."""
    try:
        value = single_value(cookies, config.cookies)
        tc = parse_tc_string(value, config.cookies[0])
    except ReadError as err:
        return no_decision(SOURCE, str(err))
    problem = _invalid(tc, config, now)
    if problem:
        return no_decision(SOURCE, problem)
    purposes = set(tc.purpose_consents)
    purposes |= (tc.purpose_legitimate_interests & config.legitimate_interest) - _CONSENT_ONLY
    if tc.purpose_one_treatment and config.purpose_one_treatment_waives:
        purposes.add(1)
    granted = []
    for category in categories:
        rule = config.purposes.get(category)
        vendors = config.vendors.get(category, frozenset())
        if rule is not None and rule.holds(purposes):
            named = rule.purposes
            if all(v in tc.vendor_consents and not tc.not_allowed(v, named) for v in vendors):
                granted.append(category)
    note = f"cmp {tc.cmp_id}, policy {tc.policy_version}, vendor list {tc.vendor_list_version}"
    return decision(SOURCE, categories, granted, note=note)


def _invalid(tc: TCString, config: TcfConfig, now: float) -> str:
    """Why this (well-formed) string holds no decision, or ''."""
    where = config.cookies[0]
    if tc.cmp_id < 2:
        return f"{where}: CmpId {tc.cmp_id}, expected 2 or more"
    if tc.policy_version < config.min_policy_version:
        return (
            f"{where}: TcfPolicyVersion {tc.policy_version}, "
            f"expected {config.min_policy_version} or more (TCF v2.2)"
        )
    if config.require_service_specific and not tc.is_service_specific:
        return f"{where}: IsServiceSpecific is 0, expected 1"
    updated = tc.last_updated / 10
    if updated > now + _SKEW:
        return f"{where}: LastUpdated lies in the future"
    if config.max_age_days is not None and now - updated > config.max_age_days * 86400:
        return f"{where}: LastUpdated more than {config.max_age_days} days ago"
    return ""


def _ids(field: str) -> frozenset[int]:
    """The 1-based positions of the 1 bits."""
    return frozenset(i + 1 for i, bit in enumerate(field) if bit == "1")


def _vendor_section(bits: BitReader, name: str) -> VendorSet:
    max_id = bits.uint(16, f"{name} MaxVendorId")
    if not bits.flag(f"{name} IsRangeEncoding"):
        field_bits = bits.chunk(max_id, f"{name} BitField")
        runs = tuple((m.start() + 1, m.end()) for m in re.finditer("1+", field_bits))
        return VendorSet(max_id, runs)
    ranges = _range_entries(bits, name, max_id)
    return VendorSet(max_id, _merged(ranges))


def _range_entries(bits: BitReader, name: str, max_id: int) -> list[tuple[int, int]]:
    """A NumEntries-counted list of single ids or inclusive ranges, each within 1..max_id."""
    entries = []
    for _ in range(bits.uint(12, f"{name} NumEntries")):
        is_range = bits.flag(f"{name} IsARange")
        start = bits.uint(16, f"{name} StartOrOnlyVendorId")
        end = bits.uint(16, f"{name} EndVendorId") if is_range else start
        if not 1 <= start <= end <= max_id:
            raise ReadError(
                f"{bits.where}: {name} entry {start}-{end} outside 1-{max_id} (bit {bits.pos})"
            )
        entries.append((start, end))
    return entries


def _merged(ranges: list[tuple[int, int]]) -> tuple[tuple[int, int], ...]:
    merged: list[tuple[int, int]] = []
    for start, end in sorted(ranges):
        if merged and start <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return tuple(merged)


def _publisher_restrictions(bits: BitReader) -> tuple[PublisherRestriction, ...]:
    restrictions = []
    for _ in range(bits.uint(12, "NumPubRestrictions")):
        purpose = bits.uint(6, "PurposeId")
        kind = bits.uint(2, "RestrictionType")
        ranges = _merged(_range_entries(bits, "PubRestrictionEntry", 0xFFFF))
        restrictions.append(PublisherRestriction(purpose, kind, VendorSet(0xFFFF, ranges)))
    return tuple(restrictions)
