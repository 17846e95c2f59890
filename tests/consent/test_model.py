"""Reading consent from requests: tables, hostile Cookie headers, GPC precedence."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from multidict import CIMultiDict

from proxy.consent.model import (
    MAX_AGE_LIMIT,
    OPTIONAL,
    ConsentPolicy,
    ConsentReader,
    choice_value,
    parse_choice,
    parse_consent_arg,
    read_consent,
    set_cookie_header,
)

POLICY = ConsentPolicy()


def granted(
    cookie: str | None = None, gpc: str | None = None, policy: ConsentPolicy = POLICY
) -> set[str]:
    headers = {}
    if cookie is not None:
        headers["Cookie"] = cookie
    if gpc is not None:
        headers["Sec-GPC"] = gpc
    return set(read_consent(headers, policy).granted) - {"necessary"}


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (
            "v=1&analytics=1&advertising=0&social=0",
            {"analytics": True, "advertising": False, "social": False},
        ),
        ("v=1", {}),
        ("analytics=1&v=1", {"analytics": True}),
        ("v=1&analytics=1&tracking=1&x=2", None),  # a bad flag on an unknown name: unreadable
        ("v=1&analytics=1&unknown=1", {"analytics": True}),
        ('"v=1&social=1"', {"social": True}),
        ("v=1&analytics=yes", None),
        ("v=1&analytics", None),
        ("v=1&analytics=1&analytics=0", None),
        ("v=1&v=2", None),
        ("v=0&analytics=1", None),  # older policy
        ("v=2&analytics=1", None),  # not this policy
        ("analytics=1", None),  # no version
        ("v=1&analytics=1 ", None),  # not cookie-octets
        ("v=1&analytics=1;", None),
        ("", None),
        ("v=1&" + "a=1&" * 300, None),  # absurdly long
    ],
)
def test_parse_choice(value: str, expected: dict[str, bool] | None) -> None:
    assert parse_choice(value, 1) == expected


@pytest.mark.parametrize(
    ("cookie", "expected"),
    [
        (None, set()),
        ("consent=v=1&analytics=1&advertising=0&social=1", {"analytics", "social"}),
        ("a=b; consent=v=1&advertising=1; c=d", {"advertising"}),
        ("garbage; ;;=; consent=v=1&social=1", {"social"}),  # a broken cookie before it
        ("consent=v=1&social=1; consent=v=1&social=1", {"social"}),  # the same twice
        ("consent=v=1&social=1; consent=v=1&social=0", set()),  # two different: no decision
        ("consent=v=1&social=1\x00", set()),
        ("consent=\u2603", set()),
        ("x=" + "y" * 10_000 + "; consent=v=1&analytics=1", {"analytics"}),
        ("consent", set()),
        ("Consent=v=1&analytics=1", set()),  # cookie names are case-sensitive
    ],
)
def test_read_consent_from_cookie_headers(cookie: str | None, expected: set[str]) -> None:
    assert granted(cookie) == expected


def test_sources_and_decision() -> None:
    consent = read_consent({"Cookie": "consent=v=1&analytics=1"}, POLICY)
    assert consent.decided and consent.source == "cookie"
    assert dict(consent.sources) == {
        "necessary": "always",
        "preferences": "cookie",
        "analytics": "cookie",
        "advertising": "cookie",
        "social": "cookie",
        "media": "cookie",
    }
    assert consent.header() == (
        "analytics=1; advertising=0; social=0; preferences=0; media=0; source=cookie"
    )
    undecided = read_consent({}, POLICY)
    assert not undecided.decided and undecided.source == "default"
    assert undecided.granted == {"necessary"}


def test_gpc_denies_advertising_and_social_unless_granted() -> None:
    opt_out = ConsentPolicy(default_granted=frozenset(OPTIONAL))
    assert granted(gpc="1", policy=opt_out) == {"preferences", "analytics", "media"}
    assert granted(gpc="0", policy=opt_out) == set(OPTIONAL)
    assert granted(gpc="true", policy=opt_out) == set(OPTIONAL)  # only exactly "1"
    assert granted("consent=v=1&advertising=1&social=1", gpc="1") == {"advertising", "social"}
    consent = read_consent({"Sec-GPC": "1"}, opt_out)
    assert consent.source == "gpc"
    assert dict(consent.sources)["advertising"] == "gpc"
    assert dict(consent.sources)["analytics"] == "default"


def test_variants_differ_by_what_the_page_depends_on() -> None:
    a = read_consent({"Cookie": "consent=v=1&analytics=1"}, POLICY)
    b = read_consent({"Cookie": "consent=v=1&analytics=0"}, POLICY)
    c = read_consent({}, POLICY)
    d = read_consent({"Sec-GPC": "1"}, POLICY)
    assert len({a.variant, b.variant, c.variant}) == 3
    assert c.variant == d.variant  # same page for both: nothing granted, no decision


def test_header_pairs_and_repeated_cookie_headers() -> None:
    pairs = [("Cookie", "a=1"), ("cookie", "consent=v=1&social=1")]
    assert read_consent(pairs, POLICY).allows("social")


def test_cli_consent_values() -> None:
    assert parse_consent_arg("all", POLICY).all_granted
    assert parse_consent_arg("none", POLICY).granted == {"necessary"}
    assert parse_consent_arg("analytics=1", POLICY).granted == {"necessary", "analytics"}
    with pytest.raises(ValueError, match="expected all, none"):
        parse_consent_arg("analytics=maybe", POLICY)


def test_cookie_written_by_the_proxy() -> None:
    value = choice_value({"analytics"}, 1)
    assert value == "v=1&preferences=0&analytics=1&advertising=0&social=0&media=0"
    assert parse_choice(value, 1) == {
        "preferences": False,
        "analytics": True,
        "advertising": False,
        "social": False,
        "media": False,
    }
    header = set_cookie_header(value, POLICY, secure=True, max_age=10**9)
    assert header == f"consent={value}; Path=/; SameSite=Lax; Max-Age={MAX_AGE_LIMIT}; Secure"
    assert "Secure" not in set_cookie_header(value, POLICY, secure=False, max_age=60)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300), st.text(max_size=20))
def test_nothing_in_a_cookie_header_raises(cookie: str, gpc: str) -> None:
    consent = read_consent({"Cookie": cookie, "Sec-GPC": gpc}, POLICY)
    assert "necessary" in consent.granted


_CONSENT_VALUES = st.sampled_from(
    ["v=1&analytics=1", "v=1&social=1&advertising=0", "v=2&analytics=1", "junk", '"v=1"']
)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["consent", "other", " consent"]), _CONSENT_VALUES)))
def test_reader_answers_as_read_consent_does(cookies: list[tuple[str, str]]) -> None:
    """The remembering reader (the proxy's) and the plain function agree, on first
    sight and from memory, and its memory stays bounded."""
    reader = ConsentReader(POLICY)
    header = "; ".join(f"{k}={v}" for k, v in cookies)
    half = len(cookies) // 2
    split = ["; ".join(f"{k}={v}" for k, v in part) for part in (cookies[:half], cookies[half:])]
    for _ in range(2):  # first sight, then from memory
        for gpc in ("1", "0", None):
            for headers in (
                CIMultiDict([("Cookie", header)]),
                CIMultiDict([("Cookie", split[0]), ("Cookie", split[1])]),
                CIMultiDict(),
            ):
                if gpc is not None:
                    headers["Sec-GPC"] = gpc
                assert reader(headers) == read_consent(headers, POLICY)
    for n in range(ConsentReader._REMEMBERED + 5):
        reader(CIMultiDict({"Cookie": f"consent=v=1&analytics=1&x{n}=1"}))
        reader(CIMultiDict({"Cookie": f"consent=v=1&analytics=1&x{n}=1", "Sec-GPC": "1"}))
    assert len(reader._answers) <= ConsentReader._REMEMBERED
