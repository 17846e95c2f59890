"""The ordered list of consent sources and the one entry point that reads them.

``read_sources(["own", "tcf", ...], cookies, config, now=...)`` asks each source in
order and stops at the first that holds a decision. ``own`` (the proxy's own consent
cookie) is read by the caller: pass it as the ``own`` callback; without one it is
skipped. The answer names the winning source and keeps what every source before it
said (for the decision log and ``/_consent``). Pure: no clock, no I/O; ``now`` is given.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property

from proxy.consent.readers.banners import (
    CookiebotConfig,
    CookieConsentConfig,
    KlaroConfig,
    OneTrustConfig,
    read_cookiebot,
    read_cookieconsent,
    read_klaro,
    read_onetrust,
)
from proxy.consent.readers.base import CATEGORIES, Cookies, SourceDecision, cookie_jar, no_decision
from proxy.consent.readers.gpp import GppConfig, UsPrivacyConfig, read_gpp, read_usprivacy
from proxy.consent.readers.tcf import TcfConfig, read_tcf

OWN = "own"


@dataclass(frozen=True)
class ReadersConfig:
    """Every reader's settings, and the categories decisions speak of."""

    categories: tuple[str, ...] = CATEGORIES
    tcf: TcfConfig = field(default_factory=TcfConfig)
    gpp: GppConfig = field(default_factory=GppConfig)
    usprivacy: UsPrivacyConfig = field(default_factory=UsPrivacyConfig)
    onetrust: OneTrustConfig = field(default_factory=OneTrustConfig)
    cookiebot: CookiebotConfig = field(default_factory=CookiebotConfig)
    klaro: KlaroConfig = field(default_factory=KlaroConfig)
    cookieconsent: CookieConsentConfig = field(default_factory=CookieConsentConfig)

    @cached_property  # asked once per request by read_headers
    def cookie_names(self) -> frozenset[str]:
        """Every cookie some reader looks at (what ``cookie_jar`` needs to keep)."""
        return frozenset(
            {
                *self.tcf.cookies,
                self.gpp.cookie,
                self.gpp.sid_cookie,
                *self.usprivacy.cookies,
                self.onetrust.cookie,
                self.onetrust.closed_cookie,
                self.cookiebot.cookie,
                self.klaro.cookie,
                self.cookieconsent.cookie,
            }
        )


Reader = Callable[[Cookies, ReadersConfig, float], SourceDecision]

READERS: dict[str, Reader] = {
    "tcf": lambda c, cfg, now: read_tcf(c, cfg.tcf, now=now, categories=cfg.categories),
    "gpp": lambda c, cfg, now: read_gpp(c, cfg.gpp, categories=cfg.categories),
    "usprivacy": lambda c, cfg, now: read_usprivacy(c, cfg.usprivacy, categories=cfg.categories),
    "onetrust": lambda c, cfg, now: read_onetrust(c, cfg.onetrust, categories=cfg.categories),
    "cookiebot": lambda c, cfg, now: read_cookiebot(c, cfg.cookiebot, categories=cfg.categories),
    "klaro": lambda c, cfg, now: read_klaro(c, cfg.klaro, categories=cfg.categories),
    "cookieconsent": lambda c, cfg, now: read_cookieconsent(
        c, cfg.cookieconsent, categories=cfg.categories
    ),
}
SOURCES = (OWN, *READERS)


def check_sources(names: Iterable[str]) -> tuple[str, ...]:
    """``names`` as a tuple, for settings: ValueError names an unknown or repeated one."""
    out: list[str] = []
    for name in names:
        if name not in SOURCES:
            raise ValueError(f"consent source {name!r}: expected one of {', '.join(SOURCES)}")
        if name in out:
            raise ValueError(f"consent source {name!r} is listed twice")
        out.append(name)
    if not out:
        raise ValueError(f"consent sources: expected at least one of {', '.join(SOURCES)}")
    return tuple(out)


@dataclass(frozen=True)
class Reading:
    """The first decision among the sources, and what each source asked said."""

    decision: SourceDecision | None
    tried: tuple[SourceDecision, ...]

    @property
    def source(self) -> str | None:
        return None if self.decision is None else self.decision.source


def read_sources(
    sources: Sequence[str],
    cookies: Cookies,
    config: ReadersConfig,
    *,
    now: float,
    own: Callable[[], SourceDecision] | None = None,
) -> Reading:
    """Ask ``sources`` in order; the first that holds a decision wins. Never raises."""
    tried: list[SourceDecision] = []
    for name in sources:
        answer = _ask(name, cookies, config, now, own)
        tried.append(answer)
        if answer.decided:
            return Reading(answer, tuple(tried))
    return Reading(None, tuple(tried))


def read_headers(
    sources: Sequence[str],
    cookie_headers: Iterable[str],
    config: ReadersConfig,
    *,
    now: float,
    own: Callable[[], SourceDecision] | None = None,
) -> Reading:
    """``read_sources`` for the request's Cookie header values as they came."""
    jar = cookie_jar(cookie_headers, config.cookie_names)
    return read_sources(sources, jar, config, now=now, own=own)


def _ask(
    name: str,
    cookies: Cookies,
    config: ReadersConfig,
    now: float,
    own: Callable[[], SourceDecision] | None,
) -> SourceDecision:
    if name == OWN:
        return own() if own is not None else no_decision(OWN, "own cookie not read here")
    reader = READERS.get(name)
    if reader is None:
        return no_decision(name, "unknown consent source")
    try:
        return reader(cookies, config, now)
    except Exception as err:
        # Readers are written not to raise and fuzzed for it; should one still fail, the
        # visitor gets "no decision" from it (fail closed), not an error page.
        return no_decision(name, f"reader failed: {type(err).__name__}")
