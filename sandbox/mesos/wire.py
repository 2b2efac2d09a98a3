"""Wire helpers shared by the stand-in master and agent: JSON, ids, durations, base64.

Kept free of any HTTP framework so the agent side (and tests) can use it directly.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
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
    "id_value",
    "new_uuid_bytes",
    "new_uuid_string",
    "parse_duration",
    "timestamp",
]

JSON_CONTENT_TYPE = "application/json"
PROTOBUF_CONTENT_TYPE = "application/x-protobuf"

# Units accepted by stout's Duration::parse, in seconds.
_UNITS: dict[str, float] = {
    "ns": 1e-9,
    "us": 1e-6,
    "ms": 1e-3,
    "secs": 1.0,
    "mins": 60.0,
    "hrs": 3600.0,
    "days": 86400.0,
    "weeks": 604800.0,
}
_DURATION = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*(ns|us|ms|secs|mins|hrs|days|weeks)\s*$")


class DurationError(ValueError):
    """A duration string is not of the form ``<number><unit>`` (e.g. ``5secs``)."""


def parse_duration(text: str) -> float:
    """``"5secs"`` -> 5.0, ``"100ms"`` -> 0.1, ``"2weeks"`` -> 1209600.0 (seconds)."""
    match = _DURATION.match(text)
    if not match:
        raise DurationError(
            f"invalid duration {text!r}: expected a number followed by one of "
            f"{', '.join(_UNITS)} (e.g. 5secs)"
        )
    return float(match.group(1)) * _UNITS[match.group(2)]


def format_duration(seconds: float) -> str:
    """Seconds -> the largest stout unit that keeps the value >= 1 (``15secs``, ``1mins``)."""
    if seconds == 0:
        return "0ns"
    for unit in ("weeks", "days", "hrs", "mins", "secs", "ms", "us", "ns"):
        value = seconds / _UNITS[unit]
        if abs(value) >= 1:
            return f"{value:g}{unit}"
    return f"{seconds / _UNITS['ns']:g}ns"


def dumps(message: Any) -> bytes:
    """Compact JSON bytes, as Mesos writes them (no spaces)."""
    return json.dumps(message, separators=(",", ":")).encode("utf-8")


def b64encode(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def b64decode(text: str) -> bytes:
    """Strict standard base64 (what protobuf JSON uses for ``bytes`` fields)."""
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError) as error:
        raise ValueError(f"invalid base64: {error}") from error


def new_uuid_bytes() -> bytes:
    """16 random bytes: the form of TaskStatus.uuid (base64 on the wire)."""
    return uuid.uuid4().bytes


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
