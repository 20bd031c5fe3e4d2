"""HTTP helpers the apps share: single byte ranges over a file, for audio players that seek."""

from __future__ import annotations

import re
from collections.abc import Iterator


class RangeNotSatisfiable(Exception):
    pass


_RANGE = re.compile(r"^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$", re.IGNORECASE)


def byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The single byte range (first and last, inclusive) a `Range` header asks of `size` bytes; None for all of it.

    A header in another unit, with several ranges or malformed is ignored, as
    RFC 9110 allows: the whole file is the answer. A range that starts past the
    end raises RangeNotSatisfiable.
    """
    if not header:
        return None
    match = _RANGE.match(header)
    if match is None:
        return None
    first_text, last_text = match.groups()
    if not first_text and not last_text:
        return None
    if not first_text:
        suffix = int(last_text)
        if suffix == 0 or size == 0:
            raise RangeNotSatisfiable
        return max(size - suffix, 0), size - 1
    first = int(first_text)
    if last_text and int(last_text) < first:
        return None
    if first >= size:
        raise RangeNotSatisfiable
    return first, min(int(last_text), size - 1) if last_text else size - 1


class FileSlice:
    """`length` bytes of `file` from `first`, in chunks; closing it closes the file, streamed or not."""

    chunk_size = 64 * 1024

    def __init__(self, file, first: int, length: int) -> None:
        self.file, self.first, self.length = file, first, length

    def __iter__(self) -> Iterator[bytes]:
        self.file.seek(self.first)
        remaining = self.length
        while remaining > 0:
            chunk = self.file.read(min(self.chunk_size, remaining))
            if not chunk:
                return
            remaining -= len(chunk)
            yield chunk

    def close(self) -> None:
        self.file.close()
