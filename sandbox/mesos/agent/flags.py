"""The agent's flags (Mesos names), loaded by the shared stout-style parser in sandbox.mesos.flags."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from sandbox.mesos.flags import Flag, FlagError, format_flag_value, load_given
from sandbox.mesos.flags import usage as flags_usage

__all__ = ["AGENT_FLAGS", "AgentFlags", "FlagError", "load_flags", "usage"]

DEFAULT_PORT = 5051

AGENT_FLAGS: tuple[Flag, ...] = (
    Flag("master", "str", None, "How to reach the master: host:port (zk:// is not supported here)."),
    Flag("ip", "str", None, "IP address to listen on (default: the address of this host's name)."),
    Flag("port", "int", DEFAULT_PORT, "Port to listen on."),
    Flag("hostname", "str", None, "Hostname the agent reports to the master."),
    Flag(
        "hostname_lookup",
        "bool",
        True,
        "Whether to look up the hostname of the IP when --hostname is not given.",
    ),
    Flag("work_dir", "str", None, "Where to place framework work directories and checkpoints."),
    Flag("runtime_dir", "str", "", "Where to keep runtime state of containers (default: <work_dir>/run)."),
    Flag(
        "resources",
        "str",
        None,
        "Total consumable resources: JSON array, file:///path, or name(role):value;...",
    ),
    Flag("attributes", "str", None, "Attributes of this agent: key:value;key2:value2"),
    Flag("default_role", "str", "*", "Role for resources given without a role."),
    Flag(
        "reconfiguration_policy",
        "str",
        "equal",
        "Which agent info changes a restart may make: equal or additive.",
        choices=("equal", "additive"),
    ),
    Flag(
        "executor_registration_timeout",
        "duration",
        60.0,
        "How long an executor has to register before it is killed.",
    ),
    Flag(
        "executor_reregistration_timeout",
        "duration",
        2.0,
        "How long recovered executors have to reconnect after an agent restart.",
    ),
    Flag(
        "executor_shutdown_grace_period",
        "duration",
        5.0,
        "Time between SHUTDOWN to an executor and killing its processes.",
    ),
    Flag(
        "recovery_timeout",
        "duration",
        900.0,
        "How long checkpointing executors retry reconnecting (MESOS_RECOVERY_TIMEOUT).",
    ),
    Flag(
        "registration_backoff_factor",
        "duration",
        1.0,
        "Initial backoff between registration attempts with the master.",
    ),
    Flag("switch_user", "bool", True, "Run executors as the task's/framework's user (requires root)."),
    Flag(
        "http_command_executor",
        "bool",
        False,
        "Value of MESOS_HTTP_COMMAND_EXECUTOR handed to command executors.",
    ),
    Flag(
        "executor_environment_variables",
        "json_object",
        None,
        "JSON object of environment variables for executors instead of the agent's own.",
    ),
    Flag(
        "fetcher_cache_dir",
        "str",
        "",
        "Parent directory of the per-user fetcher caches (default: <work_dir>/fetch).",
    ),
    Flag("help", "bool", False, "Print this help and exit."),
    # Not a Mesos flag: the base interval of status update retries (Mesos: a 10secs constant),
    # so tests can watch retries without waiting minutes.
    Flag(
        "status_update_retry_interval_min",
        "duration",
        10.0,
        "Base interval of status update retries.",
        hidden=True,
    ),
)


@dataclass
class AgentFlags:
    """Every agent flag, defaults filled in from AGENT_FLAGS; ``given`` holds the given texts."""

    master: str
    work_dir: str
    ip: str | None
    port: int
    hostname: str | None
    hostname_lookup: bool
    runtime_dir: str
    resources: str | None
    attributes: str | None
    default_role: str
    reconfiguration_policy: str
    executor_registration_timeout: float
    executor_reregistration_timeout: float
    executor_shutdown_grace_period: float
    recovery_timeout: float
    registration_backoff_factor: float
    switch_user: bool
    http_command_executor: bool
    executor_environment_variables: dict[str, str] | None
    fetcher_cache_dir: str
    help: bool
    status_update_retry_interval_min: float
    given: dict[str, str] = field(default_factory=dict)

    def as_strings(self) -> dict[str, str]:
        """Every flag with a value, as /state's "flags" shows them."""
        out: dict[str, str] = {}
        for flag in AGENT_FLAGS:
            if flag.hidden or flag.name == "help":
                continue
            value = getattr(self, flag.name)
            if value is None or value == "":
                continue
            out[flag.name] = format_flag_value(flag, value)
        return out


def usage(message: str | None = None, program: str = "mesos-agent") -> str:
    """stout's ``FlagsBase::usage`` for the agent's (visible) flags."""
    return flags_usage(program, AGENT_FLAGS, message)


def load_flags(argv: Sequence[str], environ: Mapping[str, str] | None = None) -> AgentFlags:
    """Flags from ``argv`` (without the program name) over ``MESOS_*`` environment variables."""
    loaded, given = load_given(argv, AGENT_FLAGS, environ)
    values = {flag.name: loaded.get(flag.name, flag.default) for flag in AGENT_FLAGS}
    if values["help"]:
        return AgentFlags(**{**values, "master": "", "work_dir": ""}, given=given)
    if "work_dir" not in loaded:
        raise FlagError("Flag 'work_dir' is required, but it was not provided")
    if "master" not in loaded:
        raise FlagError("Missing required option `--master` or `--master_detector`")
    if not 0 < values["port"] < 65536:
        raise FlagError(f"Failed to load flag 'port': {values['port']} is not a valid port")
    work_dir = os.path.abspath(values["work_dir"])
    flags = AgentFlags(**{**values, "work_dir": work_dir}, given=given)
    flags.runtime_dir = os.path.abspath(flags.runtime_dir or os.path.join(work_dir, "run"))
    flags.fetcher_cache_dir = os.path.abspath(flags.fetcher_cache_dir or os.path.join(work_dir, "fetch"))
    return flags
