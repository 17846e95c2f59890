"""What the proxy does to an HTML body, and the response headers that go with it.

``BodyRewrite`` is the one hook the proxy calls for HTML: ``feed``/``close`` turn the
decoded body into the new one, ``variant`` names the output (it goes into the ETag so
a cache never confuses two variants), ``fix_headers`` adjusts the response headers.
The identity rewrite is what the proxy does with no rules.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

from multidict import CIMultiDict


class BodyRewrite(Protocol):
    @property
    def variant(self) -> str: ...

    def feed(self, chunk: bytes) -> bytes: ...

    def close(self) -> bytes: ...

    def fix_headers(self, headers: CIMultiDict[str]) -> None: ...


@dataclass(frozen=True)
class RequestInfo:
    """What a rewrite may know about the request (no body, no peer address)."""

    method: str
    path: str
    headers: Mapping[str, str]
    secure: bool


RewriteFactory = Callable[[RequestInfo], BodyRewrite]


class Identity:
    """Leaves the body as it is."""

    variant = "id"

    def feed(self, chunk: bytes) -> bytes:
        return chunk

    def close(self) -> bytes:
        return b""

    def fix_headers(self, headers: CIMultiDict[str]) -> None:
        return None


def identity_factory(info: RequestInfo) -> BodyRewrite:
    return Identity()


# -- validators -------------------------------------------------------------------------


def _split_tags(header: str) -> list[str]:
    tags: list[str] = []
    current: list[str] = []
    quoted = False
    for ch in header:
        if ch == '"':
            quoted = not quoted
        if ch == "," and not quoted:
            tags.append("".join(current).strip())
            current = []
        else:
            current.append(ch)
    tags.append("".join(current).strip())
    return [t for t in tags if t]


def variant_etag(etag: str, variant: str) -> str:
    """The weak ETag of a rewritten body: the origin's tag plus the variant."""
    opaque = etag[2:] if etag.startswith("W/") else etag
    opaque = opaque.strip('"').replace("~", "_")
    return f'W/"{opaque}~{variant}"'


def upstream_if_none_match(header: str, variant: str) -> tuple[str | None, bool]:
    """Translate a client's If-None-Match for the origin.

    Tags from this variant go back to the origin's tag; tags from another variant are
    dropped (their page must be rendered again); other tags pass as they are. Returns
    the header to send (None: send none) and whether a variant tag was translated.
    """
    if header.strip() == "*":
        return header, False
    kept: list[str] = []
    translated = False
    for tag in _split_tags(header):
        body = tag[2:] if tag.startswith("W/") else tag
        opaque = body.strip('"')
        if "~" in opaque:
            origin, _, tag_variant = opaque.rpartition("~")
            if tag_variant == variant:
                kept.append(f'W/"{origin}"')
                translated = True
            continue
        kept.append(tag)
    return (", ".join(kept) if kept else None), translated
