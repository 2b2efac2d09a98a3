"""Reference section 0: wire conventions (status codes, headers, RecordIO framing, JSON rules, ids)."""

from __future__ import annotations

import base64
import itertools
import json
import re
import time
import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sandbox.mesos.recordio import RecordIODecoder, RecordIOError, encode, encode_json
from sandbox.mesos.wire import DurationError, format_duration, parse_duration
from tests.integration.mesos_conformance.client import (
    EventStream,
    SchedulerClient,
    framework_info,
    post_json,
    request,
)
from tests.mesos_fixtures import MasterProcess

pytestmark = pytest.mark.integration

SUBSCRIBE = {"type": "SUBSCRIBE", "subscribe": {"framework_info": framework_info()}}
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


# --------------------------------------------------------------------------------------------
# RecordIO (shared codec, used by the agent too)
# --------------------------------------------------------------------------------------------


def test_record_format_is_length_newline_bytes() -> None:
    assert encode_json({"type": "HEARTBEAT"}) == b'20\n{"type":"HEARTBEAT"}'


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(max_size=300), max_size=8), st.lists(st.integers(1, 50), max_size=30))
def test_decoder_handles_records_split_across_and_packed_into_chunks(
    records: list[bytes], cuts: list[int]
) -> None:
    stream = b"".join(encode(r) for r in records)
    decoder = RecordIODecoder()
    decoded: list[bytes] = []
    position = 0
    for cut in cuts:
        decoded += decoder.feed(stream[position : position + cut])
        position += cut
    decoded += decoder.feed(stream[position:])
    assert decoded == records
    assert decoder.pending == 0


def test_decoder_refuses_garbage_headers() -> None:
    with pytest.raises(RecordIOError):
        RecordIODecoder().feed(b"x1\n{}")
    with pytest.raises(RecordIOError):
        RecordIODecoder().feed(b"9" * 30)


def test_durations_use_stout_units() -> None:
    assert parse_duration("5secs") == 5.0
    assert parse_duration("100ms") == 0.1
    assert parse_duration("15mins") == 900.0
    assert parse_duration("2weeks") == 1209600.0
    assert format_duration(15.0) == "15secs"
    assert format_duration(60.0) == "1mins"
    for bad in ("5", "5 seconds", "secs", "-"):
        with pytest.raises(DurationError):
            parse_duration(bad)


# --------------------------------------------------------------------------------------------
# Status codes and headers
# --------------------------------------------------------------------------------------------


def test_method_other_than_post_is_405(mesos_master: MasterProcess) -> None:
    reply = request(mesos_master, "GET", "/api/v1/scheduler")
    assert reply.status == 405
    assert reply.headers["allow"] == "POST"
    assert reply.text == "Expecting one of { 'POST' }, but received 'GET'"


def test_missing_content_type_is_400(mesos_master: MasterProcess) -> None:
    reply = request(mesos_master, "POST", "/api/v1/scheduler", json.dumps(SUBSCRIBE).encode())
    assert reply.status == 400
    assert reply.text == "Expecting 'Content-Type' to be present"


@pytest.mark.parametrize(
    "content_type", ["application/json; charset=utf-8", "text/plain", "application/x-protobuf"]
)
def test_other_content_types_are_415(mesos_master: MasterProcess, content_type: str) -> None:
    reply = request(
        mesos_master,
        "POST",
        "/api/v1/scheduler",
        json.dumps(SUBSCRIBE),
        headers={"Content-Type": content_type},
    )
    assert reply.status == 415
    assert "Expecting 'Content-Type' of application/json" in reply.text


@pytest.mark.parametrize(
    ("accept", "status"),
    [
        (None, 200),
        ("*/*", 200),
        ("application/*", 200),
        ("application/json", 200),
        ("application/x-protobuf, application/json;q=0.5", 200),
        ("application/x-protobuf", 406),
        ("text/html", 406),
        ("application/json;q=0", 406),
    ],
)
def test_accept_is_negotiated_on_subscribe(
    mesos_master: MasterProcess, accept: str | None, status: int
) -> None:
    stream = EventStream(mesos_master, SUBSCRIBE, headers={"Accept": accept})
    try:
        assert stream.status == status
        if status == 200:
            assert stream.headers["content-type"] == "application/json"
        else:
            assert stream.body_if_not_streaming.startswith(b"Expecting 'Accept' to allow")
    finally:
        stream.close()


def test_accept_is_not_checked_on_other_calls(mesos_master: MasterProcess) -> None:
    client = SchedulerClient.subscribe(mesos_master)
    try:
        assert client.call("REVIVE", headers={"Accept": "text/html"}).status == 202
    finally:
        client.close()


def test_subscribe_response_is_a_chunked_recordio_stream(mesos_master: MasterProcess) -> None:
    stream = EventStream(mesos_master, SUBSCRIBE)
    try:
        assert stream.status == 200
        assert stream.headers["content-type"] == "application/json"
        assert stream.headers["transfer-encoding"] == "chunked"
        assert "content-length" not in stream.headers
        assert UUID_RE.match(stream.stream_id)
        first = stream.next_event()
        second = stream.next_event()
        assert first["type"] == "SUBSCRIBED"
        assert second == {"type": "HEARTBEAT"}
        # Each record is "<len>\n<json>" with no trailing newline; the raw bytes prove it.
        raw = b"".join(stream.chunks)
        length, _, rest = raw.partition(b"\n")
        assert json.loads(rest[: int(length)]) == first
        assert rest[int(length) :].startswith(b'20\n{"type":"HEARTBEAT"}')
    finally:
        stream.close()


def test_heartbeats_follow_the_interval(mesos_master: MasterProcess) -> None:
    stream = EventStream(mesos_master, SUBSCRIBE)
    try:
        subscribed = stream.wait_for("SUBSCRIBED")
        assert subscribed["subscribed"]["heartbeat_interval_seconds"] == 1.0
        stream.wait_for("HEARTBEAT")  # the one right after SUBSCRIBED
        stream.collect(0.0)  # forget anything already buffered
        arrivals = []
        for _ in range(3):
            stream.wait_for("HEARTBEAT", timeout=3)
            arrivals.append(time.monotonic())
        gaps = [later - earlier for earlier, later in itertools.pairwise(arrivals)]
        assert all(0.5 <= gap <= 1.8 for gap in gaps), gaps
    finally:
        stream.close()


def test_default_heartbeat_interval_is_15_seconds(mesos_master_factory: object) -> None:
    master = mesos_master_factory()  # type: ignore[operator]
    stream = EventStream(master, SUBSCRIBE)
    try:
        assert stream.wait_for("SUBSCRIBED")["subscribed"]["heartbeat_interval_seconds"] == 15.0
    finally:
        stream.close()


# --------------------------------------------------------------------------------------------
# JSON conversion rules
# --------------------------------------------------------------------------------------------


def _post(master: MasterProcess, body: object) -> tuple[int, str]:
    reply = request(
        master, "POST", "/api/v1/scheduler", json.dumps(body), headers={"Content-Type": "application/json"}
    )
    return reply.status, reply.text


def test_malformed_json_is_400(mesos_master: MasterProcess) -> None:
    reply = request(
        mesos_master, "POST", "/api/v1/scheduler", b"{not json", headers={"Content-Type": "application/json"}
    )
    assert reply.status == 400
    assert reply.text.startswith("Failed to parse body into JSON: ")


def test_missing_required_fields_are_all_reported(mesos_master: MasterProcess) -> None:
    status, text = _post(mesos_master, {"type": "SUBSCRIBE", "subscribe": {"framework_info": {}}})
    assert status == 400
    assert text == (
        "Failed to convert JSON into Call protobuf: Missing required fields: "
        "subscribe.framework_info.user, subscribe.framework_info.name"
    )


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"type": 5}, "Not expecting a JSON number for field 'type'"),
        ({"type": "NOPE"}, "Failed to find enum for 'NOPE'"),
        ({"type": "SUBSCRIBE", "subscribe": []}, "Not expecting a JSON array for field 'subscribe'"),
        ([1, 2], "Expecting a JSON object"),
    ],
)
def test_wrong_types_are_refused(mesos_master: MasterProcess, body: object, fragment: str) -> None:
    status, text = _post(mesos_master, body)
    assert status == 400
    assert text.startswith("Failed to convert JSON into Call protobuf: ")
    assert fragment in text


def test_unknown_keys_are_ignored(mesos_master: MasterProcess) -> None:
    body = {
        "type": "SUBSCRIBE",
        "surprise": 1,
        "subscribe": {"framework_info": framework_info(extra={"x": 1})},
    }
    stream = EventStream(mesos_master, body)
    try:
        assert stream.status == 200
        assert stream.wait_for("SUBSCRIBED")
    finally:
        stream.close()


# --------------------------------------------------------------------------------------------
# Call validation and the stream id
# --------------------------------------------------------------------------------------------


def test_validation_failures(mesos_master: MasterProcess) -> None:
    cases = [
        ({}, "Expecting 'type' to be present"),
        ({"type": "SUBSCRIBE"}, "Expecting 'subscribe' to be present"),
        (
            {
                "type": "SUBSCRIBE",
                "framework_id": {"value": "x"},
                "subscribe": {"framework_info": framework_info()},
            },
            "'framework_id' differs from 'subscribe.framework_info.id'",
        ),
        ({"type": "TEARDOWN"}, "Expecting 'framework_id' to be present"),
        ({"type": "ACCEPT", "framework_id": {"value": "x"}}, "Expecting 'accept' to be present"),
        ({"type": "DECLINE", "framework_id": {"value": "x"}}, "Expecting 'decline' to be present"),
        ({"type": "KILL", "framework_id": {"value": "x"}}, "Expecting 'kill' to be present"),
        (
            {
                "type": "ACKNOWLEDGE",
                "framework_id": {"value": "x"},
                "acknowledge": {
                    "agent_id": {"value": "a"},
                    "task_id": {"value": "t"},
                    "uuid": base64.b64encode(b"short").decode(),
                },
            },
            "Not a valid UUID",
        ),
    ]
    for body, message in cases:
        status, text = _post(mesos_master, body)
        assert (status, text) == (400, f"Failed to validate scheduler::Call: {message}"), body


def test_subscribe_with_a_stream_id_is_400(mesos_master: MasterProcess) -> None:
    stream = EventStream(mesos_master, SUBSCRIBE, headers={"Mesos-Stream-Id": str(uuid.uuid4())})
    assert stream.status == 400
    assert stream.body_if_not_streaming == b"Subscribe calls should not include the 'Mesos-Stream-Id' header"
    stream.close()


def test_calls_need_the_right_framework_and_stream_id(mesos_master: MasterProcess) -> None:
    client = SchedulerClient.subscribe(mesos_master)
    try:
        unknown = post_json(
            mesos_master,
            "/api/v1/scheduler",
            {"type": "REVIVE", "framework_id": {"value": "nope"}},
            {"Mesos-Stream-Id": client.stream.stream_id},
        )
        assert (unknown.status, unknown.text) == (400, "Framework cannot be found")
        missing = post_json(
            mesos_master,
            "/api/v1/scheduler",
            {"type": "REVIVE", "framework_id": {"value": client.framework_id}},
        )
        assert (missing.status, missing.text) == (
            400,
            "All non-subscribe calls should include the 'Mesos-Stream-Id' header",
        )
        wrong = client.call("REVIVE", headers={"Mesos-Stream-Id": "not-it"})
        assert wrong.status == 400
        assert wrong.text == (
            "The stream ID 'not-it' included in this request didn't match the stream ID currently "
            f"associated with framework ID {client.framework_id}"
        )
        ok = client.call("REVIVE")
        assert (ok.status, ok.body) == (202, b"")
    finally:
        client.close()


def test_calls_from_a_disconnected_framework_are_403(mesos_master: MasterProcess) -> None:
    client = SchedulerClient.subscribe(mesos_master, failover_timeout=60.0)
    stream_id = client.stream.stream_id
    client.close()
    deadline = time.monotonic() + 10
    while True:
        reply = post_json(
            mesos_master,
            "/api/v1/scheduler",
            {"type": "REVIVE", "framework_id": {"value": client.framework_id}},
            {"Mesos-Stream-Id": stream_id},
        )
        if reply.status == 403 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert (reply.status, reply.text) == (403, "Framework is not subscribed")


# --------------------------------------------------------------------------------------------
# Ids and defaults
# --------------------------------------------------------------------------------------------


def test_id_formats(mesos_master_factory: object) -> None:
    master = mesos_master_factory("--simulated_agents=1", "--heartbeat_interval=1secs")  # type: ignore[operator]
    client = SchedulerClient.subscribe(master)
    try:
        master_id = client.subscribed["subscribed"]["master_info"]["id"]
        assert UUID_RE.match(master_id)
        assert client.framework_id == f"{master_id}-0000"
        offer = client.offers()[0]
        assert re.match(rf"^{master_id}-O\d+$", offer["id"]["value"])
        assert offer["agent_id"]["value"] == f"{master_id}-S0"
        second = SchedulerClient.subscribe(master)
        assert second.framework_id == f"{master_id}-0001"
        second.close()
    finally:
        client.close()


def test_master_info_shape(mesos_master: MasterProcess) -> None:
    client = SchedulerClient.subscribe(mesos_master)
    try:
        info = client.subscribed["subscribed"]["master_info"]
        assert info["port"] == mesos_master.port
        assert info["address"] == {"hostname": info["hostname"], "ip": "127.0.0.1", "port": mesos_master.port}
        assert info["ip"] == 16777343  # 127.0.0.1 in network order, read as a little-endian integer
        assert info["pid"] == f"master@127.0.0.1:{mesos_master.port}"
        assert info["version"] == "1.11.0"
    finally:
        client.close()


def test_framework_info_defaults_are_printed(mesos_master: MasterProcess) -> None:
    client = SchedulerClient.subscribe(mesos_master)
    try:
        reply = post_json(mesos_master, "/api/v1", {"type": "GET_FRAMEWORKS"})
        info = reply.json()["get_frameworks"]["frameworks"][0]["framework_info"]
        assert info["failover_timeout"] == 0.0
        assert info["checkpoint"] is False
        assert info["role"] == "*"
        assert info["id"] == {"value": client.framework_id}
    finally:
        client.close()


def test_agent_info_port_defaults_to_5051(mesos_master: MasterProcess) -> None:
    reply = post_json(
        mesos_master,
        "/internal/agent/register",
        {"agent_info": {"hostname": "h1", "resources": []}, "agent_url": "http://127.0.0.1:9"},
    )
    assert reply.status == 200
    agents = post_json(mesos_master, "/api/v1", {"type": "GET_AGENTS"}).json()["get_agents"]["agents"]
    assert agents[0]["agent_info"]["port"] == 5051
    assert agents[0]["agent_info"]["id"] == reply.json()["agent_id"]


# --------------------------------------------------------------------------------------------
# Authentication
# --------------------------------------------------------------------------------------------


def _basic(principal: str, secret: str) -> dict[str, str]:
    token = base64.b64encode(f"{principal}:{secret}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def test_http_basic_authentication(mesos_master_factory: object, tmp_path: object) -> None:
    path = tmp_path / "credentials.json"  # type: ignore[operator]
    path.write_text(json.dumps({"credentials": [{"principal": "alluxio", "secret": "s3cret"}]}))
    master = mesos_master_factory(  # type: ignore[operator]
        f"--credentials={path}", "--authenticate_http_frameworks", "--heartbeat_interval=1secs"
    )
    missing = EventStream(master, SUBSCRIBE)
    assert missing.status == 401
    assert missing.headers["www-authenticate"] == 'Basic realm="mesos-master-scheduler"'
    missing.close()
    wrong = EventStream(master, SUBSCRIBE, headers=_basic("alluxio", "nope"))
    assert wrong.status == 401
    wrong.close()
    mismatch = EventStream(
        master,
        {"type": "SUBSCRIBE", "subscribe": {"framework_info": framework_info(principal="other")}},
        headers=_basic("alluxio", "s3cret"),
    )
    assert mismatch.status == 400
    assert mismatch.body_if_not_streaming == (
        b"Failed to validate scheduler::Call: Authenticated principal 'alluxio' does not match principal "
        b"'other' set in `FrameworkInfo`"
    )
    mismatch.close()
    client = SchedulerClient.subscribe(master, headers=_basic("alluxio", "s3cret"))
    try:
        frameworks = master.get_json("/master/frameworks")["frameworks"]
        assert frameworks[0]["principal"] == "alluxio"  # filled in from the credentials
        unauthenticated = post_json(
            master,
            "/api/v1/scheduler",
            {"type": "REVIVE", "framework_id": {"value": client.framework_id}},
            {"Mesos-Stream-Id": client.stream.stream_id},
        )
        assert unauthenticated.status == 401
        assert client.call("REVIVE").status == 202  # the client sends its credentials
    finally:
        client.close()
    assert "s3cret" not in master.log()


def test_credentials_file_is_required_for_authentication(tmp_path: object) -> None:
    from tests.mesos_fixtures import start_master

    with pytest.raises(RuntimeError, match="requires --credentials"):
        start_master(tmp_path / "m", ["--authenticate_http_frameworks"], startup_timeout=10)  # type: ignore[operator]


def test_master_redirect(mesos_master: MasterProcess) -> None:
    reply = request(mesos_master, "GET", "/master/redirect")
    assert reply.status == 307
    assert reply.headers["location"].startswith("//")
    assert reply.headers["location"].endswith(f":{mesos_master.port}")
