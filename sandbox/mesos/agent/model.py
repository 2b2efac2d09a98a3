"""The agent's view of frameworks, executors and tasks (Mesos' Framework/Executor/Task in slave.hpp).

Plain data plus the bookkeeping rules Mesos applies to it: where a task lives in its
executor's life (queued -> launched -> terminated -> completed), which states are terminal,
and the operator-API JSON of a task. All mutation happens on the agent's event loop.
"""

from __future__ import annotations

import enum
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from sandbox.mesos.protojson import TERMINAL_STATES

MAX_COMPLETED_TASKS_PER_EXECUTOR = 200
MAX_COMPLETED_EXECUTORS_PER_FRAMEWORK = 150
MAX_COMPLETED_FRAMEWORKS = 50


def is_terminal(state: str) -> bool:
    return state in TERMINAL_STATES


def has_capability(framework_info: dict[str, Any], capability: str) -> bool:
    return any(c.get("type") == capability for c in framework_info.get("capabilities", []))


class ExecutorState(enum.Enum):
    REGISTERING = "REGISTERING"
    RUNNING = "RUNNING"
    TERMINATING = "TERMINATING"
    TERMINATED = "TERMINATED"


class FrameworkState(enum.Enum):
    RUNNING = "RUNNING"
    TERMINATING = "TERMINATING"


@dataclass
class Termination:
    """Why the agent is ending a container, reported in the tasks' last status updates."""

    state: str
    reason: str
    message: str


@dataclass
class Task:
    """Mesos' ``Task`` as the agent keeps it (and checkpoints it in task.info)."""

    info: dict[str, Any]
    framework_id: str
    executor_id: str
    agent_id: str
    state: str = "TASK_STAGING"
    statuses: list[dict[str, Any]] = field(default_factory=list)
    status_update_state: str | None = None
    status_update_uuid: str | None = None

    @property
    def task_id(self) -> str:
        return str(self.info["task_id"]["value"])

    def to_json(self) -> dict[str, Any]:
        """The v1 operator-API Task (also what re-registration reports to the master)."""
        out: dict[str, Any] = {
            "name": self.info.get("name", ""),
            "task_id": self.info["task_id"],
            "framework_id": {"value": self.framework_id},
            "executor_id": {"value": self.executor_id},
            "agent_id": {"value": self.agent_id},
            "state": self.state,
            "resources": self.info.get("resources", []),
            "statuses": self.statuses,
        }
        for key in ("labels", "discovery", "container", "health_check", "kill_policy", "check"):
            if key in self.info:
                out[key] = self.info[key]
        if self.status_update_state is not None:
            out["status_update_state"] = self.status_update_state
            out["status_update_uuid"] = self.status_update_uuid
        return out

    def state_json(self) -> dict[str, Any]:
        """The task as the agent's /state endpoint prints it (v0 field names)."""
        out: dict[str, Any] = {
            "id": self.task_id,
            "name": self.info.get("name", ""),
            "framework_id": self.framework_id,
            "executor_id": self.executor_id,
            "slave_id": self.agent_id,
            "state": self.state,
            "resources": self.info.get("resources", []),
            "statuses": [
                {k: v for k, v in s.items() if k in ("state", "timestamp", "container_status", "healthy")}
                for s in self.statuses
            ],
        }
        if "labels" in self.info:
            out["labels"] = self.info["labels"].get("labels", [])
        return out


@dataclass
class Executor:
    """One run (container) of an executor."""

    info: dict[str, Any]
    framework_id: str
    container_id: str
    directory: str
    checkpoint: bool
    generated_for_command_task: bool
    user: str | None
    state: ExecutorState = ExecutorState.REGISTERING
    queued_tasks: dict[str, dict[str, Any]] = field(default_factory=dict)
    launched_tasks: dict[str, Task] = field(default_factory=dict)
    terminated_tasks: dict[str, Task] = field(default_factory=dict)
    completed_tasks: deque[Task] = field(
        default_factory=lambda: deque(maxlen=MAX_COMPLETED_TASKS_PER_EXECUTOR)
    )
    pending_termination: Termination | None = None
    ever_sent_task: bool = False
    # The executor's event stream while it is subscribed (an ExecutorStream).
    stream: Any = None

    @property
    def executor_id(self) -> str:
        return str(self.info["executor_id"]["value"])

    def incomplete_tasks(self) -> bool:
        return bool(self.queued_tasks or self.launched_tasks or self.terminated_tasks)

    def has_task(self, task_id: str) -> bool:
        return (
            task_id in self.queued_tasks or task_id in self.launched_tasks or task_id in self.terminated_tasks
        )

    def add_launched_task(self, task_info: dict[str, Any], agent_id: str) -> Task:
        task = Task(
            info=task_info, framework_id=self.framework_id, executor_id=self.executor_id, agent_id=agent_id
        )
        self.launched_tasks[task.task_id] = task
        self.ever_sent_task = True
        return task

    def update_task_state(self, status: dict[str, Any], agent_id: str) -> Task:
        """Apply a status update to the task (Executor::updateTaskState); raises ValueError."""
        task_id = str(status["task_id"]["value"])
        state = str(status["state"])
        if task_id in self.queued_tasks:
            if not is_terminal(state):
                raise ValueError("Queued tasks can only be transitioned to terminal states")
            task = Task(
                info=self.queued_tasks.pop(task_id),
                framework_id=self.framework_id,
                executor_id=self.executor_id,
                agent_id=agent_id,
            )
            self.terminated_tasks[task_id] = task
        elif task_id in self.launched_tasks:
            task = self.launched_tasks[task_id]
            if is_terminal(state):
                self.terminated_tasks[task_id] = self.launched_tasks.pop(task_id)
        elif task_id in self.terminated_tasks:
            raise ValueError("Task is already terminated")
        else:
            raise ValueError("Task is unknown")
        task.state = state
        task.statuses.append(status)
        return task

    def complete_task(self, task_id: str) -> None:
        task = self.terminated_tasks.pop(task_id, None)
        if task is not None:
            self.completed_tasks.append(task)

    def allocated_resources(self) -> list[dict[str, Any]]:
        resources = list(self.info.get("resources", []))
        for task in self.launched_tasks.values():
            resources += task.info.get("resources", [])
        for task_info in self.queued_tasks.values():
            resources += task_info.get("resources", [])
        return resources


@dataclass
class Framework:
    info: dict[str, Any]
    state: FrameworkState = FrameworkState.RUNNING
    executors: dict[str, Executor] = field(default_factory=dict)
    completed_executors: deque[Executor] = field(
        default_factory=lambda: deque(maxlen=MAX_COMPLETED_EXECUTORS_PER_FRAMEWORK)
    )

    @property
    def framework_id(self) -> str:
        return str(self.info["id"]["value"])

    @property
    def checkpoint(self) -> bool:
        return bool(self.info.get("checkpoint", False))

    def executor_for_task(self, task_id: str) -> Executor | None:
        for executor in self.executors.values():
            if executor.has_task(task_id):
                return executor
        return None

    def idle(self) -> bool:
        return not self.executors
