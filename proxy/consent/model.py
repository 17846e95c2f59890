"""The visitor's consent: read from the request, written as the consent cookie.

Pure and total: nothing in a Cookie header can make ``read_consent`` raise. An
unreadable value, two conflicting consent cookies or an older policy version mean
"no decision". Precedence: the visitor's explicit choice > ``Sec-GPC: 1`` (denies
advertising and social unless the visitor granted them) > the configured default.

The choice is looked for in the policy's ``sources``, in order (``own``: the proxy's
consent cookie; the others: another banner's cookie, read by ``proxy.consent.readers``);
the first that holds a decision wins and is named as the consent's source. A source may
speak of some categories only (a US opt-out signal: advertising and social); GPC and
the default decide the others. Where the proxy's own cookie cannot change a visitor's
consent (another source listed before ``own`` decided, or ``own`` is not listed), the
consent names where it can be changed (``elsewhere``): placeholders then point there
instead of offering a grant that would do nothing.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from multidict import CIMultiDict, CIMultiDictProxy

from proxy.consent.categories import CATEGORIES, GPC_DENIES, OPTIONAL
from proxy.consent.readers import OWN, ReadersConfig, SourceDecision, read_headers

__all__ = ["CATEGORIES", "GPC_DENIES", "OPTIONAL"]  # with the names defined below

MAX_AGE_LIMIT = 13 * 30 * 24 * 3600  # 13 months, the most a consent may be kept

# RFC 6265 cookie-octet: no CTLs, whitespace, DQUOTE, comma, semicolon or backslash.
_COOKIE_OCTETS = re.compile(r"[\x21\x23-\x2b\x2d-\x3a\x3c-\x5b\x5d-\x7e]*")


@dataclass(frozen=True)
class ConsentPolicy:
    """How consent is read: the cookie's name, the current policy version, what is
    granted before a visitor decides (nothing but necessary, unless configured), and
    where a choice is looked for: ``sources`` in order (``own`` is the cookie above;
    the others are read with ``readers``)."""

    cookie: str = "consent"
    version: int = 1
    default_granted: frozenset[str] = frozenset()
    sources: tuple[str, ...] = (OWN,)
    readers: ReadersConfig = field(default_factory=ReadersConfig)

    @property
    def own_only(self) -> bool:
        """Whether the proxy's own cookie is the only source (no other banner is read)."""
        return self.sources == (OWN,)


SITE = "site"  # ``Consent.elsewhere`` when the site's banner is meant but not which


@dataclass(frozen=True)
class ChangeAt:
    """Where a visitor changes their choice of one category, the proxy's own cookie
    not counting for them: ``source`` (a consent source's name, or ``SITE``), and
    whether that source ``states`` the category (False: GPC or the default decides it,
    and no choice made there changes that)."""

    source: str
    states: bool


@dataclass(frozen=True)
class Consent:
    """For each category: granted or not, and why ("always", "cookie" for the proxy's
    own cookie, the name of another source that decided, "gpc", "default").

    ``decided_by``: where the visitor's choice was read ("cookie" or a source name such
    as "tcf"), when ``decided``. ``notes``: what each source asked before it said, for
    QA (``/_consent``); never a cookie's value, and no part of equality or logs.
    ``elsewhere``: "" when a post to /_consent (the proxy's own cookie) changes this
    consent; else where the visitor changes it: a source's name, or ``SITE`` (the
    site's own banner, which of several sources unknown)."""

    granted: frozenset[str]
    sources: tuple[tuple[str, str], ...]
    decided: bool
    gpc: bool = False
    decided_by: str = "cookie"
    notes: tuple[tuple[str, str], ...] = field(default=(), compare=False)
    elsewhere: str = ""

    def allows(self, category: str) -> bool:
        return category in self.granted

    @property
    def all_granted(self) -> bool:
        return all(c in self.granted for c in OPTIONAL)

    @property
    def source(self) -> str:
        """Where the answer as a whole came from."""
        if self.decided:
            return self.decided_by
        return "gpc" if self.gpc else "default"

    def change_at(self, category: str) -> ChangeAt | None:
        """Where this visitor changes their choice of ``category`` when the proxy's own
        cookie would not change it (what its placeholders say); None when it would."""
        if not self.elsewhere:
            return None
        # Undecided: the visitor has yet to choose there, every category included.
        states = not self.decided or dict(self.sources).get(category) == self.decided_by
        return ChangeAt(self.elsewhere, states)

    @cached_property  # a Consent is often shared (ConsentReader remembers them)
    def variant(self) -> str:
        """Names everything the rewritten page depends on (used in ETags and caches):
        the categories granted, whether decided, and where placeholders point when
        the proxy's own cookie would not change the consent (``change_at``)."""
        bits = "".join("1" if c in self.granted else "0" for c in OPTIONAL)
        variant = f"c{bits}{'d' if self.decided else 'n'}"
        if self.elsewhere:
            stated = "".join("1" if self._states(c) else "0" for c in OPTIONAL)
            variant += f"-{self.elsewhere}{stated}"
        return variant

    def _states(self, category: str) -> bool:
        change = self.change_at(category)
        return change is not None and change.states

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
            for c in ("analytics", "advertising", "social", "preferences", "media")
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
    headers: Mapping[str, str] | Iterable[tuple[str, str]],
    policy: ConsentPolicy,
    *,
    now: float | None = None,
) -> Consent:
    """The Consent a request carries (headers as a mapping or as name/value pairs).
    ``now`` (seconds since the epoch, default the clock's) matters to sources whose
    choices expire (a TC string is valid for a limited time)."""
    cookie_headers, gpc = _signals(headers)
    values = frozenset(v for h in cookie_headers for v in cookie_values(h, policy.cookie))
    if policy.own_only:  # no other banner read: the common case, nothing more to do
        return _consent(_own_decision(values, policy.version), gpc, policy)
    reading = read_headers(
        policy.sources,
        cookie_headers,
        policy.readers,
        now=time.time() if now is None else now,
        own=lambda: _own_decision(values, policy.version),
    )
    notes = tuple((d.source, d.note) for d in reading.tried if d.note)
    return _consent(reading.decision, gpc, policy, notes)


def _signals(headers: Mapping[str, str] | Iterable[tuple[str, str]]) -> tuple[list[str], bool]:
    """The Cookie headers' values and whether Sec-GPC is 1."""
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
    return cookie_headers, gpc


class ConsentReader:
    """``read_consent`` for one policy, remembering its answers by Cookie header (and
    Sec-GPC): a visit sends the same header with every request. The proxy makes one
    and shares it: its pages and /_consent read consent the same way.

    The memory is forgotten when a minute has passed since it was started, so a
    choice that expires (a TC string past its age) outlives its end by a minute at
    most; and when full."""

    _REMEMBERED = 1024  # answers kept; forgotten all at once when full
    _WHOLE_UP_TO = 4096  # bytes of a Cookie header remembered
    LIFETIME = 60.0  # seconds an answer is remembered at most

    def __init__(self, policy: ConsentPolicy, clock: Callable[[], float] = time.time) -> None:
        """``clock``: seconds since the epoch (the wall clock: TC strings carry dates)."""
        self.policy = policy
        self._answers: dict[tuple[str, tuple[str, ...]], Consent] = {}
        self._clock = clock
        self._since = 0.0  # when the memory was started (clock time)

    def __call__(self, headers: CIMultiDictProxy[str] | CIMultiDict[str]) -> Consent:
        now = self._clock()
        cookies = headers.getall("Cookie", ())
        if len(cookies) > 1:  # rare: not remembered
            return read_consent(headers, self.policy, now=now)
        gpc = tuple(headers.getall("Sec-GPC")) if "Sec-GPC" in headers else ()
        key = (cookies[0] if cookies else "", gpc)
        if not 0 <= now - self._since < self.LIFETIME:  # the clock may also step back
            self._answers.clear()
            self._since = now
        consent = self._answers.get(key)
        if consent is None:
            consent = read_consent(headers, self.policy, now=now)
            if len(key[0]) + sum(map(len, gpc)) <= self._WHOLE_UP_TO:
                if len(self._answers) >= self._REMEMBERED:
                    self._answers.clear()
                self._answers[key] = consent
        return consent


def _own_decision(values: frozenset[str], version: int) -> SourceDecision:
    """What the proxy's own consent cookie says: every category (a name it leaves out
    is refused), or nothing when it is absent, unreadable or ambiguous."""
    choices = [parse_choice(v, version) for v in values]
    choice = choices[0] if len(choices) == 1 else None  # two different cookies: ambiguous
    if choice is None:
        return SourceDecision(OWN, note="no readable consent cookie" if values else "")
    granted = frozenset(c for c in OPTIONAL if choice.get(c, False))
    return SourceDecision(OWN, granted=granted, denied=frozenset(OPTIONAL) - granted)


def _consent(
    decision: SourceDecision | None,
    gpc: bool,
    policy: ConsentPolicy,
    notes: tuple[tuple[str, str], ...] = (),
) -> Consent:
    """The Consent for the winning source's decision (if any) and the Sec-GPC signal."""
    if decision is None or not decision.decided:
        decision = SourceDecision(OWN)
    by = "cookie" if decision.source == OWN else decision.source
    elsewhere = "" if policy.own_only else _elsewhere(policy.sources, decision)
    granted = {"necessary"}
    sources = [("necessary", "always")]
    for category in OPTIONAL:
        if category in decision.granted:
            ok, why = True, by
        elif category in decision.denied:
            ok, why = False, by
        elif gpc and category in GPC_DENIES:
            ok, why = False, "gpc"
        else:
            ok, why = category in policy.default_granted, "default"
        if ok:
            granted.add(category)
        sources.append((category, why))
    return Consent(frozenset(granted), tuple(sources), decision.decided, gpc, by, notes, elsewhere)


def _elsewhere(sources: tuple[str, ...], decision: SourceDecision) -> str:
    """``Consent.elsewhere`` for ``decision`` (the winning source's, or an undecided
    one): "" when a post to /_consent would change the consent, as ``own`` is asked
    before the source that decided (or nobody decided and ``own`` is listed)."""
    decided = decision.source if decision.decided else None
    if OWN in sources:
        before_own = sources[: sources.index(OWN)]
        return decided if decided is not None and decided in before_own else ""
    if decided is not None:
        return decided
    return sources[0] if len(sources) == 1 else SITE


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
