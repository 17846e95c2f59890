"""``consent-proxy inventory FILE...`` as a process: saved pages' third-party hosts,
the ones nothing covers with kinds and counts, the covered ones with the catalogue's
classification, as JSON or a table; exit 2 on a file or setting it cannot use."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.consent.test_inventory import HOST, OWN, PAGE, UNCOVERED
from tests.support import ROOT


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "proxy", "inventory", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        env={"PATH": "/usr/bin:/bin"},
    )


def test_saved_pages_as_json(tmp_path: Path) -> None:
    one, two = tmp_path / "one.html", tmp_path / "two.html"
    one.write_bytes(PAGE)
    two.write_bytes(b'<p>Two</p><img src="//Pixel.Unknown-Ads.com/q.gif">')
    done = run(str(one), str(two), "--json", "--first-party", f"{OWN},{HOST}")
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    # Offline there is no Host: the site's own hosts come from --first-party.
    found = {(u["host"], kind) for u in doc["uncovered"] for kind in u["kinds"]}
    assert found == UNCOVERED
    pixel = next(u for u in doc["uncovered"] if u["host"] == "pixel.unknown-ads.com")
    assert pixel == {"host": "pixel.unknown-ads.com", "count": 2, "kinds": {"img": 2}}
    assert doc["pages"] == 2 and doc["files"] == [str(one), str(two)]
    assert doc["first_party"] == [OWN, HOST]
    outbrain = next(c for c in doc["covered"] if c["host"] == "widgets.outbrain.com")
    assert (outbrain["entity"], outbrain["category"], outbrain["source"]) == (
        "Outbrain",
        "advertising",
        "ad",
    )


def test_saved_page_as_a_table(tmp_path: Path) -> None:
    page = tmp_path / "page.html"
    page.write_bytes(PAGE)
    done = run(str(page))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert any(line.split()[:3] == ["unknown-tracker.io", "1", "script"] for line in lines)
    assert any(line.split()[:2] == [HOST, "1"] for line in lines)  # no --first-party
    assert any(line.split()[:2] == ["www.google-analytics.com", "rule"] for line in lines)


def test_what_it_cannot_use_exits_2(tmp_path: Path) -> None:
    missing = run(str(tmp_path / "nope.html"))
    assert missing.returncode == 2
    assert "nope.html: No such file or directory" in missing.stderr
    page = tmp_path / "page.html"
    page.write_bytes(PAGE)
    bad = run(str(page), "--first-party", "a/b")
    assert bad.returncode == 2 and "--first-party" in bad.stderr
    assert run().returncode == 2  # no file: usage
