"""What visitors see of the proxy: the banner and the preferences page.

Markup, styles and text come from templates (``proxy/assets``), each of which an
operator can replace by a file of the same name in ``--templates DIR`` (text in
``banner.toml``: title, text, button labels, language). Templates use ``${name}``
placeholders; every value is HTML-escaped for where it lands.
"""

from __future__ import annotations

import html
import tomllib
from dataclasses import dataclass
from functools import cache, lru_cache
from importlib import resources
from pathlib import Path
from string import Template
from urllib.parse import quote

from proxy.consent.model import OPTIONAL, Consent
from proxy.consent.rules import RuleSet

DESCRIPTIONS = {
    "necessary": "Needed for the site to work and to remember your choices. Always on.",
    "preferences": "Remember settings such as language or region, and optional features like chat.",
    "analytics": "Count visits and see how the site is used, so it can be improved.",
    "advertising": "Show and measure advertising, here and on other sites.",
    "social": "Share and like buttons, embedded posts and videos from social networks.",
}
LABELS = {
    "necessary": "Necessary",
    "preferences": "Preferences",
    "analytics": "Analytics",
    "advertising": "Advertising",
    "social": "Social media",
}


@dataclass(frozen=True)
class Templates:
    """Where templates are looked up: an operator's directory first, then ours."""

    directory: str = ""
    privacy_url: str = ""

    def text(self, name: str) -> str:
        return _read(self.directory, name)

    def words(self) -> dict[str, str]:
        return _words(self.directory)


@cache
def _words(directory: str) -> dict[str, str]:
    return {k: str(v) for k, v in tomllib.loads(_read(directory, "banner.toml")).items()}


@cache
def _read(directory: str, name: str) -> str:
    if directory:
        path = Path(directory) / name
        if path.is_file():
            return path.read_text(encoding="utf-8")
    return resources.files("proxy.ui").joinpath("assets", name).read_text(encoding="utf-8")


def safe_next(value: str | None) -> str:
    """A same-site relative path to return to; anything else becomes "/": no scheme
    or host (``//``, ``/\\``), no backslash, nothing unprintable (controls, DEL, C1,
    U+2028, lone surrogates: a Location header cannot carry them)."""
    if not value or not value.startswith("/") or value.startswith(("//", "/\\")):
        return "/"
    if "\\" in value or not value.isprintable():
        return "/"
    return value


def _privacy_link(templates: Templates, label: str) -> str:
    if not templates.privacy_url:
        return ""
    return f'<a href="{html.escape(templates.privacy_url)}">{html.escape(label)}</a>'


def banner_css(templates: Templates) -> str:
    return templates.text("banner.css").strip()


@lru_cache(maxsize=1024)  # per page path: built once, not on every first visit
def banner_html(templates: Templates, next_path: str) -> str:
    """The banner for a visitor who has not decided, returning to ``next_path``."""
    words = templates.words()
    esc = html.escape
    body = Template(templates.text("banner.html").strip()).safe_substitute(
        lang=esc(words.get("lang", "en")),
        title=esc(words.get("title", "")),
        text=esc(words.get("text", "")),
        privacy_link=_privacy_link(templates, words.get("privacy_label", "Privacy policy")),
        accept=esc(words.get("accept", "Accept all")),
        reject=esc(words.get("reject", "Reject all")),
        choose=esc(words.get("choose", "Choose")),
        next=esc(safe_next(next_path)),
        next_url=esc(quote(safe_next(next_path), safe="/")),
    )
    return f"<style>{banner_css(templates)}</style>{body}"


def vendors_by_category(ruleset: RuleSet) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {c: [] for c in OPTIONAL}
    for rule in ruleset.active:
        if rule.name not in out[rule.category]:
            out[rule.category].append(rule.name)
    return out


def state_text(consent: Consent) -> str:
    if not consent.decided:
        return "You have not made a choice yet: only necessary cookies are in use."
    on = [LABELS[c] for c in OPTIONAL if consent.allows(c)]
    return "Your current choice: " + (
        ", ".join(on) + " allowed." if on else "only necessary cookies."
    )


def preferences_page(
    templates: Templates, consent: Consent, ruleset: RuleSet, next_path: str
) -> str:
    esc = html.escape
    words = templates.words()
    vendors = vendors_by_category(ruleset)
    row = Template(templates.text("preferences-row.html").strip())
    rows = []
    for category in ("necessary", *OPTIONAL):
        names = vendors.get(category, [])
        rows.append(
            row.safe_substitute(
                category=esc(category),
                label=esc(LABELS[category]),
                checked="checked" if consent.allows(category) else "",
                disabled="disabled" if category == "necessary" else "",
                switch_text="Always on"
                if category == "necessary"
                else f"Allow {esc(LABELS[category].lower())}",
                description=esc(DESCRIPTIONS[category]),
                vendors=("Used by: " + esc(", ".join(names))) if names else "",
            )
        )
    return Template(templates.text("preferences.html")).safe_substitute(
        lang=esc(words.get("lang", "en")),
        title="Cookie preferences",
        intro=esc(
            "Choose which cookies this site may use. Changes apply from the next page you open."
        ),
        privacy_link=_privacy_link(templates, words.get("privacy_label", "Privacy policy")),
        state=esc(state_text(consent)),
        next=esc(safe_next(next_path)),
        rows="\n".join(rows),
        style=templates.text("preferences.css").strip(),
    )
