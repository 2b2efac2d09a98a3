"""Mesos command-line flags, loaded like stout's ``FlagsBase::load("MESOS_", argc, argv)``.

One parser for the stand-in master and agent; each declares its flags as a tuple of
:class:`Flag`. Semantics follow stout (3rdparty/stout/include/stout/flags/flags.hpp):

* ``--name=value``; booleans also as ``--name`` / ``--no-name``; names are case-insensitive;
* every declared flag may also come from the environment as ``MESOS_<NAME>``; unknown ``MESOS_*``
  variables are ignored; a flag given on the command line wins over the environment
  (stout inserts the environment values into the command-line map, which never overwrites);
* an unknown command-line flag, a repeated one, or a bad value is an error naming the flag, with
  stout's message text;
* a flag declared ``from_file`` reads its value from ``file:///path`` (Mesos does this for
  --credentials and similar flags).

One convenience beyond stout: ``--name value`` (space separated) is accepted for non-boolean
flags, because the repository's tooling and docs start the master and agent that way.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sandbox.mesos.wire import DurationError, format_duration, parse_duration

__all__ = ["ENV_PREFIX", "Flag", "FlagError", "format_flag_value", "load_given", "parse_flags", "usage"]

ENV_PREFIX = "MESOS_"


class FlagError(ValueError):
    """The command line or environment does not give a usable configuration."""


@dataclass(frozen=True)
class Flag:
    name: str
    kind: str  # "str" | "int" | "bool" | "duration" | "json_object"
    default: Any
    help: str
    from_file: bool = False
    hidden: bool = False
    choices: tuple[str, ...] = ()


def _parse_bool(value: str) -> bool:
    if value in ("true", "1"):
        return True
    if value in ("false", "0"):
        return False
    raise FlagError("Expecting a boolean (e.g., true or false)")


def _parse_int(value: str) -> int:
    try:
        return int(value)
    except ValueError as error:
        raise FlagError(f"Failed to convert '{value}' to number") from error


def _parse_json_object(value: str) -> dict[str, str]:
    try:
        document = json.loads(value)
    except ValueError as error:
        raise FlagError(f"Failed to parse JSON: {error}") from error
    if not isinstance(document, dict):
        raise FlagError("Expecting a JSON object")
    for key, item in document.items():
        if not isinstance(item, str):
            raise FlagError(f"Value of key '{key}' is not a string")
    return document


def _parse_duration(value: str) -> float:
    try:
        return parse_duration(value)
    except DurationError as error:
        raise FlagError(str(error)) from error


_CONVERTERS: dict[str, Callable[[str], Any]] = {
    "str": str,
    "int": _parse_int,
    "bool": _parse_bool,
    "duration": _parse_duration,
    "json_object": _parse_json_object,
}


def format_flag_value(flag: Flag, value: Any) -> str:
    """A loaded value as Mesos prints it in /state's "flags" and in usage defaults."""
    if flag.kind == "bool":
        return "true" if value else "false"
    if flag.kind == "duration":
        return format_duration(value)
    if flag.kind == "json_object":
        return json.dumps(value)
    return str(value)


def usage(program: str, flags: Sequence[Flag], message: str | None = None) -> str:
    """stout's ``FlagsBase::usage``: the message, then every visible flag with its help."""
    lines: list[str] = []
    if message:
        lines += [message, ""]
    lines += [f"Usage: {program} [options]", ""]
    visible = [flag for flag in flags if not flag.hidden]
    column = {
        flag.name: (f"  --[no-]{flag.name}" if flag.kind == "bool" else f"  --{flag.name}=VALUE")
        for flag in visible
    }
    width = max((len(c) for c in column.values()), default=0)
    for flag in visible:
        shown = flag.default is not None and flag.default != ""
        default = f" (default: {format_flag_value(flag, flag.default)})" if shown else ""
        lines.append(column[flag.name].ljust(width + 5) + flag.help + default)
    return "\n".join(lines)


def _split_command_line(argv: Sequence[str], known: Mapping[str, Flag]) -> dict[str, str | None]:
    values: dict[str, str | None] = {}
    index = 0
    while index < len(argv):
        arg = argv[index].strip()
        index += 1
        if arg == "--":
            break
        if not arg.startswith("--"):
            continue
        name, eq, value = arg[2:].partition("=")
        name = name.lower()
        parsed: str | None = value if eq else None
        base = name[3:] if name.startswith("no-") else name
        flag = known.get(base)
        wants_value = flag is not None and flag.kind != "bool" and not name.startswith("no-")
        if parsed is None and wants_value and index < len(argv) and not argv[index].startswith("--"):
            parsed = argv[index]
            index += 1
        if name in values or (name.startswith("no-") and name[3:] in values):
            raise FlagError(f"Duplicate flag '{name}' on command line")
        values[name] = parsed
    return values


def _from_environment(environ: Mapping[str, str], known: Mapping[str, Flag]) -> dict[str, str | None]:
    values: dict[str, str | None] = {}
    for key, value in environ.items():
        if not key.startswith(ENV_PREFIX):
            continue
        name = key[len(ENV_PREFIX) :].lower()
        base = name[3:] if name.startswith("no-") else name
        if base in known:
            values[name] = value
    return values


def _read_value_file(flag: Flag, text: str) -> str:
    path = text[len("file://") :]
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read().strip()
    except OSError as error:
        problem = f"Failed to read '{path}': {error.strerror}"
        raise FlagError(f"Failed to load flag '{flag.name}': {problem}") from error


def _flag_text(flag: Flag, name: str, value: str | None) -> str:
    """The text stout hands to the flag's loader, after its rules for ``--name``/``--no-name``."""
    negated = name.startswith("no-")
    if flag.kind != "bool":
        if negated:
            raise FlagError(f"Failed to load non-boolean flag '{flag.name}' via '{name}'")
        if value is None:
            raise FlagError(f"Failed to load non-boolean flag '{flag.name}': Missing value")
        return value
    if value is None or value == "":
        return "false" if negated else "true"
    if negated:
        raise FlagError(f"Failed to load boolean flag '{flag.name}' via '{name}' with value '{value}'")
    return value


def load_given(
    argv: Sequence[str], flags: Sequence[Flag], environ: Mapping[str, str] | None = None
) -> tuple[dict[str, Any], dict[str, str]]:
    """The flags that were given, from ``argv`` (no program name) over ``MESOS_*`` variables.

    Returns ``(values, texts)``: the converted value and the given text of each given flag;
    flags that were not given are in neither (see :func:`parse_flags` for defaults).
    """
    known = {flag.name: flag for flag in flags}
    environ = os.environ if environ is None else environ
    values = _split_command_line(argv, known)
    for name, value in _from_environment(environ, known).items():
        values.setdefault(name, value)

    loaded: dict[str, Any] = {}
    texts: dict[str, str] = {}
    for name, value in sorted(values.items()):
        negated = name.startswith("no-")
        flag_name = name[3:] if negated else name
        flag = known.get(flag_name)
        if flag is None:
            via = f" via '{name}'" if negated else ""
            raise FlagError(f"Failed to load unknown flag '{flag_name}'{via}")
        if flag_name in loaded:
            raise FlagError(f"Flag is already loaded via name '{flag_name}'")
        text = _flag_text(flag, name, value)
        if flag.from_file and text.startswith("file://"):
            text = _read_value_file(flag, text)
        try:
            loaded[flag_name] = _CONVERTERS[flag.kind](text)
        except FlagError as error:
            raise FlagError(
                f"Failed to load flag '{flag_name}': Failed to load value '{text}': {error}"
            ) from error
        if flag.choices and loaded[flag_name] not in flag.choices:
            raise FlagError(
                f"Invalid value '{text}' for --{flag_name}: expected one of {', '.join(flag.choices)}"
            )
        texts[flag_name] = text
    return loaded, texts


def parse_flags(
    argv: Sequence[str], flags: Sequence[Flag], environ: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """``{name: value}`` for every declared flag, defaults filled in for those not given."""
    given, _ = load_given(argv, flags, environ)
    return {flag.name: given.get(flag.name, flag.default) for flag in flags}
