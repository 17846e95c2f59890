"""Every setting declared once: the text it accepts, how that text is parsed, and the
help the operator reads (``--help`` and ``check`` are built from this table).

A parser takes the text of a flag, an environment variable or a TOML value and returns
the typed value, or raises ``ValueError``; ``proxy.settings.loading`` turns that into a
``SettingsError`` naming the source, the key and what was expected.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from yarl import URL

from proxy.consent.consent_mode import CONSENT_MODES
from proxy.consent.inventory import MODES as UNKNOWN_MODES
from proxy.consent.model import MAX_AGE_LIMIT, OPTIONAL
from proxy.consent.readers import SOURCES, check_sources
from proxy.consent.readers.config import (
    DEFAULT_ONETRUST_GROUPS,
    parse_klaro_services,
    parse_onetrust_groups,
    parse_tcf_purposes,
    parse_tcf_vendors,
)
from proxy.consent.urls import normalize_host

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class Field:
    """How one setting is read from text and explained to the operator."""

    name: str
    parse: Callable[[str], Any]
    expected: str
    help: str
    flag: bool = True
    explains: bool = False  # parse's ValueError says what is wrong (it goes in the message)


def parse_listen(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(text)
    return host.strip("[]") or "0.0.0.0", int(port)


def _upstream(text: str) -> str:
    url = URL(text)
    if url.scheme not in ("http", "https") or not url.host or url.query_string or url.fragment:
        raise ValueError(text)
    return str(url.with_path(url.path.rstrip("/") or "/"))


def _bool(text: str) -> bool:
    low = text.strip().lower()
    if low in ("1", "true", "yes", "on"):
        return True
    if low in ("0", "false", "no", "off"):
        return False
    raise ValueError(text)


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise ValueError(text)
    return value


def _size(text: str) -> int:
    value = int(text)
    if value < 0:
        raise ValueError(text)
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise ValueError(text)
    return value


def _seconds(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 60:
        raise ValueError(text)
    return value


def _networks(text: str) -> tuple[Network, ...]:
    return tuple(
        ipaddress.ip_network(p.strip(), strict=False) for p in text.split(",") if p.strip()
    )


def _token(text: str) -> str:
    if not text or any(c in text for c in ' \t\r\n\0;,="\\') or not text.isascii():
        raise ValueError(text)
    return text


def _header_value(text: str) -> str:
    if any(c in text for c in "\r\n\0") or not text.isascii():
        raise ValueError(text)
    return text


def _categories(text: str) -> frozenset[str]:
    names = frozenset(p.strip() for p in text.split(",") if p.strip())
    if not names <= set(OPTIONAL):
        raise ValueError(text)
    return names


def _rule_ids(text: str) -> frozenset[str]:
    ids = frozenset(p.strip() for p in text.split(",") if p.strip())
    if any(c in rule_id for rule_id in ids for c in ' \t\r\n\0/\\"'):
        raise ValueError(text)
    return ids


def _max_age(text: str) -> int:
    value = int(text)
    if not 0 < value <= MAX_AGE_LIMIT:
        raise ValueError(text)
    return value


def _link(text: str) -> str:
    if text and not (text.startswith("/") or text.startswith(("http://", "https://"))):
        raise ValueError(text)
    return _header_value(text)


def _listen(text: str) -> str:
    parse_listen(text)
    return text


def _sources(text: str) -> tuple[str, ...]:
    return check_sources(p.strip() for p in text.split(",") if p.strip())


def _hosts(text: str) -> tuple[str, ...]:
    hosts = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        host = normalize_host(part)
        if host is None or "/" in part or ":" in part:
            raise ValueError(part)
        hosts.append(host)
    return tuple(hosts)


def _unknown_mode(text: str) -> str:
    if text not in UNKNOWN_MODES:
        raise ValueError(text)
    return text


def _consent_mode(text: str) -> str:
    if text not in ("", *CONSENT_MODES):
        raise ValueError(text)
    return text


FIELDS: tuple[Field, ...] = (
    Field("upstream", _upstream, "an http:// or https:// URL without query", "the origin server"),
    Field("listen", _listen, "HOST:PORT", "address to listen on"),
    Field("preserve_host", _bool, "true or false", "send the client's Host to the origin"),
    Field(
        "trusted_proxies",
        _networks,
        "comma-separated CIDRs",
        "peers whose X-Forwarded-For/-Proto/-Host and Forwarded are believed (your TLS terminator)",
    ),
    Field("max_body", _positive_int, "a positive number of bytes", "request body cap"),
    Field(
        "rewrite_cache",
        _size,
        "a number of bytes, 0 or more",
        "memory for rewritten pages reused while the origin sends the same bytes (0: off)",
    ),
    Field(
        "upstream_timeout",
        _positive_float,
        "positive seconds",
        "time for the origin to send response headers (504 after)",
    ),
    Field(
        "read_timeout",
        _positive_float,
        "positive seconds",
        "longest pause inside an origin's response body",
    ),
    Field(
        "client_timeout",
        _positive_float,
        "positive seconds",
        "deadline for a client to send its request headers (and idle keep-alive time), "
        "and longest pause while it sends a body or takes a response",
    ),
    Field(
        "shutdown_timeout",
        _positive_float,
        "positive seconds",
        "deadline for in-flight requests on SIGTERM",
    ),
    Field("workers", _positive_int, "a positive integer", "processes sharing the port"),
    Field("access_log", str, "a file path or -", "JSON-lines access log (- is stdout)"),
    Field(
        "log_flush",
        _seconds,
        "seconds from 0 to 60",
        "longest time a log line waits in memory before it is written (0: at once)",
    ),
    Field(
        "rules",
        str,
        "a directory",
        "your rule files, a layer over the built-in rules: a file named like a built-in "
        "rule replaces or switches it, another adds a rule; watched",
    ),
    Field(
        "disabled_rules",
        _rule_ids,
        "comma-separated rule ids",
        "rules to turn off, built-in or yours (e.g. facebook,twitter)",
    ),
    Field(
        "builtin_rules",
        _bool,
        "true or false",
        "use the built-in rules under yours (--no-builtin-rules: only yours)",
    ),
    Field("consent_cookie", _token, "a cookie name", "name of the consent cookie"),
    Field(
        "policy_version",
        _positive_int,
        "a positive integer",
        "consent policy version; older choices count as no decision",
    ),
    Field("debug_headers", _bool, "true or false", "send X-Consent and X-Consent-Actions"),
    Field("decision_log", str, "a file path or -", "JSON-lines decision log (- is stdout)"),
    Field(
        "admin_token",
        _header_value,
        "a token without CR/LF",
        "bearer token for the admin endpoints (empty: loopback only)",
    ),
    Field("via", _token, "a token", "pseudonym used in the Via header"),
    Field(
        "default_granted",
        _categories,
        "comma-separated categories from " + ", ".join(OPTIONAL),
        "categories granted before a visitor decides (opt-out regimes); default none",
    ),
    Field(
        "consent_max_age",
        _max_age,
        f"seconds, at most {MAX_AGE_LIMIT} (13 months)",
        "how long the consent cookie is kept",
    ),
    Field("templates", str, "a directory", "banner and preferences templates that replace ours"),
    Field(
        "privacy_url",
        _link,
        "a path or an http(s) URL",
        "the privacy policy the banner and preferences page link to",
    ),
    Field(
        "consent_sources",
        _sources,
        "comma-separated sources from " + ", ".join(SOURCES),
        "where a visitor's choice is read, in order: the first that holds one wins "
        "(own: the proxy's cookie and banner; the others: another banner's cookie)",
        explains=True,
    ),
    Field(
        "onetrust_groups",
        parse_onetrust_groups,
        "comma-separated GROUP=CATEGORY pairs",
        f"OneTrust groups -> categories (default {DEFAULT_ONETRUST_GROUPS})",
        explains=True,
    ),
    Field(
        "klaro_services",
        parse_klaro_services,
        "comma-separated SERVICE=CATEGORY pairs",
        "Klaro services -> categories (default none: a Klaro choice denies every category)",
        explains=True,
    ),
    Field(
        "tcf_vendors",
        parse_tcf_vendors,
        "comma-separated CATEGORY=VENDOR_ID pairs",
        "IAB TCF vendors whose consent a category also needs (e.g. advertising=755, Google)",
        explains=True,
    ),
    Field(
        "tcf_purposes",
        parse_tcf_purposes,
        "comma-separated CATEGORY=PURPOSES pairs (+: all of, |: any of)",
        "IAB TCF purposes that grant a category, replacing its default rule "
        "(e.g. media=1+10; social and media have none by default: denied)",
        explains=True,
    ),
    Field(
        "consent_mode",
        _consent_mode,
        "off, basic or advanced (empty: each rule's own)",
        "Google Consent Mode v2 for every Google rule, replacing what each rule says",
    ),
    Field(
        "ads_data_redaction",
        _bool,
        "true or false",
        "Consent Mode: redact ad click identifiers while ad_storage is denied",
    ),
    Field(
        "url_passthrough",
        _bool,
        "true or false",
        "Consent Mode: pass ad click and measurement parameters through links",
    ),
    Field(
        "surrogates",
        _bool,
        "true or false",
        "put no-op stand-ins for a removed tracker's API where the rules name them",
    ),
    Field(
        "first_party",
        _hosts,
        "comma-separated host names",
        "the site's own hosts (subdomains included) besides the request's Host: the "
        "catalogue never treats them, or their catalogue entity, as a third party",
    ),
    Field(
        "unknown_third_party",
        _unknown_mode,
        "allow, block or placeholder",
        "third-party hosts no rule or catalogue entry covers: block (or placeholder "
        "for frames) their scripts, frames and pixels until all of analytics, "
        "advertising and social are granted",
    ),
)
