"""What the Mesos agent tells a custom executor through its environment."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Mapping, Optional

_UNITS = {
    "ns": 1e-9,
    "us": 1e-6,
    "ms": 1e-3,
    "secs": 1.0,
    "mins": 60.0,
    "hrs": 3600.0,
    "days": 86400.0,
    "weeks": 604800.0,
}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*(ns|us|ms|secs|mins|hrs|days|weeks)\s*$")


DEFAULT_RECOVERY_TIMEOUT_SECS = 15 * 60.0


class AgentEnvironmentError(ValueError):
    """A variable the agent should have set is missing or malformed."""


def parse_duration(text: str) -> float:
    """Seconds in a Mesos duration such as ``5secs``, ``1mins`` or ``500ms``."""
    match = _DURATION.match(text)
    if not match:
        raise ValueError("%r is not a Mesos duration (a number and one of %s)" % (text, ", ".join(_UNITS)))
    return float(match.group(1)) * _UNITS[match.group(2)]


@dataclass(frozen=True)
class AgentEnvironment:
    sandbox: str
    framework_id: str
    executor_id: str
    agent_endpoint: str
    # How long the agent waits after SHUTDOWN before killing the executor (None: not given).
    shutdown_grace_secs: Optional[float]
    # With checkpointing, an executor outlives an agent restart, but only for this long.
    checkpoint: bool = False
    recovery_timeout_secs: float = DEFAULT_RECOVERY_TIMEOUT_SECS

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> AgentEnvironment:
        def need(name: str) -> str:
            value = environ.get(name, "")
            if not value:
                raise AgentEnvironmentError(
                    "environment variable %s is not set; this program is started by a Mesos agent "
                    "as a custom executor (try --self-test to check the installation)" % name
                )
            return value

        def duration(name: str) -> Optional[float]:
            text = environ.get(name, "")
            if not text:
                return None
            try:
                return parse_duration(text)
            except ValueError as exc:
                raise AgentEnvironmentError("%s: %s" % (name, exc)) from None

        sandbox = environ.get("MESOS_SANDBOX") or environ.get("MESOS_DIRECTORY") or need("MESOS_SANDBOX")
        grace = duration("MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD")
        recovery = duration("MESOS_RECOVERY_TIMEOUT")
        endpoint = need("MESOS_AGENT_ENDPOINT")
        if ":" not in endpoint:
            raise AgentEnvironmentError("MESOS_AGENT_ENDPOINT must be ip:port, got %r" % endpoint)
        return cls(
            sandbox=sandbox,
            framework_id=need("MESOS_FRAMEWORK_ID"),
            executor_id=need("MESOS_EXECUTOR_ID"),
            agent_endpoint=endpoint,
            shutdown_grace_secs=grace,
            checkpoint=environ.get("MESOS_CHECKPOINT", "0") == "1",
            recovery_timeout_secs=DEFAULT_RECOVERY_TIMEOUT_SECS if recovery is None else recovery,
        )


def kill_grace_within(requested: float, budget: Optional[float]) -> float:
    """The JVM's grace period on SHUTDOWN, leaving time inside the agent's budget to SIGKILL,
    unmount and report TASK_KILLED before the agent (and pymesos) kill the executor itself."""
    if budget is None:
        return requested
    reserve = min(2.0, max(0.5, 0.2 * budget))
    return max(0.0, min(requested, budget - reserve))
