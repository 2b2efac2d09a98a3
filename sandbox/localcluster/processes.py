"""Processes and mounts of a host: everything running in its network namespace, and every mount
below a directory. Used to tear a cluster down completely, whoever started what.

The stand-in agent starts executors in their own sessions and the executors start JVMs in their
own process groups, so no process group or session covers a host. The network namespace does:
every process started on a host inherits it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time

from sandbox.localcluster.errors import ClusterError, run_command
from sandbox.localcluster.network import netns_path


def _netns_inode(path: str) -> int | None:
    try:
        return os.stat(path).st_ino
    except OSError:
        return None


def pids_in_netns(netns: str) -> list[int]:
    """Live (non-zombie) processes whose network namespace is `netns`."""
    target = _netns_inode(netns_path(netns))
    if target is None:
        return []
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        if _netns_inode(f"/proc/{entry}/ns/net") != target:
            continue
        if process_state(int(entry)) not in (None, "Z"):
            found.append(int(entry))
    return found


def process_state(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return None


def command_line(pid: int) -> list[str]:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            return [part.decode("utf-8", "replace") for part in handle.read().split(b"\0") if part]
    except OSError:
        return []


def kill_netns_processes(netns: str, timeout: float = 15.0) -> list[int]:
    """SIGKILL every process in the namespace until none is left; returns the pids killed."""
    killed: list[int] = []
    deadline = time.monotonic() + timeout
    while True:
        pids = pids_in_netns(netns)
        if not pids:
            return killed
        if time.monotonic() > deadline:
            raise ClusterError(f"processes in {netns} survive SIGKILL: {pids}")
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
        time.sleep(0.05)


def mounts_under(directory: str) -> list[str]:
    """Mount points at or below `directory`, in mount order (parents first)."""
    prefix = directory.rstrip("/") + "/"
    found = []
    with open("/proc/self/mountinfo", encoding="utf-8") as mountinfo:
        for line in mountinfo:
            point = line.split()[4].replace("\\040", " ")
            if point == directory or point.startswith(prefix):
                found.append(point)
    return found


def unmount_all_under(directory: str) -> list[str]:
    """Unmount everything below `directory`, children first; lazily if a mount is busy."""
    done = []
    for point in reversed(mounts_under(directory)):
        try:
            run_command(["umount", point], f"unmounting {point}")
        except ClusterError:
            run_command(["umount", "-l", point], f"lazily unmounting {point}")
        done.append(point)
    return done
