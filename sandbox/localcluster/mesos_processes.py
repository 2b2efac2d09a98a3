"""The stand-in Mesos master (root namespace, on the bridge address) and agents (each inside its
host's network namespace, entered with `nsenter --net` only, so mounts stay shared)."""

from __future__ import annotations

import contextlib
import dataclasses
import http.client
import json
import os
import pathlib
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from typing import Any

from sandbox.localcluster.errors import ClusterError
from sandbox.localcluster.network import netns_path

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
AGENT_PORT = 5051  # every host has its own port space, so every agent can use Mesos' default


def http_get(host: str, port: int, path: str, timeout: float = 5.0) -> bytes:
    """The body of a 200 answer to GET; ClusterError for any other status."""
    connection = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        body = response.read()
    finally:
        connection.close()
    if response.status != 200:
        raise ClusterError(f"GET http://{host}:{port}{path} answered {response.status}: {body[:300]!r}")
    return body


def http_json(host: str, port: int, path: str, timeout: float = 5.0) -> Any:
    return json.loads(http_get(host, port, path, timeout))


@dataclasses.dataclass
class MesosProcess:
    """A running stand-in master or agent."""

    kind: str
    ip: str
    port: int
    log_path: pathlib.Path
    process: subprocess.Popen[bytes]
    netns: str | None = None

    @property
    def address(self) -> str:
        return f"{self.ip}:{self.port}"

    def get_json(self, path: str, timeout: float = 5.0) -> Any:
        return http_json(self.ip, self.port, path, timeout)

    def state(self) -> Any:
        return self.get_json("/master/state" if self.kind == "master" else "/state")

    def log(self, max_chars: int = 100_000) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")[-max_chars:]
        except OSError:
            return ""

    def is_running(self) -> bool:
        return self.process.poll() is None

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM the process group, then SIGKILL what is left."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=timeout)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)


def _environment() -> dict[str, str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p)
    return env


def _spawn(argv: Sequence[str], log_path: pathlib.Path) -> subprocess.Popen[bytes]:
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            list(argv),
            cwd=REPO_ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=_environment(),
            start_new_session=True,
        )


def _wait_answering(proc: MesosProcess, path: str, timeout: float) -> bytes:
    deadline = time.monotonic() + timeout
    last = "no attempt yet"
    while time.monotonic() < deadline:
        if not proc.is_running():
            raise ClusterError(
                f"the {proc.kind} exited with {proc.process.returncode} before {path} answered; "
                f"log {proc.log_path}:\n{proc.log(4000)}"
            )
        try:
            return http_get(proc.ip, proc.port, path, timeout=2.0)
        except (OSError, ClusterError) as error:
            last = str(error)
        time.sleep(0.05)
    proc.stop()
    raise ClusterError(
        f"the {proc.kind} at {proc.address} did not answer {path} within {timeout}s ({last}); "
        f"log {proc.log_path}:\n{proc.log(4000)}"
    )


def start_master(
    ip: str, port: int, work_dir: pathlib.Path, flags: Sequence[str] = (), timeout: float = 30.0
) -> MesosProcess:
    work_dir.mkdir(parents=True, exist_ok=True)
    log_path = work_dir / "master.log"
    argv = [
        sys.executable, "-m", "sandbox.mesos", "master",
        f"--ip={ip}", f"--port={port}", f"--work_dir={work_dir / 'work'}", *flags,
    ]  # fmt: skip
    master = MesosProcess("master", ip, port, log_path, _spawn(argv, log_path))
    _wait_answering(master, "/master/health", timeout)
    return master


def start_agent(
    *,
    master_address: str,
    netns: str,
    ip: str,
    hostname: str,
    work_dir: pathlib.Path,
    log_path: pathlib.Path,
    resources: str,
    attributes: str = "",
    flags: Sequence[str] = (),
    timeout: float = 30.0,
) -> MesosProcess:
    """Start an agent inside `netns` and wait until the master gave it an id."""
    work_dir.mkdir(parents=True, exist_ok=True)
    argv = [
        "nsenter", f"--net={netns_path(netns)}", "--",
        sys.executable, "-m", "sandbox.mesos", "agent",
        f"--master={master_address}", f"--ip={ip}", f"--port={AGENT_PORT}", f"--hostname={hostname}",
        f"--work_dir={work_dir}", f"--resources={resources}", "--registration_backoff_factor=10ms",
    ]  # fmt: skip
    if attributes:
        argv.append(f"--attributes={attributes}")
    argv.extend(flags)
    agent = MesosProcess("agent", ip, AGENT_PORT, log_path, _spawn(argv, log_path), netns=netns)
    deadline = time.monotonic() + timeout
    while not json.loads(_wait_answering(agent, "/state", max(0.1, deadline - time.monotonic()))).get("id"):
        if time.monotonic() > deadline:
            agent.stop()
            raise ClusterError(f"agent {hostname} did not register with {master_address} in {timeout}s")
        time.sleep(0.05)
    return agent
