"""Reading the agent's checkpoints back after a restart (Mesos' src/slave/state.cpp).

Only checkpointing frameworks leave state behind; for each of their executors the latest run
is recovered with its tasks, whose states are rebuilt by replaying their update journals.
Nothing here changes the checkpoints: the agent decides what to do with what was found.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from sandbox.mesos.agent import checkpoint, paths
from sandbox.mesos.agent.model import Executor, ExecutorState, Framework, Task, is_terminal
from sandbox.mesos.agent.processes import ProcessIdentity, identify

log = logging.getLogger("mesos.agent.recovery")


class CorruptCheckpoint(Exception):
    """A checkpoint that must exist could not be read; ``str()`` says which and why."""


def read_boot_id(meta: str) -> str | None:
    try:
        return checkpoint.read_text(paths.boot_id_path(meta)).strip()
    except OSError:
        return None


def read_latest_agent(meta: str) -> tuple[str, dict[str, Any]] | None:
    """(agent id, checkpointed AgentInfo) of ``meta/slaves/latest``, or None if there is none."""
    latest = paths.latest_agent_path(meta)
    if not os.path.lexists(latest):
        return None
    agent_id = os.path.basename(os.path.realpath(latest))
    info_path = paths.agent_info_path(meta, agent_id)
    try:
        return agent_id, checkpoint.read_json(info_path)
    except (OSError, ValueError) as error:
        raise CorruptCheckpoint(f"Failed to read agent info from '{info_path}': {error}") from error


def _listdir(path: str) -> list[str]:
    try:
        return sorted(e for e in os.listdir(path) if not e.startswith(".") and e != paths.LATEST)
    except FileNotFoundError:
        return []


def _recover_task(meta: str, agent_id: str, executor: Executor, task_id: str) -> tuple[Task, str] | None:
    fid, eid, cid = executor.framework_id, executor.executor_id, executor.container_id
    run_dir = paths.executor_run_path(meta, agent_id, fid, eid, cid)
    try:
        document = checkpoint.read_json(paths.task_info_path(run_dir, task_id))
    except (OSError, ValueError) as error:
        log.warning("Skipping task %s of executor %s: unreadable task.info (%s)", task_id, eid, error)
        return None
    task = Task(info=document["task_info"], framework_id=fid, executor_id=eid, agent_id=agent_id)
    journal = paths.task_updates_path(run_dir, task_id)
    for record in checkpoint.read_records(journal):
        if record.get("type") == "UPDATE":
            status = record["update"]["status"]
            task.state = str(status["state"])
            task.statuses.append(status)
    return task, journal


def _recover_executor(
    meta: str, work_dir: str, agent_id: str, framework: Framework, executor_id: str
) -> tuple[Executor, list[tuple[Task, str]], ProcessIdentity | None] | None:
    fid = framework.framework_id
    try:
        info = checkpoint.read_json(paths.executor_info_path(meta, agent_id, fid, executor_id))
    except (OSError, ValueError) as error:
        log.warning("Skipping executor %s: unreadable executor.info (%s)", executor_id, error)
        return None
    latest = paths.executor_latest_run_path(meta, agent_id, fid, executor_id)
    if not os.path.lexists(latest):
        return None
    container_id = os.path.basename(os.path.realpath(latest))
    run_dir = paths.executor_run_path(meta, agent_id, fid, executor_id, container_id)
    if os.path.exists(paths.executor_sentinel_path(run_dir)):
        return None  # That run completed before the restart.
    executor = Executor(
        info=info,
        framework_id=fid,
        container_id=container_id,
        directory=paths.executor_run_path(work_dir, agent_id, fid, executor_id, container_id),
        checkpoint=True,
        generated_for_command_task=os.path.exists(
            paths.command_executor_marker_path(meta, agent_id, fid, executor_id)
        ),
        user=info.get("command", {}).get("user") or framework.info.get("user"),
        state=ExecutorState.REGISTERING,
    )
    forked: ProcessIdentity | None = None
    try:
        pid = int(checkpoint.read_text(paths.forked_pid_path(run_dir)))
        forked = identify(pid) or ProcessIdentity(pid, -1)
    except (OSError, ValueError):
        forked = None
    tasks: list[tuple[Task, str]] = []
    tasks_dir = os.path.join(paths.executor_run_path(meta, agent_id, fid, executor_id, container_id), "tasks")
    for task_id in _listdir(tasks_dir):
        recovered = _recover_task(meta, agent_id, executor, task_id)
        if recovered is None:
            continue
        task, journal = recovered
        if is_terminal(task.state):
            executor.terminated_tasks[task.task_id] = task
        else:
            executor.launched_tasks[task.task_id] = task
        executor.ever_sent_task = True
        tasks.append((task, journal))
    return executor, tasks, forked


def recover_frameworks(
    meta: str, work_dir: str, agent_id: str
) -> tuple[list[Framework], dict[str, list[tuple[Task, str]]], dict[str, ProcessIdentity | None]]:
    """Frameworks with their live executors; tasks (with journals) and forked pids by container."""
    frameworks: list[Framework] = []
    tasks_by_container: dict[str, list[tuple[Task, str]]] = {}
    forked_by_container: dict[str, ProcessIdentity | None] = {}
    frameworks_dir = os.path.join(paths.agent_path(meta, agent_id), "frameworks")
    for framework_id in _listdir(frameworks_dir):
        try:
            info = checkpoint.read_json(paths.framework_info_path(meta, agent_id, framework_id))
        except (OSError, ValueError) as error:
            log.warning("Skipping framework %s: unreadable framework.info (%s)", framework_id, error)
            continue
        framework = Framework(info=info)
        executors_dir = os.path.join(paths.framework_path(meta, agent_id, framework_id), "executors")
        for executor_id in _listdir(executors_dir):
            recovered = _recover_executor(meta, work_dir, agent_id, framework, executor_id)
            if recovered is None:
                continue
            executor, tasks, forked = recovered
            framework.executors[executor.executor_id] = executor
            tasks_by_container[executor.container_id] = tasks
            forked_by_container[executor.container_id] = forked
        if framework.executors:
            frameworks.append(framework)
    return frameworks, tasks_by_container, forked_by_container
