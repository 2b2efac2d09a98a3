"""The executor bundle, run like an agent runs it, against an agent that speaks the v1 executor
API (reference §4): SUBSCRIBE stream, LAUNCH, UPDATE + ACKNOWLEDGED, KILL, SHUTDOWN.

The "JVM" is a stand-in java (a small Python program in a fake JDK) started through the real
alluxio_process command line, so everything but Alluxio itself is the production path: the
bundle on a bare Python (3.11 and 3.9), pymesos, the plan, the ramdisk, the kill sequence.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import queue
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from executor import ramdisk
from executor.bundle import build
from executor.leftovers import process_start
from executor.task_plan import TaskPlan
from tests.unit.test_executor_bundle import find_python39

pytestmark = pytest.mark.integration

FRAMEWORK_ID = "4a9e2c1e-0000-4d51-9c1f-fakeagent01-0000"
AGENT_ID = "4a9e2c1e-0000-4d51-9c1f-fakeagent01-S0"
RAMDISK_BYTES = 8 << 20

# A java that behaves like the Alluxio JVMs as far as the executor can tell: reads the site file
# from -Dalluxio.conf.dir, formats a journal, serves gRPC's HTTP/2 SETTINGS on the RPC port,
# logs into -Dalluxio.logs.dir, exits 143 on SIGTERM.
FAKE_JAVA = r"""#!/usr/bin/python3 -I
import os, signal, socket, sys, threading, time
args = sys.argv[1:]
props = dict(a[2:].split("=", 1) for a in args if a.startswith("-D") and "=" in a)
main_class = args[args.index("-cp") + 2]
site = {}
for line in open(os.path.join(props["alluxio.conf.dir"], "alluxio-site.properties")):
    if "=" in line and not line.startswith("#"):
        key, value = line.rstrip("\n").split("=", 1)
        site[key] = value
if main_class == "alluxio.cli.Format":
    os.makedirs(os.path.join(site["alluxio.master.journal.folder"], "raft"), exist_ok=True)
    sys.exit(0)
role = "master" if main_class.endswith("AlluxioMaster") else "worker"
log = open(os.path.join(props["alluxio.logs.dir"], role + ".log"), "a")
def note(text):
    log.write("%.6f %s\n" % (time.time(), text))
    log.flush()
signal.signal(signal.SIGTERM, lambda *_: (note("SIGTERM"), os._exit(143)))
note("fake %s starting, pid %d uid %d" % (role, os.getpid(), os.getuid()))
time.sleep(float(site.get("fake.start.delay", "0.3")))
server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("127.0.0.1", int(site["alluxio.%s.rpc.port" % role])))
server.listen(16)
note("listening")
def serve():
    while True:
        conn, _ = server.accept()
        conn.settimeout(1.0)
        try:
            conn.recv(64)
            conn.sendall(b"\x00\x00\x00\x04\x00\x00\x00\x00\x00")
        except OSError:
            pass
        conn.close()
threading.Thread(target=serve, daemon=True).start()
if "fake.exit.after" in site:
    time.sleep(float(site["fake.exit.after"]))
    note("FATAL fake %s exits with status 7" % role)
    sys.exit(7)
while True:
    time.sleep(1)
"""


class FakeAgent:
    """Just enough of a Mesos agent's /api/v1/executor to drive one executor at a time."""

    def __init__(self, capabilities: list[str]) -> None:
        self.capabilities = capabilities
        self.stream: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self.updates: list[dict[str, Any]] = []
        self.subscribes: list[dict[str, Any]] = []
        self.rejected: list[str] = []
        self._lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _AgentHandler)
        self.server.daemon_threads = True
        self.server.agent = self  # type: ignore[attr-defined]
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def endpoint(self) -> str:
        host, port = self.server.server_address[:2]
        return f"{host}:{port}"

    def send(self, event: dict[str, Any]) -> None:
        self.stream.put(event)

    def states(self) -> list[str]:
        with self._lock:
            return [u["state"] for u in self.updates]

    def record(self, status: dict[str, Any]) -> None:
        with self._lock:
            self.updates.append(status)

    def wait_for(self, state: str, timeout: float = 60.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                for status in self.updates:
                    if status["state"] == state:
                        return status
            time.sleep(0.02)
        raise AssertionError(f"no {state} within {timeout}s; got {self.states()}; rejected {self.rejected}")

    def end_stream(self) -> None:
        """The agent goes away: the SUBSCRIBE stream ends (the HTTP endpoint stays up)."""
        self.stream.put(None)

    def close(self) -> None:
        self.stream.put(None)
        self.server.shutdown()
        self.server.server_close()


class _AgentHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _reply(self, code: int, text: str = "") -> None:
        body = text.encode()
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _record(self, event: dict[str, Any]) -> None:
        data = json.dumps(event).encode()
        record = b"%d\n" % len(data) + data
        self.wfile.write(b"%x\r\n%s\r\n" % (len(record), record))
        self.wfile.flush()

    def do_POST(self) -> None:
        agent: FakeAgent = self.server.agent  # type: ignore[attr-defined]
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))))
        if self.path != "/api/v1/executor" or self.headers.get("Content-Type") != "application/json":
            agent.rejected.append(f"{self.path} {self.headers.get('Content-Type')}")
            return self._reply(415, "bad path or content type")
        if body.get("framework_id", {}).get("value") != FRAMEWORK_ID:
            agent.rejected.append(f"framework id {body.get('framework_id')}")
            return self._reply(400, "unknown framework")
        kind = body.get("type")
        if kind == "SUBSCRIBE":
            return self._subscribe(agent, body)
        if kind == "UPDATE":
            status = body["update"]["status"]
            problem = _invalid_update(status)
            if problem:
                agent.rejected.append(problem)
                return self._reply(400, problem)
            agent.record(status)
            self._reply(202)
            agent.send(
                {
                    "type": "ACKNOWLEDGED",
                    "acknowledged": {"task_id": status["task_id"], "uuid": status["uuid"]},
                }
            )
            return None
        if kind == "MESSAGE":
            return self._reply(202)
        agent.rejected.append(f"call {kind}")
        return self._reply(400, "unknown call")

    def _subscribe(self, agent: FakeAgent, body: dict[str, Any]) -> None:
        agent.subscribes.append(body)
        executor_id = body["executor_id"]
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self._record(
            {
                "type": "SUBSCRIBED",
                "subscribed": {
                    "executor_info": {
                        "executor_id": executor_id,
                        "framework_id": {"value": FRAMEWORK_ID},
                        "command": {"value": "python3 executor.pyz"},
                    },
                    "framework_info": {
                        "id": {"value": FRAMEWORK_ID},
                        "name": "alluxio-test",
                        "user": "root",
                        "capabilities": [{"type": c} for c in agent.capabilities],
                    },
                    "agent_info": {"id": {"value": AGENT_ID}, "hostname": "localhost", "port": 5051},
                    "container_id": {"value": str(uuid.uuid4())},
                },
            }
        )
        while True:
            event = agent.stream.get()
            if event is None:
                self.wfile.write(b"0\r\n\r\n")
                self.close_connection = True
                return
            try:
                self._record(event)
            except OSError:
                agent.stream.put(event)  # the executor went away: keep it for the next one
                return


def _invalid_update(status: dict[str, Any]) -> str:
    # The agent's validation of executor updates (reference §4).
    raw = base64.b64decode(status.get("uuid", ""))
    if len(raw) != 16:
        return "uuid is not 16 bytes"
    if status.get("source") != "SOURCE_EXECUTOR":
        return "source is not SOURCE_EXECUTOR"
    if status.get("state") == "TASK_STAGING":
        return "executors may not send TASK_STAGING"
    return ""


class Rig:
    def __init__(self, root: Path, bundle: Path, python: str) -> None:
        self.root = root
        self.bundle = bundle
        self.python = python
        self.processes: list[subprocess.Popen[bytes]] = []
        self.agents: list[FakeAgent] = []

    def agent(self, capabilities: tuple[str, ...] = ("TASK_KILLING_STATE",)) -> FakeAgent:
        agent = FakeAgent(list(capabilities))
        self.agents.append(agent)
        return agent

    def plan(self, role: str = "worker", properties: dict[str, str] | None = None) -> TaskPlan:
        base = {"alluxio.master.hostname": "localhost", **(properties or {})}
        if role == "worker":
            return TaskPlan(
                role="worker",
                alluxio_properties=base,
                artifacts=[],
                alluxio_home_mode="local",
                alluxio_home=str(self.root / "alluxio-home"),
                java_home_mode="local",
                java_home=str(self.root / "fakejdk"),
                heap_size_mb=128,
                ports={"rpc": free_port(), "web": free_port()},
                ramdisk_size_bytes=RAMDISK_BYTES,
                state_dir=str(self.root / "state"),
                instance_name="test-worker",
                readiness_timeout_secs=20,
            )
        return TaskPlan(
            role="master",
            alluxio_properties=base,
            artifacts=[],
            alluxio_home_mode="local",
            alluxio_home=str(self.root / "alluxio-home"),
            java_home_mode="local",
            java_home=str(self.root / "fakejdk"),
            heap_size_mb=128,
            ports={"rpc": free_port(), "web": free_port()},
            journal_dir=str(self.root / "journal"),
            state_dir=str(self.root / "state"),
            readiness_timeout_secs=20,
        )

    def start_executor(
        self, agent: FakeAgent, name: str, checkpoint: bool = True
    ) -> tuple[subprocess.Popen[bytes], Path]:
        sandbox = self.root / "sandboxes" / name
        sandbox.mkdir(parents=True, mode=0o755)
        env = {
            "PATH": "/usr/bin:/bin",
            "MESOS_FRAMEWORK_ID": FRAMEWORK_ID,
            "MESOS_EXECUTOR_ID": name,
            "MESOS_DIRECTORY": str(sandbox),
            "MESOS_SANDBOX": str(sandbox),
            "MESOS_AGENT_ENDPOINT": agent.endpoint,
            "MESOS_SLAVE_ID": AGENT_ID,
            "MESOS_CHECKPOINT": "1" if checkpoint else "0",
            "MESOS_HTTP_COMMAND_EXECUTOR": "0",
            "MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD": "5secs",
            "LIBPROCESS_PORT": "0",
        }
        with open(sandbox / "stdout", "wb") as out, open(sandbox / "stderr", "wb") as err:
            # Its own session, as an agent's launcher does; pymesos may killpg(0) its own group.
            proc = subprocess.Popen(
                [self.python, str(self.bundle)],
                env=env,
                cwd=sandbox,
                stdout=out,
                stderr=err,
                start_new_session=True,
            )
        self.processes.append(proc)
        return proc, sandbox

    @staticmethod
    def launch(agent: FakeAgent, task_id: str, data: str, kill_grace_ns: int | None = None) -> None:
        task: dict[str, Any] = {
            "name": task_id,
            "task_id": {"value": task_id},
            "agent_id": {"value": AGENT_ID},
            "resources": [],
            "executor": {"executor_id": {"value": task_id}, "command": {"value": "python3 executor.pyz"}},
            "data": data,
        }
        if kill_grace_ns is not None:
            task["kill_policy"] = {"grace_period": {"nanoseconds": kill_grace_ns}}
        agent.send({"type": "LAUNCH", "launch": {"task": task}})

    def close(self) -> None:
        for proc in self.processes:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        for agent in self.agents:
            agent.close()


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("bundle") / "alluxio-mesos-executor.pyz"
    build(str(path))
    return path


def _python(which: str) -> str:
    return find_python39() if which == "3.9" else "/usr/bin/python3"


@pytest.fixture(params=["3.11", "3.9"])
def rig(request: pytest.FixtureRequest, bundle: Path) -> Iterator[Rig]:
    root = Path(tempfile.mkdtemp(prefix="alluxio-executor-proto-", dir="/tmp"))
    rig = Rig(root, bundle, _python(request.param))
    try:
        root.chmod(0o755)
        (root / "alluxio-home" / "conf").mkdir(parents=True)
        (root / "alluxio-home" / "conf" / "log4j.properties").write_text("log4j.rootLogger=INFO\n")
        (root / "alluxio-home" / "assembly" / "server").mkdir(parents=True)
        (root / "alluxio-home" / "assembly" / "server" / "fake.jar").write_bytes(b"")
        (root / "alluxio-home" / "assembly" / "server.classpath").write_text("fake.jar\n")
        java = root / "fakejdk" / "bin" / "java"
        java.parent.mkdir(parents=True)
        java.write_text(FAKE_JAVA)
        java.chmod(0o755)
        (root / "fakejdk" / "release").write_text('JAVA_VERSION="17.0.15"\n')
        yield rig
    finally:
        rig.close()
        for line in reversed(Path("/proc/self/mountinfo").read_text().splitlines()):
            if line.split(" ")[4].startswith(str(root)):
                ramdisk.unmount_ramdisk(line.split(" ")[4])
        _kill_fake_servers(root)
        shutil.rmtree(root, ignore_errors=True)


def _kill_fake_servers(root: Path) -> None:
    for entry in filter(str.isdigit, os.listdir("/proc")):
        with contextlib.suppress(OSError):
            if str(root).encode() in Path("/proc", entry, "cmdline").read_bytes():
                os.killpg(int(entry), signal.SIGKILL)


def _fake_java_pid(sandbox: Path, role: str) -> int:
    text = (sandbox / "logs" / f"{role}.log").read_text()
    return int(text.split(" pid ")[1].split()[0])


def _exit_code(proc: subprocess.Popen[bytes], timeout: float = 15.0) -> int:
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        raise AssertionError("the executor did not exit by itself") from None


def test_worker_lifecycle_over_the_executor_api(rig: Rig) -> None:
    agent = rig.agent()
    proc, sandbox = rig.start_executor(agent, "worker-1")
    plan = rig.plan("worker", {"s3a.secretKey": "hunter2"})
    rig.launch(agent, "worker-1", plan.to_task_data())
    running = agent.wait_for("TASK_RUNNING")
    details = json.loads(base64.b64decode(running["data"]))
    assert details["ports"] == plan.ports
    java_pid = details["pid"]
    assert _fake_java_pid(sandbox, "worker") == java_pid
    mount = ramdisk.find_mount(str(sandbox / "ramdisk"))
    assert mount is not None
    assert "size=8192k" in mount.super_options
    assert Path(plan.state_dir, "test-worker.json").exists()

    agent.send(
        {
            "type": "KILL",
            "kill": {
                "task_id": {"value": "worker-1"},
                "kill_policy": {"grace_period": {"nanoseconds": 2_000_000_000}},
            },
        }
    )
    killed = agent.wait_for("TASK_KILLED", timeout=20)
    assert _exit_code(proc) == 0
    assert agent.states() == ["TASK_STARTING", "TASK_RUNNING", "TASK_KILLING", "TASK_KILLED"]
    assert json.loads(base64.b64decode(killed["data"]))["grace_period_secs"] == 2.0
    assert agent.rejected == []
    for status in agent.updates:
        assert status["source"] == "SOURCE_EXECUTOR"
        assert status["task_id"] == {"value": "worker-1"}
    assert len({s["uuid"] for s in agent.updates}) == 4
    assert process_start(java_pid) is None
    assert ramdisk.find_mount(str(sandbox / "ramdisk")) is None
    assert not Path(plan.state_dir, "test-worker.json").exists()
    assert "SIGTERM" in (sandbox / "logs" / "worker.log").read_text()
    stderr = (sandbox / "stderr").read_text()
    # The executor reports its own overhead (LAUNCH to the JVM's exec) and how soon it saw the port
    # answer; their targets are checked by benchmarks/framework_executor_overhead.py, not here.
    launch_to_exec = re.search(r"launch→exec ([0-9.]+) ms", stderr)
    detection = re.search(r"port open seen within ([0-9.]+) ms", stderr)
    assert launch_to_exec is not None, stderr
    assert float(launch_to_exec.group(1)) > 0, stderr
    assert detection is not None, stderr
    assert float(detection.group(1)) >= 0, stderr
    assert "hunter2" not in stderr  # nothing of the plan's values is logged


def test_bad_plan_fails_the_task_with_a_reason(rig: Rig) -> None:
    agent = rig.agent()
    proc, _ = rig.start_executor(agent, "bad-1")
    rig.launch(agent, "bad-1", base64.b64encode(b'{"version": 2, "role": "proxy"}').decode())
    failed = agent.wait_for("TASK_FAILED")
    assert _exit_code(proc) == 1
    assert failed["reason"] == "REASON_TASK_INVALID"
    assert "task plan: missing key(s)" in failed["message"]
    assert agent.states() == ["TASK_STARTING", "TASK_FAILED"]


def test_server_death_is_reported_with_status_and_log_tail(rig: Rig) -> None:
    agent = rig.agent()
    proc, sandbox = rig.start_executor(agent, "dies-1")
    rig.launch(agent, "dies-1", rig.plan("worker", {"fake.exit.after": "0.5"}).to_task_data())
    failed = agent.wait_for("TASK_FAILED", timeout=30)
    assert _exit_code(proc) == 1
    assert agent.states() == ["TASK_STARTING", "TASK_RUNNING", "TASK_FAILED"]
    assert "ended (exit status 7) after it was running" in failed["message"]
    assert "FATAL fake worker exits with status 7" in failed["message"]
    assert ramdisk.find_mount(str(sandbox / "ramdisk")) is None


def test_shutdown_kills_within_the_agents_grace_period(rig: Rig) -> None:
    agent = rig.agent()
    proc, sandbox = rig.start_executor(agent, "master-1")
    rig.launch(agent, "master-1", rig.plan("master").to_task_data(), kill_grace_ns=30_000_000_000)
    agent.wait_for("TASK_RUNNING")
    java_pid = _fake_java_pid(sandbox, "master")
    started = time.monotonic()
    agent.send({"type": "SHUTDOWN"})
    agent.wait_for("TASK_KILLED", timeout=10)
    assert _exit_code(proc, timeout=10) == 0
    # 30 s kill_policy, but the agent kills the executor after 5 s: the executor fits inside.
    assert time.monotonic() - started < 5.0
    assert agent.states()[-2:] == ["TASK_KILLING", "TASK_KILLED"]
    assert process_start(java_pid) is None


def test_no_task_killing_without_the_capability_and_sigterm_is_a_kill(rig: Rig) -> None:
    agent = rig.agent(capabilities=())
    proc, sandbox = rig.start_executor(agent, "worker-2")
    rig.launch(agent, "worker-2", rig.plan("worker").to_task_data())
    agent.wait_for("TASK_RUNNING")
    os.kill(proc.pid, signal.SIGTERM)
    agent.wait_for("TASK_KILLED", timeout=15)
    assert _exit_code(proc) == 0
    assert agent.states() == ["TASK_STARTING", "TASK_RUNNING", "TASK_KILLED"]
    assert ramdisk.find_mount(str(sandbox / "ramdisk")) is None


def test_a_kill_9d_executor_leaves_nothing_the_next_one_cannot_clean(rig: Rig) -> None:
    agent = rig.agent()
    first, first_sandbox = rig.start_executor(agent, "worker-a")
    plan = rig.plan("worker")
    rig.launch(agent, "worker-a", plan.to_task_data())
    agent.wait_for("TASK_RUNNING")
    java_pid = _fake_java_pid(first_sandbox, "worker")
    os.killpg(first.pid, signal.SIGKILL)  # the executor dies without any cleanup
    first.wait()
    deadline = time.monotonic() + 5
    while process_start(java_pid) is not None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert process_start(java_pid) is None, "the JVM outlived its executor (no PR_SET_PDEATHSIG?)"
    assert ramdisk.find_mount(str(first_sandbox / "ramdisk")) is not None  # stale, as expected

    second_agent = rig.agent()
    second, second_sandbox = rig.start_executor(second_agent, "worker-b")
    rig.launch(second_agent, "worker-b", plan.to_task_data())
    second_agent.wait_for("TASK_RUNNING")
    assert ramdisk.find_mount(str(first_sandbox / "ramdisk")) is None
    assert "unmounted stale ramdisk" in (second_sandbox / "stderr").read_text()
    second_agent.send({"type": "KILL", "kill": {"task_id": {"value": "worker-b"}}})
    second_agent.wait_for("TASK_KILLED", timeout=20)
    assert _exit_code(second) == 0


def test_losing_the_agent_stops_a_non_checkpointed_task(rig: Rig) -> None:
    agent = rig.agent()
    proc, sandbox = rig.start_executor(agent, "worker-3", checkpoint=False)
    rig.launch(agent, "worker-3", rig.plan("worker").to_task_data())
    agent.wait_for("TASK_RUNNING")
    java_pid = _fake_java_pid(sandbox, "worker")
    agent.end_stream()
    assert _exit_code(proc, timeout=10) == 0
    assert process_start(java_pid) is None
    assert ramdisk.find_mount(str(sandbox / "ramdisk")) is None
    assert agent.states()[-1] == "TASK_KILLED"
