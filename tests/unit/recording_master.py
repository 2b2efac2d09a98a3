"""A scheduler-API endpoint that records the calls it gets: a real HTTP/1.1 server with keep-alive
(pipelined requests are read one after the other from the connection), answering 202 unless a
test tells it otherwise for a call type."""

from __future__ import annotations

import dataclasses
import http.server
import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any


@dataclasses.dataclass
class Received:
    call: dict[str, Any]
    headers: dict[str, str]
    connection: int  # which TCP connection brought it (1, 2, ...)
    observed: Any = None  # whatever the test's `observe` hook returned when the call arrived


@dataclasses.dataclass
class Answer:
    status: int = 202
    body: bytes = b""
    chunked: bool = False
    close: bool = False  # says "Connection: close" and closes
    hang_up_after: bool = False  # closes without saying so, as a keep-alive timeout does later


class RecordingMaster:
    def __init__(self) -> None:
        self.received: list[Received] = []
        self.answers: dict[str, Answer] = {}
        self.observe: Callable[[dict[str, Any]], Any] | None = None
        self.connections = 0
        self.connections_closed = threading.Semaphore(0)  # released as each connection ends
        self.close_after: int | None = None  # drop the connection without answering call N (1-based)
        self._lock = threading.Lock()
        master = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                with master._lock:
                    master.connections += 1
                    self.connection_number = master.connections

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                call = json.loads(body)
                with master._lock:
                    master.received.append(
                        Received(
                            call,
                            {k.lower(): v for k, v in self.headers.items()},
                            self.connection_number,
                            master.observe(call) if master.observe else None,
                        )
                    )
                    count = len(master.received)
                if master.close_after is not None and count == master.close_after:
                    self.close_connection = True
                    return
                answer = master.answers.get(call.get("type", ""), Answer())
                self.send_response(answer.status)
                if answer.chunked:
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    half = len(answer.body) // 2
                    for part in (answer.body[:half], answer.body[half:]):
                        if part:
                            self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
                    self.wfile.write(b"0\r\n\r\n")
                else:
                    self.send_header("Content-Length", str(len(answer.body)))
                    if answer.close:
                        self.send_header("Connection", "close")
                        self.close_connection = True
                    self.end_headers()
                    self.wfile.write(answer.body)
                    if answer.hang_up_after:
                        self.close_connection = True

            def log_message(self, format: str, *args: Any) -> None:
                pass

        class Server(http.server.ThreadingHTTPServer):
            def shutdown_request(self, request: Any) -> None:
                super().shutdown_request(request)
                master.connections_closed.release()

        self.server = Server(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.address = f"127.0.0.1:{self.server.server_address[1]}"

    def calls(self, kind: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            return [r.call for r in self.received if kind is None or r.call.get("type") == kind]


@contextmanager
def recording_master() -> Iterator[RecordingMaster]:
    master = RecordingMaster()
    thread = threading.Thread(target=master.server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield master
    finally:
        master.server.shutdown()
        master.server.server_close()
        thread.join(5)
