"""The preferences page at /_consent for a visitor whose choice the proxy's own cookie
cannot change (``Consent.elsewhere``: a source listed before ``own`` decided, or ``own``
is not a source): what is in force, category by category, and where it came from, and
where the choice is changed. No switches and no buttons: a post would set the proxy's
cookie, which does not count for this visitor (/_consent answers such a post with this
page and ``refused``, see endpoints.py).

Markup from ``preferences-elsewhere.html`` and ``preferences-row-elsewhere.html``
(an operator's ``--templates`` first), styles from ``preferences.css``.
"""

from __future__ import annotations

import html
from string import Template

from proxy.consent.model import OPTIONAL, Consent
from proxy.consent.rules import RuleSet
from proxy.ui.banner import category_rows, privacy_link, safe_next, source_label
from proxy.ui.templates import LABELS, Templates

_DECIDES = {
    "gpc": "your browser's Global Privacy Control signal",
    "default": "this site's default",
}


def in_force(consent: Consent, category: str) -> str:
    """What ``category`` is for this visitor and what decided it: the source where the
    choice is made, or (for a category that source does not speak of, or before the
    visitor chose there) GPC or the site's default."""
    if category == "necessary":
        return "Always on."
    change = consent.change_at(category)
    where = source_label(consent.elsewhere)
    state = "Allowed" if consent.allows(category) else "Not allowed"
    decides = _DECIDES.get(dict(consent.sources).get(category, ""), "this site's default")
    if change is not None and not change.states:
        label = LABELS[category].lower()
        return f"{state}: your choice in {where} does not cover {label}, so {decides} decides it."
    if consent.decided:
        return f"{state}: decided in {where}."
    return f"{state} ({decides}): you have not made a choice in {where} yet."


def summary(consent: Consent) -> str:
    """The page's one-line state: what is allowed, and where it was chosen."""
    where = source_label(consent.elsewhere)
    on = [LABELS[c] for c in OPTIONAL if consent.allows(c)]
    allowed = ", ".join(on) + " allowed." if on else "only necessary cookies."
    if consent.decided:
        return f"Your choice, as made in {where}: {allowed}"
    return f"You have not made a choice in {where} yet: {allowed}"


def refusal_text(consent: Consent) -> str:
    """Why a post to /_consent changed nothing for this visitor."""
    where = source_label(consent.elsewhere)
    return (
        f"Nothing was changed: your choice is read from {where}, and a choice made on "
        f"this page would not count. To change it, change your choice in {where}."
    )


def elsewhere_page(
    templates: Templates,
    consent: Consent,
    ruleset: RuleSet,
    next_path: str,
    *,
    refused: bool = False,
) -> str:
    """The page for a visitor with ``consent.elsewhere`` set; ``refused``: in answer to
    a post that would have set the proxy's cookie (it says nothing was changed)."""
    esc = html.escape
    words = templates.words()
    where = source_label(consent.elsewhere)
    rows = category_rows(
        templates,
        "preferences-row-elsewhere.html",
        ruleset,
        lambda category: {"in_force": esc(in_force(consent, category))},
    )
    notice = (
        f'<p class="cpp-notice" role="alert">{esc(refusal_text(consent))}</p>' if refused else ""
    )
    return Template(templates.text("preferences-elsewhere.html")).safe_substitute(
        lang=esc(words.get("lang", "en")),
        title="Cookie preferences",
        notice=notice,
        intro=esc(
            f"Your choice is read from {where}: this page shows what is in force and where "
            f"it was decided, and cannot change it. To change it, change your choice in {where}."
        ),
        privacy_link=privacy_link(templates),
        state=esc(summary(consent)),
        next=esc(safe_next(next_path)),
        rows=rows,
        style=templates.text("preferences.css").strip(),
    )
