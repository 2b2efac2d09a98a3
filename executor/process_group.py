"""Start a server process in its own process group and stop the whole group.

The child gets:
- its own session and process group (``setsid``), so signals reach the JVM and anything it forks,
  and the agent's or pymesos' kill of the executor's group does not hit it first;
- an unprivileged user when the executor is root;
- ``PR_SET_PDEATHSIG=SIGKILL``, so it dies with the executor. The kernel ties this to the thread
  that forked, so spawn from a thread that outlives the child (the executor's main thread).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import pwd
import signal
import subprocess
import time
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence

_PR_SET_PDEATHSIG = 1
DEFAULT_UNPRIVILEGED_USER = "nobody"


class ProcessGroupError(RuntimeError):
    """The server process could not be started as asked."""


@dataclass(frozen=True)
class RunAs:
    """The identity the server runs under."""

    name: str
    uid: int
    gid: int
    home: str


def resolve_run_as(requested: str) -> Optional[RunAs]:
    """The user to switch to, or None to keep the executor's own identity.

    Root executors never run the JVM as root: ``requested`` or ``nobody``. A non-root executor
    cannot switch users, so it must be asked for itself (or nothing).
    """
    if os.geteuid() != 0:
        me = pwd.getpwuid(os.geteuid()).pw_name
        if requested and requested != me:
            raise ProcessGroupError(
                "run_as_user %r: the executor runs as %r without root, so it cannot switch users; "
                "run the task as %r (FrameworkInfo.user) or leave run_as_user empty"
                % (requested, me, requested)
            )
        return None
    name = requested or DEFAULT_UNPRIVILEGED_USER
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        entry = _create_system_user(name)
    if entry.pw_uid == 0:
        raise ProcessGroupError("run_as_user %r has uid 0; the JVM must run unprivileged" % name)
    return RunAs(name=name, uid=entry.pw_uid, gid=entry.pw_gid, home=entry.pw_dir or "/")


def _create_system_user(name: str) -> pwd.struct_passwd:
    useradd = "/usr/sbin/useradd"
    if not os.path.exists(useradd):
        raise ProcessGroupError(
            "run_as_user %r does not exist on this agent and %s is missing to create it; "
            "create the user or set run_as_user to an existing unprivileged user" % (name, useradd)
        )
    result = subprocess.run(
        [
            useradd,
            "--system",
            "--no-create-home",
            "--home-dir",
            "/nonexistent",
            "--shell",
            "/usr/sbin/nologin",
            name,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        check=False,
    )
    try:
        return pwd.getpwnam(name)
    except KeyError:
        raise ProcessGroupError(
            "run_as_user %r does not exist and useradd failed (status %d): %s"
            % (name, result.returncode, result.stdout.decode("utf-8", "replace").strip())
        ) from None


def _pdeathsig_preexec(idle_priority: bool = False) -> Callable[[], None]:
    # Resolved before fork: the child must not load libraries (other threads may hold locks).
    prctl = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True).prctl
    parent = os.getpid()
    idle = os.sched_param(0) if idle_priority else None

    def preexec() -> None:
        if idle is not None:
            # SCHED_IDLE: it runs only on CPU that no other thread wants; the JVM's threads
            # inherit it. Any user may lower its own priority this way.
            os.sched_setscheduler(0, os.SCHED_IDLE, idle)
        prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        # The executor may have died between fork and prctl: then nobody would kill us later.
        if os.getppid() != parent:
            os.kill(os.getpid(), signal.SIGKILL)

    return preexec


def describe_exit(returncode: int) -> str:
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = "signal %d" % -returncode
        return "killed by %s" % name
    return "exit status %d" % returncode


class ServerProcess:
    """A running child that leads its own process group (pid == pgid)."""

    def __init__(self, popen: "subprocess.Popen[bytes]") -> None:
        self._popen = popen

    @property
    def pid(self) -> int:
        return self._popen.pid

    @classmethod
    def spawn(
        cls,
        argv: Sequence[str],
        env: Dict[str, str],
        cwd: str,
        output_path: str,
        run_as: Optional[RunAs],
        *,
        idle_priority: bool = False,
    ) -> ServerProcess:
        """Fork and exec; returns once exec succeeded (Popen reports exec failures as OSError).
        ``idle_priority`` runs it under SCHED_IDLE (background work that must not slow anyone)."""
        out = os.open(output_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        kwargs = {}  # type: Dict[str, object]
        if run_as is not None:
            kwargs = {"user": run_as.uid, "group": run_as.gid, "extra_groups": []}
        try:
            popen = subprocess.Popen(
                list(argv),
                env=env,
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=out,
                close_fds=True,
                start_new_session=True,
                # Only a pre-resolved prctl runs between fork and exec; no imports, no locks.
                preexec_fn=_pdeathsig_preexec(idle_priority),  # noqa: PLW1509
                **kwargs,  # type: ignore[arg-type]
            )
        except OSError as exc:
            raise ProcessGroupError("cannot start %s: %s" % (argv[0], exc)) from exc
        finally:
            os.close(out)
        return cls(popen)

    def poll(self) -> Optional[int]:
        return self._popen.poll()

    def wait(self, timeout: Optional[float] = None) -> Optional[int]:
        try:
            return self._popen.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def signal_group(self, sig: int) -> bool:
        """Signal every process in the group; False if the group is already gone."""
        try:
            os.killpg(self._popen.pid, sig)
            return True
        except ProcessLookupError:
            return False

    def stop(self, grace_secs: float, on_step: Callable[[str], None]) -> int:
        """SIGTERM the group, wait up to ``grace_secs``, then SIGKILL it. Returns the leader's code.

        ``on_step`` hears each action ("SIGTERM", "SIGKILL", "exited ...") in order.
        """
        code = self.poll()
        if code is None:
            self.signal_group(signal.SIGTERM)
            on_step("SIGTERM")
            code = self.wait(max(0.0, grace_secs))
        if code is None:
            on_step("SIGKILL")
        # Also after a clean leader exit: children it forked may still hold the group (and files
        # on the ramdisk), and the group must be empty before the ramdisk is unmounted.
        self.signal_group(signal.SIGKILL)
        code = self._popen.wait()
        _wait_group_gone(self._popen.pid, timeout=5.0)
        on_step("exited (%s)" % describe_exit(code))
        return code


def _wait_group_gone(pgid: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except (ProcessLookupError, PermissionError):
            return
        # Zombies still count for killpg until their new parent reaps them; they hold nothing.
        if not group_members(pgid):
            return
        time.sleep(0.01)


def group_members(pgid: int) -> List[int]:
    """Live (non-zombie) pids whose process group is ``pgid``, from /proc."""
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        stat = read_proc_stat(int(entry))
        if stat is not None and stat[1] != "Z" and stat[2] == pgid:
            members.append(int(entry))
    return members


def read_proc_stat(pid: int) -> Optional[tuple]:
    """(start_time_ticks, state, pgid) of a process, or None if it does not exist."""
    try:
        with open("/proc/%d/stat" % pid, "rb") as handle:
            raw = handle.read().decode("ascii", "replace")
    except (FileNotFoundError, ProcessLookupError):
        return None
    # The command name is in parentheses and may itself contain spaces or ')'.
    fields = raw[raw.rindex(")") + 2 :].split()
    return (fields[19], fields[0], int(fields[2]))
