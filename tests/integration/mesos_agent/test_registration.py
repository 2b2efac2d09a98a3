"""Registration with the master: an agent that starts first, and one whose master restarts."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.mesos_fixtures import (
    AgentProcess,
    MasterProcess,
    free_port,
    http_get,
    start_master,
    stop_master,
    wait_until,
)

pytestmark = pytest.mark.integration


def _registered_ids(master: MasterProcess) -> set[str]:
    return {a["id"] for a in master.state()["slaves"] if a.get("active")}


def test_agent_started_before_master_registers_and_reregisters_after_master_restart(
    tmp_path: Path, agents: Callable[..., AgentProcess]
) -> None:
    port = free_port()
    master_flags = ["--agent_ping_timeout=200ms"]
    agent = agents(wait_registered=False, master=f"127.0.0.1:{port}")
    status, _, _ = http_get(agent.host, agent.port, "/slave(1)/health")
    assert status == 200
    assert agent.state()["id"] == "", "no master yet, no id"

    first = start_master(tmp_path / "master-1", master_flags, port=port)
    try:
        wait_until(lambda: bool(agent.state()["id"]), 20, "registration")
        agent_id = agent.state()["id"]
        assert agent.get_json("/slave(1)/state")["id"] == agent_id
        assert agent_id in _registered_ids(first)
    finally:
        stop_master(first)

    # A new master knows nothing about the agent and never pings it; after 5 missed ping
    # intervals the agent re-registers with the id it already has.
    second = start_master(tmp_path / "master-2", master_flags, port=port)
    try:
        wait_until(lambda: agent_id in _registered_ids(second), 30, "re-registration with the new master")
        assert agent.state()["id"] == agent_id
    finally:
        stop_master(second)
