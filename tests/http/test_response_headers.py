"""The response headers of a proxied answer (proxy/http/response_headers.py), as
tables: the origin's headers and what the body path knows in, the visitor's out."""

from __future__ import annotations

from pathlib import Path

import pytest
from multidict import CIMultiDict

from proxy.consent.consent_mode import ConsentModeSettings
from proxy.consent.enforce import UntouchedPage
from proxy.consent.model import OPTIONAL, ConsentPolicy, read_consent
from proxy.consent.plans import compile_plan
from proxy.consent.rules import load_rules
from proxy.http.consent_hook import UntouchedBody
from proxy.http.hook import BodyRewrite, Identity
from proxy.http.mime import response_type
from proxy.http.response_headers import UNTOUCHED, Body, response_headers

ROOT = Path(__file__).resolve().parent.parent.parent
HTML = response_type(("text/html; charset=utf-8",))
UNTYPED = response_type(())
TWO_TYPES = response_type(("text/plain", "text/html"))
Pairs = list[tuple[str, str]]


def consent_page(debug: bool = False) -> UntouchedBody:
    """The proxy's own hook for a visitor who accepted all: a page that depends on
    consent (and that nothing changes)."""
    consent = read_consent(
        CIMultiDict({"Cookie": "consent=v=1&" + "&".join(f"{c}=1" for c in OPTIONAL)}),
        ConsentPolicy(),
    )
    plan = compile_plan(load_rules(ROOT / "rules"), consent, ConsentModeSettings("off"))
    return UntouchedBody(UntouchedPage(plan, consent), debug)


def build(
    origin: Pairs,
    status: int = 200,
    ctype: object = HTML,
    body: Body = UNTOUCHED,
    page: BodyRewrite | None = None,
    validated: str | None = None,
) -> Pairs:
    assert ctype in (HTML, UNTYPED, TWO_TYPES)
    kind = HTML if ctype is HTML else UNTYPED if ctype is UNTYPED else TWO_TYPES
    out = response_headers(
        CIMultiDict(origin), status, kind, "consent-proxy", body, page, validated
    )
    return list(out.items())


@pytest.mark.parametrize(
    ("origin", "expected"),
    [
        (
            [("Content-Type", "text/html; charset=utf-8"), ("Content-Length", "12")],
            [
                ("Content-Type", "text/html; charset=utf-8"),
                ("Via", "1.1 consent-proxy"),
                ("Content-Length", "12"),
            ],
        ),
        (  # hop-by-hop go, and what Connection names; Via is appended to the origin's
            [
                ("Connection", "close, X-Secret"),
                ("X-Secret", "1"),
                ("Keep-Alive", "5"),
                ("Transfer-Encoding", "chunked"),
                ("Via", "1.0 cdn"),
                ("ETag", '"e"'),
            ],
            [("ETag", '"e"'), ("Via", "1.0 cdn, 1.1 consent-proxy")],
        ),
        (  # a cookie is one visitor's
            [("Set-Cookie", "a=1"), ("Cache-Control", "public, max-age=60")],
            [
                ("Set-Cookie", "a=1"),
                ("Cache-Control", "private, max-age=60"),
                ("Via", "1.1 consent-proxy"),
            ],
        ),
        (  # not a length: none sent (the response is chunked)
            [("Content-Length", "12, 12")],
            [("Via", "1.1 consent-proxy")],
        ),
    ],
)
def test_untouched_answer(origin: Pairs, expected: Pairs) -> None:
    assert build(origin, ctype=UNTYPED) == expected


def test_one_content_type_as_read() -> None:
    origin = [("Content-Type", "text/plain"), ("Content-Type", "text/html")]
    assert build(origin, ctype=TWO_TYPES) == [
        ("Via", "1.1 consent-proxy"),
        ("Content-Type", "text/html"),
    ]


@pytest.mark.parametrize(
    ("status", "validated", "etag"),
    [
        (304, "v1", 'W/"e~v1"'),  # the browser's page is of the variant it named
        (200, "v1", '"e"'),  # not a page, not a 304: the origin's own tag
        (304, None, '"e"'),
    ],
)
def test_validated_variant(status: int, validated: str | None, etag: str) -> None:
    out = dict(build([("ETag", '"e"')], status, UNTYPED, validated=validated))
    assert out["ETag"] == etag


def test_no_length_on_a_204() -> None:
    assert "Content-Length" not in dict(build([("Content-Length", "0")], 204, UNTYPED))


def test_rewritten_body() -> None:
    origin = [
        ("Content-Type", "text/html; charset=utf-8"),
        ("Content-Encoding", "gzip"),
        ("Content-Length", "800"),
        ("Accept-Ranges", "bytes"),
        ("Content-MD5", "x"),
        ("Digest", "sha-256=x"),
        ("ETag", '"e"'),
        ("Vary", "Accept"),
    ]
    body = Body(rewritten=True, coding="br", length=1234)
    assert build(origin, body=body, page=Identity()) == [
        ("Content-Type", "text/html; charset=utf-8"),
        ("ETag", 'W/"e~id"'),
        ("Via", "1.1 consent-proxy"),
        ("Content-Encoding", "br"),
        ("Vary", "Accept, Accept-Encoding"),
        ("Content-Length", "1234"),
    ]
    streamed = dict(build(origin, body=Body(rewritten=True), page=Identity()))
    assert "Content-Length" not in streamed and "Content-Encoding" not in streamed


def test_page_that_depends_on_consent() -> None:
    origin = [
        ("Cache-Control", "public, max-age=60"),
        ("Vary", "Accept"),
        ("Last-Modified", "Tue, 01 Dec 2026 10:00:00 GMT"),
        ("ETag", '"e"'),
        ("Content-Length", "99"),
    ]
    page = consent_page()
    out = build(origin, page=page)
    assert out == [
        ("ETag", f'W/"e~{page.variant}"'),
        ("Via", "1.1 consent-proxy"),
        ("Cache-Control", "private, max-age=60"),
        ("Vary", "Accept, Accept-Encoding, Cookie, Sec-GPC"),
        ("Content-Length", "99"),
    ]
    assert dict(build([], page=page))["Vary"] == "Accept-Encoding, Cookie, Sec-GPC"
    assert dict(build([], page=page))["Cache-Control"] == "private"
    # The mechanics' own hook says its pages do not depend on consent.
    assert dict(build(origin, page=Identity()))["Cache-Control"] == "public, max-age=60"


@pytest.mark.parametrize(
    ("body", "actions"),
    [
        (UNTOUCHED, "none"),
        (Body(rewritten=True, cache="miss"), "none; cache=miss"),
        (Body(rewritten=True, cache="hit", cached_actions="ga=remove*1"), "ga=remove*1; cache=hit"),
        (Body(rewritten=True, head=True), None),  # no body was rewritten to report on
    ],
)
def test_debug_actions(body: Body, actions: str | None) -> None:
    out = dict(build([], body=body, page=consent_page(debug=True)))
    assert out.get("X-Consent-Actions") == actions
    assert out["X-Consent"]
    assert "X-Consent-Actions" not in dict(build([], body=body, page=consent_page()))
