"""Fuzzing the master's JSON entry points: whatever a client sends, no 5xx, no crash, still healthy.

Inputs: random JSON documents; valid calls with one field replaced by a random value (so the
handlers behind validation are reached); random bytes; wrong content types; bodies cut short.
Mesos itself answers 501 to a call of type UNKNOWN and the stand-in answers 501 to operator
calls it does not implement; those are the only 5xx allowed. After each batch the master must
answer /master/health and its log must not show a handler exception.
"""

from __future__ import annotations

import base64
import copy
import http.client
import json
import socket
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sandbox.mesos.protojson import OPERATOR_CALL_TYPES
from tests.integration.mesos_conformance.client import SchedulerClient, post_json, request, task_info
from tests.mesos_fixtures import MasterProcess, running_master

pytestmark = pytest.mark.integration

FUZZ = settings(
    max_examples=250,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
# Every other operator call (OPERATOR_CALL_TYPES, including UNKNOWN) is answered 501.
IMPLEMENTED_OPERATOR_CALLS = {
    "GET_HEALTH",
    "GET_VERSION",
    "GET_FLAGS",
    "GET_MASTER",
    "GET_STATE",
    "GET_AGENTS",
    "GET_FRAMEWORKS",
    "GET_TASKS",
    "GET_EXECUTORS",
    "GET_ROLES",
    "TEARDOWN",
    "MARK_AGENT_GONE",
    "SUBSCRIBE",
}
NOT_IMPLEMENTED_OPERATOR_CALLS = set(OPERATOR_CALL_TYPES) - IMPLEMENTED_OPERATOR_CALLS

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
    | st.sampled_from(
        ["SUBSCRIBE", "ACCEPT", "TASK_RUNNING", "SCALAR", "RANGES", "LAUNCH", "*", "AAAAAAAAAAAAAAAAAAAAAA=="]
    ),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=12,
)


@pytest.fixture(scope="module")
def fuzz_master() -> Iterator[MasterProcess]:
    flags = [
        "--heartbeat_interval=1secs",
        "--simulated_agents=3",
        "--simulated_agent_resources=cpus:64;mem:65536;disk:100000;ports:[1-60000]",
        "--simulated_task_delay=10ms",
    ]
    with running_master(flags) as master:
        yield master


@pytest.fixture(scope="module")
def fuzz_scheduler(fuzz_master: MasterProcess) -> Iterator[SchedulerClient]:
    client = SchedulerClient.subscribe(fuzz_master, failover_timeout=3600.0)
    try:
        yield client
    finally:
        client.close()


def _paths(document: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix] if prefix else []
    if isinstance(document, dict):
        for key, value in document.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(document, list):
        for index, value in enumerate(document):
            found += _paths(value, (*prefix, index))
    return found


def _replace(document: Any, path: tuple[Any, ...], value: Any) -> Any:
    mutated = copy.deepcopy(document)
    target = mutated
    for step in path[:-1]:
        target = target[step]
    if isinstance(target, dict) and value is _DELETE:
        del target[path[-1]]
    elif value is not _DELETE:
        target[path[-1]] = value
    return mutated


_DELETE = object()
_LIVE_OFFERS: list[dict[str, Any]] = []


def _send(master: MasterProcess, path: str, body: bytes, headers: dict[str, str]) -> int:
    """POST and return the status without reading the body (it may be an endless stream)."""
    connection = http.client.HTTPConnection(master.host, master.port, timeout=10)
    try:
        connection.request("POST", path, body=body, headers=headers)
        return connection.getresponse().status
    finally:
        connection.close()


def _assert_healthy(master: MasterProcess) -> None:
    assert master.is_running()
    assert request(master, "GET", "/master/health").status == 200
    log = master.log()
    assert "Traceback" not in log, log[-3000:]
    assert "Error handling request" not in log, log[-3000:]


def _scheduler_templates(client: SchedulerClient, agent_id: str, offer_id: str) -> list[dict[str, Any]]:
    framework_id = {"value": client.framework_id}
    uuid = base64.b64encode(bytes(16)).decode()
    return [
        {
            "type": "ACCEPT",
            "framework_id": framework_id,
            "accept": {
                "offer_ids": [{"value": offer_id}],
                "operations": [
                    {
                        "type": "LAUNCH",
                        "launch": {"task_infos": [task_info("fz", agent_id, cpus=0.01, mem=1)]},
                    }
                ],
                "filters": {"refuse_seconds": 0.0},
            },
        },
        {
            "type": "DECLINE",
            "framework_id": framework_id,
            "decline": {"offer_ids": [{"value": offer_id}], "filters": {"refuse_seconds": 0.0}},
        },
        {
            "type": "KILL",
            "framework_id": framework_id,
            "kill": {"task_id": {"value": "fz"}, "agent_id": {"value": agent_id}},
        },
        {
            "type": "ACKNOWLEDGE",
            "framework_id": framework_id,
            "acknowledge": {"agent_id": {"value": agent_id}, "task_id": {"value": "fz"}, "uuid": uuid},
        },
        {
            "type": "RECONCILE",
            "framework_id": framework_id,
            "reconcile": {"tasks": [{"task_id": {"value": "fz"}, "agent_id": {"value": agent_id}}]},
        },
        {"type": "REVIVE", "framework_id": framework_id, "revive": {"roles": ["*"]}},
        {"type": "SUPPRESS", "framework_id": framework_id, "suppress": {"roles": ["*"]}},
        {
            "type": "SHUTDOWN",
            "framework_id": framework_id,
            "shutdown": {"executor_id": {"value": "fz"}, "agent_id": {"value": agent_id}},
        },
        {
            "type": "MESSAGE",
            "framework_id": framework_id,
            "message": {"agent_id": {"value": agent_id}, "executor_id": {"value": "fz"}, "data": "eA=="},
        },
        {
            "type": "UPDATE_FRAMEWORK",
            "framework_id": framework_id,
            "update_framework": {
                "framework_info": {
                    "user": "root",
                    "name": "conformance",
                    "id": framework_id,
                    "failover_timeout": 3600.0,
                }
            },
        },
        {"type": "SUBSCRIBE", "subscribe": {"framework_info": {"user": "root", "name": "fuzz"}}},
    ]


@FUZZ
@given(document=json_values)
def test_random_json_to_the_scheduler_api(fuzz_master: MasterProcess, document: Any) -> None:
    status = _send(
        fuzz_master, "/api/v1/scheduler", json.dumps(document).encode(), {"Content-Type": "application/json"}
    )
    assert status < 500


@FUZZ
@given(data=st.data())
def test_mutated_scheduler_calls(
    fuzz_master: MasterProcess, fuzz_scheduler: SchedulerClient, data: st.DataObject
) -> None:
    # Use a live offer when there is one, so mutated ACCEPTs reach the launch path.
    for event in fuzz_scheduler.stream.collect(0.05, "OFFERS"):
        _LIVE_OFFERS[:] = event["offers"]["offers"]
    known = _LIVE_OFFERS or [{"agent_id": {"value": "agent"}, "id": {"value": "offer"}}]
    # Indices, not sampled_from(): the live lists change between examples (Hypothesis needs
    # the same draws for the same choices).
    offer = known[data.draw(st.integers(0, 63)) % len(known)]
    agent_id, offer_id = offer["agent_id"]["value"], offer["id"]["value"]
    template = data.draw(st.sampled_from(_scheduler_templates(fuzz_scheduler, agent_id, offer_id)))
    path = data.draw(st.sampled_from(_paths(template)))
    value = data.draw(st.one_of(json_values, st.just(_DELETE)))
    body = _replace(template, path, value)
    headers = {"Content-Type": "application/json", "Mesos-Stream-Id": fuzz_scheduler.stream.stream_id}
    if body.get("type") == "SUBSCRIBE" if isinstance(body, dict) else False:
        headers.pop("Mesos-Stream-Id")
    status = _send(fuzz_master, "/api/v1/scheduler", json.dumps(body).encode(), headers)
    allowed_501 = isinstance(body, dict) and body.get("type") == "UNKNOWN"
    assert status < 500 or (status == 501 and allowed_501), (status, body)


@FUZZ
@given(
    document=json_values,
    kind=st.sampled_from(
        sorted(NOT_IMPLEMENTED_OPERATOR_CALLS | {"GET_STATE", "TEARDOWN", "GET_TASKS", "MARK_AGENT_GONE"})
    ),
)
def test_operator_api(fuzz_master: MasterProcess, document: Any, kind: str) -> None:
    body = document if not isinstance(document, dict) else {**document, "type": kind}
    if kind in ("TEARDOWN", "MARK_AGENT_GONE") and isinstance(body, dict):
        body.pop("teardown", None)  # never tear down the fuzzing framework or remove the agents
        body.pop("mark_agent_gone", None)
    status = _send(fuzz_master, "/api/v1", json.dumps(body).encode(), {"Content-Type": "application/json"})
    allowed_501 = isinstance(body, dict) and body.get("type") in NOT_IMPLEMENTED_OPERATOR_CALLS
    assert status < 500 or (status == 501 and allowed_501), (status, body)


def _internal_templates(agent_id: str, framework_id: str) -> dict[str, dict[str, Any]]:
    status = {
        "task_id": {"value": "fz"},
        "state": "TASK_RUNNING",
        "source": "SOURCE_EXECUTOR",
        "uuid": base64.b64encode(bytes(16)).decode(),
        "timestamp": 1.0,
    }
    info = {
        "hostname": "fz",
        "port": 1,
        "resources": [{"name": "cpus", "type": "SCALAR", "scalar": {"value": 1}}],
    }
    return {
        "/internal/agent/register": {"agent_info": info, "agent_url": "http://127.0.0.1:9"},
        "/internal/agent/reregister": {
            "agent_info": {**info, "id": {"value": "fz-agent"}},
            "agent_url": "http://127.0.0.1:9",
            "frameworks": [{"user": "u", "name": "n", "id": {"value": "fz-fw"}}],
            "tasks": [
                {
                    "name": "t",
                    "task_id": {"value": "t"},
                    "framework_id": {"value": "fz-fw"},
                    "state": "TASK_RUNNING",
                    "resources": info["resources"],
                }
            ],
        },
        "/internal/agent/status_update": {
            "agent_id": agent_id,
            "framework_id": framework_id,
            "status": status,
        },
        "/internal/agent/exited_executor": {
            "agent_id": agent_id,
            "framework_id": framework_id,
            "executor_id": "fz",
            "status": 0,
        },
        "/internal/agent/executor_message": {
            "agent_id": agent_id,
            "framework_id": framework_id,
            "executor_id": "fz",
            "data": "eA==",
        },
    }


@FUZZ
@given(data=st.data())
def test_mutated_internal_calls(
    fuzz_master: MasterProcess, fuzz_scheduler: SchedulerClient, data: st.DataObject
) -> None:
    agent_id = fuzz_master.state()["slaves"][0]["id"]
    templates = _internal_templates(agent_id, fuzz_scheduler.framework_id)
    path_name = data.draw(st.sampled_from(sorted(templates)))
    template = templates[path_name]
    path = data.draw(st.sampled_from(_paths(template)))
    body = _replace(template, path, data.draw(st.one_of(json_values, st.just(_DELETE))))
    status = _send(fuzz_master, path_name, json.dumps(body).encode(), {"Content-Type": "application/json"})
    assert status < 500, (status, path_name, body)


@FUZZ
@given(
    body=st.binary(max_size=200),
    path=st.sampled_from(
        ["/api/v1/scheduler", "/api/v1", "/internal/agent/status_update", "/internal/agent/register"]
    ),
    content_type=st.sampled_from(
        ["application/json", "application/x-protobuf", "text/plain", "", "application/json; charset=utf-8"]
    ),
)
def test_random_bytes_and_content_types(
    fuzz_master: MasterProcess, body: bytes, path: str, content_type: str
) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    assert _send(fuzz_master, path, body, headers) < 500


def test_truncated_bodies_and_abrupt_disconnects(fuzz_master: MasterProcess) -> None:
    for path in ("/api/v1/scheduler", "/api/v1", "/internal/agent/register"):
        for declared in (10, 1000, 10**6):
            with socket.create_connection((fuzz_master.host, fuzz_master.port), timeout=5) as sock:
                head = (
                    f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                    f"Content-Length: {declared}\r\n\r\n"
                )
                sock.sendall(head.encode() + b'{"type": "SUBSC')
        # A subscriber that vanishes right after its headers.
        with socket.create_connection((fuzz_master.host, fuzz_master.port), timeout=5) as sock:
            body = json.dumps(
                {"type": "SUBSCRIBE", "subscribe": {"framework_info": {"user": "u", "name": "gone"}}}
            )
            sock.sendall(
                f"POST /api/v1/scheduler HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n\r\n{body}".encode()
            )
            sock.recv(100)
        # Garbage that is not HTTP at all.
        with socket.create_connection((fuzz_master.host, fuzz_master.port), timeout=5) as sock:
            sock.sendall(b"\x00\xff\x10garbage\r\n\r\n")
            sock.recv(1000)
    _assert_healthy(fuzz_master)
    assert post_json(fuzz_master, "/api/v1", {"type": "GET_HEALTH"}).status == 200


def test_master_survived_the_fuzzing(fuzz_master: MasterProcess, fuzz_scheduler: SchedulerClient) -> None:
    # Runs last in this module (pytest keeps file order): the shared master took every input above.
    _assert_healthy(fuzz_master)
    state = fuzz_master.state()
    assert len(state["slaves"]) >= 3
    assert fuzz_scheduler.call("RECONCILE", reconcile={"tasks": []}).status == 202
