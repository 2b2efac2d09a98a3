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
from collections.abc import Callable
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


# A scheduled retry: (due on the loop clock, sequence number, the stream it is for). It is live
# while the stream's ``retry`` is this very tuple; acknowledging an update just forgets it.
_Retry = tuple[float, int, "_UpdateStream"]


@dataclass(eq=False)
class _UpdateStream:
    """One task's status updates: only the oldest unacknowledged one is in flight."""

    link: SimulatedAgentLink
    key: tuple[str, str]
    pending: collections.deque[JsonObject] = field(default_factory=collections.deque)
    inflight: JsonObject | None = None
    retry: _Retry | None = None
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
    # Bumped to cancel the task's callbacks queued in SimulationTimers.soon (they carry the
    # generation they were queued in).
    generation: int = 0


def _due_order(retry: _Retry) -> tuple[float, int]:
    return retry[0], retry[1]


class SimulationTimers:
    """The simulated executors' clock, shared by all simulated agents of a master.

    With thousands of simulated tasks, one asyncio handle per state change and one timer per
    unacknowledged update cost more than the simulation itself. Here the callbacks due "now"
    of all agents run together from one loop callback, in the order they were queued (what
    one call_soon each would do), and update retries wait in one FIFO per retry delay (due
    times in a FIFO are then in order), served by a single timer.
    """

    def __init__(self) -> None:
        self._soon: list[tuple[_SimTask, int, Callable[..., None], tuple[Any, ...]]] = []
        self._retries: dict[float, collections.deque[_Retry]] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._timer_due = 0.0
        self._sequence = 0

    # -- callbacks due now ----------------------------------------------------------------

    def soon(self, sim: _SimTask, callback: Callable[..., None], *args: Any) -> None:
        """Run ``callback(*args)`` on the next loop iteration unless the task's timers are cancelled."""
        if not self._soon:
            asyncio.get_running_loop().call_soon(self._run_soon)
        self._soon.append((sim, sim.generation, callback, args))

    def _run_soon(self) -> None:
        due, self._soon = self._soon, []
        for sim, generation, callback, args in due:
            if sim.generation != generation:
                continue
            try:
                callback(*args)
            except Exception:  # one task's failure must not stop the others' (as with call_soon)
                log.exception("simulated executor callback failed")

    # -- update retries -------------------------------------------------------------------

    def retry_later(self, stream: _UpdateStream, delay: float) -> None:
        """Redeliver the stream's in-flight update after ``delay`` seconds unless acknowledged."""
        loop = asyncio.get_running_loop()
        due = loop.time() + delay
        self._sequence += 1
        retry: _Retry = (due, self._sequence, stream)
        stream.retry = retry
        fifo = self._retries.get(delay)
        if fifo is None:
            fifo = self._retries[delay] = collections.deque()
        fifo.append(retry)
        if self._timer is None or due < self._timer_due:
            self._arm(loop, due)

    def _arm(self, loop: asyncio.AbstractEventLoop, due: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer_due = due
        self._timer = loop.call_at(due, self._run_retries)

    def _run_retries(self) -> None:
        loop = asyncio.get_running_loop()
        self._timer = None
        # asyncio may run a timer up to its clock resolution early.
        now = max(loop.time(), self._timer_due)
        due: list[_Retry] = []
        for fifo in self._retries.values():
            while fifo and fifo[0][0] <= now:
                retry = fifo.popleft()
                if retry[2].retry is retry:
                    due.append(retry)
        # In due order across the FIFOs, as separate timers would have fired.
        due.sort(key=_due_order)
        for retry in due:
            stream = retry[2]
            if stream.retry is retry:
                stream.link.retry(stream)
        self._arm_for_next(loop)

    def _arm_for_next(self, loop: asyncio.AbstractEventLoop) -> None:
        earliest: float | None = None
        for fifo in self._retries.values():
            # Acknowledged updates leave their entries behind; drop them once they lead.
            while fifo and fifo[0][2].retry is not fifo[0]:
                fifo.popleft()
            if fifo and (earliest is None or fifo[0][0] < earliest):
                earliest = fifo[0][0]
        if earliest is not None and (self._timer is None or earliest < self._timer_due):
            self._arm(loop, earliest)


class SimulatedAgentLink(AgentLink):
    simulated = True

    def __init__(self, master: Master, task_delay: float, timers: SimulationTimers) -> None:
        self.master = master
        self.agent_id = ""
        self.delay = task_delay
        self.timers = timers
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
            _cancel_timers(self.tasks.pop(key))
            stream = self.streams.pop(key, None)
            if stream is not None:
                stream.retry = None
        for key in [k for k in self.executors if k[0] == framework_id]:
            del self.executors[key]

    def acknowledge(self, framework_id: str, task_id: str, uuid: str) -> None:
        key = (framework_id, task_id)
        stream = self.streams.get(key)
        if stream is None or stream.inflight is None or stream.inflight.get("uuid") != uuid:
            return
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
        if delay <= 0:
            self.timers.soon(sim, callback, *args)
        else:
            sim.timers.append(asyncio.get_running_loop().call_later(delay, callback, *args))

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
        stream = self.streams.get(key)
        if stream is None:
            stream = self.streams[key] = _UpdateStream(self, key)
        stream.pending.append(status)
        if stream.inflight is None:
            self._send_next(key, stream)
        if is_terminal(state):
            _cancel_timers(sim)
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
        self.timers.retry_later(stream, stream.backoff)

    def retry(self, stream: _UpdateStream) -> None:
        """No acknowledgement came within the backoff: send the in-flight update again."""
        stream.retry = None
        stream.backoff = min(stream.backoff * 2, MAX_RETRY)
        self._deliver(stream.key, stream)

    def _forget(self, key: tuple[str, str]) -> None:
        self.tasks.pop(key, None)

    async def close(self) -> None:
        self.stopped = True
        for stream in self.streams.values():
            stream.retry = None
        for sim in self.tasks.values():
            _cancel_timers(sim)


def _cancel_timers(sim: _SimTask) -> None:
    for timer in sim.timers:
        timer.cancel()
    sim.timers.clear()
    sim.generation += 1


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
    timers = SimulationTimers()
    for n in range(count):
        link = SimulatedAgentLink(master, task_delay, timers)
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
