"""The catalogue: third-party-web's entities through the mapping table, the
operator's switches, and a clear message for every mistake in the table."""

from __future__ import annotations

from pathlib import Path

import pytest

from proxy.consent.catalogue import (
    Catalogue,
    Entity,
    builtin_entities,
    builtin_path,
    load_catalogue,
    parse_catalogue,
    parse_entities,
)
from proxy.consent.rules import RuleError, load_rules

pytestmark = pytest.mark.xdist_group("catalogue")  # its module fixture, once

ENTITIES = (
    Entity("Google/Doubleclick Ads", "ad", ("doubleclick.net", "2mdn.net")),
    Entity("Google Analytics", "analytics", ("google-analytics.com",)),
    Entity("YouTube", "video", ("youtube.com", "ytimg.com")),
    Entity("Google Maps", "utility", ("maps.googleapis.com",)),
    Entity("Google APIs", "utility", ("googleapis.com",)),
    Entity("Amazon CloudFront", "utility", ("cloudfront.net",)),
    Entity("Parse.ly", "analytics", ("d1z2jf7jlzjs58.cloudfront.net", "parsely.com")),
    Entity("Intercom", "customer-success", ("intercom.io",)),
    Entity("Conversant", "analytics", ("mediaplex.com",)),
    Entity("Conversant Ad Server", "ad", ("mediaplex.com",)),
    Entity("Spotify", "content", ("spotify.com",)),
)
TABLE = """
[categories]
ad = "advertising"
analytics = "analytics"
video = "media"
customer-success = "preferences"

[entities]
"Google Maps" = "media"
"Spotify" = "media"

[[signature]]
text = "fbq("
entity = "Facebook Pixel"
category = "advertising"
"""


def small(text: str = TABLE, **kw: object) -> Catalogue:
    return parse_catalogue(text, "rules/catalogue.toml", entities=ENTITIES, engine="python", **kw)  # type: ignore[arg-type]


def category(catalogue: Catalogue, host: str, path: str = "/") -> str | None:
    entry = catalogue.lookup(host, path)
    return None if entry is None else entry.category


@pytest.fixture(scope="module")
def builtin() -> Catalogue:
    return load_catalogue()


def test_the_built_in_table_classifies_by_the_documented_defaults(builtin: Catalogue) -> None:
    assert builtin.enabled
    expected = {
        "securepubads.g.doubleclick.net": "advertising",  # ad
        "s0.2mdn.net": "advertising",
        "adservice.google.com": "advertising",
        "widgets.outbrain.com": "advertising",
        "cdn.taboola.com": "advertising",
        "static.criteo.net": "advertising",
        "www.google-analytics.com": "analytics",  # analytics
        "static.chartbeat.com": "analytics",
        "www.googletagmanager.com": "analytics",  # tag-manager
        "connect.facebook.net": "social",  # social
        "graph.facebook.com": "social",
        "secure.gravatar.com": "social",
        "widget.intercom.io": "preferences",  # customer-success
        "www.youtube.com": "media",  # video
        "i.ytimg.com": "media",
        "player.vimeo.com": "media",
        "maps.googleapis.com": "media",  # entities
        "open.spotify.com": "media",
        "w.soundcloud.com": "media",
        "www.instagram.com": "media",
        "www.tiktok.com": "media",
        "www.clarity.ms": "analytics",
        "mediaplex.com": "advertising",  # claimed twice: the stricter category
        "d1z2jf7jlzjs58.cloudfront.net": "analytics",  # more specific than the CDN
        "cloudfront.net": None,
        "fonts.googleapis.com": None,  # cdn
        "vjs.zencdn.net": None,  # carved out of Brightcove
        "www.example.org": None,
    }
    assert {host: category(builtin, host) for host in expected} == expected
    assert category(builtin, "www.google.com", "/maps/embed") == "media"
    assert category(builtin, "www.google.com", "/maps") == "media"
    assert category(builtin, "www.google.com", "/mapsearch") is None
    assert category(builtin, "www.google.com", "/search") is None
    assert builtin.categories == {"preferences", "analytics", "advertising", "social", "media"}
    assert "doubleclick.net" in builtin.literals and "cloudfront.net" not in builtin.literals
    assert len(builtin.literals) > 2000 and len(builtin.signatures) > 20


def test_every_entity_the_table_names_exists_in_the_data() -> None:
    names = {e.name for e in builtin_entities()}
    text = builtin_path().read_text(encoding="utf-8")
    section = text.split("[entities]")[1].split("[[")[0]
    named = [line.split("=")[0].strip().strip('"') for line in section.splitlines() if "=" in line]
    assert named and set(named) <= names


def test_operator_switches(builtin: Catalogue) -> None:
    allow = small(
        TABLE.replace("[categories]", 'allow = ["2mdn.net", "*.youtube.com"]\n[categories]')
    )
    assert category(allow, "s0.2mdn.net") is None and category(allow, "www.youtube.com") is None
    assert category(allow, "ad.doubleclick.net") == "advertising"
    first = small(first_party=["WWW.Example.ORG", "intercom.io"])
    assert category(first, "widget.intercom.io") is None
    off = small(
        TABLE.replace(
            "[categories]", 'disabled_categories = ["media", "advertising"]\n[categories]'
        )
    )
    assert category(off, "www.youtube.com") is None and category(off, "maps.googleapis.com") is None
    assert category(off, "ad.doubleclick.net") is None and off.signatures == ()
    assert category(off, "www.google-analytics.com") == "analytics"
    assert "youtube.com" not in off.literals and "google-analytics.com" in off.literals
    video_off = small(TABLE.replace('video = "media"', 'video = "off"'))
    assert category(video_off, "www.youtube.com") is None
    assert category(video_off, "maps.googleapis.com") == "media"  # by entity
    disabled = small("enabled = false\n" + TABLE)
    assert not disabled.enabled and disabled.literals == () and disabled.signatures == ()
    assert disabled.prefilter.scan(b"//ad.doubleclick.net/") == []
    added = small(
        TABLE
        + '[[add]]\ndomain = "ads.example.net"\nentity = "Example Ads"\ncategory = "advertising"\n'
        + '[[add]]\ndomain = "doubleclick.net/static"\nentity = "DC static"\ncategory = "off"\n'
    )
    assert added.lookup("x.ads.example.net") is not None
    assert added.lookup("x.ads.example.net").entity == "Example Ads"  # type: ignore[union-attr]
    assert category(added, "ad.doubleclick.net", "/static/a.js") is None
    assert category(added, "ad.doubleclick.net", "/ad") == "advertising"
    assert "ads.example.net" in added.literals


def test_unmapped_categories_are_off() -> None:
    catalogue = small()
    assert category(catalogue, "d3.cloudfront.net") is None
    assert (
        category(catalogue, "maps.googleapis.com") == "media"
    )  # more specific than googleapis.com
    assert category(catalogue, "mediaplex.com") == "advertising"
    assert catalogue.signature(len(catalogue.literals)) is not None
    assert catalogue.signature(0) is None


@pytest.mark.parametrize(
    ("text", "line", "key", "problem"),
    [
        ("colour = 1\n", 1, "colour", "unknown key; expected one of add, allow,"),
        ("enabled = 1\n", 1, "enabled", "1 is not true or false"),
        ('\nallow = ["cdn example"]\n', 2, "allow", "'cdn example' is not a host name like"),
        ("allow = 3\n", 1, "allow", "expected a list of non-empty strings"),
        (
            'disabled_categories = ["ads"]\n',
            1,
            "disabled_categories",
            "'ads' is not a category; expected some of preferences, analytics,",
        ),
        (
            '[categories]\nad = "advertising"\nads = "advertising"\n',
            3,
            "categories.ads",
            "not a third-party-web category; expected one of ad, analytics,",
        ),
        (
            '[categories]\n\nvideo = "video"\n',
            3,
            "categories.video",
            "'video' is not a category; expected one of preferences, analytics, advertising, social, media or 'off'",
        ),
        (
            '[entities]\n"Youtube" = "media"\n',
            2,
            "entities.Youtube",
            "not a third-party-web entity; did you mean 'YouTube'?",
        ),
        (
            '[entities]\n"Google Map" = "media"\n',
            2,
            'entities."Google Map"',
            "did you mean 'Google Maps'",
        ),
        (
            '[[add]]\ndomain = "ads.example.net"\nentity = "X"\ncategory = "advertising"\n'
            '[[add]]\ndomain = "https://ads.example.net/"\nentity = "X"\ncategory = "advertising"\n',
            6,
            "add[1].domain",
            "'https://ads.example.net/' is not a domain like ads.example.com",
        ),
        (
            '[[add]]\ndomain = "ads.example.net"\ncategory = "advertising"\n',
            1,
            "add[0].entity",
            "expected a non-empty string",
        ),
        (
            '[[add]]\ndomain = "a.example"\nentity = "X"\ncategory = "ads"\nwhy = 1\n',
            5,
            "add[0].why",
            "unknown key; expected one of category, domain, entity",
        ),
        (
            '[[add]]\ndomain = "a.example"\nentity = "X"\ncategory = "ads"\n',
            4,
            "add[0].category",
            "'ads' is not a category",
        ),
        (
            '[[signature]]\ntext = "ga("\nentity = "GA"\ncategory = "analytics"\n',
            2,
            "signature[0].text",
            "'ga(' is too short; expected at least 4",
        ),
        (
            '[[signature]]\ntext = "gtag("\nentity = "GA"\ncategory = "off"\n',
            4,
            "signature[0].category",
            "'off' is not a category",
        ),
        ("signature = 3\n", 1, "signature", "expected [[signature]] tables"),
        ("[categories\n", 1, "toml", "Expected ']'"),
    ],
)
def test_mistakes_name_file_line_key_and_what_was_expected(
    text: str, line: int, key: str, problem: str
) -> None:
    with pytest.raises(RuleError) as caught:
        parse_catalogue(text, "rules/catalogue.toml", engine="python")
    error = caught.value
    assert (error.file, error.line, error.key) == ("rules/catalogue.toml", line, key)
    assert problem in error.problem
    assert str(error).startswith(f"rules/catalogue.toml:{line}: {key}: ")


def test_a_missing_or_unreadable_table_is_a_rule_error(tmp_path: Path) -> None:
    with pytest.raises(RuleError, match=r"catalogue\.toml: file: cannot be read"):
        load_catalogue(tmp_path / "catalogue.toml")
    (tmp_path / "catalogue.toml").write_bytes(b"enabled = true\n\xff\n")
    with pytest.raises(RuleError, match="cannot be read as UTF-8"):
        load_catalogue(tmp_path / "catalogue.toml")


def test_a_bad_data_file_is_named() -> None:
    with pytest.raises(
        ValueError, match=r"^data\.json: entity #1 \(X\): expected a list of domains"
    ):
        parse_entities(
            '{"entities": [{"name": "A", "category": "ad", "domains": []}, {"name": "X", "category": "ad"}]}',
            "data.json",
        )
    with pytest.raises(ValueError, match=r"^data\.json: not JSON"):
        parse_entities("{", "data.json")


def test_the_table_sits_beside_the_rules_without_being_one(tmp_path: Path) -> None:
    rules = Path(__file__).resolve().parent.parent.parent / "rules"
    ruleset = load_rules(rules)
    assert "catalogue" not in {r.id for r in ruleset.rules} and ruleset.rules
    copy = tmp_path / "rules"
    copy.mkdir()
    for path in rules.glob("*.toml"):
        (copy / path.name).write_bytes(path.read_bytes())
    assert load_rules(copy).generation == ruleset.generation
    (copy / "catalogue.toml").write_text("enabled = false\n")
    assert load_rules(copy).generation != ruleset.generation  # a change is a new generation
