"""In-process simulated agents (``--simulated_agents N``) for benchmarks and conformance tests.

A simulated agent has no process and no HTTP server, but its tasks go through the same path as
real ones: the master sends run_task over the AgentLink interface, a simulated executor
produces TASK_STARTING then TASK_RUNNING, and every update carries a uuid and is retried (10 s,
doubling up to 10 min) until the scheduler acknowledges it, one update per task at a time, as
a Mesos agent's status update manager does.

What a simulated task does is read from its command (``command.value``):

* ``exit N``   - exits right after TASK_RUNNING: TASK_FINISHED if N is 0, else TASK_FAILED;
* ``sleep S``  - runs S seconds, then TASK_FINISHED;
* anything else, or a task with a custom executor - runs until killed (TASK_KILLED).

A framework MESSAGE to a simulated executor is echoed back as an executor MESSAGE.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from framework.mesos_resources import Attribute, Resources, attributes_to_json
from sandbox.mesos.master.agent_link import AgentLink
from sandbox.mesos.master.model import is_terminal
from sandbox.mesos.wire import b64encode, new_uuid_bytes, timestamp

if TYPE_CHECKING:
    from sandbox.mesos.master.master import Master

log = logging.getLogger(__name__)

JsonObject = dict[str, Any]

FIRST_RETRY = 10.0
MAX_RETRY = 600.0
_EXIT = re.compile(r"^\s*exit\s+(\d+)\s*$")
_SLEEP = re.compile(r"^\s*sleep\s+(\d+(?:\.\d+)?)\s*$")


@dataclass(eq=False)
class _UpdateStream:
    """One task's status updates: only the oldest unacknowledged one is in flight."""

    pending: collections.deque[JsonObject] = field(default_factory=collections.deque)
    inflight: JsonObject | None = None
    retry: asyncio.TimerHandle | None = None
    backoff: float = FIRST_RETRY


@dataclass(eq=False)
class _SimTask:
    framework_id: str
    task_id: str
    executor_id: str
    custom_executor: bool
    command: str
    state: str = "TASK_STAGING"
    timers: list[asyncio.TimerHandle] = field(default_factory=list)


class SimulatedAgentLink(AgentLink):
    simulated = True

    def __init__(self, master: Master, task_delay: float) -> None:
        self.master = master
        self.agent_id = ""
        self.delay = task_delay
        self.tasks: dict[tuple[str, str], _SimTask] = {}
        self.streams: dict[tuple[str, str], _UpdateStream] = {}
        self.executors: dict[tuple[str, str], set[str]] = {}
        self.stopped = False

    # -- master -> agent --------------------------------------------------------------------

    def send(self, kind: str, body: JsonObject) -> None:
        if kind == "shutdown":
            self.stopped = True

    def run_task(
        self, framework_info: JsonObject, task: JsonObject, executor_info: JsonObject | None
    ) -> None:
        framework_id = framework_info["id"]["value"]
        executor = task.get("executor")
        executor_id = executor["executor_id"]["value"] if executor else task["task_id"]["value"]
        command = (task.get("command") or {}).get("value", "")
        self._start(framework_id, task["task_id"]["value"], executor_id, executor is not None, command)

    def run_task_group(
        self, framework_info: JsonObject, executor_info: JsonObject, tasks: list[JsonObject]
    ) -> None:
        framework_id = framework_info["id"]["value"]
        executor_id = executor_info["executor_id"]["value"]
        for task in tasks:
            command = (task.get("command") or {}).get("value", "")
            self._start(framework_id, task["task_id"]["value"], executor_id, True, command)

    def kill_task(self, framework_id: str, task_id: str, kill_policy: JsonObject | None) -> None:
        sim = self.tasks.get((framework_id, task_id))
        if sim is None or is_terminal(sim.state):
            return
        self._finish(sim, "TASK_KILLED", "Command terminated with signal Terminated")

    def shutdown_executor(self, framework_id: str, executor_id: str) -> None:
        tasks = self.executors.get((framework_id, executor_id), set())
        for task_id in list(tasks):
            sim = self.tasks.get((framework_id, task_id))
            if sim is not None and not is_terminal(sim.state):
                self._finish(sim, "TASK_KILLED", "Executor shut down")

    def shutdown_framework(self, framework_id: str) -> None:
        for key in [k for k in self.tasks if k[0] == framework_id]:
            sim = self.tasks.pop(key)
            for timer in sim.timers:
                timer.cancel()
            stream = self.streams.pop(key, None)
            if stream is not None and stream.retry is not None:
                stream.retry.cancel()
        for key in [k for k in self.executors if k[0] == framework_id]:
            del self.executors[key]

    def acknowledge(self, framework_id: str, task_id: str, uuid: str) -> None:
        key = (framework_id, task_id)
        stream = self.streams.get(key)
        if stream is None or stream.inflight is None or stream.inflight.get("uuid") != uuid:
            return
        if stream.retry is not None:
            stream.retry.cancel()
            stream.retry = None
        acked = stream.inflight
        stream.inflight = None
        stream.backoff = FIRST_RETRY
        if stream.pending:
            self._send_next(key, stream)
        elif is_terminal(acked["state"]):
            del self.streams[key]
            self._forget(key)

    def framework_message(self, framework_id: str, executor_id: str, data: str) -> None:
        self.master.executor_message(self.agent_id, framework_id, executor_id, data)

    async def ping(self) -> bool:
        return not self.stopped

    # -- simulated executor -----------------------------------------------------------------

    def _later(self, sim: _SimTask, delay: float, callback: Any, *args: Any) -> None:
        loop = asyncio.get_running_loop()
        handle = loop.call_soon(callback, *args) if delay <= 0 else loop.call_later(delay, callback, *args)
        sim.timers.append(handle)

    def _start(self, framework_id: str, task_id: str, executor_id: str, custom: bool, command: str) -> None:
        sim = _SimTask(framework_id, task_id, executor_id, custom, command)
        self.tasks[(framework_id, task_id)] = sim
        if custom:
            self.executors.setdefault((framework_id, executor_id), set()).add(task_id)
        # One step at a time (each schedules the next), so a task costs one pending timer.
        self._later(sim, self.delay, self._step, sim)

    def _step(self, sim: _SimTask) -> None:
        sim.timers.clear()
        if sim.state == "TASK_STAGING":
            self._transition(sim, "TASK_STARTING", None)
            self._later(sim, self.delay, self._step, sim)
        elif sim.state == "TASK_STARTING":
            self._transition(sim, "TASK_RUNNING", None)
            exited = _EXIT.match(sim.command)
            slept = _SLEEP.match(sim.command)
            if exited:
                self._later(sim, self.delay, self._exit, sim, int(exited.group(1)))
            elif slept:
                self._later(sim, float(slept.group(1)), self._exit, sim, 0)

    def _exit(self, sim: _SimTask, code: int) -> None:
        state = "TASK_FINISHED" if code == 0 else "TASK_FAILED"
        self._transition(sim, state, f"Command exited with status {code}")

    def _transition(self, sim: _SimTask, state: str, message: str | None) -> None:
        if is_terminal(sim.state) or (sim.framework_id, sim.task_id) not in self.tasks:
            return
        sim.state = state
        status: JsonObject = {
            "task_id": {"value": sim.task_id},
            "state": state,
            "source": "SOURCE_EXECUTOR",
            "agent_id": {"value": self.agent_id},
            "executor_id": {"value": sim.executor_id},
            "timestamp": timestamp(),
            "uuid": b64encode(new_uuid_bytes()),
        }
        if message:
            status["message"] = message
        key = (sim.framework_id, sim.task_id)
        stream = self.streams.setdefault(key, _UpdateStream())
        stream.pending.append(status)
        if stream.inflight is None:
            self._send_next(key, stream)
        if is_terminal(state):
            for timer in sim.timers:
                timer.cancel()
            sim.timers.clear()
            self._executor_task_done(sim)

    def _finish(self, sim: _SimTask, state: str, message: str) -> None:
        self._transition(sim, state, message)

    def _executor_task_done(self, sim: _SimTask) -> None:
        if not sim.custom_executor:
            return
        key = (sim.framework_id, sim.executor_id)
        tasks = self.executors.get(key)
        if tasks is None:
            return
        tasks.discard(sim.task_id)
        if not tasks:
            # The simulated custom executor exits once it has nothing left to run.
            del self.executors[key]
            loop = asyncio.get_running_loop()
            loop.call_soon(self.master.exited_executor, self.agent_id, sim.framework_id, sim.executor_id, 0)

    def _send_next(self, key: tuple[str, str], stream: _UpdateStream) -> None:
        stream.inflight = stream.pending.popleft()
        self._deliver(key, stream)

    def _deliver(self, key: tuple[str, str], stream: _UpdateStream) -> None:
        if stream.inflight is None or self.stopped:
            return
        sim = self.tasks.get(key)
        latest = sim.state if sim is not None else None
        self.master.status_update(self.agent_id, key[0], stream.inflight, latest)
        stream.retry = asyncio.get_running_loop().call_later(stream.backoff, self._retry, key, stream)

    def _retry(self, key: tuple[str, str], stream: _UpdateStream) -> None:
        stream.retry = None
        stream.backoff = min(stream.backoff * 2, MAX_RETRY)
        self._deliver(key, stream)

    def _forget(self, key: tuple[str, str]) -> None:
        self.tasks.pop(key, None)

    async def close(self) -> None:
        self.stopped = True
        for stream in self.streams.values():
            if stream.retry is not None:
                stream.retry.cancel()
        for sim in self.tasks.values():
            for timer in sim.timers:
                timer.cancel()


def register_simulated_agents(  # noqa: PLR0917
    master: Master,
    count: int,
    resources: Resources,
    attributes: list[Attribute],
    hostname_pattern: str,
    task_delay: float,
) -> list[SimulatedAgentLink]:
    resources_json = resources.to_json()
    attributes_json = attributes_to_json(attributes)
    specs: list[tuple[JsonObject, AgentLink]] = []
    links: list[SimulatedAgentLink] = []
    for n in range(count):
        link = SimulatedAgentLink(master, task_delay)
        info: JsonObject = {
            "hostname": hostname_pattern.format(n=n),
            "port": 5051,
            "resources": resources_json,
            "attributes": attributes_json,
        }
        specs.append((info, link))
        links.append(link)
    for agent, link in zip(master.add_simulated_agents(specs), links, strict=True):
        link.agent_id = agent.agent_id
    log.info("registered %d simulated agents", count)
    return links
