"""Where a key sits in a TOML text, for messages: TOML parsers give no positions, and
a rule file's errors name the line (see rules.py)."""

from __future__ import annotations

import re


class KeyLines:
    """Finds the line of a key in a TOML text, for messages (TOML gives no positions)."""

    def __init__(self, text: str) -> None:
        self.lines = text.splitlines()

    def of(self, key: str, table: str | None = None, index: int = 0) -> int | None:
        start = 0
        if table is not None:
            heads = [
                i for i, ln in enumerate(self.lines) if re.match(rf"\s*\[\[\s*{table}\s*\]\]", ln)
            ]
            if index >= len(heads):
                return None
            start = heads[index]
            if key == f"[[{table}]]":
                return start + 1
        for i in range(start, len(self.lines)):
            if i > start and table is not None and re.match(r"\s*\[", self.lines[i]):
                break
            if table is None and re.match(r"\s*\[", self.lines[i]):
                break
            if re.match(rf"\s*{re.escape(key)}\s*=", self.lines[i]):
                return i + 1
        return start + 1 if table is not None else None
