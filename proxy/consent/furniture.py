"""What the proxy adds to pages, as the consent layer asks for it: ``Furniture``.

The visitor-facing layer renders it (``proxy.ui.furniture.PageFurniture``: banner,
placeholders, their forms, room in the page's Content-Security-Policy); enforce.py
decides where each piece goes; app.py wires the two.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

from proxy.consent.model import ChangeAt
from proxy.consent.rules import Rule


class Furniture(Protocol):
    """What the proxy adds to pages, as the visitor-facing layer renders it."""

    @property
    def banner(self) -> bool:
        """Whether a visitor who has not decided gets the banner."""
        ...

    @property
    def surrogates(self) -> Mapping[str, str]:
        """The surrogate scripts pages may get where a rule that names them removes a
        tracker's script, text by name (empty: none)."""
        ...

    def banner_html(self, path: str) -> str:
        """The banner of a page at ``path`` (it returns there after a choice)."""
        ...

    def placeholder(
        self, rule: Rule, anchor: str, path: str, size: str = "", change: ChangeAt | None = None
    ) -> str:
        """What stands in for an element ``rule`` holds: phrasing content with the id
        ``anchor``, whose button grants the rule's category and returns to
        ``path#anchor`` through the form ``grant_form`` makes. With ``change`` (the
        proxy's cookie would not count for this visitor): no button, and words saying
        where the choice is changed."""
        ...

    def embed_placeholder(
        self, rule: Rule, anchor: str, path: str, size: str, change: ChangeAt | None = None
    ) -> str:
        """What stands in for an embed ``rule`` holds (an iframe, say), sized by
        ``size`` (CSS declarations): as ``placeholder``, with a "Load this" button too,
        which posts the form ``once_form`` makes with ``next=path#anchor`` (with
        ``change`` too: the once cookie counts whatever the consent's source)."""
        ...

    def once_form(self) -> str:
        """The form the embed placeholders' "Load this" posts (at the end of <body>)."""
        ...

    def placeholder_style(self) -> str:
        """The placeholders' style element, placed once before the first of them."""
        ...

    def grant_form(self, category: str) -> str:
        """The form the placeholders of ``category`` post (placed at the end of <body>)."""
        ...

    def make_room(self, policy: str, styles: Sequence[str], scripts: Sequence[str]) -> str:
        """A Content-Security-Policy with room for what the proxy adds: its own inline
        styles, these inline ``styles`` and ``scripts`` (of injects and surrogates),
        its forms."""
        ...

    def script_nonce(self, policies: Sequence[str]) -> str | None:
        """A nonce these Content-Security-Policies let inline scripts run with."""
        ...

    def allows_nonce(self, policy: str, nonce: str) -> bool:
        """Whether an inline script with ``nonce`` runs under ``policy``."""
        ...
