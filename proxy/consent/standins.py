"""Surrogates: the names a rule file may give, and the markup that stands in for a
removed tracker script.

A rule names its surrogates (``surrogate = "ga"``) and a plan carries their texts
(proxy.ui.surrogates ships them; the wiring hands them to the consent layer). Where a
denied rule removes the first script of a page that would run, the page gets the
rule's surrogates in its place, each once per page (see enforce.py): page code after
that point may call what the tracker would have defined.

A vendor's script a post loaded once brings to the page (facades.py) meets the
surrogate of its own API there. Facebook's SDK does not start while ``window.FB``
exists, so ``fbsdk`` (``YIELDING``) is left out of a page that has the SDK already,
and told by ``data-once`` to step aside should the SDK come (the post to load once is
yet to come, and may be Facebook's). X's widgets.js starts over ``twttr``'s (it keeps
its own state in ``__twttr``): that surrogate stays.

This module makes that markup. A surrogate reads a few ``data-`` attributes of its own
element (proxy/ui/assets/surrogates/README.md); they are set from what the removed
script says: the name a page gave analytics.js (``ga``: ``data-name``), a data layer
of another name (``ga``, ``gtm``: ``data-layer``) and the Tag Manager container
(``gtm``: ``data-id``, handed to eventCallback).
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlsplit

from proxy.consent.contacts import script_runs
from proxy.html import Element

if TYPE_CHECKING:  # rules.py reads surrogate names from here
    from proxy.consent.rules import Rule

# The surrogates the proxy ships (proxy/ui/assets/surrogates/NAME.js): what a rule's
# ``surrogate`` may name. Kept here because the consent layer does not import ui;
# tests/ui/test_surrogates.py checks that the two lists agree.
SURROGATES = ("adsbygoogle", "fbq", "fbsdk", "ga", "gpt", "gtm", "linkedin", "tcfapi", "twttr")
# The absorbing stand-in's key among the surrogate texts (not a name rules give): the
# proxy puts it in for the global functions of a removed script (cuts.py).
ABSORBING = "absorb"
# Surrogates whose vendor's own script does not start while they are defined.
YIELDING = frozenset({"fbsdk"})
ONCE = "once"  # a post of the rule was shown once, its vendor's script added
PENDING = "pending"  # the embed to load once, of the rule's category, is yet to come

_NAME = r"([A-Za-z_$][\w$]{0,63})"  # a JavaScript identifier, as pages name these
_Q = r"""['"]"""
# The analytics.js snippet ends with its arguments: (window, document, 'script',
# 'https://www.google-analytics.com/analytics.js', 'ga'), the last being the name.
_GA_SNIPPET = re.compile(
    rf"\(\s*window\s*,\s*document\s*,\s*{_Q}script{_Q}\s*,\s*{_Q}[^'\"]*analytics(?:_debug)?"
    rf"\.js{_Q}\s*,\s*{_Q}{_NAME}{_Q}\s*\)"
)
_GA_OBJECT = re.compile(rf"GoogleAnalyticsObject{_Q}?\]?\s*=\s*{_Q}{_NAME}{_Q}")
# gtag.js's snippet: function gtag(){dataLayer.push(arguments);}
_GTAG_LAYER = re.compile(rf"function\s+gtag\s*\(\s*\)\s*\{{\s*(?:window\.)?{_NAME}\.push\(")
# Tag Manager's snippet ends with (window, document, 'script', 'dataLayer', 'GTM-XXXX').
_GTM_SNIPPET = re.compile(
    rf"\(\s*window\s*,\s*document\s*,\s*{_Q}script{_Q}\s*,\s*{_Q}{_NAME}{_Q}\s*,\s*"
    rf"{_Q}(GTM-[A-Z0-9]{{1,16}}){_Q}\s*\)"
)
_IDENTIFIER = re.compile(_NAME)
_CONTAINER = re.compile(r"GTM-[A-Z0-9]{1,16}")


def names(
    value: object, has_blocks: bool, fail: Callable[[str, str], Exception]
) -> tuple[str, ...]:
    """A rule file's ``surrogate``: one name, a list of names, or ``[]``/``false`` for
    none; ``fail(key, problem)`` makes the error raised for anything else."""
    if value is False:
        return ()
    listed = [value] if isinstance(value, str) else value
    if not isinstance(listed, list) or not all(isinstance(v, str) for v in listed):
        raise fail("surrogate", f"{value!r} is not a surrogate name, a list of them, [] or false")
    for name in listed:
        if name not in SURROGATES:
            raise fail(
                "surrogate", f"{name!r} is not a surrogate; expected one of {', '.join(SURROGATES)}"
            )
    if len(set(listed)) < len(listed):
        raise fail("surrogate", f"{listed!r} names a surrogate twice")
    if listed and not has_blocks:
        raise fail(
            "surrogate",
            "a surrogate stands in for what the rule's [[block]] entries remove; "
            "this rule has none",
        )
    return tuple(listed)


class PageStandIns:
    """The surrogates of one page: each at most once, in place of the first running
    script a rule that names it removes."""

    def __init__(
        self,
        by_rule: Mapping[str, tuple[tuple[str, str], ...]],
        loading_once: Callable[[Rule], str] = lambda rule: "",
    ) -> None:
        """``by_rule``: per denied rule id, its surrogates' (name, text) (the plan's);
        ``loading_once(rule)``: whether a post of ``rule`` loads once on the page, with
        its vendor's script (ONCE, PENDING or "": holding.py's)."""
        self._by_rule = by_rule
        self._loading_once = loading_once
        self._placed: set[str] = set()

    def replacing(self, rule: Rule, removed: Element, xml: bool) -> tuple[str, int]:
        """The markup that takes the place of ``removed`` (an element ``rule``
        removes or holds), and how many surrogates it holds: the rule's surrogates
        not yet on the page when ``removed`` is a script that would run (the
        tracker's loader or snippet: page code after it may call what it defines);
        ("", 0) otherwise. Never for a script that would not run (a CMP's text/plain
        one, JSON): the page's code does not count on those. A YIELDING one is left
        out while its vendor's script is on the page, marked while it may come."""
        named = self._by_rule.get(rule.id)
        if not named or removed.tag != "script" or not script_runs(removed.get):
            return "", 0
        out = []
        for name, text in named:
            once = self._loading_once(rule) if name in YIELDING else ""
            if name not in self._placed and once != ONCE:
                self._placed.add(name)
                out.append(markup(name, text, removed, xml, once=once == PENDING))
        return "".join(out), len(out)


def markup(name: str, text: str, removed: Element, xml: bool = False, once: bool = False) -> str:
    """The inline ``<script>`` of surrogate ``name`` (its ``text``) that takes the
    place of the script ``removed``; ``xml``: the page is XHTML; ``once``: its
    vendor's script may come, for a post loaded once (``data-once``)."""
    found = attributes(name, removed.get("src"), removed.text)
    if once:
        found["once"] = "1"
    attrs = "".join(f' data-{key}="{html.escape(value)}"' for key, value in found.items())
    # XHTML's parser reads the text as XML: escaped, it reads the same, and the CSP
    # hash (of the text as read) still holds.
    body = html.escape(text, quote=False) if xml else text
    return f'<script data-consent-surrogate="{name}"{attrs}>{body}</script>'


def absorbing_markup(names: tuple[str, ...], text: str, xml: bool = False) -> str:
    """The inline ``<script>`` of the absorbing stand-in (its ``text``) for the global
    functions ``names`` (JavaScript identifiers, cuts.py's); "" for none."""
    if not names or not text:
        return ""
    body = html.escape(text, quote=False) if xml else text
    listed = html.escape(" ".join(names))
    return f'<script data-consent-surrogate="{ABSORBING}" data-names="{listed}">{body}</script>'


def attributes(name: str, src: str | None, text: str) -> dict[str, str]:
    """What surrogate ``name`` should know of the removed script (its ``src`` and
    ``text``): ``data-`` attribute names without the prefix, values checked to be
    JavaScript identifiers or container ids (anything else is left out)."""
    query = _query(src)
    found: dict[str, str] = {}
    if name == "ga":
        match = _GA_SNIPPET.search(text) or _GA_OBJECT.search(text)
        if match:
            found["name"] = match.group(1)
        layer = _GTAG_LAYER.search(text)
        found["layer"] = layer.group(1) if layer else query.get("l", "")
    elif name == "gtm":
        match = _GTM_SNIPPET.search(text)
        if match:
            found["layer"], found["id"] = match.group(1), match.group(2)
        else:
            found["layer"], found["id"] = query.get("l", ""), query.get("id", "")
    checks = {"name": _IDENTIFIER, "layer": _IDENTIFIER, "id": _CONTAINER}
    return {k: v for k, v in found.items() if v and checks[k].fullmatch(v)}


def _query(src: str | None) -> dict[str, str]:
    """The first value of each query parameter of a script's URL."""
    if not src:
        return {}
    try:
        params = parse_qs(urlsplit(src.strip()).query)
    except ValueError:
        return {}
    return {k: v[0] for k, v in params.items() if v}
