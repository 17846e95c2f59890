"""Readers of other banners' cookies: published vectors, strings encoded here by an
independent encoder, every banner's formats, hostile values, and the source order."""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from proxy.consent.readers import (
    CATEGORIES,
    ReadersConfig,
    SourceDecision,
    check_sources,
    cookie_jar,
    read_headers,
    read_sources,
)
from proxy.consent.readers.banners import (
    CookiebotConfig,
    CookieConsentConfig,
    KlaroConfig,
    OneTrustConfig,
    parse_cookiebot,
    read_cookiebot,
    read_cookieconsent,
    read_klaro,
    read_onetrust,
)
from proxy.consent.readers.base import MAX_PAIRS, MAX_VALUE
from proxy.consent.readers.gpp import (
    GppConfig,
    UsPrivacyConfig,
    parse_gpp,
    parse_usprivacy,
    read_gpp,
    read_usprivacy,
    section_signal,
)
from proxy.consent.readers.sources import READERS
from proxy.consent.readers.tcf import PurposeRule, TcfConfig, parse_tc_string, read_tcf

VECTORS = json.loads((Path(__file__).parent.parent / "data" / "readers_vectors.json").read_text())
NOW = datetime(2026, 3, 1, tzinfo=UTC).timestamp()
ALL = set(CATEGORIES)

# ---------------------------------------------------------------------------------------
# An independent encoder: the fields written out bit by bit, as the IAB specs list them.
# ---------------------------------------------------------------------------------------

B64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


def u(value: int, width: int) -> str:
    assert 0 <= value < 1 << width, (value, width)
    return format(value, f"0{width}b")


def b64(bits: str) -> str:
    bits += "0" * (-len(bits) % 6)
    return "".join(B64[int(bits[i : i + 6], 2)] for i in range(0, len(bits), 6))


def letters(text: str) -> str:
    return "".join(u(ord(c) - ord("A"), 6) for c in text)


def bitfield(ids: Iterable[int], width: int) -> str:
    chosen = set(ids)
    return "".join("1" if i in chosen else "0" for i in range(1, width + 1))


def ranges(ids: Iterable[int]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for i in sorted(set(ids)):
        if out and i == out[-1][1] + 1:
            out[-1] = (out[-1][0], i)
        else:
            out.append((i, i))
    return out


def range_entries(ids: Iterable[int]) -> str:
    entries = ranges(ids)
    bits = u(len(entries), 12)
    for start, end in entries:
        bits += "1" + u(start, 16) + u(end, 16) if end > start else "0" + u(start, 16)
    return bits


def vendor_section(ids: Sequence[int], as_ranges: bool) -> str:
    top = max(ids, default=0)
    if as_ranges:
        return u(top, 16) + "1" + range_entries(ids)
    return u(top, 16) + "0" + bitfield(ids, top)


def tc_string(
    *,
    version: int = 2,
    updated: float = NOW - 86400,
    cmp_id: int = 10,
    cmp_version: int = 3,
    screen: int = 1,
    language: str = "EN",
    list_version: int = 150,
    policy: int = 4,
    service_specific: bool = True,
    non_standard: bool = False,
    features: Iterable[int] = (),
    consents: Iterable[int] = (),
    interests: Iterable[int] = (),
    one_treatment: bool = False,
    country: str = "DE",
    vendors: Sequence[int] = (),
    vendor_ranges: bool = False,
    li_vendors: Sequence[int] = (),
    restrictions: Sequence[tuple[int, int, Sequence[int]]] = (),
    segments: str = "",
) -> str:
    stamp = round(updated * 10)
    bits = (
        u(version, 6)
        + u(stamp, 36)
        + u(stamp, 36)
        + u(cmp_id, 12)
        + u(cmp_version, 12)
        + u(screen, 6)
        + letters(language)
        + u(list_version, 12)
        + u(policy, 6)
        + ("1" if service_specific else "0")
        + ("1" if non_standard else "0")
        + bitfield(features, 12)
        + bitfield(consents, 24)
        + bitfield(interests, 24)
        + ("1" if one_treatment else "0")
        + letters(country)
        + vendor_section(vendors, vendor_ranges)
        + vendor_section(li_vendors, False)
        + u(len(restrictions), 12)
    )
    for purpose, kind, ids in restrictions:
        bits += u(purpose, 6) + u(kind, 2) + range_entries(ids)
    return b64(bits) + segments


def fibonacci(n: int) -> str:
    fibs = [1, 2]
    while fibs[-1] <= n:
        fibs.append(fibs[-1] + fibs[-2])
    code = ["0"] * len(fibs)
    for i in range(len(fibs) - 1, -1, -1):
        if fibs[i] <= n:
            code[i] = "1"
            n -= fibs[i]
    return "".join(code).rstrip("0") + "1"


def gpp_header(ids: Sequence[int]) -> str:
    bits = u(3, 6) + u(1, 6) + u(len(ids), 12)
    last = 0
    for i in ids:
        bits += "0" + fibonacci(i - last)
        last = i
    return b64(bits)


def gpp_string(sections: Sequence[tuple[int, str]]) -> str:
    return "~".join([gpp_header([i for i, _ in sections]), *(s for _, s in sections)])


# Core segment fields of the US sections read here, in the order the IAB section
# specifications list them (widths in bits).
US_FIELDS: dict[int, list[tuple[str, int]]] = {
    7: [
        ("Version", 6),
        ("SharingNotice", 2),
        ("SaleOptOutNotice", 2),
        ("SharingOptOutNotice", 2),
        ("TargetedAdvertisingOptOutNotice", 2),
        ("SensitiveDataProcessingOptOutNotice", 2),
        ("SensitiveDataLimitUseNotice", 2),
        ("SaleOptOut", 2),
        ("SharingOptOut", 2),
        ("TargetedAdvertisingOptOut", 2),
        ("SensitiveDataProcessing", 32),
        ("KnownChildSensitiveDataConsents", 6),
        ("PersonalDataConsents", 2),
        ("MspaCoveredTransaction", 2),
        ("MspaOptOutOptionMode", 2),
        ("MspaServiceProviderMode", 2),
    ],
    8: [
        ("Version", 6),
        ("SaleOptOutNotice", 2),
        ("SharingOptOutNotice", 2),
        ("SensitiveDataLimitUseNotice", 2),
        ("SaleOptOut", 2),
        ("SharingOptOut", 2),
        ("SensitiveDataProcessing", 18),
        ("KnownChildSensitiveDataConsents", 4),
        ("PersonalDataConsents", 2),
        ("MspaCoveredTransaction", 2),
        ("MspaOptOutOptionMode", 2),
        ("MspaServiceProviderMode", 2),
    ],
    9: [
        ("Version", 6),
        ("SharingNotice", 2),
        ("SaleOptOutNotice", 2),
        ("TargetedAdvertisingOptOutNotice", 2),
        ("SaleOptOut", 2),
        ("TargetedAdvertisingOptOut", 2),
        ("SensitiveDataProcessing", 16),
        ("KnownChildSensitiveDataConsents", 2),
        ("MspaCoveredTransaction", 2),
        ("MspaOptOutOptionMode", 2),
        ("MspaServiceProviderMode", 2),
    ],
    10: [
        ("Version", 6),
        ("SharingNotice", 2),
        ("SaleOptOutNotice", 2),
        ("TargetedAdvertisingOptOutNotice", 2),
        ("SaleOptOut", 2),
        ("TargetedAdvertisingOptOut", 2),
        ("SensitiveDataProcessing", 14),
        ("KnownChildSensitiveDataConsents", 2),
        ("MspaCoveredTransaction", 2),
        ("MspaOptOutOptionMode", 2),
        ("MspaServiceProviderMode", 2),
    ],
    11: [
        ("Version", 6),
        ("SharingNotice", 2),
        ("SaleOptOutNotice", 2),
        ("TargetedAdvertisingOptOutNotice", 2),
        ("SensitiveDataProcessingOptOutNotice", 2),
        ("SaleOptOut", 2),
        ("TargetedAdvertisingOptOut", 2),
        ("SensitiveDataProcessing", 16),
        ("KnownChildSensitiveDataConsents", 2),
        ("MspaCoveredTransaction", 2),
        ("MspaOptOutOptionMode", 2),
        ("MspaServiceProviderMode", 2),
    ],
    12: [
        ("Version", 6),
        ("SharingNotice", 2),
        ("SaleOptOutNotice", 2),
        ("TargetedAdvertisingOptOutNotice", 2),
        ("SaleOptOut", 2),
        ("TargetedAdvertisingOptOut", 2),
        ("SensitiveDataProcessing", 16),
        ("KnownChildSensitiveDataConsents", 6),
        ("MspaCoveredTransaction", 2),
        ("MspaOptOutOptionMode", 2),
        ("MspaServiceProviderMode", 2),
    ],
}
OPT_OUTS = ("SaleOptOut", "SharingOptOut", "TargetedAdvertisingOptOut")


def us_section(
    section: int, values: Mapping[str, int] | None = None, gpc: bool | None = None
) -> str:
    values = values or {}
    fields = US_FIELDS[section]
    names = {name for name, _ in fields}
    assert set(values) <= names, set(values) - names
    defaults = {"Version": 2 if section == 7 else 1, "MspaCoveredTransaction": 1}
    bits = "".join(u(values.get(n, defaults.get(n, 0)), w) for n, w in fields)
    core = b64(bits)
    return core if gpc is None else core + "." + b64("01" + ("1" if gpc else "0"))


# ---------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------


def granted_denied(d: SourceDecision) -> tuple[set[str], set[str]]:
    return set(d.granted), set(d.denied)


def well_formed(d: SourceDecision, categories: Iterable[str] = CATEGORIES) -> None:
    assert not d.granted & d.denied
    assert d.stated <= set(categories)
    assert d.decided or d.note, "no decision must say why"


def tcf(value: str, config: TcfConfig | None = None, now: float = NOW) -> SourceDecision:
    return read_tcf({"euconsent-v2": [value]}, config or TcfConfig(), now=now)


# ---------------------------------------------------------------------------------------
# TCF
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("vector", VECTORS["tcf"], ids=lambda v: v["name"])
def test_tcf_published_vectors(vector: dict[str, Any]) -> None:
    if "error" in vector:
        with pytest.raises(ValueError, match=vector["error"]):
            parse_tc_string(vector["value"])
        assert not tcf(vector["value"]).decided
        return
    tc = parse_tc_string(vector["value"])
    for name, expected in vector["fields"].items():
        assert getattr(tc, name) == expected, name
    if "restriction" in vector:
        r = vector["restriction"]
        matching = [
            x for x in tc.publisher_restrictions if (x.purpose, x.kind) == (r["purpose"], r["kind"])
        ]
        assert len(matching) == 1
        assert [v for v in range(1, 1000) if v in matching[0].vendors] == r["vendors"]


def test_tcf_cli_readme_vector_dates_are_the_encoded_ones() -> None:
    tc = parse_tc_string(VECTORS["tcf"][0]["value"])
    assert tc.created == tc.last_updated == 15759433065
    assert datetime.fromtimestamp(tc.created / 10, UTC).isoformat() == (
        "2019-12-10T02:01:46.500000+00:00"
    )


def test_tcf_v22_string_from_iabtcf_es_decides() -> None:
    value = next(v["value"] for v in VECTORS["tcf"] if v["name"] == "tcf-2.2-policy-5")
    tc = parse_tc_string(value)
    assert tc.policy_version == 5 and tc.is_service_specific
    assert tc.purpose_consents == frozenset(range(1, 12))
    d = tcf(value)
    assert granted_denied(d) == ({"analytics", "advertising", "preferences"}, {"social", "media"})
    assert d.source == "tcf" and "policy 5" in d.note
    # Google (GVL 755) is not among its vendors: requiring it denies advertising.
    google = TcfConfig(vendors={"advertising": frozenset({755})})
    assert granted_denied(tcf(value, google)) == (
        {"analytics", "preferences"},
        {"advertising", "social", "media"},
    )


@pytest.mark.parametrize(
    "name", ["cli-readme", "issue-201-publisher-restrictions", "issue-142-bad-disclosed-vendors"]
)
def test_tcf_pre_v22_strings_are_no_decision(name: str) -> None:
    value = next(v["value"] for v in VECTORS["tcf"] if v["name"] == name)
    d = tcf(value)
    assert not d.decided
    assert "TcfPolicyVersion 2, expected 4 or more" in d.note


def test_tcf_older_policy_reads_when_configured() -> None:
    value = next(
        v["value"] for v in VECTORS["tcf"] if v["name"] == "issue-201-publisher-restrictions"
    )
    lenient = TcfConfig(min_policy_version=2, max_age_days=None)
    # purposes 1-10 consented: every mapped category granted
    assert granted_denied(tcf(value, lenient)) == (
        {"analytics", "advertising", "preferences"},
        {"social", "media"},
    )


def test_tcf_round_trip_every_field() -> None:
    value = tc_string(
        cmp_id=300,
        cmp_version=42,
        screen=7,
        language="FR",
        list_version=321,
        policy=5,
        non_standard=True,
        features=[1, 2],
        consents=[1, 3, 24],
        interests=[2, 7],
        one_treatment=True,
        country="IT",
        vendors=[1, 2, 3, 755, 1000],
        li_vendors=[5],
        restrictions=[(2, 0, [755, 756, 757]), (7, 1, [9])],
    )
    tc = parse_tc_string(value + ".IAAA.YAAAAAAAAAAA")
    assert (tc.cmp_id, tc.cmp_version, tc.consent_screen) == (300, 42, 7)
    assert (tc.consent_language, tc.publisher_cc, tc.vendor_list_version) == ("FR", "IT", 321)
    assert (tc.policy_version, tc.use_non_standard_texts, tc.purpose_one_treatment) == (
        5,
        True,
        True,
    )
    assert tc.special_feature_opt_ins == {1, 2}
    assert tc.purpose_consents == {1, 3, 24} and tc.purpose_legitimate_interests == {2, 7}
    assert tc.vendor_consents.max_id == 1000
    assert [v for v in (1, 2, 3, 4, 754, 755, 756, 999, 1000, 1001) if v in tc.vendor_consents] == [
        1,
        2,
        3,
        755,
        1000,
    ]
    assert 5 in tc.vendor_legitimate_interests and 4 not in tc.vendor_legitimate_interests
    assert [(r.purpose, r.kind, r.vendors.ranges) for r in tc.publisher_restrictions] == [
        (2, 0, ((755, 757),)),
        (7, 1, ((9, 9),)),
    ]


def test_tcf_range_encoded_vendors() -> None:
    value = tc_string(consents=range(1, 11), vendors=[3, 4, 5, 755, 900], vendor_ranges=True)
    tc = parse_tc_string(value)
    assert tc.vendor_consents.ranges == ((3, 5), (755, 755), (900, 900))
    config = TcfConfig(vendors={"advertising": frozenset({755}), "analytics": frozenset({6})})
    assert granted_denied(tcf(value, config)) == (
        {"advertising", "preferences"},
        {"analytics", "social", "media"},
    )


ACCEPT_ALL = list(range(1, 12))


@pytest.mark.parametrize(
    ("consents", "granted"),
    [
        (ACCEPT_ALL, {"analytics", "advertising", "preferences"}),
        ([], set()),
        ([2, 3, 4, 5, 6, 7, 8, 9, 10], set()),  # no purpose 1: nothing
        ([1], set()),
        ([1, 8], {"analytics"}),
        ([1, 9], {"analytics"}),
        ([1, 2, 7], set()),  # basic ads only: no personalised ads
        ([1, 2, 3, 4, 7], {"advertising"}),
        ([1, 2, 3, 7], set()),
        ([1, 5], set()),
        ([1, 5, 6], {"preferences"}),
        ([1, 10], set()),  # social and media: no TCF purpose grants them
    ],
)
def test_tcf_default_mapping(consents: list[int], granted: set[str]) -> None:
    d = tcf(tc_string(consents=consents))
    assert d.decided
    assert set(d.granted) == granted
    assert set(d.denied) == ALL - granted


def test_tcf_mapping_is_editable_and_takes_new_categories() -> None:
    categories = (*CATEGORIES, "media")
    config = TcfConfig(
        purposes={
            "advertising": PurposeRule(frozenset({1, 2, 7})),
            "social": PurposeRule(frozenset({1}), (frozenset({9, 10}),)),
        }
    )
    d = read_tcf(
        {"euconsent-v2": [tc_string(consents=[1, 2, 7, 10])]},
        config,
        now=NOW,
        categories=categories,
    )
    assert granted_denied(d) == ({"advertising", "social"}, {"analytics", "preferences", "media"})


def test_tcf_purpose_rule_rejects_empty_and_out_of_range() -> None:
    with pytest.raises(ValueError, match="at least one purpose"):
        PurposeRule()
    with pytest.raises(ValueError, match="at least one purpose"):
        PurposeRule(frozenset({1}), (frozenset(),))
    with pytest.raises(ValueError, match=r"1-24, got \[25\]"):
        PurposeRule(frozenset({25}))


def test_tcf_legitimate_interest_counts_only_where_configured() -> None:
    value = tc_string(consents=[1], interests=[1, 3, 4, 5, 6, 8])
    assert set(tcf(value).granted) == set()
    li = TcfConfig(legitimate_interest=frozenset({1, 3, 4, 5, 6, 8}))
    # 8 by legitimate interest counts; 1 and 3-6 never do (consent only in TCF v2.2)
    assert set(tcf(value, li).granted) == {"analytics"}


def test_tcf_purpose_one_treatment() -> None:
    value = tc_string(consents=[8], one_treatment=True)
    assert set(tcf(value).granted) == set()
    waived = TcfConfig(purpose_one_treatment_waives=True)
    assert set(tcf(value, waived).granted) == {"analytics"}
    assert set(tcf(tc_string(consents=[8]), waived).granted) == set()  # flag not set: no waiver


def test_tcf_publisher_restriction_denies_a_required_vendor() -> None:
    config = TcfConfig(vendors={"advertising": frozenset({755})})
    allowed = tc_string(consents=ACCEPT_ALL, vendors=[755])
    assert "advertising" in tcf(allowed, config).granted
    flat_no = tc_string(consents=ACCEPT_ALL, vendors=[755], restrictions=[(3, 0, [755])])
    assert "advertising" in tcf(flat_no, config).denied
    other_kind = tc_string(consents=ACCEPT_ALL, vendors=[755], restrictions=[(3, 1, [755])])
    assert "advertising" in tcf(other_kind, config).granted


@pytest.mark.parametrize(
    ("kwargs", "now", "note"),
    [
        ({"policy": 3}, NOW, "TcfPolicyVersion 3, expected 4 or more"),
        ({"cmp_id": 1}, NOW, "CmpId 1, expected 2 or more"),
        ({"cmp_id": 0}, NOW, "CmpId 0"),
        ({"service_specific": False}, NOW, "IsServiceSpecific is 0"),
        ({"updated": NOW - 396 * 86400}, NOW, "more than 395 days ago"),
        ({"updated": NOW + 3 * 86400}, NOW, "in the future"),
        ({"version": 1}, NOW, "Version is 1, expected 2"),
        ({"version": 3}, NOW, "Version is 3, expected 2"),
        ({"language": "E["}, NOW, "ConsentLanguage has a letter code 26"),
    ],
)
def test_tcf_invalid_strings_are_no_decision(kwargs: dict[str, Any], now: float, note: str) -> None:
    d = tcf(tc_string(consents=ACCEPT_ALL, **kwargs), now=now)
    assert not d.decided
    assert note in d.note


def test_tcf_age_limit_is_configurable() -> None:
    old = tc_string(consents=ACCEPT_ALL, updated=NOW - 500 * 86400)
    assert not tcf(old).decided
    assert tcf(old, TcfConfig(max_age_days=None)).decided
    assert tcf(tc_string(consents=ACCEPT_ALL, updated=NOW - 394 * 86400)).decided


def test_tcf_standard_base64_and_padding_are_tolerated() -> None:
    value = tc_string(consents=ACCEPT_ALL, vendors=[63, 62, 61])  # likely to contain - or _
    std = value.replace("-", "+").replace("_", "/")
    assert tcf(std + "==").granted == tcf(value).granted != frozenset()


def test_tcf_truncated_anywhere_is_no_decision() -> None:
    value = tc_string(consents=ACCEPT_ALL, vendors=[2, 755], restrictions=[(1, 0, [9, 10])])
    for cut in range(1, len(value) - 1):
        d = tcf(value[:cut])
        assert not d.decided, cut
        assert "truncated" in d.note or "empty" in d.note, (cut, d.note)


@pytest.mark.parametrize(
    ("value", "note"),
    [
        ("", "empty value"),
        ("C" + "A" * 10 + "*", "character 11 is not base64url"),
        ("CO\udcffAAAA", "character 2 is not base64url"),
        ("CÖAAAAAAAAAAAAAA", "character 1 is not base64url"),
        ("%43%4F", "character 0 is not base64url"),
        ("C" + "A" * (MAX_VALUE + 10), f"expected at most {MAX_VALUE}"),
        (".IAAA", "empty"),
    ],
)
def test_tcf_hostile_values(value: str, note: str) -> None:
    d = tcf(value)
    assert not d.decided and note in d.note


def test_tcf_range_entries_outside_max_vendor_id_are_unreadable() -> None:
    good = tc_string(consents=ACCEPT_ALL, vendors=[5], vendor_ranges=True)
    tc = parse_tc_string(good)
    assert 5 in tc.vendor_consents
    # the same string with MaxVendorId lowered to 4 (bits 213..228): entry 5-5 is outside
    bits = "".join(format(B64.index(c), "06b") for c in good)
    bad = b64(bits[:213] + u(4, 16) + bits[229:])
    d = tcf(bad)
    assert not d.decided and "entry 5-5 outside 1-4" in d.note


def test_tcf_two_different_cookies_are_ambiguous() -> None:
    a, b = tc_string(consents=ACCEPT_ALL), tc_string(consents=[])
    d = read_tcf({"euconsent-v2": [a, b]}, TcfConfig(), now=NOW)
    assert not d.decided and "2 different values" in d.note
    assert read_tcf({"euconsent-v2": [a, a]}, TcfConfig(), now=NOW).decided


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    consents=st.sets(st.integers(1, 24)),
    interests=st.sets(st.integers(1, 24)),
    vendors=st.lists(st.integers(1, 3000), max_size=40),
    as_ranges=st.booleans(),
    cmp_id=st.integers(2, 4095),
    policy=st.integers(4, 63),
)
def test_tcf_decodes_what_the_independent_encoder_wrote(
    consents: set[int],
    interests: set[int],
    vendors: list[int],
    as_ranges: bool,
    cmp_id: int,
    policy: int,
) -> None:
    vendors = sorted(set(vendors))
    tc = parse_tc_string(
        tc_string(
            consents=consents,
            interests=interests,
            vendors=vendors,
            vendor_ranges=as_ranges,
            cmp_id=cmp_id,
            policy=policy,
        )
    )
    assert tc.purpose_consents == consents and tc.purpose_legitimate_interests == interests
    assert tc.cmp_id == cmp_id and tc.policy_version == policy
    assert [v for v in range(1, 3002) if v in tc.vendor_consents] == vendors


# ---------------------------------------------------------------------------------------
# GPP and US Privacy
# ---------------------------------------------------------------------------------------


def gpp(value: str, sid: str | None = None, config: GppConfig | None = None) -> SourceDecision:
    cookies = {"__gpp": [value]}
    if sid is not None:
        cookies["__gpp_sid"] = [sid]
    return read_gpp(cookies, config or GppConfig())


OUT = {"advertising", "social"}


@pytest.mark.parametrize("vector", VECTORS["gpp"], ids=lambda v: v["name"])
def test_gpp_published_vectors(vector: dict[str, Any]) -> None:
    d = gpp(vector["value"], vector.get("sid"))
    well_formed(d)
    if "error" in vector:
        with pytest.raises(ValueError, match=vector["error"]):
            parse_gpp(vector["value"])
        assert not d.decided and vector["error"] in d.note
        return
    assert sorted(parse_gpp(vector["value"])) == vector["sections"]
    expected = vector["decision"]
    if expected is None:
        assert not d.decided
    else:
        assert granted_denied(d) == ((OUT, set()) if expected == "granted" else (set(), OUT))


@pytest.mark.parametrize("vector", VECTORS["gpp_state_sections"], ids=lambda v: v["name"])
def test_gpp_state_section_vectors_opt_out(vector: dict[str, Any]) -> None:
    signal = section_signal(vector["id"], vector["section"])
    assert signal.section == vector["name"]
    assert signal.opted_out is True and "SaleOptOut" in signal.reason
    assert "MspaServiceProviderMode" not in signal.reason  # it is 2 in these vectors
    assert granted_denied(gpp(gpp_string([(vector["id"], vector["section"])]))) == (set(), OUT)


def test_gpp_all_sections_default_with_sid() -> None:
    value = next(v["value"] for v in VECTORS["gpp"] if v["name"] == "all-sections-default")
    assert granted_denied(gpp(value, "7,8")) == (OUT, set())
    assert "ustn not read" in gpp(value, "22").note


@pytest.mark.parametrize("section", sorted(US_FIELDS))
@pytest.mark.parametrize("field", [*OPT_OUTS, "MspaServiceProviderMode", "Gpc"])
def test_gpp_each_opt_out_denies(section: int, field: str) -> None:
    names = {n for n, _ in US_FIELDS[section]}
    if field == "Gpc":
        if section in (9, 11):  # Virginia and Utah have no GPC sub-section
            return
        value = us_section(section, gpc=True)
    elif field not in names:
        return
    else:
        value = us_section(section, {field: 1})
    d = gpp(gpp_string([(section, value)]))
    assert granted_denied(d) == (set(), OUT), d.note
    assert field in d.note


@pytest.mark.parametrize("section", sorted(US_FIELDS))
def test_gpp_not_opted_out_grants(section: int) -> None:
    values = {n: 2 for n in OPT_OUTS if n in {f for f, _ in US_FIELDS[section]}}
    value = us_section(section, values, gpc=None if section in (9, 11) else False)
    d = gpp(gpp_string([(section, value)]))
    assert granted_denied(d) == (OUT, set()), d.note
    off = GppConfig(grant_when_not_opted_out=False)
    assert not gpp(gpp_string([(section, value)]), config=off).decided


def test_gpp_any_section_in_force_that_opts_out_denies() -> None:
    value = gpp_string(
        [
            (7, us_section(7, {"SaleOptOut": 2})),
            (8, us_section(8, {"SharingOptOut": 1})),
            (9, us_section(9)),
        ]
    )
    assert granted_denied(gpp(value)) == (set(), OUT)
    assert granted_denied(gpp(value, "7")) == (OUT, set())  # California not in force
    assert granted_denied(gpp(value, "7,8")) == (set(), OUT)
    assert granted_denied(gpp(value, "[8]")) == (set(), OUT)


@pytest.mark.parametrize(
    ("sid", "note"),
    [
        ("-1", "GPP does not apply"),
        ("", "empty value"),
        ("seven", "expected section ids separated by commas"),
        ("10", "section 10 in force but not in the string"),
        ("7,,8", "expected section ids"),
    ],
)
def test_gpp_sid_problems_are_no_decision(sid: str, note: str) -> None:
    d = gpp(gpp_string([(7, us_section(7, {"SaleOptOut": 1}))]), sid)
    assert not d.decided and note in d.note


def test_gpp_opt_out_categories_are_configurable() -> None:
    config = GppConfig(opt_out_categories=("advertising",))
    d = gpp(gpp_string([(7, us_section(7, {"SaleOptOut": 1}))]), config=config)
    assert granted_denied(d) == (set(), {"advertising"})


@pytest.mark.parametrize(
    ("value", "note"),
    [
        ("DBABLA~" + us_section(7, {"SaleOptOut": 3}), "SaleOptOut is 3"),
        ("DBABLA~" + us_section(7)[:9], "truncated"),
        ("DBABLA~D" + us_section(7)[1:], "Version 3"),
        ("DBABLA~" + us_section(7) + ".Q*", "not base64url"),
        ("CPXxRfAPXxRfAAfKABENB-CgAAAAAAAAAAYgAAAAAAAA", "header type 2"),
        ("DCABM~1YNN", "version 2"),
        ("DBABLA", "header lists 1 sections, string has 0"),
        ("DBABLA~x~y", "header lists 1 sections, string has 2"),
        ("DBAB" + b64("0" + "0" * 30 + "11"), "Fibonacci code longer than 24 bits"),
        ("DBAB" + b64("0" + fibonacci(65) + "00"), "at most 64"),
        ("D", "needs 6 bits"),
        ("DB~1YNN", "SectionIds count needs 12 bits"),
        ("DBABTA~1XNN", "expected version 1"),
        ("%E2%28%A1", "not UTF-8"),
    ],
)
def test_gpp_hostile_values(value: str, note: str) -> None:
    d = gpp(value)
    well_formed(d)
    assert not d.decided
    assert note in d.note, d.note


def test_gpp_percent_encoded_cookie() -> None:
    value = gpp_string([(6, "1YNN")]).replace("~", "%7E")
    assert granted_denied(gpp(value)) == (OUT, set())


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(sorted(US_FIELDS)),
            st.integers(0, 2),
            st.integers(0, 2),
            st.integers(0, 2),
            st.integers(0, 2),
            st.booleans(),
        ),
        min_size=1,
        max_size=6,
        unique_by=lambda t: t[0],
    )
)
def test_gpp_decision_matches_a_model(rows: list[tuple[int, int, int, int, int, bool]]) -> None:
    rows.sort()
    sections, opted = [], False
    for section, sale, share, target, provider, gpc in rows:
        names = {n for n, _ in US_FIELDS[section]}
        values = {"SaleOptOut": sale, "SharingOptOut": share, "TargetedAdvertisingOptOut": target}
        values = {k: v for k, v in values.items() if k in names}
        has_gpc = section not in (9, 11)
        fields = {**values, "MspaServiceProviderMode": provider}
        sections.append((section, us_section(section, fields, gpc=gpc if has_gpc else None)))
        opted = opted or 1 in values.values() or provider == 1 or (gpc and has_gpc)
    d = gpp(gpp_string(sections))
    assert granted_denied(d) == ((set(), OUT) if opted else (OUT, set()))


@pytest.mark.parametrize("vector", VECTORS["usprivacy"], ids=lambda v: v["value"])
def test_usprivacy_published_examples(vector: dict[str, Any]) -> None:
    assert parse_usprivacy(vector["value"]) is vector["opted_out"]
    d = read_usprivacy({"usprivacy": [vector["value"]]}, UsPrivacyConfig())
    if vector["opted_out"] is None:
        assert not d.decided and "not applicable" in d.note
    elif vector["opted_out"]:
        assert granted_denied(d) == (set(), OUT)
    else:
        assert granted_denied(d) == (OUT, set())


@pytest.mark.parametrize(
    ("cookies", "expected"),
    [
        ({"us_privacy": ["1YYY"]}, (set(), OUT)),
        ({"usprivacy": ["1ynn"]}, (OUT, set())),
        ({"usprivacy": ["1YNN"], "us_privacy": ["1YNN"]}, (OUT, set())),
        ({"usprivacy": ["1YNN"], "us_privacy": ["1YYN"]}, None),  # conflicting
        ({"usprivacy": ["2YNN"]}, None),
        ({"usprivacy": ["1YN"]}, None),
        ({"usprivacy": ["1YNNN"]}, None),
        ({"usprivacy": ["1Y?N"]}, None),
        ({"usprivacy": ['"1YNN"']}, (OUT, set())),
        ({}, None),
    ],
)
def test_usprivacy_table(
    cookies: dict[str, list[str]], expected: tuple[set[str], set[str]] | None
) -> None:
    d = read_usprivacy(cookies, UsPrivacyConfig())
    well_formed(d)
    if expected is None:
        assert not d.decided
    else:
        assert granted_denied(d) == expected


# ---------------------------------------------------------------------------------------
# OneTrust, Cookiebot, Klaro, cookieconsent
# ---------------------------------------------------------------------------------------

# OptanonConsent as OneTrust writes it (ids made up): a query string, groups %-encoded.
ONETRUST = (
    "isGpcEnabled=0&datestamp=Mon+Mar+02+2026+10%3A12%3A30+GMT%2B0100+(Central+European+Standard+Time)"
    "&version=202401.1.0&browserGpcFlag=0&isIABGlobal=false&hosts=&consentId=00000000-1111-2222-3333-444444444444"
    "&interactionCount=1&isAnonUser=1&landingPath=NotLandingPage"
    "&groups={groups}&geolocation=DE%3BBE&AwaitingReconsent=false"
)


def onetrust(groups: str, config: OneTrustConfig | None = None, **more: str) -> SourceDecision:
    cookies = {"OptanonConsent": [ONETRUST.format(groups=groups)]}
    cookies.update({k: [v] for k, v in more.items()})
    return read_onetrust(cookies, config or OneTrustConfig())


@pytest.mark.parametrize(
    ("groups", "granted"),
    [
        ("C0001%3A1%2CC0002%3A1%2CC0003%3A1%2CC0004%3A1%2CC0005%3A1", ALL - {"media"}),
        ("C0001%3A1%2CC0002%3A0%2CC0003%3A0%2CC0004%3A0%2CC0005%3A0", set()),
        ("C0001%3A1%2CC0002%3A1%2CC0003%3A0%2CC0004%3A0", {"analytics"}),
        ("C0001:1,C0003:1,C0004:1", {"preferences", "advertising"}),  # not %-encoded
        ("C0001%3A1%2CC0004%3A1%2CSTACK42%3A1%2CV2STACK42%3A0", {"advertising"}),
        ("C0001%3A1", set()),
    ],
)
def test_onetrust_groups(groups: str, granted: set[str]) -> None:
    d = onetrust(groups)
    assert d.decided and set(d.granted) == granted and set(d.denied) == ALL - granted


@pytest.mark.parametrize(
    ("groups", "note"),
    [
        ("", "groups are not id:0|1"),
        ("C0001%3A2", "groups are not id:0|1"),
        ("C0001%3A1%2C", "groups are not id:0|1"),
        ("C0002%3A1%2CC0002%3A0", "group C0002 given twice"),
        ("C0001%3A1%FF", "not UTF-8"),
        ("C0001%3A1%2CC00%3C2%3A1", "groups are not id:0|1"),
    ],
)
def test_onetrust_bad_groups(groups: str, note: str) -> None:
    d = onetrust(groups)
    assert not d.decided and note in d.note


def test_onetrust_needs_groups_and_interaction_setting() -> None:
    assert (
        "expected one groups parameter"
        in read_onetrust({"OptanonConsent": ["isGpcEnabled=0&version=6.1"]}, OneTrustConfig()).note
    )
    assert (
        "expected one groups"
        in read_onetrust(
            {"OptanonConsent": ["groups=C0002:1&groups=C0002:1"]}, OneTrustConfig()
        ).note
    )
    fresh = {"OptanonConsent": ["groups=C0001%3A1%2CC0002%3A1&interactionCount=0"]}
    assert read_onetrust(fresh, OneTrustConfig()).granted == {"analytics"}
    strict = OneTrustConfig(needs_interaction=True)
    assert not read_onetrust(fresh, strict).decided
    closed = {**fresh, "OptanonAlertBoxClosed": ["2026-03-02T09:12:30.113Z"]}
    assert read_onetrust(closed, strict).granted == {"analytics"}
    assert onetrust("C0002%3A1", strict).granted == {"analytics"}  # interactionCount=1


def test_onetrust_custom_groups() -> None:
    config = OneTrustConfig(groups={"SPD_BG": ("social",), "C0002": ("analytics", "media")})
    d = read_onetrust(
        {"OptanonConsent": [ONETRUST.format(groups="SPD_BG%3A1%2CC0002%3A1")]},
        config,
        categories=(*CATEGORIES, "media"),
    )
    assert granted_denied(d) == ({"social", "analytics", "media"}, {"advertising", "preferences"})


def cookiebot_value(**members: str) -> str:
    body = "%2C".join(f"{k}:{v}" for k, v in members.items())
    return "{" + body + "}"


COOKIEBOT = {
    "stamp": "%27dGhpcyBpcyBub3QgYSByZWFsIHN0YW1wIGF0IGFsbA+/=%27",
    "necessary": "true",
    "preferences": "false",
    "statistics": "true",
    "marketing": "false",
    "method": "%27explicit%27",
    "ver": "1",
    "utc": "1772442750123",
    "region": "%27de%27",
}


@pytest.mark.parametrize(
    ("changes", "granted"),
    [
        ({}, {"analytics"}),
        ({"preferences": "true", "marketing": "true"}, ALL),
        ({"statistics": "false"}, set()),
        ({"iab2": "%27CQfoo-bar_baz%27", "gacm": "%27%27", "ver": "3"}, {"analytics"}),
        (
            {"method": "%27implied%27", "marketing": "true"},
            {"analytics", "advertising", "social", "media"},
        ),
    ],
)
def test_cookiebot_values(changes: dict[str, str], granted: set[str]) -> None:
    value = cookiebot_value(**{**COOKIEBOT, **changes})
    d = read_cookiebot({"CookieConsent": [value]}, CookiebotConfig())
    assert d.decided and set(d.granted) == granted and set(d.denied) == ALL - granted


def test_cookiebot_literal_forms() -> None:
    assert parse_cookiebot(
        "{stamp:'a+b/c==',necessary:true,preferences:false,ver:1,utc:1.5,x:null,y:\"q\"}"
    ) == {
        "stamp": "a+b/c==",
        "necessary": True,
        "preferences": False,
        "ver": 1,
        "utc": 1.5,
        "x": None,
        "y": "q",
    }
    assert parse_cookiebot("-1") is None
    assert parse_cookiebot("%7B%20necessary%20:%20true%20%7D") == {"necessary": True}


def test_cookiebot_marketing_grants_media_when_the_category_exists() -> None:
    value = cookiebot_value(**{**COOKIEBOT, "marketing": "true"})
    categories = (*CATEGORIES, "media")
    d = read_cookiebot({"CookieConsent": [value]}, CookiebotConfig(), categories=categories)
    assert set(d.granted) == {"analytics", "advertising", "social", "media"}


def test_cookiebot_minus_one() -> None:
    d = read_cookiebot({"CookieConsent": ["-1"]}, CookiebotConfig())
    assert not d.decided and "-1" in d.note
    d = read_cookiebot({"CookieConsent": ["-1"]}, CookiebotConfig(not_applicable_grants=True))
    assert set(d.granted) == ALL


@pytest.mark.parametrize(
    ("value", "note"),
    [
        ("{necessary:true%2Cmarketing:'yes'}", "marketing is not true or false"),
        ("{necessary:true%2Cstatistics:1}", "statistics is not true or false"),
        ("{stamp:'x'}", "none of its categories"),
        ("{}", "none of its categories"),
        ("{marketing:true%2Cmarketing:false}", "marketing given twice"),
        ("{marketing:{a:true}}", "unreadable member at character 1"),
        ("{marketing:true,,}", "unreadable member"),
        ("{marketing:true statistics:true}", "expected ','"),
        ("{marketing:tru}", "unreadable member"),
        ("{'marketing':true}", "unreadable member"),
        ("marketing:true", "expected an object literal"),
        ("{stamp:'unterminated}", "unreadable member"),
        ("%7B%FF%7D", "not UTF-8"),
        ("0", "expected an object literal"),
    ],
)
def test_cookiebot_hostile(value: str, note: str) -> None:
    d = read_cookiebot({"CookieConsent": [value]}, CookiebotConfig())
    assert not d.decided and note in d.note, d.note


KLARO = KlaroConfig(
    services={
        "google-analytics": ("analytics",),
        "matomo": ("analytics",),
        "google-ads": ("advertising",),
        "youtube": ("media", "social"),
    }
)


@pytest.mark.parametrize(
    ("value", "granted"),
    [
        (
            '{"google-analytics":true,"google-ads":false,"youtube":true}',
            {"analytics", "social", "media"},
        ),
        ('{"google-analytics":true,"matomo":false}', set()),  # one refused: not granted
        ('{"matomo":true}', {"analytics"}),
        ("%7B%22google-ads%22%3Atrue%7D", {"advertising"}),  # %-encoded
        ('{"unknown":true}', set()),
    ],
)
def test_klaro(value: str, granted: set[str]) -> None:
    d = read_klaro({"klaro": [value]}, KLARO)
    assert d.decided and set(d.granted) == granted and set(d.denied) == ALL - granted


def test_klaro_default_mapping_denies_everything() -> None:
    d = read_klaro({"klaro": ['{"google-analytics":true}']}, KlaroConfig())
    assert granted_denied(d) == (set(), ALL)


@pytest.mark.parametrize(
    ("value", "note"),
    [
        ('{"matomo":"yes"}', "expected service names -> true/false"),
        ('{"matomo":1}', "expected service names -> true/false"),
        ("{}", "expected service names"),
        ("[true]", "expected a JSON object"),
        ('"x"', "expected a JSON object"),
        ('{"matomo":true', "not JSON"),
        ('{"a":' + "[" * 2000 + "]" * 2000 + "}", "nested too deeply"),
        ("%7B%22a%22%3A%FF%7D", "not UTF-8"),
    ],
)
def test_klaro_hostile(value: str, note: str) -> None:
    d = read_klaro({"klaro": [value]}, KLARO)
    assert not d.decided and note in d.note, d.note


def test_klaro_duplicate_keys_follow_json() -> None:
    # JSON keeps the last of two equal keys; so does the browser's JSON.parse that Klaro uses
    d = read_klaro({"klaro": ['{"matomo":true,"matomo":false}']}, KLARO)
    assert granted_denied(d) == (set(), ALL)


CC_V3 = {
    "categories": ["necessary", "analytics"],
    "revision": 0,
    "data": None,
    "consentTimestamp": "2026-03-02T09:12:30.113Z",
    "consentId": "00000000-1111-2222-3333-444444444444",
    "services": {"necessary": [], "analytics": ["ga"]},
    "languageCode": "en",
    "lastConsentTimestamp": "2026-03-02T09:12:30.113Z",
    "expirationTime": 1788000000000,
}
CC_V2 = {
    "level": ["necessary", "analytics", "targeting"],
    "revision": 0,
    "data": None,
    "rfc_cookie": False,
}


@pytest.mark.parametrize(
    ("data", "granted", "note"),
    [
        (CC_V3, {"analytics"}, "v3"),
        ({**CC_V3, "categories": ["necessary"]}, set(), "v3"),
        (
            {**CC_V3, "categories": ["necessary", "ads", "functionality"]},
            {"advertising", "preferences"},
            "v3",
        ),
        ({**CC_V3, "categories": ["marketing", "social"]}, {"advertising", "social"}, "v3"),
        # Embedded content: only a category named media grants it.
        ({**CC_V3, "categories": ["media", "analytics"]}, {"media", "analytics"}, "v3"),
        (CC_V2, {"analytics", "advertising"}, "v2"),
    ],
)
def test_cookieconsent(data: dict[str, Any], granted: set[str], note: str) -> None:
    raw = json.dumps(data, separators=(",", ":"))
    for value in (raw, quote(raw, safe="")):  # as written, and %-encoded (v2's rfc_cookie)
        d = read_cookieconsent({"cc_cookie": [value]}, CookieConsentConfig())
        assert d.decided and set(d.granted) == granted and d.note == note


def test_cookieconsent_revision() -> None:
    value = json.dumps({**CC_V3, "revision": 2})
    assert not read_cookieconsent({"cc_cookie": [value]}, CookieConsentConfig(revision=3)).decided
    assert read_cookieconsent({"cc_cookie": [value]}, CookieConsentConfig(revision=2)).decided
    assert read_cookieconsent({"cc_cookie": [value]}, CookieConsentConfig()).decided


@pytest.mark.parametrize(
    "data",
    [
        {**CC_V3, "categories": "analytics"},
        {**CC_V3, "categories": ["analytics", 1]},
        {**CC_V3, "categories": None},
        {"revision": 0},
        {"level": {"analytics": True}},
    ],
)
def test_cookieconsent_wrong_types(data: dict[str, Any]) -> None:
    d = read_cookieconsent({"cc_cookie": [json.dumps(data)]}, CookieConsentConfig())
    assert not d.decided and "expected a list of categories" in d.note


# ---------------------------------------------------------------------------------------
# Every reader: never raises, bounded work
# ---------------------------------------------------------------------------------------

COOKIE_NAMES = sorted(ReadersConfig().cookie_names)


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(COOKIE_NAMES),
        st.lists(
            st.one_of(
                st.text(max_size=200),
                st.text(alphabet=B64 + "~.%,:{}[]\"'-", max_size=300),
                st.sampled_from(
                    [
                        "-1",
                        "1YNN",
                        "DBABLA~CVVVkkkkkpFY.YA",
                        '{"categories":["analytics"]}',
                        "groups=C0002:1",
                        "{marketing:true}",
                    ]
                ),
            ),
            min_size=1,
            max_size=2,
        ),
    )
)
def test_no_reader_raises_on_any_cookie(cookies: dict[str, list[str]]) -> None:
    config = ReadersConfig()
    for name, reader in READERS.items():
        d = reader(cookies, config, NOW)
        assert d.source == name
        well_formed(d)


@settings(max_examples=200, deadline=None)
@given(st.data())
def test_mutated_valid_strings_never_raise(data: st.DataObject) -> None:
    samples = {
        "euconsent-v2": tc_string(
            consents=ACCEPT_ALL, vendors=[1, 755], restrictions=[(1, 0, [2])]
        ),
        "__gpp": gpp_string([(7, us_section(7, gpc=True)), (8, us_section(8, gpc=False))]),
        "CookieConsent": cookiebot_value(**COOKIEBOT),
        "OptanonConsent": ONETRUST.format(groups="C0001%3A1%2CC0002%3A1"),
        "cc_cookie": json.dumps(CC_V3),
    }
    name = data.draw(st.sampled_from(sorted(samples)))
    value = samples[name]
    i = data.draw(st.integers(0, len(value)))
    j = data.draw(st.integers(i, len(value)))
    insert = data.draw(st.text(max_size=5))
    mutated = value[:i] + insert + value[j:]
    config = ReadersConfig()
    for reader in READERS.values():
        well_formed(reader({name: [mutated]}, config, NOW))


@pytest.mark.parametrize("name", COOKIE_NAMES)
def test_huge_values_are_refused_before_any_work(name: str) -> None:
    huge = "{" + "A" * 1_000_000
    cookies = {name: [huge]}
    if name == "__gpp_sid":  # read only along with a GPP string
        cookies["__gpp"] = [gpp_string([(6, "1YNN")])]
    if name == "OptanonAlertBoxClosed":  # its presence is all that counts
        return
    config = ReadersConfig()
    notes = [reader(cookies, config, NOW) for reader in READERS.values()]
    assert not any(d.decided for d in notes)
    refused = [d for d in notes if f"expected at most {MAX_VALUE}" in d.note]
    assert len(refused) == 1, [d.note for d in notes]


def test_largest_allowed_values_are_read_quickly() -> None:
    # A TC string of the largest size a cookie holds: a 24k-bit vendor bitfield, every
    # other vendor consented (12k runs).
    value = tc_string(consents=ACCEPT_ALL, vendors=list(range(1, MAX_VALUE * 6 - 300, 2)))
    assert MAX_VALUE - 10 < len(value) <= MAX_VALUE
    start = time.perf_counter()
    for _ in range(10):
        assert tcf(value).decided
    # about 10 ms on an idle core; the bound only catches work growing out of proportion
    assert time.perf_counter() - start < 5.0


def test_cookie_jar_keeps_wanted_names_within_a_cap() -> None:
    header = "; ".join(f"c{i}=v{i}" for i in range(MAX_PAIRS + 50)) + "; usprivacy=1YNN"
    assert "usprivacy" not in cookie_jar([header])  # beyond the cap
    assert cookie_jar(["a=1; usprivacy=1YNN;; =x; b", "usprivacy=1YYN"], {"usprivacy"}) == {
        "usprivacy": ["1YNN", "1YYN"]
    }


# ---------------------------------------------------------------------------------------
# The ordered sources
# ---------------------------------------------------------------------------------------

TCF_ALL = tc_string(consents=ACCEPT_ALL)
OT_NONE = ONETRUST.format(groups="C0001%3A1%2CC0002%3A0")


def test_first_source_with_a_decision_wins() -> None:
    cookies = {"euconsent-v2": [TCF_ALL], "OptanonConsent": [OT_NONE]}
    reading = read_sources(["tcf", "onetrust"], cookies, ReadersConfig(), now=NOW)
    assert reading.source == "tcf" and len(reading.tried) == 1
    reading = read_sources(["onetrust", "tcf"], cookies, ReadersConfig(), now=NOW)
    assert reading.source == "onetrust" and reading.decision is not None
    assert set(reading.decision.granted) == set()


def test_sources_without_a_decision_are_recorded() -> None:
    cookies = {"euconsent-v2": ["garbage!"], "OptanonConsent": [OT_NONE]}
    reading = read_sources(["own", "tcf", "gpp", "onetrust"], cookies, ReadersConfig(), now=NOW)
    assert reading.source == "onetrust"
    assert [t.source for t in reading.tried] == ["own", "tcf", "gpp", "onetrust"]
    assert [t.decided for t in reading.tried] == [False, False, False, True]
    assert "not base64url" in reading.tried[1].note and "no cookie" in reading.tried[2].note


def test_own_is_a_callback() -> None:
    own = SourceDecision(
        "own", granted=frozenset({"analytics"}), denied=frozenset(ALL - {"analytics"})
    )
    cookies = {"euconsent-v2": [TCF_ALL]}
    reading = read_sources(["own", "tcf"], cookies, ReadersConfig(), now=NOW, own=lambda: own)
    assert reading.decision is own
    undecided = SourceDecision("own", note="no consent cookie")
    reading = read_sources(["own", "tcf"], cookies, ReadersConfig(), now=NOW, own=lambda: undecided)
    assert reading.source == "tcf"


def test_nothing_decides() -> None:
    reading = read_sources(["own", "tcf", "cookiebot"], {}, ReadersConfig(), now=NOW)
    assert reading.decision is None and reading.source is None
    assert len(reading.tried) == 3


def test_read_headers_from_cookie_header_values() -> None:
    headers = [f"session=abc; euconsent-v2={TCF_ALL}", "usprivacy=1YYN"]
    reading = read_headers(["usprivacy", "tcf"], headers, ReadersConfig(), now=NOW)
    assert reading.source == "usprivacy" and reading.decision is not None
    assert set(reading.decision.denied) == OUT


def test_categories_extend_everywhere() -> None:
    config = ReadersConfig(categories=(*CATEGORIES, "media"))
    cookies = {"CookieConsent": [cookiebot_value(**{**COOKIEBOT, "marketing": "true"})]}
    reading = read_sources(["cookiebot"], cookies, config, now=NOW)
    assert reading.decision is not None and "media" in reading.decision.granted
    reading = read_sources(["tcf"], {"euconsent-v2": [TCF_ALL]}, config, now=NOW)
    assert reading.decision is not None and "media" in reading.decision.denied


def test_a_failing_reader_is_no_decision(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(cookies: object, config: object, now: float) -> SourceDecision:
        raise RuntimeError("bug")

    monkeypatch.setitem(READERS, "klaro", broken)
    reading = read_sources(["klaro", "tcf"], {"euconsent-v2": [TCF_ALL]}, ReadersConfig(), now=NOW)
    assert reading.source == "tcf"
    assert reading.tried[0].note == "reader failed: RuntimeError"


def test_check_sources() -> None:
    assert check_sources(["own", "tcf", "gpp"]) == ("own", "tcf", "gpp")
    with pytest.raises(ValueError, match="'oneTrust': expected one of own, tcf, gpp"):
        check_sources(["oneTrust"])
    with pytest.raises(ValueError, match="'tcf' is listed twice"):
        check_sources(["tcf", "tcf"])
    with pytest.raises(ValueError, match="at least one"):
        check_sources([])


def test_configs_are_frozen_records() -> None:
    config = ReadersConfig()
    with pytest.raises(AttributeError):
        config.tcf.min_policy_version = 2  # type: ignore[misc]
    with pytest.raises(TypeError):
        config.onetrust.groups["C0009"] = ("social",)  # type: ignore[index]
    assert replace(config.tcf, min_policy_version=2).min_policy_version == 2
