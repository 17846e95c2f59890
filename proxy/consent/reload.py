"""Hot reload of the operator's rules directory: poll, wait until writes settle, swap
atomically.

The whole directory is read as one snapshot and combined with the built-in rules
(``proxy.consent.layers``) into a new ``RuleSet``; the running set is replaced in one
assignment, so a request sees the old set or the new one, never a mix. An invalid
snapshot, a directory that is gone, or a set that fails the state's ``verify`` (the
self-test) is refused with a log line and the last good set keeps serving
(``RulesState.error`` says why, for the health endpoint).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from proxy.consent.layers import Layers
from proxy.consent.rules import IGNORED, RuleError, RuleSet, all_errors

log = logging.getLogger("consent_proxy.rules")
Signature = tuple[tuple[str, str], ...]


class Refused(Exception):
    """A rule set that loads but must not serve (``str()`` says why): what a ``Verify``
    raises (the self-test's SelfTestError)."""


Verify = Callable[[RuleSet], None]


@dataclass
class RulesState:
    """The rule set in force, and what happened at the last reload."""

    current: RuleSet
    layers: Layers
    error: str | None = None
    loaded_at: float = field(default_factory=time.time)
    signature: Signature | None = None  # of the directory when ``current`` was read
    verify: Verify | None = None  # run on every set before it serves
    # Then this: the work its first requests would otherwise wait for (compiling).
    prepare: Verify | None = None

    @property
    def directory(self) -> Path | None:
        """The operator's directory, the one that is watched (None: nothing to watch)."""
        return self.layers.operator

    @classmethod
    def load(cls, layers: Layers, verify: Verify | None = None) -> RulesState:
        """Read the rules now (RuleError if invalid) and ``verify`` the set (its error
        if that fails). The signature is taken first, so a change made while reading is
        seen by the watcher."""
        before = signature(layers.operator)
        ruleset = layers.load()
        for note in layers.notes(ruleset):
            log.warning("%s", note)
        if verify is not None:
            verify(ruleset)
        return cls(ruleset, layers, signature=before, verify=verify)


def signature(directory: Path | None) -> Signature:
    """Each rule file's name and a digest of its bytes, for the files ``read_dir``
    reads. Content, not sizes and modification times: a release copied with ``cp -p``
    or ``rsync -a``, or swapped in through a ``..data`` symlink (Kubernetes), can keep
    both and still differ. A rules directory is a few dozen KB: reading it costs about
    what a stat of each file did (the built-in rules: 12 files, 18 KB, ~1.5 ms a poll
    on a busy 2-core machine, either way)."""
    entries = []
    if directory is None:
        return ()
    try:
        paths = sorted(directory.glob("*.toml"))
    except OSError:
        return ()
    for path in paths:
        # is_file first: never open a FIFO or a device that happens to be named *.toml
        if IGNORED.search(path.name) or not path.is_file():
            continue
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            continue  # renamed away between listing and reading
        except OSError as exc:  # the reload will report it; until then, a change
            entries.append((path.name, f"unreadable: {exc.strerror}"))
            continue
        entries.append((path.name, hashlib.blake2b(data, digest_size=16).hexdigest()))
    return tuple(entries)


def reload_once(state: RulesState) -> bool:
    """Load the directory now; True when a new rule set took over (verified, then
    prepared, before it did)."""
    try:
        ruleset = state.layers.load()
    except RuleError as exc:
        state.error = "; ".join(str(e) for e in all_errors(exc))
        log.warning(
            "rules not reloaded, keeping generation %s: %s", state.current.generation, state.error
        )
        return False
    except OSError as exc:
        state.error = f"{state.directory}: {exc.strerror}"
        log.warning("rules not reloaded: %s", state.error)
        return False
    if ruleset.generation == state.current.generation:
        state.error = None
        return False
    if state.verify is not None:
        try:
            state.verify(ruleset)
        except Refused as exc:
            state.error = str(exc)
            log.warning(
                "rules not reloaded, keeping generation %s: %s", state.current.generation, exc
            )
            return False
    if state.prepare is not None:
        state.prepare(ruleset)
    state.error = None
    state.current = ruleset
    state.loaded_at = time.time()
    log.info("rules reloaded: generation %s, %d rules", ruleset.generation, len(ruleset.rules))
    return True


async def watch(state: RulesState, interval: float = 0.5) -> None:
    """Poll forever (return at once when there is no operator directory: the built-in
    rules do not change). A change is loaded once the directory looks the same on two
    polls in a row, so a file being written slowly is read when it is complete."""
    if state.directory is None:
        return
    if state.signature is None:
        state.signature = signature(state.directory)
    pending: Signature | None = None
    while True:
        await asyncio.sleep(interval)
        current = signature(state.directory)
        if current == state.signature:
            pending = None
            continue
        if current != pending:
            pending = current  # changed since the last poll: wait for it to settle
            continue
        state.signature = current
        pending = None
        try:
            # In a thread: parsing, checking and compiling a rule set takes seconds of
            # CPU, and requests are served meanwhile (under the set in force, swapped
            # in one assignment when the new one is ready).
            await asyncio.to_thread(reload_once, state)
        except Exception:  # the watcher must outlive any surprise in one reload
            log.exception("rules reload failed")
