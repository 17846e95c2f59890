"""A visitor's choice, as posted to /_consent: what it grants, and which vendor cookies
to expire (and on which domains) when consent is withdrawn. Pure functions;
proxy/ui/endpoints.py does the HTTP (and the same-origin check, with the HTTP layer's
``same_origin_post``)."""

from __future__ import annotations

import fnmatch
import ipaddress
from collections.abc import Mapping, Sequence

from proxy.consent.model import OPTIONAL, Consent
from proxy.consent.rules import COOKIE_NAME, RuleSet


def chosen(current: Consent, fields: Mapping[str, Sequence[str]]) -> set[str] | None:
    """The optional categories granted after this post, or None if it says nothing.

    ``accept=all`` and ``reject=all`` decide everything. Otherwise each category named
    takes its last value ("1" grants; forms send a hidden "0" before a checkbox), and
    categories not named keep what the visitor has now (a placeholder grants one)."""
    if "all" in fields.get("accept", ()):
        return set(OPTIONAL)
    if "all" in fields.get("reject", ()):
        return set()
    named = [c for c in OPTIONAL if fields.get(c)]
    if not named:
        return None
    granted = {c for c in OPTIONAL if current.allows(c)}
    for category in named:
        if fields[category][-1] in ("1", "true", "on", "yes"):
            granted.add(category)
        else:
            granted.discard(category)
    return granted


def cookies_to_expire(cookie_header: str, ruleset: RuleSet, denied: set[str]) -> list[str]:
    """Names of cookies the visitor has that rules of denied categories name. Only
    names that are tokens: others (quotes, spaces, U+2028, invalid UTF-8) are no
    vendor's, would be mangled in a Set-Cookie header and go to the consent log."""
    present = {part.partition("=")[0].strip() for part in cookie_header.split(";") if "=" in part}
    present = {name for name in present if COOKIE_NAME.fullmatch(name)}
    patterns = [p for r in ruleset.active if r.category in denied for p in r.cookies]
    return sorted(n for n in present if n and any(fnmatch.fnmatchcase(n, p) for p in patterns))


def cookie_domains(host: str | None) -> list[str | None]:
    """Where a vendor may have set a cookie on ``host`` (a name without port, as in
    ``Authority.host``): host-only, the host and its parents; host-only for an IP
    address, a single label or no host."""
    if not host:
        return [None]
    try:
        ipaddress.ip_address(host)
        return [None]
    except ValueError:
        pass
    labels = host.lower().rstrip(".").split(".")
    if len(labels) < 2:
        return [None]
    return [None, *(".".join(labels[i:]) for i in range(len(labels) - 1))]


def expiry_headers(names: list[str], host: str | None, secure: bool) -> list[str]:
    """Set-Cookie headers expiring ``names`` wherever ``cookie_domains(host)`` says."""
    out = []
    for name in names:
        for domain in cookie_domains(host):
            attrs = [f"{name}=", "Path=/", "Max-Age=0", "Expires=Thu, 01 Jan 1970 00:00:00 GMT"]
            if domain:
                attrs.append(f"Domain={domain}")
            if secure:
                attrs.append("Secure")
            out.append("; ".join(attrs))
    return out
