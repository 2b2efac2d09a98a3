"""Unmodified pymesos end to end: a MesosSchedulerDriver launches a MesosExecutorDriver executor
through a real master and a real agent process."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.integration.mesos_agent.harness import (
    TestFramework,
    executor_info,
    executor_record,
    executor_runs_dir,
    executor_task,
    is_alive,
)
from tests.mesos_fixtures import AgentProcess, MasterProcess

pytestmark = pytest.mark.integration


def _sandbox(agent: AgentProcess, framework_id: str, executor_id: str) -> Path:
    latest = executor_runs_dir(agent, framework_id, executor_id) / "latest"
    assert latest.is_symlink(), f"missing {latest}"
    return latest.resolve()


def test_custom_executor_lifecycle_acks_reconciliation_messages_and_kill(
    mesos_master: MasterProcess, mesos_agent: AgentProcess, frameworks: Callable[..., TestFramework]
) -> None:
    framework = frameworks(checkpoint=True)
    agent_id = mesos_agent.agent_id
    executor = executor_info("scripted", environment={"GREETING": "hello", "LIBPROCESS_PORT": "7"})
    framework.launch([executor_task("finisher", agent_id, executor, {"action": "finish"})], agent_id)

    finished = framework.wait_update("finisher", "TASK_FINISHED")
    assert framework.states("finisher") == ["TASK_STARTING", "TASK_RUNNING", "TASK_FINISHED"]
    for update in framework.updates_for("finisher"):
        assert update["source"] == "SOURCE_EXECUTOR"
        assert update["agent_id"]["value"] == agent_id
        assert update["executor_id"]["value"] == "scripted"
        assert "uuid" in update
    assert finished["container_status"]["container_id"]["value"]

    # The sandbox has Mesos' layout, and the executor ran in it with Mesos' environment.
    sandbox = _sandbox(mesos_agent, framework.framework_id, "scripted")
    container_id = sandbox.name
    assert (
        sandbox.parent
        == mesos_agent.work_dir.resolve()
        / "slaves"
        / agent_id
        / "frameworks"
        / (framework.framework_id)
        / "executors"
        / "scripted"
        / "runs"
    )
    assert (sandbox / "stdout").exists()
    assert (sandbox / "stderr").exists()
    record = executor_record(sandbox)
    env = record["env"]
    assert record["cwd"] == str(sandbox)
    assert env["MESOS_DIRECTORY"] == env["MESOS_SANDBOX"] == str(sandbox)
    assert env["MESOS_FRAMEWORK_ID"] == framework.framework_id
    assert env["MESOS_EXECUTOR_ID"] == "scripted"
    assert env["MESOS_SLAVE_ID"] == agent_id
    assert env["MESOS_AGENT_ENDPOINT"] == mesos_agent.address
    assert env["MESOS_SLAVE_PID"] == f"slave(1)@{mesos_agent.address}"
    assert env["MESOS_CHECKPOINT"] == "1"
    assert env["MESOS_HTTP_COMMAND_EXECUTOR"] == "0"
    assert env["MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD"] == "5secs"
    assert env["MESOS_RECOVERY_TIMEOUT"] == "15mins"
    assert env["MESOS_SUBSCRIPTION_BACKOFF_MAX"] == "2secs"
    assert env["GREETING"] == "hello"
    assert env["LIBPROCESS_PORT"] == "7", "CommandInfo.environment must be applied last"
    # The executor's command (sh -c ...) leads its own session, apart from the agent's.
    assert record["sid"] != os.getsid(mesos_agent.process.pid)
    assert Path(f"/proc/{record['sid']}/cmdline").read_bytes().split(b"\0")[:2] == [b"sh", b"-c"]
    assert record["agent_info"]["id"]["value"] == agent_id
    assert record["framework_info"]["id"]["value"] == framework.framework_id

    # Every update was checkpointed and acknowledged by the scheduler, in order.
    journal = (
        mesos_agent.work_dir
        / "meta"
        / "slaves"
        / agent_id
        / "frameworks"
        / framework.framework_id
        / "executors"
        / "scripted"
        / "runs"
        / container_id
        / "tasks"
        / "finisher"
        / "task.updates"
    )
    deadline = time.monotonic() + 10
    while True:
        records = [json.loads(line) for line in journal.read_text().splitlines()]
        updates = [r["update"]["status"] for r in records if r["type"] == "UPDATE"]
        acks = [r["uuid"] for r in records if r["type"] == "ACK"]
        if len(acks) == 3 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert [u["state"] for u in updates] == ["TASK_STARTING", "TASK_RUNNING", "TASK_FINISHED"]
    assert acks == [u["uuid"] for u in updates], "acknowledged one by one, in order"

    # A long-running task on the same executor, a framework message round trip, reconciliation.
    framework.launch([executor_task("runner", agent_id, executor, {"action": "run"})], agent_id)
    framework.wait_update("runner", "TASK_RUNNING")
    framework.driver.sendFrameworkMessage({"value": "scripted"}, {"value": agent_id}, "cGluZw==")
    framework.wait_for(lambda r: r.messages, 20, "the executor's echo")
    assert framework.recorder.messages[0] == ("scripted", agent_id, b"echo:ping")

    seen = len(framework.updates_for("runner"))
    framework.driver.reconcileTasks([])
    implicit = framework.wait_update("runner", "TASK_RUNNING", after=seen)
    assert implicit["source"] == "SOURCE_MASTER"
    assert implicit["reason"] == "REASON_RECONCILIATION"
    assert "uuid" not in implicit
    seen = len(framework.updates_for("runner"))
    framework.driver.reconcileTasks([{"task_id": {"value": "runner"}, "agent_id": {"value": agent_id}}])
    explicit = framework.wait_update("runner", "TASK_RUNNING", after=seen)
    assert explicit["source"] == "SOURCE_MASTER"

    framework.driver.killTask({"value": "runner"})
    killed = framework.wait_update("runner", "TASK_KILLED")
    assert killed["source"] == "SOURCE_EXECUTOR"
    assert killed["message"] == "killed by the scheduler"

    state = mesos_agent.state()
    [fw] = state["frameworks"]
    [running_executor] = fw["executors"]
    assert running_executor["id"] == "scripted"
    assert running_executor["directory"] == str(sandbox)
    assert {t["id"]: t["state"] for t in running_executor["completed_tasks"]} == {
        "finisher": "TASK_FINISHED",
        "runner": "TASK_KILLED",
    }


def test_scheduler_failover_keeps_tasks_and_teardown_removes_executors(
    mesos_master: MasterProcess, mesos_agent: AgentProcess, frameworks: Callable[..., TestFramework]
) -> None:
    first = frameworks(checkpoint=True, failover_timeout=60.0)
    agent_id = mesos_agent.agent_id
    executor = executor_info("survivor")
    first.launch([executor_task("long", agent_id, executor, {"action": "run"})], agent_id)
    first.wait_update("long", "TASK_RUNNING")
    sandbox = _sandbox(mesos_agent, first.framework_id, "survivor")
    executor_pid = executor_record(sandbox)["pid"]

    # The scheduler goes away inside its failover timeout and comes back with the same id.
    first.stop(failover=True)
    second = frameworks(checkpoint=True, failover_timeout=60.0, framework_id=first.framework_id)
    assert second.recorder.reregistrations + second.recorder.registrations == 1
    assert second.framework_id == first.framework_id
    second.driver.reconcileTasks([{"task_id": {"value": "long"}, "agent_id": {"value": agent_id}}])
    assert second.wait_update("long", "TASK_RUNNING")["source"] == "SOURCE_MASTER"
    assert is_alive(executor_pid), "the executor must survive a scheduler failover"

    # The new driver can still kill the task through the same executor.
    second.driver.killTask({"value": "long"})
    assert second.wait_update("long", "TASK_KILLED")["source"] == "SOURCE_EXECUTOR"

    # Teardown: the executor is shut down and the framework leaves the agent.
    second.stop()
    deadline = time.monotonic() + 20
    while is_alive(executor_pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not is_alive(executor_pid), "teardown must shut the executor down"
    deadline = time.monotonic() + 10
    while mesos_agent.state()["frameworks"] and time.monotonic() < deadline:
        time.sleep(0.1)
    state = mesos_agent.state()
    assert state["frameworks"] == []
    assert [f["id"] for f in state["completed_frameworks"]] == [first.framework_id]
    assert (sandbox / "shutdown").exists(), "the executor was told to SHUTDOWN before being killed"
    assert os.path.exists(sandbox / "stdout")
