"""Agent flags from the command line and from MESOS_* environment variables, like mesos-agent."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.mesos_fixtures import REPO_ROOT, AgentProcess, MasterProcess

pytestmark = pytest.mark.integration


def test_environment_flags_and_command_line_precedence(
    mesos_master: MasterProcess, agents: Callable[..., AgentProcess]
) -> None:
    agent = agents(
        "--attributes=rack:from-cli",
        env={
            "MESOS_RESOURCES": "cpus:3;mem:512;disk:1024;ports:[40000-40010]",
            "MESOS_ATTRIBUTES": "rack:from-env;zone:z1",
            "MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD": "7secs",
            "MESOS_RECONFIGURATION_POLICY": "additive",
            "MESOS_NOT_A_FLAG": "ignored like Mesos does",
        },
    )
    state = agent.state()
    assert state["resources"] == {
        "cpus": 3.0,
        "gpus": 0.0,
        "mem": 512.0,
        "disk": 1024.0,
        "ports": "[40000-40010]",
    }
    assert state["attributes"] == {"rack": "from-cli"}, "the command line wins over MESOS_ATTRIBUTES"
    assert state["flags"]["executor_shutdown_grace_period"] == "7secs"
    assert state["flags"]["reconfiguration_policy"] == "additive"

    deadline = time.monotonic() + 10
    while True:
        reported = {a["id"]: a for a in mesos_master.state()["slaves"]}
        if agent.agent_id in reported or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    master_view = reported[agent.agent_id]
    assert master_view["resources"]["ports"] == "[40000-40010]"
    assert master_view["attributes"] == {"rack": "from-cli"}


def _agent_cli(
    tmp_path: Path, *flags: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sandbox.mesos", "agent", *flags],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        env=env,
    )


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--master=127.0.0.1:1", "--work_dir={w}", "--bogus=1"], "Failed to load unknown flag 'bogus'"),
        (
            ["--master=127.0.0.1:1", "--work_dir={w}", "--port=1", "--port=2"],
            "Duplicate flag 'port' on command line",
        ),
        (["--master=127.0.0.1:1"], "Flag 'work_dir' is required, but it was not provided"),
        (["--work_dir={w}"], "Missing required option `--master` or `--master_detector`"),
        (
            ["--master=127.0.0.1:1", "--work_dir={w}", "--executor_registration_timeout=5parsecs"],
            "Failed to load flag 'executor_registration_timeout': Failed to load value '5parsecs': "
            "Unknown duration unit 'parsecs'",
        ),
        (
            ["--master=127.0.0.1:1", "--work_dir={w}", "--no-port"],
            "Failed to load non-boolean flag 'port' via 'no-port'",
        ),
        (
            ["--master=127.0.0.1:1", "--work_dir={w}", "--reconfiguration_policy=anything"],
            "Invalid value 'anything' for --reconfiguration_policy",
        ),
    ],
)
def test_bad_flags_exit_with_usage(tmp_path: Path, flags: list[str], message: str) -> None:
    result = _agent_cli(tmp_path, *(f.format(w=tmp_path / "work") for f in flags))
    assert result.returncode == 1
    assert result.stderr.startswith(message), result.stderr[:400]
    assert "Usage: mesos-agent [options]" in result.stderr
    assert not (tmp_path / "work").exists(), "nothing is created when the flags are bad"


def test_bad_resources_are_named(tmp_path: Path) -> None:
    result = _agent_cli(
        tmp_path, "--master=127.0.0.1:1", f"--work_dir={tmp_path / 'work'}", "--resources=ports:[5-1]"
    )
    assert result.returncode == 1
    assert "--resources" in result.stderr
    assert "invalid range 5-1" in result.stderr


def test_json_resources_from_a_file_keep_the_defaults_for_the_rest(
    tmp_path: Path, agents: Callable[..., AgentProcess]
) -> None:
    resources = tmp_path / "resources.json"
    resources.write_text(
        '[{"name": "ports", "type": "RANGES", "ranges": {"range": [{"begin": 29998, "end": 30000}]}},'
        ' {"name": "cpus", "type": "SCALAR", "scalar": {"value": 1.5}}]'
    )
    agent = agents(f"--resources=file://{resources}")
    summary = agent.state()["resources"]
    assert summary["ports"] == "[29998-30000]", "a given port range replaces the default one"
    assert summary["cpus"] == 1.5
    assert summary["mem"] > 0, "mem is detected when not given"
    assert summary["disk"] > 0, "disk is detected when not given"
