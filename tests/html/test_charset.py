"""A page's character encoding (proxy/html/charset.py), the streaming transcoder
(proxy/http/transcode.py) and the rewriter's XHTML mode. Through the real proxy:
tests/http/test_page_types.py.

What browsers do was checked in Chromium 156 (Debian) by serving each case from a
small origin: BOM over header over <meta>; ``<meta charset=utf-16>`` means UTF-8; a
UTF-32 byte order mark reads as UTF-16LE and a ``utf-32`` label is ignored; no
encoding is guessed for BOM-less UTF-16; ISO-2022-JP from the header or a <meta>
runs ``<scr ESC ( B ipt>`` as a script; a lone surrogate shows as U+FFFD; XHTML
reads the XML declaration and UTF-16 written as ``<?`` without a BOM, and runs a
self-closing ``<script src=…/>``."""

from __future__ import annotations

import codecs
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from multidict import CIMultiDict

from proxy.consent.enforce import EnforcedPage
from proxy.consent.model import ConsentPolicy, read_consent
from proxy.consent.plans import compile_plan
from proxy.consent.rules import load_rules
from proxy.html import Rewriter
from proxy.html.charset import CharsetError, determine, encoding_for_label, prescan
from proxy.http.consent_hook import EnforcedBody
from proxy.http.transcode import PageText
from proxy.ui.furniture import PageFurniture
from proxy.ui.templates import Templates
from tests.support import ROOT

GA = '<script src="https://www.google-analytics.com/analytics.js"></script>'

# -- the page's encoding -----------------------------------------------------------------

META_UTF8 = b'<meta charset="utf-8">'


@pytest.mark.parametrize(
    ("head", "header", "xml", "name", "source"),
    [
        # BOM > header > meta
        (b"\xff\xfe<\x00", "utf-8", False, "UTF-16LE", "bom"),
        (b"\xfe\xff\x00<", "utf-16le", False, "UTF-16BE", "bom"),
        (b"\xef\xbb\xbf<p>", "utf-16le", False, "UTF-8", "bom"),
        (b"\xff\xfe\x00\x00<\x00\x00\x00", None, False, "UTF-32LE", "bom"),
        (b"\x00\x00\xfe\xff\x00\x00\x00<", None, False, "UTF-32BE", "bom"),
        ("<meta charset='utf-8'>".encode("utf-16-le"), "utf-16le", False, "UTF-16LE", "header"),
        (META_UTF8, "UTF-16", False, "UTF-16LE", "header"),  # "utf-16" is little-endian
        (META_UTF8, "iso-2022-jp", False, "ISO-2022-JP", "header"),
        (b'<meta charset="koi8-r">', "shift_jis", False, "Shift_JIS", "header"),
        (b'<meta charset="koi8-r">', None, False, "KOI8-R", "meta"),
        # A label browsers do not know is skipped; UTF-16 or x-user-defined in a
        # <meta> is spelt in ASCII bytes, so it cannot be what it says.
        (b'<meta charset="koi8-r">', "utf-32", False, "KOI8-R", "meta"),
        (b'<meta charset="utf-16">', None, False, "UTF-8", "meta"),
        (b'<meta charset="x-user-defined">', None, False, "windows-1252", "meta"),
        (b'<meta charset="iso-2022-jp">', None, False, "ISO-2022-JP", "meta"),
        (b"<p>no label</p>", None, False, "default", "default"),
        (b"<p>no label</p>", "bogus", False, "default", "default"),
        # XHTML: the XML declaration, or UTF-16 told by "<?", never a <meta>
        (b'<?xml version="1.0" encoding="iso-8859-2"?><html>', None, True, "ISO-8859-2", "xml"),
        (b"<?xml version='1.0' encoding='utf-16'?>", None, True, "UTF-8", "xml"),
        ('<?xml version="1.0"?>'.encode("utf-16-le"), None, True, "UTF-16LE", "xml"),
        ('<?xml version="1.0"?>'.encode("utf-16-be"), None, True, "UTF-16BE", "xml"),
        (b'<html><meta charset="koi8-r"/>', None, True, "UTF-8", "default"),
    ],
)
def test_precedence(head: bytes, header: str | None, xml: bool, name: str, source: str) -> None:
    found = determine(head, header, xml)
    assert (found.name, found.source) == (name, source)
    assert found.transcode == (
        name in ("UTF-16LE", "UTF-16BE", "UTF-32LE", "UTF-32BE", "ISO-2022-JP")
    )


@pytest.mark.parametrize(
    ("data", "found"),
    [
        (b'<meta http-equiv="Content-Type" content="text/html; charset=Shift_JIS">', "Shift_JIS"),
        (b"<META HTTP-EQUIV=content-type CONTENT='text/html;charset=\"euc-jp\"'>", "EUC-JP"),
        (b'<meta content="text/html; charset=euc-kr">', None),  # no http-equiv
        (b'<meta content="text/html; charset=euc-kr" http-equiv="content-type">', "EUC-KR"),
        (b'<meta charset="bogus"><meta charset="gbk">', "GBK"),
        (b"<!-- <meta charset=koi8-r> --><meta charset=big5>", "Big5"),
        (b"<!--><meta charset=big5>", "Big5"),  # "<!-->" is a whole comment
        (b'<p title="<meta charset=koi8-r>"><meta charset=gb18030>', "gb18030"),
        (b"<?php echo 1 ?><meta charset=windows-1251>", "windows-1251"),
        (b'<meta name="x" charset = " utf-8 ">', "UTF-8"),
        (b"<meta/charset=koi8-u>", "KOI8-U"),
        (b"<metacharset=koi8-u>", None),
        (b"<meta charset=koi8-u", None),  # cut off: the prescan gives up
        (b"<!-- never closed <meta charset=koi8-u>", None),
        (b"x" * 1030 + b"<meta charset=koi8-u>", None),
    ],
)
def test_prescan(data: bytes, found: str | None) -> None:
    assert prescan(data[:1024]) == found


def test_labels_are_the_encoding_standards() -> None:
    assert encoding_for_label(" Latin1 ") == "windows-1252"
    assert encoding_for_label("unicodeFFFE") == "UTF-16BE"
    assert encoding_for_label("utf-32") is None  # not a browser encoding
    assert encoding_for_label("cp500") is None
    assert encoding_for_label("hz-gb-2312") == "replacement"


# -- transcoding as the page streams -----------------------------------------------------

UNDECIDED = read_consent(CIMultiDict(), ConsentPolicy())  # refuses all, sees the banner
PLAN = compile_plan(load_rules(ROOT / "rules"), UNDECIDED)
TEXT = f"<!doctype html><html><head><title>Café ✓ 😀</title>{GA}</head><body><p>Grüße 𝄞</p></body></html>"


def rewritten(
    body: bytes, label: str | None, step: int, xml: bool = False
) -> tuple[bytes, PageText]:
    enforced = EnforcedPage(PLAN, "/", PageFurniture(Templates()), consent=UNDECIDED)
    page = PageText(EnforcedBody(enforced, debug_headers=True), label, xml)
    out = b"".join(page.feed(body[i : i + step]) for i in range(0, len(body), step))
    return out + page.close(), page


@pytest.mark.parametrize(
    ("codec", "bom", "label"),
    [
        ("utf-16-le", b"\xff\xfe", None),
        ("utf-16-be", b"\xfe\xff", "utf-8"),  # the BOM wins over the header
        ("utf-16-le", b"", "utf-16"),
        ("utf-16-be", b"", "UTF-16BE"),
        ("utf-32-le", b"\xff\xfe\x00\x00", None),
        ("utf-32-be", b"\x00\x00\xfe\xff", None),
    ],
)
@pytest.mark.parametrize("step", [1, 3, 5, 4096])
def test_wide_pages_are_rewritten_in_their_own_encoding(
    codec: str, bom: bytes, label: str | None, step: int
) -> None:
    """Every split: inside code units, between the halves of a surrogate pair."""
    out, page = rewritten(bom + TEXT.encode(codec), label, step)
    assert page.encoding is not None and page.encoding.transcode
    assert out.startswith(bom)
    text = out[len(bom) :].decode(codec)
    assert "google-analytics" not in text
    assert "Café ✓ 😀" in text and "Grüße 𝄞" in text
    assert 'id="cp-banner"' in text  # what the proxy inserts is in the page's encoding too


def test_iso_2022_jp_is_read_as_the_browser_reads_it() -> None:
    hidden = b"<scr\x1b(Bipt src='https://www.google-analytics.com/ga.js'></script>"
    body = (
        (
            '<html><head><meta charset="iso-2022-jp"><title>日本語</title></head><body><p>テキスト</p>'
        ).encode("iso2022_jp")
        + hidden
        + b"</body></html>"
    )
    for step in (1, 2, 7, 4096):
        out, page = rewritten(body, None, step)
        assert page.encoding is not None and page.encoding.source == "meta"
        text = out.decode("iso2022_jp")
        assert "google-analytics" not in text and "テキスト" in text
    # With UTF-8 in the header a browser sees no script there: the bytes stay.
    out, _ = rewritten(body, "utf-8", 4096)
    assert hidden in out


@pytest.mark.parametrize(
    ("body", "label", "why"),
    [
        (b"\xff\xfe" + "<p>é".encode("utf-16-le") + b"\x00\xd8<\x00", None, "surrogate"),
        (b"\xff\xfe" + "<p>é".encode("utf-16-le") + b"<", None, "truncated"),
        ("<p>é".encode("utf-16-be") + b"\xdc\x00", "utf-16be", "UTF-16BE (told by its header)"),
        (b"\xff\xfe\x00\x00" + b"<\x00\x00\x00s\x00\x00\x01", None, "range"),
        (b"<p>\x1b$B$3$s\x1b(B</p>", None, "ISO-2022-JP escape"),
        (b"<p>" + b"x" * 2000 + b"\x1b(J</p>", None, "ISO-2022-JP escape"),
        (b"<p>\x1b$(D!!</p>", "iso-2022-jp", "illegal"),  # JIS X 0212: not for browsers
    ],
)
@pytest.mark.parametrize("step", [1, 4096])
def test_undecodable_pages_fail_closed(body: bytes, label: str | None, why: str, step: int) -> None:
    with pytest.raises(CharsetError) as caught:
        rewritten(body, label, step)
    assert why in str(caught.value)


def test_ascii_compatible_pages_keep_their_bytes_and_get_inserts_they_can_read() -> None:
    latin = f'<html><head><meta charset="windows-1252"><title>Caf\xe9</title>{GA}</head><body></body></html>'
    body = latin.encode("cp1252")
    out, page = rewritten(body, None, 7)
    assert page.encoding is not None and page.encoding.codec == "cp1252"
    assert b"<title>Caf\xe9</title>" in out and b"google-analytics" not in out
    plain = body.replace(b'<meta charset="windows-1252">', b"")
    out, page = rewritten(plain, None, 7)
    assert page.encoding is not None and page.encoding.name == "default"
    banner = out[out.index(b'id="cp-banner"') :]
    assert max(banner) < 0x80  # unknown encoding: inserted text as character references


# -- XHTML: self-closing tags have no content ----------------------------------------------


def test_xml_mode_self_closing_script_is_a_whole_element() -> None:
    page = (
        b'<?xml version="1.0"?><html xmlns="http://www.w3.org/1999/xhtml"><head>'
        b'<script src="/own.js"/>'
        b'<script src="https://www.google-analytics.com/analytics.js"/>'
        b"<title/><script src='https://www.googletagmanager.com/gtm.js?id=G'></script></head>"
        b"<body><p>kept</p></body></html>"
    )
    out, _ = rewritten(page, None, 4096, xml=True)
    assert b"google" not in out and b'<script src="/own.js"/>' in out and b"kept" in out
    root = ET.fromstring(out)  # still well-formed XML, banner and all
    assert root.find(".//{http://www.w3.org/1999/xhtml}p") is not None
    # Read as HTML, the first <script/> opens raw text that hides the trackers after it.
    assert b"googletagmanager" in Rewriter().feed(page)


def test_inserted_markup_is_well_formed_xml() -> None:
    """The banner and the placeholders go into XHTML pages too."""
    fb = '<div class="fb-like" data-href="https://example.com/"></div>'
    page = f'<html xmlns="http://www.w3.org/1999/xhtml"><head><title>t</title></head><body>{fb}<p>x</p></body></html>'
    out, _ = rewritten(page.encode(), "utf-8", 4096, xml=True)
    assert b"cp-ph" in out and b"cp-banner" in out and b"cp-grant-social" in out
    ET.fromstring(out)


def test_incremental_codecs_round_trip_every_split() -> None:
    """The transcoder leans on Python's incremental codecs keeping state across
    calls; this pins that for the codecs it uses."""
    text = "a😀é<b>日本</b>𝄞"
    for codec in ("utf-16-le", "utf-16-be", "utf-32-le", "utf-32-be", "iso2022_jp"):
        sample = text if codec != "iso2022_jp" else "a日本<b>テキスト</b>"
        data = sample.encode(codec)
        for cut in range(len(data) + 1):
            dec = codecs.getincrementaldecoder(codec)()
            assert dec.decode(data[:cut]) + dec.decode(data[cut:], True) == sample


def test_rewrite_command_reads_the_page_encoding(tmp_path: Path) -> None:
    page = tmp_path / "wide.html"
    page.write_bytes(b"\xff\xfe" + TEXT.encode("utf-16-le"))
    command = [sys.executable, "-m", "proxy", "rewrite", str(page), "--consent", "none"]
    result = subprocess.run(command, capture_output=True, cwd=ROOT)
    assert result.returncode == 0
    text = result.stdout.decode("utf-16")
    assert "google-analytics" not in text and "Grüße 𝄞" in text
    page.write_bytes(b"\xff\xfe" + TEXT.encode("utf-16-le")[:-1])
    broken = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    assert broken.returncode == 2 and "does not decode as UTF-16LE" in broken.stderr
    assert broken.stdout == ""
