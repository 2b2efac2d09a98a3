"""Reliable status updates: one unacknowledged update per task, retried with backoff."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import pytest

from tests.integration.mesos_agent.harness import TestFramework, command_task
from tests.mesos_fixtures import AgentProcess

pytestmark = pytest.mark.integration


def test_unacknowledged_update_is_retried_and_later_ones_wait_behind_it(
    agents: Callable[..., AgentProcess], frameworks: Callable[..., TestFramework]
) -> None:
    agent = agents("--status_update_retry_interval_min=400ms")
    framework = frameworks(implicit_acknowledgements=False)
    agent_id = agent.agent_id
    framework.launch([command_task("slow-acks", agent_id, "exit 0")], agent_id)

    # The command finishes at once, but without acknowledgements only TASK_STARTING is sent,
    # again and again, at growing intervals (0.4 s, then 0.8 s, then 1.6 s).
    framework.wait_for(
        lambda r: len([u for u in r.updates if u["state"] == "TASK_STARTING"]) >= 4, 15, "retries"
    )
    starting = framework.updates_for("slow-acks")
    assert {u["state"] for u in starting} == {"TASK_STARTING"}
    assert len({u["uuid"] for u in starting}) == 1, "a retry is the same update"
    times = [u["_received_at"] for u in starting[:4]]
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    assert 0.3 < gaps[0] < 0.7
    assert 0.6 < gaps[1] < 1.2
    assert 1.2 < gaps[2] < 2.2

    framework.driver.acknowledgeStatusUpdate(starting[0])
    running = framework.wait_update("slow-acks", "TASK_RUNNING", timeout=5)
    framework.driver.acknowledgeStatusUpdate(running)
    finished = framework.wait_update("slow-acks", "TASK_FINISHED", timeout=5)
    framework.driver.acknowledgeStatusUpdate(finished)
    assert finished["message"] == "Command exited with status 0"
    assert [u["state"] for u in framework.updates_for("slow-acks")].count("TASK_RUNNING") == 1
