"""Executors that die or never register, and kills that arrive before the executor does."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from tests.integration.mesos_agent.harness import TestFramework, executor_info, executor_task
from tests.mesos_fixtures import AgentProcess, container_processes

pytestmark = pytest.mark.integration


def test_executor_exit_fails_live_tasks_and_reports_failure(
    mesos_agent: AgentProcess, frameworks: Callable[..., TestFramework]
) -> None:
    framework = frameworks()
    agent_id = mesos_agent.agent_id
    framework.launch(
        [executor_task("doomed", agent_id, executor_info("crasher"), {"action": "exit", "code": 3})], agent_id
    )
    failed = framework.wait_update("doomed", "TASK_FAILED")
    assert framework.states("doomed") == ["TASK_STARTING", "TASK_RUNNING", "TASK_FAILED"]
    assert failed["reason"] == "REASON_EXECUTOR_TERMINATED"
    assert failed["message"] == "Executor terminated"
    assert failed["source"] == "SOURCE_AGENT"
    lost = framework.wait_for(lambda r: r.executor_lost, 20, "the FAILURE event")
    assert lost == [("crasher", agent_id, 3 << 8)], "FAILURE carries the raw wait status"


def test_registration_timeout_and_kill_before_registration(
    agents: Callable[..., AgentProcess], frameworks: Callable[..., TestFramework]
) -> None:
    agent = agents("--executor_registration_timeout=2secs")
    framework = frameworks()
    agent_id = agent.agent_id
    silent = executor_info("silent", command={"value": "exec sleep 60", "shell": True})
    framework.launch(
        [
            executor_task("waiting", agent_id, silent, {"action": "run"}),
            executor_task("killed-early", agent_id, silent, {"action": "run"}),
        ],
        agent_id,
    )
    time.sleep(0.5)
    framework.driver.killTask({"value": "killed-early"})
    killed = framework.wait_update("killed-early", "TASK_KILLED", timeout=10)
    assert killed["reason"] == "REASON_TASK_KILLED_DURING_LAUNCH"
    assert killed["message"] == "Killed before delivery to the executor"
    assert killed["source"] == "SOURCE_AGENT"

    started = time.monotonic()
    timed_out = framework.wait_update("waiting", "TASK_FAILED", timeout=20)
    assert timed_out["reason"] == "REASON_EXECUTOR_REGISTRATION_TIMEOUT"
    assert timed_out["message"] == "Executor did not register within 2secs"
    assert time.monotonic() - started < 5
    lost = framework.wait_for(lambda r: r.executor_lost, 20, "the FAILURE event")
    assert lost == [("silent", agent_id, 9)], "the executor was SIGKILLed"


def test_shutdown_kills_an_unresponsive_executor_after_its_grace_period(
    mesos_agent: AgentProcess, frameworks: Callable[..., TestFramework]
) -> None:
    framework = frameworks()
    agent_id = mesos_agent.agent_id
    stubborn = executor_info(
        "stubborn", command={"value": "trap '' TERM; sleep 1000 & wait; sleep 1000", "shell": True}
    )
    stubborn["shutdown_grace_period"] = {"nanoseconds": 1_500_000_000}
    framework.launch([executor_task("ignored", agent_id, stubborn, {"action": "run"})], agent_id)
    deadline = time.monotonic() + 20
    while not container_processes(mesos_agent.work_dir):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    started = time.monotonic()
    framework.stop()  # teardown: the agent shuts the framework's executors down
    while container_processes(mesos_agent.work_dir):
        assert time.monotonic() - started < 10, "the executor outlived its shutdown grace period"
        time.sleep(0.05)
    assert time.monotonic() - started >= 1.4, "killed only after the grace period"
