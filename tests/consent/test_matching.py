"""Which elements a block acts on: the host a URL attribute points at, and snippets."""

from __future__ import annotations

import pytest

from proxy.consent.matching import applies, host_of
from proxy.consent.rules import Block
from proxy.html import Element, Rewriter


@pytest.mark.parametrize(
    ("url", "host"),
    [
        ("https://www.google-analytics.com/analytics.js", "www.google-analytics.com"),
        ("//connect.facebook.net/en_US/sdk.js", "connect.facebook.net"),
        ("  HTTPS://Ad.DoubleClick.NET./x  ", "ad.doubleclick.net"),
        ("http://user:pw@px.example:8080/p.gif", "px.example"),
        ("http://[2001:db8::1]/x", "2001:db8::1"),
        ("/static/app.js", None),
        ("app.js", None),
        ("data:image/gif;base64,R0lGOD", None),
        ("http://[::1/x", None),  # unreadable: no host
        ("", None),
    ],
)
def test_host_of(url: str, host: str | None) -> None:
    assert host_of(url) == host


def acted_on(html: str, block: Block) -> list[str]:
    """The tags of the elements of ``html`` that ``block`` acts on."""
    found: list[str] = []

    def look(el: Element) -> None:
        if applies(block, el):
            found.append(el.get("id") or el.tag)

    rw = Rewriter([(block.selector, look)])
    rw.feed(html.encode())
    rw.close()
    return found


@pytest.mark.parametrize(
    ("html", "found"),
    [
        ('<img id="a" src="https://px.tracker.example/p.gif">', ["a"]),
        ('<img id="b" src="https://tracker.example.evil/p.gif">', []),
        ('<img id="c" src="https://nottracker.example/p.gif">', []),  # not a subdomain
        ('<img id="d" srcset="/a.png 1x, https://cdn.tracker.example/b.png 2x">', ["d"]),
        ('<img id="e" data-src="//tracker.example/lazy.png">', ["e"]),
        ('<img id="f" alt="https://tracker.example/">', []),  # not a URL attribute
    ],
)
def test_url_hosts(html: str, found: list[str]) -> None:
    assert acted_on(html, Block("img", (), ("tracker.example",), "remove")) == found


def test_snippets_and_hosts_together() -> None:
    block = Block("script", ("gtag(",), ("tracker.example",), "remove")
    html = (
        '<script id="a" src="https://tracker.example/t.js">gtag("x")</script>'
        '<script id="b" src="https://tracker.example/t.js">other()</script>'
        '<script id="c">gtag("x")</script>'
    )
    assert acted_on(html, block) == ["a"]
