"""Reading a description of any size in bounded memory.

Only the first ``--analyze-chars`` characters of a description are analysed, so
reading more than ``4 x`` that many bytes (UTF-8 spends at most 4 per character) is
waste, and on a 200 MB input a cost in memory. A raw request keeps its instruction,
skeleton and tag list at its end: for those the last ``TAIL_BYTES`` are kept too, and
the middle is skipped while streaming.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import BinaryIO

TAIL_BYTES = 4 << 20
CHUNK = 1 << 20


@dataclass(frozen=True)
class Bounded:
    data: bytes  # head, or head + tail with the middle left out
    total: int  # bytes in the whole input
    skipped: int  # bytes left out (0: ``data`` is the whole input)


def read_bounded(stream: BinaryIO, head: int, tail: int = 0) -> Bounded:
    """The first ``head`` bytes and the last ``tail`` bytes of ``stream`` (all of it when
    it is no longer than ``head + tail``), reading in chunks."""
    first = bytearray()
    last = bytearray()
    total = 0
    while True:
        chunk = stream.read(CHUNK)
        if not chunk:
            break
        total += len(chunk)
        if len(first) < head:
            take = head - len(first)
            first += chunk[:take]
            chunk = chunk[take:]
        if chunk and tail:
            last += chunk
            if len(last) > 2 * tail:
                del last[: len(last) - tail]
    if len(last) > tail:
        del last[: len(last) - tail]
    return Bounded(bytes(first + last), total, total - len(first) - len(last))


def decode_head(data: bytes) -> str:
    """UTF-8 text of a head cut at an arbitrary byte: an incomplete last character is
    dropped; any other invalid byte raises ``UnicodeDecodeError`` as usual."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start >= len(data) - 3 and exc.reason == "unexpected end of data":
            return data[: exc.start].decode("utf-8")
        raise
