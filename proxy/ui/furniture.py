"""What the proxy adds to a page, rendered from the templates: the consent layer's
``Furniture`` (see proxy/consent/enforce.py, which decides where each piece goes).

A placeholder stands in for a held element (``placeholder.html``, styled by
``placeholder.css``); its button posts the form ``placeholder-form.html`` makes at the
end of <body>, which grants its category. An embed's (an iframe's) placeholder,
``embed-placeholder.html``, also has "Load this", which posts ``once-form.html``'s
form (proxy/consent/once.py). For a visitor whose choice the proxy's own cookie cannot
change (another banner decided it, ``ChangeAt``), ``placeholder-elsewhere.html`` and
``embed-placeholder-elsewhere.html`` say where to change it instead of offering a
grant ("Load this" stays). The banner is banner.py's. Surrogates
(surrogates.py) stand in for a removed tracker's script. ``make_room`` gives a page's
Content-Security-Policy the hashes of these inline styles and scripts (csp.py).
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from functools import lru_cache
from string import Template

from proxy.consent.consent_mode import usable_nonce
from proxy.consent.model import ChangeAt
from proxy.consent.rules import Rule
from proxy.ui import csp, surrogates
from proxy.ui.banner import banner_css, banner_html, safe_next, source_label
from proxy.ui.templates import LABELS, Templates


class PageFurniture:
    """Banner, placeholders and their forms from ``templates``; ``banner=False``: no
    banner (what ``consent-proxy rewrite`` shows); ``stand_ins=False``: no surrogates
    (the ``surrogates`` setting)."""

    def __init__(
        self, templates: Templates, *, banner: bool = True, stand_ins: bool = True
    ) -> None:
        self.templates = templates
        self.banner = banner
        self.surrogates = surrogates.texts() if stand_ins else {}
        self._css = templates.text("placeholder.css").strip()
        self._style = f"<style>{self._css}</style>"
        self._placeholder = Template(templates.text("placeholder.html").strip())
        self._form = Template(templates.text("placeholder-form.html").strip())
        self._embed = Template(templates.text("embed-placeholder.html").strip())
        self._pointer = Template(templates.text("placeholder-elsewhere.html").strip())
        self._embed_pointer = Template(templates.text("embed-placeholder-elsewhere.html").strip())
        self._once_form = templates.text("once-form.html").strip()
        # Inline styles the proxy may add to any page (the injects' come with the plan).
        self._own_styles = (self._css,) + ((banner_css(templates),) if banner else ())

    def banner_html(self, path: str) -> str:
        return banner_html(self.templates, path)

    def placeholder(
        self, rule: Rule, anchor: str, path: str, size: str = "", change: ChangeAt | None = None
    ) -> str:
        next_path = f"{safe_next(path)}#{anchor}"  # /_consent checks it again
        template = self._placeholder if change is None else self._pointer
        return _placeholder(
            template, rule.name, rule.id, rule.category, anchor, next_path, size, change
        )

    def embed_placeholder(
        self, rule: Rule, anchor: str, path: str, size: str, change: ChangeAt | None = None
    ) -> str:
        next_path = f"{safe_next(path)}#{anchor}"
        template = self._embed if change is None else self._embed_pointer
        return _placeholder(
            template, rule.name, rule.id, rule.category, anchor, next_path, size, change
        )

    def once_form(self) -> str:
        return self._once_form

    def placeholder_style(self) -> str:
        return self._style

    def grant_form(self, category: str) -> str:
        return _form(self._form, category)

    def make_room(self, policy: str, styles: Sequence[str], scripts: Sequence[str]) -> str:
        own = self._own_styles
        with_styles = csp.allow_inline(policy, "style", (own[0], *styles, *own[1:]))
        return csp.allow_inline(csp.allow_form_self(with_styles), "script", scripts)

    def script_nonce(self, policies: Sequence[str]) -> str | None:
        return usable_nonce(csp.script_nonce(policies))

    def allows_nonce(self, policy: str, nonce: str) -> bool:
        return csp.allows_nonce(policy, nonce)


@lru_cache(maxsize=4096)  # the same few boxes on every page of a site
def _placeholder(
    template: Template,
    vendor: str,
    rule: str,
    category: str,
    anchor: str,
    next_path: str,
    size: str = "",
    change: ChangeAt | None = None,
) -> str:
    esc = html.escape
    return template.safe_substitute(
        style=f' style="{esc(size)}"' if size else "",
        vendor=esc(vendor),
        rule=esc(rule),
        category=esc(category),
        category_label=esc(LABELS[category].lower()),
        anchor=esc(anchor),
        next=esc(next_path),
        change=esc(change_text(category, change)) if change is not None else "",
    )


def change_text(category: str, change: ChangeAt) -> str:
    """Where the visitor allows ``category`` when the proxy's own cookie does not count
    for them (plain words: opening another banner takes its vendor's script, which a
    link could only call as inline script, refused by strict policies)."""
    where = source_label(change.source)
    label = LABELS[category].lower()
    if change.states:
        return f"To allow {label}, change your choice in {where}."
    return f"Your choice in {where} does not cover {label}, so it cannot be allowed here."


@lru_cache(maxsize=64)
def _form(template: Template, category: str) -> str:
    return template.safe_substitute(category=html.escape(category))
