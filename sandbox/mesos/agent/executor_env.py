"""The environment an executor starts with (Mesos' ``executorEnvironment`` + the containerizer).

Order matters and follows Mesos: the agent's own environment (or
``--executor_environment_variables`` instead), then ``LIBPROCESS_PORT=0``, then the MESOS_*
variables, and ``CommandInfo.environment`` last, on top of everything.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from sandbox.mesos.wire import format_duration, format_duration_ns


def executor_environment(
    *,
    executor_info: dict[str, Any],
    directory: str,
    agent_id: str,
    agent_ip: str,
    agent_port: int,
    checkpoint: bool,
    http_command_executor: bool,
    default_shutdown_grace_period: float,
    recovery_timeout: float,
    subscription_backoff_max: float,
    executor_environment_variables: Mapping[str, str] | None,
    agent_environment: Mapping[str, str] | None = None,
) -> dict[str, str]:
    if executor_environment_variables is not None:
        env = dict(executor_environment_variables)
    else:
        # Mesos executors inherit the agent's whole environment, MESOS_* flags included.
        env = dict(os.environ if agent_environment is None else agent_environment)
    libprocess_ip = (agent_environment or os.environ).get("LIBPROCESS_IP")
    if libprocess_ip:
        env["LIBPROCESS_IP"] = libprocess_ip
    env["LIBPROCESS_PORT"] = "0"

    env["MESOS_FRAMEWORK_ID"] = str(executor_info["framework_id"]["value"])
    env["MESOS_EXECUTOR_ID"] = str(executor_info["executor_id"]["value"])
    env["MESOS_DIRECTORY"] = directory
    env["MESOS_SANDBOX"] = directory
    env["MESOS_SLAVE_ID"] = agent_id
    env["MESOS_SLAVE_PID"] = f"slave(1)@{agent_ip}:{agent_port}"
    env["MESOS_AGENT_ENDPOINT"] = f"{agent_ip}:{agent_port}"
    env["MESOS_CHECKPOINT"] = "1" if checkpoint else "0"
    env["MESOS_HTTP_COMMAND_EXECUTOR"] = "1" if http_command_executor else "0"

    grace = executor_info.get("shutdown_grace_period", {}).get("nanoseconds")
    env["MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD"] = (
        format_duration_ns(int(grace))
        if grace is not None
        else format_duration(default_shutdown_grace_period)
    )
    if checkpoint:
        env["MESOS_RECOVERY_TIMEOUT"] = format_duration(recovery_timeout)
        env["MESOS_SUBSCRIPTION_BACKOFF_MAX"] = format_duration(subscription_backoff_max)

    for variable in executor_info.get("command", {}).get("environment", {}).get("variables", []):
        # Secrets (type SECRET) would need a secret resolver; only plain values are supported.
        if variable.get("type", "VALUE") == "VALUE" and "name" in variable:
            env[str(variable["name"])] = str(variable.get("value", ""))
    return env
