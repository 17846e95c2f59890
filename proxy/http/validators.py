"""Caching headers: private responses, and validators for rewritten bodies (each
consent variant and rules generation gets its own weak ETag, so no cache and no 304
can serve one variant for another)."""

from __future__ import annotations

from multidict import CIMultiDict


def add_vary(headers: CIMultiDict[str], *names: str) -> None:
    """Merge ``names`` into one Vary header (nothing to add to ``Vary: *``)."""
    if "Vary" not in headers:
        headers.add("Vary", ", ".join(names))
        return
    vary = [
        v.strip() for value in headers.getall("Vary", []) for v in value.split(",") if v.strip()
    ]
    lower = {v.lower() for v in vary}
    if "*" in lower:
        return
    missing = [n for n in names if n.lower() not in lower]
    if missing:
        headers.popall("Vary", None)
        headers["Vary"] = ", ".join([*vary, *missing])


def make_private(headers: CIMultiDict[str]) -> None:
    """No shared cache may keep this response: ``private`` replaces ``public`` and
    ``s-maxage``; ``no-store`` and the rest stay."""
    if "Cache-Control" not in headers:
        headers.add("Cache-Control", "private")
        return
    directives = [
        d.strip() for v in headers.getall("Cache-Control", []) for d in v.split(",") if d.strip()
    ]
    names = {d.split("=")[0].strip().lower() for d in directives}
    if "no-store" in names and not names & {"public", "s-maxage"}:
        return
    kept = [
        d
        for d in directives
        if d.split("=")[0].strip().lower() not in ("public", "s-maxage", "private")
    ]
    headers.popall("Cache-Control", None)
    headers["Cache-Control"] = ", ".join(["private", *kept])


def _split_tags(header: str) -> list[str]:
    tags: list[str] = []
    current: list[str] = []
    quoted = False
    for ch in header:
        if ch == '"':
            quoted = not quoted
        if ch == "," and not quoted:
            tags.append("".join(current).strip())
            current = []
        else:
            current.append(ch)
    tags.append("".join(current).strip())
    return [t for t in tags if t]


def variant_etag(etag: str, variant: str) -> str:
    """The weak ETag of a rewritten body: the origin's tag plus the variant."""
    opaque = etag[2:] if etag.startswith("W/") else etag
    opaque = opaque.strip('"').replace("~", "_")
    return f'W/"{opaque}~{variant}"'


def upstream_if_none_match(header: str, variant: str) -> tuple[str | None, bool]:
    """Translate a client's If-None-Match for the origin.

    Tags from this variant go back to the origin's tag; tags from another variant are
    dropped (their page must be rendered again); other tags pass as they are. Returns
    the header to send (None: send none) and whether a variant tag was translated.
    """
    if header.strip() == "*":
        return header, False
    kept: list[str] = []
    translated = False
    for tag in _split_tags(header):
        body = tag[2:] if tag.startswith("W/") else tag
        opaque = body.strip('"')
        if "~" in opaque:
            origin, _, tag_variant = opaque.rpartition("~")
            if tag_variant == variant:
                kept.append(f'W/"{origin}"')
                translated = True
            continue
        kept.append(tag)
    return (", ".join(kept) if kept else None), translated


def translate_if_none_match(headers: CIMultiDict[str], variant: str) -> bool:
    """Rewrite the If-None-Match of request ``headers`` for the origin, in place (see
    ``upstream_if_none_match``). If-Modified-Since goes too when a variant tag was
    translated (the tag decides) or no tag is left (the page must be rendered again:
    a date would get a 304 for another variant). True when a variant tag was
    translated: a 304 then names this variant again."""
    inm = headers.get("If-None-Match")
    if inm is None:
        return False
    value, translated = upstream_if_none_match(inm, variant)
    headers.popall("If-None-Match")
    if value is not None:
        headers["If-None-Match"] = value
    if translated or value is None:
        headers.popall("If-Modified-Since", None)
    return translated
