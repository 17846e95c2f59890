"""Frozen ``Settings`` from defaults, an optional TOML file, ``CONSENT_PROXY_*``
environment variables and command-line flags (later sources win).

Every setting is a field of ``Settings`` (its type and default) and an entry of
``FIELDS`` (its parser and help); the CLI builds its flags from that table. A bad
value raises ``SettingsError`` naming the key, the value, where it came from and
what was expected.

    record   ``Settings``, the typed frozen record, and its views for the layers
    fields   ``FIELDS``: each setting's parser, what it accepts and its help
    loading  ``load_settings`` (file < environment < flags), ``SettingsError``, exit codes
"""

from __future__ import annotations

from proxy.settings.fields import FIELDS, Field, Network, parse_listen
from proxy.settings.loading import (
    ENV_PREFIX,
    EXIT_FAILED,
    EXIT_USAGE,
    SettingsError,
    load_settings,
)
from proxy.settings.record import Settings

__all__ = [
    "ENV_PREFIX",
    "EXIT_FAILED",
    "EXIT_USAGE",
    "FIELDS",
    "Field",
    "Network",
    "Settings",
    "SettingsError",
    "load_settings",
    "parse_listen",
]
