"""The command executor (Mesos' ``mesos-executor``): runs one TaskInfo.command as a process.

The agent generates an ExecutorInfo for every task that has a ``command`` instead of an
``executor`` and starts this program for it; the executor id is the task id. It speaks the v1
executor HTTP API like any other executor (SUBSCRIBE, UPDATE) and behaves like
src/launcher/executor.cpp:

* on LAUNCH: TASK_STARTING, start the command in its own session, TASK_RUNNING;
* when the command exits: TASK_FINISHED (status 0) or TASK_FAILED / TASK_KILLED with
  "Command exited with status N" / "Command terminated with signal S";
* on KILL: TASK_KILLING (if the framework can handle it), SIGTERM to the command's process
  tree, SIGKILL after the kill policy's grace period (default 3 s);
* on SHUTDOWN: the same kill, with the shutdown grace period minus 2 s;
* exits once its terminal update is acknowledged.

Run by the agent as ``python3 command_executor.py`` (like mesos-executor from --launcher_dir):
standard library plus this repository's stdlib-only sandbox.mesos.wire and agent model, so
Mesos durations and terminal states have one definition.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import uuid as uuidlib
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    # Started as a script, so only this file's directory is on sys.path; the repository root
    # (three levels up) makes the shared stand-in modules importable.
    sys.path.insert(0, str(Path(__file__).resolve().parents[3]))

from sandbox.mesos.agent.model import is_terminal
from sandbox.mesos.wire import parse_duration

DEFAULT_KILL_GRACE = 3.0


class SubscribeRejected(Exception):
    def __init__(self, status: int, detail: bytes) -> None:
        super().__init__(f"SUBSCRIBE answered {status}: {detail!r}")
        self.status = status


def log(message: str) -> None:
    sys.stdout.write(message + "\n")
    sys.stdout.flush()


def describe(status: int) -> str:
    if os.WIFEXITED(status):
        return f"exited with status {os.WEXITSTATUS(status)}"
    signum = os.WTERMSIG(status)
    return f"terminated with signal {signal.strsignal(signum) or signum}"


class AgentConnection:
    """The v1 executor API of the local agent: a SUBSCRIBE stream plus one-shot calls."""

    def __init__(self, endpoint: str, framework_id: str, executor_id: str) -> None:
        host, _, port = endpoint.rpartition(":")
        self.host, self.port = host, int(port)
        self.framework_id = framework_id
        self.executor_id = executor_id

    def _call(self, body: dict[str, Any]) -> bytes:
        body = dict(body, framework_id={"value": self.framework_id}, executor_id={"value": self.executor_id})
        return json.dumps(body).encode("utf-8")

    def subscribe(
        self, unacknowledged_updates: list[dict[str, Any]], unacknowledged_task: dict[str, Any] | None
    ):
        connection = http.client.HTTPConnection(self.host, self.port, timeout=None)
        subscribe: dict[str, Any] = {"unacknowledged_updates": unacknowledged_updates}
        if unacknowledged_task is not None:
            subscribe["unacknowledged_tasks"] = [unacknowledged_task]
        connection.request(
            "POST",
            "/api/v1/executor",
            body=self._call({"type": "SUBSCRIBE", "subscribe": subscribe}),
            headers={"Content-Type": "application/json", "Accept": "application/json"},
        )
        response = connection.getresponse()
        if response.status != 200:
            detail = response.read()[:200]
            connection.close()
            raise SubscribeRejected(response.status, detail)
        return connection, response

    def send(self, body: dict[str, Any]) -> None:
        connection = http.client.HTTPConnection(self.host, self.port, timeout=10)
        try:
            connection.request(
                "POST",
                "/api/v1/executor",
                body=self._call(body),
                headers={"Content-Type": "application/json"},
            )
            response = connection.getresponse()
            response.read()
            if response.status != 202:
                raise ConnectionError(f"{body.get('type')} answered {response.status}")
        finally:
            connection.close()


def read_events(response: http.client.HTTPResponse):
    while True:
        header = response.readline()
        if not header:
            return
        length = int(header.strip())
        payload = response.read(length)
        if len(payload) < length:
            return
        yield json.loads(payload.decode("utf-8"))


class CommandExecutor:
    def __init__(self) -> None:
        env = os.environ
        self.framework_id = env["MESOS_FRAMEWORK_ID"]
        self.executor_id = env["MESOS_EXECUTOR_ID"]
        self.checkpoint = env.get("MESOS_CHECKPOINT") == "1"
        self.recovery_timeout = parse_duration(env.get("MESOS_RECOVERY_TIMEOUT", "15mins"))
        self.backoff_max = parse_duration(env.get("MESOS_SUBSCRIPTION_BACKOFF_MAX", "2secs"))
        self.shutdown_grace = parse_duration(env.get("MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD", "5secs"))
        self.agent = AgentConnection(env["MESOS_AGENT_ENDPOINT"], self.framework_id, self.executor_id)
        self.events: queue.Queue[dict[str, Any]] = queue.Queue()
        self.framework_info: dict[str, Any] = {}
        self.task: dict[str, Any] | None = None
        self.unacknowledged: dict[str, dict[str, Any]] = {}
        self.process: subprocess.Popen | None = None
        self.killed = False
        self.terminal_uuid: str | None = None
        self.kill_deadline: float | None = None
        self.done = threading.Event()
        self.shutting_down = False

    # -- connection -------------------------------------------------------------------------

    def connection_loop(self) -> None:
        disconnected_since: float | None = None
        backoff = 0.1
        while not self.done.is_set():
            try:
                connection, response = self.agent.subscribe(
                    list(self.unacknowledged.values()), self.task_if_unacked()
                )
            except SubscribeRejected as rejected:
                if rejected.status != 503:
                    log(f"The agent refused the subscription ({rejected}); shutting down")
                    self.events.put({"type": "SHUTDOWN"})
                    return
                time.sleep(backoff)
                backoff = min(backoff * 2, self.backoff_max)
                continue
            except OSError as error:
                now = time.monotonic()
                disconnected_since = disconnected_since or now
                if not self.checkpoint or now - disconnected_since > self.recovery_timeout:
                    log(f"Could not connect to the agent ({error}); shutting down")
                    self.events.put({"type": "SHUTDOWN"})
                    return
                time.sleep(backoff)
                backoff = min(backoff * 2, self.backoff_max)
                continue
            disconnected_since, backoff = None, 0.1
            try:
                for event in read_events(response):
                    self.events.put(event)
            except (OSError, ValueError) as error:
                log(f"Lost the agent connection: {error}")
            finally:
                connection.close()
            if self.done.is_set():
                return
            if not self.checkpoint:
                log("Disconnected from the agent and the framework does not checkpoint; shutting down")
                self.events.put({"type": "SHUTDOWN"})
                return
            disconnected_since = time.monotonic()

    def task_if_unacked(self) -> dict[str, Any] | None:
        return (
            self.task if self.task is not None and not self.unacknowledged and self.process is None else None
        )

    # -- updates ----------------------------------------------------------------------------

    def update(self, state: str, message: str | None = None) -> None:
        assert self.task is not None
        uuid = base64.b64encode(uuidlib.uuid4().bytes).decode("ascii")
        status: dict[str, Any] = {
            "task_id": self.task["task_id"],
            "executor_id": {"value": self.executor_id},
            "state": state,
            "source": "SOURCE_EXECUTOR",
            "uuid": uuid,
            "timestamp": time.time(),
        }
        if message is not None:
            status["message"] = message
        update = {"status": status}
        self.unacknowledged[uuid] = update
        if is_terminal(state):
            self.terminal_uuid = uuid
        for attempt in range(5):
            try:
                self.agent.send({"type": "UPDATE", "update": update})
                return
            except OSError as error:
                log(f"Failed to send {state} (attempt {attempt + 1}): {error}")
                time.sleep(0.5)
        # Still unacknowledged: it is resent with the next SUBSCRIBE.

    # -- task -------------------------------------------------------------------------------

    def launch(self, task: dict[str, Any]) -> None:
        if self.task is not None:
            saved, self.task = self.task, task
            self.update("TASK_FAILED", 'Attempted to run multiple tasks using a "command" executor')
            self.task = saved
            return
        self.task = task
        command = task.get("command", {})
        self.update("TASK_STARTING")
        if command.get("shell", True):
            program, argv = "/bin/sh", ["sh", "-c", command.get("value", "")]
        else:
            program = command.get("value", "")
            argv = list(command.get("arguments", [])) or [program]
        log(f"Starting task {task['task_id']['value']}")
        try:
            self.process = subprocess.Popen(argv, executable=program, start_new_session=True)
        except OSError as error:
            log(f"Failed to execute '{program}': {error.strerror}")
            self.update("TASK_FAILED", f"Failed to launch command: {error.strerror}")
            return
        log(f"Forked command at {self.process.pid}")
        self.update("TASK_RUNNING")
        threading.Thread(target=self.wait_command, daemon=True).start()

    def wait_command(self) -> None:
        assert self.process is not None
        _, status = os.waitpid(self.process.pid, 0)
        self.process.returncode = os.waitstatus_to_exitcode(status)
        self.events.put({"type": "_REAPED", "status": status})

    def kill(self, grace: float) -> None:
        if self.process is None or self.process.returncode is not None:
            return
        deadline = time.monotonic() + max(grace, 0.0)
        if self.killed:
            # A later kill may only shorten the escalation, never extend it.
            if self.kill_deadline is not None and deadline < self.kill_deadline:
                self.kill_deadline = deadline
            return
        self.killed = True
        capabilities = {c.get("type") for c in self.framework_info.get("capabilities", [])}
        if "TASK_KILLING_STATE" in capabilities:
            self.update("TASK_KILLING")
        log(f"Sending SIGTERM to process tree at pid {self.process.pid}")
        self.signal_tree(signal.SIGTERM)
        self.kill_deadline = deadline

    def signal_tree(self, signum: int) -> None:
        assert self.process is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signum)

    # -- main loop --------------------------------------------------------------------------

    def handle(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        log(f"Received {kind} event")
        if kind == "SUBSCRIBED":
            self.framework_info = event["subscribed"].get("framework_info", {})
            agent_info = event["subscribed"].get("agent_info", {})
            log(f"Subscribed executor on {agent_info.get('hostname', '')}")
        elif kind == "LAUNCH":
            self.launch(event["launch"]["task"])
        elif kind == "KILL":
            policy = event["kill"].get("kill_policy") or (self.task or {}).get("kill_policy") or {}
            nanos = policy.get("grace_period", {}).get("nanoseconds")
            self.kill(DEFAULT_KILL_GRACE if nanos is None else int(nanos) / 1e9)
        elif kind == "ACKNOWLEDGED":
            acked = event["acknowledged"]["uuid"]
            self.unacknowledged.pop(acked, None)
            if acked == self.terminal_uuid:
                self.done.set()
        elif kind == "SHUTDOWN":
            log("Shutting down")
            self.shutting_down = True
            if self.process is None or self.process.returncode is not None:
                self.done.set()
            else:
                self.kill(self.shutdown_grace - 2.0)
        elif kind == "ERROR":
            log(f"Error: {event.get('error', {}).get('message', '')}")
        elif kind == "_REAPED":
            status = int(event["status"])
            success = os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
            state = "TASK_FINISHED" if success else ("TASK_KILLED" if self.killed else "TASK_FAILED")
            message = f"Command {describe(status)}"
            log(f"{message} (pid: {self.process.pid if self.process else '?'})")
            self.update(state, message)
            self.kill_deadline = None

    def run(self) -> int:
        threading.Thread(target=self.connection_loop, daemon=True).start()
        terminal_sent_at: float | None = None
        while not self.done.is_set():
            timeout = 0.2
            with contextlib.suppress(queue.Empty):
                self.handle(self.events.get(timeout=timeout))
            if self.kill_deadline is not None and time.monotonic() >= self.kill_deadline:
                log(f"Process {self.process.pid if self.process else '?'} did not terminate; sending SIGKILL")
                self.signal_tree(signal.SIGKILL)
                self.kill_deadline = None
            if self.terminal_uuid is not None and terminal_sent_at is None:
                terminal_sent_at = time.monotonic()
            # Do not wait forever for the acknowledgement of the last update.
            patience = 5.0 if self.shutting_down else 60.0
            if terminal_sent_at is not None and time.monotonic() - terminal_sent_at > patience:
                break
        return 0


def main() -> int:
    return CommandExecutor().run()


if __name__ == "__main__":
    sys.exit(main())
