"""The Mesos executor process: a thin pymesos adapter around ``TaskRunner``.

One executor process runs one task. The pymesos driver's IO thread delivers events; the main
thread runs the task (so the JVM's parent-death signal is tied to a thread that lives as long as
the process) and exits once the terminal update is acknowledged.
"""

from __future__ import annotations

import argparse
import base64
import json
import logging
import os
import queue
import signal
import sys
import threading
import time
import uuid
from typing import Any, Dict, List, Optional, Tuple

import http_parser.http
import pymesos
from http_parser.pyparser import HttpParser as PurePythonParser
from pymesos import MesosExecutorDriver
from pymesos.utils import decode_data, encode_data

from executor import __version__
from executor.agent_env import AgentEnvironment, AgentEnvironmentError, kill_grace_within
from executor.runner import TaskRunner
from executor.status import (
    REASON_TASK_INVALID,
    TASK_FAILED,
    TASK_STARTING,
    StatusReporter,
    TaskUpdate,
)
from executor.task_plan import TaskPlan, TaskPlanError

LOG = logging.getLogger("executor")
ACK_WAIT_SECS = 5.0
_EVENT_POLL_SECS = 0.2


def grace_from_kill_policy(kill_policy: Any) -> Optional[float]:
    """Seconds from a ``KillPolicy`` JSON object (``grace_period.nanoseconds``), if given."""
    if not kill_policy:
        return None
    grace = kill_policy.get("grace_period") or {}
    if "nanoseconds" not in grace:
        return None
    return max(0.0, int(grace["nanoseconds"]) / 1e9)


def status_json(task_id: str, update: TaskUpdate) -> Dict[str, Any]:
    status = {"task_id": {"value": task_id}, "state": update.state}  # type: Dict[str, Any]
    if update.message:
        status["message"] = update.message
    if update.reason:
        status["reason"] = update.reason
    if update.details:
        raw = json.dumps(update.details, sort_keys=True).encode("utf-8")
        status["data"] = base64.b64encode(raw).decode("ascii")
    return status


class AlluxioExecutorDriver(MesosExecutorDriver):  # type: ignore[misc]
    """pymesos' driver plus two things it lacks: the KILL event's kill_policy, and keeping
    unacknowledged updates so a re-SUBSCRIBE after an agent restart resends them."""

    last_kill_policy = None  # type: Optional[Dict[str, Any]]

    def __init__(self, executor: Any, agent: AgentEnvironment) -> None:
        # pymesos gives up reconnecting after `timeout`: the agent's recovery timeout, after which
        # a real agent would not take this executor back anyway.
        super().__init__(executor, use_addict=True, timeout=agent.recovery_timeout_secs)
        # pymesos reads MESOS_CHECKPOINT as bool(str), so "0" would count as checkpointing; a
        # non-checkpointed executor must stop its task when the agent connection is lost.
        self.checkpoint = agent.checkpoint

    def on_kill(self, event: Dict[str, Any]) -> None:
        self.last_kill_policy = event.get("kill_policy")
        super().on_kill(event)

    def sendStatusUpdate(self, status: Dict[str, Any]) -> None:
        status.setdefault("timestamp", time.time())
        status.setdefault("uuid", encode_data(uuid.uuid4().bytes))
        status.setdefault("source", "SOURCE_EXECUTOR")
        key = uuid.UUID(bytes=decode_data(status["uuid"]))
        with self._lock:
            self.updates[key] = {"status": status}
        try:
            super().sendStatusUpdate(status)
        except Exception as exc:
            LOG.warning(
                "could not send %s for task %s now (%s); it is resent when the agent is back",
                status.get("state"),
                status["task_id"]["value"],
                exc,
            )

    def unacknowledged(self) -> int:
        with self._lock:
            return len(self.updates)


class AlluxioExecutor:
    """pymesos ``Executor`` callbacks (duck-typed: the base class only has no-op defaults)."""

    def __init__(self, agent: AgentEnvironment) -> None:
        self.agent = agent
        self.killing_state_capable = False
        # Reentrant: the SIGTERM handler runs on the main thread, possibly while it holds this.
        self._lock = threading.RLock()
        self._events = queue.Queue()  # type: queue.Queue[Tuple[str, Any, float]]
        self.task_id = None  # type: Optional[str]
        self.runner = None  # type: Optional[TaskRunner]
        self._pending_kill = None  # type: Optional[Tuple[Optional[float]]]
        self.stopping = threading.Event()
        self.task_done = threading.Event()

    # -- pymesos callbacks (IO thread) ----------------------------------------------------------

    def registered(self, driver: Any, executor_info: Any, framework_info: Any, agent_info: Any) -> None:
        capabilities = [c.get("type") for c in (framework_info.get("capabilities") or [])]
        self.killing_state_capable = "TASK_KILLING_STATE" in capabilities
        LOG.info(
            "subscribed to agent %s (%s) for framework %s; TASK_KILLING_STATE %s",
            agent_info.get("hostname"),
            self.agent.agent_endpoint,
            self.agent.framework_id,
            "supported" if self.killing_state_capable else "not supported",
        )

    def reregistered(self, driver: Any, agent_info: Any) -> None:
        LOG.info("re-subscribed to agent %s", agent_info.get("hostname"))

    def disconnected(self, driver: Any) -> None:
        if self.task_done.is_set():
            LOG.info("disconnected from the agent (the task is done)")
        else:
            LOG.warning("disconnected from the agent at %s", self.agent.agent_endpoint)

    def launchTask(self, driver: Any, task: Any) -> None:
        launched_at = time.monotonic()
        task_id = task["task_id"]["value"]
        with self._lock:
            busy = self.task_id
            if busy is None:
                self.task_id = task_id
        if busy is not None:
            LOG.error("refusing task %s: this executor already runs task %s", task_id, busy)
            driver.sendStatusUpdate(
                status_json(
                    task_id, TaskUpdate(TASK_FAILED, "this executor runs one task; it runs %s" % busy)
                )
            )
            return
        self._events.put(("launch", task, launched_at))

    def launchTaskGroup(self, driver: Any, task_infos: List[Any]) -> None:
        for task in task_infos:
            task_id = task["task_id"]["value"]
            driver.sendStatusUpdate(
                status_json(
                    task_id, TaskUpdate(TASK_FAILED, "task groups are not supported by this executor")
                )
            )

    def killTask(self, driver: Any, task_id: Any) -> None:
        grace = grace_from_kill_policy(getattr(driver, "last_kill_policy", None))
        LOG.info("KILL for task %s (kill_policy grace: %s)", task_id.get("value"), grace)
        with self._lock:
            if task_id.get("value") != self.task_id:
                LOG.warning("KILL for unknown task %s ignored", task_id.get("value"))
                return
            runner = self.runner
            if runner is None:
                self._pending_kill = (grace,)
        if runner is not None:
            runner.request_kill(grace)

    def shutdown(self, driver: Any) -> None:
        """pymesos aborts the driver right after this returns, so block until the task is done."""
        LOG.info("SHUTDOWN from the agent")
        self._stop_task(announce=True)
        if self.task_id is not None:
            self.task_done.wait(self.agent.shutdown_grace_secs)

    def error(self, driver: Any, message: str) -> None:
        LOG.error("error from the agent: %s", message)

    def frameworkMessage(self, driver: Any, message: Any) -> None:
        LOG.info("ignoring a framework message (%d bytes)", len(message or ""))

    # -- main thread --------------------------------------------------------------------------

    def _stop_task(self, announce: bool) -> None:
        self.stopping.set()
        with self._lock:
            runner = self.runner
            if runner is None and self.task_id is not None:
                self._pending_kill = (None,)
        if runner is not None:
            grace = kill_grace_within(runner.grace_period(), self.agent.shutdown_grace_secs)
            runner.request_kill(grace, announce=announce)

    def on_signal(self, signum: int, frame: Any) -> None:
        # Runs on the main thread between bytecodes: only set flags; the runner acts on them.
        LOG.warning("received %s; stopping the task", signal.Signals(signum).name)
        self._stop_task(announce=False)

    def next_launch(self, driver: Any) -> Optional[Tuple[Any, float]]:
        while True:
            try:
                kind, task, launched_at = self._events.get(timeout=_EVENT_POLL_SECS)
            except queue.Empty:
                if self.stopping.is_set() or driver.aborted:
                    return None
                continue
            if kind == "launch":
                return task, launched_at

    def run_task(self, driver: Any, task: Any, launched_at: float) -> TaskUpdate:
        task_id = task["task_id"]["value"]

        def sink(update: TaskUpdate) -> None:
            LOG.info("task %s → %s%s", task_id, update.state, ": " + update.message if update.message else "")
            driver.sendStatusUpdate(status_json(task_id, update))

        try:
            return self._run_task(task_id, sink, task, launched_at)
        finally:
            self.task_done.set()

    def _run_task(self, task_id: str, sink: Any, task: Any, launched_at: float) -> TaskUpdate:
        try:
            plan = TaskPlan.from_task_data(task.get("data"))
            runner = TaskRunner(
                task_id,
                plan,
                self.agent.sandbox,
                sink,
                killing_state_capable=self.killing_state_capable,
                task_grace_secs=grace_from_kill_policy(task.get("kill_policy")),
                agent_grace_secs=self.agent.shutdown_grace_secs,
                launched_at=launched_at,
            )
        except Exception as exc:
            reporter = StatusReporter(sink)
            reporter.report(TaskUpdate(TASK_STARTING, "reading the task plan"))
            reason = REASON_TASK_INVALID if isinstance(exc, TaskPlanError) else None
            if reason is None:
                LOG.exception("cannot set up task %s", task_id)
            outcome = TaskUpdate(TASK_FAILED, str(exc) or exc.__class__.__name__, reason=reason)
            reporter.report(outcome)
            return outcome
        with self._lock:
            self.runner = runner
            pending = self._pending_kill
        if pending is not None:
            runner.request_kill(pending[0])
        return runner.run()


def wait_for_acknowledgements(driver: Any, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while driver.unacknowledged() and not driver.aborted and time.monotonic() < deadline:
        time.sleep(0.05)


def serve(agent: AgentEnvironment) -> int:
    executor = AlluxioExecutor(agent)
    driver = AlluxioExecutorDriver(executor, agent)
    signal.signal(signal.SIGTERM, executor.on_signal)
    driver.start()
    code = 0
    try:
        launch = executor.next_launch(driver)
        if launch is None:
            LOG.info("no task was launched; exiting")
        else:
            outcome = executor.run_task(driver, launch[0], launch[1])
            code = 0 if outcome.state != TASK_FAILED else 1
            wait_for_acknowledgements(driver, ACK_WAIT_SECS)
    finally:
        driver.stop()
        driver.join()
    return code


def self_test() -> Dict[str, Any]:
    """Import everything the executor needs and exercise the parts that need no agent."""
    parser = PurePythonParser(kind=1)
    raw = b'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{"a":\r\n2\r\n1}\r\n0\r\n\r\n'
    parser.execute(raw, len(raw))
    sample = TaskPlan(
        role="worker",
        alluxio_properties={"alluxio.master.hostname": "m1"},
        artifacts=[],
        alluxio_home_mode="local",
        alluxio_home="/opt/alluxio",
        java_home_mode="local",
        java_home="",
        heap_size_mb=1024,
        ports={"rpc": 29998, "data": 29999, "web": 30000},
        ramdisk_size_bytes=1 << 30,
    )
    return {
        "ok": parser.get_status_code() == 200
        and parser.recv_body() == b'{"a":1}'
        and TaskPlan.from_task_data(sample.to_task_data()) == sample,
        "executor": __version__,
        "python": "%d.%d.%d" % sys.version_info[:3],
        "pymesos": pymesos.__VERSION__,
        "http_parser": "pure-python" if http_parser.http.HttpParser is PurePythonParser else "compiled",
    }


def _configure_logging() -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s [%(name)s] %(message)s"))
    LOG.addHandler(handler)
    LOG.setLevel(logging.INFO)
    LOG.propagate = False


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="alluxio-mesos-executor", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    parser.add_argument("--self-test", action="store_true", help="check this installation without an agent")
    args = parser.parse_args(argv)
    if args.version:
        print("alluxio-mesos-executor %s (Python %d.%d.%d)" % (__version__, *sys.version_info[:3]))
        return 0
    if args.self_test:
        result = self_test()
        print(json.dumps(result, sort_keys=True))
        return 0 if result["ok"] else 1
    _configure_logging()
    try:
        agent = AgentEnvironment.from_environ(os.environ)
    except AgentEnvironmentError as exc:
        LOG.error("%s", exc)
        return 2
    LOG.info("alluxio-mesos executor %s, pid %d, sandbox %s", __version__, os.getpid(), agent.sandbox)
    return serve(agent)
