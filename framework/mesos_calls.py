"""Scheduler calls to the Mesos master, pipelined over one keep-alive HTTP/1.1 connection.

pymesos stays the driver: it subscribes, reads the event stream, follows the leading master and
re-subscribes after a failover. But it sends every call on its own and waits for the answer before
the next one, so 10,000 worker launches cost 10,000 round trips, each status update an fsync plus a
round trip. This sender writes the queued calls back to back and then reads their answers, which
the master gives in request order (HTTP/1.1 pipelining; v1 calls are plain POSTs).

One thread writes batches of at most `MAX_BATCH_CALLS` calls; another reads their answers. Up to
`MAX_BATCHES_IN_FLIGHT` batches are written ahead of their answers, so the master always has the
next batch to work on while this side reads, saves and encodes (with one batch at a time the
master sat idle for every turnaround). Answers are read while requests are written, so neither
side blocks the other on full socket buffers.

Before a batch goes out, `before_batch(batch)` runs. The scheduler makes sure its state is saved
there: one fsync covers every status update the batch acknowledges (group commit), and no launch
leaves before its task record is on disk. A call marked `needs_saved_state` is not sent when that
save fails.
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import json
import logging
import select
import socket
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

LOG = logging.getLogger("framework.mesos.calls")
SCHEDULER_PATH = "/api/v1/scheduler"
MAX_BATCH_CALLS = 128
MAX_BATCHES_IN_FLIGHT = 2
RESPONSE_TIMEOUT_SECONDS = 30.0
_READ_BYTES = 1 << 16


@dataclasses.dataclass(frozen=True)
class Endpoint:
    """Where calls go now: the leading master and the stream of the current subscription."""

    address: str  # host:port
    stream_id: str


@dataclasses.dataclass(frozen=True)
class Call:
    """One v1 scheduler call. `on_failure` gets a one-line reason when it did not go through;
    `on_answer` runs when the master accepted it (2xx). A `background` call (acknowledgements)
    goes out after every other queued call: thousands of them must not delay a launch."""

    body: dict[str, Any]
    needs_saved_state: bool = False
    on_failure: Callable[[str], None] | None = None
    on_answer: Callable[[], None] | None = None
    background: bool = False
    # The submitter's own bookkeeping for `before_batch`, e.g. which of its saves covers the call.
    state_mark: int = 0

    @property
    def kind(self) -> str:
        return str(self.body.get("type", "?"))


class CallFailed(RuntimeError):
    pass


class _Connection:
    """A keep-alive HTTP/1.1 client connection that writes many requests, then reads answers."""

    def __init__(self, endpoint: Endpoint, authorization: str | None, timeout: float) -> None:
        self.endpoint = endpoint
        host, _, port = endpoint.address.rpartition(":")
        self._sock = socket.create_connection((host.strip("[]"), int(port)), timeout=timeout)
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        headers = [
            f"POST {SCHEDULER_PATH} HTTP/1.1",
            f"Host: {endpoint.address}",
            "Content-Type: application/json",
            "Accept: application/json",
            f"Mesos-Stream-Id: {endpoint.stream_id}",
        ]
        if authorization:
            headers.append(f"Authorization: {authorization}")
        self._head = ("\r\n".join(headers) + "\r\nContent-Length: ").encode("latin-1")
        self._buffer = bytearray()
        self.closed = False
        self.awaiting = 0  # batches written whose answers are not all read yet (sender's lock)
        self.failure: str | None = None

    def close(self, failure: str | None = None) -> None:
        """`failure` explains, to the calls still waiting for answers, why none will come."""
        if failure and not self.failure:
            self.failure = failure
        if self.closed:
            return
        self.closed = True
        # shutdown wakes a reader blocked in recv on this socket; close alone would not.
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)
        self._sock.close()

    def still_open(self) -> bool:
        """False when the master has closed this idle connection (keep-alive timeout): writing
        to it would lose the batch, so the caller reconnects first."""
        if self.closed:
            return False
        if self.awaiting:
            return True  # answers are due: the reader notices if the master closed it
        if self._buffer:
            return False
        try:
            readable, _, _ = select.select([self._sock], [], [], 0)
            if not readable:
                return True  # nothing to read: neither an EOF nor stray bytes
            pending = self._sock.recv(1, socket.MSG_PEEK)
        except OSError:
            return False
        # b"": closed by the peer; anything else is an answer nobody asked for. Either way: new one.
        LOG.debug(
            "dropping the connection to %s (%s)",
            self.endpoint.address,
            "closed" if not pending else "stray data",
        )
        return False

    def write(self, bodies: list[bytes]) -> None:
        self._sock.sendall(
            b"".join(self._head + str(len(body)).encode("ascii") + b"\r\n\r\n" + body for body in bodies)
        )

    def read_response(self) -> tuple[int, bytes]:
        """(status code, body) of the next answer."""
        end = self._fill_until(b"\r\n\r\n")
        head = bytes(self._buffer[:end]).decode("latin-1")
        del self._buffer[: end + 4]
        status_line, *header_lines = head.split("\r\n")
        parts = status_line.split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
            raise CallFailed(f"not an HTTP answer: {status_line[:80]!r}")
        status = int(parts[1])
        headers: dict[str, str] = {}
        for line in header_lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        if "chunked" in headers.get("transfer-encoding", "").lower():
            body = self._read_chunked()
        elif "content-length" in headers:
            body = self._read_exactly(int(headers["content-length"]))
        elif status in (204, 304) or 100 <= status < 200:
            body = b""
        else:  # no length: the body runs until the master closes the connection
            body = self._read_to_close()
        if headers.get("connection", "").lower() == "close" or parts[0] == "HTTP/1.0":
            self.close()
        return status, body

    def _fill(self) -> None:
        chunk = self._sock.recv(_READ_BYTES)
        if not chunk:
            raise CallFailed("the master closed the connection")
        self._buffer += chunk

    def _fill_until(self, marker: bytes) -> int:
        start = 0
        while (found := self._buffer.find(marker, start)) < 0:
            start = max(0, len(self._buffer) - len(marker) + 1)
            self._fill()
        return found

    def _read_exactly(self, size: int) -> bytes:
        while len(self._buffer) < size:
            self._fill()
        data = bytes(self._buffer[:size])
        del self._buffer[:size]
        return data

    def _read_chunked(self) -> bytes:
        body = bytearray()
        while True:
            end = self._fill_until(b"\r\n")
            size = int(bytes(self._buffer[:end]).split(b";", 1)[0].strip() or b"0", 16)
            del self._buffer[: end + 2]
            if size == 0:
                end = self._fill_until(b"\r\n")  # trailers end with an empty line
                while end > 0:
                    del self._buffer[: end + 2]
                    end = self._fill_until(b"\r\n")
                del self._buffer[:2]
                return bytes(body)
            body += self._read_exactly(size)
            self._read_exactly(2)

    def _read_to_close(self) -> bytes:
        while True:
            chunk = self._sock.recv(_READ_BYTES)
            if not chunk:
                break
            self._buffer += chunk
        data = bytes(self._buffer)
        self._buffer.clear()
        return data


class CallSender:
    """Sends calls in submission order from its own thread, pipelined in batches; a second
    thread reads the answers."""

    def __init__(
        self,
        endpoint: Callable[[], Endpoint | None],
        before_batch: Callable[[Sequence[Call]], bool],
        authorization: str | None = None,
        timeout: float = RESPONSE_TIMEOUT_SECONDS,
    ) -> None:
        self._endpoint = endpoint
        self._before_batch = before_batch
        self._authorization = authorization
        self._timeout = timeout
        self._queue: collections.deque[Call] = collections.deque()
        self._background: collections.deque[Call] = collections.deque()
        self._background_after = 0.0  # monotonic time before which background calls wait
        self._condition = threading.Condition()
        self._in_flight = 0  # calls taken from the queues and not yet reported
        self._written: collections.deque[tuple[_Connection, list[Call]] | None] = collections.deque()
        self._stopping = False
        self._connection: _Connection | None = None
        self._thread = threading.Thread(target=self._run, name="mesos-calls", daemon=True)
        self._reader = threading.Thread(target=self._read_answers, name="mesos-answers", daemon=True)
        self.batches = 0

    def start(self) -> None:
        self._reader.start()
        self._thread.start()

    def submit(self, call: Call) -> None:
        with self._condition:
            (self._background if call.background else self._queue).append(call)
            self._condition.notify_all()

    def wait_idle(self, timeout: float) -> bool:
        """Whether every submitted call was answered (or failed) within `timeout` seconds."""
        deadline = time.monotonic() + timeout
        with self._condition:
            while self._queue or self._background or self._in_flight:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._condition.wait(remaining)
        return True

    def stop(self, drain_seconds: float = 5.0) -> None:
        """Send what is queued (up to `drain_seconds`), then close; the rest fails."""
        self.wait_idle(drain_seconds)
        with self._condition:
            self._stopping = True
            self._condition.notify_all()
        for thread in (self._thread, self._reader):
            if thread.is_alive():
                thread.join(self._timeout + 1)

    # ---- the sending thread ----------------------------------------------------------------
    def defer_background(self, seconds: float) -> None:
        """Hold background calls back for up to `seconds` (until `release_background`), even
        when nothing else is queued: while a wave of launches is being decided and sent, every
        acknowledgement the master handles delays the launches behind it."""
        with self._condition:
            self._background_after = time.monotonic() + seconds

    def release_background(self) -> None:
        with self._condition:
            self._background_after = 0.0
            self._condition.notify_all()

    def _background_ready(self) -> bool:
        return bool(self._background) and (self._stopping or time.monotonic() >= self._background_after)

    def _take_batch(self) -> list[Call] | None:
        with self._condition:
            while not self._stopping and (
                len(self._written) >= MAX_BATCHES_IN_FLIGHT
                or (not self._queue and not self._background_ready())
            ):
                deferred = self._background_after - time.monotonic() if self._background else None
                self._condition.wait(deferred if deferred is not None and deferred > 0 else None)
            if not self._queue and not self._background:
                return None
            if self._stopping:
                leftover = [*self._queue, *self._background]
                self._queue.clear()
                self._background.clear()
                self._in_flight += len(leftover)
            else:
                leftover = []
                batch = []
                queues = (self._queue, self._background) if self._background_ready() else (self._queue,)
                for queue in queues:
                    while queue and len(batch) < MAX_BATCH_CALLS:
                        batch.append(queue.popleft())
                self._in_flight += len(batch)
        if leftover:
            self._finish(leftover, "the framework is stopping")
            return None
        return batch

    def _finish(self, calls: list[Call], failure: str | None) -> None:
        for call in calls:
            _report(call, failure)
        with self._condition:
            self._in_flight -= len(calls)
            self._condition.notify_all()

    def _run(self) -> None:
        while (batch := self._take_batch()) is not None:
            try:
                self._send(batch)
            except Exception:  # never let the thread die: later calls would hang forever
                LOG.exception("sending %d call(s) to Mesos failed unexpectedly", len(batch))
                self._drop_connection()
                self._finish(batch, "unexpected error while sending")
        with self._condition:
            self._written.append(None)  # the reader ends after the answers written before this
            self._condition.notify_all()

    def _send(self, batch: list[Call]) -> None:
        endpoint = self._endpoint()
        if endpoint is None:
            self._finish(batch, "not connected to a Mesos master")
            return
        saved = self._before_batch(batch)
        if not saved:
            held = [c for c in batch if c.needs_saved_state]
            self._finish(held, "the framework state could not be saved")
            batch = [c for c in batch if not c.needs_saved_state]
            if not batch:
                return
        bodies = [json.dumps(call.body, separators=(",", ":")).encode("utf-8") for call in batch]
        try:
            connection = self._connect(endpoint)
        except (OSError, CallFailed) as error:
            self._drop_connection()
            self._finish(batch, f"cannot reach the Mesos master at {endpoint.address}: {error}")
            return
        with self._condition:
            connection.awaiting += 1
            self._written.append((connection, batch))
            self._condition.notify_all()
        try:
            connection.write(bodies)
        except (OSError, CallFailed) as error:
            # Part of the batch may have reached the master: the reader reports the calls that
            # get no answer as failed, and none is ever sent again.
            connection.close(f"cannot reach the Mesos master at {endpoint.address}: {error}")
            self._connection = None
            return
        self.batches += 1

    def _connect(self, endpoint: Endpoint) -> _Connection:
        connection = self._connection
        if connection is not None and (connection.endpoint != endpoint or not connection.still_open()):
            self._drop_connection()
            connection = None
        if connection is None:
            connection = self._connection = _Connection(endpoint, self._authorization, self._timeout)
        return connection

    def _drop_connection(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    # ---- the answering thread --------------------------------------------------------------
    def _read_answers(self) -> None:
        while True:
            with self._condition:
                while not self._written:
                    self._condition.wait()
                entry = self._written[0]
            if entry is None:
                break
            connection, batch = entry
            try:
                outcomes = self._read_batch(connection, batch)
            except Exception:
                LOG.exception("reading the answers to %d call(s) failed unexpectedly", len(batch))
                connection.close("unexpected error while reading the answers")
                outcomes = [connection.failure] * len(batch)
            # The connection counts as idle again before anyone learns of the answers: a call
            # submitted in reaction must see whether the master closed it meanwhile.
            with self._condition:
                self._written.popleft()
                connection.awaiting -= 1
                self._condition.notify_all()
            for call, failure in zip(batch, outcomes, strict=True):
                self._finish([call], failure)

    def _read_batch(self, connection: _Connection, batch: list[Call]) -> list[str | None]:
        """Per call: None when the master accepted it, else why not."""
        address = connection.endpoint.address
        outcomes: list[str | None] = []
        for _ in batch:
            if connection.closed:
                # Unanswered calls may or may not have been carried out: report, never resend.
                failure = connection.failure or "the master closed the connection before answering"
                return outcomes + [failure] * (len(batch) - len(outcomes))
            try:
                status, body = connection.read_response()
            except (OSError, CallFailed, ValueError) as error:
                connection.close(f"no answer from the Mesos master at {address}: {error}")
                return outcomes + [connection.failure] * (len(batch) - len(outcomes))
            if 200 <= status < 300:
                outcomes.append(None)
            else:
                text = body.decode("utf-8", "replace").strip().split("\n", 1)[0][:300]
                outcomes.append(f"HTTP {status}: {text}" if text else f"HTTP {status}")
        return outcomes


def _report(call: Call, failure: str | None) -> None:
    try:
        if failure is None:
            if call.on_answer is not None:
                call.on_answer()
        elif call.on_failure is not None:
            call.on_failure(failure)
        else:
            # Never the body: a LAUNCH carries the task plan (possibly UFS credentials).
            LOG.warning("Mesos call %s failed: %s", call.kind, failure)
    except Exception:
        LOG.exception("handling the answer to a %s call failed", call.kind)
