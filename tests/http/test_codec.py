"""Content codings (proxy/http/codec.py), as tables: which codings a header names,
what is offered and chosen, and decoding whatever the chunking, with its errors."""

from __future__ import annotations

import gzip
import zlib

import brotli
import pytest
import zstandard

from proxy.http.codec import (
    DecodeError,
    Decoder,
    Encoder,
    choose_encoding,
    offer_upstream,
    parse_encodings,
)

BODY = b"<!doctype html><p>" + b"consent " * 4000 + b"</p>"


@pytest.mark.parametrize(
    ("header", "codings"),
    [
        ("", []),
        ("gzip", ["gzip"]),
        ("x-gzip", ["gzip"]),
        ("GZip , br", ["gzip", "br"]),  # in the order they were applied
        ("identity", []),
        ("identity, gzip,,", ["gzip"]),
        ("compress", ["compress"]),  # named; the decoder refuses it
    ],
)
def test_parse_encodings(header: str, codings: list[str]) -> None:
    assert parse_encodings(header) == codings


@pytest.mark.parametrize(
    ("accept", "offered", "chosen"),
    [
        (None, "identity", None),
        ("", "identity", None),
        ("gzip", "gzip", "gzip"),
        ("gzip, deflate, br, zstd", "gzip, deflate, br, zstd", "br"),
        ("br;q=0.5, gzip", "gzip, br", "gzip"),  # the client's preference
        ("gzip;q=0, br", "br", "br"),  # q=0: refused
        ("*", "gzip, deflate, br, zstd", "br"),
        ("*;q=0", "identity", None),
        ("br;q=oops, gzip", "gzip", "gzip"),  # an unreadable q refuses
        ("compress", "identity", None),
    ],
)
def test_offer_and_choose(accept: str | None, offered: str, chosen: str | None) -> None:
    assert offer_upstream(accept) == offered
    assert choose_encoding(accept) == chosen


def _raw_deflate(data: bytes) -> bytes:
    c = zlib.compressobj(6, zlib.DEFLATED, -15)
    return c.compress(data) + c.flush()


ENCODE = {
    "gzip": gzip.compress,
    "deflate": zlib.compress,
    "raw-deflate": _raw_deflate,  # sent as "deflate" by some servers
    "br": brotli.compress,
    "zstd": lambda data: zstandard.ZstdCompressor().compress(data),
}


@pytest.mark.parametrize(
    "chain",
    [
        ["gzip"],
        ["deflate"],
        ["raw-deflate"],
        ["br"],
        ["zstd"],
        ["gzip", "br"],  # applied in this order, undone in the other
        [],
    ],
)
@pytest.mark.parametrize("chunk", [1, 7, 4096, 1 << 20])
def test_decoder_undoes_the_chain_whatever_the_chunks(chain: list[str], chunk: int) -> None:
    data = BODY
    for coding in chain:
        data = ENCODE[coding](data)
    codings = ["deflate" if c == "raw-deflate" else c for c in chain]
    decoder = Decoder(codings)
    out = b"".join(decoder.feed(data[i : i + chunk]) for i in range(0, len(data), chunk))
    out += decoder.flush()
    assert out == BODY
    assert decoder.received == len(data) and decoder.total == len(BODY)


@pytest.mark.parametrize(
    ("codings", "data", "message"),
    [
        (["compress"], b"", "Content-Encoding compress is not one of"),
        (["gzip"], b"not gzip at all", "invalid gzip data"),
        (["gzip"], gzip.compress(BODY, mtime=0)[:-12], "gzip body ends before its end marker"),
        (["br"], b"\xff\xff\xff\xff", "br"),
    ],
)
def test_decoder_errors_name_the_coding(codings: list[str], data: bytes, message: str) -> None:
    with pytest.raises(DecodeError, match=message):
        decoder = Decoder(codings)
        decoder.feed(data)
        decoder.flush()


@pytest.mark.parametrize("coding", ["gzip", "br", "zstd"])
def test_decoder_stops_a_bomb(coding: str) -> None:
    size = 50 * 1024 * 1024
    bomb = ENCODE[coding](b"\0" * size)
    decoder = Decoder([coding])
    with pytest.raises(DecodeError, match="a decompression bomb"):
        decoder.feed(bomb)
        decoder.flush()
    assert decoder.total < size / 4  # stopped long before the end


def test_decoder_cap() -> None:
    decoder = Decoder(["gzip"], limit=1000, ratio=None)
    with pytest.raises(DecodeError, match="exceeds the cap of 1000 bytes"):
        decoder.feed(gzip.compress(BODY))
        decoder.flush()


@pytest.mark.parametrize("coding", ["gzip", "br", None])
def test_encoder_output_decodes_piece_by_piece(coding: str | None) -> None:
    """Each piece is flushed: what was sent so far decodes to what was fed so far."""
    encoder = Encoder(coding)
    decoder = Decoder([coding] if coding else [])
    seen = b""
    for i in range(0, len(BODY), 5000):
        seen += decoder.feed(encoder.feed(BODY[i : i + 5000]))
        assert seen == BODY[: i + 5000]
    seen += decoder.feed(encoder.finish()) + decoder.flush()
    assert seen == BODY
