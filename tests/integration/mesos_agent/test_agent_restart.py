"""Agent restarts: recovery of checkpointed executors and --reconfiguration_policy."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.integration.mesos_agent.harness import (
    TestFramework,
    command_task,
    executor_info,
    executor_record,
    executor_runs_dir,
    executor_task,
    is_alive,
)
from tests.mesos_fixtures import REPO_ROOT, AgentProcess, MasterProcess, container_processes, stop_process

pytestmark = pytest.mark.integration


def _executor_pid(agent: AgentProcess, framework_id: str, executor_id: str) -> int:
    latest = executor_runs_dir(agent, framework_id, executor_id) / "latest"
    return int(executor_record(latest)["pid"])


def _wait_master_ports(master: MasterProcess, agent_id: str, ports: str, timeout: float = 20.0) -> None:
    """Wait until the master reports the (re-)registered agent with exactly these ports."""
    deadline = time.monotonic() + timeout
    while True:
        reported = {a["id"]: a["resources"].get("ports") for a in master.state()["slaves"] if a.get("active")}
        if reported.get(agent_id) == ports:
            return
        assert time.monotonic() < deadline, f"master reports {reported}, expected {agent_id}: {ports}"
        time.sleep(0.1)


def _run_agent_to_exit(
    master: MasterProcess, work_dir: Path, port: int, *flags: str
) -> subprocess.CompletedProcess[str]:
    """Run an agent that is expected to refuse to start; returns its exit status and output."""
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "sandbox.mesos",
            "agent",
            f"--master={master.address}",
            f"--work_dir={work_dir}",
            "--ip=127.0.0.1",
            f"--port={port}",
            *flags,
        ],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_additive_restart_keeps_executors_and_incompatible_restart_refuses(
    tmp_path: Path,
    mesos_master: MasterProcess,
    agents: Callable[..., AgentProcess],
    frameworks: Callable[..., TestFramework],
) -> None:
    work_dir = tmp_path / "host" / "work"
    common = ("--reconfiguration_policy=additive", "--executor_reregistration_timeout=20secs")
    first = agents("--resources=ports:[31000-31100]", *common, work_dir=work_dir)
    agent_id = first.agent_id
    framework = frameworks(checkpoint=True, failover_timeout=300.0)
    executor = executor_info("durable")
    framework.launch([executor_task("kept", agent_id, executor, {"action": "run"})], agent_id)
    framework.wait_update("kept", "TASK_RUNNING")
    pid = _executor_pid(first, framework.framework_id, "durable")
    sandbox = Path(f"/proc/{pid}/cwd").resolve()

    # Restart with an additional port range: allowed under `additive`.
    stop_process(first.process)
    assert is_alive(pid), "stopping the agent must not stop its executors"
    second = agents(
        "--resources=ports:[31000-31100,32000-32100]", *common, work_dir=work_dir, port=first.port
    )
    assert second.agent_id == agent_id
    deadline = time.monotonic() + 30
    while not (sandbox / "reregistered").exists():
        assert time.monotonic() < deadline, f"the executor did not reconnect\n{second.log()}"
        time.sleep(0.1)
    assert is_alive(pid)
    _wait_master_ports(mesos_master, agent_id, "[31000-31100, 32000-32100]")
    seen = len(framework.updates_for("kept"))
    framework.driver.reconcileTasks([{"task_id": {"value": "kept"}, "agent_id": {"value": agent_id}}])
    assert framework.wait_update("kept", "TASK_RUNNING", after=seen)["source"] == "SOURCE_MASTER"
    framework.driver.killTask({"value": "kept"})
    assert framework.wait_update("kept", "TASK_KILLED")["source"] == "SOURCE_EXECUTOR"
    framework.launch([executor_task("orphaned", agent_id, executor, {"action": "run"})], agent_id)
    framework.wait_update("orphaned", "TASK_RUNNING")

    # Restart without a range the agent used to offer: refused, with Mesos' instructions.
    stop_process(second.process)
    refused = _run_agent_to_exit(
        mesos_master, work_dir, first.port, "--resources=ports:[32000-32100]", *common
    )
    assert refused.returncode == 1
    assert (
        "Failed to perform recovery: Configuration change not permitted under 'additive' policy: "
        "Previous value of range resource 'ports' ([31000-31100, 32000-32100]) not included in current "
        "[32000-32100]"
    ) in refused.stderr
    latest = work_dir / "meta" / "slaves" / "latest"
    assert (
        f"rm -f {latest}\nThis ensures that the agent does not recover old live executors." in refused.stderr
    )
    assert is_alive(pid), "a refused restart leaves the executors alone"

    # Following the instructions makes it a new agent; the old executor is destroyed.
    os.unlink(latest)
    third = agents("--resources=ports:[32000-32100]", *common, work_dir=work_dir, port=first.port)
    assert third.agent_id != agent_id
    lost = framework.wait_terminal("orphaned")
    assert lost["state"] == "TASK_LOST"
    deadline = time.monotonic() + 10
    while is_alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not is_alive(pid), "the old agent's executor must not survive as an orphan"
    _wait_master_ports(mesos_master, third.agent_id, "[32000-32100]")


def test_equal_policy_refuses_any_change(
    tmp_path: Path, mesos_master: MasterProcess, agents: Callable[..., AgentProcess]
) -> None:
    work_dir = tmp_path / "host" / "work"
    first = agents("--attributes=rack:r1", work_dir=work_dir)
    agent_id = first.agent_id
    stop_process(first.process)

    refused = _run_agent_to_exit(mesos_master, work_dir, first.port, "--attributes=rack:r2")
    assert refused.returncode == 1
    assert "Failed to perform recovery: Incompatible agent info detected." in refused.stderr
    assert 'Old agent info:\nhostname: "' in refused.stderr
    assert 'text {\n    value: "r1"\n  }' in refused.stderr
    assert 'text {\n    value: "r2"\n  }' in refused.stderr

    again = agents("--attributes=rack:r1", work_dir=work_dir, port=first.port)
    assert again.agent_id == agent_id


def test_restart_recovers_checkpointed_command_tasks_and_kills_the_others(
    tmp_path: Path, agents: Callable[..., AgentProcess], frameworks: Callable[..., TestFramework]
) -> None:
    work_dir = tmp_path / "host" / "work"
    flags = ("--executor_reregistration_timeout=20secs",)
    first = agents(*flags, work_dir=work_dir)
    agent_id = first.agent_id
    durable = frameworks(name="durable", checkpoint=True, failover_timeout=300.0)
    fleeting = frameworks(name="fleeting", checkpoint=False, failover_timeout=300.0)
    durable.launch([command_task("kept", agent_id, "exec sleep 1000")], agent_id)
    durable.wait_update("kept", "TASK_RUNNING")
    fleeting.launch([executor_task("dropped", agent_id, executor_info("stray"), {"action": "run"})], agent_id)
    fleeting.wait_update("dropped", "TASK_RUNNING")
    stray = _executor_pid(first, fleeting.framework_id, "stray")
    command_executors = set(container_processes(work_dir)) - {stray}

    stop_process(first.process)
    time.sleep(1.0)
    # pymesos reads MESOS_CHECKPOINT="0" as true, so this executor stays and keeps reconnecting.
    assert is_alive(stray)
    assert all(is_alive(pid) for pid in command_executors), "checkpointed executors outlive the agent"
    second = agents(*flags, work_dir=work_dir, port=first.port)
    assert second.agent_id == agent_id

    # The non-checkpointing framework's executor is an orphan to the restarted agent: destroyed,
    # and its task is lost once the agent re-registers without it.
    assert fleeting.wait_terminal("dropped", timeout=30)["state"] == "TASK_LOST"
    assert not is_alive(stray)
    # The checkpointing framework's command executor reconnected and still obeys.
    durable.driver.killTask({"value": "kept"})
    killed = durable.wait_update("kept", "TASK_KILLED", timeout=20)
    assert killed["message"] == "Command terminated with signal Terminated"
    deadline = time.monotonic() + 20
    while container_processes(work_dir) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert container_processes(work_dir) == []
