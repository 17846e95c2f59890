"""Which character encoding a browser reads a page in (WHATWG HTML, "determining the
character encoding"; XML's rules for XHTML), told from its first bytes.

In order: a byte order mark; the charset of the Content-Type header; for HTML a
``<meta charset>`` or ``<meta http-equiv=content-type>`` in the first 1024 bytes
(the prescan: a UTF-16 label found there means UTF-8, as the bytes that spell it
are ASCII); for XHTML the XML declaration, or UTF-16 told by how ``<?`` is written;
else the browser's default. Labels are the Encoding Standard's: one a browser does
not know (``utf-32``, ``cp500``) is skipped as the browser skips it.

The rewriter reads ASCII-compatible bytes; ``PageEncoding.transcode`` says when a
page must be decoded first: UTF-16, ISO-2022-JP, and UTF-32 by its byte order mark.
Browsers read no UTF-32 (its BOM ``FF FE 00 00`` reads as UTF-16LE), but valid
UTF-32 shows them no element that loads or runs anything however they read it (at
most two ASCII bytes stand side by side, so no tag name is longer than a letter), so
the proxy reads it as what it says it is, as any other reader would, and refuses
what does not decode.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


class CharsetError(ValueError):
    """A page in an encoding the proxy cannot read safely (the caller fails closed)."""


@dataclass(frozen=True)
class PageEncoding:
    """How one page is encoded, and where that was learnt."""

    name: str  # the Encoding Standard's name ("UTF-16LE", "windows-1252"), or "UTF-32LE"
    codec: str  # the Python codec that reads and writes it
    source: str  # "bom", "header", "meta", "xml" or "default"
    transcode: bool  # not ASCII-compatible: decoded before the rewrite, encoded after


PRESCAN = 1024  # bytes a browser's prescan looks at

# The Encoding Standard's labels, by encoding, with the Python codec for each (the
# rewriter writes inserted markup in it; "ascii" writes character references).
_ENCODINGS: dict[str, tuple[str, str]] = {
    "UTF-8": ("utf-8", "unicode-1-1-utf-8 unicode11utf8 unicode20utf8 utf-8 utf8 x-unicode20utf8"),
    "IBM866": ("cp866", "866 cp866 csibm866 ibm866"),
    "ISO-8859-2": (
        "iso8859_2",
        "csisolatin2 iso-8859-2 iso-ir-101 iso8859-2 iso88592 iso_8859-2 iso_8859-2:1987 l2 latin2",
    ),
    "ISO-8859-3": (
        "iso8859_3",
        "csisolatin3 iso-8859-3 iso-ir-109 iso8859-3 iso88593 iso_8859-3 iso_8859-3:1988 l3 latin3",
    ),
    "ISO-8859-4": (
        "iso8859_4",
        "csisolatin4 iso-8859-4 iso-ir-110 iso8859-4 iso88594 iso_8859-4 iso_8859-4:1988 l4 latin4",
    ),
    "ISO-8859-5": (
        "iso8859_5",
        "csisolatincyrillic cyrillic iso-8859-5 iso-ir-144 iso8859-5 iso88595 iso_8859-5 "
        "iso_8859-5:1988",
    ),
    "ISO-8859-6": (
        "iso8859_6",
        "arabic asmo-708 csiso88596e csiso88596i csisolatinarabic ecma-114 iso-8859-6 "
        "iso-8859-6-e iso-8859-6-i iso-ir-127 iso8859-6 iso88596 iso_8859-6 iso_8859-6:1987",
    ),
    "ISO-8859-7": (
        "iso8859_7",
        "csisolatingreek ecma-118 elot_928 greek greek8 iso-8859-7 iso-ir-126 iso8859-7 "
        "iso88597 iso_8859-7 iso_8859-7:1987 sun_eu_greek",
    ),
    "ISO-8859-8": (
        "iso8859_8",
        "csiso88598e csisolatinhebrew hebrew iso-8859-8 iso-8859-8-e iso-ir-138 iso8859-8 "
        "iso88598 iso_8859-8 iso_8859-8:1988 visual",
    ),
    "ISO-8859-8-I": ("iso8859_8", "csiso88598i iso-8859-8-i logical"),
    "ISO-8859-10": (
        "iso8859_10",
        "csisolatin6 iso-8859-10 iso-ir-157 iso8859-10 iso885910 l6 latin6",
    ),
    "ISO-8859-13": ("iso8859_13", "iso-8859-13 iso8859-13 iso885913"),
    "ISO-8859-14": ("iso8859_14", "iso-8859-14 iso8859-14 iso885914"),
    "ISO-8859-15": ("iso8859_15", "csisolatin9 iso-8859-15 iso8859-15 iso885915 iso_8859-15 l9"),
    "ISO-8859-16": ("iso8859_16", "iso-8859-16"),
    "KOI8-R": ("koi8_r", "cskoi8r koi koi8 koi8-r koi8_r"),
    "KOI8-U": ("koi8_u", "koi8-ru koi8-u"),
    "macintosh": ("mac_roman", "csmacintosh mac macintosh x-mac-roman"),
    "windows-874": ("cp874", "dos-874 iso-8859-11 iso8859-11 iso885911 tis-620 windows-874"),
    "windows-1250": ("cp1250", "cp1250 windows-1250 x-cp1250"),
    "windows-1251": ("cp1251", "cp1251 windows-1251 x-cp1251"),
    "windows-1252": (
        "cp1252",
        "ansi_x3.4-1968 ascii cp1252 cp819 csisolatin1 ibm819 iso-8859-1 iso-ir-100 iso8859-1 "
        "iso88591 iso_8859-1 iso_8859-1:1987 l1 latin1 us-ascii windows-1252 x-cp1252",
    ),
    "windows-1253": ("cp1253", "cp1253 windows-1253 x-cp1253"),
    "windows-1254": (
        "cp1254",
        "cp1254 csisolatin5 iso-8859-9 iso-ir-148 iso8859-9 iso88599 iso_8859-9 "
        "iso_8859-9:1989 l5 latin5 windows-1254 x-cp1254",
    ),
    "windows-1255": ("cp1255", "cp1255 windows-1255 x-cp1255"),
    "windows-1256": ("cp1256", "cp1256 windows-1256 x-cp1256"),
    "windows-1257": ("cp1257", "cp1257 windows-1257 x-cp1257"),
    "windows-1258": ("cp1258", "cp1258 windows-1258 x-cp1258"),
    "x-mac-cyrillic": ("mac_cyrillic", "x-mac-cyrillic x-mac-ukrainian"),
    "GBK": (
        "gbk",
        "chinese csgb2312 csiso58gb231280 gb2312 gb_2312 gb_2312-80 gbk iso-ir-58 x-gbk",
    ),
    "gb18030": ("gb18030", "gb18030"),
    "Big5": ("big5hkscs", "big5 big5-hkscs cn-big5 csbig5 x-x-big5"),
    "EUC-JP": ("euc_jp", "cseucpkdfmtjapanese euc-jp x-euc-jp"),
    "ISO-2022-JP": ("iso2022_jp", "csiso2022jp iso-2022-jp"),
    "Shift_JIS": (
        "cp932",
        "csshiftjis ms932 ms_kanji shift-jis shift_jis sjis windows-31j x-sjis",
    ),
    "EUC-KR": (
        "cp949",
        "cseuckr csksc56011987 euc-kr iso-ir-149 korean ks_c_5601-1987 ks_c_5601-1989 "
        "ksc5601 ksc_5601 windows-949",
    ),
    # A browser shows a page in these as one replacement character: nothing runs.
    "replacement": (
        "ascii",
        "csiso2022kr hz-gb-2312 iso-2022-cn iso-2022-cn-ext iso-2022-kr replacement",
    ),
    "UTF-16BE": ("utf-16-be", "unicodefffe utf-16be"),
    "UTF-16LE": (
        "utf-16-le",
        "csunicode iso-10646-ucs-2 ucs-2 unicode unicodefeff utf-16 utf-16le",
    ),
    "x-user-defined": ("ascii", "x-user-defined"),
}
_LABELS = {label: name for name, (_, labels) in _ENCODINGS.items() for label in labels.split()}
# Read by the rewriter only after decoding (ISO-2022-JP spells markup with escapes
# in between: "<scr ESC ( B ipt>" is a script to a browser).
_TRANSCODED = frozenset({"UTF-16BE", "UTF-16LE", "ISO-2022-JP", "UTF-32BE", "UTF-32LE"})
_CODECS = {name: codec for name, (codec, _) in _ENCODINGS.items()}
_CODECS.update({"UTF-32LE": "utf-32-le", "UTF-32BE": "utf-32-be"})


def encoding_for_label(label: str | None) -> str | None:
    """The Encoding Standard's name for ``label``, or None for a label browsers do not
    know."""
    if label is None:
        return None
    return _LABELS.get(label.strip("\t\n\f\r ").lower())


def page_encoding(name: str, source: str) -> PageEncoding:
    return PageEncoding(name, _CODECS[name], source, name in _TRANSCODED)


def from_bom(data: bytes) -> PageEncoding | None:
    """The encoding a byte order mark at the start of ``data`` names, if any."""
    if data.startswith(b"\xef\xbb\xbf"):
        return page_encoding("UTF-8", "bom")
    if data.startswith(b"\xff\xfe\x00\x00"):
        return page_encoding("UTF-32LE", "bom")
    if data.startswith((b"\xfe\xff", b"\xff\xfe")):
        return page_encoding("UTF-16BE" if data[0] == 0xFE else "UTF-16LE", "bom")
    if data.startswith(b"\x00\x00\xfe\xff"):
        return page_encoding("UTF-32BE", "bom")
    return None


_BOMS = (b"\xef\xbb\xbf", b"\xfe\xff", b"\xff\xfe\x00\x00", b"\x00\x00\xfe\xff")


def bom_undecided(data: bytes) -> bool:
    """Whether ``data`` is too short to say whether it starts with a byte order mark."""
    if len(data) >= 4:
        return False
    return any(bom.startswith(data) for bom in _BOMS)


def determine(head: bytes, header_charset: str | None, xml: bool) -> PageEncoding:
    """The encoding of a page whose first bytes are ``head`` (at least ``PRESCAN`` of
    them, or the whole page) and whose Content-Type gives ``header_charset``."""
    bom = from_bom(head)
    if bom is not None:
        return bom
    name = encoding_for_label(header_charset)
    if name is not None:
        return page_encoding(name, "header")
    if xml:
        return _xml_encoding(head[:PRESCAN])
    name = prescan(head[:PRESCAN])
    if name is not None:
        return page_encoding(name, "meta")
    return PageEncoding("default", "ascii", "default", False)


def _ascii_only(name: str) -> str:
    """What a label spelt in ASCII bytes can mean: not UTF-16 (WHATWG) or UTF-32."""
    if name in ("UTF-16BE", "UTF-16LE"):
        return "UTF-8"
    return "windows-1252" if name == "x-user-defined" else name


_XML_DECL = re.compile(rb"<\?xml[^>]*?\sencoding\s*=\s*([\"'])([^\"'>]*)\1")


def _xml_encoding(head: bytes) -> PageEncoding:
    """XML's rules: UTF-16 when ``<?`` is written in it, else the declaration's
    encoding, else UTF-8."""
    if head.startswith(b"<\x00?\x00"):
        return page_encoding("UTF-16LE", "xml")
    if head.startswith(b"\x00<\x00?"):
        return page_encoding("UTF-16BE", "xml")
    m = _XML_DECL.match(head)
    name = encoding_for_label(m.group(2).decode("latin-1")) if m else None
    if name is not None:
        return page_encoding(_ascii_only(name), "xml")
    return PageEncoding("UTF-8", "utf-8", "default", False)


# -- the prescan (WHATWG HTML, "prescan a byte stream to determine its encoding") ---------

_WS = b"\t\n\f\r "
_META = re.compile(rb"<meta[\t\n\f\r /]", re.I)
_TAG = re.compile(rb"</?[a-zA-Z]")


def prescan(data: bytes) -> str | None:
    """The encoding a ``<meta>`` in ``data`` declares, as the browser's prescan finds
    it (comments and other tags' attributes skipped); None when there is none."""
    pos, n = 0, len(data)
    while pos < n:
        if data.startswith(b"<!--", pos):
            end = data.find(b"-->", pos + 2)
            if end < 0:
                return None
            pos = end + 3
        elif _META.match(data, pos):
            pos, name = _meta(data, pos + 6)
            if name is not None:
                return _ascii_only(name)
        elif _TAG.match(data, pos):
            pos += 2 if data[pos + 1] == 0x2F else 1
            while pos < n and data[pos] not in b"\t\n\f\r >":
                pos += 1
            while True:
                pos, attribute = _attribute(data, pos)
                if attribute is None:
                    break
        elif data.startswith((b"<!", b"</", b"<?"), pos):
            end = data.find(b">", pos + 2)
            if end < 0:
                return None
            pos = end + 1
        else:
            pos += 1
    return None


def _meta(data: bytes, pos: int) -> tuple[int, str | None]:
    """The attributes of a ``<meta`` tag from ``pos``: where it ends, and the encoding
    it declares (None: none, or one that does not count)."""
    seen: set[bytes] = set()
    got_pragma = False
    need_pragma: bool | None = None
    charset: str | None = None
    while True:
        pos, attribute = _attribute(data, pos)
        if attribute is None:
            break
        name, value = attribute
        if name in seen:
            continue
        seen.add(name)
        if name == b"http-equiv":
            got_pragma = got_pragma or value == b"content-type"
        elif name == b"content" and charset is None:
            found = _charset_in_content(value)
            named = encoding_for_label(found.decode("latin-1")) if found is not None else None
            if named is not None:
                charset, need_pragma = named, True
        elif name == b"charset":
            charset = encoding_for_label(value.decode("latin-1"))
            need_pragma = False
    if pos >= len(data):  # the tag goes on past what the prescan may look at
        return pos, None
    if need_pragma is None or (need_pragma and not got_pragma):
        return pos, None
    return pos, charset


def _attribute(data: bytes, pos: int) -> tuple[int, tuple[bytes, bytes] | None]:
    """The next attribute of a tag (name and value lower-cased), or None at its end."""
    n = len(data)
    while pos < n and data[pos] in b"\t\n\f\r /":
        pos += 1
    if pos >= n or data[pos] == 0x3E:
        return pos, None
    name = bytearray()
    while True:
        if pos >= n:
            return pos, None
        c = data[pos]
        if c == 0x3D and name:
            pos += 1
            break
        if c in _WS:
            while pos < n and data[pos] in _WS:
                pos += 1
            if pos >= n or data[pos] != 0x3D:
                return pos, (bytes(name).lower(), b"")
            pos += 1
            break
        if c in b"/>":
            return pos, (bytes(name).lower(), b"")
        name.append(c)
        pos += 1
    while pos < n and data[pos] in _WS:
        pos += 1
    if pos >= n:
        return pos, None
    c = data[pos]
    if c in b"\"'":
        end = data.find(bytes([c]), pos + 1)
        if end < 0:
            return n, None
        return end + 1, (bytes(name).lower(), data[pos + 1 : end].lower())
    if c == 0x3E:
        return pos, (bytes(name).lower(), b"")
    end = pos
    while end < n and data[end] not in b"\t\n\f\r >":
        end += 1
    if end >= n:
        return n, None
    return end, (bytes(name).lower(), data[pos:end].lower())


_CHARSET_PARAM = re.compile(rb"charset[\t\n\f\r ]*=[\t\n\f\r ]*", re.I)


def _charset_in_content(value: bytes) -> bytes | None:
    """The charset a meta ``content`` value names (WHATWG "extracting a character
    encoding from a meta element")."""
    pos = 0
    while True:
        start = value.find(b"charset", pos)
        if start < 0:
            return None
        m = _CHARSET_PARAM.match(value, start)
        if m is None:
            pos = start + 7
            continue
        rest = value[m.end() :]
        if rest[:1] in (b'"', b"'"):
            end = rest.find(rest[:1], 1)
            return rest[1:end] if end > 0 else None
        return re.split(rb"[\t\n\f\r ;]", rest, maxsplit=1)[0] or None
