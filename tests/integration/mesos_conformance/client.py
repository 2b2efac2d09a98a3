"""A raw HTTP client for the conformance suite: no Mesos library, so framing is checked as sent.

``EventStream`` reads a SUBSCRIBE response from a plain socket, undoing the chunked transfer
encoding and the RecordIO framing itself and keeping every raw chunk for inspection.
"""

from __future__ import annotations

import base64
import collections
import contextlib
import http.client
import json
import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from tests.mesos_fixtures import MasterProcess

JsonObject = dict[str, Any]


@dataclass
class Reply:
    status: int
    headers: dict[str, str]  # keys lower-cased
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    def json(self) -> Any:
        return json.loads(self.body)


def request(
    master: MasterProcess,
    method: str,
    path: str,
    body: bytes | str | JsonObject | None = None,
    *,
    headers: dict[str, str] | None = None,
    timeout: float = 10.0,
) -> Reply:
    """One HTTP request; a dict body is sent as JSON with Content-Type application/json."""
    all_headers = dict(headers or {})
    payload: bytes | None
    if isinstance(body, dict):
        payload = json.dumps(body).encode()
        all_headers.setdefault("Content-Type", "application/json")
    elif isinstance(body, str):
        payload = body.encode()
    else:
        payload = body
    connection = http.client.HTTPConnection(master.host, master.port, timeout=timeout)
    try:
        connection.request(method, path, body=payload, headers=all_headers)
        response = connection.getresponse()
        return Reply(response.status, {k.lower(): v for k, v in response.getheaders()}, response.read())
    finally:
        connection.close()


def post_json(
    master: MasterProcess, path: str, body: JsonObject, headers: dict[str, str] | None = None
) -> Reply:
    return request(master, "POST", path, body, headers=headers)


class StreamClosed(Exception):
    """The server ended the stream."""


class EventStream:
    """A streaming (chunked, RecordIO) response read from a raw socket."""

    def __init__(
        self,
        master: MasterProcess,
        body: bytes | JsonObject,
        headers: dict[str, str | None] | None = None,
        path: str = "/api/v1/scheduler",
        timeout: float = 10.0,
    ) -> None:
        payload = json.dumps(body).encode() if isinstance(body, dict) else body
        merged: dict[str, str | None] = {
            "Content-Type": "application/json",
            "Accept": "application/json",
            **(headers or {}),
        }
        # A header given as None is left out (e.g. to send no Accept header at all).
        all_headers = {k: v for k, v in merged.items() if v is not None}
        lines = [f"POST {path} HTTP/1.1", f"Host: {master.address}", "Connection: close"]
        lines += [f"{k}: {v}" for k, v in all_headers.items()]
        lines.append(f"Content-Length: {len(payload)}")
        self.sock = socket.create_connection((master.host, master.port), timeout=timeout)
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode() + payload)
        self._buffer = b""
        self.status, self.headers = self._read_head(timeout)
        self.chunks: list[bytes] = []
        self._records = b""
        self.events: collections.deque[JsonObject] = collections.deque()
        self.seen: list[JsonObject] = []
        self.ended = False
        self.on_event: Callable[[JsonObject], None] | None = None
        self.body_if_not_streaming = b""
        if "chunked" not in self.headers.get("transfer-encoding", ""):
            length = int(self.headers.get("content-length", "0"))
            while len(self._buffer) < length:
                data = self.sock.recv(65536)
                if not data:
                    break
                self._buffer += data
            self.body_if_not_streaming = self._buffer[:length]
            self.ended = True
        else:
            # The first read may already hold chunks (even the whole, short stream).
            self._parse_chunks()

    def _read_head(self, timeout: float) -> tuple[int, dict[str, str]]:
        deadline = time.monotonic() + timeout
        while b"\r\n\r\n" not in self._buffer:
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            data = self.sock.recv(65536)
            if not data:
                raise StreamClosed(f"connection closed before headers: {self._buffer!r}")
            self._buffer += data
        head, self._buffer = self._buffer.split(b"\r\n\r\n", 1)
        status_line, *header_lines = head.decode("latin-1").split("\r\n")
        status = int(status_line.split()[1])
        headers: dict[str, str] = {}
        for line in header_lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        return status, headers

    @property
    def stream_id(self) -> str:
        return self.headers["mesos-stream-id"]

    def _parse_chunks(self) -> None:
        while not self.ended:
            line_end = self._buffer.find(b"\r\n")
            if line_end < 0:
                return
            size = int(self._buffer[:line_end].split(b";")[0], 16)
            if len(self._buffer) < line_end + 2 + size + 2:
                return
            chunk = self._buffer[line_end + 2 : line_end + 2 + size]
            assert self._buffer[line_end + 2 + size : line_end + 4 + size] == b"\r\n", (
                "chunk not CRLF-terminated"
            )
            self._buffer = self._buffer[line_end + 4 + size :]
            if size == 0:
                self.ended = True
                return
            self.chunks.append(chunk)
            self._records += chunk
            self._parse_records()

    def _parse_records(self) -> None:
        while True:
            newline = self._records.find(b"\n")
            if newline < 0:
                return
            length = int(self._records[:newline])
            if len(self._records) < newline + 1 + length:
                return
            record = self._records[newline + 1 : newline + 1 + length]
            self._records = self._records[newline + 1 + length :]
            event = json.loads(record)
            self.events.append(event)
            self.seen.append(event)
            if self.on_event is not None:
                self.on_event(event)

    def _fill(self, deadline: float) -> bool:
        """Read once; False when the stream has ended."""
        if self.ended:
            return False
        self.sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            data = self.sock.recv(65536)
        except TimeoutError:
            return True
        if not data:
            self._parse_chunks()
            self.ended = True
            return False
        self._buffer += data
        self._parse_chunks()
        return True

    def next_event(self, timeout: float = 10.0) -> JsonObject:
        deadline = time.monotonic() + timeout
        while not self.events:
            if time.monotonic() >= deadline:
                raise TimeoutError(f"no event within {timeout}s; seen {[e.get('type') for e in self.seen]}")
            if not self._fill(deadline):
                raise StreamClosed("stream ended")
        return self.events.popleft()

    def _take(
        self, event_type: str | None, predicate: Callable[[JsonObject], bool] | None
    ) -> JsonObject | None:
        for event in self.events:
            if (event_type is None or event.get("type") == event_type) and (
                predicate is None or predicate(event)
            ):
                self.events.remove(event)
                return event
        return None

    def wait_for(
        self, event_type: str, timeout: float = 10.0, predicate: Callable[[JsonObject], bool] | None = None
    ) -> JsonObject:
        """The first queued or arriving event of that type (matching predicate).

        Other events stay queued, so the order in which a test waits does not matter.
        """
        deadline = time.monotonic() + timeout
        while True:
            found = self._take(event_type, predicate)
            if found is not None:
                return found
            if time.monotonic() >= deadline:
                raise TimeoutError(
                    f"no {event_type} within {timeout}s; seen {[e.get('type') for e in self.seen]}"
                )
            if not self._fill(deadline):
                raise StreamClosed(f"stream ended while waiting for {event_type}")

    def collect(self, seconds: float, event_type: str | None = None) -> list[JsonObject]:
        """Every queued or arriving event (of that type) within the next ``seconds``."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and self._fill(deadline):
            pass
        found = [e for e in self.events if event_type is None or e.get("type") == event_type]
        for event in found:
            self.events.remove(event)
        return found

    def wait_closed(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while not self.ended:
            if time.monotonic() >= deadline:
                raise TimeoutError("stream still open")
            self._fill(deadline)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()


def framework_info(**overrides: Any) -> JsonObject:
    info: JsonObject = {"user": "root", "name": "conformance"}
    info.update(overrides)
    return info


class SchedulerClient:
    """A scheduler speaking raw HTTP: one event stream plus calls carrying its Mesos-Stream-Id.

    With ``auto_ack`` (the default) every UPDATE carrying a uuid is acknowledged as soon as it is
    read, as pymesos does with implicit acknowledgements; without acks the agent would never send
    a task's next update.
    """

    def __init__(
        self, master: MasterProcess, stream: EventStream, subscribed: JsonObject, auto_ack: bool = True
    ) -> None:
        self.master = master
        self.stream = stream
        self.subscribed = subscribed
        self.framework_id: str = subscribed["subscribed"]["framework_id"]["value"]
        self.acks: list[Reply] = []
        if auto_ack:
            stream.on_event = self._auto_ack
            for event in stream.events:
                self._auto_ack(event)

    def _auto_ack(self, event: JsonObject) -> None:
        if event.get("type") == "UPDATE" and "uuid" in event["update"]["status"]:
            self.acks.append(self.acknowledge(event["update"]["status"]))

    @classmethod
    def subscribe(
        cls,
        master: MasterProcess,
        headers: dict[str, str] | None = None,
        auto_ack: bool = True,
        **overrides: Any,
    ) -> SchedulerClient:
        info = framework_info(**overrides)
        body: JsonObject = {"type": "SUBSCRIBE", "subscribe": {"framework_info": info}}
        if "id" in info:
            body["framework_id"] = info["id"]
        stream = EventStream(master, body, headers=headers)
        assert stream.status == 200, (stream.status, stream.body_if_not_streaming)
        client = cls(master, stream, stream.wait_for("SUBSCRIBED"), auto_ack)
        client._headers = dict(headers or {})
        return client

    _headers: dict[str, str] = {}

    def call(self, kind: str, headers: dict[str, str] | None = None, **payload: Any) -> Reply:
        body: JsonObject = {"type": kind, "framework_id": {"value": self.framework_id}, **payload}
        all_headers = {"Mesos-Stream-Id": self.stream.stream_id, **self._headers, **(headers or {})}
        return post_json(self.master, "/api/v1/scheduler", body, all_headers)

    def offers(self, timeout: float = 10.0) -> list[JsonObject]:
        return list(self.stream.wait_for("OFFERS", timeout)["offers"]["offers"])

    def launch(self, offer: JsonObject, tasks: list[JsonObject], filters: JsonObject | None = None) -> Reply:
        accept: JsonObject = {
            "offer_ids": [offer["id"]],
            "operations": [{"type": "LAUNCH", "launch": {"task_infos": tasks}}],
        }
        if filters is not None:
            accept["filters"] = filters
        return self.call("ACCEPT", accept=accept)

    def update(
        self, timeout: float = 10.0, predicate: Callable[[JsonObject], bool] | None = None
    ) -> JsonObject:
        return dict(self.stream.wait_for("UPDATE", timeout, predicate)["update"]["status"])

    def update_for(self, task_id: str, state: str, timeout: float = 10.0) -> JsonObject:
        return self.update(
            timeout,
            lambda e: (
                e["update"]["status"]["task_id"]["value"] == task_id
                and e["update"]["status"]["state"] == state
            ),
        )

    def acknowledge(self, status: JsonObject) -> Reply:
        return self.call(
            "ACKNOWLEDGE",
            acknowledge={
                "agent_id": status["agent_id"],
                "task_id": status["task_id"],
                "uuid": status["uuid"],
            },
        )

    def close(self) -> None:
        self.stream.close()


def task_info(
    task_id: str,
    agent_id: str,
    *,
    cpus: float = 0.5,
    mem: float = 64,
    command: str | None = "sleep 1000",
    ports: list[tuple[int, int]] | None = None,
    executor: JsonObject | None = None,
) -> JsonObject:
    resources: list[JsonObject] = [
        {"name": "cpus", "type": "SCALAR", "scalar": {"value": cpus}},
        {"name": "mem", "type": "SCALAR", "scalar": {"value": mem}},
    ]
    if ports:
        resources.append(
            {
                "name": "ports",
                "type": "RANGES",
                "ranges": {"range": [{"begin": b, "end": e} for b, e in ports]},
            }
        )
    task: JsonObject = {
        "name": f"task {task_id}",
        "task_id": {"value": task_id},
        "agent_id": {"value": agent_id},
        "resources": resources,
    }
    if command is not None:
        task["command"] = {"value": command}
    if executor is not None:
        task["executor"] = executor
    return task


def scalar(offer: JsonObject, name: str) -> float:
    return sum(r["scalar"]["value"] for r in offer["resources"] if r["name"] == name)


def ranges(offer: JsonObject, name: str) -> list[tuple[int, int]]:
    return [
        (r["begin"], r["end"])
        for res in offer["resources"]
        if res["name"] == name
        for r in res["ranges"]["range"]
    ]


def uuid_bytes(status: JsonObject) -> bytes:
    return base64.b64decode(status["uuid"])


class FakeAgent:
    """A minimal agent on the internal protocol: records what the master sends it, answers pings.

    Used to test the master's real-agent path without depending on the agent implementation.
    """

    def __init__(
        self, master: MasterProcess, hostname: str = "fake-agent", resources: list[JsonObject] | None = None
    ):
        import http.server
        import threading

        self.master = master
        self.received: list[tuple[str, JsonObject]] = []
        self.ping_ok = True
        self._lock = threading.Lock()
        agent = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                status = 200 if agent.ping_ok else 503
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(length) or b"{}")
                with agent._lock:
                    agent.received.append((self.path.rsplit("/", 1)[-1], body))
                self.send_response(202)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.info: JsonObject = {
            "hostname": hostname,
            "port": self.server.server_address[1],
            "resources": resources
            or [
                {"name": "cpus", "type": "SCALAR", "scalar": {"value": 1.0}},
                {"name": "mem", "type": "SCALAR", "scalar": {"value": 512.0}},
            ],
        }
        reply = post_json(
            master, "/internal/agent/register", {"agent_info": self.info, "agent_url": self.url}
        )
        assert reply.status == 200, reply.text
        self.agent_id: str = reply.json()["agent_id"]["value"]

    def messages(self, kind: str) -> list[JsonObject]:
        with self._lock:
            return [body for name, body in self.received if name == kind]

    def wait_message(self, kind: str, timeout: float = 10.0, count: int = 1) -> list[JsonObject]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.messages(kind)
            if len(found) >= count:
                return found
            time.sleep(0.02)
        raise TimeoutError(f"agent got no {kind} within {timeout}s; got {[n for n, _ in self.received]}")

    def send_update(self, framework_id: str, status: JsonObject, latest_state: str | None = None) -> Reply:
        body: JsonObject = {
            "agent_id": {"value": self.agent_id},
            "framework_id": {"value": framework_id},
            "status": status,
        }
        if latest_state is not None:
            body["latest_state"] = latest_state
        return post_json(self.master, "/internal/agent/status_update", body)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def executor_status(task_id: str, state: str, agent_id: str, **extra: Any) -> JsonObject:
    status: JsonObject = {
        "task_id": {"value": task_id},
        "state": state,
        "source": "SOURCE_EXECUTOR",
        "agent_id": {"value": agent_id},
        "executor_id": {"value": task_id},
        "timestamp": time.time(),
        "uuid": base64.b64encode(os.urandom(16)).decode(),
    }
    status.update(extra)
    return status
