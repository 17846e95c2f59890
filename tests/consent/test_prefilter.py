"""The multi-literal prefilter: Hyperscan and the pure-Python engine give the same
hits, whole or streamed in any chunking, with the boundary rules of the contract."""

from __future__ import annotations

import itertools
import threading

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from proxy.consent.catalogue import load_catalogue
from proxy.consent.prefilter import HyperscanEngine, Pattern, PythonEngine, build_prefilter
from tests.support.corpus import CORPUS

try:
    import hyperscan  # noqa: F401  (a dependency where it has wheels; the fallback always runs)

    HYPERSCAN = True
except ImportError:
    HYPERSCAN = False
needs_hyperscan = pytest.mark.skipif(not HYPERSCAN, reason="hyperscan is not installed here")

DOMAINS = [b"doubleclick.net", b"g.doubleclick.net", b"google-analytics.com", b"t.co", b"co.uk"]
SIGNATURES = [b"fbq(", b"_fbq", b"gtag(", b"googletag.cmd", b"$x.y"]
PATTERNS = [Pattern(d, True) for d in DOMAINS] + [Pattern(s, False) for s in SIGNATURES]
PYTHON = PythonEngine(PATTERNS)
ENGINES: list[PythonEngine | HyperscanEngine] = [PYTHON]
if HYPERSCAN:
    ENGINES.append(HyperscanEngine(PATTERNS))


def texts(hits: list[tuple[int, int, int]], data: bytes) -> list[bytes]:
    return [data[s:e] for s, e, _ in hits]


@pytest.mark.parametrize("engine", ENGINES, ids=lambda e: e.engine)
@pytest.mark.parametrize(
    ("data", "found"),
    [
        (b"//ad.doubleclick.net/x", [b"doubleclick.net"]),
        (b"//AD.DoubleClick.NET/x", [b"DoubleClick.NET"]),
        (b"https://g.doubleclick.net", [b"g.doubleclick.net", b"doubleclick.net"]),
        (b"doubleclick.net", [b"doubleclick.net"]),
        (b"doubleclick.net.", [b"doubleclick.net"]),
        (b"doubleclick.net.example.org", [b"doubleclick.net"]),  # a hint: the URL decides
        (b"notdoubleclick.net", []),
        (b"x-doubleclick.net x_doubleclick.net", []),
        (b"doubleclick.network doubleclick.net-x doubleclick.net_", []),
        (b"t.co/x t.com bit.co", [b"t.co"]),
        (b"bbc.co.uk", [b"co.uk"]),
        (b"fbq('init') _fbq x.fbq( xfbq( _fbq2", [b"fbq(", b"_fbq", b"fbq("]),
        (b"FBQ( Gtag( gtag(", [b"gtag("]),
        (b"$x.y a$x.y $x.yz $x.y.", [b"$x.y", b"$x.y"]),
        (b"window.googletag.cmd.push", [b"googletag.cmd"]),
        (b"", []),
    ],
)
def test_boundaries(
    engine: PythonEngine | HyperscanEngine, data: bytes, found: list[bytes]
) -> None:
    assert texts(engine.scan(data), data) == found


FRAGMENTS = [
    *DOMAINS,
    *SIGNATURES,
    b"DoubleClick.NET",
    b"ad.",
    b".",
    b"-",
    b"_",
    b"$",
    b"x",
    b"/",
    b" ",
    b".com",
    b"\xe3\x80\x82",
]
documents = st.lists(st.sampled_from(FRAGMENTS) | st.binary(max_size=3), max_size=30).map(b"".join)


@settings(max_examples=300, deadline=None)
@given(data=documents, cuts=st.lists(st.integers(min_value=0, max_value=400), max_size=6))
def test_engines_agree_whole_and_streamed(data: bytes, cuts: list[int]) -> None:
    whole = ENGINES[-1].scan(data)
    assert PYTHON.scan(data) == whole
    bounds = sorted({0, len(data), *(c for c in cuts if c < len(data))})
    for engine in ENGINES:
        stream = engine.stream()
        streamed = []
        for a, b in itertools.pairwise(bounds):
            streamed += stream.feed(data[a:b])
        streamed += stream.close()
        assert streamed == whole


def test_byte_by_byte_streaming_finds_hits_across_every_border() -> None:
    data = b"<img src=//ad.doubleclick.net/x><script>fbq('x')</script> t.co"
    for engine in ENGINES:
        stream = engine.stream()
        hits = [h for i in range(len(data)) for h in stream.feed(data[i : i + 1])]
        assert hits + stream.close() == engine.scan(data)


@needs_hyperscan
@pytest.mark.skipif(not (CORPUS / "pages").is_dir(), reason="the shared corpus is not here")
def test_engines_agree_on_the_corpus_with_the_built_in_catalogue() -> None:
    catalogue = load_catalogue(engine="hyperscan")
    python = PythonEngine(catalogue.prefilter.patterns)
    pages = sorted((CORPUS / "pages").glob("*/*.html"))
    total = 0
    for path in pages:
        data = path.read_bytes()
        hits = catalogue.prefilter.scan(data)
        assert python.scan(data) == hits, path.name
        total += len(hits)
        if path.parent.name == "with-trackers":
            assert hits, f"{path.name}: a page with trackers, and the scan found none"
    # The pages carry trackers: the scan found them (over 1,000 in the full corpus's 74
    # pages, 587 in the 17 a lone clone has).
    assert total > 30 * len(pages)


@pytest.mark.parametrize("engine", ENGINES, ids=lambda e: e.engine)
def test_one_engine_serves_threads_at_once(engine: PythonEngine | HyperscanEngine) -> None:
    hs = engine
    data = b"x //doubleclick.net/ fbq(1) " * 20_000
    expected = hs.scan(data)
    results: list[bool] = []

    def scan() -> None:
        results.extend(hs.scan(data) == expected for _ in range(5))

    threads = [threading.Thread(target=scan) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [True] * 15


def test_build_picks_hyperscan_where_it_works_and_names_a_bad_engine() -> None:
    assert build_prefilter(PATTERNS).engine == ("hyperscan" if HYPERSCAN else "python")
    assert build_prefilter(PATTERNS, "python").engine == "python"
    assert build_prefilter([], "python").scan(b"doubleclick.net") == []
    if HYPERSCAN:
        assert build_prefilter([], "hyperscan").scan(b"doubleclick.net") == []
    with pytest.raises(ValueError, match="'re2': expected auto, hyperscan or python"):
        build_prefilter(PATTERNS, "re2")
