"""What a page gets: a plan run over one page for one visitor.

``page_for`` chooses: an ``UntouchedPage`` when nothing on the page can change for this
visitor (most pages: the bytes pass as they came), else an ``EnforcedPage``, which
removes or holds what the plan blocks, counts what each rule did, places the banner
for a visitor who has not decided and marks the widget a visitor comes back to.

What the proxy adds to a page (banner, placeholders, the forms they post, room in the
page's Content-Security-Policy for its inline styles) is the visitor-facing layer's:
it reaches this module as ``Furniture`` (built by ``proxy.ui``, wired by app.py).
``Enforcer`` does the per-request part: the visitor's consent, the plan for it under
the rules in force, and the page.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from functools import cache, partial
from types import MappingProxyType
from typing import Protocol

from multidict import CIMultiDict, CIMultiDictProxy

from proxy.consent import consent_mode, returning
from proxy.consent.consent_mode import ConsentModeSettings
from proxy.consent.coverage import RULE_ID, CatalogueGate, Held
from proxy.consent.matching import applies, hints_of, host_hints, snippets
from proxy.consent.model import Consent, ConsentReader
from proxy.consent.plans import Plan, PlanCache
from proxy.consent.reload import RulesState
from proxy.consent.rules import Block, Rule
from proxy.html import Element, Gate, Handler, HandlerSpec, Hints, Rewriter

Counts = Mapping[tuple[str, str], int]  # (rule id, action) → elements
# Bytes fed at a time while only the Consent Mode default is to be placed.
_SLICE = 512


class Furniture(Protocol):
    """What the proxy adds to pages, as the visitor-facing layer renders it."""

    @property
    def banner(self) -> bool:
        """Whether a visitor who has not decided gets the banner."""
        ...

    def banner_html(self, path: str) -> str:
        """The banner of a page at ``path`` (it returns there after a choice)."""
        ...

    def placeholder(self, rule: Rule, anchor: str, path: str, size: str = "") -> str:
        """What stands in for an element ``rule`` holds: phrasing content with the id
        ``anchor``, whose button grants the rule's category and returns to
        ``path#anchor`` through the form ``grant_form`` makes."""
        ...

    def placeholder_style(self) -> str:
        """The placeholders' style element, placed once before the first of them."""
        ...

    def grant_form(self, category: str) -> str:
        """The form the placeholders of ``category`` post (placed at the end of <body>)."""
        ...

    def make_room(self, policy: str, styles: Sequence[str], scripts: Sequence[str]) -> str:
        """A Content-Security-Policy with room for what the proxy adds: its own inline
        styles, these inline ``styles`` and ``scripts`` (of injects), its forms."""
        ...

    def script_nonce(self, policies: Sequence[str]) -> str | None:
        """A nonce these Content-Security-Policies let inline scripts run with."""
        ...

    def allows_nonce(self, policy: str, nonce: str) -> bool:
        """Whether an inline script with ``nonce`` runs under ``policy``."""
        ...


class UntouchedPage:
    """A page this visitor's plan leaves as it came (nothing to remove, to inject or to
    ask): the origin's bytes. Made instead of an EnforcedPage for most pages, so it
    does as little as it can."""

    __slots__ = ("consent", "plan")
    counts: Counts = MappingProxyType({})

    def __init__(self, plan: Plan, consent: Consent) -> None:
        self.plan = plan
        self.consent = consent

    def set_format(self, encoding: str, xml: bool) -> None:
        return None

    def feed(self, chunk: bytes) -> bytes:
        return chunk

    def close(self) -> bytes:
        return b""


class EnforcedPage:
    """One page through one plan, for one visitor (made by ``page_for``)."""

    def __init__(
        self,
        plan: Plan,
        path: str,
        furniture: Furniture,
        *,
        consent: Consent | None = None,
        return_to: tuple[str, int] | None = None,
        return_cookie: str = "consent",
        examine_all: bool = False,
        page_host: str | None = None,
    ) -> None:
        """``page_host``: the request's host (never a third party to the catalogue).
        ``path``: the page's, with its query (placeholders and the banner return
        there). ``consent``: this visitor's (the plan's by default: default and GPC can
        give one variant). ``return_to``: the placeholder this visitor comes back to
        (category, n): the widget now shown there gets its id, and the return cookie
        (named after the consent cookie, ``return_cookie``) is expired. ``examine_all``:
        see Rewriter (for the self-test's short pages: nothing compiled for them)."""
        self.plan = plan
        self._examine_all = examine_all
        self.consent = consent or plan.consent
        self.counts: dict[tuple[str, str], int] = {}
        self.return_to = return_to
        self._return_cookie = return_cookie
        self._path = path
        self._furniture = furniture
        self._banner_wanted = furniture.banner and not self.consent.decided
        self._start = b""  # the first 4 KB: whether this is a whole page (not a fragment)
        self._encoding = "utf-8"
        self._xml = False
        self._styled = False
        self._held: list[str] = []  # categories with a placeholder on this page
        self._numbers: dict[str, int] = {}  # placeholders (or shown widgets) by category
        self._banner_placed = False
        self._forms_placed = False
        self._rewriter: Rewriter | None = None  # made when the first HTML arrives
        self._nonce: str | None = None  # the page policy's script nonce (begin)
        self._head_passed = False  # the start of <head> (where the default goes) is out
        self._rest_untouched = False  # nothing after it changes: bytes pass as they came
        self._gate: CatalogueGate | None = None
        if plan.catalogue is not None and plan.denied:
            self._gate = CatalogueGate(
                plan.catalogue,
                plan.denied,
                self._held_embed,
                self.counts,
                page_host=page_host,
                exempt=plan.exempt,
            )

    @property
    def variant(self) -> str:
        return self.plan.variant

    def begin(self, policies: Sequence[str]) -> None:
        """The page's Content-Security-Policies (header values), before the first
        ``feed``: the Consent Mode default carries their script nonce if they have one."""
        if self.plan.google_defaults:
            self._nonce = self._furniture.script_nonce(policies)

    def set_format(self, encoding: str, xml: bool) -> None:
        """The page's encoding (what inserted markup is written in) and whether it is
        XHTML; before the first ``feed`` (the default: UTF-8 HTML)."""
        self._encoding, self._xml = encoding, xml

    def feed(self, chunk: bytes) -> bytes:
        if len(self._start) < 4096:  # however the page is split into chunks
            self._start += chunk[: 4096 - len(self._start)]
        if self._rest_untouched:
            return chunk
        if self.plan.google_defaults and self._only_the_default():
            return self._up_to_the_default(chunk)
        return self._rw.feed(chunk)

    def close(self) -> bytes:
        return b"" if self._rest_untouched else self._rw.close()

    def make_room(self, policy: str) -> str:
        """``policy`` (a Content-Security-Policy header of this page) with room for
        what the proxy adds to it: the injects' inline styles and scripts, and the
        Consent Mode default unless it carries the policy's nonce."""
        plan = self.plan
        scripts = plan.inline_scripts
        google = plan.google_defaults
        nonce = self._nonce
        if google and not (nonce and self._furniture.allows_nonce(policy, nonce)):
            scripts = (*scripts, google)
        return self._furniture.make_room(policy, plan.inline_styles, scripts)

    def set_cookies(self) -> tuple[str, ...]:
        """Set-Cookie values the response carries: the return cookie, once used."""
        if self.return_to is None:
            return ()
        return (returning.expire_header(self._return_cookie),)

    # -- the rewriter's handlers -------------------------------------------------------

    @property
    def _rw(self) -> Rewriter:
        if self._rewriter is None:
            plan = self.plan
            # Hosts are hints: the rewriter looks closer only at tags that name one in a
            # URL attribute (the only place applies looks).
            act = self._block
            handlers: list[HandlerSpec] = [
                (block.selector, partial(act, rule, block), host_hints(block))
                for rule, block in plan.blocks
            ]
            # So are the snippets a script must contain: other scripts pass unseen.
            handlers += [
                (selector, self._text_handler(pattern, group), Hints(text=snippets(group)))
                for selector, pattern, group in plan.by_text
            ]
            handlers.append(("meta[http-equiv='content-security-policy' i]", self._meta_csp))
            if self._banner_wanted:
                handlers.append(("body", self._body_start))
            if self.return_to is not None:
                handlers += [
                    (block.selector, partial(self._mark, rule, block), hints_of(block))
                    for rule, block in plan.shown
                    if rule.category == self.return_to[0]
                ]
            static = plan.inserts.body_end if isinstance(plan.inserts.body_end, str) else ""
            inserts = dataclasses.replace(plan.inserts, body_end=lambda: static + self._body_end())
            if plan.google_defaults:
                head = plan.inserts.head_start if isinstance(plan.inserts.head_start, str) else ""
                inserts = dataclasses.replace(inserts, head_start=lambda: self._head_start(head))
            gate = self._gate
            self._rewriter = Rewriter(
                handlers,
                inserts,
                encoding=self._encoding,
                xml=self._xml,
                examine_all=self._examine_all,
                gate=Gate(gate.stops, gate.handle) if gate is not None else None,
            )
        return self._rewriter

    def _block(self, rule: Rule, block: Block, el: Element) -> None:
        """The handler of one block (bound per page with functools.partial)."""
        if applies(block, el):
            self._act(el, rule, block)

    def _text_handler(
        self, pattern: re.Pattern[str], group: tuple[tuple[Rule, Block], ...]
    ) -> Handler:
        """One look at an element's text for every rule that searches it."""

        def handle(el: Element) -> None:
            if pattern.search(el.text) is None:
                return
            for rule, block in group:
                if any(s in el.text for s in block.contains):
                    self._act(el, rule, block)
                    return

        return handle

    def _number(self, category: str) -> int:
        """The next placeholder number of ``category`` on this page: the same on the
        page that holds the widgets and on the one that shows them."""
        n = self._numbers[category] = self._numbers.get(category, 0) + 1
        return n

    def _act(self, el: Element, rule: Rule, block: Block) -> None:
        if block.action == "placeholder":
            self._placeholder(el, rule)
        else:
            el.remove()
        key = (rule.id, block.action)
        self.counts[key] = self.counts.get(key, 0) + 1

    def _held_embed(self, el: Element, held: Held) -> None:
        """A catalogued embed of a denied category: the placeholder, sized like it."""
        self._placeholder(el, _catalogue_rule(held.entity, held.category), held.size)

    def _placeholder(self, el: Element, rule: Rule, size: str = "") -> None:
        anchor = returning.anchor_id(rule.category, self._number(rule.category))
        markup = self._style() + self._furniture.placeholder(rule, anchor, self._path, size)
        if rule.category not in self._held:
            self._held.append(rule.category)
            if self._forms_placed:  # the end of <body> has passed already
                markup += self._furniture.grant_form(rule.category)
        el.replace(markup)

    def _mark(self, rule: Rule, block: Block, el: Element) -> None:
        """A widget now shown, where a placeholder stood: the one returned to gets the
        placeholder's id, so the browser scrolls to its top; one that has an id (or is
        a script, never shown) gets an empty element with it just before it."""
        if not applies(block, el):
            return
        n = self._number(rule.category)
        if self.return_to != (rule.category, n):
            return
        anchor = returning.anchor_id(rule.category, n)
        if el.tag != "script" and el.get("id") is None:
            el.set_attribute("id", anchor)
        else:
            el.before(f'<span id="{anchor}"></span>')

    def _body_start(self, el: Element) -> None:
        """The banner first in <body>: the first thing keyboard and screen-reader users
        meet (its CSS shows it at the bottom of the window)."""
        banner = self._banner()
        if banner:
            el.prepend(banner)

    def _banner(self) -> str:
        """The banner, once per page, for a visitor who has not decided, on whole pages
        only (not on HTML fragments)."""
        if not self._banner_wanted or self._banner_placed or not self._document():
            return ""
        self._banner_placed = True
        return self._furniture.banner_html(self._path)

    def _document(self) -> bool:
        head = self._start.lower()
        return any(t in head for t in (b"<html", b"<body", b"<!doctype html"))

    def _body_end(self) -> str:
        """At the end of <body>: the forms placeholders post, and the banner of a page
        whose <body> start tag was left out (or never came)."""
        self._forms_placed = True
        forms = "".join(self._furniture.grant_form(c) for c in self._held)
        return forms + self._banner()

    def _style(self) -> str:
        """The placeholder styles, once per page, before the first placeholder."""
        if self._styled:
            return ""
        self._styled = True
        return self._furniture.placeholder_style()

    def _head_start(self, static: str) -> str:
        """What goes first in the head: the Consent Mode default (whole pages only: an
        HTML fragment is loaded into a page that has its own), then the injects'."""
        self._head_passed = True
        if not self._document():
            return static
        return consent_mode.script_tag(self.plan.google_defaults, self._nonce) + static

    def _only_the_default(self) -> bool:
        """Whether the Consent Mode default is all this page gets (a visitor who allows
        Google's tags and all else): once it is placed, the rest passes as it came."""
        plan, inserts = self.plan, self.plan.inserts
        return not (
            plan.acts
            or inserts.head_start
            or inserts.head_end
            or inserts.body_end
            or self._banner_wanted
            or self.return_to is not None
        )

    def _up_to_the_default(self, chunk: bytes) -> bytes:
        """``chunk`` through the rewriter until the default is placed (in slices: the
        start of <head> comes early), then as it came. A <meta> policy after it does
        not govern it (see _meta_csp)."""
        out = []
        for at in range(0, len(chunk), _SLICE):
            out.append(self._rw.feed(chunk[at : at + _SLICE]))
            if self._head_passed:
                out.append(self._rw.close())  # what it held back (an unfinished tag)
                out.append(chunk[at + _SLICE :])
                self._rest_untouched = True
                break
        return b"".join(out)

    def _meta_csp(self, el: Element) -> None:
        policy = el.get("content")
        if policy:
            # Not for the Consent Mode default: it comes before any <meta> (first in the
            # head), and a policy given in a <meta> governs what follows it only.
            plan = self.plan
            fixed = self._furniture.make_room(policy, plan.inline_styles, plan.inline_scripts)
            if fixed != policy:
                el.set_attribute("content", fixed)


Page = EnforcedPage | UntouchedPage


@cache
def _catalogue_rule(entity: str, category: str) -> Rule:
    """What a placeholder says of a catalogued embed: the entity, under the catalogue."""
    return Rule(RULE_ID, entity, category, True, "", (), (), (), (), "catalogue.toml")


def page_for(
    plan: Plan,
    consent: Consent,
    path: str,
    furniture: Furniture,
    *,
    return_to: tuple[str, int] | None = None,
    return_cookie: str = "consent",
    examine_all: bool = False,
    page_host: str | None = None,
) -> Page:
    """The page ``plan`` makes of a page at ``path`` for a visitor with ``consent``:
    untouched unless the plan changes pages, the visitor gets the banner, or comes
    back to a widget (see ``EnforcedPage``)."""
    banner = furniture.banner and not consent.decided
    if not plan.changes and not banner and return_to is None:
        return UntouchedPage(plan, consent)  # most pages
    return EnforcedPage(
        plan,
        path,
        furniture,
        consent=consent,
        return_to=return_to,
        return_cookie=return_cookie,
        examine_all=examine_all,
        page_host=page_host,
    )


class Enforcer:
    """Per request: the visitor's consent, the plan for it under the rules in force
    (compiled once per rules generation and consent variant), and the page it gets."""

    def __init__(
        self,
        rules: RulesState,
        read_consent: ConsentReader,
        furniture: Furniture,
        google: ConsentModeSettings = consent_mode.DEFAULT,
    ) -> None:
        """``google``: the operator's Consent Mode settings (consent_mode.py)."""
        self._rules = rules
        self._read = read_consent
        self._furniture = furniture
        self._cookie = read_consent.policy.cookie
        self.plans = PlanCache(google)

    def page(self, headers: CIMultiDictProxy[str] | CIMultiDict[str], path: str) -> Page:
        """The page a request with these headers for ``path`` (with its query) gets."""
        consent = self._read(headers)
        ruleset = self._rules.current  # one read: the whole request uses this set
        plan = self.plans.get(ruleset, consent)
        return_to = returning.requested(headers, self._cookie)
        return page_for(
            plan,
            consent,
            path,
            self._furniture,
            return_to=return_to,
            return_cookie=self._cookie,
            page_host=host_name(headers.get("Host", "")),
        )


def host_name(host: str) -> str | None:
    """The name in a Host header, without its port (the page's own host, never a
    third party to the catalogue); None when it holds none."""
    name = host.strip().lower()
    if name.startswith("["):
        return None  # an IP literal: no catalogued domain is under it anyway
    name = name.rpartition(":")[0] if ":" in name else name
    return name or None
