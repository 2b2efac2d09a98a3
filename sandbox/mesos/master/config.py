"""The master's flags (Mesos names where Mesos has the flag) and their validated form."""

from __future__ import annotations

import json
import socket
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from framework.mesos_resources import (
    Attribute,
    AttributeParseError,
    ResourceError,
    Resources,
    parse_attributes,
)
from sandbox.mesos.flags import Flag, FlagError, parse_flags

__all__ = ["MASTER_FLAGS", "MasterConfig", "load_config"]

DEFAULT_SIMULATED_RESOURCES = "cpus:4;mem:8192;disk:65536;ports:[31000-32000]"

MASTER_FLAGS: tuple[Flag, ...] = (
    Flag("ip", "str", "0.0.0.0", "IP address to listen on"),
    Flag("port", "int", 5050, "port to listen on"),
    Flag("advertise_ip", "str", None, "IP address advertised to frameworks and agents"),
    Flag("advertise_port", "int", None, "port advertised to frameworks and agents"),
    Flag("hostname", "str", None, "hostname advertised in MasterInfo (default: the machine's)"),
    Flag("hostname_lookup", "bool", True, "look up the hostname when --hostname is not given"),
    Flag("work_dir", "str", None, "working directory (accepted for compatibility; nothing is persisted)"),
    Flag("cluster", "str", None, "human readable cluster name shown in /master/state"),
    Flag(
        "credentials", "str", None, "credentials file: JSON {credentials:[{principal,secret}]} or lines", True
    ),
    Flag("authenticate_http_frameworks", "bool", False, "require HTTP Basic auth on /api/v1/scheduler"),
    Flag("authenticate_http_readonly", "bool", False, "require HTTP Basic auth on read-only endpoints"),
    Flag("authenticate_http_readwrite", "bool", False, "require HTTP Basic auth on /api/v1 and teardown"),
    Flag("heartbeat_interval", "duration", 15.0, "interval between HEARTBEAT events (stand-in flag)"),
    Flag("allocation_interval", "duration", 1.0, "interval between batch allocations"),
    Flag("agent_ping_timeout", "duration", 15.0, "interval between agent pings"),
    Flag("max_agent_ping_timeouts", "int", 5, "failed pings before an agent is marked unreachable"),
    Flag("max_completed_frameworks", "int", 50, "completed frameworks kept for /master/state"),
    Flag("max_completed_tasks_per_framework", "int", 1000, "completed tasks kept per framework"),
    Flag("simulated_agents", "int", 0, "register this many in-process simulated agents (benchmarks, tests)"),
    Flag(
        "simulated_agent_resources",
        "str",
        DEFAULT_SIMULATED_RESOURCES,
        "--resources of each simulated agent",
        True,
    ),
    Flag("simulated_agent_attributes", "str", "", "--attributes of each simulated agent", True),
    Flag("simulated_agent_hostname", "str", "sim-agent-{n}", "hostname pattern of simulated agents"),
    Flag("simulated_task_delay", "duration", 0.0, "delay between simulated task state changes"),
    Flag("log_level", "str", "INFO", "logging level (DEBUG, INFO, WARNING, ERROR)"),
)


@dataclass(frozen=True)
class MasterConfig:
    ip: str
    port: int
    advertise_ip: str
    advertise_port: int
    hostname: str
    work_dir: str | None
    cluster: str | None
    credentials: dict[str, str]
    authenticate_http_frameworks: bool
    authenticate_http_readonly: bool
    authenticate_http_readwrite: bool
    heartbeat_interval: float
    allocation_interval: float
    agent_ping_timeout: float
    max_agent_ping_timeouts: int
    max_completed_frameworks: int
    max_completed_tasks_per_framework: int
    simulated_agents: int
    simulated_agent_resources: Resources
    simulated_agent_attributes: list[Attribute]
    simulated_agent_hostname: str
    simulated_task_delay: float
    log_level: str
    raw_flags: dict[str, str]


def parse_credentials(text: str) -> dict[str, str]:
    """Mesos' credentials file: JSON ``{"credentials":[{"principal":..,"secret":..}]}`` or text lines."""
    text = text.strip()
    credentials: dict[str, str] = {}
    if text.startswith("{"):
        try:
            document = json.loads(text)
        except ValueError as error:
            raise FlagError(f"--credentials: invalid JSON: {error}") from error
        entries = document.get("credentials") if isinstance(document, dict) else None
        if not isinstance(entries, list):
            raise FlagError('--credentials: expected {"credentials": [{"principal": .., "secret": ..}]}')
        for i, entry in enumerate(entries):
            if not isinstance(entry, dict) or not isinstance(entry.get("principal"), str):
                raise FlagError(f"--credentials: credentials[{i}].principal must be a string")
            secret = entry.get("secret", "")
            if not isinstance(secret, str):
                raise FlagError(f"--credentials: credentials[{i}].secret must be a string")
            credentials[entry["principal"]] = secret
    else:
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            parts = line.split()
            if len(parts) != 2:
                raise FlagError(f"--credentials: line {number}: expected 'principal secret'")
            credentials[parts[0]] = parts[1]
    if not credentials:
        raise FlagError("Credentials file must contain at least one credential (see --credentials flag)")
    return credentials


def _advertised_ip(bind_ip: str) -> str:
    if bind_ip not in ("0.0.0.0", ""):
        return bind_ip
    # Like libprocess, use the address the hostname resolves to when bound to all interfaces.
    try:
        address = socket.gethostbyname(socket.gethostname())
    except OSError:
        return "127.0.0.1"
    return address


def load_config(argv: Sequence[str], environ: Mapping[str, str] | None = None) -> MasterConfig:
    values = parse_flags(argv, MASTER_FLAGS, environ)
    if not 0 < values["port"] < 65536:
        raise FlagError(f"--port: {values['port']} is not a valid port")
    if values["heartbeat_interval"] <= 0:
        raise FlagError("--heartbeat_interval must be positive")
    if values["allocation_interval"] <= 0:
        raise FlagError("--allocation_interval must be positive")
    if values["agent_ping_timeout"] <= 0:
        raise FlagError("--agent_ping_timeout must be positive")
    if values["max_agent_ping_timeouts"] < 1:
        raise FlagError("--max_agent_ping_timeouts must be at least 1")
    if values["simulated_agents"] < 0:
        raise FlagError("--simulated_agents must not be negative")
    if values["log_level"].upper() not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise FlagError("--log_level must be one of DEBUG, INFO, WARNING, ERROR")

    credentials: dict[str, str] = {}
    if values["credentials"]:
        path = values["credentials"].removeprefix("file://")
        try:
            with open(path, encoding="utf-8") as handle:
                credentials = parse_credentials(handle.read())
        except OSError as error:
            raise FlagError(f"--credentials: cannot read {path}: {error.strerror}") from error
    if (
        values["authenticate_http_frameworks"]
        or values["authenticate_http_readonly"]
        or values["authenticate_http_readwrite"]
    ) and not credentials:
        raise FlagError("HTTP authentication (--authenticate_http_*) requires --credentials")

    try:
        simulated_resources = Resources.parse(values["simulated_agent_resources"])
        simulated_attributes = parse_attributes(values["simulated_agent_attributes"])
    except (ResourceError, AttributeParseError) as error:
        raise FlagError(f"--simulated_agent_*: {error}") from error

    advertise_ip = values["advertise_ip"] or _advertised_ip(values["ip"])
    hostname = values["hostname"]
    if not hostname:
        hostname = socket.gethostname() if values["hostname_lookup"] else advertise_ip

    raw = {
        flag.name: str(values[flag.name]).lower()
        if isinstance(values[flag.name], bool)
        else str(values[flag.name])
        for flag in MASTER_FLAGS
        if values[flag.name] is not None and flag.name != "credentials"
    }
    if values["credentials"]:
        raw["credentials"] = "(set)"
    return MasterConfig(
        ip=values["ip"],
        port=values["port"],
        advertise_ip=advertise_ip,
        advertise_port=values["advertise_port"] or values["port"],
        hostname=hostname,
        work_dir=values["work_dir"],
        cluster=values["cluster"],
        credentials=credentials,
        authenticate_http_frameworks=values["authenticate_http_frameworks"],
        authenticate_http_readonly=values["authenticate_http_readonly"],
        authenticate_http_readwrite=values["authenticate_http_readwrite"],
        heartbeat_interval=values["heartbeat_interval"],
        allocation_interval=values["allocation_interval"],
        agent_ping_timeout=values["agent_ping_timeout"],
        max_agent_ping_timeouts=values["max_agent_ping_timeouts"],
        max_completed_frameworks=values["max_completed_frameworks"],
        max_completed_tasks_per_framework=values["max_completed_tasks_per_framework"],
        simulated_agents=values["simulated_agents"],
        simulated_agent_resources=simulated_resources,
        simulated_agent_attributes=simulated_attributes,
        simulated_agent_hostname=values["simulated_agent_hostname"],
        simulated_task_delay=values["simulated_task_delay"],
        log_level=values["log_level"].upper(),
        raw_flags=raw,
    )
