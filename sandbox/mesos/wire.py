"""Wire helpers shared by the stand-in master and agent: JSON, ids, durations, base64.

Kept free of any HTTP framework so the agent side (and tests) can use it directly.
"""

from __future__ import annotations

import binascii
import json
import os
import time
import uuid
from typing import Any

__all__ = [
    "JSON_CONTENT_TYPE",
    "PROTOBUF_CONTENT_TYPE",
    "DurationError",
    "b64decode",
    "b64encode",
    "dumps",
    "format_duration",
    "format_duration_ns",
    "id_value",
    "new_uuid_bytes",
    "new_uuid_string",
    "parse_duration",
    "parse_duration_ns",
    "timestamp",
]

JSON_CONTENT_TYPE = "application/json"
PROTOBUF_CONTENT_TYPE = "application/x-protobuf"

# Durations as Mesos (stout) parses and prints them: "5secs", "1mins", "2.5hrs". The printed
# text must be what stout's operator<< makes, because the agent hands durations to executors in
# environment variables (MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD=5secs) and messages ("Executor did
# not register within 1mins"), and clients parse them back.
_NS = 1
_US = 1000 * _NS
_MS = 1000 * _US
_SECS = 1000 * _MS
_MINS = 60 * _SECS
_HRS = 60 * _MINS
_DAYS = 24 * _HRS
_WEEKS = 7 * _DAYS

_UNITS = {
    "ns": _NS,
    "us": _US,
    "ms": _MS,
    "secs": _SECS,
    "mins": _MINS,
    "hrs": _HRS,
    "days": _DAYS,
    "weeks": _WEEKS,
}


class DurationError(ValueError):
    """The text is not a Mesos duration; the message says why."""


def parse_duration_ns(text: str) -> int:
    """``"1.5secs"`` -> 1500000000. Same grammar and errors as stout's ``Duration::parse``."""
    index = 0
    while index < len(text) and (text[index].isdigit() or text[index] == "."):
        index += 1
    if index == len(text):
        raise DurationError(f"Invalid duration '{text}'")
    number, unit = text[:index], text[index:]
    try:
        value = float(number)
    except ValueError as error:
        raise DurationError(f"Failed to convert '{number}' to number") from error
    factor = _UNITS.get(unit)
    if factor is None:
        raise DurationError(
            f"Unknown duration unit '{unit}'; supported units are 'ns', 'us', 'ms', 'secs', "
            "'mins', 'hrs', 'days', and 'weeks'"
        )
    return int(value * factor)


def parse_duration(text: str) -> float:
    """A Mesos duration in seconds."""
    return parse_duration_ns(text) / _SECS


def _number(value: float) -> str:
    # stout streams doubles with 15 significant digits and no trailing zeros.
    return f"{value:.15g}"


def format_duration_ns(nanos: int) -> str:
    """stout's ``operator<<(Duration)``: the largest unit that still gives a whole number."""
    sign = "-" if nanos < 0 else ""
    ns = abs(nanos)
    buckets = [
        (_US, _NS, "ns", _NS, "ns"),
        (_MS, _US, "us", _NS, "ns"),
        (_SECS, _MS, "ms", _US, "us"),
        (_MINS, _SECS, "secs", _MS, "ms"),
        (_HRS, _MINS, "mins", _SECS, "secs"),
        (_DAYS, _HRS, "hrs", _MINS, "mins"),
        (_WEEKS, _DAYS, "days", _HRS, "hrs"),
    ]
    if ns < _US:
        return f"{sign}{ns}ns"
    for upper, unit, unit_name, smaller, smaller_name in buckets[1:]:
        if ns < upper:
            if ns % unit != 0 and ns % smaller == 0:
                return f"{sign}{_number(ns / smaller)}{smaller_name}"
            return f"{sign}{_number(ns / unit)}{unit_name}"
    if ns % _WEEKS != 0 and ns % _DAYS == 0:
        return f"{sign}{_number(ns / _DAYS)}days"
    return f"{sign}{_number(ns / _WEEKS)}weeks"


def format_duration(seconds: float) -> str:
    return format_duration_ns(round(seconds * _SECS))


def dumps(message: Any) -> bytes:
    """Compact JSON bytes, as Mesos writes them (no spaces)."""
    return json.dumps(message, separators=(",", ":")).encode("utf-8")


def b64encode(data: bytes) -> str:
    return binascii.b2a_base64(data, newline=False).decode("ascii")


def b64decode(text: str) -> bytes:
    """Strict standard base64 (what protobuf JSON uses for ``bytes`` fields)."""
    try:
        # What base64.b64decode(..., validate=True) does, minus two Python-level calls.
        return binascii.a2b_base64(text.encode("ascii"), strict_mode=True)
    except (binascii.Error, UnicodeEncodeError) as error:
        raise ValueError(f"invalid base64: {error}") from error


def new_uuid_bytes() -> bytes:
    """16 random bytes: the form of TaskStatus.uuid (base64 on the wire).

    The bytes of a version 4 UUID, as ``uuid.uuid4().bytes``, without building a UUID object
    (status updates make one each).
    """
    raw = bytearray(os.urandom(16))
    raw[6] = (raw[6] & 0x0F) | 0x40  # version 4
    raw[8] = (raw[8] & 0x3F) | 0x80  # RFC 4122 variant
    return bytes(raw)


def new_uuid_string() -> str:
    """A random UUID in canonical text form (master ids, stream ids)."""
    return str(uuid.uuid4())


def timestamp() -> float:
    """Seconds since the epoch, as TaskStatus.timestamp."""
    return time.time()


def id_value(message: Any) -> str | None:
    """``{"value": "x"}`` -> ``"x"``; anything else -> None."""
    if isinstance(message, dict):
        value = message.get("value")
        if isinstance(value, str):
            return value
    return None
