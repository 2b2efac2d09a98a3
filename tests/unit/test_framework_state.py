"""The state dir: atomic saves, the single-process lock, and what a restart reads back."""

from __future__ import annotations

import os
import pathlib
import stat
import subprocess
import sys
import textwrap
from collections.abc import Iterator

import pytest

from framework.state_store import (
    STATE_FILE,
    PersistedState,
    StateError,
    StateLockedError,
    StateStore,
    TaskRecord,
    read_state,
)

REPO = pathlib.Path(__file__).resolve().parents[2]


def a_state() -> PersistedState:
    record = TaskRecord(
        task_id="alluxio-worker-h1-1234abcd",
        role="worker",
        slot="worker@h1",
        hostname="h1",
        agent_id="S1",
        config_hash="0123456789abcdef0123",
        state="TASK_RUNNING",
        launched_at=1.0,
        state_since=2.0,
        running_since=2.0,
    )
    return PersistedState(
        framework_id="fw-0000",
        mesos_master="m:5050",
        master_hosts=["h1"],
        worker_hosts=["h1"],
        tasks={record.task_id: record},
    )


@pytest.fixture
def store(tmp_path: pathlib.Path) -> Iterator[StateStore]:
    state_store = StateStore(tmp_path / "state")
    state_store.lock()
    try:
        yield state_store
    finally:
        state_store.unlock()


def test_saved_state_reads_back_identically(store: StateStore) -> None:
    state = a_state()
    store.save(state)
    assert store.load() == state
    assert read_state(store.directory) == state
    assert stat.S_IMODE(store.state_path.stat().st_mode) == 0o600
    assert stat.S_IMODE(store.directory.stat().st_mode) == 0o700


def test_a_fresh_state_gets_a_random_salt(store: StateStore) -> None:
    first, second = store.load(), PersistedState()
    assert first.framework_id is None
    assert len(first.salt_bytes()) == 32
    assert first.salt != second.salt


def test_a_failed_save_keeps_the_old_state_and_leaves_no_temp_file(
    store: StateStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.save(a_state())
    before = store.state_path.read_bytes()

    def crash(*_: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", crash)
    changed = a_state()
    changed.framework_id = "another"
    with pytest.raises(OSError, match="No space left"):
        store.save(changed)
    assert store.state_path.read_bytes() == before
    assert sorted(p.name for p in store.directory.iterdir()) == ["lock", STATE_FILE]


def test_state_needs_the_lock(tmp_path: pathlib.Path) -> None:
    unlocked = StateStore(tmp_path / "state")
    with pytest.raises(StateError, match="must be locked"):
        unlocked.save(a_state())
    with pytest.raises(StateError, match="must be locked"):
        unlocked.load()


def test_a_corrupt_state_file_is_reported_not_ignored(store: StateStore) -> None:
    store.state_path.write_text('{"framework_id": 5, "tasks": []}', encoding="utf-8")
    with pytest.raises(StateError, match="move it away"):
        store.load()


def test_second_lock_in_the_same_process_is_refused(store: StateStore) -> None:
    other = StateStore(store.directory)
    with pytest.raises(StateLockedError, match=f"pid {os.getpid()}"):
        other.lock()
    assert store.holder_pid() == os.getpid()


def test_another_process_holding_the_lock_is_named_and_release_frees_it(tmp_path: pathlib.Path) -> None:
    directory = tmp_path / "state"
    holder_code = textwrap.dedent(
        f"""
        import pathlib, sys, time
        sys.path.insert(0, {str(REPO)!r})
        from framework.state_store import StateStore
        store = StateStore(pathlib.Path({str(directory)!r}))
        store.lock()
        print("locked", flush=True)
        sys.stdin.readline()
        """
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", holder_code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "locked"
        contender = StateStore(directory)
        with pytest.raises(StateLockedError) as caught:
            contender.lock()
        assert f"pid {holder.pid}" in str(caught.value)
        assert "alluxio-mesos framework stop" in str(caught.value)
        assert contender.holder_pid() == holder.pid
    finally:
        holder.kill()
        holder.wait(timeout=10)
    # The kernel drops a dead process's flock: the next framework may start.
    contender = StateStore(directory)
    assert contender.holder_pid() is None
    contender.lock()
    contender.unlock()


def test_runtime_file_is_written_and_cleared(store: StateStore) -> None:
    store.write_runtime({"pid": 42, "status_url": "http://127.0.0.1:1/status.json"})
    assert "42" in store.runtime_path.read_text(encoding="utf-8")
    store.clear_runtime()
    assert not store.runtime_path.exists()


TASK_ID = "alluxio-worker-h1-1234abcd"


def _journaled_update(store: StateStore, state: PersistedState, new_state: str) -> None:
    state.tasks[TASK_ID] = state.tasks[TASK_ID].model_copy(update={"state": new_state})
    store.save_tasks(state, [TASK_ID])


def test_a_journaled_status_update_survives_a_restart_without_a_new_snapshot(store: StateStore) -> None:
    state = a_state()
    store.save(state)
    snapshot_before = (store.directory / STATE_FILE).read_bytes()
    _journaled_update(store, state, "TASK_KILLING")
    assert (store.directory / STATE_FILE).read_bytes() == snapshot_before
    assert store.journal_path.exists()
    restored = read_state(store.directory)
    assert restored is not None
    assert restored.tasks[TASK_ID].state == "TASK_KILLING"


def test_a_torn_last_journal_line_is_dropped_and_earlier_lines_kept(store: StateStore) -> None:
    state = a_state()
    store.save(state)
    _journaled_update(store, state, "TASK_KILLING")
    with store.journal_path.open("a", encoding="utf-8") as journal:
        journal.write('{"generation": 1, "task": {"task_id": "' + TASK_ID)  # crash mid-append
    restored = read_state(store.directory)
    assert restored is not None
    assert restored.tasks[TASK_ID].state == "TASK_KILLING"


def test_journal_lines_of_an_older_snapshot_are_not_replayed(store: StateStore) -> None:
    state = a_state()
    store.save(state)
    _journaled_update(store, state, "TASK_KILLING")
    stale_journal = store.journal_path.read_text(encoding="utf-8")
    state.tasks[TASK_ID] = state.tasks[TASK_ID].model_copy(update={"state": "TASK_FAILED"})
    store.save(state)  # a new snapshot: generation 2, journal restarted
    assert not store.journal_path.exists()
    store.journal_path.write_text(stale_journal, encoding="utf-8")  # as if the unlink had been lost
    restored = read_state(store.directory)
    assert restored is not None
    assert restored.generation == 2
    assert restored.tasks[TASK_ID].state == "TASK_FAILED"


def test_the_first_save_of_tasks_writes_a_snapshot_not_a_journal(store: StateStore) -> None:
    state = a_state()
    _journaled_update(store, state, "TASK_STAGING")
    assert state.generation == 1
    assert not store.journal_path.exists()
    restored = read_state(store.directory)
    assert restored is not None
    assert restored.tasks[TASK_ID].state == "TASK_STAGING"


def test_new_tasks_and_worker_hosts_are_journaled_in_order_without_a_snapshot(store: StateStore) -> None:
    state = a_state()
    store.save(state)
    snapshot_before = (store.directory / STATE_FILE).read_bytes()
    added = []
    for host in ("h3", "h2", "h4"):
        record = state.tasks[TASK_ID].model_copy(
            update={"task_id": f"alluxio-worker-{host}-0000", "slot": f"worker@{host}", "hostname": host}
        )
        state.tasks[record.task_id] = record
        state.worker_hosts.append(host)
        added.append(record.task_id)
        store.save_tasks(state, [record.task_id], [host])
    assert (store.directory / STATE_FILE).read_bytes() == snapshot_before
    restored = read_state(store.directory)
    assert restored is not None
    assert restored.worker_hosts == ["h1", "h3", "h2", "h4"]
    assert sorted(restored.tasks) == sorted([TASK_ID, *added])
    assert restored.tasks[added[1]].hostname == "h2"


def test_a_removed_worker_host_stays_removed_after_a_restart(store: StateStore) -> None:
    state = a_state()
    store.save(state)
    state.worker_hosts.append("h2")
    store.save_tasks(state, [], ["h2"])
    state.worker_hosts.remove("h2")
    store.save(state)  # removals take a snapshot: the journal line above belongs to the old one
    restored = read_state(store.directory)
    assert restored is not None
    assert restored.worker_hosts == ["h1"]
