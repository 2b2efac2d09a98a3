"""Executor Call validation and the executor environment, as Mesos defines them."""

from __future__ import annotations

import base64
import uuid
from typing import Any

import pytest

from sandbox.mesos import protojson
from sandbox.mesos.agent.executor_api import executor_call_schema, validate_call
from sandbox.mesos.agent.executor_env import executor_environment

IDS = {"framework_id": {"value": "F"}, "executor_id": {"value": "E"}}


def _status(**changes: Any) -> dict[str, Any]:
    status = {"task_id": {"value": "t"}, "state": "TASK_RUNNING", "source": "SOURCE_EXECUTOR"}
    status["uuid"] = base64.b64encode(uuid.uuid4().bytes).decode()
    status.update(changes)
    return {k: v for k, v in status.items() if v is not None}


@pytest.mark.parametrize(
    ("call", "error"),
    [
        ({**IDS}, "Expecting 'type' to be present"),
        ({**IDS, "type": "SUBSCRIBE"}, "Expecting 'subscribe' to be present"),
        ({**IDS, "type": "UPDATE"}, "Expecting 'update' to be present"),
        ({**IDS, "type": "MESSAGE"}, "Expecting 'message' to be present"),
        (
            {**IDS, "type": "UPDATE", "update": {"status": _status(uuid=None)}},
            "Expecting 'uuid' to be present",
        ),
        ({**IDS, "type": "UPDATE", "update": {"status": _status(uuid="AAAA")}}, "Not a valid UUID"),
        (
            {**IDS, "type": "UPDATE", "update": {"status": _status(executor_id={"value": "X"})}},
            "ExecutorID in Call: E does not match ExecutorID in TaskStatus: X",
        ),
        (
            {**IDS, "type": "UPDATE", "update": {"status": _status(source=None)}},
            "Received Call from executor E of framework F with invalid source, expecting 'SOURCE_EXECUTOR'",
        ),
        (
            {**IDS, "type": "UPDATE", "update": {"status": _status(state="TASK_STAGING")}},
            "Received TASK_STAGING from executor E of framework F which is not allowed",
        ),
        ({**IDS, "type": "UPDATE", "update": {"status": _status()}}, None),
        ({**IDS, "type": "SUBSCRIBE", "subscribe": {}}, None),
        ({**IDS, "type": "HEARTBEAT"}, None),
    ],
)
def test_validate_call(call: dict[str, Any], error: str | None) -> None:
    checked = protojson.check(executor_call_schema, call)
    assert validate_call(checked) == error


def test_calls_that_do_not_convert() -> None:
    with pytest.raises(protojson.ProtoJsonError, match="Missing required fields: executor_id, framework_id"):
        protojson.check(executor_call_schema, {"type": "SUBSCRIBE"})
    with pytest.raises(protojson.ProtoJsonError, match="Failed to find enum for 'JUMP'"):
        protojson.check(executor_call_schema, {**IDS, "type": "JUMP"})
    with pytest.raises(protojson.ProtoJsonError, match=r"update\.status\.state"):
        protojson.check(
            executor_call_schema, {**IDS, "type": "UPDATE", "update": {"status": {"task_id": {"value": "t"}}}}
        )


def test_environment_order_and_values() -> None:
    info = {
        "executor_id": {"value": "E"},
        "framework_id": {"value": "F"},
        "shutdown_grace_period": {"nanoseconds": 1_500_000_000},
        "command": {
            "environment": {
                "variables": [{"name": "LIBPROCESS_PORT", "value": "9"}, {"name": "X", "value": "y"}]
            }
        },
    }
    env = executor_environment(
        executor_info=info,
        directory="/w/sandbox",
        agent_id="A-S0",
        agent_ip="10.0.0.5",
        agent_port=5051,
        checkpoint=False,
        http_command_executor=False,
        default_shutdown_grace_period=5.0,
        recovery_timeout=900.0,
        subscription_backoff_max=2.0,
        executor_environment_variables=None,
        agent_environment={"PATH": "/bin", "MESOS_WORK_DIR": "/w", "LIBPROCESS_IP": "10.0.0.5"},
    )
    assert env["PATH"] == "/bin", "executors inherit the agent's environment"
    assert env["MESOS_WORK_DIR"] == "/w"
    assert env["LIBPROCESS_IP"] == "10.0.0.5"
    assert env["LIBPROCESS_PORT"] == "9", "CommandInfo.environment comes last"
    assert env["X"] == "y"
    assert env["MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD"] == "1500ms"
    assert env["MESOS_CHECKPOINT"] == "0"
    assert "MESOS_RECOVERY_TIMEOUT" not in env
    assert env["MESOS_SLAVE_PID"] == "slave(1)@10.0.0.5:5051"
    assert env["MESOS_AGENT_ENDPOINT"] == "10.0.0.5:5051"

    replaced = executor_environment(
        executor_info={"executor_id": {"value": "E"}, "framework_id": {"value": "F"}},
        directory="/w/sandbox",
        agent_id="A-S0",
        agent_ip="10.0.0.5",
        agent_port=5051,
        checkpoint=True,
        http_command_executor=True,
        default_shutdown_grace_period=5.0,
        recovery_timeout=900.0,
        subscription_backoff_max=2.0,
        executor_environment_variables={"ONLY": "this"},
        agent_environment={"PATH": "/bin"},
    )
    assert "PATH" not in replaced, "--executor_environment_variables replaces the agent's environment"
    assert replaced["ONLY"] == "this"
    assert replaced["MESOS_RECOVERY_TIMEOUT"] == "15mins"
    assert replaced["MESOS_SUBSCRIPTION_BACKOFF_MAX"] == "2secs"
    assert replaced["MESOS_HTTP_COMMAND_EXECUTOR"] == "1"
    assert replaced["MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD"] == "5secs"
