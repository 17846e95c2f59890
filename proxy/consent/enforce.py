"""What a page gets: a plan run over one page for one visitor.

``page_for`` chooses: an ``UntouchedPage`` when nothing on the page can change for this
visitor (most pages: the bytes pass as they came), else an ``EnforcedPage``, which
removes or holds what the plan blocks, counts what each rule did, places the banner
for a visitor who has not decided and marks the widget a visitor comes back to.

What the proxy adds to a page (banner, placeholders, the forms they post, room in the
page's Content-Security-Policy for its inline styles) is the visitor-facing layer's:
it reaches this module as ``Furniture`` (built by ``proxy.ui``, wired by app.py).
``proxy.consent.enforcer.Enforcer`` does the per-request part: the visitor's consent,
the plan for it under the rules in force, and the page.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping, Sequence
from functools import partial
from types import MappingProxyType

from proxy.consent import cuts, facades, once, returning, standins
from proxy.consent.consent_mode import PageDefault
from proxy.consent.coverage import ONCE, CatalogueGate, Held
from proxy.consent.facades import PageFacades
from proxy.consent.furniture import Furniture
from proxy.consent.holding import PagePlaceholders, catalogue_rule
from proxy.consent.inventory import PageWatch
from proxy.consent.matching import applies
from proxy.consent.model import Consent
from proxy.consent.plans import Plan
from proxy.consent.rules import Block, Rule
from proxy.consent.scan import META_CSP, Member, Slot
from proxy.consent.sightings import InventoryGate
from proxy.consent.sizing import embed_size
from proxy.html import Element, Handler, HandlerSpec, Rewriter

Counts = Mapping[tuple[str, str], int]  # (rule id, action) → elements
MEDIA = "media"  # the category whose embeds the catalogue holds behind placeholders


def _idle(el: Element) -> None:
    """The handler of a slot nothing acts on for this visitor."""


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
        first_party: tuple[str, ...] = (),
        inventory: PageWatch | None = None,
        load_once: tuple[str, int] | None = None,
    ) -> None:
        """``inventory``: this page's watch of third-party hosts (inventory.py).
        ``page_host``: the request's host (never a third party to the catalogue).
        ``path``: the page's, with its query (placeholders and the banner return
        there). ``consent``: this visitor's (the plan's by default: default and GPC can
        give one variant). ``return_to``: the placeholder this visitor comes back to
        (category, n): the widget now shown there gets its id, and the return cookie
        (named after the consent cookie, ``return_cookie``) is expired. ``examine_all``:
        see Rewriter (for the self-test's short pages: nothing compiled for them).
        ``load_once``: the held embed (category, n) this visitor asked to see this
        once (once.py): shown, and its cookie expired."""
        self.plan = plan
        self._examine_all = examine_all
        self.consent = consent or plan.consent
        self.counts: dict[tuple[str, str], int] = {}
        self.return_to = return_to
        self._return_cookie = return_cookie
        self._furniture = furniture
        self._load_once = load_once
        self._holding = PagePlaceholders(furniture, path, load_once, return_to, self.consent)
        self._numbered: Element | None = None  # the last element _mark counted
        self._banner_wanted = furniture.banner and not self.consent.decided
        self._start = b""  # the first 4 KB: whether this is a whole page (not a fragment)
        self._encoding = "utf-8"
        self._xml = False
        self._path = path
        self._stand_ins = standins.PageStandIns(plan.surrogates, self._holding.loading_once)
        self._cuts = cuts.PageCuts(tuple(p for _, p, _ in plan.by_text), plan.absorbing)
        self._banner_placed = False
        self._rewriter: Rewriter | None = None  # made when the first HTML arrives
        # Google Consent Mode's default, first in the head; alone: all the page gets.
        self._default: PageDefault | None = None
        if plan.google_defaults:
            ins = plan.inserts
            others = bool(plan.acts or ins.head_start or ins.head_end or ins.body_end)
            others = others or self._banner_wanted or return_to is not None
            self._default = PageDefault(plan.google_defaults, alone=not others)
        self._gate: CatalogueGate | InventoryGate | None = None
        if plan.catalogue is not None and (plan.denied or return_to is not None):
            # Back after granting media: its embeds are numbered as their placeholders
            # were (the catalogue holds embeds of media only).
            back = return_to is not None and return_to[0] == MEDIA and MEDIA not in plan.denied
            self._gate = CatalogueGate(
                plan.catalogue,
                plan.denied,
                self._held_embed,
                self.counts,
                page_host=page_host,
                exempt=plan.exempt,
                first_party=first_party,
                shown=(MEDIA, self._shown_embed) if back else None,
            )
            self._gate.cuts, self._cuts.catalogue = self._cuts, self._gate.text_judge
        if inventory is not None:  # on top of the catalogue's gate
            self._gate = InventoryGate(inventory, self._gate, self._held_embed, self.counts)

    @property
    def variant(self) -> str:
        return self.plan.variant

    def begin(self, policies: Sequence[str]) -> None:
        """The page's Content-Security-Policies (header values), before the first
        ``feed``: the Consent Mode default carries their script nonce if they have one."""
        self._cuts.hashed = cuts.by_hash(policies)  # a cut script would lose its hash
        if self._default is not None:
            self._default.nonce = self._furniture.script_nonce(policies)

    @property
    def carries_nonce(self) -> bool:
        """Whether the page carries its policy's nonce (``begin``): this response's."""
        return self._default is not None and self._default.nonce is not None

    def set_format(self, encoding: str, xml: bool) -> None:
        """The page's encoding (what inserted markup is written in) and whether it is
        XHTML; before the first ``feed`` (the default: UTF-8 HTML)."""
        self._encoding, self._xml = encoding, xml
        self._cuts.xml = xml

    def feed(self, chunk: bytes) -> bytes:
        if len(self._start) < 4096:  # however the page is split into chunks
            self._start += chunk[: 4096 - len(self._start)]
        if self._default is not None and self._default.alone:
            return self._default.feed(chunk, self._rw)
        return self._rw.feed(chunk)

    def close(self) -> bytes:
        return b"" if self._default is not None and self._default.done else self._rw.close()

    def make_room(self, policy: str) -> str:
        """``policy`` (a Content-Security-Policy header of this page) with room for
        what the proxy adds to it: the injects' inline styles and scripts, and the
        Consent Mode default unless it carries the policy's nonce."""
        plan, scripts, default = self.plan, self.plan.inline_scripts, self._default
        if default is not None:
            scripts = default.scripts(scripts, policy, self._furniture.allows_nonce)
        return self._furniture.make_room(policy, plan.inline_styles, scripts)

    def set_cookies(self) -> tuple[str, ...]:
        """Set-Cookie values the response carries: the return and once cookies, used."""
        out: tuple[str, ...] = ()
        if self.return_to is not None:
            out += (returning.expire_header(self._return_cookie),)
        if self._load_once is not None:
            out += (once.expire_header(self._return_cookie),)
        return out

    @property
    def personal(self) -> bool:
        """Whether this page is for this visitor alone (a widget marked for them, an
        embed shown once): never kept for others."""
        return self.return_to is not None or self._load_once is not None

    # -- the rewriter's handlers -------------------------------------------------------

    @property
    def _rw(self) -> Rewriter:
        if self._rewriter is None:
            plan = self.plan
            scan = plan.scan
            assert scan is not None, "compile_plan gives every plan its scan"
            # One handler per slot of the rules' scan, in the order of its program's
            # keys: the program is the same for every variant (compiled once), the
            # handlers act for this one. Hosts and snippets are hints: the rewriter
            # looks closer only at tags that hold one (the only places applies looks).
            acting = iter(plan.acting)
            handlers: list[HandlerSpec] = [
                (slot.selector, self._handler(slot, next(acting)), slot.hints)
                for slot in scan.ahead
            ]
            handlers.append((META_CSP, self._meta_csp))
            handlers.append(("body", self._body_start))
            handlers += [
                (slot.selector, self._mark_handler(slot, next(acting)), slot.hints)
                for slot in scan.marks
            ]
            posts = PageFacades(scan, plan.catalogue, plan.exempt, self.consent, self._holding)
            handlers += zip(
                facades.SELECTORS, posts.handlers(self._count), facades.HINTS, strict=True
            )
            static = plan.inserts.body_end if isinstance(plan.inserts.body_end, str) else ""
            inserts = dataclasses.replace(plan.inserts, body_end=lambda: static + self._body_end())
            default = self._default
            if default is not None:  # first in the head, before the injects'
                head = plan.inserts.head_start if isinstance(plan.inserts.head_start, str) else ""

                def head_start() -> str:
                    return default.tag(self._document()) + head

                inserts = dataclasses.replace(inserts, head_start=head_start)
            gate = self._gate
            self._rewriter = Rewriter(
                handlers,
                inserts,
                encoding=self._encoding,
                xml=self._xml,
                examine_all=self._examine_all,
                program=None if self._examine_all else scan.program,
                gate=None if gate is None else gate.rewriter_gate(self._gated),
            )
        return self._rewriter

    def _gated(self, el: Element) -> None:
        """The catalogue's look at an element, but for the embed shown once (a rule
        that holds it has let it through)."""
        if el is not self._holding.kept:
            assert self._gate is not None
            self._gate.handle(el)

    def _handler(self, slot: Slot, acting: tuple[Member, ...]) -> Handler:
        """The handler of a block or text slot: the blocks of it that act."""
        if not acting:
            return _idle
        if slot.pattern is not None:
            return self._text_handler(slot.pattern, acting)
        rule, block = acting[0]
        return partial(self._block, rule, block)

    def _mark_handler(self, slot: Slot, acting: tuple[Member, ...]) -> Handler:
        """The handler of a mark slot: the widget of the category this visitor comes
        back to."""
        if not acting or self.return_to is None:
            return _idle
        rule, block = acting[0]
        if rule.category != self.return_to[0]:
            return _idle
        return partial(self._mark, rule, block)

    def _block(self, rule: Rule, block: Block, el: Element) -> None:
        """The handler of one block (bound per page with functools.partial)."""
        if applies(block, el):
            self._act(el, rule, block)

    def _text_handler(
        self, pattern: re.Pattern[str], group: tuple[tuple[Rule, Block], ...]
    ) -> Handler:
        """One look at an element's text for every rule that searches it."""

        def handle(el: Element) -> None:
            text = el.text if el.new_text is None else el.new_text  # cut by a rule before
            if pattern.search(text) is None:
                return
            for rule, block in group:
                if any(s in text for s in block.contains):
                    self._act(el, rule, block, by_text=True)
                    return

        return handle

    def _act(self, el: Element, rule: Rule, block: Block, by_text: bool = False) -> None:
        if block.action == "placeholder" and el.tag in once.EMBED_TAGS:
            held = self._holding.hold_embed(el, rule, embed_size(el.get))
            self._count(rule.id, block.action if held else ONCE)
            return
        # The rule's surrogates; a script removed for its text is cut if it can be.
        stand_in, n = self._stand_ins.replacing(rule, el, self._xml)
        action = block.action
        if action == "placeholder":
            el.replace(stand_in + self._holding.hold(rule))
        else:
            action, more = self._cuts.remove(el, stand_in, cut=by_text)
            n += more
        self._count(rule.id, "surrogate", n)
        self._count(rule.id, action)

    def _count(self, rule_id: str, action: str, n: int = 1) -> None:
        if n:
            self.counts[(rule_id, action)] = self.counts.get((rule_id, action), 0) + n

    def _shown_embed(self, el: Element) -> None:
        """A catalogued embed shown to one who just granted media (unless ``_mark`` was)."""
        if el is not self._numbered:
            self._holding.shown(el, MEDIA)

    def _held_embed(self, el: Element, held: Held) -> bool:
        """A denied catalogued embed: its placeholder (True), or itself this once (False)."""
        rule = catalogue_rule(held.entity, held.category)
        return self._holding.hold_embed(el, rule, held.size)

    def _mark(self, rule: Rule, block: Block, el: Element) -> None:
        """A widget shown where a placeholder stood: numbered as it was (holding.py)."""
        if applies(block, el):
            self._numbered = el
            self._holding.shown(el, rule.category)

    def _body_start(self, el: Element) -> None:
        """The banner first in <body>: the first thing keyboard and screen-reader users
        meet (its CSS shows it at the bottom of the window); then what scripts held in
        <head> left for the body (holding.py)."""
        first = self._banner() + self._holding.body_started()
        if first:
            el.prepend(first)

    def _banner(self) -> str:
        """The banner, once, for a visitor yet to decide, on whole pages (not fragments)."""
        if not self._banner_wanted or self._banner_placed or not self._document():
            return ""
        self._banner_placed = True
        return self._furniture.banner_html(self._path)

    def _document(self) -> bool:
        head = self._start.lower()
        return any(t in head for t in (b"<html", b"<body", b"<!doctype html"))

    def _body_end(self) -> str:
        """The forms placeholders post, and the banner if <body>'s start tag never came."""
        return self._holding.forms() + self._banner()

    def _meta_csp(self, el: Element) -> None:
        policy = el.get("content")
        if policy:
            self._cuts.hashed |= cuts.by_hash((policy,))
            # Not for the Consent Mode default: it comes before any <meta> (first in the
            # head), and a policy given in a <meta> governs what follows it only.
            plan = self.plan
            fixed = self._furniture.make_room(policy, plan.inline_styles, plan.inline_scripts)
            if fixed != policy:
                el.set_attribute("content", fixed)


Page = EnforcedPage | UntouchedPage


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
    first_party: tuple[str, ...] = (),
    inventory: PageWatch | None = None,
    load_once: tuple[str, int] | None = None,
) -> Page:
    """The page ``plan`` makes of a page at ``path`` for a visitor with ``consent``:
    untouched unless something changes it (a rule, banner, return; ``EnforcedPage``)."""
    banner = furniture.banner and not consent.decided
    holds = inventory is not None and inventory.hold
    if not plan.changes and not banner and return_to is None and not holds and load_once is None:
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
        first_party=first_party,
        inventory=inventory,
        load_once=load_once,
    )
