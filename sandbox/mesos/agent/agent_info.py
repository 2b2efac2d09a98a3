"""The AgentInfo this agent reports: hostname, port, resources and attributes from its flags.

Resources and attributes are parsed only by framework.mesos_resources (the one parser the
whole project shares), with Mesos' detection of whatever ``--resources`` leaves out.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from typing import Any

from framework.mesos_resources import (
    AttributeParseError,
    ResourceError,
    agent_resources,
    attributes_to_json,
    parse_attributes,
)
from sandbox.mesos.agent.flags import AgentFlags, FlagError


@dataclass(frozen=True)
class Address:
    bind_ip: str  # what the HTTP server listens on
    ip: str  # what the agent advertises (MESOS_AGENT_ENDPOINT, agent_url)
    port: int


def resolve_address(flags: AgentFlags) -> Address:
    """Like libprocess: bind to --ip (or all interfaces) and advertise --ip or this host's IP."""
    if flags.ip:
        return Address(bind_ip=flags.ip, ip=flags.ip, port=flags.port)
    try:
        advertised = socket.gethostbyname(socket.gethostname())
    except OSError:
        advertised = "127.0.0.1"
    return Address(bind_ip="0.0.0.0", ip=advertised, port=flags.port)


def resolve_hostname(flags: AgentFlags, address: Address) -> str:
    if flags.hostname:
        return flags.hostname
    if not flags.hostname_lookup:
        return address.ip
    try:
        return socket.gethostbyaddr(address.ip)[0]
    except OSError:
        return address.ip


def build_agent_info(flags: AgentFlags, address: Address) -> dict[str, Any]:
    """AgentInfo without an id; raises FlagError naming the bad flag."""
    try:
        resources = agent_resources(flags.resources, flags.work_dir, flags.default_role)
    except ResourceError as error:
        raise FlagError(f"Failed to determine agent resources: {error} (see --resources)") from error
    try:
        attributes = parse_attributes(flags.attributes)
    except (AttributeParseError, ResourceError) as error:
        raise FlagError(f"Failed to parse --attributes: {error}") from error
    info: dict[str, Any] = {
        "hostname": resolve_hostname(flags, address),
        "port": address.port,
        "resources": resources.to_json(),
    }
    if attributes:
        info["attributes"] = attributes_to_json(attributes)
    return info
