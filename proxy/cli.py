"""``consent-proxy serve | demo``: the command line.

Flags come from the settings table (``proxy.settings.FIELDS``), so every flag is
also a ``CONSENT_PROXY_*`` variable and a key of the ``--config`` TOML file.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from proxy import offline
from proxy.observe.logs import OneLineFormatter
from proxy.server import check_aiohttp, run_workers, serve
from proxy.settings import EXIT_USAGE, FIELDS, SettingsError, load_settings


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="consent-proxy", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the proxy in front of an origin")
    demo = sub.add_parser("demo", help="run the proxy in front of its built-in demo site")
    check = sub.add_parser("check", help="validate the rules and run their examples")
    check.add_argument("--rules", default=None, help="rules directory (default: rules)")
    rewrite = sub.add_parser("rewrite", help="rewrite a page offline, as a visitor would get it")
    rewrite.add_argument("file", help="an HTML file, or - for standard input")
    rewrite.add_argument(
        "--consent", required=True, help="all, none, or a cookie value like analytics=1&social=0"
    )
    rewrite.add_argument("--rules", default=None, help="rules directory (default: rules)")
    rewrite.add_argument("--explain", action="store_true", help="say on stderr what each rule did")
    for cmd in (serve, demo):
        cmd.add_argument("--config", help="TOML settings file")
        for spec in FIELDS:
            if cmd is demo and spec.name == "upstream":
                continue
            cmd.add_argument(
                "--" + spec.name.replace("_", "-"),
                dest=spec.name,
                default=None,
                metavar="VALUE",
                help=f"{spec.help} ({spec.expected})",
            )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command in ("check", "rewrite"):
        try:  # the environment and CONSENT_PROXY_CONFIG still name the cookie and policy
            base = load_settings({"rules": args.rules})
        except SettingsError as exc:
            print(f"consent-proxy: error: {exc}", file=sys.stderr)
            return EXIT_USAGE
        if args.command == "check":
            return offline.check(base.rules, base.consent_policy)
        return offline.rewrite(
            args.file, args.consent, base.rules, args.explain, base.consent_policy
        )
    flags = {k: v for k, v in vars(args).items() if k not in ("command", "config")}
    try:
        if args.command == "demo":
            flags.setdefault("upstream", None)
            flags["upstream"] = "http://127.0.0.1:1"  # replaced by the demo origin's port
            settings = load_settings(flags, config=args.config)
        else:
            settings = load_settings(flags, config=args.config)
    except SettingsError as exc:
        print(f"consent-proxy: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
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
