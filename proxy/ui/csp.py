"""Make room in a page's Content-Security-Policy for what the proxy adds to the page.

A policy that restricts inline styles (or scripts) gets the SHA-256 hashes of what the
proxy injects added to the directive that governs ``<style>`` (``<script>``) elements;
``form-action`` lets the banner's and placeholders' forms post to /_consent. A
directive that relies on ``'unsafe-inline'`` (no nonce or hash beside it) is left
alone: adding a hash there would switch 'unsafe-inline' off for the page's own styles.
furniture.py says which styles and scripts a page gets.
An inline script the proxy adds may instead carry the nonce the page's policy already
allows (``script_nonce``), leaving the policy as it is.
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


def _governing(policy: str, kind: str) -> list[str] | None:
    """The sources of the directive that governs inline ``kind`` elements, if any."""
    directives = dict(reversed(_parse(policy)))  # the first of a repeated name counts
    name = next((d for d in _FALLBACK[kind] if d in directives), None)
    return None if name is None else directives[name]


def _nonces(sources: list[str]) -> list[str]:
    return [s[7:-1] for s in sources if s.lower().startswith("'nonce-") and s.endswith("'")]


def script_nonce(policies: Iterable[str]) -> str | None:
    """The first script nonce of ``policies`` (a response's CSP header values): the
    nonce an inline script the proxy adds can carry to be allowed by it."""
    for policy in policies:
        sources = _governing(policy, "script")
        if sources is not None:
            for nonce in _nonces(sources):
                if nonce:
                    return nonce
    return None


def allows_nonce(policy: str, nonce: str) -> bool:
    """Whether an inline script carrying ``nonce`` runs under ``policy`` because of
    it (or because nothing restricts inline scripts)."""
    sources = _governing(policy, "script")
    return sources is None or nonce in _nonces(sources)


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
