"""The decision log's one builder: page lines (rewritten and untouched alike), consent
records, and the counters that go with them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from multidict import CIMultiDict

from proxy.consent.model import ConsentPolicy, read_consent
from proxy.observe.decisions import (
    DecisionLog,
    Meter,
    PageDecision,
    decision_of,
    page_members,
    untouched_members,
)
from proxy.observe.logs import open_log
from proxy.observe.metrics import Metrics

CONSENT = read_consent(CIMultiDict({"Cookie": "consent=v=1&analytics=1"}), ConsentPolicy())


def lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.parametrize("size", [0, 1, 147_000])
def test_untouched_line_is_the_line_of_a_page_that_changed_nothing(size: int) -> None:
    """The hand-built members of most pages say what the general builder would."""
    same = PageDecision(CONSENT.json_members, "6f2a43663f2c", (), size, size, 0.0, True)
    assert untouched_members(CONSENT.json_members, "6f2a43663f2c", size) == page_members(same)


def test_page_line(tmp_path: Path) -> None:
    metrics = Metrics()
    log = DecisionLog(open_log("t", str(tmp_path / "d.log")), metrics)
    counts = {("google-analytics", "remove"): 2, ("facebook", "placeholder"): 1}
    meter = Meter()
    assert meter.feed(lambda chunk: chunk[:3], b"<p>x</p>") == b"<p>"
    assert meter.close(lambda: b"!") == b"!"
    decision = decision_of(CONSENT.json_members, 'rules"\n', counts, meter)
    log.page("GET", "/a%20b?email=x@y.example", 200, decision)
    log.untouched("HEAD", "/c", 200, untouched_members(CONSENT.json_members, "g", 10))
    log.untouched("GET", "/d", 200, "")  # nothing to log (the identity hook)
    log.close()
    page, untouched = lines(tmp_path / "d.log")
    assert list(page) == [
        *("time", "kind", "request_id", "method", "path", "status"),
        *("consent", "granted", "source", "rules", "actions"),
        *("bytes_in", "bytes_out", "rewrite_ms", "complete"),
    ]
    assert page["kind"] == "decision" and page["path"] == "/a%20b" and page["status"] == 200
    assert page["consent"] == dict(CONSENT.sources) and page["granted"] == sorted(CONSENT.granted)
    assert page["rules"] == 'rules"\n'  # escaped: input cannot forge a line
    assert page["actions"] == [
        {"rule": "facebook", "action": "placeholder", "count": 1},
        {"rule": "google-analytics", "action": "remove", "count": 2},
    ]
    assert (page["bytes_in"], page["bytes_out"], page["complete"]) == (8, 4, True)
    assert isinstance(page["rewrite_ms"], float) and isinstance(page["time"], float)
    assert list(untouched) == list(page) and untouched["actions"] == []
    assert (untouched["bytes_in"], untouched["bytes_out"], untouched["method"]) == (10, 10, "HEAD")
    assert metrics.pages == {"rewritten": 1, "untouched": 1}
    assert metrics.actions == {("facebook", "placeholder"): 1, ("google-analytics", "remove"): 2}


@pytest.mark.parametrize(
    ("granted", "denied", "kind"),
    [
        (["advertising", "analytics"], [], "accept_all"),
        ([], ["analytics", "social"], "reject_all"),
        (["analytics"], ["social"], "custom"),
    ],
)
def test_consent_record(tmp_path: Path, granted: list[str], denied: list[str], kind: str) -> None:
    metrics = Metrics()
    log = DecisionLog(open_log("t", str(tmp_path / "d.log")), metrics)
    log.consent_change(
        policy_version=3,
        granted=granted,
        denied=denied,
        before=None,
        rules="g1",
        expired_cookies=["_ga"],
        client="2001:db8:abcd:12::7",
    )
    log.close()
    (record,) = lines(tmp_path / "d.log")
    assert record == {
        "time": record["time"],
        "kind": "consent",
        "policy_version": 3,
        "granted": granted,
        "denied": denied,
        "before": None,
        "rules": "g1",
        "expired_cookies": ["_ga"],
        "client": "2001:db8:abcd::",  # a network, never the address
    }
    assert metrics.consents == {kind: 1}
