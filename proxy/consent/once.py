"""An embed's "Load this": one held embed shown on the next load of its page, once.

An embed (an iframe, embed or object of a denied category) held behind a
placeholder has the placeholder's anchor, ``cp-<category>-<n>`` (returning.py numbers
them). Its "Load this" button posts ``once=1&next=/page#cp-media-2`` to /_consent,
which answers 303 to ``next`` and sets a short-lived cookie naming that embed on that
page: the anchor and a digest of the page's path (with its query). The next HTML page
of that path this visitor gets shows that one embed (with the anchor as its id, so
the browser lands on it), still holds every other one, and expires the cookie. The
visitor's consent cookie is not touched: a reload holds the embed again.

A cookie for another path, with a value that is not an anchor and a digest, or given
twice with different values is ignored (the embed stays held). The digest is no
secret: a visitor who forges the cookie shows an embed to themselves, which the
button does anyway; another site cannot set it (the post is same-site only).

The cookie is defined here; enforce.py honours and expires it, proxy/ui/endpoints.py
sets it.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping

from proxy.consent.model import cookie_values
from proxy.consent.returning import MAX_AGE as MAX_AGE  # one minute, as the return cookie
from proxy.consent.returning import expired, parse_anchor, short_lived

EMBED_TAGS = frozenset({"iframe", "frame", "embed", "object"})  # shown by themselves
_DIGEST = 16  # hex digits of the path's SHA-256 (64 bits: paths of one site)
_VALUE = re.compile(r"(cp-[a-z]{1,16}-[0-9]{1,4})\.([0-9a-f]{" + str(_DIGEST) + "})")


def cookie_name(consent_cookie: str) -> str:
    """The once cookie sits beside the consent cookie (``consent-once``)."""
    return f"{consent_cookie}-once"


def path_digest(path: str) -> str:
    """What binds the cookie to a page: a digest of its path with its query, as the
    request sent it (the placeholder's ``next`` is the same)."""
    return hashlib.sha256(path.encode("utf-8", "surrogatepass")).hexdigest()[:_DIGEST]


def cookie_value(anchor: str, path: str) -> str | None:
    """``cp-media-2.<digest>`` for the embed ``anchor`` on ``path``; None when
    ``anchor`` is not a placeholder's."""
    if parse_anchor(anchor) is None:
        return None
    return f"{anchor}.{path_digest(path)}"


def target(next_path: str) -> tuple[str, str] | None:
    """(path, anchor) of a "Load this" post's ``next`` (``/page?q#cp-media-2``), or
    None when it names no placeholder."""
    path, sep, fragment = next_path.partition("#")
    if not sep or not path or parse_anchor(fragment) is None:
        return None
    return path, fragment


def set_header(anchor: str, path: str, consent_cookie: str, *, secure: bool) -> str | None:
    """The Set-Cookie value asking the next load of ``path`` to show ``anchor``'s
    embed; None when ``anchor`` is not a placeholder's."""
    value = cookie_value(anchor, path)
    if value is None:
        return None
    return short_lived(cookie_name(consent_cookie), value, secure=secure)


def expire_header(consent_cookie: str) -> str:
    return expired(cookie_name(consent_cookie))


def requested(headers: Mapping[str, str], consent_cookie: str, path: str) -> tuple[str, int] | None:
    """The embed (category, n) a request for ``path`` asks to show once, or None: no
    cookie, a cookie for another page, unreadable or several different values."""
    getall = getattr(headers, "getall", None)
    cookie_headers: list[str] = getall("Cookie", []) if getall else [headers.get("Cookie", "")]
    name = cookie_name(consent_cookie)
    values = {v for h in cookie_headers for v in cookie_values(h, name)}
    if len(values) != 1:
        return None
    m = _VALUE.fullmatch(values.pop())
    if m is None or m.group(2) != path_digest(path):
        return None
    return parse_anchor(m.group(1))
