"""The offline commands: ``check`` (the rule files validate, their examples give what
they expect: consent/examples.py runs them, and no two categories claim one element),
``rules`` (the rule set in force) and ``rewrite`` (a page as a visitor with a given
consent would get it, without the banner). For QA without a server."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

from proxy.consent.coverage import RULE_ID as CATALOGUE_ID
from proxy.consent.enforce import page_for
from proxy.consent.examples import run_examples
from proxy.consent.layers import BUILTIN, OVERRIDE, Layers, builtin_directory
from proxy.consent.model import ConsentPolicy, parse_consent_arg
from proxy.consent.overlaps import overlap_lines
from proxy.consent.plans import compile_plan
from proxy.consent.rules import CATALOGUE_FILE, RuleError, RuleSet, all_errors
from proxy.html.charset import CharsetError
from proxy.http.consent_hook import consent_body
from proxy.http.transcode import PageText
from proxy.selftest import SelfTestError, verify
from proxy.settings import EXIT_FAILED, EXIT_USAGE
from proxy.ui.furniture import PageFurniture
from proxy.ui.templates import Templates


def _load(layers: Layers) -> RuleSet | None:
    try:
        return layers.load()
    except RuleError as exc:
        for error in all_errors(exc):
            print(f"consent-proxy: error: {error}", file=sys.stderr)
        return None


def check(layers: Layers, policy: ConsentPolicy | None = None, strict: bool = False) -> int:
    """Exit 0 when every rule file validates and every example passes, 1 otherwise;
    keys a file still gives their old names are noted (they still work). Overlaps
    between categories and disabled ids that name no rule are warnings, and failures
    with ``strict``."""
    ruleset = _load(layers)
    if ruleset is None:
        return EXIT_FAILED
    for note in (n for rule in ruleset.rules for n in rule.notes):
        print(f"consent-proxy: note: {note}", file=sys.stderr)
    outcomes = run_examples(ruleset, policy or ConsentPolicy())
    failed = [o for o in outcomes if not o.passed]
    for outcome in failed:
        print(f"consent-proxy: {outcome.message()}", file=sys.stderr)
    warnings = [*layers.notes(ruleset), *overlap_lines(ruleset)]
    for warning in warnings:
        print(f"consent-proxy: warning: {warning}", file=sys.stderr)
    print(
        f"{len(ruleset.rules)} rules ({len(ruleset.active)} enabled), generation "
        f"{ruleset.generation}: {len(outcomes) - len(failed)} of {len(outcomes)} examples "
        f"passed, {len(warnings)} warning{'' if len(warnings) == 1 else 's'}"
    )
    return EXIT_FAILED if failed or (strict and warnings) else 0


def list_rules(layers: Layers, as_json: bool = False) -> int:
    """Print the rule set in force: one line per rule, or JSON."""
    ruleset = _load(layers)
    if ruleset is None:
        return EXIT_FAILED
    rows = [
        {
            "id": r.id,
            "name": r.name,
            "category": r.category,
            "source": r.source,
            "enabled": r.enabled,
            "off_by": (
                None
                if r.enabled
                else "disabled_rules"
                if r.id in layers.disabled
                else "enabled = false"
            ),
            "blocks": len(r.blocks),
            "injects": len(r.injects),
            "file": r.file,
        }
        for r in ruleset.rules
    ]
    catalogue = _catalogue_row(layers, ruleset)
    if as_json:
        doc = {
            "generation": ruleset.generation,
            "builtin": str(builtin_directory()) if layers.builtin else None,
            "operator": str(layers.operator.resolve()) if layers.operator else None,
            "rules": rows,
            "catalogue": catalogue,
        }
        print(json.dumps(doc, indent=2))
        return 0
    print(f"generation {ruleset.generation}")
    print(f"built-in rules: {builtin_directory() if layers.builtin else 'off'}")
    print(f"your rules:     {layers.operator.resolve() if layers.operator else 'none (--rules)'}")
    header = ("id", "name", "category", "source", "enabled", "blocks", "injects")
    table = [header] + [
        (
            str(row["id"]),
            str(row["name"]),
            str(row["category"]),
            str(row["source"]),
            "yes" if row["enabled"] else f"no ({row['off_by']})",
            str(row["blocks"]),
            str(row["injects"]),
        )
        for row in rows
    ]
    widths = [max(len(line[i]) for line in table) for i in range(len(header))]
    for line in table:
        print("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip())
    print(f"{len(ruleset.rules)} rules, {len(ruleset.active)} enabled")
    if catalogue is None:
        print(f"{CATALOGUE_ID}: none (no {CATALOGUE_FILE} in either layer)")
        return 0
    state = "enabled" if catalogue["enabled"] else f"disabled ({catalogue['off_by']})"
    categories = ", ".join(catalogue["categories"]) or "none"
    print(
        f"{CATALOGUE_ID}: the catalogue of third parties, {catalogue['source']}, {state}: "
        f"{catalogue['domains']} domains and {catalogue['signatures']} signatures "
        f"({categories}); {catalogue['file']}"
    )
    return 0


def _catalogue_row(layers: Layers, ruleset: RuleSet) -> dict[str, Any] | None:
    """The catalogue as a rule source for the listing: where its table comes from,
    whether it is on, the consent categories it holds and how many domains and
    signatures. Switched off by ``disabled_rules`` it is not in the rule set: its
    table is read anyway, to show what is off. None when neither layer has one."""
    catalogue = ruleset.catalogue
    off_by = None
    if CATALOGUE_ID in layers.disabled:
        off_by = "disabled_rules"
        on = dataclasses.replace(layers, disabled=layers.disabled - {CATALOGUE_ID})
        catalogue = on.load().catalogue
    if catalogue is None:
        return None
    if off_by is None and not catalogue.enabled:
        off_by = "enabled = false"
    operator = (
        layers.operator is not None and catalogue.file == f"{layers.operator}/{CATALOGUE_FILE}"
    )
    return {
        "id": CATALOGUE_ID,
        "source": OVERRIDE if operator else BUILTIN,
        "enabled": off_by is None,
        "off_by": off_by,
        "categories": sorted(catalogue.categories),
        "domains": len(catalogue.literals),
        "signatures": len(catalogue.signatures),
        "file": catalogue.file,
    }


def rewrite(
    file: str, consent_text: str, layers: Layers, explain: bool, policy: ConsentPolicy | None = None
) -> int:
    policy = policy or ConsentPolicy()
    try:
        consent = parse_consent_arg(consent_text, policy)
    except ValueError as exc:
        print(f"consent-proxy: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    ruleset = _load(layers)
    if ruleset is None:
        return EXIT_USAGE
    try:  # a rewriter that works, and rules that give their examples' answers
        verify(ruleset, policy, Templates())
    except SelfTestError as exc:
        print(f"consent-proxy: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        data = sys.stdin.buffer.read() if file == "-" else Path(file).read_bytes()
    except OSError as exc:
        print(f"consent-proxy: error: {file}: {exc.strerror}", file=sys.stderr)
        return EXIT_USAGE
    furniture = PageFurniture(Templates(), banner=False)
    plan = compile_plan(ruleset, consent, surrogates=furniture.surrogates)  # as the proxy does
    page = page_for(plan, consent, "/", furniture)
    # Read in its encoding as the proxy reads it (BOM, <meta>; XHTML by its name).
    body = consent_body(page, debug_headers=False)
    text = PageText(body, None, xml=file.endswith((".xhtml", ".xht")))
    try:
        out = text.feed(data) + text.close()
    except CharsetError as exc:
        print(f"consent-proxy: error: {file}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    sys.stdout.buffer.write(out)
    sys.stdout.buffer.flush()
    if explain:
        print(f"consent: {consent.header()}; rules={ruleset.generation}", file=sys.stderr)
        for (rule, action), count in sorted(page.counts.items()):
            print(f"{rule}: {action} x{count}", file=sys.stderr)
        if not page.counts:
            print("no rule changed the page", file=sys.stderr)
    return 0
