"""The operator's layer over the built-in rules, the listing of the rule set in force,
and the overlap check: Layers directly, the commands as an operator runs them, and a
real proxy whose operator layer turns one vendor off."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from proxy.consent.layers import ADDED, BUILTIN, OVERRIDE, Layers, builtin_directory
from proxy.consent.overlaps import find_overlaps
from proxy.consent.reload import RulesState, reload_once
from proxy.consent.rules import RuleError, all_errors
from tests.support import ROOT
from tests.support.sockets import free_port

OWN = 'name = "Chat"\ncategory = "preferences"\n[[block]]\nselector = "script[src]"\nhosts = ["chat.example"]\n'
# Advertising's Facebook image, claimed by an analytics rule: the overlap check's case.
CLASHING = (
    'name = "Stats"\ncategory = "analytics"\n[[block]]\nselector = "img"\n'
    'hosts = ["www.facebook.com"]\n'
)


def cli(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``consent-proxy`` in ``cwd`` (not the checkout: no ./rules to lean on)."""
    return subprocess.run(
        [sys.executable, "-m", "proxy", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
    )


def by_id(layers: Layers) -> dict[str, object]:
    return {r.id: r for r in layers.load().rules}


def test_builtin_rules_alone() -> None:
    ruleset = Layers().load()
    assert {r.source for r in ruleset.rules} == {BUILTIN}
    vendors = [p for p in (ROOT / "rules").glob("*.toml") if p.name != "catalogue.toml"]
    assert len(ruleset.rules) == len(vendors)
    assert all(r.enabled for r in ruleset.rules)
    assert builtin_directory().is_dir()


def test_a_file_with_a_builtin_id_replaces_it(tmp_path: Path) -> None:
    (tmp_path / "facebook.toml").write_text(OWN.replace('"Chat"', '"Facebook, ours"'))
    rule = Layers(tmp_path).load().rules
    facebook = next(r for r in rule if r.id == "facebook")
    assert facebook.source == OVERRIDE and facebook.name == "Facebook, ours"
    assert [b.hosts for b in facebook.blocks] == [("chat.example",)]
    assert facebook.file == f"{tmp_path}/facebook.toml"


def test_a_switch_file_keeps_the_builtin_entries(tmp_path: Path) -> None:
    builtin = next(r for r in Layers().load().rules if r.id == "google-analytics")
    (tmp_path / "google-analytics.toml").write_text("# not on this site\nenabled = false\n")
    ruleset = Layers(tmp_path).load()
    ga = next(r for r in ruleset.rules if r.id == "google-analytics")
    assert ga.source == OVERRIDE and not ga.enabled
    assert ga.blocks == builtin.blocks and ga.cookies == builtin.cookies
    assert "google-analytics" not in {r.id for r in ruleset.active}
    (tmp_path / "google-analytics.toml").write_text('category = "advertising"\n')
    ga = next(r for r in Layers(tmp_path).load().rules if r.id == "google-analytics")
    assert ga.enabled and ga.category == "advertising" and ga.blocks == builtin.blocks


def test_a_switch_file_turns_a_rules_surrogates_off(tmp_path: Path) -> None:
    (shipped,) = (r for r in Layers().load().rules if r.id == "google-analytics")
    (tmp_path / "google-analytics.toml").write_text("surrogate = false\n")
    (rule,) = (r for r in Layers(tmp_path).load().rules if r.id == "google-analytics")
    assert shipped.surrogates == ("ga",) and rule.surrogates == ()
    assert rule.blocks == shipped.blocks and rule.enabled and rule.source == OVERRIDE


def test_a_switch_file_may_not_add_entries(tmp_path: Path) -> None:
    (tmp_path / "facebook.toml").write_text('enabled = true\n[[cookies]]\nnames = ["x"]\n')
    with pytest.raises(RuleError) as info:
        Layers(tmp_path).load()
    assert "switches the built-in rule 'facebook' may only set" in str(info.value)
    assert str(info.value).startswith(f"{tmp_path}/facebook.toml: cookies")


def test_a_new_name_adds_a_rule_and_a_lone_switch_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "chat.toml").write_text(OWN)
    assert next(r for r in Layers(tmp_path).load().rules if r.id == "chat").source == ADDED
    (tmp_path / "facebok.toml").write_text("enabled = false\n")  # a typo: no such built-in
    with pytest.raises(RuleError) as info:
        Layers(tmp_path).load()
    assert str(info.value).startswith(f"{tmp_path}/facebok.toml:1: enabled: no built-in rule")
    assert "must be named after a built-in rule" in str(info.value)


def test_disabled_rules_and_no_builtin_rules(tmp_path: Path) -> None:
    (tmp_path / "chat.toml").write_text(OWN)
    ruleset = Layers(tmp_path, disabled=frozenset({"facebook", "chat", "nope"})).load()
    off = {r.id for r in ruleset.rules if not r.enabled}
    assert off == {"facebook", "chat"}
    layers = Layers(tmp_path, disabled=frozenset({"nope"}))
    assert layers.notes(layers.load()) == [
        "disabled_rules names 'nope', which is no rule (see `consent-proxy rules`)"
    ]
    assert [r.id for r in Layers(tmp_path, builtin=False).load().rules] == ["chat"]
    with pytest.raises(RuleError, match="no rules directory is given"):
        Layers(None, builtin=False).load()


def test_generation_names_every_input(tmp_path: Path) -> None:
    plain = Layers(tmp_path).load().generation
    assert Layers(tmp_path).load().generation == plain  # same inputs, same generation
    variants = {
        plain,
        Layers(tmp_path, disabled=frozenset({"facebook"})).load().generation,
        Layers(tmp_path, builtin=False, disabled=frozenset()).build({"a.toml": OWN}).generation,
        Layers(tmp_path).build({"a.toml": OWN}).generation,
    }
    assert len(variants) == 4
    # An unknown id changes nothing, so it does not change the generation either.
    assert Layers(tmp_path, disabled=frozenset({"nope"})).load().generation == plain


def test_missing_directory_is_named_with_the_way_out(tmp_path: Path) -> None:
    result = cli("check", "--rules", "my-rules", cwd=tmp_path)
    assert result.returncode == 1
    assert f"{tmp_path}/my-rules: rules: the rules directory does not exist" in result.stderr
    assert "point --rules (CONSENT_PROXY_RULES, or rules in the --config file)" in result.stderr
    served = cli(
        "serve",
        "--upstream",
        "http://127.0.0.1:9",
        "--listen",
        f"127.0.0.1:{free_port()}",
        cwd=tmp_path,
        env={"CONSENT_PROXY_RULES": "elsewhere"},
    )
    assert served.returncode == 2 and f"{tmp_path}/elsewhere" in served.stderr


def test_reload_applies_to_the_operator_layer_and_keeps_the_last_good_set(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    state = RulesState.load(Layers(rules))
    first = state.current
    (rules / "facebook.toml").write_text("enabled = false\n")
    assert reload_once(state) is True
    assert not next(r for r in state.current.rules if r.id == "facebook").enabled
    good = state.current
    (rules / "facebook.toml").write_text("enabled = nope\n")
    assert reload_once(state) is False and state.current is good
    assert state.error and "facebook.toml" in state.error
    (rules / "facebook.toml").unlink()
    rules.rmdir()  # the directory itself goes away: fail closed, keep what serves
    assert reload_once(state) is False and state.current is good
    assert "does not exist" in (state.error or "")
    rules.mkdir()
    assert reload_once(state) is True and state.current.generation == first.generation


def test_rules_command_lists_the_effective_set(tmp_path: Path) -> None:
    (tmp_path / "chat.toml").write_text(OWN)
    (tmp_path / "facebook.toml").write_text("enabled = false\n")
    (tmp_path / "twitter.toml").write_text(OWN.replace('"Chat"', '"Tweets"'))
    args = ("--rules", str(tmp_path), "--disabled-rules", "linkedin")
    result = cli("rules", *args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = {line.split()[0]: line.split() for line in result.stdout.splitlines() if line}
    generation = Layers(tmp_path, disabled=frozenset({"linkedin"})).load().generation
    assert lines["generation"] == ["generation", generation]
    assert lines["chat"][-4:] == ["added", "yes", "1", "0"]
    assert "override" in lines["facebook"] and "(enabled = false)" in " ".join(lines["facebook"])
    assert "(disabled_rules)" in " ".join(lines["linkedin"]) and "built-in" in lines["linkedin"]
    doc = json.loads(cli("rules", *args, "--json", cwd=tmp_path).stdout)
    rows = {row["id"]: row for row in doc["rules"]}
    assert doc["generation"] == generation and doc["operator"] == str(tmp_path)
    assert rows["chat"] | {"file": ""} == {
        "id": "chat",
        "name": "Chat",
        "category": "preferences",
        "source": "added",
        "enabled": True,
        "off_by": None,
        "blocks": 1,
        "injects": 0,
        "file": "",
    }
    assert rows["facebook"]["off_by"] == "enabled = false" and rows["facebook"]["blocks"] == 5
    assert rows["twitter"]["source"] == "override" and rows["twitter"]["name"] == "Tweets"
    listed = cli("check", "--list", *args, cwd=tmp_path)
    assert listed.returncode == 0 and "chat" in listed.stdout and "examples passed" in listed.stdout


def test_the_catalogue_is_listed_as_a_rule_source_and_can_be_turned_off(tmp_path: Path) -> None:
    on = Layers(tmp_path).load()
    off = Layers(tmp_path, disabled=frozenset({"catalogue"})).load()  # once a KeyError
    assert on.catalogue is not None and off.catalogue is None
    assert off.generation != on.generation and all(r.enabled for r in off.rules)
    doc = json.loads(cli("rules", "--json", cwd=tmp_path).stdout)
    row = doc["catalogue"]
    assert row | {"file": ""} == {
        "id": "catalogue",
        "source": "built-in",
        "enabled": True,
        "off_by": None,
        "categories": ["advertising", "analytics", "media", "preferences", "social"],
        "domains": len(on.catalogue.literals),
        "signatures": len(on.catalogue.signatures),
        "file": "",
    }
    assert row["domains"] > 1000 and Path(row["file"]) == builtin_directory() / "catalogue.toml"
    listed = cli("check", "--list", "--disabled-rules", "catalogue", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    line = next(x for x in listed.stdout.splitlines() if x.startswith("catalogue:"))
    assert "built-in, disabled (disabled_rules)" in line and f"{row['domains']} domains" in line
    (tmp_path / "catalogue.toml").write_text("enabled = false\n")
    doc = json.loads(cli("rules", "--rules", str(tmp_path), "--json", cwd=tmp_path).stdout)
    assert doc["catalogue"]["source"] == "override"
    assert doc["catalogue"]["off_by"] == "enabled = false" and doc["catalogue"]["domains"] == 0


# -- overlaps -----------------------------------------------------------------------------


def test_builtin_rules_have_no_overlap_and_check_strict_passes(tmp_path: Path) -> None:
    assert find_overlaps(Layers().load()) == []
    result = cli("check", "--strict", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "0 warnings" in result.stdout


def test_check_reports_a_rule_that_brings_an_overlap(tmp_path: Path) -> None:
    (tmp_path / "stats.toml").write_text(CLASHING)
    result = cli("check", "--rules", str(tmp_path), cwd=tmp_path)
    assert result.returncode == 0  # a warning
    assert (
        "warning: facebook-pixel (advertising) and stats (analytics) both claim host "
        "www.facebook.com" in result.stderr
    )
    assert f"{tmp_path}/stats.toml block[0]" in result.stderr
    strict = cli("check", "--rules", str(tmp_path), "--strict", cwd=tmp_path)
    assert strict.returncode == 1
    off = cli(
        "check", "--rules", str(tmp_path), "--strict", "--disabled-rules", "stats", cwd=tmp_path
    )
    assert off.returncode == 0, off.stderr  # a disabled rule takes nothing


@pytest.mark.parametrize(
    ("first", "second", "overlap"),
    [
        # The same host for different elements: told apart.
        (("iframe", ["facebook.com"], []), ("img", ["facebook.com"], []), None),
        # A parent domain covers its subdomains.
        (("img", ["linkedin.com"], []), ("img", ["px.ads.linkedin.com"], []), "host"),
        # A test and its negation.
        (
            ("script[src*='oct.js']", ["twitter.com"], []),
            ("script:not([src*='oct.js'])", ["twitter.com"], []),
            None,
        ),
        # Different paths of the same URL attribute: the author's distinction holds...
        (
            ("script[src*='fbevents.js']", ["facebook.net"], []),
            ("script[src*='/sdk.js']", ["facebook.net"], []),
            None,
        ),
        # ... unless one path is inside the other.
        (
            ("script[src*='/gtag/js']", ["googletagmanager.com"], []),
            ("script[src*='/gtag/js?id=AW-']", ["googletagmanager.com"], []),
            "host",
        ),
        # Script text: the longer signature holds the shorter.
        (("script", [], ["gtag('config'"]), ("script", [], ["gtag('config', 'AW-"]), "text"),
        (("script", [], ["fbq("]), ("script", [], ["twq("]), None),
        # Hosts that differ keep text signatures apart.
        (("script", ["a.example"], ["x("]), ("script", ["b.example"], ["x("]), None),
    ],
)
def test_what_counts_as_an_overlap(
    tmp_path: Path,
    first: tuple[str, list[str], list[str]],
    second: tuple[str, list[str], list[str]],
    overlap: str | None,
) -> None:
    for name, category, (selector, hosts, contains) in (
        ("a", "analytics", first),
        ("b", "advertising", second),
    ):
        text = f'name = "{name}"\ncategory = "{category}"\n[[block]]\nselector = "{selector}"\n'
        text += f"hosts = {json.dumps(hosts)}\ncontains = {json.dumps(contains)}\n"
        (tmp_path / f"{name}.toml").write_text(text)
    found = find_overlaps(Layers(tmp_path, builtin=False).load())
    assert [o.kind for o in found] == ([overlap] if overlap else [])
    (tmp_path / "b.toml").write_text(
        (tmp_path / "b.toml").read_text().replace("advertising", "analytics")
    )
    assert find_overlaps(Layers(tmp_path, builtin=False).load()) == []  # one category


def test_errors_in_several_operator_files_are_all_reported(tmp_path: Path) -> None:
    (tmp_path / "a.toml").write_text('name = "A"\ncategory = "nope"\n')
    (tmp_path / "facebook.toml").write_text("enabled = 3\n")
    with pytest.raises(RuleError) as info:
        Layers(tmp_path).load()
    assert [Path(e.file).name for e in all_errors(info.value)] == ["a.toml", "facebook.toml"]


# -- a real proxy -------------------------------------------------------------------------

PAGE = (
    b"<html><head><script async src='https://www.google-analytics.com/analytics.js'></script>"
    b"<script>(function(i,s,o,g,r){i['GoogleAnalyticsObject']=r;})(window,document,'script',"
    b"'//www.google-analytics.com/analytics.js','ga');ga('create','UA-1-1','auto');</script>"
    b"<script async src='https://www.googletagmanager.com/gtm.js?id=GTM-1'></script>"
    b"<script async src='https://static.hotjar.com/c/hotjar-1.js?sv=6'></script>"
    b"</head><body><div class='fb-like'></div>"
    b"<img src='https://www.google-analytics.com/collect?v=1&t=pageview' width='1' height='1'>"
    b"<img src='https://www.facebook.com/tr?id=1&ev=PageView' width='1' height='1'>"
    b"<script>!function(f){f.fbq=function(){};}(window);fbq('init','1');</script>"
    b"<p>text</p></body></html>"
)


async def test_an_operator_layer_turns_one_vendor_off_in_a_running_proxy(
    aiohttp_server: Callable[..., Awaitable[TestServer]],
    make_proxy: Callable[..., Awaitable[TestServer]],
    tmp_path: Path,
) -> None:
    async def page(request: web.Request) -> web.Response:
        return web.Response(body=PAGE, content_type="text/html")

    app = web.Application()
    app.router.add_get("/", page)
    origin = await aiohttp_server(app)
    rules = tmp_path / "rules"
    rules.mkdir()
    (rules / "google-analytics.toml").write_text("enabled = false\n")
    proxy = await make_proxy(
        str(origin.make_url("/")), rewrite=None, ruleset=None, rules=str(rules)
    )
    refuse = "consent=v=1&analytics=0&advertising=0&social=0&preferences=0"
    async with aiohttp.ClientSession() as session:
        async with session.get(proxy.make_url("/"), headers={"Cookie": refuse}) as r:
            body = await r.read()
            actions = r.headers["X-Consent-Actions"]
    assert body.count(b"google-analytics.com/analytics.js") == 2  # GA's loader and snippet
    # ... and its counting pixel: no other rule (web-bugs once did) nor the catalogue
    # takes what the operator let through.
    assert b"google-analytics.com/collect" in body
    assert b"hotjar" not in body and "catalogue=remove" in actions  # the catalogue still holds
    assert b"googletagmanager.com" not in body and b"fbq('init'" not in body
    assert b"facebook.com/tr" not in body and b"fb-like" not in body
    assert b"<p>text</p>" in body
    assert "google-analytics" not in actions and "google-tag-manager=remove" in actions


def test_missing_builtin_rules_stop_the_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """An installation without its rule files fails closed instead of serving with
    nothing to block."""
    from proxy.consent import layers

    monkeypatch.setattr(layers, "builtin_files", dict)
    with pytest.raises(RuleError, match="no built-in rule files here"):
        Layers().load()
