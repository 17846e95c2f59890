"""Content-Encoding for rewritten bodies: decode what the origin sent, guarded against
decompression bombs, and re-encode for the client (gzip level 1 or brotli quality 4:
cheap enough to stream; see DESIGN.md, performance notes).

A page streams through the rewrite, so its length needs no cap; what the guard bounds
is the work a few received bytes can cause: the decoded body may grow to at most
``MAX_EXPANSION`` times the bytes received so far, plus ``ALLOWANCE`` (HTML compresses
5-15 times; a bomb of zeros, about 1000 times with gzip and more with br or zstd)."""

from __future__ import annotations

import functools
import zlib
from collections.abc import Callable

import brotli
import zstandard

DECODABLE = ("gzip", "deflate", "br", "zstd")
_STEP = 256 * 1024  # most output produced per decompressor call
MAX_EXPANSION = 100
ALLOWANCE = 1024 * 1024


class DecodeError(ValueError):
    """A body that cannot be decoded, or decodes past the cap."""


def parse_encodings(header: str) -> list[str]:
    """Content-Encoding codings in the order they were applied (identity dropped)."""
    codings = [c.strip().lower() for c in header.split(",") if c.strip()]
    return [("gzip" if c == "x-gzip" else c) for c in codings if c != "identity"]


def accepted(header: str | None) -> dict[str, float]:
    """Accept-Encoding as coding → q (q=0 means refused)."""
    result: dict[str, float] = {}
    for part in (header or "").split(","):
        name, *params = (p.strip() for p in part.split(";"))
        if not name:
            continue
        q = 1.0
        for param in params:
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        result[name.lower()] = q
    return result


@functools.lru_cache(maxsize=256)
def offer_upstream(client_header: str | None) -> str:
    """What to offer the origin: codings the client accepts that the proxy decodes,
    so a body that is passed through untouched is one the client can read."""
    acc = accepted(client_header)
    star = acc.get("*", 0.0)
    ours = [c for c in DECODABLE if acc.get(c, star) > 0]
    return ", ".join(ours) if ours else "identity"


@functools.lru_cache(maxsize=256)
def choose_encoding(client_header: str | None) -> str | None:
    """br or gzip for a rewritten body, by the client's preference; None: identity."""
    acc = accepted(client_header)
    star = acc.get("*", 0.0)
    best = max(("br", "gzip"), key=lambda c: (acc.get(c, star), c == "br"))
    return best if acc.get(best, star) > 0 else None


class Decoder:
    """Undo a Content-Encoding chain incrementally. DecodeError when the decoded body
    outgrows ``ratio`` times the bytes received plus ``ALLOWANCE`` (None: no such
    guard), or ``limit`` bytes in all (None: no cap)."""

    def __init__(
        self, codings: list[str], limit: int | None = None, *, ratio: int | None = MAX_EXPANSION
    ) -> None:
        unknown = [c for c in codings if c not in DECODABLE]
        if unknown:
            raise DecodeError(f"Content-Encoding {', '.join(unknown)} is not one of {DECODABLE}")
        self._stages = [_stage(c) for c in reversed(codings)]
        self._limit = limit
        self._ratio = ratio
        self.received = 0
        self.total = 0

    def feed(self, data: bytes) -> bytes:
        return self._run(data, False)

    def flush(self) -> bytes:
        return self._run(b"", True)

    def _cap(self) -> int:
        caps = [] if self._limit is None else [self._limit]
        if self._ratio is not None:
            caps.append(ALLOWANCE + self._ratio * self.received)
        return min(caps) if caps else 1 << 62

    def _run(self, data: bytes, final: bool) -> bytes:
        self.received += len(data)
        if not self._stages and self._limit is None:  # nothing to decode or to cap
            self.total += len(data)
            return data
        cap = self._cap()
        room = cap - self.total
        for stage in self._stages:
            data = stage(data, final, room)
            if len(data) > room:
                break
        self.total += len(data)
        if self.total > cap:
            if self._limit is not None and cap == self._limit:
                raise DecodeError(f"decoded body exceeds the cap of {self._limit} bytes")
            raise DecodeError(
                f"decoded body exceeds {self._ratio} times the {self.received} bytes "
                f"received plus {ALLOWANCE}: a decompression bomb"
            )
        return data


# A stage takes input, whether it is the last, and how much output is allowed; it may
# stop early (returning more than allowed) once the allowance is exceeded.
Stage = Callable[[bytes, bool, int], bytes]


def _stage(coding: str) -> Stage:
    if coding == "br":
        return _brotli()
    if coding == "zstd":
        return _zstd()
    return _zlib(coding)


def _zlib(coding: str) -> Stage:
    wbits = 31 if coding == "gzip" else 15
    state: dict[str, zlib._Decompress] = {}

    def run(data: bytes, final: bool, room: int) -> bytes:
        d = state.get("d")
        if d is None:
            if not data and not final:
                return b""
            # "deflate" is meant to be zlib-wrapped, but raw deflate is common too.
            raw = coding == "deflate" and bool(data[:1]) and (data[0] & 0x0F) != 8
            d = state["d"] = zlib.decompressobj(-15 if raw else wbits)
        out: list[bytes] = []
        size = 0
        try:
            piece = d.decompress(data, _STEP)
            while True:
                out.append(piece)
                size += len(piece)
                if size > room or (not d.unconsumed_tail and len(piece) < _STEP):
                    break
                piece = d.decompress(d.unconsumed_tail, _STEP)
            if final and size <= room:
                out.append(d.flush())
                if not d.eof:
                    raise DecodeError(f"{coding} body ends before its end marker")
        except zlib.error as exc:
            raise DecodeError(f"invalid {coding} data: {exc}") from None
        return b"".join(out)

    return run


def _brotli() -> Stage:
    d = brotli.Decompressor()

    def run(data: bytes, final: bool, room: int) -> bytes:
        out: list[bytes] = []
        size = 0
        try:
            piece = d.process(data, output_buffer_limit=_STEP)
            while True:
                out.append(piece)
                size += len(piece)
                if size > room or d.can_accept_more_data():
                    break
                piece = d.process(b"", output_buffer_limit=_STEP)
        except brotli.error as exc:
            raise DecodeError(f"invalid br data: {exc}") from None
        if final and size <= room and not d.is_finished():
            raise DecodeError("br body ends before its end marker")
        return b"".join(out)

    return run


class _ZstdFrames:
    """One decompressor per frame: only then does it say whether its frame ended (a
    body may hold several frames, one after the other)."""

    def __init__(self) -> None:
        self.d = zstandard.ZstdDecompressor().decompressobj()
        self.fed = False  # bytes of an unfinished frame were given

    def __call__(self, data: bytes, final: bool, room: int) -> bytes:
        out: list[bytes] = []
        size = 0
        i = 0
        try:
            # Small slices bound what one call can expand to (a block is at most 128 KB).
            while i < len(data) and size <= room:
                piece = self.d.decompress(data[i : i + 64])
                self.fed = True
                i += 64
                out.append(piece)
                size += len(piece)
                if self.d.eof:  # the next frame, if any, starts in what this one left
                    data, i = self.d.unused_data + data[i:], 0
                    self.d = zstandard.ZstdDecompressor().decompressobj()
                    self.fed = False
        except zstandard.ZstdError as exc:
            raise DecodeError(f"invalid zstd data: {exc}") from None
        if final and size <= room and self.fed:
            raise DecodeError("zstd body ends before its end marker")
        return b"".join(out)


def _zstd() -> Stage:
    return _ZstdFrames()


class Encoder:
    """Re-encode a rewritten body as it streams (each piece flushed to the client)."""

    def __init__(self, coding: str | None) -> None:
        self.coding = coding
        self._gzip = zlib.compressobj(1, zlib.DEFLATED, 31) if coding == "gzip" else None
        self._br = brotli.Compressor(quality=4) if coding == "br" else None

    def feed(self, data: bytes) -> bytes:
        if not data:
            return b""
        if self._gzip is not None:
            return self._gzip.compress(data) + self._gzip.flush(zlib.Z_SYNC_FLUSH)
        if self._br is not None:
            out: bytes = self._br.process(data) + self._br.flush()
            return out
        return data

    def finish(self) -> bytes:
        if self._gzip is not None:
            return self._gzip.flush(zlib.Z_FINISH)
        if self._br is not None:
            last: bytes = self._br.finish()
            return last
        return b""
