"""Cuts remembered (cutmemo.py): once per script text and judge, and never one judge's
cut given for another's: each input of the judge (the plan's patterns, the catalogue,
the denied categories, the exempt entities) changes what is cut, and the memo tells
them apart, directly and through the page rewrite of two sites."""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest

from proxy.consent import cuts
from proxy.consent.catalogue import Catalogue, Entity, parse_catalogue
from proxy.consent.coverage import CatalogueGate
from proxy.consent.cutmemo import Book, CutMemo, TextJudge
from proxy.consent.cuts import PageCuts
from proxy.consent.enforce import page_for
from proxy.consent.model import ConsentPolicy, parse_consent_arg
from proxy.consent.plans import compile_plan
from proxy.consent.rules import load_rules
from proxy.ui.furniture import PageFurniture
from proxy.ui.templates import Templates
from tests.support import ROOT

ENTITIES = (
    Entity("Google Analytics", "analytics", ("google-analytics.com",)),
    Entity("Google/Doubleclick Ads", "ad", ("doubleclick.net",)),
)
TABLE = '[categories]\nanalytics = "analytics"\nad = "advertising"\n'


def catalogue(table: str = TABLE) -> Catalogue:
    return parse_catalogue(table, "catalogue.toml", entities=ENTITIES, engine="python")


CATALOGUE = catalogue()
# The same table again: another catalogue (another rules generation) that judges alike.
TWIN = catalogue()
# Advertising switched off in this one: doubleclick.net is not catalogued.
NO_ADS = catalogue('[categories]\nanalytics = "analytics"\nad = "off"\n')
SCRIPT = (
    "function site() {}\n"
    "load('https://www.google-analytics.com/analytics.js');\n"
    "load('https://ad.doubleclick.net/tag.js');\n"
    "site();\n"
)
BOTH = frozenset({"analytics", "advertising"})


@dataclass(frozen=True)
class Judge:
    """What a page's cuts are judged by: the plan's text patterns, the catalogue's judge."""

    patterns: tuple[re.Pattern[str], ...] = ()
    catalogue: Catalogue | None = CATALOGUE
    denied: frozenset[str] = BOTH
    exempt: frozenset[str] = frozenset()

    def page(self) -> PageCuts:
        cutting = PageCuts(self.patterns, "")
        if self.catalogue is not None:
            cutting.catalogue = TextJudge(self.catalogue, self.denied, self.exempt)
        return cutting


BASE = Judge()
# Each pair differs in one input only, and cuts SCRIPT otherwise.
PAIRS = {
    "patterns": (
        Judge(denied=frozenset({"analytics"})),
        Judge(patterns=(re.compile("doubleclick"),), denied=frozenset({"analytics"})),
    ),
    "pattern flags": (
        Judge(patterns=(re.compile("DOUBLECLICK"),), denied=frozenset({"analytics"})),
        Judge(patterns=(re.compile("DOUBLECLICK", re.I),), denied=frozenset({"analytics"})),
    ),
    "catalogue": (BASE, Judge(catalogue=NO_ADS)),
    "denied": (BASE, Judge(denied=frozenset({"analytics"}))),
    "exempt": (BASE, Judge(exempt=frozenset({"Google/Doubleclick Ads"}))),
    "no catalogue": (
        Judge(patterns=(re.compile("google-analytics"),)),
        Judge(patterns=(re.compile("google-analytics"),), catalogue=None),
    ),
}


def kept(done: cuts.Cut | None) -> str:
    assert done is not None
    return done.text


@pytest.mark.parametrize("first", [0, 1])
@pytest.mark.parametrize("changed", list(PAIRS))
def test_each_input_of_the_judge_gets_its_own_cut(changed: str, first: int) -> None:
    """Whichever of two judges that differ in one input cuts the script first, the
    other gets its own cut (as ``cut`` makes it afresh), not the one remembered."""
    pair = PAIRS[changed]
    a, b = pair[first], pair[1 - first]
    seen = a.page().cut(SCRIPT)
    other = b.page().cut(SCRIPT)
    assert other == cuts.cut(SCRIPT, b.page().blocked), changed
    assert kept(other) != kept(seen), changed
    assert a.page().cut(SCRIPT) is seen and b.page().cut(SCRIPT) is other  # remembered


def test_a_cut_is_made_once_per_text_and_equal_judge() -> None:
    """Another page of the same judge gets the cut made before; a catalogue is
    compared by identity (each rules generation has its own): one of the same table
    is another judge, and cuts alike."""
    done = BASE.page().cut(SCRIPT)
    assert kept(done) == "function site() {};\n;\n\nsite();\n"
    assert BASE.page().cut(SCRIPT) is done  # another page, the same judge
    twin = Judge(catalogue=TWIN).page().cut(SCRIPT)
    assert twin == done and twin is not done
    assert BASE.page().cut(SCRIPT + " ") is not done


def test_a_page_whose_catalogue_judge_changes_cuts_by_the_new_one() -> None:
    page = BASE.page()
    assert "doubleclick" not in kept(page.cut(SCRIPT))
    page.catalogue = TextJudge(CATALOGUE, frozenset({"analytics"}), frozenset())
    assert "doubleclick" in kept(page.cut(SCRIPT))


def test_the_memo_is_bounded_by_text_and_judges_and_keeps_books_apart() -> None:
    made: list[str] = []

    def make(text: str) -> str:
        made.append(text)
        return text.upper()

    memo: CutMemo[str] = CutMemo(80, judges=2)
    one: Book[str] = memo.book("one")
    assert one.get("a" * 10, make) == "A" * 10 and one.get("a" * 10, make) == "A" * 10
    assert memo.book("one") is one and made == ["a" * 10]
    memo.book("two").get("a" * 10, make)
    assert made == ["a" * 10] * 2  # another judge: made again
    memo.book("two").get("b" * 11, make), memo.book("two").get("b" * 11, make)
    assert made[-2:] == ["b" * 11] * 2  # over an eighth of the budget: not kept
    for i in range(8):  # 80 characters more: the memo starts over once
        one.get(str(i) * 10, make)
    one.get("a" * 10, make)
    assert made[-1] == "a" * 10
    memo.book("three")  # a third judge: everything forgotten
    assert memo.book("one") is not one
    one.get("c" * 10, make), one.get("c" * 10, make)
    assert made[-2:] == ["c" * 10] * 2  # a book given out before: still its judge's, unkept


RULES = load_rules(ROOT / "rules")
KRUX = (
    "(function() { var k = document.createElement('script');"
    " k.src = 'https://cdn.krxd.net/controltag/HrUwtkcl.js';"
    " document.head.appendChild(k); })();"
)
PAGE = (
    "<script>function site() {}\n"
    "load('https://www.google-analytics.com/analytics.js');\n"
    f"{KRUX}\nsite();</script>"
)


def rewrite(first_party: tuple[str, ...]) -> str:
    furniture = PageFurniture(Templates(), banner=False)
    parsed = parse_consent_arg("none", ConsentPolicy())
    plan = compile_plan(RULES, parsed, surrogates=furniture.surrogates)
    page = page_for(plan, parsed, "/", furniture, page_host="news.example", first_party=first_party)
    return (page.feed(PAGE.encode()) + page.close()).decode()


OWN = ("cdn.krxd.net",)  # a site whose own host is Krux's


@pytest.mark.parametrize("sites", [[(), OWN], [OWN, ()]], ids=["other-first", "own-first"])
def test_two_sites_through_one_proxy_get_their_own_cuts(sites: list[tuple[str, ...]]) -> None:
    """A site whose own host is Krux's keeps Krux's loader; another site loses it;
    whichever page the proxy rewrote first (the same script, the same plan)."""
    out = {site: rewrite(site) for site in sites}
    assert "krxd.net" not in out[()] and "function site() {}" in out[()]
    assert "krxd.net" in out[OWN], out
    for page in out.values():
        assert "google-analytics.com" not in page and "site();" in page


def gate(page_host: str) -> CatalogueGate:
    return CatalogueGate(CATALOGUE, BOTH, lambda el, held: True, {}, page_host=page_host)


def test_the_judge_is_a_value_of_the_plan_and_the_site() -> None:
    """Pages of one plan and site get equal judges (they share cuts); a site whose
    host is a catalogued entity's gets another."""
    assert gate("news.example").text_judge == gate("news.example").text_judge
    assert hash(gate("news.example").text_judge) == hash(gate("blog.example").text_judge)
    own = gate("www.google-analytics.com").text_judge
    assert own != gate("news.example").text_judge
    assert own.exempt == frozenset({"Google Analytics"})
