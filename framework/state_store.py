"""What the framework must remember across restarts, and the lock that keeps it single.

The state dir holds:
- `state.json`: framework id, the task records, the masters' and workers' hosts and the salt of
  the config fingerprints. Written atomically (temp file, fsync, rename, fsync of the directory),
  so a crash leaves either the old or the new state, never a torn one.
- `lock`: held with fcntl.flock for the life of the framework process; a second framework process
  for the same cluster (same state dir) refuses to start and names the holder's pid.
- `runtime.json`: how to reach the running process (pid, status URL, Mesos master), for the CLI's
  `framework status` and `framework stop`. Informational; never trusted for correctness.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import pathlib
import secrets
import tempfile
from typing import Any

from pydantic import BaseModel, Field, ValidationError

STATE_FILE = "state.json"
LOCK_FILE = "lock"
RUNTIME_FILE = "runtime.json"
STATE_FORMAT = 1


class TaskRecord(BaseModel):
    """One task the framework launched, as far as it knows."""

    task_id: str
    role: str
    slot: str
    hostname: str
    agent_id: str
    config_hash: str
    state: str
    launched_at: float
    state_since: float
    running_since: float | None = None
    kill_reason: str | None = None
    message: str = ""


class PersistedState(BaseModel):
    format: int = STATE_FORMAT
    framework_id: str | None = None
    mesos_master: str | None = None
    salt: str = Field(default_factory=lambda: secrets.token_hex(32))
    master_hosts: list[str | None] = Field(default_factory=list)
    worker_hosts: list[str] = Field(default_factory=list)
    tasks: dict[str, TaskRecord] = Field(default_factory=dict)

    def salt_bytes(self) -> bytes:
        return bytes.fromhex(self.salt)


class StateError(RuntimeError):
    """The state dir cannot be used; the message says why and what to do."""


class StateLockedError(StateError):
    pass


def _fsync_dir(directory: pathlib.Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: pathlib.Path, text: str, mode: int = 0o600) -> None:
    """Replace `path` with `text` so that readers and crashes see the old or the new content."""
    fd, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    temp = pathlib.Path(temp_name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp, mode)
        os.replace(temp, path)
        _fsync_dir(path.parent)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


class StateStore:
    """The framework's state dir. Use `lock()` before `load()`/`save()`."""

    def __init__(self, directory: pathlib.Path) -> None:
        self.directory = directory
        self._lock_fd: int | None = None

    @property
    def state_path(self) -> pathlib.Path:
        return self.directory / STATE_FILE

    @property
    def runtime_path(self) -> pathlib.Path:
        return self.directory / RUNTIME_FILE

    def lock(self) -> None:
        """Take the exclusive lock, or raise StateLockedError naming the process that holds it."""
        try:
            self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as error:
            raise StateError(f"cannot create the state dir {self.directory}: {error.strerror}") from None
        fd = os.open(self.directory / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode("ascii", "replace").strip() or "unknown"
            os.close(fd)
            raise StateLockedError(
                f"another framework process (pid {holder}) already runs for the state dir {self.directory}; "
                "stop it first (alluxio-mesos framework stop) or use another --state-dir"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
        self._lock_fd = fd

    def unlock(self) -> None:
        if self._lock_fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(self._lock_fd, 0)
            os.close(self._lock_fd)  # closing releases the flock
            self._lock_fd = None

    @property
    def locked(self) -> bool:
        return self._lock_fd is not None

    def holder_pid(self) -> int | None:
        """The pid of the process holding the lock, or None when nobody holds it."""
        path = self.directory / LOCK_FILE
        if not path.exists():
            return None
        fd = os.open(path, os.O_RDWR)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                text = os.pread(fd, 64, 0).decode("ascii", "replace").strip()
                return int(text) if text.isdigit() else None
            fcntl.flock(fd, fcntl.LOCK_UN)
            return None
        finally:
            os.close(fd)

    def _require_lock(self) -> None:
        if self._lock_fd is None:
            raise StateError("the state dir must be locked before its state is read or written")

    def load(self) -> PersistedState:
        """The saved state, or a fresh one (with a new salt) when nothing was saved yet."""
        self._require_lock()
        return read_state(self.directory) or PersistedState()

    def save(self, state: PersistedState) -> None:
        self._require_lock()
        atomic_write(self.state_path, state.model_dump_json(indent=1) + "\n")

    def write_runtime(self, info: dict[str, Any]) -> None:
        self._require_lock()
        atomic_write(self.runtime_path, json.dumps(info, indent=1, sort_keys=True) + "\n")

    def clear_runtime(self) -> None:
        self.runtime_path.unlink(missing_ok=True)


def read_state(directory: pathlib.Path) -> PersistedState | None:
    """Read `state.json` without the lock (the CLI's read-only views); None when absent."""
    path = directory / STATE_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    try:
        state = PersistedState.model_validate_json(text)
    except ValidationError as error:
        raise StateError(
            f"{path} is not a valid framework state ({error.error_count()} problem(s), first: "
            f"{error.errors()[0]['msg']}); move it away to start a new framework"
        ) from None
    if state.format != STATE_FORMAT:
        raise StateError(f"{path} has state format {state.format}; this version reads format {STATE_FORMAT}")
    return state


def read_runtime(directory: pathlib.Path) -> dict[str, Any] | None:
    try:
        data = json.loads((directory / RUNTIME_FILE).read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None
