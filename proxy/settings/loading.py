"""``load_settings``: defaults < TOML file < ``CONSENT_PROXY_*`` environment < flags,
each value parsed by its entry in ``FIELDS``; and the program's exit codes."""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from proxy.settings.fields import FIELDS
from proxy.settings.record import Settings

ENV_PREFIX = "CONSENT_PROXY_"
# The program's exit codes, for every command: 0 done (or stopped gracefully).
EXIT_FAILED = 1  # ran, and found problems (``check``: a rule example failed)
EXIT_USAGE = 2  # did not run: a bad setting, flag, file or rule set


class SettingsError(ValueError):
    """A setting with a value outside what it accepts."""


_BY_NAME = {f.name: f for f in FIELDS}


def _convert(name: str, raw: Any, source: str) -> Any:
    spec = _BY_NAME.get(name)
    if spec is None:
        known = ", ".join(sorted(_BY_NAME))
        raise SettingsError(f"{source}: unknown setting {name!r}; known settings: {known}")
    if isinstance(raw, bool):
        raw = "true" if raw else "false"
    elif isinstance(raw, list):
        raw = ",".join(str(x) for x in raw)
    elif isinstance(raw, dict):  # a TOML table: key = value or key = [values]
        raw = ",".join(
            f"{key}={v}" for key, vs in raw.items() for v in (vs if isinstance(vs, list) else [vs])
        )
    try:
        return spec.parse(str(raw))
    except ValueError as exc:
        why = f" ({exc})" if spec.explains else ""
        raise SettingsError(
            f"{source}: {name} = {raw!r} is not valid{why}; expected {spec.expected}"
        ) from None


def load_settings(
    flags: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
    config: str | None = None,
) -> Settings:
    """Merge defaults < TOML file < environment < flags into one ``Settings``."""
    env = os.environ if env is None else env
    values: dict[str, Any] = {}
    config = config or env.get(ENV_PREFIX + "CONFIG")
    if config:
        path = Path(config)
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise SettingsError(f"--config {config}: cannot read: {exc.strerror}") from None
        except tomllib.TOMLDecodeError as exc:
            raise SettingsError(f"--config {config}: not valid TOML: {exc}") from None
        for key, raw in data.items():
            values[key.replace("-", "_")] = _convert(key.replace("-", "_"), raw, str(path))
    for key, raw in env.items():
        if key.startswith(ENV_PREFIX) and key != ENV_PREFIX + "CONFIG":
            name = key[len(ENV_PREFIX) :].lower()
            values[name] = _convert(name, raw, f"environment {key}")
    for name, raw in (flags or {}).items():
        if raw is not None:
            values[name] = _convert(name, raw, "--" + name.replace("_", "-"))
    return dataclasses.replace(Settings(), **values)
