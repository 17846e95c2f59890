"""Rules + consent → what the rewriter does to a page, and the headers that go with it.

``compile_plan`` picks the blocks of denied categories and the injects of granted ones
(cached per rules generation and consent variant by the caller). ``ConsentRewrite``
runs a plan over one page (a ``BodyRewrite``), counting what each rule did.
"""

from __future__ import annotations

import dataclasses
import html
import re
import time
from dataclasses import dataclass
from functools import cache, cached_property, partial
from importlib import resources
from typing import Any
from urllib.parse import urlsplit

from multidict import CIMultiDict

from proxy.consent.model import Consent
from proxy.consent.rules import Block, Rule, RuleSet
from proxy.html import DocumentHandlers, Element, Handler, HandlerSpec, Hints, Rewriter
from proxy.html.lexer import literals_pattern
from proxy.http.validators import add_vary, make_private
from proxy.observe.logs import json_string
from proxy.ui import csp, returning
from proxy.ui.banner import LABELS, Templates, banner_css, banner_html, safe_next

URL_ATTRIBUTES = ("src", "href", "data-src", "data", "srcset")  # data: <object>


@dataclass(frozen=True)
class Plan:
    """What to do to every page for one consent variant under one rule set."""

    generation: str
    consent: Consent
    blocks: tuple[tuple[Rule, Block], ...]
    inserts: DocumentHandlers
    inline_styles: tuple[str, ...] = ()  # contents of inline <style>/<script> in injects,
    inline_scripts: tuple[str, ...] = ()  # for the page's Content-Security-Policy
    # Blocks that look at script text, by selector, searched with one pattern per selector.
    by_text: tuple[tuple[str, re.Pattern[str], tuple[tuple[Rule, Block], ...]], ...] = ()
    # Placeholder blocks of granted categories: they only find the widget a visitor
    # comes back to after a placeholder's grant (see returning.py).
    shown: tuple[tuple[Rule, Block], ...] = ()
    # What headers and log lines say of each visitor's consent under this plan (a
    # plan serves many visitors: the texts are made once).
    _texts: dict[str, tuple[str, str]] = dataclasses.field(
        default_factory=dict, compare=False, repr=False
    )

    @property
    def acts(self) -> bool:
        return bool(self.blocks or self.by_text)

    @cached_property
    def changes(self) -> bool:
        """Whether pages change under this plan (the banner aside, see ConsentRewrite)."""
        inserts = self.inserts
        return bool(self.acts or inserts.head_start or inserts.head_end or inserts.body_end)

    @cached_property
    def variant(self) -> str:
        return f"{self.consent.variant}-{self.generation}"

    def texts(self, consent: Consent) -> tuple[str, str]:
        """The X-Consent header for ``consent`` under this plan, and the start of its
        decision-log members (up to ``"bytes_in":``)."""
        key = consent.json_members
        texts = self._texts.get(key)
        if texts is None:
            header = f"{consent.header()}; rules={self.generation}"
            members = f'{key},"rules":{json_string(self.generation)},"actions":[],"bytes_in":'
            texts = self._texts[key] = (header, members)
        return texts


def compile_plan(ruleset: RuleSet, consent: Consent) -> Plan:
    blocks: list[tuple[Rule, Block]] = []
    shown: list[tuple[Rule, Block]] = []
    by_text: dict[str, list[tuple[Rule, Block]]] = {}
    places: dict[str, list[str]] = {"head-start": [], "head-end": [], "body-end": []}
    for rule in ruleset.active:
        if consent.allows(rule.category):
            for inject in rule.injects:
                places[inject.where].append(inject.html)
            shown += [(rule, b) for b in rule.blocks if b.action == "placeholder"]
        else:
            for block in rule.blocks:
                if block.contains and not block.hosts:
                    by_text.setdefault(block.selector, []).append((rule, block))
                else:
                    blocks.append((rule, block))
    inserts = DocumentHandlers(
        "".join(places["head-start"]), "".join(places["head-end"]), "".join(places["body-end"])
    )
    injected = "".join(v for values in places.values() for v in values)
    styles = tuple(m.group(1) for m in _INLINE_STYLE.finditer(injected))
    scripts = tuple(m.group(1) for m in _INLINE_SCRIPT.finditer(injected))
    text_groups = tuple(
        (
            selector,
            re.compile(literals_pattern(c for rb in group for c in rb[1].contains)),
            tuple(group),
        )
        for selector, group in by_text.items()
    )
    return Plan(
        ruleset.generation,
        consent,
        tuple(blocks),
        inserts,
        styles,
        scripts,
        text_groups,
        shown=tuple(shown),
    )


def _snippets(group: tuple[tuple[Rule, Block], ...]) -> tuple[str, ...]:
    return tuple(sorted({s for _, block in group for s in block.contains}))


_INLINE_STYLE = re.compile(r"<style\b[^>]*>(.*?)</style", re.S | re.I)
_INLINE_SCRIPT = re.compile(r"<script\b(?![^>]*\bsrc=)[^>]*>(.*?)</script", re.S | re.I)


def host_of(url: str) -> str | None:
    url = url.strip()
    if url.startswith("//"):
        url = "http:" + url
    try:
        host = urlsplit(url).hostname
    except ValueError:
        return None
    return host.rstrip(".") if host else None


def hosted_by(el: Element, hosts: tuple[str, ...]) -> bool:
    for attr in URL_ATTRIBUTES:
        value = el.get(attr)
        if not value:
            continue
        # srcset: "url 1x, url 2x": each candidate's URL comes before its descriptor.
        urls = (
            [c.split()[0] for c in value.split(",") if c.strip()] if attr == "srcset" else [value]
        )
        for url in urls:
            host = host_of(url)
            if host and any(host == h or host.endswith("." + h) for h in hosts):
                return True
    return False


def applies(block: Block, el: Element) -> bool:
    """Whether an element its selector matched is one ``block`` acts on."""
    if block.hosts and not hosted_by(el, block.hosts):
        return False
    return not block.contains or any(s in el.text for s in block.contains)


def _hints_of(block: Block) -> Hints:
    """What every element ``block`` acts on contains, for the rewriter's fast skip."""
    if block.hosts:
        return Hints(block.hosts, (), URL_ATTRIBUTES)
    return Hints(text=block.contains)  # none at all: every element of the selector


@cache
def _template(name: str) -> str:
    return resources.files("proxy.ui").joinpath("assets", name).read_text(encoding="utf-8").strip()


def placeholder_html(rule: Rule, anchor: str, next_path: str) -> str:
    """The box that stands in for a held element, with the id ``anchor``. It is
    phrasing content (it may sit in a <p>); its button submits a form placed at the end
    of <body> (grant_form) and brings ``next_path#anchor`` (the way back to here)."""
    esc = html.escape
    return _template("placeholder.html").format(
        vendor=esc(rule.name),
        rule=esc(rule.id),
        category=esc(rule.category),
        category_label=esc(LABELS[rule.category].lower()),
        anchor=esc(anchor),
        next=esc(f"{safe_next(next_path)}#{anchor}"),  # /_consent checks it again
    )


def grant_form(category: str) -> str:
    """The form a placeholder's button posts: grant ``category`` (the button says
    where to come back to)."""
    return _template("placeholder-form.html").format(category=html.escape(category))


class ConsentRewrite:
    """One page through one plan (a ``BodyRewrite``)."""

    def __init__(
        self,
        plan: Plan,
        path: str,
        *,
        consent: Consent | None = None,
        templates: Templates | None = None,
        debug_headers: bool = True,
        return_to: tuple[str, int] | None = None,
        return_cookie: str = "consent",
        examine_all: bool = False,
    ) -> None:
        """``templates``: show the banner to a visitor who has not decided (the proxy
        does; offline rewrites and rule examples do not). ``return_to``: the
        placeholder this visitor comes back to (category, n): the widget now shown
        there gets its id, and the return cookie (named after the consent cookie,
        ``return_cookie``) is expired. ``examine_all``: see Rewriter (for the
        self-test's short pages)."""
        self.plan = plan
        # The plan is shared by every visitor of its variant; the headers and the log
        # speak of this visitor's own answers (default and GPC can give one variant).
        self.consent = consent or plan.consent
        self._debug = debug_headers
        self.counts: dict[tuple[str, str], int] = {}
        self._path = path
        self._templates = templates
        self._styled = False
        self._start = b""  # the first 4 KB: whether this is a whole page (not a fragment)
        self.bytes_in = 0
        self.bytes_out = 0
        self.seconds = 0.0
        self.complete = False
        self._held: list[str] = []  # categories with a placeholder on this page
        self._numbers: dict[str, int] = {}  # placeholders (or shown widgets) by category
        self._return_to = return_to
        self._return_cookie = return_cookie
        self._banner_placed = False
        self._forms_placed = False
        self._rewriter: Rewriter | None = None  # made when the first HTML arrives
        self._changes: bool | None = None  # whether the page can change at all
        self._examine_all = examine_all
        self._encoding = "utf-8"
        self._xml = False

    def set_format(self, encoding: str, xml: bool) -> None:
        self._encoding, self._xml = encoding, xml

    @property
    def variant(self) -> str:
        return self.plan.variant

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
            anchor = returning.anchor_id(rule.category, self._number(rule.category))
            markup = self._style() + placeholder_html(rule, anchor, self._path)
            if rule.category not in self._held:
                self._held.append(rule.category)
                if self._forms_placed:  # the end of <body> has passed already
                    markup += grant_form(rule.category)
            el.replace(markup)
        else:
            el.remove()
        key = (rule.id, block.action)
        self.counts[key] = self.counts.get(key, 0) + 1

    def _mark(self, rule: Rule, block: Block, el: Element) -> None:
        """A widget now shown, where a placeholder stood: the one returned to gets the
        placeholder's id, so the browser scrolls to its top; one that has an id (or is
        a script, never shown) gets an empty element with it just before it."""
        if not applies(block, el):
            return
        n = self._number(rule.category)
        if self._return_to != (rule.category, n):
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
        if self._templates is None or self.consent.decided or not self._document():
            return ""
        if self._banner_placed:
            return ""
        self._banner_placed = True
        return banner_html(self._templates, self._path)

    @property
    def _rw(self) -> Rewriter:
        if self._rewriter is None and not self._changes_anything():
            self._rewriter = Rewriter(encoding=self._encoding)  # byte for byte, at no cost
        if self._rewriter is None:
            plan = self.plan
            # Hosts are hints: the rewriter looks closer only at tags that name one in a
            # URL attribute (the only place hosted_by looks).
            act = self._block
            handlers: list[HandlerSpec] = [
                (block.selector, partial(act, rule, block), Hints(block.hosts, (), URL_ATTRIBUTES))
                for rule, block in plan.blocks
            ]
            # So are the snippets a script must contain: other scripts pass unseen.
            handlers += [
                (selector, self._text_handler(pattern, group), Hints(text=_snippets(group)))
                for selector, pattern, group in plan.by_text
            ]
            handlers.append(("meta[http-equiv='content-security-policy' i]", self._meta_csp))
            if self._templates is not None and not self.consent.decided:
                handlers.append(("body", self._body_start))
            if self._return_to is not None:
                handlers += [
                    (block.selector, partial(self._mark, rule, block), _hints_of(block))
                    for rule, block in plan.shown
                    if rule.category == self._return_to[0]
                ]
            static = plan.inserts.body_end if isinstance(plan.inserts.body_end, str) else ""
            inserts = dataclasses.replace(plan.inserts, body_end=lambda: static + self._body_end())
            self._rewriter = Rewriter(
                handlers,
                inserts,
                encoding=self._encoding,
                xml=self._xml,
                examine_all=self._examine_all,
            )
        return self._rewriter

    @property
    def passes_through(self) -> bool:
        return not self._changes_anything()

    def _changes_anything(self) -> bool:
        if self._changes is None:
            banner = self._templates is not None and not self.consent.decided
            self._changes = self.plan.changes or banner or self._return_to is not None
        return self._changes

    def _body_end(self) -> str:
        """At the end of <body>: the forms placeholders post, and the banner of a page
        whose <body> start tag was left out (or never came)."""
        self._forms_placed = True
        return "".join(grant_form(c) for c in self._held) + self._banner()

    def _document(self) -> bool:
        head = self._start.lower()
        return any(t in head for t in (b"<html", b"<body", b"<!doctype html"))

    def _style(self) -> str:
        """The placeholder styles, once per page, before the first placeholder."""
        if self._styled:
            return ""
        self._styled = True
        return f"<style>{_template('placeholder.css')}</style>"

    def _inline_styles(self) -> list[str]:
        styles = [_template("placeholder.css"), *self.plan.inline_styles]
        if self._templates is not None:
            styles.append(banner_css(self._templates))
        return styles

    def _meta_csp(self, el: Element) -> None:
        policy = el.get("content")
        if policy:
            fixed = csp.allow_form_self(csp.allow_inline(policy, "style", self._inline_styles()))
            fixed = csp.allow_inline(fixed, "script", self.plan.inline_scripts)
            if fixed != policy:
                el.set_attribute("content", fixed)

    def feed(self, chunk: bytes) -> bytes:
        if len(self._start) < 4096:  # however the page is split into chunks
            self._start += chunk[: 4096 - len(self._start)]
        start = time.perf_counter()
        out = self._rw.feed(chunk)
        self.seconds += time.perf_counter() - start
        self.bytes_in += len(chunk)
        self.bytes_out += len(out)
        return out

    def close(self) -> bytes:
        start = time.perf_counter()
        out = self._rw.close()
        self.seconds += time.perf_counter() - start
        self.bytes_out += len(out)
        self.complete = True
        return out

    def actions(self) -> str:
        """``google-analytics=remove*2, facebook=placeholder*1`` (so far)."""
        return ", ".join(
            f"{rule}={action}*{n}" for (rule, action), n in sorted(self.counts.items())
        )

    def fix_headers(self, headers: CIMultiDict[str]) -> None:
        consent_dependent_headers(headers)
        # Room in the page's policy for what the proxy adds (nothing added: untouched).
        changes = self._changes_anything()
        for name in ("Content-Security-Policy", "Content-Security-Policy-Report-Only"):
            policies = headers.getall(name, []) if changes else []
            if policies:
                headers.popall(name)
            for policy in policies:
                policy = csp.allow_form_self(
                    csp.allow_inline(policy, "style", self._inline_styles())
                )
                headers.add(name, csp.allow_inline(policy, "script", self.plan.inline_scripts))
        if self._return_to is not None:  # once: the way back is used up
            headers.add("Set-Cookie", returning.expire_header(self._return_cookie))
        if not self._debug:
            return
        headers["X-Consent"] = self.plan.texts(self.consent)[0]
        actions = self.actions() or "none"
        # Headers leave before a long page has streamed through: say when more may come.
        final = self.complete or not self.plan.acts
        headers["X-Consent-Actions"] = actions if final else f"{actions}; partial"

    def record(self) -> dict[str, Any]:
        """What the decision log keeps about this page."""
        return {
            **_consent_record(self.consent, self.plan.generation),
            "actions": [
                {"rule": rule, "action": action, "count": n}
                for (rule, action), n in sorted(self.counts.items())
            ],
            "bytes_in": self.bytes_in,
            "bytes_out": self.bytes_out,
            "rewrite_ms": round(self.seconds * 1000, 3),
            "complete": self.complete,
        }

    def untouched_record(self, size: int) -> str:
        return _untouched_members(self.plan, self.consent, size)


class Untouched:
    """A page this visitor's plan leaves as it came (nothing to remove, to inject or
    to ask): the origin's bytes, with the headers that say they depend on consent,
    and the decision-log line. Made instead of a ConsentRewrite for most pages, so
    it does as little as it can."""

    __slots__ = ("_debug", "consent", "plan", "variant")
    passes_through = True

    def __init__(self, plan: Plan, consent: Consent, debug_headers: bool) -> None:
        self.plan = plan
        self.consent = consent
        self._debug = debug_headers
        self.variant = plan.variant

    def set_format(self, encoding: str, xml: bool) -> None:
        return None

    def feed(self, chunk: bytes) -> bytes:
        return chunk

    def close(self) -> bytes:
        return b""

    def fix_headers(self, headers: CIMultiDict[str]) -> None:
        consent_dependent_headers(headers)
        if self._debug:
            headers["X-Consent"] = self.plan.texts(self.consent)[0]
            headers["X-Consent-Actions"] = "none"

    def record(self) -> dict[str, Any]:
        """Of a response with no body (HEAD)."""
        return {
            **_consent_record(self.consent, self.plan.generation),
            "actions": [],
            "bytes_in": 0,
            "bytes_out": 0,
            "rewrite_ms": 0.0,
            "complete": False,
        }

    def untouched_record(self, size: int) -> str:
        return _untouched_members(self.plan, self.consent, size)


def _untouched_members(plan: Plan, consent: Consent, size: int) -> str:
    return f'{plan.texts(consent)[1]}{size},"bytes_out":{size},"rewrite_ms":0.0,"complete":true'


def _consent_record(consent: Consent, generation: str) -> dict[str, Any]:
    return {**consent.record(), "rules": generation}


def consent_dependent_headers(headers: CIMultiDict[str]) -> None:
    """A body that depends on consent is private, varies on Cookie and Sec-GPC and
    keeps no Last-Modified (validators are per variant, see validators.py)."""
    if "Cache-Control" in headers:
        make_private(headers)
    else:
        headers.add("Cache-Control", "private")
    # The encoding too: the origin chose it from the client's Accept-Encoding.
    if "Vary" in headers:
        add_vary(headers, *_CONSENT_VARY)
    else:
        headers.add("Vary", _CONSENT_VARY_TEXT)
    if "Last-Modified" in headers:
        headers.popall("Last-Modified")


_CONSENT_VARY = ("Accept-Encoding", "Cookie", "Sec-GPC")
_CONSENT_VARY_TEXT = ", ".join(_CONSENT_VARY)
