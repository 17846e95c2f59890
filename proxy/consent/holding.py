"""The placeholders of one page: numbered, styled once, the forms their buttons post,
and the one embed a visitor asked to load once.

Every placeholder has the anchor ``cp-<category>-<n>`` (returning.py), counted per
category in page order, the same on every load of the page: a widget shown after a
grant (returning.py) and an embed shown once after its "Load this" (once.py) take
the number its placeholder had. An embed (once.EMBED_TAGS: an element that shows
itself, such as an iframe) gets the embed placeholder: sized like the element, with
"Load this" besides the button granting its category. The forms the buttons post go
at the end of <body> (or right after a placeholder that comes later). For a visitor
whose consent the proxy's own cookie cannot change (``Consent.change_at``), a grant
would do nothing: placeholders say where the choice is changed instead, and no grant
form is placed ("Load this" stays: its cookie counts whatever the consent's source).
"""

from __future__ import annotations

import html
from functools import cache

from proxy.consent import returning, standins
from proxy.consent.furniture import Furniture
from proxy.consent.model import Consent
from proxy.consent.rules import Rule
from proxy.html import Element

RULE_ID = "catalogue"  # how headers, logs and counts name the catalogue (coverage.py)
PLACEHOLDER = "placeholder"  # an element held behind a placeholder (what counts say)
ONCE = "once"  # an embed shown this once after its "Load this"


@cache
def catalogue_rule(entity: str, category: str) -> Rule:
    """What a placeholder says of a catalogued embed: the entity, under the catalogue."""
    return Rule(RULE_ID, entity, category, True, "", (), (), (), (), "catalogue.toml")


class PagePlaceholders:
    """The placeholders of one page at ``path`` (with its query); ``once``: the embed
    (category, n) this visitor asked to load once; ``return_to``: the placeholder
    (category, n) they come back to after granting its category; or None.
    ``consent``: this visitor's (None: grants count, as the proxy's own cookie does)."""

    def __init__(
        self,
        furniture: Furniture,
        path: str,
        once: tuple[str, int] | None = None,
        return_to: tuple[str, int] | None = None,
        consent: Consent | None = None,
    ) -> None:
        self._furniture = furniture
        self._path = path
        self._consent = consent if consent is not None and consent.elsewhere else None
        self.once = once
        self.return_to = return_to
        self.kept: Element | None = None  # the embed shown once, when it came
        self._kept_by = ""  # the rule (id) of a post shown once: its vendor's script came
        self._numbers: dict[str, int] = {}
        self._held: list[str] = []  # categories with a placeholder on the page
        self._embeds = False  # an embed placeholder is on the page ("Load this")
        self._styled = False
        self._forms_placed = False
        self.in_body = False  # <body> has started (enforce.py tells)
        self._pending = ""  # what a script in <head> left for the start of <body>

    def body_started(self) -> str:
        """At <body>: what scripts held in <head> left for it (placeholders, anchors)."""
        self.in_body = True
        out, self._pending = self._pending, ""
        return out

    def mark(self, el: Element, anchor: str) -> None:
        """Give a shown element the id ``anchor``, so the browser lands on it: as its
        own id, or, for one with an id (or a script, never shown), on an empty element
        just before it (at the start of <body> for a script in <head>)."""
        if el.tag != "script" and el.get("id") is None:
            el.set_attribute("id", anchor)
        else:
            self._put(el, f'<span id="{anchor}"></span>', replace=False)

    def _put(self, el: Element, markup: str, *, replace: bool) -> None:
        """``markup`` in ``el``'s place (``replace``) or before it; a script in
        <head> goes, or stays, and the markup waits for <body> (text in <head> would
        end it there)."""
        if el.tag == "script" and not self.in_body:
            self._pending += markup
            if replace:
                el.remove()
        elif replace:
            el.replace(markup)
        else:
            el.before(markup)

    def number(self, category: str) -> int:
        """The next number of ``category`` on this page."""
        n = self._numbers[category] = self._numbers.get(category, 0) + 1
        return n

    def shown(self, el: Element, category: str) -> None:
        """A widget or embed of ``category`` the page shows where a placeholder stood
        when it was held: numbered the same; the one this visitor comes back to gets
        the anchor (``mark``)."""
        n = self.number(category)
        if self.return_to == (category, n):
            self.mark(el, returning.anchor_id(category, n))

    def hold(self, rule: Rule) -> str:
        """The placeholder for an element ``rule`` holds (the caller puts it in place)."""
        anchor = returning.anchor_id(rule.category, self.number(rule.category))
        return self._markup(rule, anchor, "", embed=False)

    def hold_embed(self, el: Element, rule: Rule, size: str) -> bool:
        """An embed ``rule`` holds: replaced by the embed placeholder with ``size`` (CSS
        sizing it like the embed; True), or left as it is, marked with its anchor,
        when it is the one to load once (False)."""
        n = self.number(rule.category)
        anchor = returning.anchor_id(rule.category, n)
        if self.once == (rule.category, n) and self.kept is None:
            self.kept = el
            self.mark(el, anchor)
            return False
        self._put(el, self._markup(rule, anchor, size, embed=True), replace=True)
        return True

    def loading_once(self, rule: Rule) -> str:
        """Whether a post of ``rule`` loads once on this page, with its vendor's script
        (``hold_post``), for its surrogates (standins.py): ONCE when it did (the script
        is on the page), PENDING while the embed to load once, of ``rule``'s category,
        is yet to come; "" otherwise."""
        if self._kept_by == rule.id:
            return standins.ONCE
        pending = self.once is not None and self.kept is None and self.once[0] == rule.category
        return standins.PENDING if pending else ""

    def hold_post(self, el: Element, rule: Rule, script: str, classes: tuple[str, ...]) -> bool:
        """A post's markup (a <blockquote>) whose vendor ``rule`` holds: it stays, the
        embed placeholder after it (True); or, when it is the one to load once, the
        vendor's ``script`` after it instead (False). While a post loads once, the
        others held lose ``classes`` (what the vendor's script looks for)."""
        n = self.number(rule.category)
        anchor = returning.anchor_id(rule.category, n)
        if self.once == (rule.category, n) and self.kept is None:
            self.kept, self._kept_by = el, rule.id
            self.mark(el, anchor)
            el.after(f'<script async src="{html.escape(script)}" charset="utf-8"></script>')
            return False
        if self.once is not None:
            tokens = (el.get("class") or "").split()
            el.set_attribute(
                "class", " ".join(f"cp-held-{t}" if t in classes else t for t in tokens)
            )
        el.after(self._markup(rule, anchor, "", embed=True))
        return True

    def _markup(self, rule: Rule, anchor: str, size: str, *, embed: bool) -> str:
        furniture = self._furniture
        markup = "" if self._styled else furniture.placeholder_style()
        self._styled = True
        change = None if self._consent is None else self._consent.change_at(rule.category)
        if embed:
            markup += furniture.embed_placeholder(rule, anchor, self._path, size, change)
        else:
            markup += furniture.placeholder(rule, anchor, self._path, size, change)
        if self._forms_placed:  # the end of <body> has passed already
            markup += self._new_forms(rule.category, embed)
        else:
            self._note(rule.category, embed)
        return markup

    def _note(self, category: str, embed: bool) -> None:
        if category not in self._held:
            self._held.append(category)
        self._embeds = self._embeds or embed

    def _grant_form(self, category: str) -> str:
        return "" if self._consent is not None else self._furniture.grant_form(category)

    def _new_forms(self, category: str, embed: bool) -> str:
        out = "" if category in self._held else self._grant_form(category)
        out += self._furniture.once_form() if embed and not self._embeds else ""
        self._note(category, embed)
        return out

    def forms(self) -> str:
        """At the end of <body>: the forms the placeholders so far post (after what
        waited for a <body> start tag the page left out)."""
        self._forms_placed = True
        out = self.body_started() + "".join(self._grant_form(c) for c in self._held)
        return out + (self._furniture.once_form() if self._embeds else "")
