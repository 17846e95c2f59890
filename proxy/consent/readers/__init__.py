"""Readers of other consent banners' cookies (TCF, GPP, US Privacy, OneTrust, Cookiebot,
Klaro, cookieconsent): each turns a cookie into a ``SourceDecision``, and
``read_sources`` returns the first source in the configured order that holds one.

Pure and total, no aiohttp: the request path wires them in (``proxy.consent``).
"""

from proxy.consent.readers.base import CATEGORIES, SourceDecision, cookie_jar
from proxy.consent.readers.sources import (
    OWN,
    SOURCES,
    ReadersConfig,
    Reading,
    check_sources,
    read_headers,
    read_sources,
)

__all__ = [
    "CATEGORIES",
    "OWN",
    "SOURCES",
    "ReadersConfig",
    "Reading",
    "SourceDecision",
    "check_sources",
    "cookie_jar",
    "read_headers",
    "read_sources",
]
