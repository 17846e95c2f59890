"""The consent layer's pages as the proxy's ``BodyRewrite`` hook (hook.py).

``consent_hook`` asks the consent layer which page a request gets (enforce.py's
``Enforcer``) and wraps it: the body through the page, measured for the decision log
(observe.decisions), and what a page adds to its response headers, ``page_headers``.
"""

from __future__ import annotations

from multidict import CIMultiDict, CIMultiDictProxy

from proxy.consent.enforce import EnforcedPage, Page, UntouchedPage
from proxy.consent.enforcer import Enforcer
from proxy.http.hook import BodyRewrite, RequestInfo, RewriteFactory
from proxy.observe.decisions import Meter, PageDecision, decision_of, untouched_members

_CSP = ("Content-Security-Policy", "Content-Security-Policy-Report-Only")


def page_headers(headers: CIMultiDict[str], page: Page, *, complete: bool, debug: bool) -> None:
    """What ``page`` adds to its response headers (the caching headers of a page that
    depends on consent are response_headers.py's): room in the page's
    Content-Security-Policy for what the proxy adds, and the used-up return cookie
    expired (a page that changes); with ``debug``, X-Consent and X-Consent-Actions
    (``complete``: the page has gone through whole; else the actions so far, marked
    ``partial`` where more may come)."""
    if isinstance(page, EnforcedPage):
        for name in _CSP:
            policies = headers.getall(name, [])
            if policies:
                headers.popall(name)
            for policy in policies:
                headers.add(name, page.make_room(policy))
        for cookie in page.set_cookies():
            headers.add("Set-Cookie", cookie)
    if not debug:
        return
    headers["X-Consent"] = page.plan.consent_header(page.consent)
    actions = (actions_text(page) if page.counts else "") or "none"
    # Headers leave before a long page has streamed through: say when more may come.
    final = complete or not page.plan.acts
    headers["X-Consent-Actions"] = actions if final else f"{actions}; partial"


def actions_text(page: Page) -> str:
    """``facebook=placeholder*1, google-analytics=remove*2`` (so far)."""
    return ", ".join(f"{rule}={action}*{n}" for (rule, action), n in sorted(page.counts.items()))


class EnforcedBody:
    """A page that may change, through its rewrite."""

    __slots__ = ("_debug", "meter", "page")
    passes_through = False
    depends_on_consent = True

    def __init__(self, page: EnforcedPage, debug_headers: bool) -> None:
        self.page = page
        self.meter = Meter()
        self._debug = debug_headers

    @property
    def variant(self) -> str:
        return self.page.plan.variant

    @property
    def cacheable(self) -> bool:
        """A page for one visitor alone (a widget they come back to, an embed shown
        once), and the Consent Mode default may carry the nonce of this one
        response's policy."""
        return not self.page.personal and not self.page.carries_nonce

    def set_format(self, encoding: str, xml: bool) -> None:
        self.page.set_format(encoding, xml)

    def begin(self, headers: CIMultiDictProxy[str] | CIMultiDict[str]) -> None:
        self.page.begin([policy for name in _CSP for policy in headers.getall(name, [])])

    def feed(self, chunk: bytes) -> bytes:
        return self.meter.feed(self.page.feed, chunk)

    def close(self) -> bytes:
        return self.meter.close(self.page.close)

    def fix_headers(self, headers: CIMultiDict[str]) -> None:
        page_headers(headers, self.page, complete=self.meter.complete, debug=self._debug)

    def decision(self) -> PageDecision:
        page = self.page
        return decision_of(page.consent.json_members, page.plan.generation, page.counts, self.meter)

    def untouched_members(self, size: int) -> str:
        page = self.page
        return untouched_members(page.consent.json_members, page.plan.generation, size)


class UntouchedBody:
    """A page that leaves as it came: the origin's bytes, with the headers that say
    they depend on consent, and the decision-log line."""

    __slots__ = ("_debug", "page", "variant")
    passes_through = True
    depends_on_consent = True
    cacheable = True

    def __init__(self, page: UntouchedPage, debug_headers: bool) -> None:
        self.page = page
        self.variant = page.plan.variant
        self._debug = debug_headers

    def set_format(self, encoding: str, xml: bool) -> None:
        return None

    def begin(self, headers: CIMultiDictProxy[str] | CIMultiDict[str]) -> None:
        return None

    def feed(self, chunk: bytes) -> bytes:
        return chunk

    def close(self) -> bytes:
        return b""

    def fix_headers(self, headers: CIMultiDict[str]) -> None:
        page_headers(headers, self.page, complete=True, debug=self._debug)

    def decision(self) -> PageDecision:
        """Of a response with no body (HEAD)."""
        page = self.page
        return PageDecision(page.consent.json_members, page.plan.generation, (), 0, 0, 0.0, False)

    def untouched_members(self, size: int) -> str:
        page = self.page
        return untouched_members(page.consent.json_members, page.plan.generation, size)


def consent_body(page: Page, *, debug_headers: bool) -> EnforcedBody | UntouchedBody:
    """``page`` as the proxy's hook."""
    if isinstance(page, UntouchedPage):
        return UntouchedBody(page, debug_headers)  # most pages
    return EnforcedBody(page, debug_headers)


def consent_hook(enforcer: Enforcer, *, debug_headers: bool) -> RewriteFactory:
    """The proxy's hook: per HTML response, the page this visitor gets."""

    def factory(info: RequestInfo) -> BodyRewrite:
        page = enforcer.page(info.headers, info.path, info.host)
        return consent_body(page, debug_headers=debug_headers)

    return factory
