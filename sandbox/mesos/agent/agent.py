"""The agent itself: frameworks, executors and tasks, and what happens to them (Mesos' slave.cpp).

Everything runs on one asyncio loop. The HTTP layers (executor API, master->agent internal
endpoints) call the public methods here; the master link (registration.py) tells the agent
when it is connected; the containerizer reports executor exits. Status updates flow through
the TaskStatusUpdateManager, which owns reliable delivery to the master.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
import os
import shutil
import sys
import time
import uuid
from collections import deque
from collections.abc import Callable
from typing import Any

from sandbox.mesos.agent import checkpoint, paths
from sandbox.mesos.agent.agent_info import Address
from sandbox.mesos.agent.compatibility import Incompatible, check_compatible, recovery_failure_message
from sandbox.mesos.agent.containerizer import Containerizer, LaunchFailed
from sandbox.mesos.agent.executor_env import executor_environment
from sandbox.mesos.agent.flags import AgentFlags
from sandbox.mesos.agent.master_client import MasterClient, MasterRejected, MasterUnreachable
from sandbox.mesos.agent.model import (
    MAX_COMPLETED_FRAMEWORKS,
    Executor,
    ExecutorState,
    Framework,
    FrameworkState,
    Task,
    Termination,
    has_capability,
    is_terminal,
)
from sandbox.mesos.agent.processes import boot_id, describe_wait_status
from sandbox.mesos.agent.recovery import read_boot_id, read_latest_agent, recover_frameworks
from sandbox.mesos.agent.status_updates import StatusUpdate, StreamError, TaskStatusUpdateManager
from sandbox.mesos.wire import b64decode, b64encode, format_duration, new_uuid_bytes

log = logging.getLogger("mesos.agent")

COMMAND_EXECUTOR_PROGRAM = os.path.join(os.path.dirname(os.path.abspath(__file__)), "command_executor.py")
# The command executor runs as the task's user, who must be able to execute the interpreter
# (Mesos' mesos-executor lives in a world-readable launcher_dir). The command executor needs
# only the standard library, so the system's python3 does; a virtualenv's may sit in a private
# directory.
COMMAND_EXECUTOR_INTERPRETER = shutil.which("python3", path="/usr/local/bin:/usr/bin:/bin") or sys.executable
# Mesos adds this much to a command task's kill grace period for its executor's shutdown.
COMMAND_EXECUTOR_SHUTDOWN_ALLOWANCE_NS = 2 * 10**9
EXECUTOR_REREGISTER_BACKOFF_MAX = 2.0


class RecoveryFailed(Exception):
    """The agent must not start; ``str()`` is the full message Mesos prints before exiting."""


class AgentState:
    RECOVERING = "RECOVERING"
    DISCONNECTED = "DISCONNECTED"
    RUNNING = "RUNNING"
    TERMINATING = "TERMINATING"


def _id(value: str) -> dict[str, str]:
    return {"value": value}


class Agent:
    def __init__(self, flags: AgentFlags, address: Address, info: dict[str, Any]) -> None:
        self.flags = flags
        self.address = address
        self.info = info
        self.meta = paths.meta_dir(flags.work_dir)
        self.state = AgentState.RECOVERING
        # Executors may (re)subscribe once the containerizer has recovered (recoveryInfo.reconnect).
        self.reconnect_allowed = False
        self.start_time = time.time()
        self.frameworks: dict[str, Framework] = {}
        self.completed_frameworks: deque[Framework] = deque(maxlen=MAX_COMPLETED_FRAMEWORKS)
        self.containerizer = Containerizer(flags.runtime_dir, flags.fetcher_cache_dir, flags.switch_user)
        self.updates = TaskStatusUpdateManager(self._forward, flags.status_update_retry_interval_min)
        self.master = MasterClient(flags.master)
        self.master_hostname: str | None = None
        self._background: set[asyncio.Task[Any]] = set()
        self._reregistered_all: asyncio.Event | None = None
        self.on_disconnected: Callable[[], None] = lambda: None
        self.terminated = asyncio.Event()

    # -- small helpers ----------------------------------------------------------------------

    @property
    def agent_id(self) -> str:
        return str(self.info["id"]["value"]) if "id" in self.info else ""

    @property
    def url(self) -> str:
        return f"http://{self.address.ip}:{self.address.port}"

    @property
    def pid(self) -> str:
        return f"slave(1)@{self.address.ip}:{self.address.port}"

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.get_running_loop().create_task(coroutine)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def executor_of(self, framework_id: str, executor_id: str) -> tuple[Framework | None, Executor | None]:
        framework = self.frameworks.get(framework_id)
        return framework, (framework.executors.get(executor_id) if framework else None)

    def _run_path(self, root: str, executor: Executor) -> str:
        return paths.executor_run_path(
            root, self.agent_id, executor.framework_id, executor.executor_id, executor.container_id
        )

    def _task_journal(self, executor: Executor, task_id: str) -> str | None:
        if not executor.checkpoint:
            return None
        return paths.task_updates_path(self._run_path(self.meta, executor), task_id)

    # -- recovery ---------------------------------------------------------------------------

    async def recover(self) -> None:
        """Recover checkpointed state; raises RecoveryFailed when the agent must not start."""
        latest = paths.latest_agent_path(self.meta)
        found = read_latest_agent(self.meta)
        frameworks: list[Framework] = []
        tasks_by_container: dict[str, list[tuple[Task, str]]] = {}
        forked: dict[str, Any] = {}
        if found is not None:
            agent_id, previous = found
            current = {**self.info, "id": _id(agent_id)}
            rebooted = read_boot_id(self.meta) not in (None, boot_id())
            try:
                check_compatible(self.flags.reconfiguration_policy, previous, current)
            except Incompatible as error:
                if not rebooted:
                    raise RecoveryFailed(recovery_failure_message(str(error), latest)) from error
                log.warning("Falling back to recover as a new agent due to error: %s", error)
                os.unlink(latest)
            else:
                self.info = current
                frameworks, tasks_by_container, forked = recover_frameworks(
                    self.meta, self.flags.work_dir, agent_id
                )

        known = {
            executor.container_id: (executor.directory, forked.get(executor.container_id))
            for framework in frameworks
            for executor in framework.executors.values()
        }
        alive = self.containerizer.recover(known)
        for framework in frameworks:
            self.frameworks[framework.framework_id] = framework
            for executor in framework.executors.values():
                for task, journal in tasks_by_container.get(executor.container_id, []):
                    stream = self.updates.recover(framework.framework_id, task.task_id, journal)
                    if stream.terminated and not stream.pending:
                        executor.complete_task(task.task_id)
        self.reconnect_allowed = True

        waiting = []
        for framework in frameworks:
            for executor in list(framework.executors.values()):
                termination = self.containerizer.wait(executor.container_id)
                if alive.get(executor.container_id) and termination is not None:
                    waiting.append(executor)
                    self._watch_executor(framework.framework_id, executor.executor_id, executor.container_id)
                else:
                    log.info(
                        "Executor %s of framework %s is gone", executor.executor_id, framework.framework_id
                    )
                    self._executor_terminated(
                        framework.framework_id, executor.executor_id, executor.container_id, None
                    )
        if waiting:
            self._reregistered_all = asyncio.Event()
            self._check_all_reregistered()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    self._reregistered_all.wait(), self.flags.executor_reregistration_timeout
                )
            self._reregistered_all = None
            self._reregister_executor_timeout()
        checkpoint.write_text(paths.boot_id_path(self.meta), boot_id())
        log.info("Finished recovery")
        self.state = AgentState.DISCONNECTED

    def _check_all_reregistered(self) -> None:
        if self._reregistered_all is None:
            return
        pending = [
            e
            for f in self.frameworks.values()
            for e in f.executors.values()
            if e.state == ExecutorState.REGISTERING
        ]
        if not pending:
            self._reregistered_all.set()

    def _reregister_executor_timeout(self) -> None:
        for framework in self.frameworks.values():
            for executor in framework.executors.values():
                if executor.state != ExecutorState.REGISTERING:
                    continue
                log.info("Killing un-reregistered executor %s", executor.executor_id)
                self.containerizer.destroy(executor.container_id)
                executor.state = ExecutorState.TERMINATING
                partition_aware = has_capability(framework.info, "PARTITION_AWARE")
                executor.pending_termination = Termination(
                    state="TASK_GONE" if partition_aware else "TASK_LOST",
                    reason="REASON_EXECUTOR_REREGISTRATION_TIMEOUT",
                    message="Executor did not reregister within "
                    + format_duration(self.flags.executor_reregistration_timeout),
                )

    # -- registration with the master -------------------------------------------------------

    def registered(self, agent_id: str) -> None:
        """First registration: checkpoint who we are (Slave::registered)."""
        self.info["id"] = _id(agent_id)
        self._checkpoint_agent_info()
        self._connected()

    def reregistered(self) -> None:
        self._checkpoint_agent_info()
        self._connected()

    def _checkpoint_agent_info(self) -> None:
        checkpoint.write_json(paths.agent_info_path(self.meta, self.agent_id), self.info)
        checkpoint.point_symlink(
            paths.latest_agent_path(self.meta), paths.agent_path(self.meta, self.agent_id)
        )
        os.makedirs(paths.agent_path(self.flags.work_dir, self.agent_id), exist_ok=True)

    def _connected(self) -> None:
        self.state = AgentState.RUNNING
        log.info("Registered with master as %s", self.agent_id)
        self.updates.resume()

    def disconnected(self) -> None:
        if self.state == AgentState.RUNNING:
            log.warning("Disconnected from the master; will re-register")
            self.state = AgentState.DISCONNECTED
            self.updates.pause()
            self.on_disconnected()

    def reregistration_report(
        self,
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
        """(frameworks, executors, tasks) for ReregisterSlaveMessage."""
        frameworks = [f.info for f in self.frameworks.values()]
        executors: list[dict[str, Any]] = []
        tasks: list[dict[str, Any]] = []
        for framework in self.frameworks.values():
            for executor in framework.executors.values():
                if not executor.generated_for_command_task:
                    executors.append(executor.info)
                for task_info in executor.queued_tasks.values():
                    queued = Task(task_info, framework.framework_id, executor.executor_id, self.agent_id)
                    tasks.append(queued.to_json())
                for task in [*executor.launched_tasks.values(), *executor.terminated_tasks.values()]:
                    tasks.append(task.to_json())
        return frameworks, executors, tasks

    def shutdown_requested(self, message: str) -> None:
        """``/internal/master/shutdown``: an operator marked this agent gone."""
        if self.state != AgentState.TERMINATING:
            self._spawn(self.shutdown_by_master(message))

    async def shutdown_by_master(self, message: str) -> None:
        """The master will not have us (it marked this agent gone): kill everything and exit."""
        log.warning("Agent asked to shut down by the master: %s", message)
        self.state = AgentState.TERMINATING
        for framework in list(self.frameworks.values()):
            self._shutdown_framework(framework)
        deadline = time.monotonic() + self.flags.executor_shutdown_grace_period + 10
        while any(f.executors for f in self.frameworks.values()) and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        # Slave::finalize: a terminated agent must come back as a new one.
        with contextlib.suppress(FileNotFoundError):
            os.unlink(paths.latest_agent_path(self.meta))
        self.terminated.set()

    # -- launching tasks --------------------------------------------------------------------

    def run_task(
        self,
        framework_info: dict[str, Any],
        task: dict[str, Any] | None,
        executor_info: dict[str, Any] | None,
        task_group: dict[str, Any] | None = None,
    ) -> None:
        framework_id = str(framework_info["id"]["value"])
        tasks = list(task_group.get("tasks", [])) if task_group is not None else [task] if task else []
        if self.state == AgentState.TERMINATING:
            log.warning("Ignoring run task for framework %s because the agent is terminating", framework_id)
            return
        framework = self.frameworks.get(framework_id)
        if framework is None:
            framework = Framework(info=copy.deepcopy(framework_info))
            self.frameworks[framework_id] = framework
            if framework.checkpoint:
                self._checkpoint_framework(framework)
        else:
            framework.info = copy.deepcopy(framework_info)
        if framework.state == FrameworkState.TERMINATING:
            log.warning("Ignoring run task for framework %s because it is terminating", framework_id)
            return

        info = self._executor_info(framework, tasks[0], executor_info)
        executor_id = str(info["executor_id"]["value"])
        executor = framework.executors.get(executor_id)
        if executor is not None and executor.state in (ExecutorState.TERMINATING, ExecutorState.TERMINATED):
            word = "terminating" if executor.state == ExecutorState.TERMINATING else "terminated"
            partition_aware = has_capability(framework.info, "PARTITION_AWARE")
            for task_info in tasks:
                self._agent_update(
                    framework_id,
                    task_info["task_id"],
                    "TASK_DROPPED" if partition_aware else "TASK_LOST",
                    message=f"Executor {word}",
                    reason="REASON_EXECUTOR_TERMINATED",
                    executor_id=executor_id,
                )
            return
        if executor is None:
            executor = self._add_executor(
                framework,
                info,
                generated=task is not None and "executor" not in task and executor_info is None,
            )
            for task_info in tasks:
                self._queue_task(executor, task_info)
            self._spawn(self._launch_container(framework, executor))
            return
        for task_info in tasks:
            self._queue_task(executor, task_info)
        if executor.state == ExecutorState.RUNNING:
            self._deliver_queued(framework, executor, group=task_group)

    def _executor_info(
        self, framework: Framework, task: dict[str, Any], executor_info: dict[str, Any] | None
    ) -> dict[str, Any]:
        info = copy.deepcopy(
            executor_info or task.get("executor") or self._command_executor_info(framework, task)
        )
        info.setdefault("framework_id", _id(framework.framework_id))
        return info

    def _command_executor_info(self, framework: Framework, task: dict[str, Any]) -> dict[str, Any]:
        """The ExecutorInfo Mesos generates for a command task (Slave::getExecutorInfo)."""
        task_id = str(task["task_id"]["value"])
        command = task.get("command", {})
        if command.get("shell", True):
            value = command.get("value")
            shown = (
                "NO COMMAND"
                if value is None
                else f"sh -c '{value[:12] + '...' if len(value) > 15 else value}'"
            )
        else:
            joined = ", ".join([str(command.get("value", "")), *command.get("arguments", [])])
            shown = (
                "NO EXECUTABLE"
                if "value" not in command
                else (f"[{joined[:12]}...]" if len(joined) > 15 else f"[{joined}]")
            )
        generated: dict[str, Any] = {
            "executor_id": _id(task_id),
            "framework_id": _id(framework.framework_id),
            "name": f"Command Executor (Task: {task_id}) (Command: {shown})",
            "source": task_id,
            "command": {
                "shell": False,
                "value": COMMAND_EXECUTOR_INTERPRETER,
                "arguments": [
                    COMMAND_EXECUTOR_INTERPRETER,
                    COMMAND_EXECUTOR_PROGRAM,
                    "--launcher_dir=" + os.path.dirname(COMMAND_EXECUTOR_PROGRAM),
                ],
                "uris": command.get("uris", []),
            },
            "resources": [
                {"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.1}, "role": "*"},
                {"name": "mem", "type": "SCALAR", "scalar": {"value": 32.0}, "role": "*"},
            ],
        }
        for key in ("environment", "user"):
            if key in command:
                generated["command"][key] = command[key]
        for key in ("labels", "discovery", "container"):
            if key in task:
                generated[key] = task[key]
        grace = task.get("kill_policy", {}).get("grace_period", {}).get("nanoseconds")
        if grace is not None:
            generated["shutdown_grace_period"] = {
                "nanoseconds": int(grace) + COMMAND_EXECUTOR_SHUTDOWN_ALLOWANCE_NS
            }
        return generated

    def _add_executor(self, framework: Framework, info: dict[str, Any], *, generated: bool) -> Executor:
        container_id = str(uuid.uuid4())
        executor = Executor(
            info=info,
            framework_id=framework.framework_id,
            container_id=container_id,
            directory="",
            checkpoint=framework.checkpoint,
            generated_for_command_task=generated,
            user=(info.get("command", {}).get("user") or framework.info.get("user"))
            if self.flags.switch_user
            else None,
        )
        executor.directory = self._run_path(self.flags.work_dir, executor)
        os.makedirs(executor.directory, exist_ok=True)
        checkpoint.point_symlink(
            paths.executor_latest_run_path(
                self.flags.work_dir, self.agent_id, framework.framework_id, executor.executor_id
            ),
            executor.directory,
        )
        if executor.checkpoint:
            fid, eid = framework.framework_id, executor.executor_id
            checkpoint.write_json(paths.executor_info_path(self.meta, self.agent_id, fid, eid), info)
            if generated:
                checkpoint.touch(paths.command_executor_marker_path(self.meta, self.agent_id, fid, eid))
            meta_run = self._run_path(self.meta, executor)
            os.makedirs(meta_run, exist_ok=True)
            checkpoint.point_symlink(
                paths.executor_latest_run_path(self.meta, self.agent_id, fid, eid), meta_run
            )
        framework.executors[executor.executor_id] = executor
        log.info(
            "Launching executor '%s' of framework %s with resources %s in work directory '%s'",
            executor.executor_id,
            framework.framework_id,
            info.get("resources", []),
            executor.directory,
        )
        return executor

    def _checkpoint_framework(self, framework: Framework) -> None:
        fid = framework.framework_id
        checkpoint.write_json(paths.framework_info_path(self.meta, self.agent_id, fid), framework.info)
        checkpoint.write_text(paths.framework_pid_path(self.meta, self.agent_id, fid), "")

    def _queue_task(self, executor: Executor, task_info: dict[str, Any]) -> None:
        task_id = str(task_info["task_id"]["value"])
        executor.queued_tasks[task_id] = task_info
        if executor.checkpoint:
            document = {
                "task_info": task_info,
                "framework_id": executor.framework_id,
                "executor_id": executor.executor_id,
            }
            checkpoint.write_json(
                paths.task_info_path(self._run_path(self.meta, executor), task_id),
                document,
            )

    def _deliver_queued(
        self, framework: Framework, executor: Executor, group: dict[str, Any] | None = None
    ) -> None:
        """Send queued tasks to a subscribed executor (Slave::___run).

        Like Mesos, a task for an executor whose connection is momentarily gone counts as
        launched and its event is dropped; the executor learns about it, or the task is
        lost, when it re-subscribes.
        """
        events: list[dict[str, Any]] = []
        if group is not None:
            ids = [str(t["task_id"]["value"]) for t in group.get("tasks", [])]
            if all(i in executor.queued_tasks for i in ids):
                for task_id in ids:
                    executor.add_launched_task(executor.queued_tasks.pop(task_id), self.agent_id)
                events.append({"type": "LAUNCH_GROUP", "launch_group": {"task_group": group}})
        else:
            for task_id in list(executor.queued_tasks):
                task_info = executor.queued_tasks.pop(task_id)
                executor.add_launched_task(task_info, self.agent_id)
                log.info("Sending queued task '%s' to executor '%s'", task_id, executor.executor_id)
                events.append({"type": "LAUNCH", "launch": {"task": task_info}})
        for event in events:
            if executor.stream is None:
                log.warning("Unable to send event to executor '%s': not connected", executor.executor_id)
            else:
                executor.stream.send(event)

    async def _launch_container(self, framework: Framework, executor: Executor) -> None:
        fid, eid, cid = framework.framework_id, executor.executor_id, executor.container_id
        loop = asyncio.get_running_loop()
        loop.call_later(
            self.flags.executor_registration_timeout, self._register_executor_timeout, fid, eid, cid
        )
        if executor.info.get("type") == "DEFAULT":
            self._container_launch_failed(fid, eid, cid, "the stand-in agent has no default executor")
            return
        env = executor_environment(
            executor_info=executor.info,
            directory=executor.directory,
            agent_id=self.agent_id,
            agent_ip=self.address.ip,
            agent_port=self.address.port,
            checkpoint=executor.checkpoint,
            http_command_executor=self.flags.http_command_executor,
            default_shutdown_grace_period=self.flags.executor_shutdown_grace_period,
            recovery_timeout=self.flags.recovery_timeout,
            subscription_backoff_max=EXECUTOR_REREGISTER_BACKOFF_MAX,
            executor_environment_variables=self.flags.executor_environment_variables,
        )
        forked = paths.forked_pid_path(self._run_path(self.meta, executor)) if executor.checkpoint else None
        try:
            await self.containerizer.launch(
                container_id=cid,
                sandbox=executor.directory,
                command=executor.info.get("command", {}),
                env=env,
                user=executor.user,
                forked_pid_path=forked,
            )
        except LaunchFailed as error:
            self._container_launch_failed(fid, eid, cid, str(error))
            return
        self._watch_executor(fid, eid, cid)

    def _container_launch_failed(self, fid: str, eid: str, cid: str, reason: str) -> None:
        log.error(
            "Container '%s' for executor '%s' of framework %s failed to start: %s", cid, eid, fid, reason
        )
        _, executor = self.executor_of(fid, eid)
        if executor is not None and executor.container_id == cid and executor.pending_termination is None:
            executor.pending_termination = Termination(
                "TASK_FAILED", "REASON_CONTAINER_LAUNCH_FAILED", f"Failed to launch container: {reason}"
            )
        self._executor_terminated(fid, eid, cid, None)

    def _watch_executor(self, fid: str, eid: str, cid: str) -> None:
        termination = self.containerizer.wait(cid)
        if termination is None:
            self._executor_terminated(fid, eid, cid, None)
            return

        def exited(future: asyncio.Future[int | None]) -> None:
            self._executor_terminated(fid, eid, cid, future.result())

        termination.add_done_callback(exited)

    def _register_executor_timeout(self, fid: str, eid: str, cid: str) -> None:
        framework, executor = self.executor_of(fid, eid)
        if framework is None or framework.state == FrameworkState.TERMINATING:
            return
        if executor is None or executor.container_id != cid or executor.state != ExecutorState.REGISTERING:
            return
        log.info(
            "Terminating executor '%s' of framework %s because it did not register within %s",
            eid,
            fid,
            format_duration(self.flags.executor_registration_timeout),
        )
        self.containerizer.destroy(cid)
        executor.state = ExecutorState.TERMINATING
        executor.pending_termination = Termination(
            "TASK_FAILED",
            "REASON_EXECUTOR_REGISTRATION_TIMEOUT",
            "Executor did not register within " + format_duration(self.flags.executor_registration_timeout),
        )

    # -- executors talking to us ------------------------------------------------------------

    def subscribe(
        self, framework: Framework, executor: Executor, subscribe: dict[str, Any], stream: Any
    ) -> None:
        """An executor's SUBSCRIBE (Slave::subscribe); events go to ``stream``."""
        log.info(
            "Received Subscribe request for HTTP executor '%s' of framework %s",
            executor.executor_id,
            framework.framework_id,
        )
        if (
            self.state == AgentState.TERMINATING
            or framework.state == FrameworkState.TERMINATING
            or executor.state in (ExecutorState.TERMINATING, ExecutorState.TERMINATED)
        ):
            log.warning(
                "Shutting down executor '%s' (agent, framework or executor terminating)", executor.executor_id
            )
            stream.send({"type": "SHUTDOWN"})
            stream.close()
            return
        if executor.stream is not None:
            log.warning("Closing already existing HTTP connection from executor '%s'", executor.executor_id)
            executor.stream.close()
        executor.state = ExecutorState.RUNNING
        executor.stream = stream
        if executor.checkpoint:
            checkpoint.touch(paths.http_marker_path(self._run_path(self.meta, executor)))
        for update in subscribe.get("unacknowledged_updates", []):
            self.executor_update(framework, executor, update["status"])
        known = {str(t["task_id"]["value"]) for t in subscribe.get("unacknowledged_tasks", [])}
        partition_aware = has_capability(framework.info, "PARTITION_AWARE")
        for task in list(executor.launched_tasks.values()):
            if task.state == "TASK_STAGING" and task.task_id not in known:
                self._agent_update(
                    framework.framework_id,
                    task.info["task_id"],
                    "TASK_DROPPED" if partition_aware else "TASK_LOST",
                    message="Task launched during agent restart",
                    reason="REASON_AGENT_RESTARTED",
                    executor_id=executor.executor_id,
                )
        self._check_all_reregistered()
        if not executor.ever_sent_task and not executor.queued_tasks:
            log.warning("Shutting down executor '%s': it has never been sent a task", executor.executor_id)
            self._shutdown_executor(framework, executor)
            return
        stream.send(
            {
                "type": "SUBSCRIBED",
                "subscribed": {
                    "executor_info": executor.info,
                    "framework_info": framework.info,
                    "agent_info": self.info,
                    "container_id": _id(executor.container_id),
                },
            }
        )
        self._deliver_queued(framework, executor)

    def stream_closed(self, framework_id: str, executor_id: str, stream: Any) -> None:
        """The executor's connection ended; it may re-subscribe (checkpointing frameworks)."""
        _, executor = self.executor_of(framework_id, executor_id)
        if executor is not None and executor.stream is stream:
            executor.stream = None

    def executor_update(self, framework: Framework, executor: Executor, status: dict[str, Any]) -> None:
        """An UPDATE call (already validated): checkpoint, acknowledge, forward."""
        self._status_update(framework.framework_id, copy.deepcopy(status), from_executor=True)

    def executor_message(self, framework: Framework, executor: Executor, data: str) -> None:
        if self.state != AgentState.RUNNING:
            log.warning(
                "Dropping framework message from executor '%s': agent is %s", executor.executor_id, self.state
            )
            return
        if framework.state == FrameworkState.TERMINATING:
            return
        self._spawn(self._send_executor_message(framework.framework_id, executor.executor_id, data))

    async def _send_executor_message(self, fid: str, eid: str, data: str) -> None:
        try:
            await self.master.executor_message(self.agent_id, fid, eid, data)
        except (MasterUnreachable, MasterRejected) as error:
            log.warning("Failed to send a message of executor '%s' to the master: %s", eid, error)

    # -- status updates ---------------------------------------------------------------------

    def _agent_update(
        self,
        fid: str,
        task_id: dict[str, Any],
        state: str,
        *,
        message: str,
        reason: str,
        executor_id: str | None,
    ) -> None:
        status: dict[str, Any] = {
            "task_id": task_id,
            "state": state,
            "source": "SOURCE_AGENT",
            "message": message,
            "reason": reason,
            "uuid": b64encode(new_uuid_bytes()),
            "timestamp": time.time(),
        }
        if executor_id is not None:
            status["executor_id"] = _id(executor_id)
        self._status_update(fid, status, from_executor=False)

    def _status_update(self, fid: str, status: dict[str, Any], *, from_executor: bool) -> None:
        """Slave::statusUpdate and its continuations, minus the parts about resources."""
        task_id = str(status["task_id"]["value"])
        # Compare uuids as bytes: the master hands acknowledgements back re-encoded canonically.
        status["uuid"] = b64encode(b64decode(status["uuid"]))
        status["agent_id"] = _id(self.agent_id)
        status["source"] = "SOURCE_EXECUTOR" if from_executor else "SOURCE_AGENT"
        framework = self.frameworks.get(fid)
        if framework is None or framework.state == FrameworkState.TERMINATING:
            log.warning(
                "Ignoring status update %s for task %s of unknown/terminating framework %s",
                status["state"],
                task_id,
                fid,
            )
            return
        executor = framework.executor_for_task(task_id)
        stream = self.updates.stream(fid, task_id)
        duplicate = stream is not None and status["uuid"] in stream.received
        if executor is None:
            log.warning(
                "Could not find the executor for status update %s of task %s", status["state"], task_id
            )
            if not duplicate:
                self.updates.update(StatusUpdate(fid, status), None)
            return
        status["executor_id"] = _id(executor.executor_id)
        if not duplicate:
            if task_id not in executor.queued_tasks:
                status["container_status"] = {
                    "container_id": _id(executor.container_id),
                    "network_infos": [{"ip_addresses": [{"ip_address": self.address.ip}]}],
                }
            try:
                executor.update_task_state(status, self.agent_id)
            except ValueError as error:
                log.error("Failed to update state of task '%s' to %s: %s", task_id, status["state"], error)
                self._acknowledge_executor(executor, task_id, status["uuid"], from_executor)
                return
            try:
                self.updates.update(StatusUpdate(fid, status), self._task_journal(executor, task_id))
            except StreamError as error:
                log.error("Failed to handle status update for task '%s': %s", task_id, error)
        self._acknowledge_executor(executor, task_id, status["uuid"], from_executor)

    def _acknowledge_executor(
        self, executor: Executor, task_id: str, uuid_b64: str, from_executor: bool
    ) -> None:
        if from_executor and executor.stream is not None:
            executor.stream.send(
                {"type": "ACKNOWLEDGED", "acknowledged": {"task_id": _id(task_id), "uuid": uuid_b64}}
            )

    def _forward(self, update: StatusUpdate) -> None:
        """Send the head of a stream to the master (Slave::forward); retries are the caller's."""
        if self.state != AgentState.RUNNING:
            return
        framework = self.frameworks.get(update.framework_id)
        executor = framework.executor_for_task(update.task_id) if framework else None
        if executor is not None:
            task = executor.launched_tasks.get(update.task_id) or executor.terminated_tasks.get(
                update.task_id
            )
            if task is not None:
                task.status_update_state = update.state
                task.status_update_uuid = update.uuid
                update.latest_state = task.state
        body = update.to_json()
        self._spawn(self._post_update(body, update))

    async def _post_update(self, body: dict[str, Any], update: StatusUpdate) -> None:
        try:
            await self.master.status_update(self.agent_id, body)
            log.info("Forwarded status update %s for task %s to the master", update.state, update.task_id)
        except MasterUnreachable as error:
            log.warning(
                "Failed to forward status update %s for task %s: %s", update.state, update.task_id, error
            )
        except MasterRejected as error:
            log.warning(
                "The master refused status update %s for task %s: %s", update.state, update.task_id, error
            )

    def acknowledge(self, fid: str, task_id: str, uuid_b64: str) -> None:
        """The scheduler acknowledged an update (relayed by the master)."""
        if self.state != AgentState.RUNNING:
            log.warning("Dropping status update acknowledgement for %s: agent is %s", fid, self.state)
            return
        try:
            finished = self.updates.acknowledge(fid, task_id, b64encode(b64decode(uuid_b64)))
        except StreamError as error:
            log.error("Failed to handle status update acknowledgement: %s", error)
            return
        framework = self.frameworks.get(fid)
        if framework is None:
            return
        executor = framework.executor_for_task(task_id)
        if executor is not None:
            if finished and task_id in executor.terminated_tasks:
                executor.complete_task(task_id)
            if executor.state == ExecutorState.TERMINATED and not executor.incomplete_tasks():
                self._remove_executor(framework, executor)
        if framework.idle():
            self._remove_framework(framework)

    # -- killing and shutting down ----------------------------------------------------------

    def kill_task(self, fid: str, task_id: dict[str, Any], kill_policy: dict[str, Any] | None) -> None:
        tid = str(task_id["value"])
        if self.state in (AgentState.RECOVERING, AgentState.TERMINATING):
            log.warning("Cannot kill task %s of framework %s because the agent is %s", tid, fid, self.state)
            return
        framework = self.frameworks.get(fid)
        if framework is None or framework.state == FrameworkState.TERMINATING:
            log.warning("Ignoring kill task %s of unknown/terminating framework %s", tid, fid)
            return
        executor = framework.executor_for_task(tid)
        if executor is None:
            partition_aware = has_capability(framework.info, "PARTITION_AWARE")
            self._agent_update(
                fid,
                task_id,
                "TASK_DROPPED" if partition_aware else "TASK_LOST",
                message="Cannot find executor",
                reason="REASON_EXECUTOR_TERMINATED",
                executor_id=None,
            )
            return
        if executor.state in (ExecutorState.TERMINATING, ExecutorState.TERMINATED):
            log.warning(
                "Ignoring kill task %s because executor '%s' is %s",
                tid,
                executor.executor_id,
                executor.state.value,
            )
            return
        if tid in executor.queued_tasks:
            self._agent_update(
                fid,
                task_id,
                "TASK_KILLED",
                message="Killed before delivery to the executor",
                reason="REASON_TASK_KILLED_DURING_LAUNCH",
                executor_id=executor.executor_id,
            )
            if (
                executor.state == ExecutorState.RUNNING
                and not executor.ever_sent_task
                and not executor.queued_tasks
            ):
                self._shutdown_executor(framework, executor)
            return
        if executor.stream is not None:
            kill: dict[str, Any] = {"task_id": task_id}
            if kill_policy is not None:
                kill["kill_policy"] = kill_policy
            executor.stream.send({"type": "KILL", "kill": kill})

    def shutdown_executor(self, fid: str, eid: str) -> None:
        if self.state in (AgentState.RECOVERING, AgentState.DISCONNECTED):
            log.warning("Ignoring shutdown of executor '%s': the agent has not registered yet", eid)
            return
        framework, executor = self.executor_of(fid, eid)
        if framework is None or executor is None or framework.state == FrameworkState.TERMINATING:
            log.warning("Ignoring shutdown of unknown executor '%s' of framework %s", eid, fid)
            return
        if executor.state in (ExecutorState.TERMINATING, ExecutorState.TERMINATED):
            return
        self._shutdown_executor(framework, executor)

    def _shutdown_executor(self, framework: Framework, executor: Executor) -> None:
        log.info("Shutting down executor '%s' of framework %s", executor.executor_id, framework.framework_id)
        executor.state = ExecutorState.TERMINATING
        if executor.stream is not None:
            executor.stream.send({"type": "SHUTDOWN"})
        grace_ns = executor.info.get("shutdown_grace_period", {}).get("nanoseconds")
        grace = int(grace_ns) / 1e9 if grace_ns is not None else self.flags.executor_shutdown_grace_period
        asyncio.get_running_loop().call_later(
            grace,
            self._shutdown_executor_timeout,
            framework.framework_id,
            executor.executor_id,
            executor.container_id,
        )

    def _shutdown_executor_timeout(self, fid: str, eid: str, cid: str) -> None:
        _, executor = self.executor_of(fid, eid)
        if executor is None or executor.container_id != cid or executor.state != ExecutorState.TERMINATING:
            return
        log.info("Killing executor '%s' of framework %s after its shutdown grace period", eid, fid)
        self.containerizer.destroy(cid)

    def shutdown_framework(self, fid: str) -> None:
        if self.state in (AgentState.RECOVERING, AgentState.DISCONNECTED):
            log.warning("Ignoring shutdown of framework %s: the agent has not registered yet", fid)
            return
        framework = self.frameworks.get(fid)
        if framework is not None:
            self._shutdown_framework(framework)

    def _shutdown_framework(self, framework: Framework) -> None:
        if framework.state == FrameworkState.TERMINATING:
            return
        log.info("Shutting down framework %s", framework.framework_id)
        framework.state = FrameworkState.TERMINATING
        for executor in list(framework.executors.values()):
            if executor.state in (ExecutorState.REGISTERING, ExecutorState.RUNNING):
                self._shutdown_executor(framework, executor)
            elif executor.state == ExecutorState.TERMINATED:
                self._remove_executor(framework, executor)
        if framework.idle():
            self._remove_framework(framework)

    def framework_message(self, fid: str, eid: str, data: str) -> None:
        if self.state != AgentState.RUNNING:
            return
        framework, executor = self.executor_of(fid, eid)
        if framework is None or executor is None or framework.state == FrameworkState.TERMINATING:
            log.warning("Dropping message for unknown executor '%s' of framework %s", eid, fid)
            return
        if executor.state != ExecutorState.RUNNING or executor.stream is None:
            log.warning("Dropping message for executor '%s' because it is not running", eid)
            return
        executor.stream.send({"type": "MESSAGE", "message": {"data": data}})

    def update_framework(self, framework_info: dict[str, Any]) -> None:
        framework = self.frameworks.get(str(framework_info["id"]["value"]))
        if framework is None or framework.state == FrameworkState.TERMINATING:
            return
        framework.info = copy.deepcopy(framework_info)
        if framework.checkpoint:
            self._checkpoint_framework(framework)
        if self.state == AgentState.RUNNING:
            self.updates.resume()

    # -- executor exit ----------------------------------------------------------------------

    def _executor_terminated(self, fid: str, eid: str, cid: str, status: int | None) -> None:
        framework, executor = self.executor_of(fid, eid)
        if framework is None or executor is None or executor.container_id != cid:
            return
        if executor.state == ExecutorState.TERMINATED:
            return
        log.info("Executor '%s' of framework %s %s", eid, fid, _describe(status))
        executor.state = ExecutorState.TERMINATED
        if executor.stream is not None:
            executor.stream.close()
            executor.stream = None
        if framework.state != FrameworkState.TERMINATING:
            for task in list(executor.launched_tasks.values()):
                if not is_terminal(task.state):
                    self._send_executor_terminated_update(framework, executor, task.info["task_id"])
            for task_info in list(executor.queued_tasks.values()):
                self._send_executor_terminated_update(framework, executor, task_info["task_id"])
        if not executor.generated_for_command_task:
            self._spawn(self._send_exited_executor(fid, eid, -1 if status is None else status))
        if (
            self.state == AgentState.TERMINATING
            or framework.state == FrameworkState.TERMINATING
            or not executor.incomplete_tasks()
        ):
            self._remove_executor(framework, executor)
        if framework.idle():
            self._remove_framework(framework)

    def _send_executor_terminated_update(
        self, framework: Framework, executor: Executor, task_id: dict[str, Any]
    ) -> None:
        pending = executor.pending_termination
        if pending is not None:
            state, reason, message = pending.state, pending.reason, pending.message
        elif executor.generated_for_command_task:
            state, reason, message = "TASK_FAILED", "REASON_COMMAND_EXECUTOR_FAILED", ""
        else:
            state, reason, message = "TASK_FAILED", "REASON_EXECUTOR_TERMINATED", "Executor terminated"
        self._agent_update(
            framework.framework_id,
            task_id,
            state,
            message=message,
            reason=reason,
            executor_id=executor.executor_id,
        )

    async def _send_exited_executor(self, fid: str, eid: str, status: int) -> None:
        if self.state != AgentState.RUNNING:
            return
        try:
            await self.master.exited_executor(self.agent_id, fid, eid, status)
        except (MasterUnreachable, MasterRejected) as error:
            log.warning("Failed to tell the master that executor '%s' exited: %s", eid, error)

    def _remove_executor(self, framework: Framework, executor: Executor) -> None:
        log.info("Cleaning up executor '%s' of framework %s", executor.executor_id, framework.framework_id)
        if executor.checkpoint:
            checkpoint.touch(paths.executor_sentinel_path(self._run_path(self.meta, executor)))
        framework.executors.pop(executor.executor_id, None)
        framework.completed_executors.append(executor)

    def _remove_framework(self, framework: Framework) -> None:
        log.info("Cleaning up framework %s", framework.framework_id)
        self.updates.cleanup(framework.framework_id)
        self.frameworks.pop(framework.framework_id, None)
        self.completed_frameworks.append(framework)
        if framework.checkpoint:
            shutil.rmtree(
                paths.framework_path(self.meta, self.agent_id, framework.framework_id), ignore_errors=True
            )

    # -- stopping ---------------------------------------------------------------------------

    async def stop(self) -> None:
        """Stop serving; executors keep running (an agent restart must not kill them)."""
        for framework in self.frameworks.values():
            for executor in framework.executors.values():
                if executor.stream is not None:
                    executor.stream.close()
        self.updates.close()
        for task in list(self._background):
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        await self.master.close()


def _describe(status: int | None) -> str:
    return "terminated with unknown status" if status is None else describe_wait_status(status)
