"""The one-time "Load this" cookie: what it says, the page it is bound to, and the
values a request may carry that must count as nothing (the embed stays held)."""

from __future__ import annotations

import pytest
from multidict import CIMultiDict

from proxy.consent import once

PATH = "/visit?lang=en"


def cookie(header: str) -> CIMultiDict[str]:
    return CIMultiDict([("Cookie", header)])


def value_for(anchor: str = "cp-media-2", path: str = PATH) -> str:
    value = once.cookie_value(anchor, path)
    assert value is not None
    return value


def test_set_header_names_the_embed_and_the_page() -> None:
    header = once.set_header("cp-media-2", PATH, "consent", secure=False)
    assert header == (
        f"consent-once={value_for()}; Path=/; SameSite=Lax; HttpOnly; Max-Age={once.MAX_AGE}"
    )
    assert once.MAX_AGE == 60
    secure = once.set_header("cp-media-2", PATH, "consent", secure=True)
    assert secure is not None and secure.endswith("; Secure")
    assert once.set_header("cp-media-2", PATH, "cc", secure=False).startswith("cc-once=")  # type: ignore[union-attr]
    assert once.expire_header("consent") == "consent-once=; Path=/; Max-Age=0"


def test_honoured_on_its_page_only() -> None:
    headers = cookie(f"consent=v=1&media=0; consent-once={value_for()}")
    assert once.requested(headers, "consent", PATH) == ("media", 2)
    for other in ("/visit", "/visit?lang=fr", "/visit?lang=en&x=1", "/visit/", "/", "/other"):
        assert once.requested(headers, "consent", other) is None, other
    # Another consent cookie's name: another cookie.
    assert once.requested(headers, "cc", PATH) is None


def test_the_same_value_twice_counts_once() -> None:
    value = value_for()
    headers = CIMultiDict(
        [("Cookie", f"consent-once={value}"), ("Cookie", f"consent-once={value}")]
    )
    assert once.requested(headers, "consent", PATH) == ("media", 2)


@pytest.mark.parametrize(
    "header",
    [
        "",
        "consent=v=1&media=0",
        "consent-once=",
        "consent-once=cp-media-2",
        "consent-once=cp-media-2.",
        f"consent-once=cp-media-2.{'0' * 16}",  # a digest of no page
        f"consent-once={value_for()[:-1]}",
        f"consent-once={value_for()}0",
        f"consent-once={value_for().upper()}",
        f'consent-once="{value_for()}"',
        f"consent-once=cp-media-0.{value_for().split('.')[1]}",
        f"consent-once=cp-necessary-1.{value_for().split('.')[1]}",
        f"consent-once=cp-evil-1.{value_for().split('.')[1]}",
        f"consent-once=cp-media-10000.{value_for().split('.')[1]}",
        f"consent-once=cp-media-01.{value_for().split('.')[1]}",
        f"consent-once=cp-media-2.{value_for().split('.')[1]}; consent-once={value_for('cp-media-3')}",
        f"consent-once={value_for()}\x00",
        "consent-once=" + "a" * 5000,
        f"xconsent-once={value_for()}",
        f"consent-once-x={value_for()}",
    ],
)
def test_hostile_or_stale_values_are_ignored(header: str) -> None:
    assert once.requested(cookie(header), "consent", PATH) is None


@pytest.mark.parametrize(
    ("next_path", "expected"),
    [
        ("/visit?lang=en#cp-media-2", ("/visit?lang=en", "cp-media-2")),
        ("/#cp-social-1", ("/", "cp-social-1")),
        ("/visit", None),
        ("/visit#", None),
        ("/visit#top", None),
        ("/visit#cp-media-0", None),
        ("/visit#cp-necessary-1", None),
        ("#cp-media-1", None),
        ("/visit#cp-media-1#cp-media-2", None),
    ],
)
def test_target_of_a_load_this_post(next_path: str, expected: tuple[str, str] | None) -> None:
    assert once.target(next_path) == expected


def test_only_placeholder_anchors_make_a_cookie() -> None:
    assert once.cookie_value("cp-media-1", "/") is not None
    for anchor in ("cp-media-0", "media-1", "cp-media-1 ", "cp-media-1;x=1", "cp-banner"):
        assert once.cookie_value(anchor, "/") is None
        assert once.set_header(anchor, "/", "consent", secure=False) is None
