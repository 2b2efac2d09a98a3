"""Placement benchmark for the stand-in Mesos master.

One master with N simulated agents (``--simulated_agents N``) and one framework speaking raw
HTTP that launches one task per agent: every offer of the first OFFERS event is answered with
an ACCEPT/LAUNCH, every status update with an ACKNOWLEDGE. Calls are pipelined over two
keep-alive connections (one for ACCEPTs, one for ACKs) so the numbers measure the master, not
the round trips of a one-call-at-a-time client.

Printed per N: wall time from SUBSCRIBE until all N launches are accepted (202) and until all N
tasks are RUNNING, and CPU time per offer in the master (from /proc) and in this framework.

    python benchmarks/mesos_placement.py               # 1000 2500 5000 10000
    python benchmarks/mesos_placement.py 10000 --profile /tmp/master.prof
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
TARGET_PLACEMENT_SECONDS = 5.0
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def process_cpu_seconds(pid: int) -> float:
    """user + system CPU of a process, from /proc/<pid>/stat."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


class Master:
    def __init__(self, agents: int, profile: str | None, task_delay: float) -> None:
        self.port = free_port()
        self.work_dir = Path(tempfile.mkdtemp(prefix="mesos-bench-"))
        command = [sys.executable]
        if profile:
            command += ["-m", "cProfile", "-o", profile]
        command += [
            "-m",
            "sandbox.mesos",
            "master",
            "--ip=127.0.0.1",
            f"--port={self.port}",
            f"--work_dir={self.work_dir}",
            f"--simulated_agents={agents}",
            "--simulated_agent_resources=cpus:1;mem:1024;disk:10240;ports:[31000-32000]",
            "--heartbeat_interval=60secs",
            f"--simulated_task_delay={int(task_delay * 1000)}ms",
            "--log_level=WARNING",
        ]
        self.log = open(self.work_dir / "master.log", "wb")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            command, cwd=REPO_ROOT, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True
        )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError((self.work_dir / "master.log").read_text())
            # Simulated agents are registered before the port opens.
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                    sock.sendall(b"GET /master/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                    if sock.recv(100).startswith(b"HTTP/1.1 200"):
                        return
            except OSError:
                pass
            time.sleep(0.2)
        raise TimeoutError("master did not register its simulated agents in time")

    def cpu(self) -> float:
        return process_cpu_seconds(self.process.pid)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.log.close()
        shutil.rmtree(self.work_dir, ignore_errors=True)


class PipelinedConnection:
    """Requests written back to back on one keep-alive connection; responses counted by a thread."""

    def __init__(self, port: int, name: str) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.outgoing: queue.Queue[bytes | None] = queue.Queue()
        self.responses = 0
        self.bad: list[bytes] = []
        self.expected = -1
        self.all_answered = threading.Event()
        self.answered_at = 0.0
        self.writer = threading.Thread(target=self._write, name=f"{name}-writer", daemon=True)
        self.reader = threading.Thread(target=self._read, name=f"{name}-reader", daemon=True)
        self.writer.start()
        self.reader.start()

    def send(self, request: bytes) -> None:
        self.outgoing.put(request)

    def _write(self) -> None:
        while True:
            item = self.outgoing.get()
            if item is None:
                return
            batch = [item]
            while True:
                try:
                    more = self.outgoing.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    self.sock.sendall(b"".join(batch))
                    return
                batch.append(more)
            self.sock.sendall(b"".join(batch))

    def _read(self) -> None:
        buffer = b""
        while True:
            try:
                data = self.sock.recv(1 << 20)
            except OSError:
                return
            if not data:
                return
            buffer += data
            # Every answer of the scheduler API here is "202 Accepted" with an empty body.
            while True:
                end = buffer.find(b"\r\n\r\n")
                if end < 0:
                    break
                head, buffer = buffer[:end], buffer[end + 4 :]
                if not head.startswith(b"HTTP/1.1 202"):
                    self.bad.append(head)
                self.responses += 1
                if self.responses == self.expected:
                    self.answered_at = time.monotonic()
                    self.all_answered.set()

    def close(self) -> None:
        self.outgoing.put(None)
        self.writer.join(timeout=10)
        self.sock.close()


ACCEPT_TEMPLATE = (
    b'{"type":"ACCEPT","framework_id":{"value":"%(framework)s"},"accept":{"offer_ids":[{"value":"%(offer)s"}],'
    b'"operations":[{"type":"LAUNCH","launch":{"task_infos":[{"name":"%(task)s","task_id":{"value":"%(task)s"},'
    b'"agent_id":{"value":"%(agent)s"},"resources":[{"name":"cpus","type":"SCALAR","scalar":{"value":0.5}},'
    b'{"name":"mem","type":"SCALAR","scalar":{"value":128}}],"command":{"value":"sleep 3600"}}]}}],'
    b'"filters":{"refuse_seconds":3600}}}'
)
ACK_TEMPLATE = (
    b'{"type":"ACKNOWLEDGE","framework_id":{"value":"%(framework)s"},"acknowledge":{'
    b'"agent_id":{"value":"%(agent)s"},"task_id":{"value":"%(task)s"},"uuid":"%(uuid)s"}}'
)


def raw_post(stream_id: str, payload: bytes) -> bytes:
    """A pipelined ``POST /api/v1/scheduler`` carrying the framework's stream id."""
    return (
        b"POST /api/v1/scheduler HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
        b"Mesos-Stream-Id: %s\r\nContent-Length: %d\r\n\r\n%s" % (stream_id.encode(), len(payload), payload)
    )


class EventReader:
    """Chunked RecordIO events from the SUBSCRIBE response."""

    def __init__(self, port: int) -> None:
        body = json.dumps(
            {"type": "SUBSCRIBE", "subscribe": {"framework_info": {"user": "root", "name": "bench"}}}
        )
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.sendall(
            (
                "POST /api/v1/scheduler HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\n"
                f"Accept: application/json\r\nContent-Length: {len(body)}\r\n\r\n{body}"
            ).encode()
        )
        self.buffer = b""
        while b"\r\n\r\n" not in self.buffer:
            self.buffer += self.sock.recv(65536)
        head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        headers = dict(line.split(": ", 1) for line in head.decode().split("\r\n")[1:] if ": " in line)
        self.stream_id = headers["Mesos-Stream-Id"]
        self.records = b""
        self.events: collections.deque[dict[str, Any]] = collections.deque()

    def next(self) -> dict[str, Any]:
        while not self.events:
            self.buffer += self.sock.recv(1 << 22)
            while True:
                line_end = self.buffer.find(b"\r\n")
                if line_end < 0:
                    break
                size = int(self.buffer[:line_end], 16)
                if len(self.buffer) < line_end + 4 + size:
                    break
                self.records += self.buffer[line_end + 2 : line_end + 2 + size]
                self.buffer = self.buffer[line_end + 4 + size :]
            while True:
                newline = self.records.find(b"\n")
                if newline < 0:
                    break
                length = int(self.records[:newline])
                if len(self.records) < newline + 1 + length:
                    break
                self.events.append(json.loads(self.records[newline + 1 : newline + 1 + length]))
                self.records = self.records[newline + 1 + length :]
        return self.events.popleft()


@dataclass
class Result:
    agents: int
    offers: int
    placed_seconds: float
    running_seconds: float
    master_cpu_placement: float
    master_cpu_total: float
    framework_cpu: float
    first_offers_seconds: float


def run(agents: int, profile: str | None, timeout: float, task_delay: float) -> Result:
    master = Master(agents, profile, task_delay)
    try:
        cpu_before = master.cpu()
        framework_cpu_before = time.process_time()
        started = time.monotonic()
        events = EventReader(master.port)
        accepts = PipelinedConnection(master.port, "accept")
        acks = PipelinedConnection(master.port, "ack")
        accepts.expected = agents
        framework_id = ""
        launched = running = 0
        first_offers = 0.0
        cpu_placed = 0.0
        deadline = started + timeout
        while running < agents:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{launched} launched, {running} running after {timeout}s")
            event = events.next()
            kind = event["type"]
            if kind == "SUBSCRIBED":
                framework_id = event["subscribed"]["framework_id"]["value"]
            elif kind == "OFFERS":
                if not first_offers:
                    first_offers = time.monotonic() - started
                for offer in event["offers"]["offers"]:
                    if launched >= agents:
                        continue
                    # The same JSON json.dumps would produce, filled into a template: the
                    # driver's CPU is shared with the master, so it should stay cheap.
                    body = ACCEPT_TEMPLATE % {
                        b"framework": framework_id.encode(),
                        b"offer": offer["id"]["value"].encode(),
                        b"agent": offer["agent_id"]["value"].encode(),
                        b"task": b"t%d" % launched,
                    }
                    accepts.send(raw_post(events.stream_id, body))
                    launched += 1
            elif kind == "UPDATE":
                status = event["update"]["status"]
                if "uuid" in status:
                    body = ACK_TEMPLATE % {
                        b"framework": framework_id.encode(),
                        b"agent": status["agent_id"]["value"].encode(),
                        b"task": status["task_id"]["value"].encode(),
                        b"uuid": status["uuid"].encode(),
                    }
                    acks.send(raw_post(events.stream_id, body))
                if status["state"] == "TASK_RUNNING":
                    running += 1
                elif status["state"] not in ("TASK_STARTING",):
                    raise RuntimeError(f"unexpected update {status}")
            if not cpu_placed and accepts.all_answered.is_set():
                cpu_placed = master.cpu() - cpu_before
        if not accepts.all_answered.wait(timeout):
            raise TimeoutError("ACCEPTs not all answered")
        if not cpu_placed:
            cpu_placed = master.cpu() - cpu_before
        running_seconds = time.monotonic() - started
        if accepts.bad or acks.bad:
            raise RuntimeError(f"non-202 answers: {(accepts.bad + acks.bad)[:3]}")
        framework_cpu = time.process_time() - framework_cpu_before
        master_cpu_total = master.cpu() - cpu_before
        accepts.close()
        acks.close()
        return Result(
            agents=agents,
            offers=launched,
            placed_seconds=accepts.answered_at - started,
            running_seconds=running_seconds,
            master_cpu_placement=cpu_placed,
            master_cpu_total=master_cpu_total,
            framework_cpu=framework_cpu,
            first_offers_seconds=first_offers,
        )
    finally:
        master.stop()


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("sizes", nargs="*", type=int, default=[1000, 2500, 5000, 10000])
    parser.add_argument("--profile", help="write the master's cProfile stats here (last size only)")
    parser.add_argument("--timeout", type=float, default=300.0)
    parser.add_argument(
        "--task-delay",
        type=float,
        default=0.0,
        help="seconds a simulated executor takes per state change (--simulated_task_delay)",
    )
    args = parser.parse_args()
    print(
        f"{'agents':>7} {'first offers':>12} {'placed':>8} {'running':>8} "
        f"{'master cpu/offer (place)':>24} {'master cpu/offer (all)':>22} {'framework cpu/offer':>19}"
    )
    print(f"simulated executor delay per state change: {args.task_delay}s")
    results = []
    for index, size in enumerate(args.sizes):
        profile = args.profile if args.profile and index == len(args.sizes) - 1 else None
        result = run(size, profile, args.timeout, args.task_delay)
        results.append(result)
        print(
            f"{result.agents:>7} {result.first_offers_seconds:>11.2f}s {result.placed_seconds:>7.2f}s "
            f"{result.running_seconds:>7.2f}s {1e6 * result.master_cpu_placement / result.offers:>21.0f} us "
            f"{1e6 * result.master_cpu_total / result.offers:>19.0f} us "
            f"{1e6 * result.framework_cpu / result.offers:>16.0f} us",
            flush=True,
        )
    largest = max(results, key=lambda r: r.agents)
    verdict = "meets" if largest.placed_seconds < TARGET_PLACEMENT_SECONDS else "MISSES"
    print(
        f"\n{largest.agents} tasks placed in {largest.placed_seconds:.2f}s: {verdict} the "
        f"{TARGET_PLACEMENT_SECONDS:.0f}s target"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
