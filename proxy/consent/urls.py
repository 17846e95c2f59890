"""The host a URL in an HTML attribute makes the browser contact, read the way a
browser reads it, and whether a host belongs to a set of domains.

A tracker URL is matched by its host, never by a substring of the whole URL, and the
host is extracted as the WHATWG URL standard's basic URL parser would extract it,
because that is what the browser fetches:

- leading and trailing C0 controls and spaces are stripped, and ASCII tabs and
  newlines are removed anywhere (``ad.double<TAB>click.net`` is ``ad.doubleclick.net``);
- for the special schemes (http, https, ws, wss, ftp) a backslash is a slash
  (``https:\\\\ad.doubleclick.net\\x``), and any number of slashes may follow the
  scheme (``https:ad.doubleclick.net/x``), unless the page has the same scheme, in
  which case ``https:x`` and ``https:/x`` are paths on the page's own host;
- ``//host/x`` takes the page's scheme;
- userinfo and port are dropped, the host is percent-decoded, lower-cased, its
  trailing dot removed, IDNA full stops read as dots, and a Unicode name given its
  ASCII (punycode) form.

Relative URLs and URLs of other schemes (``data:``, ``javascript:``, ``blob:``,
``mailto:``) have no third-party host: ``url_host`` gives None for them. Entity
references are decoded before (the rewriter's attribute values are decoded).
``url_target`` gives the path too, for entries that name a path on a shared host.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterable, Iterator, Mapping
from typing import TypeVar
from urllib.parse import unquote

SPECIAL_SCHEMES = frozenset({"http", "https", "ws", "wss", "ftp"})
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*):")
_TAB_OR_NEWLINE = re.compile(r"[\t\n\r]")
_C0_OR_SPACE = "".join(chr(c) for c in range(0x21))
_FULL_STOPS = str.maketrans({"\u3002": ".", "\uff0e": ".", "\uff61": "."})
_MAX_URL = 16384  # longer values are read up to here: a host comes early in a URL

T = TypeVar("T")


def url_host(value: str, page_scheme: str | None = None) -> str | None:
    """The host that ``value`` (an attribute's decoded value) points at, or None when
    it has none of its own (relative, or not a network URL).

    ``page_scheme`` is the scheme of the page the URL appears on ("http"/"https");
    unknown (None), a ``scheme:host`` form is read as a host, the cautious reading.
    """
    target = url_target(value, page_scheme)
    return None if target is None else target[0]


def url_target(value: str, page_scheme: str | None = None) -> tuple[str, str] | None:
    """(host, path) that ``value`` points at, read as ``url_host`` reads it; the path
    has backslashes as slashes, no query or fragment, and is "/" when empty. None
    when the URL has no host of its own."""
    url = _TAB_OR_NEWLINE.sub("", value[:_MAX_URL].strip(_C0_OR_SPACE))
    match = _SCHEME.match(url)
    if match is None:
        # No scheme: relative, unless it starts with two slashes (either kind).
        if url[:2].replace("\\", "/") != "//":
            return None
        return _authority(url[2:])
    scheme = match.group(1).lower()
    if scheme not in SPECIAL_SCHEMES:
        return None
    rest = url[match.end() :]
    if scheme == page_scheme and rest[:2].replace("\\", "/") != "//":
        return None  # "https:x" and "https:/x" on an https page: a path of the page's host
    return _authority(rest.lstrip("/\\"))


def _authority(rest: str) -> tuple[str, str] | None:
    end = len(rest)
    for stop in "/\\?#":
        at = rest.find(stop)
        if at != -1 and at < end:
            end = at
    authority = rest[:end].rpartition("@")[2]
    host: str | None
    if authority.startswith("["):  # an IPv6 literal keeps its brackets' content
        close = authority.find("]")
        host = authority[1:close].lower() if close > 1 else None
    else:
        host = normalize_host(authority.partition(":")[0])
    if host is None:
        return None
    return host, _path(rest[end:])


def _path(rest: str) -> str:
    for stop in "?#":
        at = rest.find(stop)
        if at != -1:
            rest = rest[:at]
    return rest.replace("\\", "/") or "/"


def normalize_host(host: str) -> str | None:
    """A host name as browsers compare them: percent-decoded, lower case, IDNA full
    stops as dots, no trailing dot, Unicode labels in their ASCII form."""
    if "%" in host:
        # Not UTF-8 once decoded: no browser would resolve it; compared as it came.
        with contextlib.suppress(UnicodeDecodeError):
            host = unquote(host, errors="strict")
    host = host.translate(_FULL_STOPS).lower().rstrip(".")
    if not host:
        return None
    if not host.isascii():
        try:
            host = host.encode("idna").decode("ascii")
        except UnicodeError:
            return host  # kept as read: still compared label by label
    return host


def srcset_urls(value: str) -> Iterator[str]:
    """The URLs of a ``srcset`` (or ``imagesrcset``) value, each candidate's URL as
    the HTML standard's srcset parser collects it (commas inside a URL kept; trailing
    commas end a candidate; descriptors skipped, parentheses included)."""
    text = value[:_MAX_URL]
    i, n = 0, len(text)
    while i < n:
        while i < n and (text[i] in " \t\n\r\f,"):
            i += 1
        start = i
        while i < n and text[i] not in " \t\n\r\f":
            i += 1
        url = text[start:i]
        if url.endswith(","):
            url = url.rstrip(",")
        else:  # descriptors, up to a comma outside parentheses
            depth = 0
            while i < n:
                c = text[i]
                if c == "(":
                    depth += 1
                elif c == ")" and depth:
                    depth -= 1
                elif c == "," and not depth:
                    break
                i += 1
        if url:
            yield url


class DomainTable(Mapping[str, T]):
    """Domains to values, looked up by host: a host matches a domain when it is the
    domain or one of its subdomains, the longest (most specific) domain winning. One
    dict lookup per label of the host."""

    def __init__(self, entries: Iterable[tuple[str, T]]) -> None:
        self._by_domain: dict[str, T] = {}
        for domain, value in entries:
            normal = normalize_host(domain.lstrip("*.").strip())
            if normal:
                self._by_domain.setdefault(normal, value)

    def lookup(self, host: str) -> tuple[str, T] | None:
        """(the matching domain, its value) for ``host``, or None."""
        table = self._by_domain
        found = table.get(host)
        if found is not None:
            return host, found
        dot = host.find(".")
        while dot != -1:
            parent = host[dot + 1 :]
            found = table.get(parent)
            if found is not None:
                return parent, found
            dot = host.find(".", dot + 1)
        return None

    def __getitem__(self, domain: str) -> T:
        return self._by_domain[domain]

    def __iter__(self) -> Iterator[str]:
        return iter(self._by_domain)

    def __len__(self) -> int:
        return len(self._by_domain)
