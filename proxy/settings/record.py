"""``Settings``: the typed, frozen record every part of the proxy is configured from,
and the views of it that the layers take as arguments (policy, rule layers, ...)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from yarl import URL

from proxy.consent.consent_mode import ConsentModeSettings
from proxy.consent.layers import Layers
from proxy.consent.model import ConsentPolicy
from proxy.consent.readers import OWN
from proxy.consent.readers.config import Keys, readers_config
from proxy.consent.readers.tcf import PurposeRule
from proxy.settings.fields import Network, parse_listen


@dataclass(frozen=True)
class Settings:
    upstream: str = "http://127.0.0.1:8000"
    listen: str = "127.0.0.1:8080"
    preserve_host: bool = False
    trusted_proxies: tuple[Network, ...] = ()
    max_body: int = 10 * 1024 * 1024
    rewrite_cache: int = 64 * 1024 * 1024
    upstream_timeout: float = 30.0
    read_timeout: float = 60.0
    client_timeout: float = 30.0
    shutdown_timeout: float = 15.0
    workers: int = 1
    access_log: str = "-"
    log_flush: float = 0.1
    rules: str = ""
    disabled_rules: frozenset[str] = frozenset()
    builtin_rules: bool = True
    consent_cookie: str = "consent"
    policy_version: int = 1
    debug_headers: bool = True
    decision_log: str = "-"
    admin_token: str = ""
    via: str = "consent-proxy"
    default_granted: frozenset[str] = frozenset()
    consent_max_age: int = 182 * 24 * 3600
    templates: str = ""
    privacy_url: str = ""
    consent_sources: tuple[str, ...] = (OWN,)
    onetrust_groups: Keys | None = None
    klaro_services: Keys | None = None
    tcf_vendors: Mapping[str, frozenset[int]] | None = None
    tcf_purposes: Mapping[str, PurposeRule] | None = None
    consent_mode: str = ""
    ads_data_redaction: bool = False
    url_passthrough: bool = False
    surrogates: bool = True
    first_party: tuple[str, ...] = ()
    unknown_third_party: str = "allow"

    @property
    def consent_policy(self) -> ConsentPolicy:
        readers = readers_config(
            onetrust_groups=self.onetrust_groups,
            klaro_services=self.klaro_services,
            tcf_vendors=self.tcf_vendors,
            tcf_purposes=self.tcf_purposes,
        )
        return ConsentPolicy(
            self.consent_cookie,
            self.policy_version,
            self.default_granted,
            self.consent_sources,
            readers,
        )

    @property
    def own_banner(self) -> bool:
        """Whether the proxy asks with its own banner (its cookie is a consent source)."""
        return OWN in self.consent_sources

    @property
    def rule_layers(self) -> Layers:
        operator = Path(self.rules) if self.rules else None
        return Layers(operator, self.builtin_rules, self.disabled_rules)

    @property
    def consent_mode_settings(self) -> ConsentModeSettings:
        return ConsentModeSettings(self.consent_mode, self.ads_data_redaction, self.url_passthrough)

    @property
    def upstream_url(self) -> URL:
        return URL(self.upstream)

    @property
    def host_port(self) -> tuple[str, int]:
        return parse_listen(self.listen)
