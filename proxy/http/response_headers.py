"""The response headers of a proxied answer: decided here, and only here.

``response_headers`` takes the origin's headers and what the body path knows of the
body that leaves (``Body``: the origin's bytes or a rewritten body, its coding and
length, what the rewrite cache did) and returns the headers the visitor gets. Both
body paths (passthrough.py, rewrite_body.py) call it just before the response
starts, and nothing changes the headers after it.

The rules, in the order they apply:

- hop-by-hop headers go (and the ones ``Connection`` names); Content-Length is
  re-framed; our Via is appended to the origin's;
- a response that sets a cookie is private (a cookie is one visitor's);
- exactly one Content-Type, as mime.py read it;
- a rewritten body: the origin's coding, ranges and digests no longer describe it,
  its own coding is said, and it varies on Accept-Encoding;
- an HTML page: its ETag names the consent variant (validators.py), and a page whose
  body depends on consent is private, varies on Cookie and Sec-GPC and keeps no
  Last-Modified; then what the page itself adds (``BodyRewrite.fix_headers``: room in
  its Content-Security-Policy, cookies, the debug headers);
- Content-Length: the origin's for its own bytes, the body's when it is sent whole.
"""

from __future__ import annotations

from typing import NamedTuple

from multidict import CIMultiDict, CIMultiDictProxy

from proxy.http import mime
from proxy.http.cache import Status
from proxy.http.hook import BodyRewrite
from proxy.http.upstream import HOP_BY_HOP, strip_hop_by_hop, via_chain
from proxy.http.validators import add_vary, make_private, variant_etag

# Hop-by-hop; Content-Length: re-framed by the proxy; Via: ours is added.
_DROP = HOP_BY_HOP | {"content-length", "via"}
# What describes the origin's bytes, not a body the proxy made from them.
_OF_THE_ORIGINS_BYTES = ("Content-Encoding", "Accept-Ranges", "Content-MD5", "Digest")
# The encoding too: the origin chose it from the client's Accept-Encoding.
_CONSENT_VARY = ("Accept-Encoding", "Cookie", "Sec-GPC")
_CONSENT_VARY_TEXT = ", ".join(_CONSENT_VARY)


class Body(NamedTuple):
    """What the body path knows of the body that leaves. A tuple: one is made per
    rewritten response (a frozen dataclass's constructor costs several times more)."""

    rewritten: bool = False  # made by the proxy (decoded, rewritten, encoded again)
    coding: str | None = None  # a rewritten body's Content-Encoding (None: identity)
    length: int | None = None  # a rewritten body's length, when it is sent whole
    cache: Status | None = None  # what the rewrite cache did
    cached_actions: str | None = None  # a hit: the actions of the page it gives
    head: bool = False  # a HEAD on the rewrite path: no body was rewritten


UNTOUCHED = Body()  # the origin's bytes, as they came (the answer to most requests)


def response_headers(
    origin: CIMultiDictProxy[str] | CIMultiDict[str],
    status: int,
    ctype: mime.ResponseType,
    via: str,
    body: Body = UNTOUCHED,
    page: BodyRewrite | None = None,
    validated: str | None = None,
) -> CIMultiDict[str]:
    """The headers of the response to the visitor (rules: see the module docstring).

    ``origin``: the origin's response headers; ``via``: this proxy's name in Via;
    ``page``: the hook of an HTML page (None for any other answer); ``validated``:
    the variant a translated If-None-Match named, for an answer that is not a page
    (a 304's ETag names it: the browser's cached page is of that variant).
    """
    headers = strip_hop_by_hop(origin, _DROP)
    if "Set-Cookie" in headers:
        make_private(headers)
    headers["Via"] = via_chain(origin, f"1.1 {via}")
    if ctype.changed:
        headers.popall("Content-Type", None)
        if ctype.header is not None:
            headers["Content-Type"] = ctype.header
    if body.rewritten:
        for name in _OF_THE_ORIGINS_BYTES:
            headers.popall(name, None)
    variant = page.variant if page is not None else validated if status == 304 else None
    if variant is not None and "ETag" in headers:
        headers["ETag"] = variant_etag(headers["ETag"], variant)
    if body.rewritten:
        if body.coding:
            headers["Content-Encoding"] = body.coding
        if page is None or not page.depends_on_consent:  # else with Cookie, below
            add_vary(headers, "Accept-Encoding")
    if page is not None:
        if page.depends_on_consent:
            consent_dependent(headers)
        page.fix_headers(headers)
        if "X-Consent-Actions" in headers:
            _actions(headers, body)
    if body.rewritten:
        if body.length is not None:
            headers["Content-Length"] = str(body.length)
    elif status != 204:
        length = origin.get("Content-Length")
        if length is not None and length.isdigit():
            headers["Content-Length"] = length  # the same bytes (a 304: the page's)
    return headers


def consent_dependent(headers: CIMultiDict[str]) -> None:
    """A body that depends on consent is private, varies on Cookie and Sec-GPC and
    keeps no Last-Modified (validators are per variant, see validators.py)."""
    if "Cache-Control" in headers:
        make_private(headers)
    else:
        headers.add("Cache-Control", "private")
    if "Vary" in headers:
        add_vary(headers, *_CONSENT_VARY)
    else:
        headers.add("Vary", _CONSENT_VARY_TEXT)
    if "Last-Modified" in headers:
        headers.popall("Last-Modified")


def _actions(headers: CIMultiDict[str], body: Body) -> None:
    """X-Consent-Actions (debug headers) as the body path knows them: none for a HEAD
    (no body was rewritten to report on), a cache hit's stored ones, and what the
    rewrite cache did (QA sees a hit as such)."""
    if body.head:
        headers.popall("X-Consent-Actions")
        return
    if body.cached_actions is not None:
        headers["X-Consent-Actions"] = body.cached_actions
    if body.cache is not None:
        headers["X-Consent-Actions"] = f"{headers['X-Consent-Actions']}; cache={body.cache}"
