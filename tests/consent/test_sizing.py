"""The box an embed's placeholder takes: its width/height attributes and the sizing
declarations of its style, each value parsed and written again (nothing of the
page's text is copied into the placeholder's style)."""

from __future__ import annotations

import pytest

from proxy.consent.sizing import embed_size


def size(**attributes: str) -> str:
    return embed_size(attributes.get)


@pytest.mark.parametrize(
    ("attributes", "expected"),
    [
        # What embed codes give: YouTube, Maps, Spotify, SoundCloud, Vimeo.
        ({"width": "560", "height": "315"}, "width:560px;min-height:315px"),
        ({"width": "600", "height": "450", "style": "border:0;"}, "width:600px;min-height:450px"),
        ({"width": "100%", "height": "352"}, "width:100%;min-height:352px"),
        ({"width": " 640 ", "height": "360px"}, "width:640px;min-height:360px"),
        ({"width": "560.7"}, "width:560px"),
        ({}, ""),
        # The style wins over the attributes, as in a browser; later declarations win.
        ({"width": "560", "style": "width:100%;max-width:720px"}, "width:100%;max-width:720px"),
        ({"style": "width: 50em; width: 20rem"}, "width:20rem"),
        ({"style": "HEIGHT:12.50VH"}, "min-height:12.5vh"),
        ({"style": "width:100px !important"}, "width:100px"),
        ({"style": "aspect-ratio: 16 / 9; width: 100%"}, "width:100%;aspect-ratio:16 / 9"),
        ({"style": "aspect-ratio:1.7778"}, "aspect-ratio:1.7778"),
        # Laid over a sized wrapper (the responsive-video pattern).
        (
            {"style": "position:absolute;top:0;left:0;width:100%;height:100%"},
            "width:100%;min-height:100%;position:absolute;top:0;left:0",
        ),
        ({"style": "min-height:200px;max-height:80vh"}, "min-height:200px;max-height:80vh"),
        # A min-height of the page's own: the height stays a height beside it.
        ({"height": "300", "style": "min-height:100px"}, "height:300px;min-height:100px"),
    ],
)
def test_sizes(attributes: dict[str, str], expected: str) -> None:
    assert embed_size(attributes.get) == expected


@pytest.mark.parametrize(
    "attributes",
    [
        {"width": "560;background:url(https://t.example/x)"},
        {"width": "-5"},
        {"width": "auto", "height": "1e3"},
        {"width": "123456"},
        {"style": "width:calc(100% - 2px)"},
        {"style": "width:var(--w)"},
        {"style": "width:expression(alert(1))"},
        {"style": "background:url(https://t.example/x)"},
        {"style": "height:10px}</style><script>alert(1)</script>"},
        {"style": 'width:1px" onmouseover="alert(1)'},
        {"style": "width:300"},  # a bare number other than 0 is no length
        {"style": "position:fixed"},
        {"style": "aspect-ratio:auto 16/9"},
        {"style": "width\\:1px"},
        {"style": "width:1px\\;height:2px"},
        {"style": "/* width:1px */"},
    ],
)
def test_hostile_or_unknown_values_are_left_out(attributes: dict[str, str]) -> None:
    assert embed_size(attributes.get) == ""


def test_only_parsed_characters_reach_the_style() -> None:
    """Whatever an attribute holds, the result is declarations of known names with
    numbers and units: nothing that could end the attribute or the style."""
    hostile = {
        "width": '560"><script>',
        "height": "315",
        "style": "max-width:10px;x:<>\"'&;width:100PX!IMPORTANT;top:-3px",
    }
    out = embed_size(hostile.get)
    assert out == "width:100px;min-height:315px;max-width:10px"
    assert not set(out) & set("<>\"'&\\(){}")


def test_a_long_style_is_read_up_to_its_first_2_kb() -> None:
    assert size(style="color:red;" * 300 + "width:10px") == ""
    assert size(style="width:10px;" + "color:red;" * 300) == "width:10px"
