"""The executor HTTP API, driven by hand: status codes, the SUBSCRIBE stream, UPDATE and MESSAGE."""

from __future__ import annotations

import base64
import http.client
import json
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.integration.mesos_agent.harness import TestFramework, executor_info, executor_task
from tests.mesos_fixtures import AgentProcess

pytestmark = pytest.mark.integration


class EventStream:
    """A SUBSCRIBE response read record by record (RecordIO over chunked HTTP)."""

    def __init__(self, connection: http.client.HTTPConnection, response: http.client.HTTPResponse) -> None:
        self.connection = connection
        self.response = response

    def next(self) -> dict[str, Any] | None:
        header = self.response.readline()
        if not header:
            return None
        payload = self.response.read(int(header))
        return json.loads(payload)

    def close(self) -> None:
        self.connection.close()


def _post(
    agent: AgentProcess, body: Any, headers: dict[str, str] | None = None, method: str = "POST"
) -> tuple[int, dict[str, str], str]:
    connection = http.client.HTTPConnection(agent.host, agent.port, timeout=10)
    try:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        connection.request(
            method,
            "/api/v1/executor",
            body=data,
            headers={"Content-Type": "application/json"} if headers is None else headers,
        )
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read().decode()
    finally:
        connection.close()


def _subscribe(agent: AgentProcess, call: dict[str, Any], accept: str = "application/json") -> EventStream:
    connection = http.client.HTTPConnection(agent.host, agent.port, timeout=20)
    connection.request(
        "POST",
        "/api/v1/executor",
        body=json.dumps(call).encode(),
        headers={"Content-Type": "application/json", "Accept": accept},
    )
    return EventStream(connection, connection.getresponse())


@pytest.fixture
def streams() -> Iterator[list[EventStream]]:
    opened: list[EventStream] = []
    try:
        yield opened
    finally:
        for stream in opened:
            stream.close()


def _uuid() -> str:
    return base64.b64encode(uuid.uuid4().bytes).decode()


def test_executor_api_by_hand(
    mesos_agent: AgentProcess, frameworks: Callable[..., TestFramework], streams: list[EventStream]
) -> None:
    framework = frameworks()
    agent_id = mesos_agent.agent_id
    # This executor's process never talks to the agent; the test plays the executor instead.
    silent = executor_info("manual", command={"value": "exec sleep 120", "shell": True})
    framework.launch([executor_task("by-hand", agent_id, silent, {"action": "run"})], agent_id)
    fid = framework.framework_id
    ids = {"framework_id": {"value": fid}, "executor_id": {"value": "manual"}}
    deadline = time.monotonic() + 20
    while not any(f["executors"] for f in mesos_agent.state()["frameworks"]):
        assert time.monotonic() < deadline
        time.sleep(0.05)

    status, headers, text = _post(mesos_agent, b"", method="GET", headers={})
    assert (status, headers.get("Allow"), text) == (
        405,
        "POST",
        "Expecting one of { 'POST' }, but received 'GET'",
    )
    assert _post(mesos_agent, b"{}", headers={})[::2] == (400, "Expecting 'Content-Type' to be present")
    assert _post(mesos_agent, b"{}", headers={"Content-Type": "text/plain"})[0] == 415
    status, _, text = _post(mesos_agent, b"{not json")
    assert status == 400
    assert text.startswith("Failed to parse body into JSON")
    assert _post(mesos_agent, {"type": "UPDATE"})[::2] == (
        400,
        "Failed to convert JSON into Call protobuf: Missing required fields: executor_id, framework_id",
    )
    assert _post(mesos_agent, {**ids})[::2] == (
        400,
        "Failed to validate Executor::Call: Expecting 'type' to be present",
    )
    unknown_framework = {"framework_id": {"value": "nope"}, "executor_id": {"value": "manual"}}
    assert _post(mesos_agent, {**unknown_framework, "type": "HEARTBEAT"})[0] == 202
    assert _post(mesos_agent, {**unknown_framework, "type": "MESSAGE", "message": {"data": ""}})[::2] == (
        400,
        "Framework cannot be found",
    )
    unknown_executor = {"framework_id": {"value": fid}, "executor_id": {"value": "nope"}}
    assert _post(mesos_agent, {**unknown_executor, "type": "MESSAGE", "message": {"data": ""}})[::2] == (
        400,
        "Executor cannot be found",
    )
    running = {
        "task_id": {"value": "by-hand"},
        "state": "TASK_RUNNING",
        "source": "SOURCE_EXECUTOR",
        "uuid": _uuid(),
    }
    assert _post(mesos_agent, {**ids, "type": "UPDATE", "update": {"status": running}})[::2] == (
        403,
        "Executor is not subscribed",
    )
    refused = _subscribe(
        mesos_agent, {**ids, "type": "SUBSCRIBE", "subscribe": {}}, accept="application/x-protobuf"
    )
    streams.append(refused)
    assert refused.response.status == 406

    stream = _subscribe(mesos_agent, {**ids, "type": "SUBSCRIBE", "subscribe": {}})
    streams.append(stream)
    assert stream.response.status == 200
    assert stream.response.getheader("Content-Type") == "application/json"
    assert stream.response.getheader("Transfer-Encoding") == "chunked"
    assert stream.response.getheader("Content-Length") is None
    assert stream.response.getheader("Mesos-Stream-Id") is None
    subscribed = stream.next()
    assert subscribed is not None
    assert subscribed["type"] == "SUBSCRIBED"
    details = subscribed["subscribed"]
    assert details["executor_info"]["executor_id"] == {"value": "manual"}
    assert details["framework_info"]["id"] == {"value": fid}
    assert details["agent_info"]["id"] == {"value": agent_id}
    assert details["agent_info"]["port"] == mesos_agent.port
    assert details["container_id"]["value"]
    launch = stream.next()
    assert launch is not None
    assert launch["type"] == "LAUNCH"
    assert launch["launch"]["task"]["task_id"] == {"value": "by-hand"}

    def update(status: dict[str, Any]) -> tuple[int, str]:
        code, _, body = _post(mesos_agent, {**ids, "type": "UPDATE", "update": {"status": status}})
        return code, body

    assert update({**running, "uuid": base64.b64encode(b"abc").decode()}) == (
        400,
        "Failed to validate Executor::Call: Not a valid UUID",
    )
    code, body = update({**running, "source": "SOURCE_AGENT"})
    assert code == 400
    assert body.endswith("with invalid source, expecting 'SOURCE_EXECUTOR'")
    code, body = update({**running, "state": "TASK_STAGING"})
    assert code == 400
    assert body.endswith("which is not allowed")

    assert update(running) == (202, "")
    acknowledged = stream.next()
    assert acknowledged == {
        "type": "ACKNOWLEDGED",
        "acknowledged": {"task_id": {"value": "by-hand"}, "uuid": running["uuid"]},
    }
    seen = framework.wait_update("by-hand", "TASK_RUNNING")
    assert seen["uuid"] == running["uuid"]
    assert seen["source"] == "SOURCE_EXECUTOR"
    assert seen["executor_id"] == {"value": "manual"}

    code, _, _ = _post(
        mesos_agent, {**ids, "type": "MESSAGE", "message": {"data": base64.b64encode(b"hi").decode()}}
    )
    assert code == 202
    assert framework.wait_for(lambda r: r.messages, 20, "the executor's message") == [
        ("manual", agent_id, b"hi")
    ]

    framework.driver.sendFrameworkMessage(
        {"value": "manual"}, {"value": agent_id}, base64.b64encode(b"yo").decode()
    )
    message = stream.next()
    assert message == {"type": "MESSAGE", "message": {"data": base64.b64encode(b"yo").decode()}}

    framework.driver.killTask({"value": "by-hand"})
    kill = stream.next()
    assert kill == {"type": "KILL", "kill": {"task_id": {"value": "by-hand"}}}

    # A second subscription replaces the first: the old stream ends.
    second = _subscribe(mesos_agent, {**ids, "type": "SUBSCRIBE", "subscribe": {}})
    streams.append(second)
    assert second.response.status == 200
    assert stream.next() is None
    assert second.next()["type"] == "SUBSCRIBED"  # type: ignore[index]
