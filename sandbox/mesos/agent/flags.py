"""The agent's flags, loaded like Mesos' stout ``FlagsBase::load("MESOS_", argc, argv)``.

Semantics copied from stout (3rdparty/stout/include/stout/flags/flags.hpp):

* ``--name=value``; booleans also as ``--name`` / ``--no-name``; names are case-insensitive;
* every known flag may also come from the environment as ``MESOS_<NAME>``; unknown ``MESOS_*``
  variables are ignored; a flag given on the command line wins over the environment
  (stout inserts the environment values into the command-line map, which never overwrites);
* an unknown command-line flag, a repeated one, or a bad value is an error naming the flag.

One convenience beyond stout: ``--name value`` (space separated) is accepted for non-boolean
flags, because the repository's tooling and docs start the agent that way.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sandbox.mesos.agent.durations import DurationError, format_duration, parse_duration

ENV_PREFIX = "MESOS_"


class FlagError(ValueError):
    """The command line or environment does not give a usable configuration."""


@dataclass(frozen=True)
class FlagSpec:
    name: str
    help: str
    kind: str  # "string" | "int" | "bool" | "duration" | "json_object"
    default: Any = None
    hidden: bool = False
    choices: tuple[str, ...] = ()


_SPECS: tuple[FlagSpec, ...] = (
    FlagSpec("master", "How to reach the master: host:port (zk:// is not supported here).", "string"),
    FlagSpec("ip", "IP address to listen on (default: the address of this host's name).", "string"),
    FlagSpec("port", "Port to listen on.", "int", 5051),
    FlagSpec("hostname", "Hostname the agent reports to the master.", "string"),
    FlagSpec(
        "hostname_lookup",
        "Whether to look up the hostname of the IP when --hostname is not given.",
        "bool",
        True,
    ),
    FlagSpec("work_dir", "Where to place framework work directories and checkpoints.", "string"),
    FlagSpec(
        "runtime_dir",
        "Where to keep runtime state of containers (default: <work_dir>/run).",
        "string",
    ),
    FlagSpec(
        "resources",
        "Total consumable resources: JSON array, file:///path, or name(role):value;...",
        "string",
    ),
    FlagSpec("attributes", "Attributes of this agent: key:value;key2:value2", "string"),
    FlagSpec("default_role", "Role for resources given without a role.", "string", "*"),
    FlagSpec(
        "reconfiguration_policy",
        "Which agent info changes a restart may make: equal or additive.",
        "string",
        "equal",
        choices=("equal", "additive"),
    ),
    FlagSpec(
        "executor_registration_timeout",
        "How long an executor has to register before it is killed.",
        "duration",
        60.0,
    ),
    FlagSpec(
        "executor_reregistration_timeout",
        "How long recovered executors have to reconnect after an agent restart.",
        "duration",
        2.0,
    ),
    FlagSpec(
        "executor_shutdown_grace_period",
        "Time between SHUTDOWN to an executor and killing its processes.",
        "duration",
        5.0,
    ),
    FlagSpec(
        "recovery_timeout",
        "How long checkpointing executors retry reconnecting (MESOS_RECOVERY_TIMEOUT).",
        "duration",
        900.0,
    ),
    FlagSpec(
        "registration_backoff_factor",
        "Initial backoff between registration attempts with the master.",
        "duration",
        1.0,
    ),
    FlagSpec(
        "switch_user",
        "Run executors as the task's/framework's user (requires root).",
        "bool",
        True,
    ),
    FlagSpec(
        "http_command_executor",
        "Value of MESOS_HTTP_COMMAND_EXECUTOR handed to command executors.",
        "bool",
        False,
    ),
    FlagSpec(
        "executor_environment_variables",
        "JSON object of environment variables for executors instead of the agent's own.",
        "json_object",
    ),
    FlagSpec(
        "fetcher_cache_dir",
        "Parent directory of the per-user fetcher caches (default: <work_dir>/fetch).",
        "string",
    ),
    FlagSpec("help", "Print this help and exit.", "bool", False),
    # Not a Mesos flag: the base interval of status update retries (Mesos: a 10secs constant),
    # so tests can watch retries without waiting minutes.
    FlagSpec(
        "status_update_retry_interval_min",
        "Base interval of status update retries.",
        "duration",
        10.0,
        hidden=True,
    ),
)

SPECS: dict[str, FlagSpec] = {spec.name: spec for spec in _SPECS}


@dataclass
class AgentFlags:
    master: str
    work_dir: str
    ip: str | None = None
    port: int = 5051
    hostname: str | None = None
    hostname_lookup: bool = True
    runtime_dir: str = ""
    resources: str | None = None
    attributes: str | None = None
    default_role: str = "*"
    reconfiguration_policy: str = "equal"
    executor_registration_timeout: float = 60.0
    executor_reregistration_timeout: float = 2.0
    executor_shutdown_grace_period: float = 5.0
    recovery_timeout: float = 900.0
    registration_backoff_factor: float = 1.0
    switch_user: bool = True
    http_command_executor: bool = False
    executor_environment_variables: dict[str, str] | None = None
    fetcher_cache_dir: str = ""
    help: bool = False
    status_update_retry_interval_min: float = 10.0
    given: dict[str, str] = field(default_factory=dict)

    def as_strings(self) -> dict[str, str]:
        """Every flag with a value, as /state's "flags" shows them."""
        out: dict[str, str] = {}
        for spec in _SPECS:
            if spec.hidden or spec.name == "help":
                continue
            value = getattr(self, spec.name)
            if value is None or value == "":
                continue
            if spec.kind == "bool":
                out[spec.name] = "true" if value else "false"
            elif spec.kind == "duration":
                out[spec.name] = format_duration(value)
            elif spec.kind == "json_object":
                out[spec.name] = json.dumps(value)
            else:
                out[spec.name] = str(value)
        return out


def usage(message: str | None = None, program: str = "mesos-agent") -> str:
    """stout's ``FlagsBase::usage``: the message, then every (visible) flag with its help."""
    lines: list[str] = []
    if message:
        lines += [message, ""]
    lines += [f"Usage: {program} [options]", ""]
    column = {
        s.name: (f"  --[no-]{s.name}" if s.kind == "bool" else f"  --{s.name}=VALUE")
        for s in _SPECS
        if not s.hidden
    }
    width = max(len(c) for c in column.values())
    for spec in _SPECS:
        if spec.hidden:
            continue
        lines.append(column[spec.name].ljust(width + 5) + spec.help)
    return "\n".join(lines)


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


def _duration(value: str) -> float:
    try:
        return parse_duration(value)
    except DurationError as error:
        raise FlagError(str(error)) from error


_CONVERTERS: dict[str, Callable[[str], Any]] = {
    "string": str,
    "int": _parse_int,
    "bool": _parse_bool,
    "duration": _duration,
    "json_object": _parse_json_object,
}


def _split_command_line(argv: Sequence[str]) -> dict[str, str | None]:
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
        spec = SPECS.get(base)
        wants_value = spec is not None and spec.kind != "bool" and not name.startswith("no-")
        if parsed is None and wants_value and index < len(argv) and not argv[index].startswith("--"):
            parsed = argv[index]
            index += 1
        if name in values or (name.startswith("no-") and name[3:] in values):
            raise FlagError(f"Duplicate flag '{name}' on command line")
        values[name] = parsed
    return values


def _from_environment(environ: Mapping[str, str]) -> dict[str, str | None]:
    values: dict[str, str | None] = {}
    for key, value in environ.items():
        if not key.startswith(ENV_PREFIX):
            continue
        name = key[len(ENV_PREFIX) :].lower()
        base = name[3:] if name.startswith("no-") else name
        if base in SPECS:
            values[name] = value
    return values


def load_flags(argv: Sequence[str], environ: Mapping[str, str] | None = None) -> AgentFlags:
    """Flags from ``argv`` (without the program name) over ``MESOS_*`` environment variables."""
    environ = os.environ if environ is None else environ
    values = _split_command_line(argv)
    for name, value in _from_environment(environ).items():
        values.setdefault(name, value)

    loaded: dict[str, Any] = {}
    given: dict[str, str] = {}
    for name, value in sorted(values.items()):
        negated = name.startswith("no-")
        flag_name = name[3:] if negated else name
        spec = SPECS.get(flag_name)
        if spec is None:
            via = f" via '{name}'" if negated else ""
            raise FlagError(f"Failed to load unknown flag '{flag_name}'{via}")
        if flag_name in loaded:
            raise FlagError(f"Flag is already loaded via name '{flag_name}'")
        if spec.kind != "bool":
            if negated:
                raise FlagError(f"Failed to load non-boolean flag '{flag_name}' via '{name}'")
            if value is None:
                raise FlagError(f"Failed to load non-boolean flag '{flag_name}': Missing value")
            text = value
        elif value is None or value == "":
            text = "false" if negated else "true"
        elif negated:
            raise FlagError(f"Failed to load boolean flag '{flag_name}' via '{name}' with value '{value}'")
        else:
            text = value
        try:
            loaded[flag_name] = _CONVERTERS[spec.kind](text)
        except FlagError as error:
            raise FlagError(
                f"Failed to load flag '{flag_name}': Failed to load value '{text}': {error}"
            ) from error
        if spec.choices and loaded[flag_name] not in spec.choices:
            raise FlagError(
                f"Invalid value '{text}' for --{flag_name}: expected one of {', '.join(spec.choices)}"
            )
        given[flag_name] = text

    if loaded.get("help"):
        return AgentFlags(master="", work_dir="", help=True, given=given)
    if "work_dir" not in loaded:
        raise FlagError("Flag 'work_dir' is required, but it was not provided")
    if "master" not in loaded:
        raise FlagError("Missing required option `--master` or `--master_detector`")
    port = loaded.get("port", 5051)
    if not 0 < port < 65536:
        raise FlagError(f"Failed to load flag 'port': {port} is not a valid port")
    work_dir = os.path.abspath(loaded.pop("work_dir"))
    flags = AgentFlags(master=loaded.pop("master"), work_dir=work_dir, given=given, **loaded)
    flags.runtime_dir = os.path.abspath(flags.runtime_dir or os.path.join(work_dir, "run"))
    flags.fetcher_cache_dir = os.path.abspath(flags.fetcher_cache_dir or os.path.join(work_dir, "fetch"))
    return flags
