"""No page can stall the proxy: a page nested thousands of elements deep is rewritten
at the cost of a flat one."""

from __future__ import annotations

import time

from proxy.html import Element, Rewriter

DEPTH = 3000
# Ten rules of descendant selectors: three take the page's trackers, the others look
# for ancestors the page has many candidates for, or none (the costly misses).
SELECTORS = (
    "article div script",
    "html div img",
    "body div.box iframe",
    "div.a div img",
    "main div.x img",
    "section div.l1 div script",
    "aside div a",
    "nav div.share a",
    "div#top div script",
    "header div.l2 div img",
)
TRACKERS = (
    '<img src="https://www.facebook.com/tr?id=1&amp;ev=PageView" height="1" width="1">',
    '<script src="https://www.googletagmanager.com/gtag/js?id=G-1"></script>',
    '<iframe src="https://www.facebook.com/plugins/like.php?href=x"></iframe>',
)


def deep_page(depth: int = DEPTH, nested: bool = True, copies: int = 1) -> bytes:
    """``depth`` divs, each inside the previous one (``nested``) or all side by side,
    with trackers at a third, two thirds and the bottom of the nesting; the same bytes
    in another order, so both are the same size (about 119 KB for 3,000). With
    ``copies``, that many such articles one after the other."""
    opens, closes = [], []
    for i in range(depth):
        tracker = TRACKERS[i // 1000 % 3] if i % 1000 == 999 else ""
        opens.append(f'<div class="l{i % 10} box">at level {i:04} {tracker}')
        closes.append("</div>")
    if nested:
        body = "".join(opens) + "".join(closes)
    else:
        body = "".join(o + c for o, c in zip(opens, closes, strict=True))
    article = f"<article>{body}</article>" * copies
    return f"<!doctype html><html><head><title>deep</title></head><body>{article}</body></html>".encode()


def rule_file() -> str:
    blocks = "".join(f'\n[[block]]\nselector = "{s}"\n' for s in SELECTORS)
    return f'name = "Deep"\ncategory = "analytics"\n{blocks}'


def rewrite(page: bytes) -> tuple[bytes, float]:
    """The page through a rewriter removing what the rules select, in 16 KB pieces;
    the output and the time taken."""

    rw = Rewriter([(s, remove) for s in SELECTORS])
    start = time.perf_counter()
    out = b"".join(rw.feed(page[i : i + 16384]) for i in range(0, len(page), 16384))
    out += rw.close()
    return out, time.perf_counter() - start


def test_the_page_is_the_one_of_the_report() -> None:
    page = deep_page()
    assert 110_000 < len(page) < 125_000
    assert page.count(b"<div") == DEPTH and len(deep_page(nested=False)) == len(page)


def test_deep_page_rewritten_in_about_the_time_of_a_flat_one() -> None:
    deep, flat = deep_page(), deep_page(nested=False)
    out_deep, _ = rewrite(deep)
    out_flat, _ = rewrite(flat)
    # Every tracker is inside <article> and a div: taken in both shapes.
    for out in (out_deep, out_flat):
        assert b"facebook" not in out and b"googletagmanager" not in out
        assert out.count(b"<div") == DEPTH and b"level 2999" in out
    # The best of three runs each (a measure of the work, not of the machine's load).
    deep_time = min(rewrite(deep)[1] for _ in range(3))
    flat_time = min(rewrite(flat)[1] for _ in range(3))
    assert deep_time < 5 * flat_time, (deep_time, flat_time)


def test_deep_nesting_inside_a_removed_element_costs_what_flat_nesting_does() -> None:
    """Everything inside a removed element is followed to find its end (and implied
    ends): that must not cost more per element when the content is deeply nested."""

    def timed(page: bytes) -> float:
        best = float("inf")
        for _ in range(3):
            rw = Rewriter([("article", remove)])
            start = time.perf_counter()
            out = rw.feed(page) + rw.close()
            best = min(best, time.perf_counter() - start)
            assert out.endswith(b"<body></body></html>")
        return best

    deep, flat = timed(deep_page(6000)), timed(deep_page(6000, nested=False))
    assert deep < 5 * flat, (deep, flat)


def remove(el: Element) -> None:
    el.remove()
