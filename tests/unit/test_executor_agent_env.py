"""What the agent's environment and events tell the executor: durations, grace periods, status JSON."""

from __future__ import annotations

import base64
import json

import pytest

from executor.agent_env import AgentEnvironment, AgentEnvironmentError, kill_grace_within, parse_duration
from executor.main import grace_from_kill_policy, status_json
from executor.status import StatusReporter, TaskUpdate

ENV = {
    "MESOS_SANDBOX": "/var/lib/mesos/slaves/S0/frameworks/F/executors/E/runs/C",
    "MESOS_FRAMEWORK_ID": "F-0000",
    "MESOS_EXECUTOR_ID": "alluxio-worker-1",
    "MESOS_AGENT_ENDPOINT": "10.0.0.5:5051",
    "MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD": "5secs",
}


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("5secs", 5.0), ("1mins", 60.0), ("500ms", 0.5), ("2.5hrs", 9000.0), ("15mins", 900.0), ("10ns", 1e-8)],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["5", "5 seconds", "-1secs", "secs", ""])
def test_bad_duration(text: str) -> None:
    with pytest.raises(ValueError, match="is not a Mesos duration"):
        parse_duration(text)


def test_environment_of_a_custom_executor() -> None:
    agent = AgentEnvironment.from_environ(ENV)
    assert agent.checkpoint is False
    assert agent.recovery_timeout_secs == 900.0
    checkpointed = AgentEnvironment.from_environ(
        {**ENV, "MESOS_CHECKPOINT": "1", "MESOS_RECOVERY_TIMEOUT": "2mins"}
    )
    assert (checkpointed.checkpoint, checkpointed.recovery_timeout_secs) == (True, 120.0)
    assert AgentEnvironment.from_environ({**ENV, "MESOS_CHECKPOINT": "0"}).checkpoint is False
    assert agent.sandbox == ENV["MESOS_SANDBOX"]
    assert agent.shutdown_grace_secs == 5.0
    assert agent.agent_endpoint == "10.0.0.5:5051"
    without = dict(ENV)
    del without["MESOS_SANDBOX"]
    without["MESOS_DIRECTORY"] = "/d"
    del without["MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD"]
    agent = AgentEnvironment.from_environ(without)
    assert (agent.sandbox, agent.shutdown_grace_secs) == ("/d", None)


@pytest.mark.parametrize(
    ("name", "value", "fragment"),
    [
        ("MESOS_FRAMEWORK_ID", "", "MESOS_FRAMEWORK_ID is not set"),
        ("MESOS_AGENT_ENDPOINT", "nohost", "MESOS_AGENT_ENDPOINT must be ip:port"),
        ("MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD", "soon", "MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD: 'soon'"),
    ],
)
def test_bad_environment_names_the_variable(name: str, value: str, fragment: str) -> None:
    with pytest.raises(AgentEnvironmentError, match=fragment):
        AgentEnvironment.from_environ({**ENV, name: value})


def test_kill_policy_grace() -> None:
    assert grace_from_kill_policy(None) is None
    assert grace_from_kill_policy({}) is None
    assert grace_from_kill_policy({"grace_period": {"nanoseconds": 2_500_000_000}}) == 2.5


def test_shutdown_grace_leaves_room_for_cleanup() -> None:
    assert kill_grace_within(30.0, None) == 30.0
    assert kill_grace_within(30.0, 5.0) == 4.0
    assert kill_grace_within(1.0, 5.0) == 1.0
    assert kill_grace_within(10.0, 60.0) == 10.0
    assert kill_grace_within(3.0, 0.2) == 0.0


def test_status_json_shape() -> None:
    update = TaskUpdate("TASK_FAILED", "boom", reason="REASON_TASK_INVALID", details={"exit_status": 3})
    status = status_json("t1", update)
    assert status["task_id"] == {"value": "t1"}
    assert status["state"] == "TASK_FAILED"
    assert status["reason"] == "REASON_TASK_INVALID"
    assert json.loads(base64.b64decode(status["data"])) == {"exit_status": 3}
    assert "data" not in status_json("t1", TaskUpdate("TASK_RUNNING"))


def test_reporter_keeps_the_protocol_order() -> None:
    sent: list[str] = []
    reporter = StatusReporter(lambda u: sent.append(u.state))
    for state in [
        "TASK_STARTING",
        "TASK_STARTING",
        "TASK_KILLING",
        "TASK_RUNNING",
        "TASK_KILLED",
        "TASK_FAILED",
    ]:
        reporter.report(TaskUpdate(state))
    assert sent == ["TASK_STARTING", "TASK_KILLING", "TASK_KILLED"]
