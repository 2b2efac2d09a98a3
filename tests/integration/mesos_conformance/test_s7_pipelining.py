"""HTTP/1.1 pipelining of scheduler calls: many requests written before any answer is read.

Schedulers pipeline their ACCEPTs and ACKNOWLEDGEs on one keep-alive connection. The master
must answer every request in request order, each one exactly as it would answer it alone, an
invalid call in the middle with its own 400 in its place. The master answers plain calls as
soon as they are parsed (sandbox/mesos/master/pipelining.py); these tests also check that
those answers are byte for byte what the regular request path gives.
"""

from __future__ import annotations

import json
import re
import socket
import time
from dataclasses import dataclass
from typing import Any

import pytest

from tests.integration.mesos_conformance.client import SchedulerClient, task_info
from tests.mesos_fixtures import MasterProcess

pytestmark = pytest.mark.integration

JsonObject = dict[str, Any]
DATE = re.compile(rb"\r\nDate: [^\r]*\r\n")


@dataclass
class RawResponse:
    status: int
    headers: dict[str, str]  # keys lower-cased
    body: bytes
    raw: bytes  # status line, headers and body as sent

    @property
    def text(self) -> str:
        return self.body.decode()

    @property
    def undated(self) -> bytes:
        """The raw bytes without the Date header (which changes every second)."""
        return DATE.sub(b"\r\n", self.raw)


class PipelinedConnection:
    """One keep-alive connection: requests are written back to back, answers read afterwards."""

    def __init__(self, master: MasterProcess) -> None:
        self.sock = socket.create_connection((master.host, master.port), timeout=10)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buffer = b""

    def send(self, *requests: bytes) -> None:
        self.sock.sendall(b"".join(requests))

    def _fill(self) -> None:
        data = self.sock.recv(65536)
        if not data:
            raise EOFError("connection closed by the master")
        self.buffer += data

    def response(self) -> RawResponse:
        """The next final (non-1xx) response; interim 1xx responses are returned as such too."""
        while b"\r\n\r\n" not in self.buffer:
            self._fill()
        head, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0"))
        while len(self.buffer) < length:
            self._fill()
        body, self.buffer = self.buffer[:length], self.buffer[length:]
        return RawResponse(status, headers, body, head + b"\r\n\r\n" + body)

    def responses(self, count: int) -> list[RawResponse]:
        return [self.response() for _ in range(count)]

    def closed_by_master(self) -> bool:
        try:
            self._fill()
        except EOFError:
            return True
        return False

    def close(self) -> None:
        self.sock.close()


def post(
    body: bytes | JsonObject,
    stream_id: str | None,
    path: str = "/api/v1/scheduler",
    headers: dict[str, str] | None = None,
) -> bytes:
    """One raw ``POST`` request (JSON body), ready to be pipelined."""
    payload = json.dumps(body).encode() if isinstance(body, dict) else body
    lines = [f"POST {path} HTTP/1.1", "Host: conformance", "Content-Type: application/json"]
    if stream_id is not None:
        lines.append(f"Mesos-Stream-Id: {stream_id}")
    lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
    lines.append(f"Content-Length: {len(payload)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + payload


@pytest.fixture
def scheduler(sim_master: MasterProcess, schedulers: list[SchedulerClient]) -> SchedulerClient:
    """A subscribed scheduler that acknowledges nothing by itself (the tests pipeline the acks)."""
    client = SchedulerClient.subscribe(sim_master, auto_ack=False)
    schedulers.append(client)
    return client


@pytest.fixture
def connection(sim_master: MasterProcess) -> Any:
    connection = PipelinedConnection(sim_master)
    try:
        yield connection
    finally:
        connection.close()


def call(client: SchedulerClient, kind: str, **payload: Any) -> JsonObject:
    return {"type": kind, "framework_id": {"value": client.framework_id}, **payload}


def accept(client: SchedulerClient, offer: JsonObject, task_id: str) -> JsonObject:
    return call(
        client,
        "ACCEPT",
        accept={
            "offer_ids": [offer["id"]],
            "operations": [
                {"type": "LAUNCH", "launch": {"task_infos": [task_info(task_id, offer["agent_id"]["value"])]}}
            ],
        },
    )


def acknowledge(client: SchedulerClient, status: JsonObject, uuid: str | None = None) -> JsonObject:
    return call(
        client,
        "ACKNOWLEDGE",
        acknowledge={
            "agent_id": status["agent_id"],
            "task_id": status["task_id"],
            "uuid": status["uuid"] if uuid is None else uuid,
        },
    )


def test_pipelined_accepts_and_acknowledgements_are_answered_in_order(
    scheduler: SchedulerClient, connection: PipelinedConnection, sim_master: MasterProcess
) -> None:
    stream_id = scheduler.stream.stream_id
    offers = scheduler.offers()
    assert len(offers) == 2
    connection.send(
        post(accept(scheduler, offers[0], "a"), stream_id),
        post(b'{"type": "ACCEPT", ', stream_id),
        post(accept(scheduler, offers[1], "b"), stream_id),
        post(call(scheduler, "REVIVE"), "not-the-stream-id"),
        post(call(scheduler, "DECLINE", decline={"offer_ids": [{"value": "no-such-offer"}]}), stream_id),
    )
    answers = connection.responses(5)
    assert [a.status for a in answers] == [202, 400, 202, 400, 202]
    assert answers[1].text.startswith("Failed to parse body into JSON: ")
    assert answers[3].text == (
        "The stream ID 'not-the-stream-id' included in this request didn't match the stream ID "
        f"currently associated with framework ID {scheduler.framework_id}"
    )

    # Each task sends TASK_STARTING, and TASK_RUNNING only once STARTING is acknowledged.
    starting = {task: scheduler.update_for(task, "TASK_STARTING") for task in ("a", "b")}
    connection.send(
        post(acknowledge(scheduler, starting["a"]), stream_id),
        post(acknowledge(scheduler, starting["a"], uuid="AAAA"), stream_id),
        post(acknowledge(scheduler, starting["b"]), stream_id),
    )
    answers = connection.responses(3)
    assert [a.status for a in answers] == [202, 400, 202]
    assert answers[1].text == "Failed to validate scheduler::Call: Not a valid UUID"
    running = {task: scheduler.update_for(task, "TASK_RUNNING") for task in ("a", "b")}
    connection.send(*(post(acknowledge(scheduler, status), stream_id) for status in running.values()))
    assert [a.status for a in connection.responses(2)] == [202, 202]
    tasks = {t["id"]: t["state"] for t in sim_master.state()["frameworks"][0]["tasks"]}
    assert tasks == {"a": "TASK_RUNNING", "b": "TASK_RUNNING"}


def test_a_long_pipeline_keeps_every_answer_in_its_place(
    scheduler: SchedulerClient, connection: PipelinedConnection
) -> None:
    # More requests than aiohttp queues per connection (32), with refusals scattered among them.
    invalid = {7, 31, 32, 33, 100, 250, 299}
    requests = [
        post(call(scheduler, "REVIVE"), "wrong" if n in invalid else scheduler.stream.stream_id)
        for n in range(300)
    ]
    connection.send(*requests)
    statuses = [a.status for a in connection.responses(len(requests))]
    assert statuses == [400 if n in invalid else 202 for n in range(300)]


def test_a_request_whose_body_arrives_later_is_answered_in_its_place(
    scheduler: SchedulerClient, connection: PipelinedConnection
) -> None:
    stream_id = scheduler.stream.stream_id
    split = post(call(scheduler, "SUPPRESS"), stream_id)
    cut = len(split) - 10
    connection.send(post(call(scheduler, "REVIVE"), stream_id), split[:cut])
    assert connection.response().status == 202
    time.sleep(0.3)
    connection.send(
        split[cut:], post(call(scheduler, "REVIVE"), "wrong"), post(call(scheduler, "REVIVE"), stream_id)
    )
    assert [a.status for a in connection.responses(3)] == [202, 400, 202]


def test_requests_answered_the_regular_way_keep_their_place(
    scheduler: SchedulerClient, connection: PipelinedConnection
) -> None:
    stream_id = scheduler.stream.stream_id
    revive = call(scheduler, "REVIVE")
    framework = {"user": "root", "name": "conformance", "id": {"value": scheduler.framework_id}}
    connection.send(
        post(revive, stream_id),
        b"GET /master/health HTTP/1.1\r\nHost: conformance\r\n\r\n",
        post(revive, stream_id, headers={"Expect": "100-continue"}),
        post(call(scheduler, "UPDATE_FRAMEWORK", update_framework={"framework_info": framework}), stream_id),
        post(revive, stream_id, path="/master/api/v1/scheduler"),
        post(revive, stream_id, headers={"Connection": "close"}),
    )
    answers = connection.responses(7)
    assert [a.status for a in answers] == [202, 200, 100, 202, 200, 202, 202]
    assert answers[-1].headers["connection"] == "close"
    assert connection.closed_by_master()


# Calls sent once to the path the master answers early and once with a query string, which the
# master's fast path leaves to the regular request path: the answers must be identical.
def _calls(client: SchedulerClient) -> list[tuple[bytes | JsonObject, str | None, dict[str, str]]]:
    stream_id = client.stream.stream_id
    return [
        (call(client, "REVIVE"), stream_id, {}),
        (call(client, "KILL", kill={"task_id": {"value": "unknown"}}), stream_id, {}),
        (call(client, "DECLINE", decline={"offer_ids": [{"value": "gone"}]}), stream_id, {}),
        (call(client, "REVIVE"), "wrong", {}),
        (call(client, "REVIVE"), None, {}),
        (b"{not json", stream_id, {}),
        (call(client, "ACCEPT"), stream_id, {}),
        (
            call(
                client,
                "ACKNOWLEDGE",
                acknowledge={"agent_id": {"value": "a"}, "task_id": {"value": "t"}, "uuid": "QQ=="},
            ),
            stream_id,
            {},
        ),
        ({"type": "REVIVE", "framework_id": {"value": "no-such-framework"}}, stream_id, {}),
        ({"type": "SUBSCRIBE", "subscribe": {"framework_info": {"user": "u", "name": "n"}}}, stream_id, {}),
        (call(client, "UNKNOWN"), stream_id, {}),
        (call(client, "REVIVE"), stream_id, {"Content-Type": "text/plain"}),
        (call(client, "REVIVE"), stream_id, {"Accept": "text/html"}),
    ]


def test_early_answers_are_the_regular_answers(
    scheduler: SchedulerClient, connection: PipelinedConnection
) -> None:
    calls = _calls(scheduler)

    def requests(path: str) -> list[bytes]:
        built = []
        for body, stream_id, headers in calls:
            request = post(body, stream_id, path=path, headers=headers)
            if "Content-Type" in headers:
                # The header given replaces the JSON one.
                request = request.replace(b"Content-Type: application/json\r\n", b"", 1)
            built.append(request)
        return built

    connection.send(*requests("/api/v1/scheduler"))
    early = connection.responses(len(calls))
    connection.send(*requests("/api/v1/scheduler?answered=regularly"))
    regular = connection.responses(len(calls))
    assert [a.status for a in early] == [202, 202, 202, 400, 400, 400, 400, 400, 400, 400, 501, 415, 202]
    for early_answer, regular_answer in zip(early, regular, strict=True):
        assert early_answer.undated == regular_answer.undated
