"""The offline commands: ``check`` (the rule files validate, and their examples give
what they expect: consent/examples.py runs them) and ``rewrite`` (a page as a visitor
with a given consent would get it, without the banner). For QA without a server."""

from __future__ import annotations

import sys
from pathlib import Path

from proxy.consent.enforce import page_for
from proxy.consent.examples import run_examples
from proxy.consent.model import ConsentPolicy, parse_consent_arg
from proxy.consent.plans import compile_plan
from proxy.consent.rules import RuleError, RuleSet, all_errors, load_rules
from proxy.html.charset import CharsetError
from proxy.http.consent_hook import consent_body
from proxy.http.transcode import PageText
from proxy.selftest import SelfTestError, verify
from proxy.settings import EXIT_FAILED, EXIT_USAGE
from proxy.ui.furniture import PageFurniture
from proxy.ui.templates import Templates


def _load(directory: str) -> RuleSet | None:
    try:
        return load_rules(directory)
    except RuleError as exc:
        for error in all_errors(exc):
            print(f"consent-proxy: {error}", file=sys.stderr)
        return None


def check(directory: str, policy: ConsentPolicy | None = None) -> int:
    """Exit 0 when every rule file validates and every example passes, 1 otherwise;
    keys a file still gives their old names are noted (they still work)."""
    ruleset = _load(directory)
    if ruleset is None:
        return EXIT_FAILED
    for note in (n for rule in ruleset.rules for n in rule.notes):
        print(f"consent-proxy: note: {note}", file=sys.stderr)
    outcomes = run_examples(ruleset, policy or ConsentPolicy())
    failed = [o for o in outcomes if not o.passed]
    for outcome in failed:
        print(f"consent-proxy: {outcome.message()}", file=sys.stderr)
    print(
        f"{len(ruleset.rules)} rules ({len(ruleset.active)} enabled), generation "
        f"{ruleset.generation}: {len(outcomes) - len(failed)} of {len(outcomes)} examples passed"
    )
    return EXIT_FAILED if failed else 0


def rewrite(
    file: str, consent_text: str, directory: str, explain: bool, policy: ConsentPolicy | None = None
) -> int:
    policy = policy or ConsentPolicy()
    try:
        consent = parse_consent_arg(consent_text, policy)
    except ValueError as exc:
        print(f"consent-proxy: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    ruleset = _load(directory)
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
