"""Rule files: validation messages, the built-in rules and their examples, reloads."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

from proxy.consent.examples import run_examples
from proxy.consent.layers import Layers
from proxy.consent.model import ConsentPolicy
from proxy.consent.reload import RulesState, reload_once, watch
from proxy.consent.rules import RuleError, all_errors, load_rules, parse_rule
from proxy.html.fragments import unbalanced
from tests.support import ROOT

GOOD = 'name = "X"\ncategory = "analytics"\n[[block]]\nselector = "script[src]"\nhosts = ["x.example"]\n'


@pytest.mark.parametrize(
    ("text", "line", "needles"),
    [
        ('name = "X"\ncategory = "analytics"\ncolour = "red"\n', 3, ["colour", "unknown key"]),
        (
            'name = "X"\ncategory = "marketing"\n[[block]]\nselector = "a"\n',
            2,
            [
                "category",
                "'marketing'",
                "expected one of preferences, analytics, advertising, social",
            ],
        ),
        (
            'name = "X"\ncategory = "social"\n[[block]]\nselector = "a"\naction = "hide"\n',
            5,
            ["block[0].action", "'hide'", "expected one of remove, placeholder"],
        ),
        (
            'name = "X"\ncategory = "social"\n[[block]]\nselector = "a"\n[[block]]\nselector = "a + b"\n',
            6,
            ["block[1].selector", "'a + b'", "supported"],
        ),
        (
            'name = "X"\ncategory = "social"\n[[inject]]\nwhere = "head-end"\nhtml = "<div><p>x</div>"\n',
            5,
            ["inject[0].html", "does not close"],
        ),
        (
            'name = "X"\ncategory = "social"\n[[inject]]\nwhere = "footer"\nhtml = "<b>x</b>"\n',
            4,
            ["inject[0].where", "expected one of head-start, head-end, body-end"],
        ),
        (
            'name = "X\\nY"\ncategory = "social"\n[[block]]\nselector = "a"\n',
            1,
            ["name", "CR, LF or NUL"],
        ),
        (
            'name = "X"\ncategory = "social"\n[[block]]\nselector = "a"\nhosts = ["bad host"]\n',
            5,
            ["block[0].hosts", "not a host name"],
        ),
        (
            'name = "X"\ncategory = "social"\n[[block]]\nselector = "div"\ncontains = ["x"]\n',
            5,
            ["block[0].contains", "raw-text"],
        ),
        (
            'name = "X"\ncategory = "social"\nenabled = "no"\n[[block]]\nselector = "a"\n',
            3,
            ["enabled", "not true or false"],
        ),
        ('name = "X"\ncategory = "social"\n', None, ["at least one [[block]] or [[inject]]"]),
        (
            'name = "X"\ncategory = "social"\n[[block]]\nselector = "a"\n[[cookies]]\nnames = ["a b"]\n',
            6,
            ["cookies[0].names", "not a cookie name"],
        ),
        ('name = "X\ncategory', 1, ["toml"]),
        (
            'name = "X"\ncategory = "social"\nsurrogate = "gaa"\n[[block]]\nselector = "a"\n',
            3,
            ["surrogate", "'gaa' is not a surrogate", "expected one of adsbygoogle, fbq"],
        ),
        (
            'name = "X"\ncategory = "social"\nsurrogate = ["ga", 1]\n[[block]]\nselector = "a"\n',
            3,
            ["surrogate", "not a surrogate name, a list of them, [] or false"],
        ),
        (
            'name = "X"\ncategory = "social"\nsurrogate = true\n[[block]]\nselector = "a"\n',
            3,
            ["surrogate", "True is not a surrogate name"],
        ),
        (
            'name = "X"\ncategory = "social"\nsurrogate = ["ga", "ga"]\n[[block]]\nselector = "a"\n',
            3,
            ["surrogate", "names a surrogate twice"],
        ),
        (
            'name = "X"\ncategory = "social"\nsurrogate = "ga"\n[[inject]]\nwhere = "body-end"\nhtml = "<b>x</b>"\n',
            3,
            ["surrogate", "this rule has none"],
        ),
    ],
)
def test_validation_names_file_line_key_and_expectation(
    text: str, line: int | None, needles: list[str]
) -> None:
    with pytest.raises(RuleError) as info:
        parse_rule("x", text, "rules/x.toml")
    message = str(info.value)
    assert message.startswith(f"rules/x.toml:{line}:" if line else "rules/x.toml")
    for needle in needles:
        assert needle in message


def test_good_rule_parses() -> None:
    rule = parse_rule("x", GOOD, "x.toml")
    assert (rule.id, rule.category, rule.enabled, rule.blocks[0].action) == (
        "x",
        "analytics",
        True,
        "remove",
    )


@pytest.mark.parametrize(
    ("value", "names"),
    [
        ("", ()),
        ('surrogate = "ga"\n', ("ga",)),
        ('surrogate = ["gpt", "adsbygoogle"]\n', ("gpt", "adsbygoogle")),
        ("surrogate = []\n", ()),
        ("surrogate = false\n", ()),
    ],
)
def test_surrogate_names_one_many_or_none(value: str, names: tuple[str, ...]) -> None:
    assert parse_rule("x", value + GOOD, "x.toml").surrogates == names


def test_builtin_rules_name_their_surrogates() -> None:
    named = {r.id: r.surrogates for r in load_rules(ROOT / "rules").rules if r.surrogates}
    assert named == {
        "google-analytics": ("ga",),
        "google-tag-manager": ("gtm",),
        "google-ads": ("gpt", "adsbygoogle"),
        "facebook-pixel": ("fbq",),
        "facebook": ("fbsdk",),
        "twitter": ("twttr",),
        "linkedin-insight": ("linkedin",),
    }


@pytest.mark.parametrize(
    ("html", "ok"),
    [
        ("<script>a</script>", True),
        ("<div><br><img></div>", True),
        ("<div>", False),
        ("<b><i></b></i>", False),
        ("<!-- x", False),
        ("<script>", False),
        ("<p/>", True),
    ],
)
def test_inject_html_must_balance(html: str, ok: bool) -> None:
    assert (unbalanced(html) is None) is ok


def test_builtin_rules_validate_and_every_example_passes() -> None:
    ruleset = load_rules(ROOT / "rules")
    ids = {r.id for r in ruleset.rules}
    assert {
        "google-analytics",
        "google-tag-manager",
        "google-ads",
        "facebook",
        "facebook-pixel",
        "twitter",
        "twitter-ads",
        "linkedin",
        "linkedin-insight",
        "web-bugs",
    } <= ids
    outcomes = run_examples(ruleset, ConsentPolicy())
    assert all(r.examples for r in ruleset.rules)
    assert [o.message() for o in outcomes if not o.passed] == []
    social = [b.action for r in ruleset.rules if r.category == "social" for b in r.blocks]
    assert "placeholder" in social


def test_a_failing_example_is_reported_with_its_line(tmp_path: Path) -> None:
    (tmp_path / "x.toml").write_text(
        GOOD + "\n[[example]]\nhtml = \"<script src='https://x.example/a.js'></script>\"\n"
        'consent = "none"\nexpected = "something else"\n'
    )
    result = subprocess.run(
        [sys.executable, "-m", "proxy", "check", "--rules", str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert result.returncode == 1
    assert f"{tmp_path}/x.toml:7: example: expected 'something else'" in result.stderr
    assert "but got ''" in result.stderr


def test_check_command_on_builtin_rules() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "proxy", "check"], capture_output=True, text=True, cwd=ROOT
    )
    assert result.returncode == 0, result.stderr
    assert "examples passed" in result.stdout
    assert "note" not in result.stderr  # the built-in rules say everything the new way


def test_url_hosts_is_the_name_and_hosts_still_works(tmp_path: Path) -> None:
    """``url_hosts`` (the host of the element's URL) is read as ``hosts`` always was;
    a file that says ``hosts`` still works, and check names the new name."""
    new = parse_rule("x", GOOD.replace("hosts =", "url_hosts ="), "x.toml")
    old = parse_rule("x", GOOD, "x.toml")
    assert new.blocks == old.blocks and new.blocks[0].hosts == ("x.example",)
    assert new.notes == () and old.notes == (
        "x.toml:5: block[0].hosts: still read; its new name is url_hosts",
    )
    with pytest.raises(RuleError, match=r"block\[0\].hosts: give url_hosts only"):
        parse_rule("x", GOOD.replace("hosts =", 'url_hosts = ["y.example"]\nhosts ='), "x.toml")
    with pytest.raises(RuleError, match=r"block\[0\].url_hosts: 'bad host' is not a host name"):
        parse_rule("x", GOOD.replace('hosts = ["x.example"]', 'url_hosts = ["bad host"]'), "x.toml")
    (tmp_path / "x.toml").write_text(GOOD)
    result = subprocess.run(
        [sys.executable, "-m", "proxy", "check", "--rules", str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    assert (
        f"consent-proxy: note: {tmp_path}/x.toml:5: block[0].hosts: still read; its new name is url_hosts"
        in result.stderr
    )


def test_all_problems_are_reported_at_once(tmp_path: Path) -> None:
    (tmp_path / "a.toml").write_text('name = "A"\ncategory = "nope"\n')
    (tmp_path / "b.toml").write_text("name = ")
    (tmp_path / "c.toml").write_text(GOOD)
    with pytest.raises(RuleError) as info:
        load_rules(tmp_path)
    assert [Path(e.file).name for e in all_errors(info.value)] == ["a.toml", "b.toml"]


def test_editor_temp_files_are_ignored(tmp_path: Path) -> None:
    (tmp_path / "a.toml").write_text(GOOD)
    for junk in (".#a.toml", "a.toml~", ".a.toml.swp"):
        (tmp_path / junk).write_text("not toml")
    assert [r.id for r in load_rules(tmp_path).rules] == ["a"]


def test_generation_names_contents(tmp_path: Path) -> None:
    (tmp_path / "a.toml").write_text(GOOD)
    first = load_rules(tmp_path).generation
    assert load_rules(tmp_path).generation == first
    (tmp_path / "a.toml").write_text(GOOD.replace("x.example", "y.example"))
    assert load_rules(tmp_path).generation != first


def test_reload_keeps_last_good_set(tmp_path: Path) -> None:
    (tmp_path / "a.toml").write_text(GOOD)
    state = RulesState(load_rules(tmp_path), Layers(tmp_path, builtin=False))
    good = state.current
    (tmp_path / "a.toml").write_text('name = "A"\ncategory = "nope"\n')
    assert reload_once(state) is False
    assert state.current is good and state.error and "a.toml:2: category" in state.error
    (tmp_path / "b.toml").write_text(GOOD)
    (tmp_path / "a.toml").write_text(GOOD.replace('"X"', '"Z"'))
    assert reload_once(state) is True
    assert state.error is None and sorted(r.id for r in state.current.rules) == ["a", "b"]


async def test_watcher_picks_up_renames_slow_writes_and_removals(tmp_path: Path) -> None:
    (tmp_path / "a.toml").write_text(GOOD)
    state = RulesState.load(Layers(tmp_path, builtin=False))
    task = asyncio.create_task(watch(state, interval=0.1))
    try:

        async def wait_for(check: object, timeout: float = 2.0) -> None:
            deadline = asyncio.get_running_loop().time() + timeout
            while not check():  # type: ignore[operator]
                assert asyncio.get_running_loop().time() < deadline, "not reloaded within 2 s"
                await asyncio.sleep(0.05)

        tmp = tmp_path / ".b.toml.tmp"
        tmp.write_text(GOOD)
        os.replace(tmp, tmp_path / "b.toml")  # an editor's rename into place
        await wait_for(lambda: {r.id for r in state.current.rules} == {"a", "b"})
        with open(tmp_path / "c.toml", "w") as f:  # a slow in-place write
            for line in GOOD.splitlines(keepends=True):
                f.write(line)
                f.flush()
                await asyncio.sleep(0.04)
        await wait_for(lambda: {r.id for r in state.current.rules} == {"a", "b", "c"})
        assert state.error is None
        (tmp_path / "a.toml").unlink()
        await wait_for(lambda: {r.id for r in state.current.rules} == {"b", "c"})
        (tmp_path / "c.toml").write_text(
            GOOD.replace("enabled", "x").replace('name = "X"', 'name = "X"\nenabled = false')
        )
        await wait_for(lambda: not next(r for r in state.current.rules if r.id == "c").enabled)
    finally:
        task.cancel()


def test_builtin_rule_files_say_where_hosts_are_looked_for() -> None:
    """Every built-in rule with hosts says which attributes are read (the ones the
    enforcement reads) and names the elements in each of its host selectors."""
    from proxy.consent.matching import URL_ATTRIBUTES
    from proxy.html.selectors import parse_selector

    readme = (ROOT / "rules" / "README.md").read_text()
    stated = "`src`, `href`, `data-src`, `data` (`<object>`) and every\ncandidate URL of `srcset`"
    assert stated in readme and URL_ATTRIBUTES == ("src", "href", "data-src", "data", "srcset")
    for rule in load_rules(ROOT / "rules").rules:
        if not any(b.hosts for b in rule.blocks):
            continue
        text = Path(rule.file).read_text()
        assert "src, href, data-src, data and srcset" in text, rule.file
        for block in rule.blocks:
            if block.hosts:
                tags = [cx.subject.tag for cx in parse_selector(block.selector)]
                assert None not in tags, f"{rule.file}: {block.selector!r} names no element"
