"""Counters for operators, served as Prometheus text at /_consent/metrics (admin only)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from aiohttp import web


@dataclass
class Metrics:
    """What the proxy has done since it started (per process)."""

    responses: Counter[str] = field(default_factory=Counter)  # by status class: 2xx, 5xx...
    pages: Counter[str] = field(default_factory=Counter)  # HTML: rewritten / untouched
    actions: Counter[tuple[str, str]] = field(default_factory=Counter)  # (rule, action)
    consents: Counter[str] = field(default_factory=Counter)  # accept_all / reject_all / custom
    # Elements naming a third-party host no rule or catalogue entry covers, by kind
    # (the inventory's book counts into this one).
    uncovered: Counter[str] = field(default_factory=Counter)

    def render(self, generation: str, reload_error: bool, tasks: int = 0) -> str:
        """Prometheus text; ``tasks``: the asyncio tasks alive in this process now."""
        lines = [
            "# HELP consent_proxy_responses_total Responses sent, by status class.",
            "# TYPE consent_proxy_responses_total counter",
            *(
                f'consent_proxy_responses_total{{class="{k}"}} {v}'
                for k, v in sorted(self.responses.items())
            ),
            "# HELP consent_proxy_pages_total HTML pages, rewritten or passed untouched.",
            "# TYPE consent_proxy_pages_total counter",
            *(f'consent_proxy_pages_total{{how="{k}"}} {v}' for k, v in sorted(self.pages.items())),
            "# HELP consent_proxy_actions_total What rules did: remove, placeholder, surrogate.",
            "# TYPE consent_proxy_actions_total counter",
            *(
                f'consent_proxy_actions_total{{rule="{r}",action="{a}"}} {v}'
                for (r, a), v in sorted(self.actions.items())
            ),
            "# HELP consent_proxy_consents_total Consent choices recorded, by kind.",
            "# TYPE consent_proxy_consents_total counter",
            *(
                f'consent_proxy_consents_total{{kind="{k}"}} {v}'
                for k, v in sorted(self.consents.items())
            ),
            "# HELP consent_proxy_uncovered_third_party_total Elements naming a third-party "
            "host no rule or catalogue entry covers, by element kind.",
            "# TYPE consent_proxy_uncovered_third_party_total counter",
            *(
                f'consent_proxy_uncovered_third_party_total{{kind="{k}"}} {v}'
                for k, v in sorted(self.uncovered.items())
            ),
            "# HELP consent_proxy_rules_info The rule set in force.",
            "# TYPE consent_proxy_rules_info gauge",
            f'consent_proxy_rules_info{{generation="{generation}"}} 1',
            "# HELP consent_proxy_rules_reload_failing 1 while the last rules reload was refused.",
            "# TYPE consent_proxy_rules_reload_failing gauge",
            f"consent_proxy_rules_reload_failing {int(reload_error)}",
            "# HELP consent_proxy_asyncio_tasks Asyncio tasks alive in this process.",
            "# TYPE consent_proxy_asyncio_tasks gauge",
            f"consent_proxy_asyncio_tasks {tasks}",
        ]
        return "\n".join(lines) + "\n"


METRICS = web.AppKey("metrics", Metrics)
