"""RecordIO framing used by the Mesos v1 streaming APIs: ``<decimal length>\\n<bytes>``.

Records carry no trailing newline and chunk boundaries are arbitrary, so a reader must
buffer: one chunk may hold several records, and one record may span several chunks.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["RecordIODecoder", "RecordIOError", "encode", "encode_json"]

_MAX_HEADER_DIGITS = 20


class RecordIOError(ValueError):
    """The byte stream is not valid RecordIO (bad length header)."""


def encode(record: bytes) -> bytes:
    """Frame one record: ``b'20\\n{"type":"HEARTBEAT"}'``."""
    return b"%d\n%s" % (len(record), record)


def encode_json(message: Any) -> bytes:
    """Frame one JSON message, serialized compactly as Mesos does."""
    return encode(json.dumps(message, separators=(",", ":")).encode("utf-8"))


class RecordIODecoder:
    """Incremental decoder: feed it chunks as they arrive, get complete records back."""

    def __init__(self, max_record_size: int = 64 * 1024 * 1024) -> None:
        self._buffer = bytearray()
        self._max = max_record_size

    def feed(self, chunk: bytes) -> list[bytes]:
        self._buffer.extend(chunk)
        records: list[bytes] = []
        while True:
            newline = self._buffer.find(b"\n", 0, _MAX_HEADER_DIGITS + 1)
            if newline < 0:
                if len(self._buffer) > _MAX_HEADER_DIGITS:
                    raise RecordIOError(f"record length header too long: {bytes(self._buffer[:24])!r}")
                return records
            header = bytes(self._buffer[:newline])
            if not header.isdigit():
                raise RecordIOError(f"invalid record length header {header!r}")
            length = int(header)
            if length > self._max:
                raise RecordIOError(f"record of {length} bytes exceeds the {self._max} byte limit")
            end = newline + 1 + length
            if len(self._buffer) < end:
                return records
            records.append(bytes(self._buffer[newline + 1 : end]))
            del self._buffer[:end]

    @property
    def pending(self) -> int:
        """Bytes buffered that do not yet form a complete record."""
        return len(self._buffer)
