"""``consent-proxy COMMAND``: the command line.

Flags come from the settings table (``proxy.settings.FIELDS``), so every flag is
also a ``CONSENT_PROXY_*`` variable and a key of the ``--config`` TOML file.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from proxy.settings import (
    EXIT_FAILED,
    EXIT_USAGE,
    FIELDS,
    Field,
    Settings,
    SettingsError,
    load_settings,
)

DESCRIPTION = """\
A reverse proxy that enforces each visitor's cookie consent on the HTML it serves:
trackers the visitor has not agreed to are removed or held behind a placeholder
before the page reaches the browser.

Every setting is a flag, a CONSENT_PROXY_* environment variable (--max-body is
CONSENT_PROXY_MAX_BODY) and a key of the TOML file given with --config; flags win
over the environment, the environment over the file.
"""

EXAMPLES = {
    "serve": "consent-proxy serve --upstream http://127.0.0.1:8000 --listen 0.0.0.0:8080 \\\n"
    "      --rules /etc/consent-proxy/rules --trusted-proxies 127.0.0.1/32",
    "demo": "consent-proxy demo --listen 127.0.0.1:8080",
    "check": "consent-proxy check --rules /etc/consent-proxy/rules --strict",
    "rules": "consent-proxy rules --rules /etc/consent-proxy/rules --disabled-rules facebook",
    "rewrite": "consent-proxy rewrite page.html --consent none --explain > out.html",
    "health": "consent-proxy health   # in the container: exit 0 while the proxy answers",
    "inventory": "consent-proxy inventory saved/*.html --first-party cdn.example.com --json",
}
# Rule-set flags shared by serve, demo and the offline commands.
RULE_FLAGS = ("rules", "disabled_rules", "builtin_rules")
_METAVARS = (
    ("HOST:PORT", "HOST:PORT"),
    ("URL", "URL"),
    ("seconds", "SECONDS"),
    ("bytes", "BYTES"),
    ("integer", "N"),
    ("directory", "DIR"),
    ("file path", "FILE"),
    ("CIDR", "CIDRS"),
    ("rule ids", "IDS"),
    ("categories", "CATEGORIES"),
    ("path or an http", "URL"),
)


def _metavar(spec: Field) -> str:
    return next((m for key, m in _METAVARS if key in spec.expected), "VALUE")


def _add_setting(cmd: argparse.ArgumentParser, spec: Field) -> None:
    default = getattr(Settings(), spec.name)
    if isinstance(default, bool):
        cmd.add_argument(
            "--" + spec.name.replace("_", "-"),
            dest=spec.name,
            default=None,
            action=argparse.BooleanOptionalAction,
            help=f"{spec.help} (default: {'on' if default else 'off'})",
        )
        return
    shown = default
    if isinstance(default, tuple | frozenset):
        shown = ",".join(sorted(str(v) for v in default))
    cmd.add_argument(
        "--" + spec.name.replace("_", "-"),
        dest=spec.name,
        default=None,
        metavar=_metavar(spec),
        help=f"{spec.help} ({spec.expected}; default: {shown if shown != '' else 'none'})",
    )


def _command(
    sub: argparse._SubParsersAction[argparse.ArgumentParser], name: str, summary: str
) -> argparse.ArgumentParser:
    return sub.add_parser(
        name,
        help=summary,
        description=summary[0].upper() + summary[1:] + ".",
        epilog="example:\n  " + EXAMPLES[name],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="consent-proxy",
        description=DESCRIPTION,
        epilog="Run 'consent-proxy COMMAND --help' for a command's flags and an example.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve = _command(sub, "serve", "run the proxy in front of an origin")
    demo = _command(sub, "demo", "run the proxy in front of its built-in demo site")
    check = _command(sub, "check", "validate the rules, run their examples, warn about overlaps")
    check.add_argument(
        "--strict",
        action="store_true",
        help="exit 1 on warnings too (rules of two categories claiming one host or script text)",
    )
    check.add_argument("--list", action="store_true", help="also print the rule set in force")
    rules = _command(sub, "rules", "print the rule set in force, built-in and yours")
    rules.add_argument("--json", action="store_true", help="as JSON")
    rewrite = _command(sub, "rewrite", "rewrite a page offline, as a visitor would get it")
    rewrite.add_argument("file", help="an HTML file, or - for standard input")
    rewrite.add_argument(
        "--consent", required=True, help="all, none, or a cookie value like analytics=1&social=0"
    )
    rewrite.add_argument("--explain", action="store_true", help="say on stderr what each rule did")
    health = _command(
        sub, "health", "ask the running proxy's /_consent/health (for container health checks)"
    )
    health.add_argument("--timeout", type=float, default=3.0, metavar="SECONDS", help="default: 3")
    inventory = _command(
        sub, "inventory", "list the third-party hosts of saved pages and what covers each"
    )
    inventory.add_argument("files", nargs="+", metavar="FILE", help="HTML files, or - for stdin")
    inventory.add_argument("--json", action="store_true", help="as JSON")
    for cmd in (serve, demo, check, rules, rewrite, health, inventory):
        cmd.add_argument("--config", metavar="FILE", help="TOML settings file")
    for spec in FIELDS:
        for cmd in (serve, demo):
            if not (cmd is demo and spec.name == "upstream"):
                _add_setting(cmd, spec)
        if spec.name in RULE_FLAGS:
            for cmd in (check, rules, rewrite, inventory):
                _add_setting(cmd, spec)
        if spec.name == "first_party":
            _add_setting(inventory, spec)
        if spec.name in ("listen", "admin_token"):
            _add_setting(health, spec)
    return parser


_OWN: tuple[str, ...] = ("command", "config", "strict", "list", "json", "file", "files")
_OWN += ("consent", "explain")
_OWN += ("timeout",)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    flags = {k: v for k, v in vars(args).items() if k not in _OWN}
    try:
        if args.command == "demo":
            flags["upstream"] = "http://127.0.0.1:1"  # replaced by the demo origin's port
        settings = load_settings(flags, config=args.config)
    except SettingsError as exc:
        print(f"consent-proxy: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if args.command in ("check", "rules", "rewrite", "health", "inventory"):
        try:
            return _offline(args, settings)
        except BrokenPipeError:  # `consent-proxy rules | head`: the reader has enough
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 0
    from proxy.observe.logs import OneLineFormatter
    from proxy.server import check_aiohttp, run_workers, serve

    for problem in check_aiohttp():
        print(f"consent-proxy: warning: {problem}", file=sys.stderr)
    errors = logging.StreamHandler()
    errors.setFormatter(OneLineFormatter("%(levelname)s %(name)s: %(message)s"))
    logging.basicConfig(level=logging.INFO, handlers=[errors])
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    if args.command == "demo":
        from proxy import demo

        return demo.run(settings)
    if settings.workers > 1:
        return run_workers(settings)
    return serve(settings)


def _offline(args: argparse.Namespace, settings: Settings) -> int:
    if args.command == "health":
        from proxy import probe

        return probe.health(settings, args.timeout)
    from proxy import offline

    layers = settings.rule_layers
    if args.command == "inventory":
        from proxy.offline_inventory import inventory

        return inventory(
            args.files, layers, settings.first_party, args.json, settings.consent_policy
        )
    if args.command == "rules":
        return offline.list_rules(layers, args.json)
    if args.command == "check":
        if args.list and offline.list_rules(layers) != 0:
            return EXIT_FAILED
        return offline.check(layers, settings.consent_policy, args.strict)
    return offline.rewrite(args.file, args.consent, layers, args.explain, settings.consent_policy)
