"""The supported CSS selector subset, as tables."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from proxy.html.matcher import LIMIT, Machine, OpenElements
from proxy.html.selectors import Complex, SelectorError, parse_selector


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


# -- combinators on the stack of open elements (proxy.matcher) -----------------------------


def el(spec: str) -> El:
    """``tag``, ``tag.class``, ``tag#id`` or ``tag.class#id``."""
    rest, _, id_ = spec.partition("#")
    tag, *classes = rest.split(".")
    attrs = {"class": " ".join(classes)} if classes else {}
    return El(tag, {**attrs, "id": id_} if id_ else attrs)


def stack_matches(selector: str, path: Sequence[El]) -> bool:
    """Whether the selector matches ``path[-1]`` inside ``path[:-1]``, by the stack."""
    complexes = parse_selector(selector)
    elements = OpenElements(Machine.compile(complexes))
    for ancestor in path[:-1]:
        elements.open(ancestor)
    active = elements.active()
    return any(elements.matches(i, path[-1], active) for i in range(len(complexes)))


def reference(selector: str, path: Sequence[El]) -> bool:
    return any(cx.matches(path[-1], list(path[:-1])) for cx in parse_selector(selector))


@pytest.mark.parametrize(
    ("selector", "path", "expected"),
    [
        ("div span", "html body div p span", True),
        ("div span", "html body p span", False),
        ("div > span", "html div span", True),
        ("div > span", "html div p span", False),
        ("div.w span", "div.w p span", True),
        ("div.w span", "div.x p span", False),
        ("html div > p span", "html body div p span", True),
        ("html div > p span", "html body p div span", False),
        ("html div > p span", "html body div p b span", True),
        ("div > p > span", "div p p span", False),
        ("div > p > span", "p div p span", True),
        ("div > p span", "div p div span", True),  # the p in the div is the one
        ("div > p span", "p div div span", False),
        ("article div script", "article section div script", True),
        ("article div script", "div article script", False),
        ("div div div", "div div", False),
        ("div div div", "div div div", True),
        ("div div div", "div span div span div", True),
        ("div.a div.b img", "div.b div.a img", False),
        ("div.a div.b img", "div.a div.b div.a img", True),
        ("div.a div.b img", "div.a.b img", False),  # one element is one compound
        ("div.a.b img", "div.a.b img", True),
        ("* > span", "span", False),  # no parent at all
        ("* > span", "p span", True),
        ("* span", "span", False),
        ("div *", "div span b", True),
        ("div *", "div", False),
        (":not(div) > span", "div span", False),
        (":not(div) > span", "div p span", True),
        ("div:not(.a) span", "div.a span", False),
        ("div:not(.a) span", "div div.a span", True),
        ("#top span", "div#top p span", True),
        ("#top > span", "div#top p span", False),
        ("p > p span, div > span", "div span", True),
        ("p > p span, div > span", "p p b span", True),
        ("p > p span, div > span", "p b p span", False),
        ("section div.l1 div script", "section div.l1 div.l1 script", True),
        ("section div.l1 div script", "section div div.l1 script", False),
        ("a > b > c d", "a b c x d", True),
        ("a > b > c d", "a x b c d", False),
        ("a > b c > d", "a b x c d", True),
        ("a > b c > d", "a b c x d", False),
    ],
)
def test_combinators_by_the_stack(selector: str, path: str, expected: bool) -> None:
    elements = [el(spec) for spec in path.split()]
    assert reference(selector, elements) is expected
    assert stack_matches(selector, elements) is expected


POOL = [
    "div span",
    "div > span",
    "article div span",
    "div.a > p span",
    "* > span",
    "div.a *",
    ":not(div) > span",
    "div.a div.b span",
    "p > p > p",
    "div span > a",
    "article > div.a span, p.b a",
    "div div.b > div",
    "span",
]
TAGS = ["div", "p", "span", "a", "article"]
event = st.one_of(
    st.tuples(st.just("open"), st.sampled_from(TAGS), st.sampled_from(["", "a", "b", "a b"])),
    st.tuples(st.just("close"), st.sampled_from(TAGS), st.just("")),
    st.tuples(st.just("end"), st.just(""), st.just("")),  # the innermost ends (implied)
)


@settings(max_examples=300, deadline=None)
@given(st.lists(event, max_size=60))
def test_stack_agrees_with_the_reference_on_random_trees(
    events: list[tuple[str, str, str]],
) -> None:
    """Each selector of POOL, compiled together, matches each new element exactly when
    the reference (backtracking over the ancestors) does."""
    complexes: list[Complex] = [cx for sel in POOL for cx in parse_selector(sel)]
    elements = OpenElements(Machine.compile(complexes))
    ancestors: list[El] = []
    for kind, tag, cls in events:
        if kind == "open":
            new = El(tag, {"class": cls} if cls else {})
            active = elements.active()
            got = [elements.matches(i, new, active) for i in range(len(complexes))]
            assert got == [cx.matches(new, ancestors) for cx in complexes], (ancestors, new)
            elements.open(new)
            ancestors.append(new)
        elif kind == "close":
            names = [a.tag for a in ancestors]
            if tag in names:
                del ancestors[len(names) - 1 - names[::-1].index(tag) :]
            elements.close(tag)
        elif ancestors:
            ancestors.pop()
            elements.close_top()
        assert elements.top == (ancestors[-1].tag if ancestors else None)


def test_cost_per_element_does_not_grow_with_depth() -> None:
    """Compounds tested (the matcher's work) per element, 3,000 elements nested or side
    by side, under selectors whose ancestors the page is full of or lacks."""
    selectors = [
        "div.a div span",
        "div div div span",
        "article div span",
        "div.b > div span",
        "main div.x span",
    ]
    complexes = [cx for sel in selectors for cx in parse_selector(sel)]

    def work(nested: bool) -> tuple[int, int]:
        elements = OpenElements(Machine.compile(complexes))
        elements.open(El("article"))
        found = 0
        for i in range(3000):
            div = El("div", {"class": "b" if i % 2 else "c"})
            elements.open(div)
            span, active = El("span"), elements.active()
            found += any(elements.matches(k, span, active) for k in range(len(complexes)))
            if not nested:
                elements.close("div")
        return elements.compound_tests, found

    (deep, deep_found), (flat, flat_found) = work(True), work(False)
    assert deep_found == flat_found == 3000  # "article div span" inside every div
    steps = sum(len(cx.parts) for cx in complexes)
    assert deep <= 3000 * steps and deep < 2 * flat, (deep, flat)


def test_past_the_stack_limit_matching_can_only_widen() -> None:
    """A page that never closes its tags: past LIMIT entries the outermost are merged,
    the ancestors they matched are remembered, and what follows their (lost) end
    still counts as inside them: a selector then matches more, never less."""
    (cx,) = parse_selector("article div span")
    elements = OpenElements(Machine.compile([cx]))
    elements.open(El("article"))
    for i in range(3 * LIMIT):  # alternating names: one entry each, no runs
        elements.open(El("div" if i % 2 else "p"))
    span = El("span")
    assert elements.matches(0, span, elements.active())
    assert len(elements._stack) <= LIMIT
    for _ in range(3 * LIMIT):
        elements.close_top()
    elements.close("article")
    assert elements.matches(0, span, elements.active())  # the reference says False
    elements.open(El("p"))
    assert elements.matches(0, span, elements.active())


def test_runs_of_one_state_take_one_entry() -> None:
    (cx,) = parse_selector("section div span")
    elements = OpenElements(Machine.compile([cx]))
    for _ in range(5000):
        elements.open(El("div"))
    assert elements.active() == elements.active()  # computed once, then kept
    assert len(elements._stack) == 1
    elements.open(El("section"))
    elements.open(El("div"))
    assert elements.matches(0, El("span"), elements.active())
    elements.close("section")
    assert not elements.matches(0, El("span"), elements.active())
    for _ in range(4999):
        elements.close("div")
    assert elements.top == "div"
    elements.close("div")
    assert elements.top is None
