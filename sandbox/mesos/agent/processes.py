"""Process plumbing for containers: identity, liveness, waiting, and killing a whole container.

Executors run in their own session (``setsid``) so that an agent restart does not take them
down. A container is therefore "the executor's session plus its process tree": that is what
gets signalled on destroy, the way Mesos' Linux launcher kills a container's whole cgroup.
Liveness checks use the process start time from /proc so a recycled pid is never mistaken for
a recovered executor.
"""

from __future__ import annotations

import asyncio
import os
import signal
import threading
from dataclasses import dataclass


@dataclass(frozen=True)
class ProcessIdentity:
    """A pid plus its start time (clock ticks since boot): unique for the life of the host."""

    pid: int
    start_ticks: int

    def to_json(self) -> dict[str, int]:
        return {"pid": self.pid, "start_ticks": self.start_ticks}

    @staticmethod
    def from_json(document: dict[str, int]) -> ProcessIdentity:
        return ProcessIdentity(pid=int(document["pid"]), start_ticks=int(document["start_ticks"]))


@dataclass(frozen=True)
class _Stat:
    state: str
    ppid: int
    session: int
    start_ticks: int


def _read_stat(pid: int) -> _Stat | None:
    try:
        with open(f"/proc/{pid}/stat", encoding="utf-8", errors="replace") as handle:
            raw = handle.read()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return None
    # The command name is in parentheses and may itself contain spaces or ')'.
    fields = raw[raw.rfind(")") + 2 :].split()
    return _Stat(state=fields[0], ppid=int(fields[1]), session=int(fields[3]), start_ticks=int(fields[19]))


def identify(pid: int) -> ProcessIdentity | None:
    stat = _read_stat(pid)
    return None if stat is None else ProcessIdentity(pid=pid, start_ticks=stat.start_ticks)


def is_alive(identity: ProcessIdentity) -> bool:
    """True while the process runs; zombies and recycled pids count as gone."""
    stat = _read_stat(identity.pid)
    return stat is not None and stat.state not in ("Z", "X") and stat.start_ticks == identity.start_ticks


def _all_stats() -> dict[int, _Stat]:
    stats: dict[int, _Stat] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = _read_stat(int(entry))
            if stat is not None:
                stats[int(entry)] = stat
    return stats


def _environ_marks(pid: int, marker: bytes) -> bool:
    try:
        with open(f"/proc/{pid}/environ", "rb") as handle:
            return marker in handle.read().split(b"\0")
    except OSError:
        return False


def container_pids(leader: ProcessIdentity | None, sandbox: str) -> list[int]:
    """Live processes of a container, our stand-in for its cgroup.

    Members are the leader's session, the leader's descendants, and any process whose initial
    environment carries ``MESOS_DIRECTORY=<sandbox>`` (every process of the container inherits
    it, even the ones that started their own session and were orphaned when the executor died).
    """
    stats = _all_stats()
    marker = f"MESOS_DIRECTORY={sandbox}".encode()
    members = {pid for pid, stat in stats.items() if stat.state != "Z" and _environ_marks(pid, marker)}
    if leader is not None:
        members |= {pid for pid, stat in stats.items() if stat.session == leader.pid and stat.state != "Z"}
        leader_stat = stats.get(leader.pid)
        if leader_stat is not None and leader_stat.start_ticks == leader.start_ticks:
            members.add(leader.pid)
    children: dict[int, list[int]] = {}
    for pid, stat in stats.items():
        children.setdefault(stat.ppid, []).append(pid)
    pending = list(members)
    while pending:
        for child in children.get(pending.pop(), []):
            if child not in members and stats[child].state != "Z":
                members.add(child)
                pending.append(child)
    members.discard(os.getpid())
    return sorted(members)


def signal_container(leader: ProcessIdentity | None, sandbox: str, signum: int) -> list[int]:
    """Send ``signum`` to every process of the container; returns the pids signalled."""
    signalled = []
    for pid in container_pids(leader, sandbox):
        try:
            os.kill(pid, signum)
            signalled.append(pid)
        except (ProcessLookupError, PermissionError):
            continue
    return signalled


def kill_container(leader: ProcessIdentity | None, sandbox: str) -> list[int]:
    """SIGKILL the container; repeats while processes keep appearing (forks racing the kill)."""
    killed: list[int] = []
    for _ in range(10):
        round_killed = signal_container(leader, sandbox, signal.SIGKILL)
        if not round_killed:
            break
        killed += round_killed
    return killed


async def wait_child(pid: int) -> int:
    """Reap our own child and return its raw wait status (as waitpid gives it)."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[int] = loop.create_future()

    def reap() -> None:
        while True:
            try:
                _, status = os.waitpid(pid, 0)
            except ChildProcessError:
                status = -1
            except InterruptedError:
                continue
            break
        loop.call_soon_threadsafe(lambda: done.done() or done.set_result(status))

    threading.Thread(target=reap, name=f"reap-{pid}", daemon=True).start()
    return await done


async def wait_foreign(identity: ProcessIdentity, poll_interval: float = 0.25) -> None:
    """Wait for a process we did not start (a recovered executor); its status is unknowable."""
    while is_alive(identity):
        await asyncio.sleep(poll_interval)


def describe_wait_status(status: int) -> str:
    """stout's WSTRINGIFY: 'exited with status 1' / 'terminated with signal Killed'."""
    if status < 0:
        return "terminated with unknown status"
    if os.WIFEXITED(status):
        return f"exited with status {os.WEXITSTATUS(status)}"
    if os.WIFSIGNALED(status):
        signum = os.WTERMSIG(status)
        return f"terminated with signal {signal.strsignal(signum) or signum}"
    return f"wait status {status}"


def boot_id() -> str:
    try:
        with open("/proc/sys/kernel/random/boot_id", encoding="utf-8") as handle:
            return handle.read().strip()
    except OSError:
        return ""
