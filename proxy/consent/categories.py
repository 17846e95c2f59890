"""The consent categories, in one place every part of the consent layer imports.

``necessary`` is always granted; the others are what a visitor chooses. Sec-GPC (and
the US opt-out signals the readers understand) speak of ``GPC_DENIES``.
"""

from __future__ import annotations

CATEGORIES = ("necessary", "preferences", "analytics", "advertising", "social", "media")
OPTIONAL = CATEGORIES[1:]
GPC_DENIES = ("advertising", "social")
