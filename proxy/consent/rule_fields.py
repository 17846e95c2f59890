"""Reading the values of a rule file's keys: each reader returns the value in the
shape the rule needs, or raises the error ``fail`` makes (file, line, key, what was
expected). Shared by rules.py (whole rules) and its override switches."""

from __future__ import annotations

from typing import Any

from proxy.consent.model import OPTIONAL

# Google Consent Mode v2, for rules that cover Google tags (see consent_mode.py).
CONSENT_MODES = ("off", "basic", "advanced")


def single_line(value: str) -> bool:
    return not any(c in value for c in "\r\n\0")


def text(
    data: dict[str, Any],
    key: str,
    fail: Any,
    required: bool = False,
    table: str | None = None,
    index: int = 0,
) -> str:
    value = data.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or not value.strip():
        raise fail(key, "expected a non-empty string", table, index)
    if not single_line(value):
        raise fail(key, "must not contain CR, LF or NUL", table, index)
    return value


def tables(data: dict[str, Any], key: str, fail: Any) -> list[dict[str, Any]]:
    value = data.get(key, [])
    if not isinstance(value, list) or not all(isinstance(t, dict) for t in value):
        raise fail(key, f"expected [[{key}]] tables")
    return value


def known(table: dict[str, Any], allowed: set[str], name: str, index: int, fail: Any) -> None:
    for key in table:
        if key not in allowed:
            raise fail(
                key, f"unknown key; expected one of {', '.join(sorted(allowed))}", name, index
            )


def strings(table: dict[str, Any], key: str, name: str, index: int, fail: Any) -> tuple[str, ...]:
    value = table.get(key, [])
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise fail(key, "expected a list of non-empty strings", name, index)
    for v in value:
        if not single_line(v):
            raise fail(key, f"{v!r} must not contain CR, LF or NUL", name, index)
    return tuple(value)


def top(
    data: dict[str, Any],
    fail: Any,
    category: str,
    enabled: bool,
    description: str,
    consent_mode: str | None,
) -> tuple[str, bool, str, str | None]:
    """A rule's category, enabled, description and consent_mode: what ``data`` sets,
    else the values given (a new rule's defaults, or the built-in rule's it switches)."""
    category = data.get("category", category)
    if category not in OPTIONAL:
        raise fail(
            "category", f"{category!r} is not a category; expected one of {', '.join(OPTIONAL)}"
        )
    enabled = data.get("enabled", enabled)
    if not isinstance(enabled, bool):
        raise fail("enabled", f"{enabled!r} is not true or false")
    description = data.get("description", description)
    if not isinstance(description, str) or "\0" in description:
        raise fail("description", "expected a string")
    consent_mode = data.get("consent_mode", consent_mode)
    if consent_mode is not None and consent_mode not in CONSENT_MODES:
        raise fail(
            "consent_mode",
            f"{consent_mode!r} is not a Consent Mode; expected one of {', '.join(CONSENT_MODES)}",
        )
    return category, enabled, description, consent_mode
