"""The visitor's consent: read from the request, written as the consent cookie.

Pure and total: nothing in a Cookie header can make ``read_consent`` raise. An
unreadable value, two conflicting consent cookies or an older policy version mean
"no decision". Precedence: the visitor's explicit choice > ``Sec-GPC: 1`` (denies
advertising and social unless the visitor granted them) > the configured default.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from multidict import CIMultiDict, CIMultiDictProxy

CATEGORIES = ("necessary", "preferences", "analytics", "advertising", "social")
OPTIONAL = CATEGORIES[1:]
GPC_DENIES = ("advertising", "social")
MAX_AGE_LIMIT = 13 * 30 * 24 * 3600  # 13 months, the most a consent may be kept

# RFC 6265 cookie-octet: no CTLs, whitespace, DQUOTE, comma, semicolon or backslash.
_COOKIE_OCTETS = re.compile(r"[\x21\x23-\x2b\x2d-\x3a\x3c-\x5b\x5d-\x7e]*")


@dataclass(frozen=True)
class ConsentPolicy:
    """How consent is read: the cookie's name, the current policy version and what
    is granted before a visitor decides (nothing but necessary, unless configured)."""

    cookie: str = "consent"
    version: int = 1
    default_granted: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Consent:
    """For each category: granted or not, and why ("always", "cookie", "gpc", "default")."""

    granted: frozenset[str]
    sources: tuple[tuple[str, str], ...]
    decided: bool
    gpc: bool = False

    def allows(self, category: str) -> bool:
        return category in self.granted

    @property
    def all_granted(self) -> bool:
        return all(c in self.granted for c in OPTIONAL)

    @property
    def source(self) -> str:
        """Where the answer as a whole came from."""
        if self.decided:
            return "cookie"
        return "gpc" if self.gpc else "default"

    @cached_property  # a Consent is often shared (ConsentReader remembers them)
    def variant(self) -> str:
        """Names everything the rewritten page depends on (used in ETags and caches)."""
        bits = "".join("1" if c in self.granted else "0" for c in OPTIONAL)
        return f"c{bits}{'d' if self.decided else 'n'}"

    def header(self) -> str:
        """The X-Consent header value, for QA with curl."""
        return self._header

    def record(self) -> dict[str, Any]:
        """What the decision log says of this consent."""
        return {
            "consent": dict(self.sources),
            "granted": sorted(self.granted),
            "source": self.source,
        }

    @cached_property
    def json_members(self) -> str:
        """``record()`` as JSON members without braces (for lines built by hand)."""
        return json.dumps(self.record(), separators=(",", ":"))[1:-1]

    @cached_property
    def _header(self) -> str:
        parts = [
            f"{c}={int(c in self.granted)}"
            for c in ("analytics", "advertising", "social", "preferences")
        ]
        return "; ".join([*parts, f"source={self.source}"])


def cookie_values(header: str, name: str) -> list[str]:
    """Every value the Cookie header gives ``name`` (browsers may send several)."""
    if name not in header:  # most Cookie headers: one C-level test, no split
        return []
    values = []
    for part in header.split(";"):
        key, sep, value = part.partition("=")
        if sep and key.strip() == name:
            values.append(value.strip())
    return values


def parse_choice(value: str, version: int) -> dict[str, bool] | None:
    """``v=1&analytics=1&advertising=0`` → {category: granted}; None if unreadable or
    from another policy version. Unknown names are ignored."""
    if len(value) >= 2 and value[0] == value[-1] == '"':
        value = value[1:-1]
    if not value or len(value) > 512 or not _COOKIE_OCTETS.fullmatch(value):
        return None
    choice: dict[str, bool] = {}
    seen_version: str | None = None
    for pair in value.split("&"):
        key, sep, flag = pair.partition("=")
        if not sep:
            return None
        if key == "v":
            if seen_version is not None and seen_version != flag:
                return None
            seen_version = flag
            continue
        if flag not in ("0", "1"):
            return None
        if key in OPTIONAL:
            if key in choice and choice[key] != (flag == "1"):
                return None
            choice[key] = flag == "1"
    if seen_version != str(version):
        return None
    return choice


def read_consent(
    headers: Mapping[str, str] | Iterable[tuple[str, str]], policy: ConsentPolicy
) -> Consent:
    """The Consent a request carries (headers as a mapping or as name/value pairs)."""
    values, gpc = _signals(headers, policy.cookie)
    return _consent(values, gpc, policy)


def _signals(
    headers: Mapping[str, str] | Iterable[tuple[str, str]], cookie: str
) -> tuple[frozenset[str], bool]:
    """The consent cookie's values and whether Sec-GPC is 1."""
    getall = getattr(headers, "getall", None)
    if getall is not None:  # a multidict: no walk over every header
        cookie_headers: list[str] = getall("Cookie", [])
        gpc_values: list[str] = getall("Sec-GPC", [])
    else:
        items = headers.items() if isinstance(headers, Mapping) else headers
        cookie_headers, gpc_values = [], []
        for key, value in items:
            low = key.lower()
            if low == "cookie":
                cookie_headers.append(value)
            elif low == "sec-gpc":
                gpc_values.append(value)
    gpc = bool(gpc_values) and gpc_values[-1].strip() == "1"
    return frozenset(v for h in cookie_headers for v in cookie_values(h, cookie)), gpc


class ConsentReader:
    """``read_consent`` for one policy, remembering its answers by Cookie header (and
    Sec-GPC): a visit sends the same header with every request. The proxy makes one
    and shares it: its pages and /_consent read consent the same way."""

    _REMEMBERED = 1024  # answers kept; forgotten all at once when full
    _WHOLE_UP_TO = 2048  # bytes of a Cookie header remembered

    def __init__(self, policy: ConsentPolicy) -> None:
        self.policy = policy
        self._answers: dict[tuple[str, tuple[str, ...]], Consent] = {}

    def __call__(self, headers: CIMultiDictProxy[str] | CIMultiDict[str]) -> Consent:
        cookies = headers.getall("Cookie", ())
        if len(cookies) > 1:  # rare: not remembered
            return read_consent(headers, self.policy)
        gpc = tuple(headers.getall("Sec-GPC")) if "Sec-GPC" in headers else ()
        key = (cookies[0] if cookies else "", gpc)
        consent = self._answers.get(key)
        if consent is None:
            consent = read_consent(headers, self.policy)
            if len(key[0]) + sum(map(len, gpc)) <= self._WHOLE_UP_TO:
                if len(self._answers) >= self._REMEMBERED:
                    self._answers.clear()
                self._answers[key] = consent
        return consent


def _consent(values: frozenset[str], gpc: bool, policy: ConsentPolicy) -> Consent:
    """The Consent for the consent cookie's values and the Sec-GPC signal."""
    choices = [parse_choice(v, policy.version) for v in values]
    choice = choices[0] if len(choices) == 1 else None  # two different cookies: ambiguous
    granted = {"necessary"}
    sources = [("necessary", "always")]
    for category in OPTIONAL:
        if choice is not None:
            ok, why = choice.get(category, False), "cookie"
        elif gpc and category in GPC_DENIES:
            ok, why = False, "gpc"
        else:
            ok, why = category in policy.default_granted, "default"
        if ok:
            granted.add(category)
        sources.append((category, why))
    return Consent(frozenset(granted), tuple(sources), decided=choice is not None, gpc=gpc)


def parse_consent_arg(text: str, policy: ConsentPolicy) -> Consent:
    """For the CLI and rule examples: ``all``, ``none``, or a cookie value like
    ``analytics=1&social=0`` (``v=`` may be left out: the current version is meant)."""
    if text not in ("all", "none") and not re.match(r"(.*&)?v=", text):
        text = f"v={policy.version}&{text}"
    if text == "all":
        text = f"v={policy.version}&" + "&".join(f"{c}=1" for c in OPTIONAL)
    elif text == "none":
        text = f"v={policy.version}&" + "&".join(f"{c}=0" for c in OPTIONAL)
    if parse_choice(text, policy.version) is None:
        raise ValueError(
            f"--consent {text!r}: expected all, none, or a value like "
            f"v={policy.version}&analytics=1&advertising=0&social=0&preferences=0"
        )
    return read_consent({"Cookie": f"{policy.cookie}={text}"}, policy)


def choice_value(granted: Iterable[str], version: int) -> str:
    """The consent cookie's value for a choice (refusals are stored too)."""
    chosen = set(granted)
    return "&".join([f"v={version}", *(f"{c}={int(c in chosen)}" for c in OPTIONAL)])


def set_cookie_header(value: str, policy: ConsentPolicy, *, secure: bool, max_age: int) -> str:
    """A Set-Cookie value for the consent cookie."""
    max_age = max(0, min(max_age, MAX_AGE_LIMIT))
    parts = [f"{policy.cookie}={value}", "Path=/", "SameSite=Lax", f"Max-Age={max_age}"]
    if secure:
        parts.append("Secure")
    return "; ".join(parts)
