"""The session's one browsing run over the corpus (tests/support/browsing.py)."""

from __future__ import annotations

import asyncio

import pytest

from tests.support.browsing import Run, browse
from tests.support.corpus import pages
from tests.support.leak_pages import SYNTHETIC
from tests.ui.test_browser import RULES, chromium


@pytest.fixture(scope="session")
def browsed(tmp_path_factory: pytest.TempPathFactory) -> Run:
    """Every corpus page with trackers (and the synthetic leak pages) loaded by the
    direct, refusing and accepting visitors: several minutes, so once per session."""
    names = [p.name for p in pages("with-trackers")] + list(SYNTHETIC)
    logs = tmp_path_factory.mktemp("browsing")
    return asyncio.run(browse(names, RULES, logs, chromium, SYNTHETIC))
