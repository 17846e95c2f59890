"""What the proxy adds to a page, rendered from the templates: the consent layer's
``Furniture`` (see proxy/consent/enforce.py, which decides where each piece goes).

A placeholder stands in for a held element (``placeholder.html``, styled by
``placeholder.css``); its button posts the form ``placeholder-form.html`` makes at the
end of <body>, which grants its category. An embed's (an iframe's) placeholder,
``embed-placeholder.html``, also has "Load this", which posts ``once-form.html``'s
form (proxy/consent/once.py). The banner is banner.py's. Surrogates
(surrogates.py) stand in for a removed tracker's script. ``make_room`` gives a page's
Content-Security-Policy the hashes of these inline styles and scripts (csp.py).
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from functools import lru_cache
from string import Template

from proxy.consent.consent_mode import usable_nonce
from proxy.consent.rules import Rule
from proxy.ui import csp, surrogates
from proxy.ui.banner import banner_css, banner_html, safe_next
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
        self._once_form = templates.text("once-form.html").strip()
        # Inline styles the proxy may add to any page (the injects' come with the plan).
        self._own_styles = (self._css,) + ((banner_css(templates),) if banner else ())

    def banner_html(self, path: str) -> str:
        return banner_html(self.templates, path)

    def placeholder(self, rule: Rule, anchor: str, path: str, size: str = "") -> str:
        next_path = f"{safe_next(path)}#{anchor}"  # /_consent checks it again
        return _placeholder(
            self._placeholder, rule.name, rule.id, rule.category, anchor, next_path, size
        )

    def embed_placeholder(self, rule: Rule, anchor: str, path: str, size: str) -> str:
        next_path = f"{safe_next(path)}#{anchor}"
        return _placeholder(self._embed, rule.name, rule.id, rule.category, anchor, next_path, size)

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
    )


@lru_cache(maxsize=64)
def _form(template: Template, category: str) -> str:
    return template.safe_substitute(category=html.escape(category))
