"""The supported CSS selector subset, as tables."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from proxy.html.selectors import SelectorError, parse_selector


@dataclass
class El:
    tag: str
    attrs: dict[str, str] = field(default_factory=dict)

    def get(self, name: str) -> str | None:
        return self.attrs.get(name)


A = El(
    "a",
    {
        "id": "main",
        "class": "btn  share-x",
        "href": "https://x.com/share?u=1",
        "lang": "en-US",
        "data-k": "Value",
    },
)


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("a", True),
        ("A", True),
        ("div", False),
        ("*", True),
        ("#main", True),
        ("#Main", False),
        (".btn", True),
        (".share-x", True),
        (".share", False),
        ("a.btn.share-x", True),
        ("a.btn.nope", False),
        ("[href]", True),
        ("[title]", False),
        ("[data-k=Value]", True),
        ("[data-k=value]", False),
        ("[data-k=value i]", True),
        ("[data-k='Value']", True),
        ('[data-k="Value"]', True),
        ("[class~=btn]", True),
        ("[class~=bt]", False),
        ("[lang|=en]", True),
        ("[lang|=en-US]", True),
        ("[lang|=e]", False),
        ("[href^='https://x.com']", True),
        ("[href^=http\\:]", False),
        ("[href$='u=1']", True),
        ("[href*='x.com/sh']", True),
        ("[href*='']", False),
        ("[href^='HTTPS' i]", True),
        ("a:not(.nope)", True),
        ("a:not(.btn)", False),
        (":not(div)", True),
        ("div, a", True),
        ("div,span", False),
    ],
)
def test_compound_matching(selector: str, expected: bool) -> None:
    assert any(cx.matches(A, []) for cx in parse_selector(selector)) is expected


def test_combinators() -> None:
    html_, body, div, p = El("html"), El("body"), El("div", {"class": "w"}), El("p")
    span = El("span")
    (desc,) = parse_selector("div.w span")
    (child,) = parse_selector("div.w > span")
    (deep,) = parse_selector("html div > p span")
    assert desc.matches(span, [html_, body, div, p])
    assert not child.matches(span, [html_, body, div, p])
    assert child.matches(span, [html_, body, div])
    assert deep.matches(span, [html_, body, div, p])
    assert not deep.matches(span, [html_, body, p, div])


@pytest.mark.parametrize(
    "selector",
    ["a + b", "a ~ b", "a:hover", "a::before", "a:not(:not(b))", "[x=", "", "a,", "a >", "#"],
)
def test_unsupported_is_an_error_naming_it(selector: str) -> None:
    with pytest.raises(SelectorError) as info:
        parse_selector(selector)
    assert repr(selector) in str(info.value) or repr(selector.strip()) in str(info.value)
    assert "supported" in str(info.value)


def test_needle_is_a_literal_every_match_contains() -> None:
    assert parse_selector("div.fb-like")[0].subject.needle == ("fb-like", False, "class")
    assert parse_selector("iframe[src*='doubleclick.net'][width]")[0].subject.needle == (
        "doubleclick.net",
        False,
        "src",
    )
    assert parse_selector("a[HREF*=X i]")[0].subject.needle == ("X", True, "href")
    # Needles are attribute values (the rewriter looks for them there, not in names).
    assert parse_selector("a[data-x]")[0].subject.needle is None
    assert parse_selector("a[data-x=''][id=k]")[0].subject.needle == ("k", False, "id")
    assert parse_selector("script")[0].subject.needle is None
    assert parse_selector("a:not(.x)")[0].subject.needle is None
