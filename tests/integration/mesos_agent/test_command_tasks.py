"""Tasks with a CommandInfo run under the agent's command executor (a real process)."""

from __future__ import annotations

import pwd
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.integration.mesos_agent.harness import TestFramework, command_task, latest_sandbox
from tests.mesos_fixtures import AgentProcess

pytestmark = pytest.mark.integration


def _read_when(path: Path, text: str, timeout: float = 10.0) -> str:
    deadline = time.monotonic() + timeout
    while True:
        content = path.read_text() if path.exists() else ""
        if text in content or time.monotonic() > deadline:
            return content
        time.sleep(0.05)


def test_exit_codes_become_finished_or_failed(
    mesos_agent: AgentProcess, frameworks: Callable[..., TestFramework]
) -> None:
    framework = frameworks()
    agent_id = mesos_agent.agent_id
    framework.launch(
        [
            command_task("ok", agent_id, "echo out-$MESOS_EXECUTOR_ID; echo err >&2"),
            command_task("bad", agent_id, "exit 3"),
        ],
        agent_id,
    )
    ok = framework.wait_terminal("ok")
    bad = framework.wait_terminal("bad")
    assert framework.states("ok") == ["TASK_STARTING", "TASK_RUNNING", "TASK_FINISHED"]
    assert ok["message"] == "Command exited with status 0"
    assert ok["executor_id"]["value"] == "ok", "a command executor's id is the task id"
    assert ok["source"] == "SOURCE_EXECUTOR"
    assert framework.states("bad") == ["TASK_STARTING", "TASK_RUNNING", "TASK_FAILED"]
    assert bad["message"] == "Command exited with status 3"

    sandbox = latest_sandbox(mesos_agent, framework.framework_id, "ok")
    assert "out-ok" in _read_when(sandbox / "stdout", "out-ok")
    assert "err" in (sandbox / "stderr").read_text()


def test_kill_uses_sigterm_then_sigkill_after_the_kill_policy_grace(
    mesos_agent: AgentProcess, frameworks: Callable[..., TestFramework]
) -> None:
    framework = frameworks()
    agent_id = mesos_agent.agent_id
    framework.launch(
        [
            command_task("polite", agent_id, "exec sleep 1000"),
            command_task(
                "stubborn", agent_id, "trap '' TERM; sleep 1000 & wait; sleep 1000", kill_grace_seconds=1.0
            ),
        ],
        agent_id,
    )
    framework.wait_update("polite", "TASK_RUNNING")
    framework.wait_update("stubborn", "TASK_RUNNING")
    started = time.monotonic()
    framework.driver.killTask({"value": "polite"})
    framework.driver.killTask({"value": "stubborn"})
    polite = framework.wait_update("polite", "TASK_KILLED", timeout=10)
    stubborn = framework.wait_update("stubborn", "TASK_KILLED", timeout=10)
    assert polite["message"] == "Command terminated with signal Terminated"
    assert stubborn["message"] == "Command terminated with signal Killed"
    assert time.monotonic() - started >= 1.0, "SIGKILL only after the grace period"


def test_argv_semantics_and_user(mesos_agent: AgentProcess, frameworks: Callable[..., TestFramework]) -> None:
    framework = frameworks()
    agent_id = mesos_agent.agent_id
    nobody = pwd.getpwnam("nobody")
    framework.launch(
        [
            # shell=false: execvp(value, arguments) with arguments[0] as argv[0], no shell expansion.
            command_task(
                "argv", agent_id, "/bin/sh", shell=False, arguments=["custom-argv0", "-c", 'echo "$0|$HOME*"']
            ),
            command_task("as-nobody", agent_id, "id -u", user="nobody"),
        ],
        agent_id,
    )
    assert framework.wait_terminal("argv")["state"] == "TASK_FINISHED"
    assert framework.wait_terminal("as-nobody")["state"] == "TASK_FINISHED"
    argv_out = _read_when(
        latest_sandbox(mesos_agent, framework.framework_id, "argv") / "stdout", "custom-argv0"
    )
    assert "custom-argv0|" in argv_out
    nobody_out = _read_when(
        latest_sandbox(mesos_agent, framework.framework_id, "as-nobody") / "stdout", str(nobody.pw_uid)
    )
    assert f"\n{nobody.pw_uid}\n" in f"\n{nobody_out}"
