"""Sizes and durations as users write them in alluxio-site.properties.

Sizes follow Alluxio's FormatUtils.parseSpaceSize (the executor's parser): a number with an optional
binary unit right after it, case insensitive (`1GB`, `512mb`, `1.5g`, `1024` bytes). Durations accept
both the Mesos spelling (`5secs`, `2mins`, `1weeks`) and Alluxio's (`5s`, `10min`, `1h`, `7d`); a
bare number is seconds.
"""

from __future__ import annotations

import math
import re

from executor.alluxio_process import parse_bytes

MB = 1024 * 1024

_DURATION_PATTERN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$")
_DURATION_UNITS: dict[str, float] = {
    "": 1.0,
    "ns": 1e-9,
    "us": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "sec": 1.0,
    "secs": 1.0,
    "second": 1.0,
    "seconds": 1.0,
    "m": 60.0,
    "min": 60.0,
    "mins": 60.0,
    "minute": 60.0,
    "minutes": 60.0,
    "h": 3600.0,
    "hr": 3600.0,
    "hrs": 3600.0,
    "hour": 3600.0,
    "hours": 3600.0,
    "d": 86400.0,
    "day": 86400.0,
    "days": 86400.0,
    "w": 604800.0,
    "week": 604800.0,
    "weeks": 604800.0,
}


def parse_size(text: str) -> int:
    """Return the size in bytes; raise ValueError saying what is wrong.

    One parser for the whole project, so the framework accepts exactly the sizes Alluxio accepts
    and computes the same byte counts (``1.5KB`` is 1536, ``4 KB`` is refused, as in Alluxio).
    """
    return parse_bytes(text)


def parse_duration(text: str) -> float:
    """Return the duration in seconds; raise ValueError saying what is wrong."""
    match = _DURATION_PATTERN.match(text)
    if match is None:
        raise ValueError(f"{text!r} is not a duration (expected e.g. 30secs, 5mins, 1weeks, 7d)")
    number, unit = match.groups()
    factor = _DURATION_UNITS.get(unit.lower())
    if factor is None:
        raise ValueError(f"{text!r} has an unknown duration unit {unit!r} (use secs, mins, hrs, days, weeks)")
    return float(number) * factor


def bytes_to_mb_ceil(size: int) -> int:
    """Mesos counts memory in MB; round up so a request never asks for less than needed."""
    return math.ceil(size / MB)


def format_size(size: int) -> str:
    """The shortest exact Alluxio spelling of a byte count (1073741824 -> 1GB)."""
    for unit, factor in (("PB", 1024**5), ("TB", 1024**4), ("GB", 1024**3), ("MB", MB), ("KB", 1024)):
        if size >= factor and size % factor == 0:
            return f"{size // factor}{unit}"
    return f"{size}B"


def format_duration(seconds: float) -> str:
    """The largest exact Mesos spelling of a duration (604800 -> 1weeks, 90 -> 90secs)."""
    for unit, factor in (("weeks", 604800), ("days", 86400), ("hrs", 3600), ("mins", 60)):
        if seconds >= factor and float(seconds / factor).is_integer():
            return f"{int(seconds // factor)}{unit}"
    return f"{seconds:g}secs"
