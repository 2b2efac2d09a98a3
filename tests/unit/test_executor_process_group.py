"""Process groups, parent-death signal and the cleanup of a crashed predecessor's leftovers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from executor import ramdisk
from executor.leftovers import (
    LeftoverError,
    SlotState,
    StateFile,
    clean_up_leftovers,
    process_start,
)
from executor.process_group import ServerProcess, describe_exit, group_members, resolve_run_as

REPO = Path(__file__).resolve().parents[2]

PARENT = """
import sys, time
from executor.process_group import ServerProcess, resolve_run_as
env = {"PATH": "/usr/bin:/bin"}
child = ServerProcess.spawn(["sleep", "1000"], env, "/", sys.argv[1], resolve_run_as(""))
print(child.pid, flush=True)
time.sleep(1000)
"""


def _wait_gone(pid: int, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process_start(pid) is None:
            return True
        time.sleep(0.02)
    return False


@pytest.fixture
def spawned() -> Iterator[list[subprocess.Popen[bytes]]]:
    procs: list[subprocess.Popen[bytes]] = []
    try:
        yield procs
    finally:
        for proc in procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def test_child_dies_when_the_executor_is_killed(
    tmp_path: Path, spawned: list[subprocess.Popen[bytes]]
) -> None:
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT, str(tmp_path / "out")],
        cwd=REPO,
        stdout=subprocess.PIPE,
        start_new_session=True,
    )
    spawned.append(parent)
    assert parent.stdout is not None
    child = int(parent.stdout.readline())
    assert process_start(child) is not None
    assert os.getpgid(child) == child  # its own group, not the parent's
    status = Path(f"/proc/{child}/status").read_text()
    assert "\nUid:\t65534\t" in status  # nobody
    os.kill(parent.pid, signal.SIGKILL)
    parent.wait()
    assert _wait_gone(child), "PR_SET_PDEATHSIG did not kill the orphaned server"


def test_stop_kills_the_whole_group_even_after_the_leader_exited(tmp_path: Path) -> None:
    script = "import subprocess, sys; subprocess.Popen(['sleep', '1000']); sys.exit(0)"
    server = ServerProcess.spawn(
        ["/usr/bin/python3", "-I", "-c", script], {"PATH": "/usr/bin:/bin"}, "/", str(tmp_path / "o"), None
    )
    assert server.wait(10) == 0
    assert len(group_members(server.pid)) == 1  # the sleep it left behind
    steps: list[str] = []
    assert server.stop(1.0, steps.append) == 0
    assert steps == ["exited (exit status 0)"]
    assert group_members(server.pid) == []


def test_output_goes_to_the_log_file(tmp_path: Path) -> None:
    out = tmp_path / "server.out"
    server = ServerProcess.spawn(
        ["/bin/sh", "-c", "echo to-stdout; echo to-stderr >&2"],
        {"PATH": "/usr/bin:/bin"},
        "/",
        str(out),
        None,
    )
    assert server.wait(10) == 0
    server.stop(0.0, lambda step: None)
    assert out.read_text().splitlines() == ["to-stdout", "to-stderr"]


def test_exec_failure_is_reported(tmp_path: Path) -> None:
    with pytest.raises(Exception, match="cannot start /nonexistent/java"):
        ServerProcess.spawn(["/nonexistent/java"], {}, "/", str(tmp_path / "o"), None)


def test_describe_exit() -> None:
    assert describe_exit(3) == "exit status 3"
    assert describe_exit(-9) == "killed by SIGKILL"
    assert describe_exit(-15) == "killed by SIGTERM"


def test_root_runs_the_server_as_nobody_by_default() -> None:
    run_as = resolve_run_as("")
    assert run_as is not None
    assert (run_as.name, run_as.uid) == ("nobody", 65534)


@pytest.fixture
def mount_point(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "old-sandbox" / "ramdisk"
    try:
        yield path
    finally:
        ramdisk.unmount_ramdisk(str(path))


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_leftovers_of_a_crashed_executor_are_cleaned_up(
    tmp_path: Path, mount_point: Path, spawned: list[subprocess.Popen[bytes]]
) -> None:
    orphan = subprocess.Popen(["sleep", "1000"], start_new_session=True)
    spawned.append(orphan)
    ramdisk.mount_ramdisk(str(mount_point), 1 << 20)
    state_file = StateFile(str(tmp_path / "state"), "alluxio-worker")
    state_file.write(
        SlotState(
            task_id="old-task",
            sandbox=str(mount_point.parent),
            executor_pid=_dead_pid(),
            executor_start="1",
            jvm_pid=orphan.pid,
            jvm_start=process_start(orphan.pid),
            mount_path=str(mount_point),
        )
    )
    logged: list[str] = []
    done = clean_up_leftovers(state_file, logged.append)
    assert done == [f"killed orphan JVM pid {orphan.pid}", f"unmounted stale ramdisk {mount_point}"]
    assert orphan.wait(5) == -signal.SIGKILL
    assert ramdisk.find_mount(str(mount_point)) is None
    assert state_file.read() is None
    assert any("old-task" in line for line in logged)
    assert clean_up_leftovers(state_file, logged.append) == []  # idempotent


def test_a_recycled_pid_is_never_killed(tmp_path: Path, spawned: list[subprocess.Popen[bytes]]) -> None:
    bystander = subprocess.Popen(["sleep", "1000"], start_new_session=True)
    spawned.append(bystander)
    state_file = StateFile(str(tmp_path / "state"), "alluxio-worker")
    start = process_start(bystander.pid)
    assert start is not None
    state_file.write(
        SlotState("old", "/x", _dead_pid(), "1", jvm_pid=bystander.pid, jvm_start=str(int(start) - 1))
    )
    assert clean_up_leftovers(state_file, lambda line: None) == []
    assert bystander.poll() is None


def test_a_live_predecessor_executor_blocks_the_slot(
    tmp_path: Path, spawned: list[subprocess.Popen[bytes]]
) -> None:
    other = subprocess.Popen(["sleep", "1000"], start_new_session=True)
    spawned.append(other)
    state_file = StateFile(str(tmp_path / "state"), "alluxio-worker")
    state_file.write(SlotState("running-task", "/x", other.pid, process_start(other.pid) or ""))
    with pytest.raises(
        LeftoverError, match=f"executor pid {other.pid} \\(task running-task\\) is still running"
    ):
        clean_up_leftovers(state_file, lambda line: None)
    assert state_file.read() is not None


def test_corrupt_state_file_is_a_clear_error(tmp_path: Path) -> None:
    state_file = StateFile(str(tmp_path), "alluxio-worker")
    Path(state_file.path).write_text("{not json")
    with pytest.raises(LeftoverError, match="is corrupt"):
        clean_up_leftovers(state_file, lambda line: None)
