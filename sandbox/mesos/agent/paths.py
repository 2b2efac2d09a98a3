"""Where the agent keeps sandboxes and checkpoints: the layout of Mesos' src/slave/paths.cpp.

Sandboxes:   <work_dir>/slaves/<agent>/frameworks/<fw>/executors/<ex>/runs/<container>/
Checkpoints: <work_dir>/meta/slaves/<agent>/frameworks/<fw>/executors/<ex>/runs/<container>/...
with ``latest`` symlinks at ``meta/slaves/latest`` and ``.../runs/latest``. The same functions
serve both trees: pass ``work_dir`` for sandboxes and ``meta_dir(work_dir)`` for checkpoints.
"""

from __future__ import annotations

import os

LATEST = "latest"
BOOT_ID_FILE = "boot_id"
SLAVE_INFO_FILE = "slave.info"
FRAMEWORK_INFO_FILE = "framework.info"
FRAMEWORK_PID_FILE = "framework.pid"
EXECUTOR_INFO_FILE = "executor.info"
EXECUTOR_SENTINEL_FILE = "executor.sentinel"
# Not a Mesos file name: marks executors the agent generated for command tasks, which Mesos
# tracks in its ExecutorState so the recovered agent treats them as command executors again.
COMMAND_EXECUTOR_MARKER_FILE = "executor.generated_for_command_task"
HTTP_MARKER_FILE = "http.marker"
FORKED_PID_FILE = "forked.pid"
TASK_INFO_FILE = "task.info"
TASK_UPDATES_FILE = "task.updates"


def meta_dir(work_dir: str) -> str:
    return os.path.join(work_dir, "meta")


def boot_id_path(meta: str) -> str:
    return os.path.join(meta, BOOT_ID_FILE)


def latest_agent_path(meta: str) -> str:
    return os.path.join(meta, "slaves", LATEST)


def agent_path(root: str, agent_id: str) -> str:
    return os.path.join(root, "slaves", agent_id)


def agent_info_path(meta: str, agent_id: str) -> str:
    return os.path.join(agent_path(meta, agent_id), SLAVE_INFO_FILE)


def framework_path(root: str, agent_id: str, framework_id: str) -> str:
    return os.path.join(agent_path(root, agent_id), "frameworks", framework_id)


def framework_info_path(meta: str, agent_id: str, framework_id: str) -> str:
    return os.path.join(framework_path(meta, agent_id, framework_id), FRAMEWORK_INFO_FILE)


def framework_pid_path(meta: str, agent_id: str, framework_id: str) -> str:
    return os.path.join(framework_path(meta, agent_id, framework_id), FRAMEWORK_PID_FILE)


def executor_path(root: str, agent_id: str, framework_id: str, executor_id: str) -> str:
    return os.path.join(framework_path(root, agent_id, framework_id), "executors", executor_id)


def executor_info_path(meta: str, agent_id: str, framework_id: str, executor_id: str) -> str:
    return os.path.join(executor_path(meta, agent_id, framework_id, executor_id), EXECUTOR_INFO_FILE)


def command_executor_marker_path(meta: str, agent_id: str, framework_id: str, executor_id: str) -> str:
    return os.path.join(
        executor_path(meta, agent_id, framework_id, executor_id), COMMAND_EXECUTOR_MARKER_FILE
    )


def executor_runs_path(root: str, agent_id: str, framework_id: str, executor_id: str) -> str:
    return os.path.join(executor_path(root, agent_id, framework_id, executor_id), "runs")


def executor_latest_run_path(root: str, agent_id: str, framework_id: str, executor_id: str) -> str:
    return os.path.join(executor_runs_path(root, agent_id, framework_id, executor_id), LATEST)


def executor_run_path(
    root: str, agent_id: str, framework_id: str, executor_id: str, container_id: str
) -> str:
    return os.path.join(executor_runs_path(root, agent_id, framework_id, executor_id), container_id)


def forked_pid_path(run_dir: str) -> str:
    """``run_dir`` is an executor run path under the meta directory."""
    return os.path.join(run_dir, "pids", FORKED_PID_FILE)


def http_marker_path(run_dir: str) -> str:
    return os.path.join(run_dir, HTTP_MARKER_FILE)


def executor_sentinel_path(run_dir: str) -> str:
    return os.path.join(run_dir, EXECUTOR_SENTINEL_FILE)


def task_path(run_dir: str, task_id: str) -> str:
    return os.path.join(run_dir, "tasks", task_id)


def task_info_path(run_dir: str, task_id: str) -> str:
    return os.path.join(task_path(run_dir, task_id), TASK_INFO_FILE)


def task_updates_path(run_dir: str, task_id: str) -> str:
    return os.path.join(task_path(run_dir, task_id), TASK_UPDATES_FILE)


def container_runtime_path(runtime_dir: str, container_id: str) -> str:
    """Per-container runtime record (pid), kept for every container, checkpointing or not."""
    return os.path.join(runtime_dir, "containers", container_id)
