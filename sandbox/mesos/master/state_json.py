"""JSON views of the master's state: the /master/state family and the v1 operator API shapes.

The GET endpoints use Mesos' "model" form (ids as strings, resources as summaries such as
``{"cpus": 4.0, "ports": "[31000-32000]"}``, times as seconds); the operator API uses the v1
protobuf JSON form (ids as ``{"value"}``, resources as Resource arrays, times as
``{"nanoseconds"}``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from framework.mesos_resources import Resources, attributes_summary
from sandbox.mesos import MESOS_VERSION
from sandbox.mesos.master.model import Agent, Framework, Task

if TYPE_CHECKING:
    from sandbox.mesos.master.master import Master

JsonObject = dict[str, Any]

BUILD_DATE = "2020-11-24 00:00:00"
BUILD_TIME = 1606176000.0
BUILD_USER = "alluxio-mesos sandbox"


def version_json() -> JsonObject:
    return {
        "version": MESOS_VERSION,
        "build_date": BUILD_DATE,
        "build_time": BUILD_TIME,
        "build_user": BUILD_USER,
    }


def _nanos(seconds: float) -> JsonObject:
    return {"nanoseconds": int(seconds * 1e9)}


def _framework_info_with_defaults(info: JsonObject) -> JsonObject:
    """FrameworkInfo as Mesos prints it: optional fields with defaults are always present."""
    out = dict(info)
    out.setdefault("failover_timeout", 0.0)
    out.setdefault("checkpoint", False)
    if not any(c.get("type") == "MULTI_ROLE" for c in info.get("capabilities", [])):
        out.setdefault("role", "*")
    return out


# ---------------------------------------------------------------------------------------------
# /master/state model
# ---------------------------------------------------------------------------------------------


def task_model(task: Task) -> JsonObject:
    out: JsonObject = {
        "id": task.task_id,
        "name": task.name,
        "framework_id": task.framework_id,
        "executor_id": task.executor_id or "",
        "slave_id": task.agent_id,
        "agent_id": task.agent_id,
        "state": task.state,
        "resources": task.resources.summary(),
        "role": task.role,
        "statuses": [
            {k: v for k, v in (("state", s.get("state")), ("timestamp", s.get("timestamp"))) if v is not None}
            | ({"healthy": s["healthy"]} if "healthy" in s else {})
            for s in task.statuses
        ],
    }
    labels = (task.info.get("labels") or {}).get("labels")
    if labels:
        out["labels"] = labels
    for key in ("discovery", "container", "health_check", "kill_policy"):
        if key in task.info:
            out[key] = task.info[key]
    return out


def _executor_model(executor: JsonObject, agent_id: str) -> JsonObject:
    out: JsonObject = {
        "executor_id": executor["executor_id"]["value"],
        "name": executor.get("name", ""),
        "framework_id": (executor.get("framework_id") or {}).get("value", ""),
        "command": executor.get("command", {}),
        "resources": Resources.from_json(executor.get("resources", [])).summary(),
        "slave_id": agent_id,
    }
    if "labels" in executor:
        out["labels"] = executor["labels"].get("labels", [])
    return out


def framework_model(master: Master, framework: Framework, *, completed: bool = False) -> JsonObject:
    info = framework.info
    used, offered = framework.used_resources(), framework.offered_resources()
    out: JsonObject = {
        "id": framework.framework_id,
        "name": info.get("name", ""),
        "user": info.get("user", ""),
        "hostname": info.get("hostname", ""),
        "webui_url": info.get("webui_url", ""),
        "principal": info.get("principal", ""),
        "failover_timeout": float(info.get("failover_timeout", 0.0)),
        "checkpoint": bool(info.get("checkpoint", False)),
        "capabilities": [c.get("type") for c in info.get("capabilities", [])],
        "active": framework.active and not completed,
        "connected": framework.connected and not completed,
        "recovered": framework.recovered,
        "registered_time": framework.registered_time,
        "used_resources": used.summary(),
        "offered_resources": offered.summary(),
        "resources": (used + offered).summary(),
        "tasks": [task_model(t) for t in framework.tasks.values()],
        "unreachable_tasks": [task_model(t) for t in framework.unreachable_tasks.values()],
        "completed_tasks": [task_model(t) for t in framework.completed_tasks],
        "offers": [
            {
                "id": o.offer_id,
                "framework_id": o.framework_id,
                "slave_id": o.agent_id,
                "resources": o.resources.summary(),
                "allocation_info": {"role": o.role},
            }
            for o in framework.offers.values()
        ],
        "executors": [
            _executor_model(executor, agent_id)
            for agent_id, executors in framework.executors.items()
            for executor in executors.values()
        ],
    }
    if framework.multi_role:
        out["roles"] = list(info.get("roles", []))
    else:
        out["role"] = info.get("role", "*")
    if framework.reregistered_time is not None:
        out["reregistered_time"] = framework.reregistered_time
    if framework.unregistered_time is not None:
        out["unregistered_time"] = framework.unregistered_time
    labels = (info.get("labels") or {}).get("labels")
    if labels:
        out["labels"] = labels
    return out


def agent_model(agent: Agent) -> JsonObject:
    reserved: dict[str, Resources] = {}
    for resource in agent.total.reserved():
        reserved[resource.role] = reserved.get(resource.role, Resources()) + resource
    out: JsonObject = {
        "id": agent.agent_id,
        "pid": agent.pid,
        "hostname": agent.hostname,
        "port": agent.port,
        "registered_time": agent.registered_time,
        "resources": agent.total.summary(),
        "used_resources": agent.used_total.summary(),
        "offered_resources": agent.offered_total.summary(),
        "reserved_resources": {role: r.summary() for role, r in reserved.items()},
        "unreserved_resources": agent.total.unreserved().summary(),
        "attributes": attributes_summary(agent.attributes),
        "active": agent.active,
        "deactivated": False,
        "version": agent.version,
        "capabilities": [],
        "resources_full": agent.total.to_json(),
        "used_resources_full": agent.used_total.to_json(),
        "offered_resources_full": agent.offered_total.to_json(),
    }
    if agent.reregistered_time is not None:
        out["reregistered_time"] = agent.reregistered_time
    return out


def _framework_matches(framework: Framework, wanted: str | None) -> bool:
    return wanted is None or framework.framework_id == wanted


def frameworks_model(master: Master, framework_id: str | None = None) -> JsonObject:
    return {
        "frameworks": [
            framework_model(master, f)
            for f in master.frameworks.values()
            if _framework_matches(f, framework_id)
        ],
        "completed_frameworks": [
            framework_model(master, f, completed=True)
            for f in master.completed_frameworks
            if _framework_matches(f, framework_id)
        ],
        "unregistered_frameworks": [],
    }


def slaves_model(master: Master, agent_id: str | None = None) -> JsonObject:
    return {
        "slaves": [
            agent_model(a) for a in master.agents.values() if agent_id is None or a.agent_id == agent_id
        ],
        "recovered_slaves": [],
    }


def state_model(master: Master) -> JsonObject:
    config = master.config
    out: JsonObject = {
        **version_json(),
        "start_time": master.start_time,
        "elected_time": master.elected_time,
        "id": master.master_id,
        "pid": master.pid,
        "hostname": config.hostname,
        "activated_slaves": float(sum(1 for a in master.agents.values() if a.active)),
        "deactivated_slaves": 0.0,
        "unreachable_slaves": float(len(master.unreachable_agents)),
        "leader": master.pid,
        "leader_info": master.info,
        "flags": config.raw_flags,
        "slaves": [agent_model(a) for a in master.agents.values()],
        "recovered_slaves": [],
        "frameworks": [framework_model(master, f) for f in master.frameworks.values()],
        "completed_frameworks": [
            framework_model(master, f, completed=True) for f in master.completed_frameworks
        ],
        "orphan_tasks": [],
        "unregistered_frameworks": [],
    }
    if config.cluster:
        out["cluster"] = config.cluster
    return out


# ---------------------------------------------------------------------------------------------
# v1 operator API shapes
# ---------------------------------------------------------------------------------------------


def task_v1(task: Task) -> JsonObject:
    out: JsonObject = {
        "name": task.name,
        "task_id": {"value": task.task_id},
        "framework_id": {"value": task.framework_id},
        "agent_id": {"value": task.agent_id},
        "state": task.state,
        "resources": task.resources.to_json(),
        "statuses": list(task.statuses),
    }
    if task.executor_id is not None:
        out["executor_id"] = {"value": task.executor_id}
    if task.status_update_state is not None:
        out["status_update_state"] = task.status_update_state
    if task.status_update_uuid is not None:
        out["status_update_uuid"] = task.status_update_uuid
    for key in ("labels", "discovery", "container", "health_check", "kill_policy"):
        if key in task.info:
            out[key] = task.info[key]
    return out


def get_tasks(master: Master) -> JsonObject:
    frameworks: Iterable[Framework] = [*master.frameworks.values(), *master.completed_frameworks]
    tasks, unreachable, completed = [], [], []
    for framework in frameworks:
        tasks.extend(task_v1(t) for t in framework.tasks.values())
        unreachable.extend(task_v1(t) for t in framework.unreachable_tasks.values())
        completed.extend(task_v1(t) for t in framework.completed_tasks)
    out: JsonObject = {"tasks": tasks}
    if unreachable:
        out["unreachable_tasks"] = unreachable
    if completed:
        out["completed_tasks"] = completed
    return out


def agent_v1(agent: Agent) -> JsonObject:
    out: JsonObject = {
        "agent_info": {**agent.info, "resources": agent.total.to_json()},
        "active": agent.active,
        "deactivated": False,
        "version": agent.version,
        "pid": agent.pid,
        "registered_time": _nanos(agent.registered_time),
        "total_resources": agent.total.to_json(),
        "allocated_resources": agent.used_total.to_json(),
        "offered_resources": agent.offered_total.to_json(),
    }
    if agent.reregistered_time is not None:
        out["reregistered_time"] = _nanos(agent.reregistered_time)
    return out


def get_agents(master: Master) -> JsonObject:
    return {"agents": [agent_v1(a) for a in master.agents.values()]}


def framework_v1(master: Master, framework: Framework, *, completed: bool = False) -> JsonObject:
    out: JsonObject = {
        "framework_info": _framework_info_with_defaults(framework.info),
        "active": framework.active and not completed,
        "connected": framework.connected and not completed,
        "recovered": framework.recovered,
        "registered_time": _nanos(framework.registered_time),
        "allocated_resources": framework.used_resources().to_json(),
        "offered_resources": framework.offered_resources().to_json(),
    }
    if framework.reregistered_time is not None:
        out["reregistered_time"] = _nanos(framework.reregistered_time)
    if framework.unregistered_time is not None:
        out["unregistered_time"] = _nanos(framework.unregistered_time)
    offers = [master.offer_json(o, framework, master.agents[o.agent_id]) for o in framework.offers.values()]
    if offers:
        out["offers"] = offers
    return out


def get_frameworks(master: Master) -> JsonObject:
    out: JsonObject = {"frameworks": [framework_v1(master, f) for f in master.frameworks.values()]}
    if master.completed_frameworks:
        out["completed_frameworks"] = [
            framework_v1(master, f, completed=True) for f in master.completed_frameworks
        ]
    return out


def get_executors(master: Master) -> JsonObject:
    executors = [
        {"agent_id": {"value": agent.agent_id}, "executor_info": executor}
        for agent in master.agents.values()
        for by_id in agent.executors.values()
        for executor in by_id.values()
    ]
    return {"executors": executors}


def get_state(master: Master) -> JsonObject:
    return {
        "get_tasks": get_tasks(master),
        "get_executors": get_executors(master),
        "get_frameworks": get_frameworks(master),
        "get_agents": get_agents(master),
    }
