"""Content-Type read as browsers read it, and sniffing untyped bodies (proxy/http/mime.py).
Through the real proxy: tests/http/test_page_types.py.

What browsers do was checked in Chromium 156 (Debian) by serving each case from a
small origin: the last valid Content-Type wins and keeps an earlier charset of the
same type; an empty, invalid, ``unknown/unknown`` or ``*/*`` one is sniffed; a body
with no type that starts with ``<a>`` is HTML; a gzip body with no type is decoded,
then sniffed, and one in a coding nobody decodes is sniffed as it came."""

from __future__ import annotations

import gzip

import pytest

from proxy.http.mime import (
    MediaType,
    Sniffer,
    parse_mime_type,
    response_type,
    sniffs_as_html,
    split_list,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("text/html", MediaType("text/html")),
        (" Text/HTML ; Charset=UTF-16LE ", MediaType("text/html", (("charset", "UTF-16LE"),))),
        ('text/html;charset="utf-8";charset=x', MediaType("text/html", (("charset", "utf-8"),))),
        ('text/html; charset="a\\"b"', MediaType("text/html", (("charset", 'a"b'),))),
        ("text/html;;charset=;x", MediaType("text/html")),
        ("text/html;charset", MediaType("text/html")),
        ("", None),
        ("foo", None),
        ("/html", None),
        ("text/", None),
        ("te xt/html", None),
        ("text/ht ml", None),
    ],
)
def test_parse_mime_type(text: str, expected: MediaType | None) -> None:
    assert parse_mime_type(text) == expected


def test_split_list_keeps_commas_in_quotes() -> None:
    assert split_list('text/html; a="x,y" , image/png,') == ['text/html; a="x,y"', "image/png", ""]


@pytest.mark.parametrize(
    ("values", "html", "header", "changed", "charset"),
    [
        ((), None, None, False, None),
        (("text/html; charset=utf-8",), True, "text/html; charset=utf-8", False, "utf-8"),
        (("image/png",), False, "image/png", False, None),
        (("",), None, None, True, None),
        (("foo",), None, "foo", False, None),  # one header with one (bad) type: as sent
        (("unknown/unknown",), None, "unknown/unknown", False, None),
        (("*/*",), None, "*/*", False, None),
        (("image/png", "text/html"), True, "text/html", True, None),
        (("text/html", "image/png"), True, "image/png", True, None),  # a browser shows PNG
        (("image/png, text/html",), True, "text/html", True, None),
        (("text/html", ""), True, "text/html", True, None),
        (("text/html", "foo"), True, "text/html", True, None),
        (("image/png", "*/*"), False, "image/png", True, None),
        (
            ("text/html;charset=utf-16le", "text/html"),
            True,
            "text/html;charset=utf-16le",
            True,
            "utf-16le",
        ),
        (
            ("text/html;charset=utf-16le", "application/xhtml+xml"),
            True,
            "application/xhtml+xml",
            True,
            None,
        ),
        (("text/plain", "text/plain"), False, "text/plain", True, None),
    ],
)
def test_response_type(
    values: tuple[str, ...],
    html: bool | None,
    header: str | None,
    changed: bool,
    charset: str | None,
) -> None:
    kind = response_type(values)
    assert (kind.html, kind.header, kind.changed, kind.charset) == (html, header, changed, charset)


def test_xhtml_is_html_read_as_xml() -> None:
    assert response_type(("application/xhtml+xml",)).xml
    assert response_type(("application/xhtml+xml; charset=utf-8",)).html
    assert not response_type(("text/html",)).xml


@pytest.mark.parametrize(
    ("body", "html"),
    [
        (b"<!DOCTYPE html><p>x", True),
        (b"\n\t <html>", True),
        (b"<a>link</a>", True),  # <a> with ">" after it: WHATWG's pattern, once missed
        (b"<b>bold", True),
        (b"<P>para", True),
        (b"\xef\xbb\xbf<html>", True),
        (b"\xff\xfe" + "<html>".encode("utf-16-le"), True),
        (b"<!-- c -->", True),
        (b"hello <html>", False),
        (b"<?xml version='1.0'?><feed/>", False),
        (b'{"a": "<html>"}', False),
        (b"\x89PNG\r\n", False),
    ],
)
def test_sniffs_as_html(body: bytes, html: bool) -> None:
    assert sniffs_as_html(body) is html


def test_sniffer_decodes_what_browsers_decode() -> None:
    page = b"<!doctype html><title>t</title>" + b"<p>x</p>" * 1000
    packed = gzip.compress(page)
    sniffer = Sniffer("gzip")
    # The gzip header alone says nothing: more is wanted, then the decoded start tells.
    assert not sniffer.feed(packed[:10])
    assert sniffer.feed(packed[10:])
    assert sniffer.html
    unknown = Sniffer("compress")  # a coding nobody decodes: looked at as it came
    assert unknown.feed(page) and unknown.html
    broken = Sniffer("gzip")
    broken.feed(b"\x1f\x8b\x08\x00" + b"\xff" * 40)
    assert not broken.html


def test_sniffer_bounds_what_a_bomb_expands_to() -> None:
    packed = gzip.compress(b" " * 50_000_000)
    sniffer = Sniffer("gzip")
    assert sniffer.feed(packed)
    assert not sniffer.html
