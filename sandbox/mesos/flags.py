"""Mesos-style command-line flags: ``--name=value``, ``--name value``, ``--name``/``--no-name``.

Like stout's flags, every flag can also come from the environment as ``MESOS_<NAME>``
(command line wins), and a value of ``file:///path`` is read from that file for flags whose
``from_file`` is set (Mesos does this for --resources, --attributes, --credentials, ...).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sandbox.mesos.wire import DurationError, parse_duration

__all__ = ["Flag", "FlagError", "parse_flags", "usage"]


class FlagError(ValueError):
    """Bad command line; the message names the flag and what is wrong."""


def _parse_bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no"):
        return False
    raise ValueError(f"expected true or false, got {text!r}")


def _parse_int(text: str) -> int:
    return int(text.strip())


def _parse_float(text: str) -> float:
    return float(text.strip())


def _parse_str(text: str) -> str:
    return text


_PARSERS: dict[str, Callable[[str], Any]] = {
    "bool": _parse_bool,
    "int": _parse_int,
    "float": _parse_float,
    "duration": parse_duration,
    "str": _parse_str,
}


@dataclass(frozen=True)
class Flag:
    name: str
    kind: str  # bool | int | float | duration | str
    default: Any
    help: str
    from_file: bool = False


def usage(program: str, flags: Sequence[Flag]) -> str:
    lines = [f"usage: {program} [--flag=value ...]", ""]
    for flag in flags:
        default = "" if flag.default is None else f" (default: {flag.default})"
        lines.append(f"  --{flag.name}  {flag.help}{default}")
    return "\n".join(lines)


def parse_flags(
    argv: Sequence[str], flags: Sequence[Flag], environ: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """Return ``{name: value}`` for every declared flag (defaults filled in)."""
    known = {f.name: f for f in flags}
    raw: dict[str, str] = {}
    env = os.environ if environ is None else environ
    for flag in flags:
        env_value = env.get(f"MESOS_{flag.name.upper()}")
        if env_value is not None:
            raw[flag.name] = env_value

    index = 0
    while index < len(argv):
        arg = argv[index]
        index += 1
        if not arg.startswith("--"):
            raise FlagError(f"unexpected argument {arg!r}: flags look like --name=value")
        body = arg[2:]
        name, has_value, value = body.partition("=")
        name = name.replace("-", "_")
        if name not in known and name.startswith("no_") and name[3:] in known and not has_value:
            if known[name[3:]].kind != "bool":
                raise FlagError(f"flag '--{name[3:]}' is not a boolean, '--{body}' is invalid")
            raw[name[3:]] = "false"
            continue
        if name not in known:
            raise FlagError(f"Failed to load unknown flag '{name}'")
        flag = known[name]
        if not has_value:
            if flag.kind == "bool":
                value = "true"
            elif index < len(argv):
                value = argv[index]
                index += 1
            else:
                raise FlagError(f"flag '--{name}' needs a value")
        raw[name] = value

    values: dict[str, Any] = {}
    for flag in flags:
        if flag.name not in raw:
            values[flag.name] = flag.default
            continue
        text = raw[flag.name]
        if flag.from_file and text.startswith("file://"):
            path = text[len("file://") :]
            try:
                with open(path, encoding="utf-8") as handle:
                    text = handle.read().strip()
            except OSError as error:
                raise FlagError(f"flag '--{flag.name}': cannot read {path}: {error.strerror}") from error
        try:
            values[flag.name] = _PARSERS[flag.kind](text)
        except (ValueError, DurationError) as error:
            raise FlagError(f"Failed to load flag '{flag.name}': {error}") from error
    return values
