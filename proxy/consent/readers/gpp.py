"""US opt-out signals: the IAB US Privacy string (``usprivacy`` / ``us_privacy``) and
the IAB Global Privacy Platform string (``__gpp`` with ``__gpp_sid``).

Both are opt-out signals, so they speak only of the categories an opt-out of sale,
sharing or targeted advertising governs (``opt_out_categories``, default advertising
and social: the same two that ``Sec-GPC`` denies, since a GPC signal is the browser's
form of the same opt-out). Other categories are not stated and the caller's default
applies to them. An opt-out denies them; a signal that says the visitor did not opt
out grants them unless ``grant_when_not_opted_out`` is off (then such a signal is no
decision and the next source is asked).

US Privacy (IAB "US Privacy String" v1): four characters, version ``1``, notice,
opt-out of sale, LSPA covered, each ``Y``, ``N`` or ``-``. A ``Y`` opt-out denies, ``N``
grants, ``-`` (``1---``: not applicable) is no decision.

GPP (IAB "Global Privacy Platform String" v1): a header (type 3, version 1, section ids
as a Fibonacci range) and one '~'-separated string per section. The US National
section (7) and the state sections 8-21 and 23 are read; their core segment's
SaleOptOut, SharingOptOut and TargetedAdvertisingOptOut (1 opted out, 2 did not,
0 not applicable), MspaServiceProviderMode (1: the publisher neither sells, shares nor
targets ads) and the GPC sub-section are used. Any opt-out, the service-provider mode
or a GPC flag in a section in force denies. The uspv1 section (6) reads as US Privacy.
The EU and Canadian TCF sections (2, 5) are skipped here: ``euconsent-v2`` is the
``tcf`` source. Sections 22 and 24-27 (Tennessee, Maryland, Indiana, Kentucky, Rhode
Island) are not read: their published layouts and the IAB's reference implementation
disagree, so while one of them is in force and nothing denies, GPP is no decision.

Sections in force are those ``__gpp_sid`` lists (comma-separated ids; ``-1`` or none
readable: GPP does not apply, no decision); without that cookie, every section present.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from proxy.consent.readers.base import (
    CATEGORIES,
    Cookies,
    ReadError,
    SourceDecision,
    decision,
    no_decision,
    percent_decoded,
    single_value,
)
from proxy.consent.readers.bits import BitReader, decode_bits

GPP = "gpp"
USPRIVACY = "usprivacy"
MAX_SECTION_ID = 64
_SKIPPED = {2: "tcfeuv2", 5: "tcfcav1"}


@dataclass(frozen=True)
class OptOutConfig:
    """What an opt-out signal decides, shared by ``usprivacy`` and ``gpp``."""

    opt_out_categories: tuple[str, ...] = ("advertising", "social")
    grant_when_not_opted_out: bool = True


@dataclass(frozen=True)
class UsPrivacyConfig(OptOutConfig):
    cookies: tuple[str, ...] = ("usprivacy", "us_privacy")


@dataclass(frozen=True)
class GppConfig(OptOutConfig):
    cookie: str = "__gpp"
    sid_cookie: str = "__gpp_sid"


@dataclass(frozen=True)
class UsSection:
    """Where a US section's fields lie: bit offsets of the three opt-outs (None where
    the section has no such field) and of MspaServiceProviderMode, and the core
    segment's length in bits."""

    name: str
    sale: int
    sharing: int | None
    targeted: int | None
    provider_mode: int
    length: int
    versions: tuple[int, ...] = (1,)


# Offsets from the IAB GPP section specifications, checked against the IAB reference
# implementation (iabgpp-es) where both agree.
US_SECTIONS: dict[int, UsSection] = {
    7: UsSection("usnat", 18, 20, 22, 68, 70, (1, 2)),  # v1 is shorter: see _usnat_layout
    8: UsSection("usca", 12, 14, None, 44, 46),
    9: UsSection("usva", 12, None, 14, 38, 40),
    10: UsSection("usco", 12, None, 14, 36, 38),
    11: UsSection("usut", 14, None, 16, 40, 42),
    12: UsSection("usct", 12, None, 14, 42, 44),
    13: UsSection("usfl", 12, None, 14, 44, 46),
    14: UsSection("usmt", 12, None, 14, 44, 46),
    15: UsSection("usor", 12, None, 14, 50, 52),
    16: UsSection("ustx", 12, None, 14, 40, 42),
    17: UsSection("usde", 12, None, 14, 50, 52),
    18: UsSection("usia", 14, None, 16, 40, 42),
    19: UsSection("usne", 12, None, 14, 40, 42),
    20: UsSection("usnh", 12, None, 14, 44, 46),
    21: UsSection("usnj", 12, None, 14, 52, 54),
    23: UsSection("usmn", 12, None, 14, 40, 42),
}
_UNREAD_US = {22: "ustn", 24: "usmd", 25: "usin", 26: "usky", 27: "usri"}


def parse_usprivacy(value: str, where: str = "usprivacy") -> bool | None:
    """Whether the visitor opted out of sale (None: not applicable)."""
    if len(value) != 4 or value[0] != "1" or any(c not in "YN-" for c in value[1:].upper()):
        raise ReadError(f"{where}: expected version 1 and three of Y, N or -")
    flag = value[2].upper()
    return None if flag == "-" else flag == "Y"


def read_usprivacy(
    cookies: Cookies, config: UsPrivacyConfig, *, categories: tuple[str, ...] = CATEGORIES
) -> SourceDecision:
    """The decision of the US Privacy string. Never raises."""
    try:
        opted_out = parse_usprivacy(single_value(cookies, config.cookies), config.cookies[0])
    except ReadError as err:
        return no_decision(USPRIVACY, str(err))
    if opted_out is None:
        return no_decision(USPRIVACY, f"{config.cookies[0]}: not applicable")
    return _opt_out(USPRIVACY, config, opted_out, categories, "opt-out of sale")


@dataclass(frozen=True)
class GppSignal:
    """What one GPP section says: whether it opts out, and why."""

    section: str
    opted_out: bool | None  # None: nothing to go by
    reason: str
    read: bool = True  # False: skipped or unreadable (not merely "not applicable")


def parse_gpp(value: str, where: str = "__gpp") -> dict[int, str]:
    """Section id -> that section's string, as the header lists them."""
    parts = value.split("~")
    bits = BitReader(decode_bits(parts[0], f"{where} header"), f"{where} header")
    kind = bits.uint(6, "Type")
    version = bits.uint(6, "Version")
    if kind != 3 or version != 1:
        raise ReadError(f"{where}: header type {kind} version {version}, expected 3 and 1")
    ids = bits.fibonacci_range("SectionIds", MAX_SECTION_ID)
    if len(ids) != len(parts) - 1:
        raise ReadError(f"{where}: header lists {len(ids)} sections, string has {len(parts) - 1}")
    if not all(parts[1:]):
        raise ReadError(f"{where}: an empty section")
    return dict(zip(ids, parts[1:], strict=True))


def section_signal(section_id: int, text: str) -> GppSignal:
    """The opt-out one section carries; unreadable sections say nothing (None)."""
    if section_id == 6:
        try:
            opted = parse_usprivacy(text, "uspv1")
        except ReadError as err:
            return GppSignal("uspv1", None, str(err), read=False)
        return GppSignal("uspv1", opted, "uspv1 " + ("not applicable" if opted is None else "sale"))
    layout = US_SECTIONS.get(section_id)
    if layout is None:
        name = _SKIPPED.get(section_id) or _UNREAD_US.get(section_id) or f"section {section_id}"
        return GppSignal(name, None, f"{name} not read", read=False)
    try:
        return _us_signal(layout, text)
    except ReadError as err:
        return GppSignal(layout.name, None, str(err), read=False)


def read_gpp(
    cookies: Cookies, config: GppConfig, *, categories: tuple[str, ...] = CATEGORIES
) -> SourceDecision:
    """The decision of the GPP string's US sections in force. Never raises."""
    try:
        value = percent_decoded(single_value(cookies, (config.cookie,)), config.cookie)
        sections = parse_gpp(value, config.cookie)
        in_force = _in_force(cookies, config, sections)
    except ReadError as err:
        return no_decision(GPP, str(err))
    signals = [section_signal(i, sections[i]) for i in in_force]
    for signal in signals:
        if signal.opted_out:
            return _opt_out(GPP, config, True, categories, signal.reason)
    unread = [s for s in signals if not s.read and s.section not in _SKIPPED.values()]
    said = [s for s in signals if s.opted_out is False]
    if not said or unread:
        why = "; ".join(s.reason for s in unread) or "no US section in force"
        return no_decision(GPP, f"{config.cookie}: {why}")
    return _opt_out(GPP, config, False, categories, ", ".join(s.section for s in said))


def _in_force(cookies: Cookies, config: GppConfig, sections: dict[int, str]) -> list[int]:
    if config.sid_cookie not in cookies:
        return sorted(sections)
    text = single_value(cookies, (config.sid_cookie,))
    text = percent_decoded(text, config.sid_cookie).strip().strip("[]")
    if len(text) > 4 * MAX_SECTION_ID:
        raise ReadError(f"{config.sid_cookie}: more than {MAX_SECTION_ID} section ids")
    try:
        ids = [int(part) for part in text.split(",")]
    except ValueError:
        raise ReadError(f"{config.sid_cookie}: expected section ids separated by commas") from None
    if any(i < 0 for i in ids):
        raise ReadError(f"{config.sid_cookie}: GPP does not apply")
    missing = [i for i in ids if i not in sections]
    if missing:
        raise ReadError(f"{config.sid_cookie}: section {missing[0]} in force but not in the string")
    return ids


def _usnat_layout(bits: int) -> UsSection:
    """usnat v2 lengthened two lists (70 bits); v1 strings, and v2 strings some CMPs
    still write in the v1 length, put MspaServiceProviderMode 10 bits earlier."""
    layout = US_SECTIONS[7]
    return layout if bits >= layout.length else UsSection("usnat", 18, 20, 22, 58, 60, (1, 2))


def _us_signal(layout: UsSection, text: str) -> GppSignal:
    core, *subsections = text.split(".")
    bits = decode_bits(core, layout.name)
    if layout.name == "usnat":
        layout = _usnat_layout(len(bits))
    if len(bits) < layout.length:
        raise ReadError(f"{layout.name}: {len(bits)} bits, expected {layout.length} (truncated)")
    reader = BitReader(bits, layout.name)
    version = reader.uint(6, "Version")
    if version not in layout.versions:
        raise ReadError(f"{layout.name}: Version {version}, expected {layout.versions}")
    fields = {"SaleOptOut": layout.sale, "SharingOptOut": layout.sharing}
    fields["TargetedAdvertisingOptOut"] = layout.targeted
    opted = []
    for name, offset in fields.items():
        if offset is None:
            continue
        reader.pos = offset
        value = reader.uint(2, name)
        if value == 3:
            raise ReadError(f"{layout.name}: {name} is 3, expected 0, 1 or 2")
        if value == 1:
            opted.append(name)
    reader.pos = layout.provider_mode
    if reader.uint(2, "MspaServiceProviderMode") == 1:
        opted.append("MspaServiceProviderMode")
    if any(_gpc(sub, layout.name) for sub in subsections):
        opted.append("Gpc")
    if opted:
        return GppSignal(layout.name, True, f"{layout.name} {', '.join(opted)}")
    return GppSignal(layout.name, False, layout.name)


def _gpc(text: str, where: str) -> bool:
    """A GPC sub-section (SubsectionType 1) with Gpc set; other sub-sections: False."""
    reader = BitReader(decode_bits(text, f"{where} sub-section"), f"{where} sub-section")
    return reader.uint(2, "SubsectionType") == 1 and reader.flag("Gpc")


def _opt_out(
    source: str,
    config: OptOutConfig,
    opted_out: bool,
    categories: Iterable[str],
    reason: str,
) -> SourceDecision:
    if not opted_out and not config.grant_when_not_opted_out:
        return no_decision(source, f"{reason}: not opted out (grants nothing by configuration)")
    governed = config.opt_out_categories
    granted = () if opted_out else governed
    note = f"opted out: {reason}" if opted_out else f"not opted out: {reason}"
    return decision(source, categories, granted, stated=governed, note=note)
