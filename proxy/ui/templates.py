"""The one template loader: an operator's ``--templates`` directory first, then ours.

Every file the proxy shows visitors (the banner's and placeholders' markup and styles,
the preferences page, the banner's words in ``banner.toml``) is looked up here, so a
file of the same name in the operator's directory replaces the built-in one in
``proxy/ui/assets``. Markup templates use ``${name}`` fields (``string.Template``);
every value is HTML-escaped for where it lands before it is substituted.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import cache
from importlib import resources
from pathlib import Path

LABELS = {
    "necessary": "Necessary",
    "preferences": "Preferences",
    "analytics": "Analytics",
    "advertising": "Advertising",
    "social": "Social media",
    "media": "Embedded content from other sites",
}
DESCRIPTIONS = {
    "necessary": "Needed for the site to work and to remember your choices. Always on.",
    "preferences": "Remember settings such as language or region, and optional features like chat.",
    "analytics": "Count visits and see how the site is used, so it can be improved.",
    "advertising": "Show and measure advertising, here and on other sites.",
    "social": "Share and like buttons and other widgets of social networks.",
    "media": "Videos, maps, music and posts embedded from other sites, which see your visit.",
}


@dataclass(frozen=True)
class Templates:
    """Where templates are looked up (``directory``: the operator's, "" for none), and
    the privacy policy the banner and preferences page link to."""

    directory: str = ""
    privacy_url: str = ""

    def text(self, name: str) -> str:
        """The file ``name``: the operator's if their directory has it, else ours."""
        return _read(self.directory, name)

    def words(self) -> dict[str, str]:
        """The banner's words (``banner.toml``)."""
        return _words(self.directory)


@cache
def _words(directory: str) -> dict[str, str]:
    return {k: str(v) for k, v in tomllib.loads(_read(directory, "banner.toml")).items()}


@cache
def _read(directory: str, name: str) -> str:
    if directory:
        path = Path(directory) / name
        if path.is_file():
            return path.read_text(encoding="utf-8")
    return resources.files("proxy.ui").joinpath("assets", name).read_text(encoding="utf-8")
