"""Consent read from other banners' cookies (``consent_sources``): the order, GPC, the
memory's lifetime for choices that expire, the settings, and every reader end to end
with curl through the real proxy in front of the demo site."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from urllib.parse import quote

import pytest
from aiohttp.test_utils import TestServer
from multidict import CIMultiDict

from proxy.consent.model import ConsentPolicy, ConsentReader, read_consent
from proxy.consent.readers.config import readers_config
from proxy.consent.rules import load_rules
from proxy.demo import origin_app
from proxy.settings import SettingsError, load_settings
from tests.consent.test_readers import tc_string

ROOT = Path(__file__).resolve().parent.parent.parent
RULES = load_rules(ROOT / "rules")
MakeProxy = Callable[..., Awaitable[TestServer]]
Server = Callable[..., Awaitable[TestServer]]
OWN = "consent=v=1&preferences=0&analytics=0&advertising=1&social=0"
ONETRUST_ANALYTICS = "OptanonConsent=groups=C0001%3A1%2CC0002%3A1%2CC0003%3A0%2CC0004%3A0"


def policy(*sources: str) -> ConsentPolicy:
    return ConsentPolicy(sources=sources, readers=readers_config())


def consent_of(cookie: str, pol: ConsentPolicy, gpc: bool = False) -> tuple[set[str], str]:
    headers = {"Cookie": cookie, **({"Sec-GPC": "1"} if gpc else {})}
    consent = read_consent(headers, pol)
    return set(consent.granted) - {"necessary"}, consent.source


def test_the_first_source_with_a_decision_wins() -> None:
    both = f"{OWN}; {ONETRUST_ANALYTICS}"
    assert consent_of(both, policy("onetrust", "own")) == ({"analytics"}, "onetrust")
    assert consent_of(both, policy("own", "onetrust")) == ({"advertising"}, "cookie")
    # Unreadable, or absent: the next source is asked; none: undecided.
    assert consent_of(f"{OWN}; OptanonConsent=groups=C2:x", policy("onetrust", "own")) == (
        {"advertising"},
        "cookie",
    )
    assert consent_of(OWN, policy("onetrust")) == (set(), "default")
    # The default sources read the own cookie only, as before.
    assert consent_of(both, ConsentPolicy()) == ({"advertising"}, "cookie")


def test_each_category_says_where_it_came_from() -> None:
    consent = read_consent({"Cookie": "usprivacy=1YYN"}, policy("usprivacy", "own"))
    assert consent.decided and consent.source == "usprivacy"
    assert dict(consent.sources) == {
        "necessary": "always",
        "preferences": "default",  # an opt-out signal speaks of two categories only
        "analytics": "default",
        "advertising": "usprivacy",
        "social": "usprivacy",
        "media": "default",
    }
    assert consent.header() == (
        "analytics=0; advertising=0; social=0; preferences=0; media=0; source=usprivacy"
    )
    assert consent.record()["source"] == "usprivacy"
    # What each source asked said is kept for /_consent (never a cookie's value).
    after = read_consent({"Cookie": "usprivacy=2"}, policy("usprivacy", "own"))
    assert [source for source, _ in after.notes] == ["usprivacy"]
    assert "expected version 1" in dict(after.notes)["usprivacy"]


@pytest.mark.parametrize(
    ("cookie", "sources", "granted", "why"),
    [
        # A source that explicitly grants advertising and social keeps them under GPC.
        ("usprivacy=1YNN", ("usprivacy",), {"advertising", "social"}, "usprivacy"),
        (
            "OptanonConsent=groups=C0002:0,C0004:1,C0005:1",
            ("onetrust",),
            {"advertising", "social"},
            "onetrust",
        ),
        # One that refuses them, or does not speak of them: GPC denies.
        ("usprivacy=1YYN", ("usprivacy",), set(), "usprivacy"),
        ("OptanonConsent=groups=C0002:1", ("onetrust",), {"analytics"}, "onetrust"),
        ("", ("onetrust", "own"), set(), "gpc"),
    ],
)
def test_gpc_denies_unless_the_winning_source_granted(
    cookie: str, sources: tuple[str, ...], granted: set[str], why: str
) -> None:
    assert consent_of(cookie, policy(*sources), gpc=True) == (granted, why)


def test_gpc_and_the_default_decide_what_an_opt_out_signal_leaves_open() -> None:
    opt_out = ConsentPolicy(
        default_granted=frozenset({"analytics", "advertising", "social"}),
        sources=("usprivacy",),
    )
    assert consent_of("usprivacy=1YYN", opt_out) == ({"analytics"}, "usprivacy")
    consent = read_consent({"Cookie": "usprivacy=1---", "Sec-GPC": "1"}, opt_out)
    assert consent.source == "gpc" and set(consent.granted) == {"necessary", "analytics"}


def test_a_remembered_tcf_decision_outlives_its_expiry_by_a_minute_at_most() -> None:
    start = time.time()
    # Valid for 30 more seconds: LastUpdated 395 days ago, less 30 s.
    value = tc_string(updated=start - 395 * 86400 + 30, consents=[1, 8])
    pol = policy("tcf", "own")
    clock = [start]
    reader = ConsentReader(pol, clock=lambda: clock[0])
    headers = CIMultiDict({"Cookie": f"euconsent-v2={value}"})
    expiry = start + 30
    seen = []
    for offset in (0, 20, 29, 31, 45, 59, 61, 90, 200):
        clock[0] = start + offset
        consent = reader(headers)
        seen.append((offset, consent.source))
        if consent.decided:
            assert clock[0] <= expiry + ConsentReader.LIFETIME
    assert ("tcf" in dict(seen).values()) and dict(seen)[200] == "default"
    assert dict(seen)[0] == "tcf"
    # A fresh reader at any of those times answers as read_consent does at that time.
    for offset in (29, 31):
        fresh = read_consent(headers, pol, now=start + offset)
        assert fresh.source == ("tcf" if offset < 30 else "default")
    # The clock stepping back forgets too.
    clock[0] = start - 3600
    assert reader(headers).source == "tcf"


def test_settings_name_sources_and_mappings() -> None:
    settings = load_settings(
        {"consent_sources": "tcf,onetrust,own"},
        env={
            "CONSENT_PROXY_ONETRUST_GROUPS": "C0002=analytics,C0004=advertising,C0004=social",
            "CONSENT_PROXY_TCF_VENDORS": "advertising=755",
        },
    )
    pol = settings.consent_policy
    assert pol.sources == ("tcf", "onetrust", "own") and settings.own_banner
    assert dict(pol.readers.onetrust.groups) == {
        "C0002": ("analytics",),
        "C0004": ("advertising", "social"),
    }
    assert dict(pol.readers.tcf.vendors) == {"advertising": frozenset({755})}
    default = load_settings(env={}).consent_policy
    assert default.sources == ("own",) and "C0003" in default.readers.onetrust.groups
    for name, value, message in [
        ("consent_sources", "own,tcf,own", "'own' is listed twice"),
        ("consent_sources", "own,iab", "consent source 'iab': expected one of own, tcf"),
        ("consent_sources", "", "expected at least one"),
        ("onetrust_groups", "C0002", "'C0002': expected key=category"),
        ("onetrust_groups", "C 2=analytics", "is not a OneTrust group id"),
        ("klaro_services", "ga=stats", "'stats' is not a category"),
        ("tcf_vendors", "advertising=google", "'google' is not a vendor id"),
        ("tcf_vendors", "ads=755", "'ads' is not a category"),
    ]:
        with pytest.raises(SettingsError) as err:
            load_settings({name: value}, env={})
        flag = "--" + name.replace("_", "-")
        assert str(err.value).startswith(f"{flag}: {name} = {value!r} is not valid"), err.value
        assert message in str(err.value)


def test_settings_file_takes_lists_and_tables(tmp_path: Path) -> None:
    config = tmp_path / "proxy.toml"
    config.write_text(
        'consent_sources = ["klaro", "own"]\n'
        'klaro_services = { google-analytics = "analytics", youtube = ["social"] }\n'
        "tcf_vendors = { advertising = [755, 1] }\n"
    )
    settings = load_settings(config=str(config), env={})
    assert settings.consent_sources == ("klaro", "own")
    assert dict(settings.consent_policy.readers.klaro.services) == {
        "google-analytics": ("analytics",),
        "youtube": ("social",),
    }
    assert settings.tcf_vendors == {"advertising": frozenset({755, 1})}
    config.write_text('klaro_services = { ga = "stats" }\n')
    with pytest.raises(SettingsError, match=rf"{config}: klaro_services = 'ga=stats'"):
        load_settings(config=str(config), env={})


def test_tcf_purposes_give_social_and_media_a_rule(tmp_path: Path) -> None:
    """TCF has no purpose for social or media: denied unless the operator names the
    purposes that grant them; a named category's rule replaces its default."""
    from proxy.consent.readers.tcf import PurposeRule

    tc = {"Cookie": "euconsent-v2=" + tc_string(updated=NOW - 86400, consents=[1, 8, 10])}
    plain = load_settings({"consent_sources": "tcf"}, env={}).consent_policy
    assert read_consent(tc, plain, now=NOW).granted == {"necessary", "analytics"}
    settings = load_settings(
        {"consent_sources": "tcf", "tcf_purposes": "media=1+10,analytics=1+7|9"}, env={}
    )
    purposes = settings.consent_policy.readers.tcf.purposes
    assert purposes["media"] == PurposeRule(frozenset({1, 10}))
    assert purposes["analytics"] == PurposeRule(frozenset({1}), (frozenset({7, 9}),))
    assert purposes["advertising"] == plain.readers.tcf.purposes["advertising"]  # kept
    consent = read_consent(tc, settings.consent_policy, now=NOW)
    assert consent.granted == {"necessary", "media"}  # 8 no longer grants analytics
    assert consent.decided and consent.source == "tcf"
    config = tmp_path / "proxy.toml"
    config.write_text('tcf_purposes = { media = "1+10" }\n')
    from_file = load_settings(config=str(config), env={}).tcf_purposes
    assert from_file == {"media": PurposeRule(frozenset({1, 10}))}
    for value, message in [
        ("media=1+25", "'25' is not a TCF purpose (1-24"),
        ("media=1+|10", "'|10' is not a TCF purpose"),
        ("media=", "expected key=category"),
        ("video=1", "'video' is not a category"),
        ("media=1,media=10", "'media' is given a rule twice"),
    ]:
        with pytest.raises(SettingsError) as err:
            load_settings({"tcf_purposes": value}, env={})
        assert str(err.value).startswith(f"--tcf-purposes: tcf_purposes = {value!r} is not valid")
        assert message in str(err.value), err.value


def test_readme_says_what_each_reader_does_with_media() -> None:
    """Media (embeds) is newer than most banners' categories: each reader's section
    says whether it can grant it."""
    import re

    from proxy.consent.readers.sources import READERS

    readme = (ROOT / "README.md").read_text()
    part = readme.split("## Behind an existing consent banner", 1)[1].split("\n## ", 1)[0]
    sections = dict(re.findall(r"\n### [^\n]*\(`(\w+)`\)\n(.*?)(?=\n### |\Z)", part, re.S))
    assert set(sections) == set(READERS)
    for name, text in sections.items():
        assert "media" in text.lower().replace("social media", ""), name


# -- end to end: curl through the real proxy ----------------------------------------------

NOW = time.time()
TCF_VENDORS = "advertising=755"
GA, ADS, SOCIAL = "google-analytics.com/analytics.js", "ad.doubleclick.net", "connect.facebook.net"


def cookiebot(**members: str) -> str:
    fields = {
        "stamp": "'-3nxXHtbB5mDNgrH3sNzsPrS+7ZSEwTSh7ZvGSXlE/Ap9FtnbjLnmQ=='",
        "necessary": "true",
        "preferences": "false",
        "statistics": "true",
        "marketing": "false",
        "method": "'explicit'",
        "ver": "1",
        "utc": "1709550000000",
        "region": "'de'",
        **members,
    }
    return quote("{" + ",".join(f"{k}:{v}" for k, v in fields.items()) + "}", safe="")


# reader -> (settings, a cookie that grants analytics only, what X-Consent says,
#            hostile or malformed values of the reader's cookie)
READERS: dict[str, tuple[dict[str, str], str, str, list[str]]] = {
    "tcf": (
        {"tcf_vendors": TCF_VENDORS},
        # Every purpose advertising needs, but not Google's (GVL 755) vendor consent.
        "euconsent-v2="
        + tc_string(updated=NOW - 86400, consents=[1, 2, 3, 4, 7, 8, 9], vendors=[1, 2]),
        "analytics=1; advertising=0; social=0; preferences=0",
        [
            "euconsent-v2=COrVd1pOrVd1pACABCENAHCAAAAAAAAAAAiQAAAAAAAA",  # TCF v2.0: too old
            "euconsent-v2=" + tc_string(updated=NOW - 86400, consents=[1, 8])[:12],
            "euconsent-v2=" + "A" * 5000,
            "euconsent-v2=%%%",
            "euconsent-v2=" + tc_string(updated=NOW + 30 * 86400, consents=[1, 8]),
        ],
    ),
    "gpp": (
        {},
        "__gpp=DBABLA~CVVVkkkkkpFY.YA; __gpp_sid=7",  # US national: opted out of all
        "analytics=0; advertising=0; social=0; preferences=0",
        ["__gpp=DBABLA~", "__gpp=DBACOeA~~1YNN", "__gpp=~~~", "__gpp=" + "B" * 5000],
    ),
    "usprivacy": (
        {},
        "usprivacy=1YYN",
        "analytics=0; advertising=0; social=0; preferences=0",
        ["usprivacy=2YNN", "usprivacy=1YNNN", "us_privacy=%FF%FE", "usprivacy="],
    ),
    "onetrust": (
        {},
        "OptanonConsent=isGpcEnabled=0&datestamp=Mon+Mar+04+2024+12%3A00%3A00+GMT%2B0100"
        "&version=202401.1.0&interactionCount=1&landingPath=NotLandingPage"
        "&groups=C0001%3A1%2CC0002%3A1%2CC0003%3A0%2CC0004%3A0%2CC0005%3A0"
        "&AwaitingReconsent=false; OptanonAlertBoxClosed=2024-03-04T11:00:00.000Z",
        "analytics=1; advertising=0; social=0; preferences=0",
        [
            "OptanonConsent=groups=C0002:1,C0002:0",
            "OptanonConsent=groups=C0002%3A2",
            "OptanonConsent=groups=%E0%A4%A",
            "OptanonConsent=" + "groups=C1:1&" * 400,
        ],
    ),
    "cookiebot": (
        {},
        "CookieConsent=" + cookiebot(),
        "analytics=1; advertising=0; social=0; preferences=0",
        [
            "CookieConsent=" + cookiebot(statistics="'yes'"),
            "CookieConsent=%7Bnecessary%3Atrue",
            "CookieConsent=" + quote("{a:{b:1}}", safe=""),
            "CookieConsent=-1",  # outside Cookiebot's regions: no decision by default
        ],
    ),
    "klaro": (
        {"klaro_services": "google-analytics=analytics,facebook=social"},
        "klaro=" + quote('{"google-analytics":true,"facebook":false}', safe=""),
        "analytics=1; advertising=0; social=0; preferences=0",
        [
            "klaro=" + quote('{"google-analytics":"yes"}', safe=""),
            "klaro=" + quote("[true]", safe=""),
            "klaro=" + quote("[" * 3000, safe="")[:4000],
            "klaro=" + quote('{"a":' * 2000, safe="")[:4090],
        ],
    ),
    "cookieconsent": (
        {},
        "cc_cookie="
        + quote(
            '{"categories":["necessary","analytics"],"revision":0,"data":null,'
            '"consentTimestamp":"2024-03-04T11:00:00.000Z","consentId":"9b1c"}',
            safe="",
        ),
        "analytics=1; advertising=0; social=0; preferences=0",
        [
            "cc_cookie=" + quote('{"categories":"analytics"}', safe=""),
            "cc_cookie={",
            "cc_cookie=" + quote('{"level":[1,2]}', safe=""),
            "cc_cookie=%C3%28",
        ],
    ),
}


async def curl(*args: str) -> str:
    if shutil.which("curl") is None:
        pytest.fail("curl is required (apt-get install curl)")
    proc = await asyncio.create_subprocess_exec(
        "curl", "-s", "--max-time", "60", *args, stdout=subprocess.PIPE
    )
    out, _ = await proc.communicate()
    return out.decode("utf-8", "replace")


def head_and_body(response: str) -> tuple[dict[str, str], str]:
    head, _, body = response.partition("\r\n\r\n")
    lines = head.split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    headers[":status"] = lines[0].split()[1]
    return headers, body


@pytest.mark.parametrize("reader", list(READERS))
async def test_each_reader_end_to_end_with_curl(
    reader: str, aiohttp_server: Server, make_proxy: MakeProxy, tmp_path: Path
) -> None:
    settings, cookie, expected, malformed = READERS[reader]
    origin = await aiohttp_server(origin_app())
    proxy = await make_proxy(
        str(origin.make_url("/")),
        rewrite=None,
        ruleset=RULES,
        consent_sources=(reader, "own"),
        **{k: getattr(load_settings({k: v}, env={}), k) for k, v in settings.items()},
    )
    url = str(proxy.make_url("/bikes.html"))
    headers, body = head_and_body(await curl("-i", "-b", cookie, url))
    assert headers[":status"] == "200"
    assert headers["x-consent"].startswith(f"{expected}; media=0; source={reader}; rules=")
    granted = dict(p.split("=") for p in expected.split("; "))
    assert (GA in body) is (granted["analytics"] == "1")
    assert (ADS in body) is (granted["advertising"] == "1")
    assert SOCIAL not in body
    assert 'id="cp-banner"' not in body  # the site's banner asked, not ours
    if granted["analytics"] == "1":  # Google's tags run: their consent default first
        assert 'gtag(\'consent\',\'default\',{"ad_storage":"denied","analytics_storage"' in body
    # Malformed and hostile values: no decision from the reader, never an error.
    for value in malformed:
        headers, body = head_and_body(await curl("-i", "-b", value, url))
        assert headers[":status"] == "200", value
        assert headers["x-consent"].startswith(
            "analytics=0; advertising=0; social=0; preferences=0; media=0; source=default"
        ), value
        assert GA not in body and ADS not in body and 'id="cp-banner"' in body
    # The own cookie still counts after the reader, and /_consent says where it came from.
    headers, _ = head_and_body(await curl("-i", "-b", f"{malformed[0]}; {OWN}", url))
    assert "source=cookie" in headers["x-consent"]
    state = json.loads(
        await curl(
            "-H", "Accept: application/json", "-b", cookie, url.replace("/bikes.html", "/_consent")
        )
    )
    assert state["decided"] and state["source"] == reader
    assert state["categories"]["advertising"]["source"] == reader
    decisions = [json.loads(line) for line in (tmp_path / "decisions.log").read_text().splitlines()]
    assert decisions[0]["source"] == reader and decisions[0]["consent"]["advertising"] == reader
    assert all(d["source"] == "default" for d in decisions[1 : 1 + len(malformed)])
    log = (tmp_path / "decisions.log").read_text()
    assert cookie.split("=", 1)[1][:20] not in log  # no cookie values in the log


async def test_the_own_banner_only_asks_when_the_own_cookie_counts(
    aiohttp_server: Server, make_proxy: MakeProxy
) -> None:
    origin = await aiohttp_server(origin_app())
    upstream = str(origin.make_url("/"))
    with_own = await make_proxy(
        upstream, rewrite=None, ruleset=RULES, consent_sources=("onetrust", "own")
    )
    alone = await make_proxy(upstream, rewrite=None, ruleset=RULES, consent_sources=("onetrust",))
    url, alone_url = str(with_own.make_url("/")), str(alone.make_url("/"))
    assert 'id="cp-banner"' in await curl(url)  # nobody has decided: ours asks
    assert 'id="cp-banner"' not in await curl("-b", ONETRUST_ANALYTICS, url)
    undecided = await curl("-i", alone_url)
    assert 'id="cp-banner"' not in undecided and "source=default" in undecided
    assert GA not in undecided  # still nothing before a choice
    page = await curl("-b", ONETRUST_ANALYTICS, url.rstrip("/") + "/_consent")
    assert "as made in this site&#x27;s OneTrust banner: Analytics allowed." in page
