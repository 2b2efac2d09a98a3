"""A test framework built on unmodified pymesos: a MesosSchedulerDriver that records everything.

Tests drive it from the main thread (launch, kill, reconcile, stop) and wait for what the
driver's thread reports (offers, status updates, messages, executor losses).
"""

from __future__ import annotations

import base64
import json
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pymesos import MesosSchedulerDriver, Scheduler

from sandbox.mesos.protojson import TERMINAL_STATES
from tests.mesos_fixtures import AgentProcess

EXECUTOR_SCRIPT = Path(__file__).with_name("pymesos_executor.py")


def executor_runs_dir(agent: AgentProcess, framework_id: str, executor_id: str) -> Path:
    """Where the agent puts an executor's runs, spelled out as Mesos lays it out (not via paths.py)."""
    return (
        agent.work_dir
        / "slaves"
        / agent.agent_id
        / "frameworks"
        / framework_id
        / "executors"
        / executor_id
        / "runs"
    )


def latest_sandbox(agent: AgentProcess, framework_id: str, executor_id: str) -> Path:
    """The sandbox of the executor's latest run (``runs/latest`` resolved)."""
    return (executor_runs_dir(agent, framework_id, executor_id) / "latest").resolve()


def executor_record(sandbox: Path, timeout: float = 20.0) -> dict[str, Any]:
    """What pymesos_executor.py recorded about itself once registered (its pid, env, ...)."""
    record = sandbox / "executor.json"
    deadline = time.monotonic() + timeout
    while not record.exists():
        assert time.monotonic() < deadline, f"the executor never registered ({sandbox})"
        time.sleep(0.05)
    # The executor writes the record right after registering; let it finish writing.
    time.sleep(0.1)
    return dict(json.loads(record.read_text()))


def is_alive(pid: int) -> bool:
    """Whether the process exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def scalar(name: str, value: float) -> dict[str, Any]:
    return {"name": name, "type": "SCALAR", "scalar": {"value": value}}


def small_resources() -> list[dict[str, Any]]:
    return [scalar("cpus", 0.1), scalar("mem", 32)]


def command_task(
    task_id: str,
    agent_id: str,
    value: str,
    *,
    shell: bool = True,
    arguments: list[str] | None = None,
    uris: list[dict[str, Any]] | None = None,
    user: str | None = None,
    kill_grace_seconds: float | None = None,
) -> dict[str, Any]:
    command: dict[str, Any] = {"value": value, "shell": shell}
    if arguments is not None:
        command["arguments"] = arguments
    if uris:
        command["uris"] = uris
    if user is not None:
        command["user"] = user
    task: dict[str, Any] = {
        "task_id": {"value": task_id},
        "agent_id": {"value": agent_id},
        "name": task_id,
        "resources": small_resources(),
        "command": command,
    }
    if kill_grace_seconds is not None:
        task["kill_policy"] = {"grace_period": {"nanoseconds": int(kill_grace_seconds * 1e9)}}
    return task


def executor_info(
    executor_id: str,
    *,
    command: dict[str, Any] | None = None,
    environment: dict[str, str] | None = None,
) -> dict[str, Any]:
    """An ExecutorInfo running pymesos_executor.py with this venv's python (or ``command``)."""
    cmd = command or {"value": f"{sys.executable} {EXECUTOR_SCRIPT}", "shell": True}
    if environment:
        cmd["environment"] = {"variables": [{"name": k, "value": v} for k, v in environment.items()]}
    return {
        "executor_id": {"value": executor_id},
        "name": f"test executor {executor_id}",
        "command": cmd,
        "resources": small_resources(),
    }


def executor_task(
    task_id: str, agent_id: str, executor: dict[str, Any], plan: dict[str, Any]
) -> dict[str, Any]:
    return {
        "task_id": {"value": task_id},
        "agent_id": {"value": agent_id},
        "name": task_id,
        "resources": small_resources(),
        "executor": executor,
        "data": base64.b64encode(json.dumps(plan).encode()).decode(),
    }


class Recorder(Scheduler):
    """Keeps every callback pymesos makes, under one condition variable."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.framework_id: str | None = None
        self.registrations = 0
        self.reregistrations = 0
        self.offers: list[dict[str, Any]] = []
        self.updates: list[dict[str, Any]] = []
        self.messages: list[tuple[str, str, bytes]] = []
        self.executor_lost: list[tuple[str, str, int]] = []
        self.agent_lost: list[str] = []
        self.errors: list[str] = []

    def _record(self, action: Callable[[], None]) -> None:
        with self.cond:
            action()
            self.cond.notify_all()

    def registered(self, driver: Any, framework_id: Any, master_info: Any) -> None:
        def act() -> None:
            self.framework_id = framework_id["value"]
            self.registrations += 1

        self._record(act)

    def reregistered(self, driver: Any, master_info: Any) -> None:
        self._record(lambda: setattr(self, "reregistrations", self.reregistrations + 1))

    def resourceOffers(self, driver: Any, offers: Any) -> None:
        self._record(lambda: self.offers.extend(offers))

    def offerRescinded(self, driver: Any, offer_id: Any) -> None:
        self._record(
            lambda: self.offers.__setitem__(slice(None), [o for o in self.offers if o["id"] != offer_id])
        )

    def statusUpdate(self, driver: Any, update: Any) -> None:
        received = dict(update)
        received["_received_at"] = time.monotonic()
        self._record(lambda: self.updates.append(received))

    def frameworkMessage(self, driver: Any, executor_id: Any, agent_id: Any, data: Any) -> None:
        self._record(
            lambda: self.messages.append((executor_id["value"], agent_id["value"], base64.b64decode(data)))
        )

    def executorLost(self, driver: Any, executor_id: Any, agent_id: Any, status: Any) -> None:
        self._record(
            lambda: self.executor_lost.append((executor_id["value"], agent_id["value"], int(status)))
        )

    def slaveLost(self, driver: Any, agent_id: Any) -> None:
        self._record(lambda: self.agent_lost.append(agent_id["value"]))

    def error(self, driver: Any, message: Any) -> None:
        self._record(lambda: self.errors.append(str(message)))


class TestFramework:
    """One pymesos scheduler driver plus convenience waits. Always ``stop()`` it (fixtures do)."""

    __test__ = False  # not a pytest test class

    def __init__(
        self,
        master: str,
        *,
        name: str = "agent-tests",
        checkpoint: bool = False,
        failover_timeout: float | None = None,
        framework_id: str | None = None,
        capabilities: list[str] | None = None,
        user: str = "root",
        implicit_acknowledgements: bool = True,
    ) -> None:
        self.recorder = Recorder()
        info: dict[str, Any] = {"user": user, "name": name, "checkpoint": checkpoint}
        if failover_timeout is not None:
            info["failover_timeout"] = failover_timeout
        if framework_id is not None:
            info["id"] = {"value": framework_id}
            self.recorder.framework_id = framework_id
        if capabilities:
            info["capabilities"] = [{"type": c} for c in capabilities]
        self.driver = MesosSchedulerDriver(
            self.recorder, info, master, use_addict=True, implicit_acknowledgements=implicit_acknowledgements
        )
        self._stopped = False

    def start(self, timeout: float = 20.0) -> TestFramework:
        self.driver.start()
        self.wait_for(lambda r: r.registrations + r.reregistrations > 0, timeout, "framework registration")
        return self

    def stop(self, *, failover: bool = False) -> None:
        if not self._stopped:
            self._stopped = True
            self.driver.stop(failover=failover)
            self.driver.join()

    @property
    def framework_id(self) -> str:
        assert self.recorder.framework_id is not None
        return self.recorder.framework_id

    def wait_for(self, predicate: Callable[[Recorder], Any], timeout: float, what: str) -> Any:
        deadline = time.monotonic() + timeout
        with self.recorder.cond:
            while True:
                result = predicate(self.recorder)
                if result:
                    return result
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(
                        f"timed out after {timeout}s waiting for {what}; updates: {self.recorder.updates}"
                    )
                self.recorder.cond.wait(remaining)

    def take_offer(self, agent_id: str | None = None, timeout: float = 20.0) -> dict[str, Any]:
        def find(recorder: Recorder) -> dict[str, Any] | None:
            for offer in recorder.offers:
                if agent_id is None or offer["agent_id"]["value"] == agent_id:
                    recorder.offers.remove(offer)
                    return offer
            return None

        return self.wait_for(find, timeout, f"an offer from agent {agent_id}")

    def launch(self, tasks: list[dict[str, Any]], agent_id: str | None = None) -> dict[str, Any]:
        offer = self.take_offer(agent_id)
        self.driver.launchTasks([offer["id"]], tasks)
        return offer

    def updates_for(self, task_id: str) -> list[dict[str, Any]]:
        with self.recorder.cond:
            return [u for u in self.recorder.updates if u["task_id"]["value"] == task_id]

    def wait_update(
        self, task_id: str, state: str, timeout: float = 30.0, *, after: int = 0
    ) -> dict[str, Any]:
        def find(recorder: Recorder) -> dict[str, Any] | None:
            matching = [u for u in recorder.updates if u["task_id"]["value"] == task_id]
            for update in matching[after:]:
                if update["state"] == state:
                    return update
            return None

        return self.wait_for(find, timeout, f"{state} for task {task_id}")

    def wait_terminal(self, task_id: str, timeout: float = 30.0) -> dict[str, Any]:
        def find(recorder: Recorder) -> dict[str, Any] | None:
            for update in recorder.updates:
                if update["task_id"]["value"] == task_id and update["state"] in TERMINAL_STATES:
                    return update
            return None

        return self.wait_for(find, timeout, f"a terminal update for task {task_id}")

    def states(self, task_id: str) -> list[str]:
        return [u["state"] for u in self.updates_for(task_id) if u.get("source") != "SOURCE_MASTER"]
