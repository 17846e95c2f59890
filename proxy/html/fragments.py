"""Whether a fragment of HTML closes every element it opens (inserted markup must, or
it would swallow the page after it)."""

from __future__ import annotations

import re

from proxy.html import lexer, spec


def unbalanced(html: str) -> str | None:
    """Why a fragment of HTML would not close what it opens, or None if it does."""
    stack: list[str] = []
    data = html.encode("utf-8", "surrogateescape")
    pos = 0
    while True:
        lt = data.find(b"<", pos)
        if lt < 0:
            break
        if data.startswith(b"<!--", lt):
            end = data.find(b"-->", lt + 4)
            if end < 0:
                return "an HTML comment is not closed"
            pos = end + 3
            continue
        m = lexer.TAG.match(data, lt)
        if m is None:
            if re.match(rb"</?[A-Za-z]", data[lt:]):
                return "a tag is not closed with '>'"
            pos = lt + 1
            continue
        name = m.group(2).lower().decode("latin-1")
        pos = m.end()
        if m.group(1):
            if not stack or stack[-1] != name:
                return f"</{name}> does not close the element opened last"
            stack.pop()
        elif name in spec.RAWTEXT:
            close = lexer.RAW_END[name].search(data, pos)
            if close is None:
                return f"<{name}> is not closed"
            pos = close.start()
            stack.append(name)
        elif name not in spec.VOID and not m.group(0).endswith(b"/>"):
            stack.append(name)
    return f"<{stack[-1]}> is not closed" if stack else None
