"""Back to the widget after a placeholder's "Allow ... and show it".

Each placeholder has an id, ``cp-<category>-<n>`` (the n-th element the category's
placeholder blocks held on the page), and its button posts ``next=/page#cp-social-2``.
The page that comes back has no placeholder there any more (the widget is shown), so
the fragment would name nothing and the visitor would land at the top. The 303 that
answers the post therefore also sets a short-lived cookie naming the anchor, and the
next HTML page this visitor gets gives the widget that id (the same blocks, counted
the same way; a widget with an id of its own gets an empty element with it just before
it) and expires the cookie. Without JavaScript this is the only way back: the fragment
never reaches the server. The count can drift only where a held widget contains
another one (the held page never looked inside it): the visitor then lands at a
neighbouring widget of the category, or at the top of the page.

Anchors and the return cookie are defined here; enforce.py numbers the placeholders
and marks the widget, proxy/ui/endpoints.py sets the cookie.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from proxy.consent.model import OPTIONAL, cookie_values

MAX_AGE = 60  # seconds: the redirect is followed at once; a stale one harms nothing
_ANCHOR = re.compile("cp-(" + "|".join(OPTIONAL) + ")-([1-9][0-9]{0,3})")


def cookie_name(consent_cookie: str) -> str:
    """The return cookie sits beside the consent cookie (``consent-return``)."""
    return f"{consent_cookie}-return"


def anchor_id(category: str, n: int) -> str:
    return f"cp-{category}-{n}"


def parse_anchor(text: str) -> tuple[str, int] | None:
    """``cp-social-2`` → ("social", 2); anything else → None."""
    m = _ANCHOR.fullmatch(text)
    return (m.group(1), int(m.group(2))) if m else None


def anchor_in(next_path: str) -> str | None:
    """The placeholder anchor a (safe) ``next`` returns to, or None."""
    _, sep, fragment = next_path.partition("#")
    return fragment if sep and parse_anchor(fragment) else None


def short_lived(name: str, value: str, *, secure: bool) -> str:
    """The Set-Cookie value of a one-minute, HttpOnly, site-wide cookie (this one and
    once.py's: each names a placeholder for the next page load)."""
    parts = [f"{name}={value}", "Path=/", "SameSite=Lax", "HttpOnly", f"Max-Age={MAX_AGE}"]
    if secure:
        parts.append("Secure")
    return "; ".join(parts)


def expired(name: str) -> str:
    """The Set-Cookie value that removes a ``short_lived`` cookie."""
    return f"{name}=; Path=/; Max-Age=0"


def set_header(anchor: str, consent_cookie: str, *, secure: bool) -> str:
    return short_lived(cookie_name(consent_cookie), anchor, secure=secure)


def expire_header(consent_cookie: str) -> str:
    return expired(cookie_name(consent_cookie))


def requested(headers: Mapping[str, str], consent_cookie: str) -> tuple[str, int] | None:
    """The anchor a request asks to return to (its return cookie), or None; several
    or unreadable values count as none."""
    getall = getattr(headers, "getall", None)
    cookie_headers: list[str] = getall("Cookie", []) if getall else [headers.get("Cookie", "")]
    name = cookie_name(consent_cookie)
    values = {v for h in cookie_headers for v in cookie_values(h, name)}
    return parse_anchor(values.pop()) if len(values) == 1 else None
