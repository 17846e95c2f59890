"""``consent-proxy inventory FILE...``: the third-party hosts of saved pages, what covers
each (a rule, the catalogue with its classification, the allow lists) and those
nothing covers, with element kinds and counts. The proxy's own classification: each
page goes through the same gate as a page served to a visitor who refused
everything (the output is thrown away), offline."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

from proxy.consent.enforce import EnforcedPage
from proxy.consent.inventory import InventoryBook
from proxy.consent.layers import Layers
from proxy.consent.model import ConsentPolicy, parse_consent_arg
from proxy.consent.plans import compile_plan
from proxy.consent.rules import RuleError, all_errors
from proxy.html import RewriteLimitError
from proxy.html.charset import CharsetError
from proxy.http.consent_hook import consent_body
from proxy.http.transcode import PageText
from proxy.settings import EXIT_USAGE
from proxy.ui.furniture import PageFurniture
from proxy.ui.templates import Templates


def inventory(
    files: Sequence[str],
    layers: Layers,
    first_party: Iterable[str] = (),
    as_json: bool = False,
    policy: ConsentPolicy | None = None,
) -> int:
    """Print the inventory of ``files`` (- is standard input); exit 0, or 2 when the
    rules or a file cannot be read (nothing is printed then)."""
    try:
        ruleset = layers.load()
    except RuleError as exc:
        for error in all_errors(exc):
            print(f"consent-proxy: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    consent = parse_consent_arg("none", policy or ConsentPolicy())
    furniture = PageFurniture(Templates(), banner=False)
    plan = compile_plan(ruleset, consent, surrogates=furniture.surrogates)
    book = InventoryBook(first_party)
    for file in files:
        try:
            data = sys.stdin.buffer.read() if file == "-" else Path(file).read_bytes()
        except OSError as exc:
            print(f"consent-proxy: error: {file}: {exc.strerror}", file=sys.stderr)
            return EXIT_USAGE
        watch = book.watch(ruleset, consent, None)
        page = EnforcedPage(
            plan, "/", furniture, consent=consent, first_party=book.first_party, inventory=watch
        )
        text = PageText(consent_body(page, debug_headers=False), None, file.endswith(".xhtml"))
        try:
            text.feed(data)
            text.close()
        except (CharsetError, RewriteLimitError) as exc:
            print(f"consent-proxy: error: {file}: {exc}", file=sys.stderr)
            return EXIT_USAGE
    found = book.current
    assert found is not None, "book.watch starts the generation's inventory"
    doc = found.as_json()
    doc["files"] = list(files)
    doc["first_party"] = list(book.first_party)
    if as_json:
        print(json.dumps(doc, indent=2))
    else:
        print_table(doc)
    return 0


def print_table(doc: dict[str, object]) -> None:
    """The inventory for a person: uncovered hosts first, then the covered ones."""
    uncovered = doc["uncovered"]
    covered = doc["covered"]
    assert isinstance(uncovered, list) and isinstance(covered, list)
    print(f"{doc['pages']} page(s), rules generation {doc['generation']}")
    print(f"\nNot covered by any rule or catalogue entry ({len(uncovered)} hosts):")
    rows: list[tuple[str, ...]] = [("host", "elements", "kinds")]
    rows += [
        (u["host"], str(u["count"]), ", ".join(f"{k} {n}" for k, n in u["kinds"].items()))
        for u in uncovered
    ]
    _table(rows if uncovered else [("(none)",)])
    print(f"\nCovered ({len(covered)} hosts):")
    rows = [("host", "by", "rule", "entity", "category", "pages")]
    rows += [
        (
            c["host"],
            c["by"],
            c["rule"] or "-",
            c["entity"] or "-",
            c["category"] or "-",
            str(c["pages"]),
        )
        for c in covered
    ]
    _table(rows if covered else [("(none)",)])
    if doc["dropped"]:
        print(f"\n{doc['dropped']} sightings not listed: more than {doc['limit']} hosts")


def _table(rows: Sequence[Sequence[str]]) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  " + "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
