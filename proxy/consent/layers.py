"""The rule set in force: the built-in rules that ship in the package, and the
operator's layer over them (the way Privoxy keeps user.action apart from
default.action), so shipped files are never edited and later fixes still arrive.

- Built-in rules: ``proxy/consent/builtin/*.toml`` in an installed package, the
  repository's ``rules/`` in a checkout. They do not change while the proxy runs.
- The operator's directory (the ``rules`` setting): a file named like a built-in
  rule replaces it (source ``override``); a file without ``[[block]]`` or
  ``[[inject]]`` only switches it (``enabled = false``, a new name, category or
  description); any other name adds a rule (``added``).
- ``disabled`` ids are off whatever their files say (``catalogue`` turns the catalogue
  of third parties off); ``builtin = False`` leaves only the operator's rules.
- The catalogue's mapping table is ``catalogue.toml``: the operator's copy replaces the
  shipped one.

The generation digests every input (both layers' files and the disabled ids), so
processes given the same rules report the same generation.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass
from pathlib import Path

from proxy.consent.catalogue import Catalogue, compiled_catalogue
from proxy.consent.coverage import RULE_ID as CATALOGUE_ID
from proxy.consent.rules import (
    CATALOGUE_FILE,
    RuleError,
    RuleSet,
    generation_of,
    parse_rule,
    raise_all,
    read_dir,
)

BUILTIN, OVERRIDE, ADDED = "built-in", "override", "added"
HOW_TO_POINT = (
    "point --rules (CONSENT_PROXY_RULES, or rules in the --config file) at the directory "
    "that holds your rule files, or leave it unset to use the built-in rules alone"
)


def builtin_directory() -> Path:
    """Where the built-in rule files are: inside the installed package, or the
    repository's ``rules/`` when the package runs from a checkout (editable install)."""
    here = Path(__file__).resolve().parent
    packaged = here / "builtin"
    return packaged if packaged.is_dir() else here.parent.parent / "rules"


@functools.cache
def builtin_files() -> dict[str, str]:
    """The built-in rule files, name → text (read once: they ship with the code)."""
    return read_dir(builtin_directory())


@dataclass(frozen=True)
class Layers:
    """Where a rule set comes from (``Settings.rule_layers`` makes one)."""

    operator: Path | None = None  # the operator's directory; None: none
    builtin: bool = True
    disabled: frozenset[str] = frozenset()

    def load(self) -> RuleSet:
        """Read the operator's directory now and combine it with the built-in rules.
        RuleError for a missing directory, or naming every file that does not validate."""
        return self.build(self.read())

    def read(self) -> dict[str, str]:
        """The operator's rule files, name → text."""
        if self.operator is None:
            if not self.builtin:
                raise RuleError(
                    "rules",
                    None,
                    "builtin_rules",
                    "is off and no rules directory is given; "
                    "give --rules DIR with your rule files, or drop --no-builtin-rules",
                )
            return {}
        if not self.operator.is_dir():
            resolved = self.operator.resolve()
            what = "is not a directory" if resolved.exists() else "does not exist"
            raise RuleError(
                str(resolved), None, "rules", f"the rules directory {what}; {HOW_TO_POINT}"
            )
        return read_dir(self.operator)

    def build(self, files: dict[str, str]) -> RuleSet:
        """The effective rule set from the operator's files (name → text), in id order."""
        shipped = builtin_files() if self.builtin else {}
        origin = builtin_directory()
        if self.builtin and not shipped:  # never serve as if there were nothing to block
            raise RuleError(
                str(origin),
                None,
                "builtin_rules",
                "no built-in rule files here: the "
                "installation is incomplete (reinstall the package)",
            )
        base = {}
        errors: list[RuleError] = []
        for name, text in sorted(shipped.items()):
            if name == CATALOGUE_FILE:
                continue  # not a vendor rule: proxy.consent.catalogue reads it
            try:
                rule = parse_rule(name.removesuffix(".toml"), text, f"{origin}/{name}")
            except RuleError as exc:
                errors.append(exc)
                continue
            base[rule.id] = dataclasses.replace(rule, source=BUILTIN)
        rules = dict(base)
        for name, text in sorted(files.items()):
            if name == CATALOGUE_FILE:
                continue
            rule_id = name.removesuffix(".toml")
            found = base.get(rule_id)
            try:
                rule = parse_rule(rule_id, text, f"{self.operator}/{name}", base=found)
            except RuleError as exc:
                errors.append(exc)
                continue
            rules[rule_id] = dataclasses.replace(rule, source=OVERRIDE if found else ADDED)
        catalogue = None
        if CATALOGUE_ID not in self.disabled:
            try:
                catalogue = self._catalogue(shipped, files)
            except RuleError as exc:
                errors.append(exc)
        raise_all(errors)
        off = sorted(self.disabled & (rules.keys() | {CATALOGUE_ID}))
        for rule_id in off:
            if rule_id != CATALOGUE_ID:  # the catalogue is no rule: it is left out above
                rules[rule_id] = dataclasses.replace(rules[rule_id], enabled=False)
        generation = generation_of(shipped, files, extra="disabled:" + ",".join(off))
        return RuleSet(tuple(rules[k] for k in sorted(rules)), generation, catalogue)

    def _catalogue(self, shipped: dict[str, str], files: dict[str, str]) -> Catalogue | None:
        """The catalogue of third parties: the operator's ``catalogue.toml`` replaces
        the shipped mapping table; none without either."""
        if CATALOGUE_FILE in files:
            return compiled_catalogue(files[CATALOGUE_FILE], f"{self.operator}/{CATALOGUE_FILE}")
        if CATALOGUE_FILE in shipped:
            origin = builtin_directory() / CATALOGUE_FILE
            return compiled_catalogue(shipped[CATALOGUE_FILE], str(origin))
        return None

    def notes(self, ruleset: RuleSet) -> list[str]:
        """What the operator may not expect: disabled ids that name no rule."""
        known = {r.id for r in ruleset.rules} | {CATALOGUE_ID}
        return [
            f"disabled_rules names {rule_id!r}, which is no rule (see `consent-proxy rules`)"
            for rule_id in sorted(self.disabled - known)
        ]
