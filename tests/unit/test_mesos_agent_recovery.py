"""Agent recovery decisions on checkpointed agent info (no master, no executors involved)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from sandbox.mesos.agent import checkpoint, paths
from sandbox.mesos.agent.agent import Agent, AgentState, RecoveryFailed
from sandbox.mesos.agent.agent_info import Address, build_agent_info
from sandbox.mesos.agent.flags import load_flags
from sandbox.mesos.agent.processes import boot_id

ADDRESS = Address(bind_ip="127.0.0.1", ip="127.0.0.1", port=5051)


def _agent(work_dir: Path, resources: str = "cpus:1;mem:64;disk:64") -> Agent:
    argv = ["--master=127.0.0.1:1", f"--work_dir={work_dir}", "--hostname=h", f"--resources={resources}"]
    loaded = load_flags(argv, {})
    return Agent(loaded, ADDRESS, build_agent_info(loaded, ADDRESS))


def _checkpoint_previous(work_dir: Path, resources: str, boot: str) -> None:
    previous = _agent(work_dir, resources)
    previous.info["id"] = {"value": "M-S7"}
    meta = paths.meta_dir(str(work_dir))
    checkpoint.write_json(paths.agent_info_path(meta, "M-S7"), previous.info)
    checkpoint.point_symlink(paths.latest_agent_path(meta), paths.agent_path(meta, "M-S7"))
    checkpoint.write_text(paths.boot_id_path(meta), boot)


async def _recover(agent: Agent) -> None:
    try:
        await agent.recover()
    finally:
        await agent.stop()


def test_compatible_restart_keeps_the_id(tmp_path: Path) -> None:
    _checkpoint_previous(tmp_path, "cpus:1;mem:64;disk:64", boot_id())
    agent = _agent(tmp_path)
    asyncio.run(_recover(agent))
    assert agent.agent_id == "M-S7"
    assert agent.state == AgentState.DISCONNECTED
    assert agent.reconnect_allowed


def test_incompatible_restart_refuses_with_instructions(tmp_path: Path) -> None:
    _checkpoint_previous(tmp_path, "cpus:2;mem:64;disk:64", boot_id())
    agent = _agent(tmp_path)
    with pytest.raises(RecoveryFailed) as raised:
        asyncio.run(_recover(agent))
    latest = paths.latest_agent_path(paths.meta_dir(str(tmp_path)))
    assert str(raised.value).startswith("Failed to perform recovery: Incompatible agent info detected.")
    assert f"rm -f {latest}" in str(raised.value)
    assert Path(latest).is_symlink(), "nothing is removed when the agent refuses to start"


def test_incompatible_after_reboot_starts_as_a_new_agent(tmp_path: Path) -> None:
    _checkpoint_previous(tmp_path, "cpus:2;mem:64;disk:64", "another-boot")
    agent = _agent(tmp_path)
    asyncio.run(_recover(agent))
    assert agent.agent_id == ""
    assert not Path(paths.latest_agent_path(paths.meta_dir(str(tmp_path)))).exists()
    assert checkpoint.read_text(paths.boot_id_path(paths.meta_dir(str(tmp_path)))) == boot_id()
