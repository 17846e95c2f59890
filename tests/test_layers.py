"""The layers of proxy/ and what each may import, read from the source with ``ast``.

    html     the rewriter as a library: nothing of the project, no aiohttp
    consent  the consent domain: html only, no aiohttp
    ui       what visitors see: consent, html, observe; aiohttp only in ui/endpoints.py
             (the /_consent endpoints: the one HTTP-facing module of the layer)
    observe  logs and metrics: nothing of the project
    http     the reverse proxy: never ui (what else it may import is decided when the
             HTTP layer gets its own treatment)

The top level (app.py, server.py, cli.py, settings/, demo.py, offline.py) may
import everything; no layer imports the top level (settings included: what a layer
needs of the settings reaches it as arguments, wired by app.py).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

PROXY = Path(__file__).resolve().parent.parent / "proxy"
LAYERS = ("html", "consent", "ui", "observe", "http")


@dataclass(frozen=True)
class Rule:
    may_import: frozenset[str]  # layers of the project, besides its own
    aiohttp: bool | frozenset[str]  # may import aiohttp: all, none, or these modules
    only_checked: frozenset[str] = frozenset()  # http: just these layers are refused


RULES = {
    "html": Rule(frozenset(), False),
    "consent": Rule(frozenset({"html"}), False),
    "ui": Rule(frozenset({"consent", "html", "observe"}), frozenset({"proxy.ui.endpoints"})),
    "observe": Rule(frozenset(), True),
    "http": Rule(frozenset(), True, only_checked=frozenset({"ui"})),
}


@dataclass(frozen=True)
class Import:
    module: str  # the importing module, dotted
    line: int
    target: str  # the imported module, dotted


def module_name(path: Path, root: Path) -> str:
    parts = path.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(root: Path) -> Iterator[Import]:
    """Every import statement under ``root`` (a package directory), function-level and
    ``TYPE_CHECKING`` ones included, relative ones resolved."""
    for path in sorted(root.rglob("*.py")):
        module = module_name(path, root)
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    yield Import(module, node.lineno, alias.name)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")
                    anchor = anchor[: len(anchor) - node.level + 1]
                    base = ".".join([*anchor, base] if base else anchor)
                # "from proxy.ui import csp" imports proxy.ui.csp: name each submodule.
                names = [f"{base}.{a.name}" for a in node.names if a.name != "*"]
                yield from (Import(module, node.lineno, t) for t in names or [base])


def layer_of(module: str) -> str | None:
    """The layer of a module of the project ("" for the top level), None if not ours."""
    parts = module.split(".")
    if parts[0] != "proxy":
        return None
    if len(parts) > 1 and parts[1] in LAYERS:
        return parts[1]
    return ""


def violations(root: Path) -> list[str]:
    """What breaks the layer rules under ``root``, one line each: where, what, why."""
    found = []
    for imp in imports(root):
        layer = layer_of(imp.module)
        if not layer:
            continue
        rule = RULES[layer]
        where = f"{imp.module.replace('.', '/')}.py:{imp.line}: imports {imp.target}"
        top = imp.target.split(".")[0]
        if top == "aiohttp":
            allowed = rule.aiohttp if isinstance(rule.aiohttp, bool) else imp.module in rule.aiohttp
            if not allowed:
                found.append(f"{where}: the {layer} layer does not import aiohttp")
            continue
        target = layer_of(imp.target)
        if target is None or target == layer:
            continue
        if rule.only_checked:
            if target in rule.only_checked:
                found.append(f"{where}: the {layer} layer never imports {target}")
            continue
        if target == "":
            found.append(
                f"{where}: the {layer} layer imports nothing of the top level "
                "(what it needs comes as arguments, wired by app.py)"
            )
        elif target not in rule.may_import:
            allowed_text = ", ".join(sorted(rule.may_import)) or "nothing of the project"
            found.append(f"{where}: the {layer} layer may import {allowed_text}")
    return found


def test_the_layers_keep_to_their_imports() -> None:
    assert violations(PROXY) == []


def test_a_layer_that_reaches_up_is_named(tmp_path: Path) -> None:
    """The check itself: each kind of breach is found and said where."""
    root = tmp_path / "proxy"
    files = {
        "consent/enforce.py": "from proxy.ui import csp\nimport aiohttp\n",
        "consent/plans.py": "from ..http.validators import add_vary\n",
        "html/rewriter.py": "from proxy.consent.model import Consent\n",
        "observe/logs.py": "def f():\n    from proxy.settings import Network\n",
        "ui/banner.py": "from aiohttp import web\nfrom proxy.http import upstream\n",
        "ui/endpoints.py": "from aiohttp import web\nfrom proxy.observe import logs\n",
        "http/hook.py": "from proxy.consent import enforce\nfrom proxy.ui import furniture\n",
        "app.py": "from proxy.ui import endpoints\n",
    }
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    assert violations(root) == [
        "proxy/consent/enforce.py:1: imports proxy.ui.csp: the consent layer may import html",
        "proxy/consent/enforce.py:2: imports aiohttp: the consent layer does not import aiohttp",
        "proxy/consent/plans.py:1: imports proxy.http.validators.add_vary: "
        "the consent layer may import html",
        "proxy/html/rewriter.py:1: imports proxy.consent.model.Consent: "
        "the html layer may import nothing of the project",
        "proxy/http/hook.py:2: imports proxy.ui.furniture: the http layer never imports ui",
        "proxy/observe/logs.py:2: imports proxy.settings.Network: the observe layer imports "
        "nothing of the top level (what it needs comes as arguments, wired by app.py)",
        "proxy/ui/banner.py:1: imports aiohttp.web: the ui layer does not import aiohttp",
        "proxy/ui/banner.py:2: imports proxy.http.upstream: "
        "the ui layer may import consent, html, observe",
    ]


def test_modules_are_small() -> None:
    """One job per module: about 150-400 lines (README, Layout), in every layer and at
    the top level."""
    long = [
        f"{p.relative_to(PROXY.parent)}: {n} lines"
        for p in sorted(PROXY.rglob("*.py"))
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > 400
    ]
    assert long == []
