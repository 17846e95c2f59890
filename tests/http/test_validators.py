"""Caching headers and validators (proxy/http/validators.py), as tables: what reaches
the origin and the visitor without a socket in between."""

from __future__ import annotations

import pytest
from multidict import CIMultiDict

from proxy.http.validators import (
    add_vary,
    make_private,
    translate_if_none_match,
    upstream_if_none_match,
    variant_etag,
)


@pytest.mark.parametrize(
    ("vary", "names", "expected"),
    [
        ([], ("Cookie",), ["Cookie"]),
        ([], ("Accept-Encoding", "Cookie"), ["Accept-Encoding, Cookie"]),
        (["Accept"], ("Cookie",), ["Accept, Cookie"]),
        (["accept-encoding"], ("Accept-Encoding",), ["accept-encoding"]),  # any case
        (["Accept", "Origin"], ("Cookie",), ["Accept, Origin, Cookie"]),  # merged into one
        (["Accept, , Origin"], ("Origin", "Cookie"), ["Accept, Origin, Cookie"]),
        (["*"], ("Cookie",), ["*"]),  # nothing to add to Vary: *
        (["Accept", "*"], ("Cookie",), ["Accept", "*"]),
    ],
)
def test_add_vary(vary: list[str], names: tuple[str, ...], expected: list[str]) -> None:
    headers: CIMultiDict[str] = CIMultiDict(("Vary", v) for v in vary)
    add_vary(headers, *names)
    assert headers.getall("Vary", []) == expected


@pytest.mark.parametrize(
    ("cache_control", "expected"),
    [
        ([], ["private"]),
        (["max-age=60"], ["private, max-age=60"]),
        (["public, max-age=60"], ["private, max-age=60"]),
        (["s-maxage=600, max-age=60"], ["private, max-age=60"]),
        (["PUBLIC", "S-MaxAge=1"], ["private"]),
        (["private, max-age=5"], ["private, max-age=5"]),  # one private, not two
        (["no-store"], ["no-store"]),  # already kept by no cache
        (["no-store, public"], ["private, no-store"]),
        (["no-cache", "max-age=0"], ["private, no-cache, max-age=0"]),
    ],
)
def test_make_private(cache_control: list[str], expected: list[str]) -> None:
    headers: CIMultiDict[str] = CIMultiDict(("Cache-Control", v) for v in cache_control)
    make_private(headers)
    assert headers.getall("Cache-Control") == expected


@pytest.mark.parametrize(
    ("etag", "variant", "expected"),
    [
        ('"abc"', "v1", 'W/"abc~v1"'),
        ('W/"abc"', "v1", 'W/"abc~v1"'),  # weak either way: the body is not the origin's
        ('"a~b"', "v1", 'W/"a_b~v1"'),  # a '~' of the origin's cannot pass for ours
        ("abc", "v1", 'W/"abc~v1"'),  # unquoted (invalid, seen in the wild)
    ],
)
def test_variant_etag(etag: str, variant: str, expected: str) -> None:
    assert variant_etag(etag, variant) == expected


@pytest.mark.parametrize(
    ("header", "variant", "sent", "translated"),
    [
        ('W/"abc~v1"', "v1", 'W/"abc"', True),  # ours, this variant: the origin's tag
        ('W/"abc~v2"', "v1", None, False),  # another variant's: rendered again
        ('"plain"', "v1", '"plain"', False),  # an image's tag: passes as it is
        ('W/"a~v2", "plain", W/"b~v1"', "v1", '"plain", W/"b"', True),
        ('"x,y", W/"z~v1"', "v1", '"x,y", W/"z"', True),  # commas inside a tag
        ("*", "v1", "*", False),
        (" * ", "v1", " * ", False),
        ("", "v1", None, False),
    ],
)
def test_upstream_if_none_match(
    header: str, variant: str, sent: str | None, translated: bool
) -> None:
    assert upstream_if_none_match(header, variant) == (sent, translated)


@pytest.mark.parametrize(
    ("before", "after", "translated"),
    [
        ({"Accept": "*/*"}, {"Accept": "*/*"}, False),  # no If-None-Match: untouched
        (
            {"If-None-Match": 'W/"abc~v1"', "If-Modified-Since": "Tue, 01 Dec 2026 10:00:00 GMT"},
            {"If-None-Match": 'W/"abc"'},  # the tag decides
            True,
        ),
        (
            {"If-None-Match": 'W/"abc~v2"', "If-Modified-Since": "Tue, 01 Dec 2026 10:00:00 GMT"},
            {},  # only another variant's tag: no 304 at all
            False,
        ),
        (
            {"If-None-Match": '"img"', "If-Modified-Since": "Tue, 01 Dec 2026 10:00:00 GMT"},
            {"If-None-Match": '"img"', "If-Modified-Since": "Tue, 01 Dec 2026 10:00:00 GMT"},
            False,
        ),
    ],
)
def test_translate_if_none_match(
    before: dict[str, str], after: dict[str, str], translated: bool
) -> None:
    headers: CIMultiDict[str] = CIMultiDict(before)
    assert translate_if_none_match(headers, "v1") is translated
    assert dict(headers) == after
