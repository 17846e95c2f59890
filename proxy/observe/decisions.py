"""The decision log: one JSON line per HTML response and one per consent change.

Every decision-log record is built here, and only here:

- ``kind: "decision"``, what the proxy did to a page: the request (method, path
  without query, status), the visitor's consent (per category, and where it came
  from), the rules generation, what each rule did, bytes in and out, the rewrite's
  time and whether the page went through whole. Most pages pass untouched: their
  line is built by hand from a text made once per consent and rules generation
  (``untouched_members``), with the same members a rewritten page's line has.
- ``kind: "consent"``, a visitor's choice, the proof of consent: what was granted and
  denied, what it replaced, the policy version and rules generation, the vendor
  cookies expired, the client's network (never its address).

The consent arrives as JSON members already (``Consent.json_members``): this layer
imports nothing of the others. The counters operators read at /_consent/metrics are
counted as the lines are written.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache
from typing import NamedTuple

from proxy.observe.logs import (
    JsonLines,
    json_string,
    log_path,
    log_time,
    request_id,
    truncate_ip,
)
from proxy.observe.metrics import Metrics


class PageDecision(NamedTuple):
    """What the decision log says of one HTML page, the request aside. A tuple: one is
    made per rewritten page (a frozen dataclass's constructor costs several times
    more)."""

    consent: str  # the visitor's consent record, as JSON members without braces
    rules: str  # the rules generation
    actions: tuple[tuple[str, str, int], ...]  # (rule id, action, elements), sorted
    bytes_in: int
    bytes_out: int
    seconds: float  # spent rewriting
    complete: bool  # the page went through to its end
    cache: str | None = None  # what the rewrite cache did: hit, miss or bypass


def decision_of(
    consent: str, rules: str, counts: Mapping[tuple[str, str], int], meter: Meter
) -> PageDecision:
    """The decision of a page whose rewrite ``meter`` measured."""
    actions = tuple((rule, action, n) for (rule, action), n in sorted(counts.items()))
    return PageDecision(
        consent, rules, actions, meter.bytes_in, meter.bytes_out, meter.seconds, meter.complete
    )


class Meter:
    """Bytes in and out of one page's rewrite, the time it took, whether it ended."""

    __slots__ = ("bytes_in", "bytes_out", "complete", "seconds")

    def __init__(self) -> None:
        self.bytes_in = 0
        self.bytes_out = 0
        self.seconds = 0.0
        self.complete = False

    def feed(self, rewrite: Callable[[bytes], bytes], chunk: bytes) -> bytes:
        start = time.perf_counter()
        out = rewrite(chunk)
        self.seconds += time.perf_counter() - start
        self.bytes_in += len(chunk)
        self.bytes_out += len(out)
        return out

    def close(self, close: Callable[[], bytes]) -> bytes:
        start = time.perf_counter()
        out = close()
        self.seconds += time.perf_counter() - start
        self.bytes_out += len(out)
        self.complete = True
        return out


def page_members(decision: PageDecision) -> str:
    """A page's members of its decision line (no braces)."""
    actions = ",".join(
        f'{{"rule":{json_string(rule)},"action":{json_string(action)},"count":{n}}}'
        for rule, action, n in decision.actions
    )
    return (
        f'{decision.consent},"rules":{json_string(decision.rules)},"actions":[{actions}],'
        f'"bytes_in":{decision.bytes_in},"bytes_out":{decision.bytes_out},'
        f'"rewrite_ms":{round(decision.seconds * 1000, 3)!r},'
        f'"complete":{"true" if decision.complete else "false"}'
        + ("" if decision.cache is None else f',"cache":{json_string(decision.cache)}')
    )


def untouched_members(consent: str, rules: str, size: int) -> str:
    """``page_members`` of a page of ``size`` bytes that passed through untouched."""
    head = _untouched_head(consent, rules)
    return f'{head}{size},"bytes_out":{size},"rewrite_ms":0.0,"complete":true'


@lru_cache(maxsize=1024)  # per consent and rules generation: the same few all day
def _untouched_head(consent: str, rules: str) -> str:
    return f'{consent},"rules":{json_string(rules)},"actions":[],"bytes_in":'


class DecisionLog:
    """Writes decision-log lines to ``lines`` and counts them in ``metrics``."""

    def __init__(self, lines: JsonLines, metrics: Metrics) -> None:
        self.lines = lines
        self.metrics = metrics

    def page(self, method: str, raw_path: str, status: int, decision: PageDecision) -> None:
        """The line of a page the proxy rewrote (or would have: a HEAD, a failure)."""
        metrics = self.metrics
        metrics.pages["rewritten"] += 1
        for rule, action, n in decision.actions:
            metrics.actions[(rule, action)] += n
        self._write(method, raw_path, status, page_members(decision))

    def untouched(self, method: str, raw_path: str, status: int, members: str) -> None:
        """The line of a page that passed untouched (``untouched_members``; empty:
        nothing to log)."""
        if members:
            self.metrics.pages["untouched"] += 1
            self._write(method, raw_path, status, members)

    def _write(self, method: str, raw_path: str, status: int, members: str) -> None:
        self.lines.write_line(
            f'{{"time":{log_time()},"kind":"decision",'
            f'"request_id":"{request_id()}","method":{json_string(method)},'
            f'"path":{json_string(log_path(raw_path))},"status":{status},'
            f"{members}}}"
        )

    def consent_change(
        self,
        *,
        policy_version: int,
        granted: Sequence[str],
        denied: Sequence[str],
        before: Mapping[str, bool] | None,
        rules: str,
        expired_cookies: Sequence[str],
        client: str | None,
    ) -> None:
        """The proof of a visitor's choice: ``granted`` and ``denied`` categories,
        ``before`` (what they had, None when undecided), the vendor cookies expired;
        ``client`` is the visitor's address, of which only the network is written."""
        kind = "accept_all" if not denied else "reject_all" if not granted else "custom"
        self.metrics.consents[kind] += 1
        self.lines.write(
            {
                "time": round(time.time(), 3),
                "kind": "consent",
                "policy_version": policy_version,
                "granted": sorted(granted),
                "denied": sorted(denied),
                "before": dict(before) if before is not None else None,
                "rules": rules,
                "expired_cookies": list(expired_cookies),
                "client": truncate_ip(client),
            }
        )

    def close(self) -> None:
        self.lines.close()
