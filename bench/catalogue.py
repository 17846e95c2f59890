"""What finding the catalogue's hosts in pages costs, option by option.

    .venv/bin/python -m bench.catalogue [--rounds N] [--chunk BYTES]

Over the 83 pages of ../shared/corpus (pages/ and ddg-privacy-test-pages/, 11 MB),
on one core, CPU time of this process (not wall time: steadier on a shared
machine), best of N rounds, every option timed in every round:

1. multi-literal prefilters over whole pages (the catalogue's domains as literals
   in any case, and its loader signatures): Hyperscan and the pure-Python engine,
   whole and streamed in chunks; for scale bytes.find of one literal, bytes.lower,
   a single ``re`` alternation of all domains, and "every '//' then url_host".
2. per-URL cost: a simple tag scan (lexer.TAG over the page, attributes parsed),
   then every URL of every start tag read (contacts + url_target) and looked up in
   the catalogue; and the same work done only for the tags a prefilter hit or a
   SUSPECT match falls in (what a scanner steered by the prefilter does).
3. the text check (prefilter + host read around each hit) over all inline scripts.
4. building the catalogue (the prefilter's compilation included).
"""

from __future__ import annotations

import argparse
import bisect
import os
import re
import time
from collections.abc import Callable
from pathlib import Path

from proxy.consent.catalogue import Catalogue, load_catalogue
from proxy.consent.contacts import contacts
from proxy.consent.prefilter import SUSPECT, PythonEngine
from proxy.consent.urls import url_host, url_target
from proxy.consent.verdicts import element_hits, text_hits
from proxy.html import lexer, skip

CORPUS = Path(__file__).resolve().parent.parent.parent / "shared" / "corpus"
_SCRIPT = re.compile(rb"<script\b[^>]*>(.*?)</script", re.S | re.I)


def load() -> list[bytes]:
    paths = sorted((CORPUS / "pages").glob("*/*.html"))
    paths += sorted((CORPUS / "ddg-privacy-test-pages").rglob("*.html"))
    return [p.read_bytes() for p in paths]


Job = Callable[[bytes], int]  # one page -> a count (hits, URLs, ...), for the table


def best_of(jobs: dict[str, Job], pages: list[bytes], rounds: int) -> dict[str, tuple[float, int]]:
    """Seconds (best round) and the count of each job; jobs alternate within a round."""
    best = {name: float("inf") for name in jobs}
    counts = dict.fromkeys(jobs, 0)
    for _ in range(rounds):
        for name, job in jobs.items():
            start = time.process_time()
            counts[name] = sum(job(p) for p in pages)
            best[name] = min(best[name], time.process_time() - start)
    return {name: (best[name], counts[name]) for name in jobs}


def prefilter_jobs(catalogue: Catalogue, chunk: int) -> dict[str, Job]:
    hyperscan = catalogue.prefilter
    python = PythonEngine(hyperscan.patterns)
    domains = [p.text.decode("ascii") for p in hyperscan.patterns if p.caseless]
    alternation = re.compile(skip.literals_pattern(domains).encode("ascii"))

    def streamed(engine: object) -> Job:
        def job(page: bytes) -> int:
            stream = engine.stream()  # type: ignore[attr-defined]
            hits = sum(len(stream.feed(page[i : i + chunk])) for i in range(0, len(page), chunk))
            return hits + len(stream.close())

        return job

    def one_find(page: bytes) -> int:
        return page.count(b"doubleclick.net")

    def slashes(page: bytes) -> int:
        text = page.decode("latin-1")
        found, at = 0, text.find("//")
        while at != -1:
            host = url_host(text[at : at + 300].split('"', 1)[0].split("'", 1)[0], "https")
            found += host is not None and catalogue.lookup(host) is not None
            at = text.find("//", at + 2)
        return found

    jobs: dict[str, Job] = {
        "bytes.find, one literal (scale)": one_find,
        "bytes.lower (scale)": lambda page: len(page.lower()) * 0,
    }
    if hyperscan.engine == "hyperscan":
        jobs["hyperscan, whole page"] = lambda page: len(hyperscan.scan(page))
        jobs[f"hyperscan, streamed in {chunk} B chunks"] = streamed(hyperscan)
    jobs["pure Python engine, whole page"] = lambda page: len(python.scan(page))
    jobs[f"pure Python engine, streamed in {chunk} B chunks"] = streamed(python)
    jobs["every '//' then url_host + lookup"] = slashes
    jobs["one re alternation of all domains"] = lambda page: sum(
        1 for _ in alternation.finditer(page.lower())
    )
    return jobs


def start_tags(page: bytes) -> list[tuple[int, int, str, dict[str, str]]]:
    """(start, end, name, attributes) of every start tag a simple scan finds."""
    tags = []
    for m in lexer.TAG.finditer(page):
        if m.group(1):
            continue
        name = m.group(2).lower().decode("latin-1")
        attrs = lexer.parse_attributes(m.group(), m.start(3) - m.start(), "utf-8")
        tags.append((m.start(), m.end(), name, {a.name: a.value for a in attrs}))
    return tags


def url_jobs(catalogue: Catalogue, pages: list[bytes]) -> tuple[dict[str, Job], dict[str, int]]:
    parsed = {id(p): start_tags(p) for p in pages}
    urls = {
        id(p): [c.url for _, _, name, attrs in parsed[id(p)] for c in contacts(name, attrs.get)]
        for p in pages
    }
    stats = {
        "start tags": sum(len(t) for t in parsed.values()),
        "URLs in them": sum(len(u) for u in urls.values()),
    }

    def scan_only(page: bytes) -> int:
        return len(start_tags(page))

    def lookups(page: bytes) -> int:
        found = 0
        for url in urls[id(page)]:
            target = url_target(url, "https")
            found += target is not None and catalogue.lookup(*target) is not None
        return found

    def every_tag(page: bytes) -> int:
        return sum(
            len(list(element_hits(name, attrs.get, catalogue, scheme="https")))
            for _, _, name, attrs in parsed[id(page)]
        )

    def hit_tags(page: bytes) -> list[tuple[int, int, str, dict[str, str]]]:
        """The tags a prefilter hit falls in (one bisect per hit, none per tag)."""
        tags = parsed[id(page)]
        starts = [t[0] for t in tags]
        out: dict[int, tuple[int, int, str, dict[str, str]]] = {}
        for start, _, _ in catalogue.prefilter.scan(page):
            at = bisect.bisect_right(starts, start) - 1
            if at >= 0 and start < tags[at][1]:
                out[at] = tags[at]
        return list(out.values())

    def steered(page: bytes) -> int:
        return sum(
            len(list(element_hits(name, attrs.get, catalogue, scheme="https")))
            for _, _, name, attrs in hit_tags(page)
        )

    stats["tags with a prefilter hit"] = sum(len(hit_tags(p)) for p in pages)
    stats["tags with a SUSPECT match (no hit needed)"] = sum(
        1 for p in pages for s, e, _, _ in parsed[id(p)] if SUSPECT.search(p, s, e)
    )
    jobs: dict[str, Job] = {
        "simple tag scan, attributes parsed (no lookup)": scan_only,
        "url_target + lookup of every URL (values listed before)": lookups,
        "contacts + url_target + lookup, every start tag": every_tag,
        "prefilter, then contacts + lookup of the tags hit": steered,
    }
    return jobs, stats


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--chunk", type=int, default=16384)
    args = parser.parse_args()
    pages = load()
    size = sum(map(len, pages))
    load1 = os.getloadavg()[0]
    print(
        f"{len(pages)} pages, {size / 1e6:.1f} MB, best of {args.rounds} rounds, one core "
        f"(load average {load1:.1f} on {os.cpu_count()} CPUs)\n"
    )

    build = {}
    for engine in ("hyperscan", "python"):
        try:
            start = time.process_time()
            catalogue = load_catalogue(engine=engine)
            build[engine] = time.process_time() - start
        except ImportError:
            continue
    catalogue = load_catalogue()
    print(
        f"catalogue: {len(catalogue.literals)} domains, {len(catalogue.signatures)} signatures; "
        + ", ".join(f"built with {e} in {s * 1000:.0f} ms" for e, s in build.items())
        + "\n"
    )

    def table(title: str, results: dict[str, tuple[float, int]], unit: str) -> None:
        print(f"{title:<58} {'MB/s':>8} {'ms':>8} {unit:>8}")
        for name, (seconds, count) in results.items():
            print(f"{name:<58} {size / seconds / 1e6:8.1f} {seconds * 1000:8.1f} {count:8d}")
        print()

    jobs = prefilter_jobs(catalogue, args.chunk)
    slow = {"one re alternation of all domains"}
    results = best_of({k: v for k, v in jobs.items() if k not in slow}, pages, args.rounds)
    results.update(best_of({k: v for k, v in jobs.items() if k in slow}, pages, 1))
    table("1. prefilter over whole pages", results, "hits")

    url, stats = url_jobs(catalogue, pages)
    table("2. per-URL lookups (MB/s of page bytes)", best_of(url, pages, args.rounds), "found")
    print("   " + "; ".join(f"{k}: {v}" for k, v in stats.items()) + "\n")

    scripts = [m.group(1) for p in pages for m in _SCRIPT.finditer(p)]
    inline = [s for s in scripts if s.strip()]
    text_bytes = sum(map(len, inline))
    best = float("inf")
    found = 0
    for _ in range(args.rounds):
        start = time.process_time()
        found = sum(len(list(text_hits(s, catalogue))) for s in inline)
        best = min(best, time.process_time() - start)
    print(
        f"3. text check of {len(inline)} inline scripts ({text_bytes / 1e6:.1f} MB): "
        f"{best * 1000:.1f} ms, {text_bytes / best / 1e6:.1f} MB/s, {found} hits"
    )


if __name__ == "__main__":
    main()
