"""Where the banner, the preferences page and consent posts send a visitor back to."""

from __future__ import annotations

import pytest

from proxy.ui.banner import safe_next


@pytest.mark.parametrize(
    ("value", "target"),
    [
        ("/", "/"),
        ("/shop/bikes?size=56&colour=red", "/shop/bikes?size=56&colour=red"),
        ("/article#cp-social-2", "/article#cp-social-2"),  # back to a placeholder's widget
        ("/caf%C3%A9", "/caf%C3%A9"),
        ("/café", "/café"),
        (None, "/"),
        ("", "/"),
        ("shop", "/"),  # relative: resolved against whatever page posted
        ("https://evil.example/", "/"),
        ("//evil.example/", "/"),  # scheme-relative: another host
        ("/\\evil.example/", "/"),  # browsers read a backslash as a slash
        ("/a\\b", "/"),
        ("javascript:alert(1)", "/"),
        ("/a\r\nSet-Cookie: x=1", "/"),  # header injection
        ("/a\tb", "/"),
        ("/a\x00b", "/"),
        ("/a\x1bb", "/"),
        (" /", "/"),
    ],
)
def test_safe_next(value: str | None, target: str) -> None:
    assert safe_next(value) == target
