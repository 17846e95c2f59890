"""Bit-level reading of the IAB encodings (TC string, GPP): 6-bit base64 characters,
fixed-width integers, Fibonacci-coded integers and ranges.

The IAB strings are not base64 byte streams: each character is six bits and a string
of n characters is 6n bits (GPP's header ``DBABM`` is 30 bits), so they are decoded
character by character rather than with ``base64``. Every read is bounds-checked and a
string past its end raises ReadError naming the field and the bit position.
"""

from __future__ import annotations

import re
from typing import NoReturn

from proxy.consent.readers.base import ReadError

_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
# Six '0'/'1' characters per base64url character. '+' and '/' (standard base64, which
# GPP's specification tables show) read as '-' and '_'.
_SIXBITS = {ord(c): format(i, "06b") for i, c in enumerate(_ALPHABET)}
_SIXBITS[ord("+")] = _SIXBITS[ord("-")]
_SIXBITS[ord("/")] = _SIXBITS[ord("_")]
_ALLOWED = frozenset(_ALPHABET + "+/")
_VALID = re.compile("[A-Za-z0-9_+/-]+")

# Fibonacci numbers 1, 2, 3, 5, ... as the code's bit weights. A code word longer than
# this is refused: the numbers these strings carry (section ids, offsets) are small, and
# a long code word is only a way to make the decoder work.
MAX_FIBONACCI_BITS = 24
_FIB = [1, 2]
while len(_FIB) < MAX_FIBONACCI_BITS:
    _FIB.append(_FIB[-1] + _FIB[-2])


def decode_bits(text: str, where: str) -> str:
    """``text`` (base64url characters, '=' padding tolerated) as a string of '0'/'1'."""
    body = text.rstrip("=")
    if not body:
        raise ReadError(f"{where}: empty")
    if not _VALID.fullmatch(body):
        index = next(i for i, char in enumerate(body) if char not in _ALLOWED)
        raise ReadError(f"{where}: character {index} is not base64url")
    return body.translate(_SIXBITS)


class BitReader:
    """Reads fields left to right from a '0'/'1' string (big-endian, as the IAB specs)."""

    def __init__(self, bits: str, where: str) -> None:
        self.bits = bits
        self.size = len(bits)
        self.pos = 0
        self.where = where

    @property
    def left(self) -> int:
        return self.size - self.pos

    def _truncated(self, width: int, field: str) -> NoReturn:
        raise ReadError(
            f"{self.where}: {field} needs {width} bits at bit {self.pos}, "
            f"{self.left} left (truncated)"
        )

    def uint(self, width: int, field: str) -> int:
        start = self.pos
        end = start + width
        if end > self.size:
            self._truncated(width, field)
        self.pos = end
        return int(self.bits[start:end], 2)

    def flag(self, field: str) -> bool:
        return self.uint(1, field) == 1

    def chunk(self, width: int, field: str) -> str:
        """The next ``width`` bits as they are (a bitfield)."""
        start = self.pos
        end = start + width
        if end > self.size:
            self._truncated(width, field)
        self.pos = end
        return self.bits[start:end]

    def letters(self, count: int, field: str) -> str:
        """``count`` letters of six bits each, 0 = 'A' (language and country codes)."""
        out = []
        for _ in range(count):
            value = self.uint(6, field)
            if value > 25:
                raise ReadError(f"{self.where}: {field} has a letter code {value}, expected 0-25")
            out.append(chr(ord("A") + value))
        return "".join(out)

    def fibonacci(self, field: str) -> int:
        """A Fibonacci-coded integer: weights 1, 2, 3, 5, ... ended by two 1 bits."""
        total = 0
        previous = False
        for index in range(MAX_FIBONACCI_BITS + 1):
            bit = self.flag(field)
            if bit and previous:
                return total
            if bit:
                if index >= MAX_FIBONACCI_BITS:
                    break
                total += _FIB[index]
            previous = bit
        raise ReadError(
            f"{self.where}: {field} is a Fibonacci code longer than {MAX_FIBONACCI_BITS} bits"
        )

    def fibonacci_range(self, field: str, limit: int) -> list[int]:
        """GPP's Range(Fibonacci): a 12-bit count, then entries that are a single id or
        a group, as offsets (at least 1) from the last id seen, so ids ascend. They must
        stay within ``limit`` (no list of a billion ids)."""
        count = self.uint(12, f"{field} count")
        ids: list[int] = []
        last = 0
        for _ in range(count):
            is_group = self.flag(field)
            start = last + self.fibonacci(field)
            end = start + self.fibonacci(field) if is_group else start
            if end > limit:
                raise ReadError(f"{self.where}: {field} has id {end}, expected at most {limit}")
            ids.extend(range(start, end + 1))
            last = end
        return ids
