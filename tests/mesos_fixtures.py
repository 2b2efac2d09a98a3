"""Fixtures that run the stand-in Mesos as real subprocesses (``python -m sandbox.mesos ...``).

Shared by the master conformance suite and the agent/executor tests. Every helper cleans up
what it starts (process group, work_dir) even when the test fails. Add new helpers as new
functions; do not change the signatures of existing ones (others depend on them).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def wait_until(condition: Callable[[], Any], timeout: float, what: str, interval: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        last = condition()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last: {last!r})")


def http_get(host: str, port: int, path: str, timeout: float = 5.0) -> tuple[int, dict[str, str], bytes]:
    """GET path; returns (status, headers, body). Raises OSError if nothing listens."""
    connection = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        connection.close()


def wait_for_http_ok(
    host: str, port: int, path: str, timeout: float, process: subprocess.Popen[bytes]
) -> None:
    """Poll until ``GET path`` answers 200; fail early (with the log) if the process died."""
    deadline = time.monotonic() + timeout
    last_error = "no attempt yet"
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"process exited with status {process.returncode} before {path} answered")
        try:
            status, _, _ = http_get(host, port, path, timeout=1.0)
            if status == 200:
                return
            last_error = f"HTTP {status}"
        except OSError as error:
            last_error = str(error)
        time.sleep(0.05)
    raise TimeoutError(f"{path} on {host}:{port} did not answer 200 within {timeout}s ({last_error})")


def stop_process(process: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    """SIGTERM the process group, wait, then SIGKILL whatever is left."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=timeout)
    else:
        # The leader is gone; make sure no child of it survives either.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)


def _spawn_stand_in(
    role: str, flags: Sequence[str], log_path: Path, env: dict[str, str] | None, *, log_mode: str
) -> subprocess.Popen[bytes]:
    """``python -m sandbox.mesos <role> flags...`` in its own session, output into log_path."""
    process_env = {**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})}
    python_path = (str(REPO_ROOT), process_env.get("PYTHONPATH", ""))
    process_env["PYTHONPATH"] = os.pathsep.join(p for p in python_path if p)
    with open(log_path, log_mode) as log:
        return subprocess.Popen(
            [sys.executable, "-m", "sandbox.mesos", role, *flags],
            cwd=REPO_ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=process_env,
            start_new_session=True,
        )


@dataclass
class StandInProcess:
    """A running stand-in master or agent: its address, log and HTTP endpoints."""

    host: str
    port: int
    work_dir: Path
    log_path: Path
    process: subprocess.Popen[bytes]
    flags: list[str] = field(default_factory=list)

    @property
    def address(self) -> str:
        """``host:port``, what pymesos and agents' ``--master`` take."""
        return f"{self.host}:{self.port}"

    def log(self) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""

    def get_json(self, path: str) -> Any:
        status, _, body = http_get(self.host, self.port, path)
        if status != 200:
            raise AssertionError(f"GET {path} answered {status}: {body[:500]!r}")
        return json.loads(body)

    def is_running(self) -> bool:
        return self.process.poll() is None


@dataclass
class MasterProcess(StandInProcess):
    """A running stand-in master."""

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def state(self) -> Any:
        return self.get_json("/master/state")


def start_master(
    work_dir: Path,
    flags: Sequence[str] = (),
    *,
    host: str = "127.0.0.1",
    port: int | None = None,
    startup_timeout: float = 20.0,
    env: dict[str, str] | None = None,
) -> MasterProcess:
    """Start ``python -m sandbox.mesos master`` and wait for /master/health.

    The caller owns the result and must call :func:`stop_master` (use :func:`running_master`
    or the ``mesos_master`` fixture to get that for free).
    """
    work_dir.mkdir(parents=True, exist_ok=True)
    chosen_port = port or free_port(host)
    log_path = work_dir / "master.log"
    all_flags = [f"--ip={host}", f"--port={chosen_port}", f"--work_dir={work_dir / 'master'}", *flags]
    process = _spawn_stand_in("master", all_flags, log_path, env, log_mode="wb")
    master = MasterProcess(host, chosen_port, work_dir, log_path, process, list(all_flags))
    try:
        wait_for_http_ok(host, chosen_port, "/master/health", startup_timeout, process)
    except BaseException as error:
        stop_process(process)
        raise RuntimeError(f"master failed to start: {error}\n--- master log ---\n{master.log()}") from error
    return master


def stop_master(master: MasterProcess, timeout: float = 10.0) -> None:
    stop_process(master.process, timeout)


@contextlib.contextmanager
def running_master(
    flags: Sequence[str] = (), *, work_dir: Path | None = None, **kwargs: Any
) -> Iterator[MasterProcess]:
    """Context manager: a master for the duration of the block; everything removed after.

    Without ``work_dir`` a temporary directory is created and deleted afterwards; a given
    ``work_dir`` is left in place (it belongs to the caller, e.g. pytest's tmp_path).
    """
    owned = work_dir is None
    directory = Path(tempfile.mkdtemp(prefix="mesos-master-")) if work_dir is None else work_dir
    master: MasterProcess | None = None
    try:
        master = start_master(directory, flags, **kwargs)
        yield master
    finally:
        if master is not None:
            stop_master(master)
        if owned:
            shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture
def mesos_master(tmp_path: Path) -> Iterator[MasterProcess]:
    """A master with default flags and a short heartbeat (1 s), stopped after the test."""
    with running_master(["--heartbeat_interval=1secs"], work_dir=tmp_path / "mesos") as master:
        yield master


@pytest.fixture
def mesos_master_factory(tmp_path: Path) -> Iterator[Any]:
    """Call ``factory(flags...)`` to start masters with custom flags; all stopped after the test."""
    started: list[MasterProcess] = []

    def factory(*flags: str, **kwargs: Any) -> MasterProcess:
        work_dir = tmp_path / f"mesos-{len(started)}"
        master = start_master(work_dir, flags, **kwargs)
        started.append(master)
        return master

    try:
        yield factory
    finally:
        for master in started:
            stop_master(master)


# ---------------------------------------------------------------------------------------------
# Agents (added by the agent side; executors run in their own sessions, so stopping an agent
# does not stop them: stop_agent also kills every process of the agent's containers)
# ---------------------------------------------------------------------------------------------

# Fast defaults for tests; a caller's flag of the same name replaces the default.
AGENT_TEST_DEFAULTS = ("--registration_backoff_factor=10ms",)


@dataclass
class AgentProcess(StandInProcess):
    """A running stand-in agent."""

    def state(self) -> Any:
        return self.get_json("/state")

    @property
    def agent_id(self) -> str:
        return str(self.state()["id"])


def _flag_name(flag: str) -> str:
    return flag.lstrip("-").split("=", 1)[0]


def container_processes(work_dir: Path) -> list[int]:
    """Pids of processes started for containers of the agent using ``work_dir``.

    Every process of a container inherits MESOS_DIRECTORY (its sandbox, under work_dir), even the
    ones that left the executor's session, so this finds them all.
    """
    prefix = f"MESOS_DIRECTORY={work_dir}/".encode()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as handle:
                variables = handle.read().split(b"\0")
            with open(f"/proc/{entry}/stat", encoding="utf-8", errors="replace") as handle:
                state = handle.read().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z" and any(v.startswith(prefix) for v in variables):
            found.append(int(entry))
    return found


def kill_container_processes(work_dir: Path, timeout: float = 5.0) -> list[int]:
    """SIGKILL every container process of the agent using ``work_dir``; returns their pids."""
    killed: list[int] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pids = container_processes(work_dir)
        if not pids:
            return killed
        for pid in pids:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
        time.sleep(0.05)
    survivors = container_processes(work_dir)
    raise RuntimeError(f"container processes under {work_dir} survive SIGKILL: {survivors}")


def start_agent(
    master: str,
    work_dir: Path,
    flags: Sequence[str] = (),
    *,
    host: str = "127.0.0.1",
    port: int | None = None,
    env: dict[str, str] | None = None,
    wait_registered: bool = True,
    startup_timeout: float = 20.0,
    log_name: str = "agent.log",
) -> AgentProcess:
    """Start ``python -m sandbox.mesos agent`` against ``master`` (host:port).

    Waits for /health and, unless ``wait_registered`` is False, until the agent has an id.
    The caller owns the result: call :func:`stop_agent` (or use :func:`running_agent`).
    """
    work_dir.mkdir(parents=True, exist_ok=True)
    chosen_port = port or free_port(host)
    log_path = work_dir.parent / log_name
    given = {_flag_name(f) for f in flags}
    defaults = [f for f in AGENT_TEST_DEFAULTS if _flag_name(f) not in given]
    base = [f"--master={master}", f"--work_dir={work_dir}", f"--ip={host}", f"--port={chosen_port}"]
    all_flags = [f for f in base if _flag_name(f) not in given] + defaults + list(flags)
    # Appending: a restarted agent keeps its earlier runs in the same log.
    process = _spawn_stand_in("agent", all_flags, log_path, env, log_mode="ab")
    agent = AgentProcess(host, chosen_port, work_dir, log_path, process, all_flags)
    try:
        wait_for_http_ok(host, chosen_port, "/health", startup_timeout, process)
        deadline = time.monotonic() + startup_timeout
        while wait_registered and not agent.agent_id:
            if time.monotonic() > deadline or not agent.is_running():
                raise TimeoutError("agent did not register with the master")
            time.sleep(0.05)
    except BaseException as error:
        stop_process(process)
        kill_container_processes(work_dir)
        raise RuntimeError(f"agent failed to start: {error}\n--- agent log ---\n{agent.log()}") from error
    return agent


def stop_agent(agent: AgentProcess, *, kill_containers: bool = True, timeout: float = 10.0) -> None:
    """Stop the agent process; with ``kill_containers`` also every executor it left running."""
    stop_process(agent.process, timeout)
    if kill_containers:
        kill_container_processes(agent.work_dir)


@contextlib.contextmanager
def running_agent(
    master: str, work_dir: Path, flags: Sequence[str] = (), **kwargs: Any
) -> Iterator[AgentProcess]:
    """Context manager: an agent for the block; it and all its containers are gone afterwards."""
    agent: AgentProcess | None = None
    try:
        agent = start_agent(master, work_dir, flags, **kwargs)
        yield agent
    finally:
        if agent is not None:
            stop_agent(agent)
        kill_container_processes(work_dir)


@pytest.fixture
def mesos_agent(mesos_master: MasterProcess, tmp_path: Path) -> Iterator[AgentProcess]:
    """An agent registered with the ``mesos_master`` fixture; stopped with its executors after the test."""
    with running_agent(mesos_master.address, tmp_path / "agent" / "work") as agent:
        yield agent
