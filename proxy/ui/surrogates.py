"""Surrogate scripts: what page code may call of a tracker the proxy removed, as no-ops.

A surrogate is one of our own small scripts in ``proxy/ui/assets/surrogates/NAME.js``
(``ga``, ``gtm``, ``gpt``, ...). It defines the removed library's API so that page code
calling it neither throws nor waits forever for a callback; it sends nothing and stores
nothing. Which surrogate a page gets, and where, is the caller's business: this module
only names the available ones and hands out their text with the CSP source that lets it
run inline. ``README.md`` beside the scripts lists what each one defines.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from importlib.resources.abc import Traversable

from proxy.consent.standins import ABSORBING
from proxy.ui.csp import sha256_source

_NAME = re.compile(r"[a-z][a-z0-9_-]{0,31}")


class UnknownSurrogate(ValueError):
    """A surrogate name that is not one of ``available()``."""


@dataclass(frozen=True)
class Surrogate:
    """One surrogate script: its name, its text (served or inlined byte for byte as
    UTF-8) and the ``'sha256-...'`` source a Content-Security-Policy needs to let
    exactly that text run as an inline ``<script>``."""

    name: str
    text: str
    csp_source: str


def _directory() -> Traversable:
    return resources.files("proxy.ui").joinpath("assets", "surrogates")


@cache
def available() -> tuple[str, ...]:
    """The names of the packaged surrogates, sorted."""
    names = (
        entry.name.removesuffix(".js")
        for entry in _directory().iterdir()
        if entry.is_file() and entry.name.endswith(".js")
    )
    return tuple(sorted(name for name in names if _NAME.fullmatch(name)))


def load(name: str) -> Surrogate:
    """The surrogate called ``name``; ``UnknownSurrogate`` (a ValueError naming the
    input and the available names) for anything else, whatever its type or shape."""
    if not isinstance(name, str) or name not in available():
        raise UnknownSurrogate(
            f"unknown surrogate {name!r}: expected one of {', '.join(available())}"
        )
    return _load(name)


@cache
def _load(name: str) -> Surrogate:
    text = _directory().joinpath(f"{name}.js").read_text(encoding="utf-8")
    return Surrogate(name=name, text=text, csp_source=sha256_source(text))


@cache
def absorbing() -> Surrogate:
    """The absorbing stand-in (``assets/absorbing.js``): for the global functions of a
    removed script that no surrogate covers (proxy/consent/cuts.py names them in its
    element's ``data-names``), one that accepts any call and property chain."""
    text = resources.files("proxy.ui").joinpath("assets", "absorbing.js").read_text("utf-8")
    return Surrogate(name=ABSORBING, text=text, csp_source=sha256_source(text))


def texts() -> dict[str, str]:
    """Every surrogate's text by name, and the absorbing stand-in's under
    ``ABSORBING``: what the consent layer's plans insert (it cannot import this layer,
    so the wiring hands it these)."""
    return {**{name: load(name).text for name in available()}, ABSORBING: absorbing().text}
