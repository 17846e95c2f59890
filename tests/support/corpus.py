"""Loaders for the shared test corpus (../shared/corpus, relative to the project root)."""

from __future__ import annotations

import json
import re
from pathlib import Path

from tests.support import ROOT

CORPUS = ROOT.parent / "shared" / "corpus"
HTML5LIB = CORPUS / "html5lib-tests"


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
