"""The proxy's own dialogs: the banner and the preferences page at /_consent.

Markup, styles and words come from the templates (templates.py: an operator's
``--templates`` directory first); the words of the banner from ``banner.toml`` (title,
text, button labels, language). Both return to the page the visitor came from, a
same-site path (``safe_next``).
"""

from __future__ import annotations

import html
from collections.abc import Callable
from functools import lru_cache
from string import Template
from urllib.parse import quote

from proxy.consent.model import OPTIONAL, Consent
from proxy.consent.rules import RuleSet
from proxy.ui.templates import DESCRIPTIONS, LABELS, Templates


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


def privacy_link(templates: Templates) -> str:
    """The link to the privacy policy, in the banner's words ("" when none is set)."""
    return _privacy_link(templates, templates.words().get("privacy_label", "Privacy policy"))


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


# Where a choice read from another banner or signal came from (consent_sources).
SOURCE_LABELS = {
    "tcf": "this site's IAB TCF consent banner",
    "gpp": "the Global Privacy Platform signal",
    "usprivacy": "the US Privacy signal",
    "onetrust": "this site's OneTrust banner",
    "cookiebot": "this site's Cookiebot banner",
    "klaro": "this site's Klaro banner",
    "cookieconsent": "this site's cookie consent banner",
}


def source_label(source: str) -> str:
    """Where a choice of ``source`` is made, in words (``SITE`` or an unknown name: the
    site's banner, which one unknown)."""
    return SOURCE_LABELS.get(source, "this site's cookie banner")


def state_text(consent: Consent) -> str:
    if not consent.decided:
        return "You have not made a choice yet: only necessary cookies are in use."
    on = [LABELS[c] for c in OPTIONAL if consent.allows(c)]
    allowed = ", ".join(on) + " allowed." if on else "only necessary cookies."
    where = SOURCE_LABELS.get(consent.source)
    if where is not None:
        return f"Your choice, as made in {where}: {allowed}"
    return "Your current choice: " + allowed


def category_rows(
    templates: Templates,
    name: str,
    ruleset: RuleSet,
    fields: Callable[[str], dict[str, str]],
) -> str:
    """The preferences pages' rows, one per category from template ``name``: the
    category, its label, description and vendors, and ``fields(category)`` (escaped)."""
    esc = html.escape
    vendors = vendors_by_category(ruleset)
    row = Template(templates.text(name).strip())
    rows = []
    for category in ("necessary", *OPTIONAL):
        names = vendors.get(category, [])
        rows.append(
            row.safe_substitute(
                category=esc(category),
                label=esc(LABELS[category]),
                description=esc(DESCRIPTIONS[category]),
                vendors=("Used by: " + esc(", ".join(names))) if names else "",
                **fields(category),
            )
        )
    return "\n".join(rows)


def preferences_page(
    templates: Templates, consent: Consent, ruleset: RuleSet, next_path: str
) -> str:
    esc = html.escape
    words = templates.words()

    def switch(category: str) -> dict[str, str]:
        necessary = category == "necessary"
        return {
            "checked": "checked" if consent.allows(category) else "",
            "disabled": "disabled" if necessary else "",
            "switch_text": "Always on" if necessary else f"Allow {esc(LABELS[category].lower())}",
        }

    rows = category_rows(templates, "preferences-row.html", ruleset, switch)
    return Template(templates.text("preferences.html")).safe_substitute(
        lang=esc(words.get("lang", "en")),
        title="Cookie preferences",
        intro=esc(
            "Choose which cookies this site may use. Changes apply from the next page you open."
        ),
        privacy_link=_privacy_link(templates, words.get("privacy_label", "Privacy policy")),
        state=esc(state_text(consent)),
        next=esc(safe_next(next_path)),
        rows=rows,
        style=templates.text("preferences.css").strip(),
    )
