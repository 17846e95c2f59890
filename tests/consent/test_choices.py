"""A visitor's choice as posted to /_consent: what it grants, and which vendor cookies a
withdrawal expires, on which domains."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from multidict import CIMultiDict

from proxy.consent.categories import OPTIONAL
from proxy.consent.choices import chosen, cookie_domains, cookies_to_expire, expiry_headers
from proxy.consent.model import Consent, ConsentPolicy, read_consent
from proxy.consent.rules import RuleSet, parse_rule

NOTHING = read_consent(CIMultiDict(), ConsentPolicy())
ANALYTICS = read_consent(CIMultiDict({"Cookie": "consent=v=1&analytics=1"}), ConsentPolicy())


@pytest.mark.parametrize(
    ("current", "fields", "granted"),
    [
        (NOTHING, {"accept": ["all"]}, set(OPTIONAL)),
        (ANALYTICS, {"reject": ["all"]}, set()),
        (
            NOTHING,
            {"accept": ["all"], "reject": ["all"]},
            set(OPTIONAL),
        ),
        (ANALYTICS, {"social": ["1"]}, {"analytics", "social"}),  # a placeholder's grant
        (ANALYTICS, {"analytics": ["0", "1"]}, {"analytics"}),  # hidden 0, then the checkbox
        (ANALYTICS, {"analytics": ["0"]}, set()),
        (NOTHING, {"social": ["on"], "preferences": ["yes"]}, {"social", "preferences"}),
        (NOTHING, {"social": ["2"]}, set()),
        (NOTHING, {"necessary": ["0"]}, None),  # says nothing about an optional category
        (NOTHING, {"next": ["/"]}, None),
        (NOTHING, {}, None),
    ],
)
def test_chosen(
    current: Consent, fields: dict[str, Sequence[str]], granted: set[str] | None
) -> None:
    assert chosen(current, fields) == granted


RULES = RuleSet(
    (
        parse_rule(
            "ga",
            'name = "GA"\ncategory = "analytics"\n[[block]]\nselector = "script"\n'
            'contains = ["gtag("]\n[[cookies]]\nnames = ["_ga", "_ga_*", "_gid"]\n',
            "ga.toml",
        ),
        parse_rule(
            "fb",
            'name = "FB"\ncategory = "social"\n[[block]]\nselector = "iframe"\n'
            '[[cookies]]\nnames = ["_fbp"]\n',
            "fb.toml",
        ),
    ),
    "g",
)


@pytest.mark.parametrize(
    ("cookie", "denied", "names"),
    [
        ("_ga=1; _ga_ABC=2; _gid=3; sid=4; _fbp=5", {"analytics"}, ["_ga", "_ga_ABC", "_gid"]),
        ("_ga=1; _fbp=5", {"analytics", "social"}, ["_fbp", "_ga"]),
        ("_ga=1; _fbp=5", {"social"}, ["_fbp"]),
        ("_ga=1", set(), []),
        ("_gax=1; x_ga=2", {"analytics"}, []),  # names are patterns, not prefixes
        ("garbage; =x; _gid", {"analytics"}, []),  # no value: no cookie
        ("", {"analytics"}, []),
    ],
)
def test_cookies_to_expire(cookie: str, denied: set[str], names: list[str]) -> None:
    assert cookies_to_expire(cookie, RULES, denied) == names


@pytest.mark.parametrize(
    ("host", "domains"),
    [
        ("www.shop.example", [None, "www.shop.example", "shop.example"]),
        ("a.b.shop.example.", [None, "a.b.shop.example", "b.shop.example", "shop.example"]),
        ("WWW.Shop.Example", [None, "www.shop.example", "shop.example"]),
        ("shop.example", [None, "shop.example"]),
        ("localhost", [None]),
        ("203.0.113.9", [None]),
        ("2001:db8::1", [None]),
        ("", [None]),
        (None, [None]),
    ],
)
def test_cookie_domains(host: str | None, domains: list[str | None]) -> None:
    assert cookie_domains(host) == domains


def test_expiry_headers() -> None:
    assert expiry_headers(["_ga"], "www.shop.example", secure=True) == [
        "_ga=; Path=/; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Secure",
        "_ga=; Path=/; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; "
        "Domain=www.shop.example; Secure",
        "_ga=; Path=/; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Domain=shop.example; Secure",
    ]
    assert expiry_headers(["_fbp"], None, secure=False) == [
        "_fbp=; Path=/; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT"
    ]
    assert expiry_headers([], "shop.example", secure=False) == []
