"""What the framework must remember across restarts, and the lock that keeps it single.

The state dir holds:
- `state.json`: framework id, the task records, the masters' and workers' hosts and the salt of
  the config fingerprints. Written atomically (temp file, fsync, rename, fsync of the directory),
  so a crash leaves either the old or the new state, never a torn one.
- `state.journal`: task records changed since that snapshot (status updates), one JSON line each,
  appended and fsynced before the update is acknowledged. Rewriting the whole state for every
  status update made a 10,000-worker start quadratic (4 MB per update). Lines carry the snapshot's
  generation, so lines older than the snapshot are never replayed; a line torn by a crash was
  never acknowledged and is dropped. Anything structural (launches, removals, hosts, framework id)
  writes a new snapshot, which starts a new journal.
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
from collections.abc import Iterable, Sequence
from typing import Any

from pydantic import BaseModel, Field, ValidationError

STATE_FILE = "state.json"
JOURNAL_FILE = "state.journal"
# A snapshot replaces the journal once the journal holds as many lines as there are tasks.
JOURNAL_MIN_LINES = 1000
JOURNAL_FORCE_SNAPSHOT = 1 << 62
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
    generation: int = 0  # of the snapshot; journal lines name the one they follow

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
        self._journal_lines = 0

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

    @property
    def journal_path(self) -> pathlib.Path:
        return self.directory / JOURNAL_FILE

    def save(self, state: PersistedState) -> None:
        """Write a new snapshot of the whole state (and so start a new, empty journal)."""
        self._require_lock()
        generation = state.generation + 1
        snapshot = state.model_copy(update={"generation": generation})
        atomic_write(self.state_path, snapshot.model_dump_json(indent=1) + "\n")
        state.generation = generation
        self._journal_lines = 0
        self.journal_path.unlink(missing_ok=True)  # its lines name an older generation anyway

    def save_tasks(
        self, state: PersistedState, task_ids: Iterable[str], worker_hosts: Sequence[str] = ()
    ) -> None:
        """Persist these tasks' records (changed or new) and these new worker hosts only:
        O(changed), one fsync. Falls back to a snapshot when there is none yet or the journal has
        grown as large as the state. Removing a task or a host always takes a snapshot."""
        self._require_lock()
        records = [state.tasks[t] for t in sorted(task_ids) if t in state.tasks]
        if not records and not worker_hosts:
            return
        if state.generation == 0 or self._journal_lines + len(records) + len(worker_hosts) > max(
            JOURNAL_MIN_LINES, len(state.tasks) + len(state.worker_hosts)
        ):
            self.save(state)
            return
        lines = [json.dumps({"generation": state.generation, "worker_host": host}) for host in worker_hosts]
        # pydantic's own JSON encoder: a third of the cost of model_dump + json.dumps, same document.
        lines.extend(
            f'{{"generation": {state.generation:d}, "task": {r.model_dump_json()}}}' for r in records
        )
        data = ("\n".join(lines) + "\n").encode("utf-8")
        created = not self.journal_path.exists()
        try:
            fd = os.open(self.journal_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            try:
                if os.write(fd, data) != len(data):
                    raise OSError(f"short write to {self.journal_path} (disk full?)")
                os.fsync(fd)
            finally:
                os.close(fd)
            if created:
                _fsync_dir(self.directory)
        except OSError:
            # A torn line would hide every line after it: the next save writes a snapshot.
            self._journal_lines = JOURNAL_FORCE_SNAPSHOT
            raise
        self._journal_lines += len(lines)

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
    _replay_journal(directory / JOURNAL_FILE, state)
    return state


def _replay_journal(path: pathlib.Path, state: PersistedState) -> None:
    """Apply the task records and worker hosts journaled after the snapshot `state` was read
    from. Within one generation tasks and hosts are only added or changed: removals always
    write a new snapshot, which starts a new generation."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return
    known_hosts = set(state.worker_hosts)
    for line in text.splitlines(keepends=True):
        if not line.endswith("\n"):
            break  # torn by a crash while appending: never acknowledged
        try:
            entry = json.loads(line)
            if "worker_host" in entry:
                host = entry["worker_host"]
                if not isinstance(host, str) or not host:
                    break
                record = None
            else:
                record = TaskRecord.model_validate(entry["task"])
        except (ValueError, KeyError, TypeError, ValidationError):
            break
        if entry.get("generation") != state.generation:
            continue
        if record is not None:
            state.tasks[record.task_id] = record
        elif host not in known_hosts:
            state.worker_hosts.append(host)
            known_hosts.add(host)


def read_runtime(directory: pathlib.Path) -> dict[str, Any] | None:
    try:
        data = json.loads((directory / RUNTIME_FILE).read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None
