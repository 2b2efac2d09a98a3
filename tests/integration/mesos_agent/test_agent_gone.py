"""An operator marks the agent gone: it kills its executors, forgets its id and exits."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.integration.mesos_agent.harness import TestFramework, command_task
from tests.mesos_fixtures import AgentProcess, MasterProcess, container_processes

pytestmark = pytest.mark.integration


def test_mark_agent_gone_shuts_the_agent_down(
    mesos_master: MasterProcess, agents: Callable[..., AgentProcess], frameworks: Callable[..., TestFramework]
) -> None:
    agent = agents()
    agent_id = agent.agent_id
    framework = frameworks()
    framework.launch([command_task("doomed", agent_id, "exec sleep 1000")], agent_id)
    framework.wait_update("doomed", "TASK_RUNNING")
    assert container_processes(agent.work_dir)

    call = {"type": "MARK_AGENT_GONE", "mark_agent_gone": {"agent_id": {"value": agent_id}}}
    request = urllib.request.Request(
        f"{mesos_master.url}/api/v1",
        data=json.dumps(call).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200

    assert agent.process.wait(timeout=30) == 0
    assert container_processes(agent.work_dir) == [], "the agent killed its executors before exiting"
    assert not (Path(agent.work_dir) / "meta" / "slaves" / "latest").exists(), (
        "it must come back as a new agent"
    )
    gone = framework.wait_terminal("doomed", timeout=20)
    assert gone["state"] in ("TASK_GONE_BY_OPERATOR", "TASK_LOST")
