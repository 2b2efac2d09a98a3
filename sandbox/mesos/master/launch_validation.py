"""Validation of LAUNCH / LAUNCH_GROUP operations, with Mesos' messages (src/master/validation.cpp).

A failed validation becomes a TASK_ERROR (REASON_TASK_INVALID) whose message is the string
returned here, so schedulers see exactly what a real master would tell them.
"""

from __future__ import annotations

import json
import re
from typing import Any

from framework.mesos_resources import ResourceError, Resources, ranges_size
from sandbox.mesos.master.model import Agent, Framework

JsonObject = dict[str, Any]

MIN_CPUS = 0.01
MIN_MEM_MB = 32.0
NAME_MAX = 255


# Control characters, DEL, and the path separators '/' and '\'.
_INVALID_ID_CHARACTER = re.compile(r"[\x00-\x1f\x7f/\\]")


def validate_id(value: str) -> str | None:
    """common::validation::validateID."""
    if not value:
        return "ID must not be empty"
    if len(value) > NAME_MAX:
        return f"ID must not be greater than {NAME_MAX} characters"
    if value in (".", ".."):
        return f"'{value}' is disallowed"
    if _INVALID_ID_CHARACTER.search(value):
        return f"'{value}' contains invalid characters"
    return None


_PARSED: dict[int, tuple[Any, Resources]] = {}
_PARSED_BY_TEXT: dict[str, Resources] = {}
_MAX_REMEMBERED = 4096
# The text only serves as a key: equal texts are equal JSON values (types included).
_KEY_ENCODER = json.JSONEncoder(check_circular=False)


def parse_resources(resources: Any) -> Resources:
    """Resources of a TaskInfo/ExecutorInfo, in the framework's (pre-refinement) format.

    A launch looks at the same JSON list several times (validation, accounting); the parse is
    remembered per list object, which the cache keeps alive so its id cannot be reused. Tasks
    launched by one framework mostly ask for the same resources, so parses are also remembered
    by the list's JSON text (Resources are immutable, so one parse can serve many tasks).
    """
    if resources is None:
        return Resources()
    cached = _PARSED.get(id(resources))
    if cached is not None and cached[0] is resources:
        return cached[1]
    text = _KEY_ENCODER.encode(resources)
    parsed = _PARSED_BY_TEXT.get(text)
    if parsed is None:
        parsed = Resources.from_json(resources)
        if len(_PARSED_BY_TEXT) >= _MAX_REMEMBERED:
            _PARSED_BY_TEXT.clear()
        _PARSED_BY_TEXT[text] = parsed
    if len(_PARSED) >= _MAX_REMEMBERED:
        _PARSED.clear()
    _PARSED[id(resources)] = (resources, parsed)
    return parsed


def _command_error(command: JsonObject | None) -> str | None:
    if not command:
        return None
    environment = command.get("environment") or {}
    for variable in environment.get("variables", []):
        kind = variable.get("type", "VALUE")
        if kind in ("VALUE", "UNKNOWN") and "value" not in variable:
            return f"Environment variable '{variable['name']}' of type 'VALUE' must have a value set"
        if kind == "SECRET":
            return (
                f"Environment variable '{variable['name']}' of type 'SECRET' is not supported by this master"
            )
    return None


def _negative_duration(message: JsonObject | None, key: str) -> bool:
    duration = (message or {}).get(key)
    return isinstance(duration, dict) and int(duration.get("nanoseconds", 0)) < 0


def _overlapping(first: Resources, second: Resources) -> bool:
    """Ranges or sets claimed twice (Mesos compares quantities before and after merging)."""

    # Only a name with ranges or set items on both sides can lose quantity when merged; a task
    # with ports next to an executor without any (the common case) needs no merge at all.
    def countable(resources: Resources) -> set[str]:
        return {r.name for r in resources if r.type in ("RANGES", "SET")}

    shared = countable(first) & countable(second)
    if not shared:
        return False
    combined = first + second
    for name in shared:
        before = ranges_size(first.ranges(name)) + ranges_size(second.ranges(name))
        if before != ranges_size(combined.ranges(name)):
            return True
        items = len(first.set_items(name)) + len(second.set_items(name))
        if items != len(combined.set_items(name)):
            return True
    return False


def _executor_error(executor: JsonObject, framework: Framework, agent: Agent) -> str | None:
    """executor::internal::validate: type, id, grace period, command, framework id, resources."""
    kind = executor.get("type")
    if kind == "DEFAULT" and "command" in executor:
        return "'ExecutorInfo.command' must not be set for 'DEFAULT' executor"
    if kind == "CUSTOM" and "command" not in executor:
        return "'ExecutorInfo.command' must be set for 'CUSTOM' executor"
    error = validate_id(executor["executor_id"]["value"])
    if error:
        return error
    if _negative_duration(executor, "shutdown_grace_period"):
        return "ExecutorInfo's 'shutdown_grace_period' must be non-negative"
    error = _command_error(executor.get("command"))
    if error:
        return f"Executor's `CommandInfo` is invalid: {error}"
    framework_id = (executor.get("framework_id") or {}).get("value")
    if framework_id is None:
        return "'ExecutorInfo.framework_id' must be set"
    if framework_id != framework.framework_id:
        return (
            f"ExecutorInfo has an invalid FrameworkID (Actual: {framework_id} vs Expected: "
            f"{framework.framework_id})"
        )
    try:
        parse_resources(executor.get("resources"))
    except ResourceError as error_:
        return f"Executor uses invalid resources: Invalid resources: {error_}"
    existing = agent.executors.get(framework.framework_id, {}).get(executor["executor_id"]["value"])
    if existing is not None and existing != executor:
        return (
            "ExecutorInfo is not compatible with existing ExecutorInfo with same ExecutorID.\n"
            "------------------------------------------------------------\n"
            f"Existing ExecutorInfo:\n{existing}\n"
            "------------------------------------------------------------\n"
            f"ExecutorInfo:\n{executor}\n"
            "------------------------------------------------------------\n"
        )
    return None


def _task_error(task: JsonObject, framework: Framework, agent: Agent) -> str | None:
    """task::internal::validateTask, in Mesos' order."""
    task_id = task["task_id"]["value"]
    error = validate_id(task_id)
    if error:
        return error
    if task_id in framework.tasks:
        return f"Task has duplicate ID: {task_id}"
    agent_id = task["agent_id"]["value"]
    if agent_id != agent.agent_id:
        return f"Task uses invalid agent {agent_id} while agent {agent.agent_id} is expected"
    if _negative_duration(task.get("kill_policy"), "grace_period"):
        return "Task's 'kill_policy.grace_period' must be non-negative"
    if _negative_duration(task, "max_completion_time"):
        return "Task's `max_completion_time` must be non-negative"
    if not task.get("resources"):
        return "Task uses no resources"
    try:
        parse_resources(task["resources"])
    except ResourceError as error_:
        return f"Task uses invalid resources: Invalid resources: {error_}"
    error = _command_error(task.get("command"))
    if error:
        return f"Task's `CommandInfo` is invalid: {error}"
    return None


def validate_launch(
    task: JsonObject, framework: Framework, agent: Agent, available: Resources, role: str
) -> tuple[str | None, Resources]:
    """Validate one LAUNCH task against what is left of the offers.

    Returns (error, resources the launch consumes: task + new executor).
    """
    error = _task_error(task, framework, agent)
    if error:
        return error, Resources()
    if ("executor" in task) == ("command" in task):
        return (
            "Task should have at least one (but not both) of CommandInfo or ExecutorInfo present",
            Resources(),
        )
    task_resources = parse_resources(task["resources"])
    total = task_resources
    executor_resources = Resources()
    if "executor" in task:
        executor = task["executor"]
        error = _executor_error(executor, framework, agent)
        if error:
            return error, Resources()
        if executor.get("type") not in (None, "CUSTOM"):
            return "'ExecutorInfo.type' must be 'CUSTOM'", Resources()
        if "command" not in executor:
            return "'ExecutorInfo.command' must be set", Resources()
        executor_resources = parse_resources(executor.get("resources"))
        if _overlapping(task_resources, executor_resources):
            return (
                f"There are overlapping resources in the task resources {task_resources.describe(role)} "
                f"and executor resources {executor_resources.describe(role)}",
                Resources(),
            )
        if not agent.has_executor(framework.framework_id, executor["executor_id"]["value"]):
            total = total + executor_resources
    if not available.contains(total):
        return (
            f"Total resources {total.describe(role)} required by task and its executor is more than "
            f"available {available.describe(role)}",
            Resources(),
        )
    return None, total


def _format_mb(megabytes: float | None) -> str:
    if megabytes is None:
        return "None"
    return f"{megabytes:g}MB"


def validate_launch_group(  # noqa: PLR0917
    executor: JsonObject,
    tasks: list[JsonObject],
    framework: Framework,
    agent: Agent,
    available: Resources,
    role: str,
) -> tuple[str | None, Resources]:
    """Validate a LAUNCH_GROUP (tasks already carry the group's executor, as the master injects it)."""
    for task in tasks:
        error = _task_error(task, framework, agent)
        if error is None and "executor" not in task:
            error = "'TaskInfo.executor' must be set"
        if error:
            return f"Task '{task['task_id']['value']}' is invalid: {error}", Resources()
    error = _executor_error(executor, framework, agent)
    if error:
        return error, Resources()
    if "type" not in executor:
        return "'ExecutorInfo.type' must be set", Resources()
    if executor["type"] == "UNKNOWN":
        return "Unknown executor type", Resources()
    executor_id = executor["executor_id"]["value"]
    for task in tasks:
        if task.get("executor") != executor:
            return (
                f"The `ExecutorInfo` of task '{task['task_id']['value']}' is different from executor "
                f"'{executor_id}'",
                Resources(),
            )
    executor_resources = parse_resources(executor.get("resources"))
    names = executor_resources.names()
    cpus = executor_resources.scalar("cpus") if "cpus" in names else None
    if cpus is None or cpus < MIN_CPUS:
        shown = "None" if cpus is None else f"{cpus:g}"
        return (
            f"Executor '{executor_id}' uses less CPUs ({shown}) than the minimum required ({MIN_CPUS:g})",
            Resources(),
        )
    mem = executor_resources.scalar("mem") if "mem" in names else None
    if mem is None or mem < MIN_MEM_MB:
        return (
            f"Executor '{executor_id}' uses less memory ({_format_mb(mem)}) than the minimum required "
            f"({_format_mb(MIN_MEM_MB)})",
            Resources(),
        )
    if "disk" not in names:
        return f"Executor '{executor_id}' uses no disk", Resources()
    total = Resources()
    claimed = executor_resources
    for task in tasks:
        task_resources = parse_resources(task["resources"])
        if _overlapping(claimed, task_resources):
            return (
                "There are overlapping resources in the task group's task resources and/or executor "
                f"resources {executor_resources.describe(role)}",
                Resources(),
            )
        claimed = claimed + task_resources
        total = total + task_resources
    if not agent.has_executor(framework.framework_id, executor_id):
        total = total + executor_resources
    if not available.contains(total):
        return (
            f"Total resources {total.describe(role)} required by task group and its executor are more "
            f"than available {available.describe(role)}",
            Resources(),
        )
    return None, total
