"""The inventory's scan for written authorities: the engine in use (Hyperscan where
it installs) gives exactly what the two ``re`` patterns give, on every corpus page
and on hostile bytes."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from multidict import CIMultiDict, CIMultiDictProxy

from proxy.app import consent_rewrites
from proxy.consent import authorities
from proxy.consent.inventory import InventoryBook
from proxy.consent.reload import RulesState
from proxy.http.hook import RequestInfo
from proxy.settings import Settings
from tests.support import ROOT

CORPUS = sorted((ROOT / "tests/data/corpus/pages").glob("*/*.html"))

CASES = [
    (b'<img src="https://a.example/x.gif">', [(16, b"a.example")]),
    (b"<a href=//b.example:8080/>", [(8, b"b.example:8080")]),
    (b'<img src="https:\\\\back.slash\\x">', [(16, b"back.slash")]),
    (b'<img src="/\\mixed.example/x">', [(10, b"mixed.example")]),
    (b"///three.example", [(1, b"three.example")]),  # a third slash: the run starts later
    (b"//ab //abc", [(5, b"abc")]),  # three host bytes at least
    (b"// a comment\n//x.y", [(13, b"x.y")]),
    (b"//u@h.example:1/", [(0, b"u@h.example:1")]),
    (b"//[::1]:80/", [(0, b"[::1]:80")]),
    (b"//\xc3\xa9t\xc3\xa9.example/", [(0, b"\xc3\xa9t\xc3\xa9.example")]),
    (b"//" + b"a" * 300, [(0, b"a" * 260)]),  # the run stops at 260 bytes
    (b"//a.b", [(0, b"a.b")]),  # at the very end of the bytes held
    (b"//a.", []),
    (b"", []),
]


@pytest.mark.parametrize(("data", "expected"), CASES)
def test_finds_every_authority_with_its_offset(data: bytes, expected: list[object]) -> None:
    assert authorities.find(data) == expected
    assert authorities.find_re(data) == expected


def test_the_engine_in_use_agrees_with_re_on_the_corpus() -> None:
    assert CORPUS
    for page in CORPUS:
        data = page.read_bytes()
        assert authorities.find(data) == authorities.find_re(data), page


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from([b"/", b"\\", b"a", b".", b":", b"@", b"<", b'"', b" ", b"\xff"])))
def test_the_engine_in_use_agrees_with_re_on_any_bytes(parts: list[bytes]) -> None:
    data = b"".join(parts)
    assert authorities.find(data) == authorities.find_re(data)


def test_hyperscan_is_used_where_it_installs() -> None:
    pytest.importorskip("hyperscan")
    assert authorities.ENGINE == "hyperscan"


def test_corpus_pages_hold_authorities() -> None:
    """The corpus test above compares something: its pages name hosts."""
    assert sum(len(authorities.find(p.read_bytes())) for p in CORPUS) > 1000


def test_what_covers_an_authority_is_remembered_per_page_host() -> None:
    """One book, two sites: a host is the site's own on one and a third party on the
    other, whichever page came first (the book remembers judgements by page host)."""
    state = RulesState.load(Settings().rule_layers)
    book = InventoryBook()
    factory = consent_rewrites(Settings(), state, None, book)
    page = b'<html><body><img src="https://img.site-a.example/p.gif" alt=""></body></html>'
    for host in ("site-a.example", "site-b.example", "site-a.example"):
        headers = CIMultiDictProxy(CIMultiDict({"Host": host}))
        rewrite = factory(RequestInfo("GET", "/", headers))
        rewrite.feed(page)
        rewrite.close()
    assert book.current is not None
    assert book.current.uncovered == {"img.site-a.example": {"img": 1}}
