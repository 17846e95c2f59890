"""Make room in a page's Content-Security-Policy for what the proxy adds to the page.

A policy that restricts inline styles (or scripts) gets the SHA-256 hashes of what the
proxy injects added to the directive that governs ``<style>`` (``<script>``) elements;
``form-action`` lets the banner's and placeholders' forms post to /_consent. A
directive that relies on ``'unsafe-inline'`` (no nonce or hash beside it) is left
alone: adding a hash there would switch 'unsafe-inline' off for the page's own styles.
furniture.py says which styles and scripts a page gets.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable

# Which directive governs an inline <style> / <script> element, most specific first.
_FALLBACK = {
    "style": ("style-src-elem", "style-src", "default-src"),
    "script": ("script-src-elem", "script-src", "default-src"),
}


def sha256_source(text: str) -> str:
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return f"'sha256-{base64.b64encode(digest).decode()}'"


def _parse(policy: str) -> list[tuple[str, list[str]]]:
    directives = []
    for part in policy.split(";"):
        tokens = part.split()
        if tokens:
            directives.append((tokens[0].lower(), tokens[1:]))
    return directives


def _relies_on_unsafe_inline(sources: list[str]) -> bool:
    lower = [s.lower() for s in sources]
    if "'unsafe-inline'" not in lower:
        return False
    return not any(s.startswith(("'nonce-", "'sha256-", "'sha384-", "'sha512-")) for s in lower)


def allow_inline(policy: str, kind: str, contents: Iterable[str]) -> str:
    """``policy`` with hashes for ``contents`` (inline ``kind`` elements) added where
    they would otherwise be blocked; unchanged when they are already allowed."""
    directives = _parse(policy)
    names = [name for name, _ in directives]
    governing = next((d for d in _FALLBACK[kind] if d in names), None)
    if governing is None:
        return policy  # nothing restricts inline elements of this kind
    sources = directives[names.index(governing)][1]
    if _relies_on_unsafe_inline(sources):
        return policy
    if any(s.lower() == "'none'" for s in sources):
        sources = []
    hashes = [h for h in (sha256_source(c) for c in contents) if h not in sources]
    if not hashes:
        return policy
    at = names.index(governing)
    new = [*directives[:at], (governing, sources + hashes), *directives[at + 1 :]]
    return "; ".join(" ".join([name, *srcs]) for name, srcs in new)


def allow_form_self(policy: str) -> str:
    """Let the banner's and placeholders' forms post to this site (/_consent)."""
    directives = _parse(policy)
    for i, (name, sources) in enumerate(directives):
        if name == "form-action":
            lower = [src.lower() for src in sources]
            if "'self'" in lower or "*" in lower:
                return policy
            kept = [src for src in sources if src.lower() != "'none'"]
            directives[i] = (name, [*kept, "'self'"])
            return "; ".join(" ".join([n, *srcs]) for n, srcs in directives)
    return policy
