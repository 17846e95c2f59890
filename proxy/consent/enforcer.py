"""The per-request part of enforcement: the visitor's consent (read from the request's
headers), the plan for it under the rules in force, and the page it gets (enforce.py).
"""

from __future__ import annotations

from multidict import CIMultiDict, CIMultiDictProxy

from proxy.consent import consent_mode, once, returning
from proxy.consent.consent_mode import ConsentModeSettings
from proxy.consent.enforce import Page, page_for
from proxy.consent.furniture import Furniture
from proxy.consent.inventory import InventoryBook
from proxy.consent.model import ConsentReader
from proxy.consent.plans import PlanCache
from proxy.consent.reload import RulesState
from proxy.consent.rules import RuleSet


class Enforcer:
    """Per request: the visitor's consent, the plan for it under the rules in force
    (compiled once per rules generation and consent variant), and the page it gets."""

    def __init__(
        self,
        rules: RulesState,
        read_consent: ConsentReader,
        furniture: Furniture,
        google: ConsentModeSettings = consent_mode.DEFAULT,
        first_party: tuple[str, ...] = (),
        inventory: InventoryBook | None = None,
    ) -> None:
        """``google``: the operator's Consent Mode settings (consent_mode.py);
        ``first_party``: the site's own hosts besides each request's Host;
        ``inventory``: where pages record their third-party hosts (inventory.py)."""
        self._first_party = first_party
        self._rules = rules
        self._read = read_consent
        self._furniture = furniture
        self._cookie = read_consent.policy.cookie
        # The placeholders' short-lived cookies: looked for only in a Cookie header
        # that names one (almost none does).
        self._short_lived = (returning.cookie_name(self._cookie), once.cookie_name(self._cookie))
        self.plans = PlanCache(google, furniture.surrogates)
        self.inventory = inventory

    def prepare(self, ruleset: RuleSet) -> None:
        """Compile what pages under ``ruleset`` need, before it serves (it may run in a
        thread while requests use the rules in force)."""
        self.plans.prepare(ruleset)

    def page(
        self, headers: CIMultiDictProxy[str] | CIMultiDict[str], path: str, host: str | None = None
    ) -> Page:
        """The page a request with these headers for ``path`` (with its query) gets;
        ``host``: the one the browser addressed (a trusted front's), else the Host's."""
        consent = self._read(headers)
        ruleset = self._rules.current  # one read: the whole request uses this set
        plan = self.plans.get(ruleset, consent)
        return_to = load_once = None
        back, shown_once = self._short_lived
        for cookies in headers.getall("Cookie", ()):
            if back in cookies or shown_once in cookies:
                return_to = returning.requested(headers, self._cookie)
                load_once = once.requested(headers, self._cookie, path)
                break
        page_host = host_name(host or headers.get("Host") or "")
        book = self.inventory
        return page_for(
            plan,
            consent,
            path,
            self._furniture,
            return_to=return_to,
            return_cookie=self._cookie,
            page_host=page_host,
            first_party=self._first_party,
            inventory=None if book is None else book.watch(ruleset, consent, page_host),
            load_once=load_once,
        )


def host_name(host: str) -> str | None:
    """The name in a Host header, without its port (the page's own host, never a
    third party to the catalogue); None when it holds none."""
    name = host.strip().lower()
    if name.startswith("["):
        return None  # an IP literal: no catalogued domain is under it anyway
    name = name.rpartition(":")[0] if ":" in name else name
    return name or None
