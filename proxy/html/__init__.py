"""The streaming, byte-preserving HTML rewriter: a library with no HTTP and no consent.

``Rewriter`` takes CSS-selector element handlers (with ``Hints``) and document
handlers, and turns chunks of a page into chunks of the new page.
"""

from proxy.html.rewriter import (
    DocumentHandlers,
    Element,
    Handler,
    HandlerSpec,
    Hints,
    RewriteLimitError,
    Rewriter,
)

__all__ = [
    "DocumentHandlers",
    "Element",
    "Handler",
    "HandlerSpec",
    "Hints",
    "RewriteLimitError",
    "Rewriter",
]
