"""The facts of the HTML standard the rewriter needs, as tables (WHATWG HTML).

Tokenizer facts: which elements hold raw text. Tree-construction facts: which
elements are void, which belong in <head>, which start tags and end tags end
elements whose end tag may be left out (a <p> closed by a <div>, an <li> by the next
<li>). Data only, and one predicate.
"""

from __future__ import annotations

# Elements whose content is raw text: no tags inside until their own end tag.
RAWTEXT = frozenset(
    {"script", "style", "textarea", "title", "xmp", "iframe", "noembed", "noframes"}
)
# Elements with no content and no end tag.
VOID = frozenset(
    {
        "area",
        "base",
        "basefont",
        "bgsound",
        "br",
        "col",
        "embed",
        "frame",
        "hr",
        "img",
        "image",
        "input",
        "keygen",
        "link",
        "meta",
        "param",
        "source",
        "track",
        "wbr",
    }
)
# Start tags that stay in <head> (any other one ends it).
HEAD_CONTENT = frozenset(
    {
        "base",
        "basefont",
        "bgsound",
        "link",
        "meta",
        "title",
        "noscript",
        "noframes",
        "style",
        "script",
        "template",
    }
)
# Start tags that end an open <p>.
P_CLOSERS = frozenset(
    {
        "address",
        "article",
        "aside",
        "blockquote",
        "center",
        "details",
        "dialog",
        "dir",
        "div",
        "dl",
        "fieldset",
        "figcaption",
        "figure",
        "footer",
        "form",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "header",
        "hgroup",
        "hr",
        "li",
        "listing",
        "main",
        "menu",
        "nav",
        "ol",
        "p",
        "plaintext",
        "pre",
        "search",
        "section",
        "summary",
        "table",
        "ul",
        "dd",
        "dt",
        "xmp",
    }
)
_CLOSED_BY: dict[str, frozenset[str]] = {
    "p": P_CLOSERS,
    "li": frozenset({"li"}),
    "dt": frozenset({"dt", "dd"}),
    "dd": frozenset({"dt", "dd"}),
    "option": frozenset({"option", "optgroup"}),
    "optgroup": frozenset({"optgroup"}),
    "tr": frozenset({"tr", "tbody", "thead", "tfoot"}),
    "td": frozenset({"td", "th", "tr", "tbody", "thead", "tfoot"}),
    "th": frozenset({"td", "th", "tr", "tbody", "thead", "tfoot"}),
}
# End tags that close elements with implied ends (p, li, ...) that are still open.
SCOPE_CLOSERS = P_CLOSERS | frozenset(
    {"body", "html", "button", "select", "tbody", "thead", "tfoot", "tr", "td", "th", "caption"}
)
# Elements whose end is implied by an end tag of an element that encloses them.
IMPLIED_END = frozenset(_CLOSED_BY) | {"rb", "rp", "rt", "rtc", "tbody", "thead", "tfoot"}


def closes(open_name: str, start_name: str) -> bool:
    """Whether a start tag ``start_name`` implicitly ends an open ``open_name``."""
    closers = _CLOSED_BY.get(open_name)
    return closers is not None and start_name in closers


# Raw-text elements whose content ends at the first matching end tag (script's end
# is found through the script data escape states instead: lexer.find_script_end).
PLAIN_RAWTEXT = frozenset({"style", "textarea", "title", "xmp", "iframe", "noembed", "noframes"})


# Foreign content (SVG, MathML): there a self-closing tag is a whole element, so
# ``<svg><script href="x"/>`` has no text and no end tag, while in HTML the "/" is
# ignored and ``<script/>`` starts raw text. Inside an HTML integration point of
# foreign content (svg's foreignObject, an annotation-xml holding HTML), tags are
# HTML again. The rewriter follows these start and end tags (the skip patterns
# stop at them); the text integration points (svg desc, MathML mi, mo, ...) are not
# followed: a self-closing raw-text tag right inside one is read as empty.
FOREIGN = frozenset({"svg", "math"})
HTML_POINTS = frozenset({"foreignobject", "annotation-xml"})
FOREIGN_STOPS = FOREIGN | HTML_POINTS
