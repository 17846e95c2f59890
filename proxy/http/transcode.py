"""A page's characters between the Content-Encoding decoder and the rewriter.

The rewriter scans bytes of ASCII-compatible encodings. ``PageText`` finds the page's
encoding (proxy/html/charset.py) from its first bytes and then either hands the bytes on
as they are (telling the rewriter the encoding, for what it inserts), or, for an
encoding the scanner cannot read (UTF-16, UTF-32, ISO-2022-JP), decodes them as they
stream, gives the rewriter UTF-8 and encodes its output back, so the visitor's
browser reads the page as it would have read the origin's (a byte order mark stays).

Fail closed: bytes that do not decode, and an unlabelled page that holds ISO-2022-JP
escapes (a browser may guess that encoding, and read markup the scanner cannot
see), raise CharsetError.
"""

from __future__ import annotations

import codecs

from proxy.html.charset import (
    PRESCAN,
    CharsetError,
    PageEncoding,
    bom_undecided,
    determine,
    encoding_for_label,
    from_bom,
)
from proxy.http.hook import BodyRewrite

_ESCAPES = (b"\x1b$", b"\x1b(")  # what switches ISO-2022-JP to another character set


class PageText:
    """``feed``/``close`` like a BodyRewrite: the decoded body in, the rewritten body
    out, in the page's encoding. ``encoding`` is known once the first ``PRESCAN``
    bytes have arrived (sooner with a byte order mark or a charset in the header)."""

    def __init__(self, rewrite: BodyRewrite, header_charset: str | None, xml: bool) -> None:
        self._rewrite = rewrite
        self._label = header_charset
        self._xml = xml
        self._head = b""
        self.encoding: PageEncoding | None = None
        self._guard = False  # watch for ISO-2022-JP escapes (an unlabelled HTML page)
        self._last = b""  # the last byte seen, for an escape split between two chunks
        self._decoder: codecs.IncrementalDecoder | None = None  # transcoded pages only
        self._utf8 = codecs.getincrementaldecoder("utf-8")("strict")
        self._encoder: codecs.IncrementalEncoder | None = None
        self._read = 0  # bytes given to the decoder so far, for error messages

    def feed(self, data: bytes) -> bytes:
        if self.encoding is None:
            self._head += data
            if not self._decidable():
                return b""
            data, self._head = self._head, b""
            self._decide(data)
        return self._through(data)

    def close(self) -> bytes:
        out = b""
        if self.encoding is None:
            data, self._head = self._head, b""
            self._decide(data)
            out = self._through(data)
        if self._decoder is None:
            return out + self._rewrite.close()
        text = self._decode(b"", final=True)
        rest = self._rewrite.feed(text) if text else b""
        return out + self._encode(rest + self._rewrite.close(), final=True)

    def _decidable(self) -> bool:
        head = self._head
        if len(head) >= PRESCAN:
            return True
        if bom_undecided(head) or not head:
            return False
        # A byte order mark or a known label in the header decides: no need to wait.
        return from_bom(head) is not None or encoding_for_label(self._label) is not None

    def _decide(self, head: bytes) -> None:
        encoding = self.encoding = determine(head, self._label, self._xml)
        self._guard = encoding.source == "default" and not self._xml
        if encoding.transcode:
            self._decoder = codecs.getincrementaldecoder(encoding.codec)("strict")
            self._encoder = codecs.getincrementalencoder(encoding.codec)("xmlcharrefreplace")
            self._rewrite.set_format("utf-8", self._xml)
        else:
            self._rewrite.set_format(encoding.codec, self._xml)

    def _through(self, data: bytes) -> bytes:
        if not data:
            return b""
        if self._decoder is None:
            if self._guard:
                self._check_escapes(data)
            return self._rewrite.feed(data)
        text = self._decode(data, final=False)
        return self._encode(self._rewrite.feed(text), final=False) if text else b""

    def _check_escapes(self, data: bytes) -> None:
        joined = self._last + data[:1]
        if any(e in data for e in _ESCAPES) or joined in _ESCAPES:
            raise CharsetError(
                "an HTML page with no charset holds ISO-2022-JP escape sequences (ESC $ or "
                "ESC (): a browser may read it in that encoding; expected a charset in "
                "Content-Type or <meta>"
            )
        self._last = data[-1:]

    def _decode(self, data: bytes, final: bool) -> bytes:
        assert self._decoder is not None and self.encoding is not None
        start, self._read = self._read, self._read + len(data)
        try:
            return self._decoder.decode(data, final).encode("utf-8")
        except UnicodeDecodeError as exc:
            where = "at its end" if final else f"in bytes {start}-{self._read}"
            raise CharsetError(
                f"the page does not decode as {self.encoding.name} (told by its "
                f"{self.encoding.source}): {exc.reason} {where}; expected "
                f"{self.encoding.name} throughout"
            ) from None

    def _encode(self, data: bytes, final: bool) -> bytes:
        assert self._encoder is not None
        encoded: bytes = self._encoder.encode(self._utf8.decode(data, final), final)
        return encoded
