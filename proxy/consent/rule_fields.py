"""Reading the values of a rule file's keys: each reader returns the value in the
shape the rule needs, or raises the error ``fail`` makes (file, line, key, what was
expected). Shared by rules.py (whole rules) and its override switches."""

from __future__ import annotations

from typing import Any


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
