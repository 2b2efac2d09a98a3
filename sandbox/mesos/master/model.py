"""The master's in-memory records: agents, frameworks, tasks, executors and offers.

Plain data with the bookkeeping helpers that keep resource accounting consistent; the rules
for *when* things change live in the Master (master.py) and the Allocator (allocator.py).
"""

from __future__ import annotations

import asyncio
import collections
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from framework.mesos_resources import Attribute, ResourceError, Resources
from sandbox.mesos.protojson import TERMINAL_STATES

if TYPE_CHECKING:
    from sandbox.mesos.master.agent_link import AgentLink
    from sandbox.mesos.master.streams import SchedulerStream

JsonObject = dict[str, Any]


def is_terminal(state: str) -> bool:
    return state in TERMINAL_STATES


@dataclass(eq=False)
class Task:
    """A task the master tracks, from LAUNCH until its terminal update is acknowledged."""

    task_id: str
    framework_id: str
    agent_id: str
    name: str
    executor_id: str | None
    resources: Resources
    role: str
    info: JsonObject  # the TaskInfo as launched (with executor framework_id filled)
    state: str = "TASK_STAGING"
    status_update_state: str | None = None
    status_update_uuid: str | None = None  # base64, of the update the framework must ack
    statuses: list[JsonObject] = field(default_factory=list)
    unreachable: bool = False

    def latest_status(self) -> JsonObject | None:
        return self.statuses[-1] if self.statuses else None


@dataclass(eq=False)
class Offer:
    offer_id: str
    framework_id: str
    agent_id: str
    resources: Resources
    role: str


@dataclass(eq=False)
class Agent:
    """A registered agent (real, over the internal protocol, or simulated in-process)."""

    agent_id: str
    hostname: str
    port: int
    info: JsonObject  # AgentInfo as registered (with id)
    total: Resources
    attributes: list[Attribute]
    link: AgentLink
    pid: str
    registered_time: float
    version: str
    reregistered_time: float | None = None
    active: bool = True
    ping_failures: int = 0
    # (framework_id, task_id) -> Task
    tasks: dict[tuple[str, str], Task] = field(default_factory=dict)
    # framework_id -> executor_id -> ExecutorInfo
    executors: dict[str, dict[str, JsonObject]] = field(default_factory=dict)
    offers: dict[str, Offer] = field(default_factory=dict)
    # resources used by tasks and executors here (all frameworks)
    used_total: Resources = field(default_factory=Resources)
    offered_total: Resources = field(default_factory=Resources)

    # Static parts of every offer for this agent (url, attributes), built once.
    offer_template: JsonObject = field(default_factory=dict)
    ip: str = "127.0.0.1"
    # Cache of total - used - offered; replaced (never mutated) whenever one of them changes,
    # so the allocator can tell "nothing changed here" by identity.
    _available: Resources | None = None
    # True when nothing on the agent is reserved: any role may be offered all of it.
    unreserved_only: bool = True

    def available(self) -> Resources:
        if self._available is None:
            self._available = self.total - self.used_total - self.offered_total
        return self._available

    def set_total(self, total: Resources) -> None:
        self.total = total
        self._available = None

    def allocate(self, framework_id: str, resources: Resources) -> None:
        self.used_total = self.used_total + resources
        self._available = None

    def release(self, framework_id: str, resources: Resources) -> None:
        self.used_total = self.used_total - resources
        self._available = None

    def add_offered(self, resources: Resources) -> None:
        self.offered_total = self.offered_total + resources
        self._available = None

    def remove_offered(self, resources: Resources) -> None:
        self.offered_total = self.offered_total - resources
        self._available = None

    def has_executor(self, framework_id: str, executor_id: str) -> bool:
        return executor_id in self.executors.get(framework_id, {})


@dataclass(eq=False)
class Framework:
    framework_id: str
    info: JsonObject  # FrameworkInfo with id
    registered_time: float
    stream: SchedulerStream | None = None
    active: bool = True
    recovered: bool = False
    reregistered_time: float | None = None
    unregistered_time: float | None = None
    suppressed_roles: set[str] = field(default_factory=set)
    tasks: dict[str, Task] = field(default_factory=dict)
    # PARTITION_AWARE frameworks' tasks on unreachable agents (TASK_UNREACHABLE)
    unreachable_tasks: dict[str, Task] = field(default_factory=dict)
    completed_tasks: collections.deque[Task] = field(default_factory=lambda: collections.deque(maxlen=1000))
    # agent_id -> executor_id -> ExecutorInfo
    executors: dict[str, dict[str, JsonObject]] = field(default_factory=dict)
    offers: dict[str, Offer] = field(default_factory=dict)
    # agent_id -> [(refused resources, expiry on the loop clock)], from DECLINE/ACCEPT filters
    filters: dict[str, list[tuple[Resources, float]]] = field(default_factory=dict)
    # agent_id -> (the agent's available Resources object, filtered until): the allocator's
    # memo of "these exact resources are filtered", valid while the agent's resources stay put.
    filter_memo: dict[str, tuple[Resources, float]] = field(default_factory=dict)
    failover_timer: asyncio.TimerHandle | None = None

    @property
    def connected(self) -> bool:
        return self.stream is not None

    @property
    def name(self) -> str:
        return str(self.info.get("name", ""))

    def capabilities(self) -> set[str]:
        return {c.get("type", "") for c in self.info.get("capabilities", []) if isinstance(c, dict)}

    def has_capability(self, capability: str) -> bool:
        return capability in self.capabilities()

    @property
    def partition_aware(self) -> bool:
        return self.has_capability("PARTITION_AWARE")

    @property
    def multi_role(self) -> bool:
        return self.has_capability("MULTI_ROLE")

    def roles(self) -> list[str]:
        if self.multi_role:
            return list(self.info.get("roles", []))
        return [str(self.info.get("role", "*"))]

    def used_resources(self) -> Resources:
        """What its live tasks and executors hold (computed on demand: only /state asks)."""
        total = Resources()
        for task in self.tasks.values():
            if not is_terminal(task.state) and task.state != "TASK_UNREACHABLE":
                total = total + task.resources
        for executors in self.executors.values():
            for executor in executors.values():
                try:
                    total = total + Resources.from_json(executor.get("resources", []))
                except ResourceError:
                    continue
        return total

    def offered_resources(self) -> Resources:
        total = Resources()
        for offer in self.offers.values():
            total = total + offer.resources
        return total

    def offerable_roles(self) -> list[str]:
        return [r for r in self.roles() if r not in self.suppressed_roles]
