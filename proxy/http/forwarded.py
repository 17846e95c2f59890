"""What a proxy in front says about the request the browser made: the host and scheme it
addressed (``X-Forwarded-Host``/``-Proto``, RFC 7239 ``Forwarded: host=;proto=``), and
the web origin that makes of this site (which ``same_origin_post`` compares a post's
``Origin`` with). Pure functions on header values; whether the
peer is believed at all is decided by the caller (upstream.py: trusted proxies only).

Where several proxies added values, the rightmost one is taken: it was written by the
peer itself (the one that is trusted), the ones to its left by whoever talked to it,
the client included (Apache's mod_proxy appends to a client's ``X-Forwarded-Host``).
A value that is not a plain host (with an optional port) is ignored as a whole, never
half-read: a host from these headers may end up in a cookie's ``Domain``.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

DEFAULT_PORTS = {"http": 80, "https": 443}
# A DNS name (letters, digits, hyphen, underscore: some internal names have one) or an
# IPv4 literal, optionally with a trailing dot; or an IPv6 literal in brackets.
_NAME = re.compile(
    r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?(?:\.[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?)*\.?"
)
_NUMERIC = re.compile(r"[0-9.]+")
_AUTHORITY = re.compile(
    r"(?:(?P<name>[^\[\]:]+)|\[(?P<ip6>[0-9a-f:.]+)\])(?::(?P<port>[0-9]{1,5}))?"
)
# RFC 7239: forwarded-pair = token "=" ( token / quoted-string ), pairs joined by ";",
# elements by ",". Values are read a little more leniently than the grammar (a bare
# host:port or [v6] is common), but never across a separator or a quote.
_PAIR = re.compile(
    r"""\s*([!#$%&'*+.^_`|~0-9A-Za-z-]+)=("(?:[^"\\\x00-\x1f\x7f]|\\[\x20-\x7e])*"|[^";,\s]*)\s*(?:([;,])|$)"""
)
_UNQUOTE = re.compile(r"\\(.)")


@dataclass(frozen=True)
class Authority:
    """A host and optional port, as in a Host header."""

    host: str  # lower-case, no trailing dot; an IPv6 literal without brackets
    port: int | None = None

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port is None else f"{host}:{self.port}"


@dataclass(frozen=True)
class Origin:
    """A web origin (RFC 6454): what a browser's ``Origin`` header names."""

    scheme: str
    host: str
    port: int

    @classmethod
    def of(cls, scheme: str, authority: Authority) -> Origin:
        return cls(scheme, authority.host, authority.port or DEFAULT_PORTS[scheme])

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = DEFAULT_PORTS.get(self.scheme) == self.port
        return f"{self.scheme}://{host}" + ("" if default else f":{self.port}")


def parse_authority(value: str) -> Authority | None:
    """``host[:port]`` read strictly (a name, IPv4 or bracketed IPv6; port 1-65535);
    None for anything else: several hosts, paths, user info, spaces, zone ids."""
    m = _AUTHORITY.fullmatch(value.strip().lower())
    if m is None:
        return None
    port = int(m["port"]) if m["port"] is not None else None
    if port is not None and not 0 < port < 65536:
        return None
    if m["ip6"] is not None:
        try:
            return Authority(str(ipaddress.IPv6Address(m["ip6"])), port)
        except ValueError:
            return None
    name = m["name"]
    if len(name) > 254 or _NAME.fullmatch(name) is None:
        return None
    if _NUMERIC.fullmatch(name):  # all digits and dots: an IPv4 address or nothing
        try:
            return Authority(str(ipaddress.IPv4Address(name.rstrip("."))), port)
        except ValueError:
            return None
    name = name.rstrip(".")
    return Authority(name, port) if name else None


def parse_origin(value: str) -> Origin | None:
    """An ``Origin`` header's origin; None for ``null``, opaque or unreadable ones."""
    scheme, sep, rest = value.strip().partition("://")
    scheme = scheme.lower()
    if not sep or scheme not in DEFAULT_PORTS:
        return None
    authority = parse_authority(rest)
    return Origin.of(scheme, authority) if authority is not None else None


def forwarded_elements(values: Iterable[str]) -> list[dict[str, str]] | None:
    """The elements of ``Forwarded`` header lines, in order, each a dict of its pairs
    (lower-case names, unquoted values); None when any line cannot be read."""
    elements: list[dict[str, str]] = []
    for value in values:
        current: dict[str, str] = {}
        pos = 0
        text = value.strip()
        while pos < len(text):
            m = _PAIR.match(text, pos)
            if m is None or m.end() == pos:
                return None
            name, raw, sep = m[1].lower(), m[2], m[3]
            if raw.startswith('"'):
                raw = _UNQUOTE.sub(r"\1", raw[1:-1])
            if name in current:
                return None  # a parameter twice in one element: RFC 7239 forbids it
            current[name] = raw
            pos = m.end()
            if sep == "," or pos >= len(text):
                elements.append(current)
                current = {}
        if current:
            elements.append(current)
    return elements


def _rightmost(values: Iterable[str]) -> str | None:
    items = [item.strip() for value in values for item in value.split(",")]
    return items[-1] if items and items[-1] else None


def claimed_host(xfh: list[str], forwarded: list[str]) -> Authority | None:
    """The host the browser addressed, as the peer says: the rightmost
    ``X-Forwarded-Host``, else the ``host=`` of the rightmost ``Forwarded`` element;
    None when the peer says nothing readable (then the Host header counts)."""
    if xfh:
        value = _rightmost(xfh)
        return parse_authority(value) if value is not None else None
    elements = forwarded_elements(forwarded) if forwarded else None
    if not elements or "host" not in elements[-1]:
        return None
    return parse_authority(elements[-1]["host"])


def claimed_scheme(xfp: list[str], forwarded: list[str]) -> str | None:
    """The scheme the browser used, as the peer says (``X-Forwarded-Proto``, else the
    ``proto=`` of the rightmost ``Forwarded`` element): "http", "https" or None."""
    if xfp:
        value = _rightmost(xfp)
    else:
        elements = forwarded_elements(forwarded) if forwarded else None
        value = elements[-1].get("proto") if elements else None
    value = value.lower() if value else None
    return value if value in DEFAULT_PORTS else None


def same_origin_post(headers: Mapping[str, str], site: Origin | None) -> bool:
    """Whether a post may change something: not cross-site (CSRF). ``site`` is this
    site's origin as the browser addressed it (a trusted front's X-Forwarded-Host and
    -Proto count), None when unknown.

    A browser's ``Sec-Fetch-Site`` decides when present: the browser compared the
    page's origin with the URL it requested, which is what this check approximates
    (and it holds whatever a front does to Host). Without it, ``Origin`` must equal
    ``site``. Clients that send neither (curl, scripts) are not browsers and pass."""
    fetch_site = headers.get("Sec-Fetch-Site")
    if fetch_site is not None:
        return fetch_site in ("same-origin", "none")
    origin = headers.get("Origin")
    if origin is None:
        return True
    return site is not None and parse_origin(origin) == site
