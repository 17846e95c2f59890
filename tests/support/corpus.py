"""Loaders for the test corpus: real pages and the html5lib suites.

The full corpus lives beside the checkout in ``../shared/corpus`` (83 pages); a lone
clone has the part vendored in ``tests/data/corpus`` (17 pages, the html5lib suites,
the DuckDuckGo test pages; see its NOTICE). The loaders read the full corpus when it
is there and the vendored part otherwise; a test that needs something only the full
corpus has calls ``need_full``, which skips it with a message naming what is missing.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.support import ROOT

SHARED = ROOT.parent / "shared" / "corpus"
VENDORED = ROOT / "tests" / "data" / "corpus"
FULL = (SHARED / "pages").is_dir()
CORPUS = SHARED if FULL else VENDORED
HTML5LIB = CORPUS / "html5lib-tests"


def need_full(what: str) -> None:
    """Skip the calling test unless the full corpus is beside the checkout."""
    if not FULL:
        pytest.skip(
            f"needs {SHARED / what} (the full corpus beside the checkout); "
            f"only the part in {VENDORED.relative_to(ROOT)} is here"
        )


def page(name: str) -> Path:
    """A saved page with trackers, by file name (in both the full and vendored corpus)."""
    path = CORPUS / "pages" / "with-trackers" / name
    if not path.is_file():
        need_full(f"pages/with-trackers/{name}")
    return path


def _undouble(text: str) -> str:
    return re.sub(r"\\u([0-9a-fA-F]{4})", lambda m: chr(int(m.group(1), 16)), text)


def tokenizer_inputs() -> list[bytes]:
    """Every input of the html5lib tokenizer suite, UTF-8 encoded."""
    out: list[bytes] = []
    for path in sorted((HTML5LIB / "tokenizer").glob("*.test")):
        data = json.loads(path.read_text(encoding="utf-8"))
        for case in data.get("tests", []):
            text = case["input"]
            if case.get("doubleEscaped"):
                text = _undouble(text)
            out.append(text.encode("utf-8", "surrogatepass"))
    return out


def tree_inputs() -> list[bytes]:
    """Every #data section of the html5lib tree-construction suite."""
    out: list[bytes] = []
    for path in sorted((HTML5LIB / "tree-construction").rglob("*.dat")):
        text = path.read_text(encoding="utf-8")
        for block in re.split(r"\n(?=#data\n)", "\n" + text):
            if not block.startswith("#data\n"):
                continue
            data = block[len("#data\n") :]
            end = re.search(r"\n#(errors|document-fragment|script-|new-errors)", data)
            out.append(data[: end.start() if end else None].encode("utf-8", "surrogatepass"))
    return out


def pages(kind: str = "*") -> list[Path]:
    """Saved real-world pages: kind is "with-trackers", "clean" or "*" (both)."""
    return sorted((CORPUS / "pages").glob(f"{kind}/*.html"))


def ddg_pages() -> list[Path]:
    return sorted((CORPUS / "ddg-privacy-test-pages").rglob("*.html"))
