"""Container membership and killing: session, descendants, and processes that escaped both."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sandbox.mesos.agent import processes


@pytest.fixture
def container(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], Path]]:
    """A 'container': a session leader whose child starts its own session and outlives it."""
    sandbox = tmp_path / "sandbox"
    sandbox.mkdir()
    pidfile = sandbox / "escaped.pid"
    script = f"setsid sh -c 'echo $$ > {pidfile}; exec sleep 300' & sleep 300"
    leader = subprocess.Popen(
        ["sh", "-c", script], env={**os.environ, "MESOS_DIRECTORY": str(sandbox)}, start_new_session=True
    )
    try:
        deadline = time.monotonic() + 5
        while not pidfile.exists() or not pidfile.read_text().strip():
            assert time.monotonic() < deadline
            time.sleep(0.02)
        yield leader, sandbox
    finally:
        for pid in [*processes.container_pids(None, str(sandbox)), leader.pid]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        leader.wait()


def test_membership_and_kill(container: tuple[subprocess.Popen[bytes], Path]) -> None:
    leader, sandbox = container
    escaped = int((sandbox / "escaped.pid").read_text())
    identity = processes.identify(leader.pid)
    assert identity is not None
    assert processes.is_alive(identity)
    members = processes.container_pids(identity, str(sandbox))
    assert leader.pid in members
    assert escaped in members, "a process in another session is still found by its environment"
    assert os.getsid(escaped) != leader.pid
    assert os.getpid() not in members

    killed = processes.kill_container(identity, str(sandbox))
    assert set(members) <= set(killed)
    status = os.waitpid(leader.pid, 0)[1]
    leader.returncode = -9
    assert processes.describe_wait_status(status) == "terminated with signal Killed"
    assert not processes.is_alive(identity)
    assert processes.container_pids(identity, str(sandbox)) == []


def test_recycled_pid_is_not_the_same_process() -> None:
    identity = processes.identify(os.getpid())
    assert identity is not None
    assert processes.is_alive(identity)
    assert not processes.is_alive(processes.ProcessIdentity(os.getpid(), identity.start_ticks + 1))


def test_wait_status_text() -> None:
    assert processes.describe_wait_status(3 << 8) == "exited with status 3"
    assert processes.describe_wait_status(signal.SIGTERM) == "terminated with signal Terminated"
    assert processes.describe_wait_status(-1) == "terminated with unknown status"
