"""Regenerate the built-in third-party catalogue from third-party-web's entities.

    python tools/update_catalogue.py PATH/TO/entities.json [--license PATH/TO/LICENSE]

third-party-web (https://github.com/patrickhulce/third-party-web, MIT) classifies
third parties into entities with domains and a category. This keeps, for each entity,
its name, category and domains (``*.`` prefixes dropped: a domain always covers its
subdomains here), sorted for stable diffs, and writes them with the source's licence
to proxy/consent/data/. Which categories are blocked, and as what, is decided by
rules/catalogue.toml, not here.
"""

from __future__ import annotations

import argparse
import datetime
import json
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "proxy" / "consent" / "data" / "third-party-web.json"


def convert(entities: list[dict[str, object]]) -> list[dict[str, object]]:
    """The entities as the catalogue keeps them; raises ValueError naming a bad entry."""
    kept: list[dict[str, object]] = []
    for index, entity in enumerate(entities):
        name, category, domains = entity.get("name"), entity.get("category"), entity.get("domains")
        if not isinstance(name, str) or not isinstance(category, str):
            raise ValueError(f"entity #{index}: expected string 'name' and 'category'")
        if not isinstance(domains, list) or not all(isinstance(d, str) for d in domains):
            raise ValueError(f"entity #{index} ({name}): expected a list of domain strings")
        clean = sorted({d.strip().lower().removeprefix("*.") for d in domains if d.strip()})
        if clean:
            kept.append({"name": name, "category": category, "domains": clean})
    return sorted(kept, key=lambda e: (str(e["category"]), str(e["name"])))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("entities", type=Path, help="third-party-web's entities as JSON")
    parser.add_argument("--license", type=Path, help="its LICENSE file (default: beside it)")
    args = parser.parse_args(argv)
    try:
        entities = convert(json.loads(args.entities.read_text(encoding="utf-8")))
    except (OSError, ValueError) as exc:
        print(f"{args.entities}: {exc}", file=sys.stderr)
        return 2
    head = {
        "source": "third-party-web (https://github.com/patrickhulce/third-party-web), MIT",
        "generated": datetime.date.today().isoformat(),
    }
    # One entity per line: a newer list shows as a readable diff.
    lines = ",\n".join(json.dumps(e, ensure_ascii=False) for e in entities)
    text = json.dumps(head, ensure_ascii=False)[:-1] + ', "entities": [\n' + lines + "\n]}\n"
    OUT.write_text(text, encoding="utf-8")
    licence = args.license or args.entities.with_name("LICENSE")
    shutil.copyfile(licence, OUT.with_name("third-party-web.LICENSE"))
    domains = sum(len(domains) for e in entities if isinstance(domains := e["domains"], list))
    print(f"{OUT.relative_to(ROOT)}: {len(entities)} entities, {domains} domains")
    return 0


if __name__ == "__main__":
    sys.exit(main())
