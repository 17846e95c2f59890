"""What every reader shares: the decision record, the cookie jar, bounded decoding.

A reader turns one banner's cookie into a ``SourceDecision``. Readers are pure and
total: no input makes them raise, and a value they cannot read is "no decision" from
that source, with a ``note`` saying why. Notes name the cookie, the place and what was
expected, never the value itself (they go to logs, which hold no cookies).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from proxy.consent.categories import OPTIONAL

# The categories a decision speaks of, in order. Taken from the consent layer's list so a
# new category (``media``) reaches every reader when it is added there; readers also
# take the list as a parameter.
CATEGORIES: tuple[str, ...] = OPTIONAL

# Browsers keep at most about 4096 bytes per cookie (name and value), so a longer value
# did not come from a banner. Every reader refuses it before any work.
MAX_VALUE = 4096
# Cookie pairs looked at per request: enough for any real site, bounded for hostile ones.
MAX_PAIRS = 512

Cookies = Mapping[str, Sequence[str]]
"""The request's cookies: name -> every value the browser sent for it, in order."""


class ReadError(ValueError):
    """A value that cannot be read; the message names the place and what was expected."""


@dataclass(frozen=True)
class SourceDecision:
    """What one source says of the visitor's choice.

    ``granted`` and ``denied`` are disjoint sets of categories. A category in neither is
    not stated by this source (an opt-out signal speaks only of advertising and social,
    say); the caller applies its own default to it. A source that states nothing holds
    no decision, and ``note`` says why. ``note`` never contains the cookie's value.
    """

    source: str
    granted: frozenset[str] = frozenset()
    denied: frozenset[str] = frozenset()
    note: str = ""

    @property
    def decided(self) -> bool:
        return bool(self.granted or self.denied)

    @property
    def stated(self) -> frozenset[str]:
        return self.granted | self.denied


def no_decision(source: str, note: str) -> SourceDecision:
    return SourceDecision(source, note=note)


def decision(
    source: str,
    categories: Iterable[str],
    granted: Iterable[str],
    stated: Iterable[str] | None = None,
    note: str = "",
) -> SourceDecision:
    """The decision on ``categories``: those in ``granted`` are granted, the other
    ``stated`` ones (all of ``categories`` when None) denied. Names outside
    ``categories`` are dropped, so a mapping may name a category not (yet) in use."""
    known = frozenset(categories)
    said = known if stated is None else known.intersection(stated)
    yes = said.intersection(granted)
    return SourceDecision(source, granted=yes, denied=said - yes, note=note)


def map_choices(
    mapping: Mapping[str, Sequence[str]],
    choices: Mapping[str, bool],
    categories: Iterable[str],
) -> frozenset[str]:
    """Categories granted by a banner's own choices (banner key -> granted).

    ``mapping`` sends a banner key to the categories it governs. A category is granted
    when at least one of its keys is among ``choices`` and none of those present is
    refused; keys the banner did not record are ignored, so a default mapping may name
    several spellings. A category no present key governs is not granted."""
    granted = set()
    for category in categories:
        values = [choices[k] for k, cats in mapping.items() if category in cats and k in choices]
        if values and all(values):
            granted.add(category)
    return frozenset(granted)


def cookie_jar(headers: Iterable[str], names: Iterable[str] | None = None) -> dict[str, list[str]]:
    """The cookies of the request's Cookie header(s), name -> values in order.

    Only ``names`` are kept when given (what the readers look at), and at most
    ``MAX_PAIRS`` pairs are looked at: a value dropped by the cap is simply absent,
    which is "no decision" for its reader."""
    wanted = None if names is None else frozenset(names)
    jar: dict[str, list[str]] = {}
    seen = 0
    for header in headers:
        for part in header.split(";"):
            seen += 1
            if seen > MAX_PAIRS:
                return jar
            key, sep, value = part.partition("=")
            key = key.strip()
            if not sep or not key or (wanted is not None and key not in wanted):
                continue
            jar.setdefault(key, []).append(value.strip())
    return jar


def single_value(cookies: Cookies, names: Sequence[str]) -> str:
    """The one value the cookies ``names`` hold; ReadError when there is none, when
    they hold different values (a browser may send one name twice, for two paths or
    domains: which one the banner reads is not known) or when it is too long."""
    values: set[str] = set()
    for name in names:
        for value in cookies.get(name, ()):
            if len(value) >= 2 and value[0] == value[-1] == '"':
                value = value[1:-1]
            values.add(value)
    label = "/".join(names)
    if not values:
        raise ReadError(f"{label}: no cookie")
    if len(values) > 1:
        raise ReadError(f"{label}: {len(values)} different values, expected one")
    value = values.pop()
    if not value:
        raise ReadError(f"{label}: empty value")
    if len(value) > MAX_VALUE:
        raise ReadError(f"{label}: {len(value)} characters, expected at most {MAX_VALUE}")
    return value


def percent_decoded(value: str, where: str) -> str:
    """``value`` with %XX escapes decoded as UTF-8; ReadError on bytes that are not
    UTF-8. A '%' not followed by two hex digits is kept as it is (as browsers do)."""
    if "%" not in value:
        return value
    try:
        return unquote(value, errors="strict")
    except UnicodeDecodeError as err:
        raise ReadError(f"{where}: %-escapes at {err.start} are not UTF-8") from None


def json_object(value: str, where: str) -> dict[str, Any]:
    """A JSON object from a cookie value, raw or %-encoded (banners write both).

    Deep nesting, bad syntax and any other top-level type are ReadErrors."""
    text = value if value.lstrip().startswith("{") else percent_decoded(value, where)
    if not text.lstrip().startswith("{"):
        raise ReadError(f"{where}: expected a JSON object")
    try:
        parsed = json.loads(text)
    except RecursionError:
        raise ReadError(f"{where}: JSON nested too deeply") from None
    except ValueError as err:
        raise ReadError(f"{where}: not JSON ({_short(err)})") from None
    if not isinstance(parsed, dict):
        raise ReadError(f"{where}: expected a JSON object")
    return parsed


def _short(err: Exception) -> str:
    # json's messages name a position and what was expected, never the input itself.
    text = str(err)
    return text if len(text) <= 80 else text[:77] + "..."
