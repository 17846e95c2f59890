"""Throughput of the HTML rewriter against DOM parsers doing the same job.

    .venv/bin/python -m bench.rewrite [--rounds N]

Over every page in ../shared/corpus/pages and ddg-privacy-test-pages, on one core:
remove the same tracker elements with proxy.html.Rewriter, BeautifulSoup(html, "lxml"),
lxml.html and selectolax (when installed); html.parser only tokenizes. Prints MB/s and
the ratio to the rewriter, and checks byte identity of the rewriter in the same run.
"""

from __future__ import annotations

import argparse
import html.parser
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.proxy import load_average
from proxy.html import Element, HandlerSpec, Hints, Rewriter

CORPUS = Path(__file__).resolve().parent.parent.parent / "shared" / "corpus"
HOSTS = (
    "google-analytics.com",
    "googletagmanager.com",
    "doubleclick.net",
    "connect.facebook.net",
    "facebook.com",
    "platform.twitter.com",
)
SNIPPETS = ("GoogleAnalyticsObject", "_gaq", "fbq(", "gtag(")


def load() -> list[bytes]:
    paths = sorted((CORPUS / "pages").glob("*/*.html"))
    paths += sorted((CORPUS / "ddg-privacy-test-pages").rglob("*.html"))
    return [p.read_bytes() for p in paths]


# -- the job, as each contender expresses it ------------------------------------------------


def src_hit(value: str | None) -> bool:
    return value is not None and any(h in value for h in HOSTS)


def is_tracker(tag: str, get: Callable[[str], str | None], text: str) -> bool:
    if tag == "script":
        return src_hit(get("src")) or any(s in text for s in SNIPPETS)
    if tag in ("iframe", "img"):
        return src_hit(get("src"))
    if tag == "div":
        return "fb-like" in (get("class") or "").split()
    if tag == "a":
        return "twitter-share-button" in (get("class") or "").split()
    if tag == "link":
        return (get("rel") or "") in ("preconnect", "dns-prefetch") and src_hit(get("href"))
    return False


def remove(el: Element) -> None:
    el.remove()


def remove_script(el: Element) -> None:
    if any(s in el.text for s in SNIPPETS):
        el.remove()


OURS: list[HandlerSpec] = [
    *[(f"script[src*='{h}']", remove) for h in HOSTS],
    # The snippets are hints: scripts whose text holds none pass without a look.
    ("script", remove_script, Hints(text=SNIPPETS)),
    *[(f"iframe[src*='{h}']", remove) for h in HOSTS],
    *[(f"img[src*='{h}']", remove) for h in HOSTS],
    ("div.fb-like", remove),
    ("a.twitter-share-button", remove),
    *[
        (f"link[rel=preconnect][href*='{h}'], link[rel=dns-prefetch][href*='{h}']", remove)
        for h in HOSTS
    ],
]
TAGS = ("script", "iframe", "img", "div", "a", "link")


def ours(page: bytes) -> bytes:
    rw = Rewriter(OURS)
    return rw.feed(page) + rw.close()


def soup(page: bytes) -> bytes:
    from bs4 import BeautifulSoup

    doc = BeautifulSoup(page, "lxml")
    for el in doc.find_all(TAGS):

        def get(name: str, el: Any = el) -> str | None:
            value = el.get(name)
            return value if value is None or isinstance(value, str) else " ".join(value)

        if is_tracker(el.name, get, el.string or ""):
            el.decompose()
    return str(doc).encode()


def lxml_html(page: bytes) -> bytes:
    import lxml.html  # type: ignore[import-untyped]

    doc = lxml.html.document_fromstring(page)
    for el in list(doc.iter(*TAGS)):
        if is_tracker(el.tag, el.get, el.text or ""):
            el.drop_tree()
    out: bytes = lxml.html.tostring(doc)
    return out


def selectolax(page: bytes) -> bytes:
    from selectolax.lexbor import LexborHTMLParser

    doc = LexborHTMLParser(page)
    for tag in TAGS:
        for node in doc.css(tag):
            attrs = node.attributes
            if is_tracker(tag, attrs.get, node.text() if tag == "script" else ""):
                node.decompose()
    return (doc.html or "").encode()


def tokenize_only(page: bytes) -> bytes:
    parser = html.parser.HTMLParser()
    parser.feed(page.decode("utf-8", "replace"))
    parser.close()
    return b""


def measure(fn: Callable[[bytes], bytes], pages: list[bytes], rounds: int) -> float:
    """MB/s over ``pages``, the best of ``rounds``, in CPU time of this process (the
    time it waited for a core on a loaded machine is not counted)."""
    best = float("inf")
    for _ in range(rounds):
        start = time.process_time()
        for page in pages:
            fn(page)
        best = min(best, time.process_time() - start)
    return sum(map(len, pages)) / best / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print(f"CPU time of this process, best of {args.rounds}; load average {load_average()}")
    pages = load()
    mb = sum(map(len, pages)) / 1e6
    nothing = [("div.zz-none", remove), ("script", lambda el: None), ("img[src*=zz-none]", remove)]
    identical = sum(
        1 for p in pages if (lambda rw: rw.feed(p) + rw.close())(Rewriter(nothing)) == p
    )
    removed = sum(1 for p in pages if ours(p) != p)
    print(
        f"{len(pages)} pages, {mb:.1f} MB; identity with no match: {identical}/{len(pages)}; "
        f"pages with trackers removed: {removed}"
    )
    contenders: list[tuple[str, Callable[[bytes], bytes]]] = [
        ("consent-proxy Rewriter (streaming, bytes kept)", ours),
        ("selectolax (Lexbor) + serialize", selectolax),
        ("lxml.html + serialize", lxml_html),
        ("BeautifulSoup(html, 'lxml') + str()", soup),
        ("html.parser, tokenize only", tokenize_only),
    ]
    base = 0.0
    print(f"{'contender':<50} {'MB/s':>8} {'vs ours':>8}")
    for name, fn in contenders:
        try:
            rate = measure(fn, pages, args.rounds if fn is not soup else 1)
        except ImportError:
            print(f"{name:<50} {'n/a':>8}  (not installed)")
            continue
        base = base or rate
        print(f"{name:<50} {rate:8.1f} {rate / base:7.2f}x")
    full_rules(pages, args.rounds)
    print(f"load average at the end: {load_average()}")
    if identical != len(pages):
        raise SystemExit("identity check FAILED")


def full_rules(pages: list[bytes], rounds: int) -> None:
    """The product's own job: every built-in rule, banner and placeholders, for a
    visitor who has not decided yet (what the proxy does to most first visits), with
    and without the catalogue of third parties, and selectolax's parse and serialize
    of the same pages for scale, in one run."""
    import dataclasses

    from multidict import CIMultiDict, CIMultiDictProxy

    from proxy.app import consent_rewrites
    from proxy.consent.reload import RulesState
    from proxy.http.hook import RequestInfo, RewriteFactory
    from proxy.settings import Settings

    state = RulesState.load(Settings().rule_layers)
    without = dataclasses.replace(state, current=dataclasses.replace(state.current, catalogue=None))
    info = RequestInfo("GET", "/", CIMultiDictProxy(CIMultiDict({"Host": "example.org"})))
    news = (CORPUS / "pages" / "with-trackers" / "medicalnewstoday.html").read_bytes()
    print()
    jobs = {}
    from proxy.consent.inventory import InventoryBook

    rows = (
        ("without the catalogue", without, False),
        ("with the catalogue", state, False),
        ("with the catalogue and the inventory", state, True),
    )
    for name, rules, inventory in rows:
        book = InventoryBook(record=inventory)
        factory = consent_rewrites(Settings(), rules, None, book)

        def job(page: bytes, factory: RewriteFactory = factory) -> bytes:
            rw = factory(info)
            return rw.feed(page) + rw.close()

        jobs[name] = job
    # Alternating, each one's best round: the two figures share the machine's moods.
    rates = dict.fromkeys(jobs, 0.0)
    per_page = dict.fromkeys(jobs, float("inf"))
    for _ in range(rounds):
        for name, job in jobs.items():
            rates[name] = max(rates[name], measure(job, pages, 1))
            per_page[name] = min(per_page[name], len(news) / measure(job, [news], 1) / 1e3)
    for name in jobs:
        print(
            f"all built-in rules, visitor yet to decide (banner added), {name}: "
            f"{rates[name]:.1f} MB/s; a {len(news) // 1024} KB news page: {per_page[name]:.2f} ms"
        )
    cost = rates["without the catalogue"] / rates["with the catalogue"] - 1
    print(f"the catalogue's cost: {cost * 100:+.1f}% CPU per byte")
    cost = rates["with the catalogue"] / rates["with the catalogue and the inventory"] - 1
    print(f"the inventory's cost (on top of the catalogue): {cost * 100:+.1f}% CPU per byte")
    try:
        lexbor = measure(selectolax, pages, rounds)
    except ImportError:
        print("selectolax: not installed")
        return
    print(
        f"selectolax parse + serialize: {lexbor:.1f} MB/s, "
        f"{lexbor / rates['with the catalogue']:.1f}x the job with the catalogue"
    )


if __name__ == "__main__":
    main()
