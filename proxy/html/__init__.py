"""The streaming, byte-preserving HTML rewriter: a library with no HTTP and no consent.

``Rewriter`` takes CSS-selector element handlers (with ``Hints``) and the HTML to
insert at the document's edges (``DocumentInserts``; ``DocumentHandlers`` is its old,
deprecated name), and a ``Gate`` for elements a byte scan finds, and turns chunks of a
page into chunks of the new page. What the selectors and hints compile to
(``Program``) can be compiled ahead (``compile_program``), and shared by every rewriter
with the same selectors and hints.
"""

from proxy.html.element import Element, Handler
from proxy.html.gate import Gate
from proxy.html.program import (
    HandlerSpec,
    Hints,
    Program,
    compilations,
    compile_program,
    program_keys,
)
from proxy.html.rewriter import DocumentHandlers, DocumentInserts, RewriteLimitError, Rewriter

__all__ = [
    "DocumentHandlers",
    "DocumentInserts",
    "Element",
    "Gate",
    "Handler",
    "HandlerSpec",
    "Hints",
    "Program",
    "RewriteLimitError",
    "Rewriter",
    "compilations",
    "compile_program",
    "program_keys",
]
