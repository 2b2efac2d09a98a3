"""The agent's ``/state`` (also ``/slave(1)/state``) JSON, shaped like Mesos' slave/http.cpp.

Resources are summaries (``{"cpus": 2.0, "ports": "[31000-32000]"}``) as in every Mesos
state endpoint; tasks and executors use the v0 field names (``slave_id``, ``id``).
"""

from __future__ import annotations

from typing import Any

from framework.mesos_resources import Resources, attributes_from_json, attributes_summary
from sandbox.mesos.agent.agent import Agent
from sandbox.mesos.agent.model import Executor, Framework

VERSION = "1.11.0"


def _summary(resources: list[dict[str, Any]]) -> dict[str, Any]:
    try:
        return Resources.from_json(resources).summary()
    except ValueError:
        return {}


def _executor_json(executor: Executor) -> dict[str, Any]:
    info = executor.info
    return {
        "id": executor.executor_id,
        "name": info.get("name", ""),
        "source": info.get("source", ""),
        "container": executor.container_id,
        "directory": executor.directory,
        "resources": _summary(executor.allocated_resources()),
        "role": "*",
        "type": info.get("type", "CUSTOM"),
        "tasks": [t.state_json() for t in executor.launched_tasks.values()],
        "queued_tasks": [
            {
                "id": str(t["task_id"]["value"]),
                "name": t.get("name", ""),
                "slave_id": str(t.get("agent_id", {}).get("value", "")),
                "resources": _summary(t.get("resources", [])),
                "executor_id": executor.executor_id,
            }
            for t in executor.queued_tasks.values()
        ],
        "completed_tasks": [
            t.state_json() for t in [*executor.completed_tasks, *executor.terminated_tasks.values()]
        ],
    }


def _framework_json(framework: Framework) -> dict[str, Any]:
    info = framework.info
    out: dict[str, Any] = {
        "id": framework.framework_id,
        "name": info.get("name", ""),
        "user": info.get("user", ""),
        "failover_timeout": float(info.get("failover_timeout", 0.0)),
        "checkpoint": bool(info.get("checkpoint", False)),
        "hostname": info.get("hostname", ""),
        "executors": [_executor_json(e) for e in framework.executors.values()],
        "completed_executors": [_executor_json(e) for e in framework.completed_executors],
    }
    if "principal" in info:
        out["principal"] = info["principal"]
    if "roles" in info:
        out["roles"] = info["roles"]
    else:
        out["role"] = info.get("role", "*")
    return out


def agent_state(agent: Agent) -> dict[str, Any]:
    resources = agent.info.get("resources", [])
    return {
        "version": VERSION,
        "build_date": "",
        "build_time": 0.0,
        "build_user": "",
        "start_time": agent.start_time,
        "id": agent.agent_id,
        "pid": agent.pid,
        "hostname": agent.info.get("hostname", ""),
        "capabilities": ["MULTI_ROLE", "HIERARCHICAL_ROLE", "RESERVATION_REFINEMENT", "AGENT_UPDATE"],
        "resources": _summary(resources),
        "reserved_resources": {},
        "unreserved_resources": _summary(resources),
        "reserved_resources_full": {},
        "unreserved_resources_full": resources,
        "attributes": attributes_summary(attributes_from_json(agent.info.get("attributes", []))),
        "master_hostname": agent.master_hostname or "",
        "flags": agent.flags.as_strings(),
        "frameworks": [_framework_json(f) for f in agent.frameworks.values()],
        "completed_frameworks": [_framework_json(f) for f in agent.completed_frameworks],
    }
