"""A small state file per server slot, so the next executor can clean up after a crashed one.

Each executor records, outside its sandbox, which JVM it started and where it mounted the
ramdisk. If it is ``kill -9``'d, PR_SET_PDEATHSIG kills the JVM but nothing unmounts the ramdisk;
the next executor for the same slot (``TaskPlan.instance_name``) reads the file, kills a JVM that
somehow survived and unmounts the stale ramdisk before it starts anything.

Processes are identified by pid *and* start time, so a recycled pid is never signalled.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import tempfile
import time
from dataclasses import asdict, dataclass
from typing import Callable, List, Optional

from executor import ramdisk
from executor.process_group import group_members, read_proc_stat

STATE_DIR_ROOT = "/run/alluxio-mesos"


class LeftoverError(RuntimeError):
    """Leftovers of an earlier run could not be cleaned up, or that run is still alive."""


@dataclass
class SlotState:
    task_id: str
    sandbox: str
    executor_pid: int
    executor_start: str
    jvm_pid: Optional[int] = None
    jvm_start: Optional[str] = None
    mount_path: Optional[str] = None


def default_state_dir() -> str:
    if os.geteuid() == 0:
        return STATE_DIR_ROOT
    return os.path.join(tempfile.gettempdir(), "alluxio-mesos-state-%d" % os.geteuid())


def process_start(pid: int) -> Optional[str]:
    """The start time (clock ticks since boot) of a live, non-zombie process, else None."""
    stat = read_proc_stat(pid)
    if stat is None or stat[1] == "Z":
        return None
    return stat[0]


def _same_process_alive(pid: Optional[int], start: Optional[str]) -> bool:
    return pid is not None and start is not None and process_start(pid) == start


class StateFile:
    def __init__(self, state_dir: str, instance_name: str) -> None:
        self.path = os.path.join(state_dir, instance_name + ".json")

    def read(self) -> Optional[SlotState]:
        try:
            with open(self.path) as handle:
                raw = json.load(handle)
        except FileNotFoundError:
            return None
        except ValueError as exc:
            raise LeftoverError(
                "state file %s is corrupt (%s); delete it after checking" % (self.path, exc)
            ) from exc
        try:
            return SlotState(**raw)
        except TypeError as exc:
            raise LeftoverError("state file %s has unexpected content: %s" % (self.path, exc)) from exc

    def write(self, state: SlotState) -> None:
        directory = os.path.dirname(self.path)
        os.makedirs(directory, mode=0o700, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".state.", dir=directory)
        try:
            with os.fdopen(fd, "w") as handle:
                json.dump(asdict(state), handle, sort_keys=True)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise

    def remove(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)


def new_slot_state(task_id: str, sandbox: str) -> SlotState:
    me = os.getpid()
    return SlotState(
        task_id=task_id, sandbox=sandbox, executor_pid=me, executor_start=process_start(me) or ""
    )


def clean_up_leftovers(state_file: StateFile, log: Callable[[str], None]) -> List[str]:
    """Kill a surviving JVM and unmount a stale ramdisk of a dead predecessor. Returns what was done.

    Raises LeftoverError if the predecessor executor is still alive (two executors must never
    run the same slot) or cleanup fails.
    """
    previous = state_file.read()
    if previous is None:
        return []
    if previous.executor_pid != os.getpid() and _same_process_alive(
        previous.executor_pid, previous.executor_start
    ):
        raise LeftoverError(
            "executor pid %d (task %s) is still running this slot (%s); refusing to start a second one"
            % (previous.executor_pid, previous.task_id, state_file.path)
        )
    done = []
    if _same_process_alive(previous.jvm_pid, previous.jvm_start):
        assert previous.jvm_pid is not None
        log("killing orphan JVM pid %d of task %s" % (previous.jvm_pid, previous.task_id))
        _kill_group_and_wait(previous.jvm_pid)
        done.append("killed orphan JVM pid %d" % previous.jvm_pid)
    mount = ramdisk.find_mount(previous.mount_path) if previous.mount_path else None
    if mount is not None and (mount.fs_type, mount.source) != (
        ramdisk.RAMDISK_FS_TYPE,
        ramdisk.RAMDISK_SOURCE,
    ):
        # Not a ramdisk we mount: someone mounted something else there since; leave it alone.
        log(
            "leaving %s alone: it is a %s mount of %r now"
            % (previous.mount_path, mount.fs_type, mount.source)
        )
    elif mount is not None and previous.mount_path:
        try:
            if ramdisk.unmount_ramdisk(previous.mount_path):
                log("unmounted stale ramdisk %s of task %s" % (previous.mount_path, previous.task_id))
                done.append("unmounted stale ramdisk %s" % previous.mount_path)
        except ramdisk.RamdiskError as exc:
            raise LeftoverError(
                "cannot remove the stale ramdisk of task %s: %s" % (previous.task_id, exc)
            ) from exc
    state_file.remove()
    return done


def _kill_group_and_wait(pgid: int, timeout: float = 10.0) -> None:
    # Not our child: we cannot wait(2) for it, so watch /proc until the group has no live member.
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while group_members(pgid):
        if time.monotonic() > deadline:
            raise LeftoverError("orphan JVM process group %d survived SIGKILL for %.0fs" % (pgid, timeout))
        time.sleep(0.02)
