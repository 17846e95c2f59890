"""The host a URL makes the browser contact, in the hostile forms pages use."""

from __future__ import annotations

import pytest

from proxy.consent.urls import DomainTable, srcset_urls, url_host, url_target


@pytest.mark.parametrize(
    ("value", "page", "host"),
    [
        ("https://ad.doubleclick.net/x", "https", "ad.doubleclick.net"),
        ("HTTPS://AD.DoubleClick.NET/x", "https", "ad.doubleclick.net"),
        ("//ad.doubleclick.net/x", "https", "ad.doubleclick.net"),
        ("  \x01//ad.doubleclick.net/x \x7f", "https", "ad.doubleclick.net"),
        ("\x01 //ad.doubleclick.net/x\x1f ", "https", "ad.doubleclick.net"),
        ("https://ad.double\tclick.net/x", "https", "ad.doubleclick.net"),
        ("ht\ntps://ad.doubleclick.net/x", "https", "ad.doubleclick.net"),
        ("https://ad.doubleclick.net\r\n/x", "https", "ad.doubleclick.net"),
        ("https:\\\\ad.doubleclick.net\\x", "https", "ad.doubleclick.net"),
        ("\\\\ad.doubleclick.net\\x", "https", "ad.doubleclick.net"),
        ("/\\ad.doubleclick.net/x", "https", "ad.doubleclick.net"),
        ("https:ad.doubleclick.net/x", "http", "ad.doubleclick.net"),
        ("https:ad.doubleclick.net/x", None, "ad.doubleclick.net"),
        ("https:ad.doubleclick.net/x", "https", None),  # a path on the page's own host
        ("https:/ad.doubleclick.net/x", "https", None),
        ("https:///ad.doubleclick.net/x", "https", "ad.doubleclick.net"),
        ("http:/ad.doubleclick.net/x", "https", "ad.doubleclick.net"),
        ("https://user:pw@ad.doubleclick.net:443/x", "https", "ad.doubleclick.net"),
        ("https://first.example@ad.doubleclick.net/x", "https", "ad.doubleclick.net"),
        ("https://ad.doubleclick.net./x", "https", "ad.doubleclick.net"),
        ("https://ad.double%63lick.net/x", "https", "ad.doubleclick.net"),
        ("https://ad.doubleclick\u3002net/x", "https", "ad.doubleclick.net"),
        ("https://ad.doubleclick.net?x=//first.example/", "https", "ad.doubleclick.net"),
        ("https://ad.doubleclick.net#frag", "https", "ad.doubleclick.net"),
        ("https://[::1]:8080/x", "https", "::1"),
        ("wss://live.example/socket", "https", "live.example"),
        ("https://bücher.example/x", "https", "xn--bcher-kva.example"),
        ("/js/app.js", "https", None),
        ("js/app.js", "https", None),
        ("?q=//ad.doubleclick.net", "https", None),
        ("#//ad.doubleclick.net", "https", None),
        ("javascript://ad.doubleclick.net/%0aalert(1)", "https", None),
        ("data:text/html,<script src=//ad.doubleclick.net>", "https", None),
        ("mailto:x@ad.doubleclick.net", "https", None),
        ("", "https", None),
        ("https://", "https", None),
        ("https://%ff%fe/x", "https", "%ff%fe"),
    ],
)
def test_url_host_reads_urls_as_browsers_do(value: str, page: str | None, host: str | None) -> None:
    assert url_host(value, page) == host


@pytest.mark.parametrize(
    ("value", "target"),
    [
        ("https://www.google.com/maps/embed?pb=1", ("www.google.com", "/maps/embed")),
        ("https:\\\\www.google.com\\maps\\embed#x", ("www.google.com", "/maps/embed")),
        ("//www.google.com", ("www.google.com", "/")),
        ("//www.google.com?maps", ("www.google.com", "/")),
        ("https://www.google.com#/maps", ("www.google.com", "/")),
        ("https://www.google.com/ma\tps", ("www.google.com", "/maps")),
        ("/maps", None),
    ],
)
def test_url_target_gives_the_path_too(value: str, target: tuple[str, str] | None) -> None:
    assert url_target(value, "https") == target


def test_url_host_never_raises_on_garbage() -> None:
    for value in ["https://[", "https://[]/", "//@", "https://:80", "\\\\", "a" * 100_000, "%"]:
        url_host(value, "https")


@pytest.mark.parametrize(
    ("value", "urls"),
    [
        ("a.png 1x, b.png 2x", ["a.png", "b.png"]),
        ("a.png,b.png", ["a.png,b.png"]),  # no space: one URL holding a comma
        ("a.png, b.png", ["a.png", "b.png"]),
        ("a.png,, b.png 100w", ["a.png", "b.png"]),
        ("https://t.example/x,y.png 1x", ["https://t.example/x,y.png"]),
        ("a.png (max-width: 1px, 2px) 1x, //t.example/p.gif 2x", ["a.png", "//t.example/p.gif"]),
        ("\n\t//t.example/p.gif\n", ["//t.example/p.gif"]),
        ("", []),
        (",,,", []),
    ],
)
def test_srcset_candidates(value: str, urls: list[str]) -> None:
    assert list(srcset_urls(value)) == urls


def test_domain_table_matches_domains_and_subdomains_most_specific_first() -> None:
    table = DomainTable(
        [("doubleclick.net", "ads"), ("*.google.com", "g"), ("maps.google.com", "m")]
    )
    assert table.lookup("doubleclick.net") == ("doubleclick.net", "ads")
    assert table.lookup("ad.g.doubleclick.net") == ("doubleclick.net", "ads")
    assert table.lookup("maps.google.com") == ("maps.google.com", "m")
    assert table.lookup("x.maps.google.com") == ("maps.google.com", "m")
    assert table.lookup("www.google.com") == ("google.com", "g")
    assert table.lookup("notdoubleclick.net") is None
    assert table.lookup("doubleclick.net.evil.example") is None
    assert table.lookup("net") is None
    assert len(table) == 3 and "google.com" in table
