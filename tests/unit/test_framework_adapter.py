"""The pymesos adapter: state on disk before a launch or an acknowledgement leaves, failures turned
into relaunches, offers never left hanging, no task plan in the logs. Calls go through the real
call sender to a recording HTTP endpoint; the driver only says where the subscription is."""

from __future__ import annotations

import logging
import pathlib
import re
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from framework.mesos_calls import Call, CallSender
from framework.mesos_scheduler import AlluxioScheduler
from framework.scheduler_core import OFFERS_PER_SLICE, SchedulerCore
from framework.state_store import StateStore, read_state
from tests.unit.recording_master import Answer, RecordingMaster, recording_master
from tests.unit.test_framework_core import FakeClock
from tests.unit.test_framework_events import FRAMEWORK_ID, make_spec, offer


class Driver:
    """What the adapter reads from pymesos's driver: where the subscription is."""

    def __init__(self, master: RecordingMaster) -> None:
        self.master = master.address
        self.stream_id = "stream-1"
        self.framework_id = FRAMEWORK_ID

    @property
    def connected(self) -> bool:
        return self.stream_id is not None


@pytest.fixture
def store(tmp_path: pathlib.Path) -> Iterator[StateStore]:
    state_store = StateStore(tmp_path / "state")
    state_store.lock()
    try:
        yield state_store
    finally:
        state_store.unlock()


@pytest.fixture
def master(store: StateStore) -> Iterator[RecordingMaster]:
    with recording_master() as server:
        # what was on disk when each call reached the master
        server.observe = lambda call: read_state(store.directory)
        yield server


@pytest.fixture
def scheduler(store: StateStore, master: RecordingMaster) -> Iterator[AlluxioScheduler]:
    spec = make_spec(**{"aws.secretKey": "plan-secret-value"})
    core = SchedulerCore(spec, store.load(), FakeClock())
    adapter = AlluxioScheduler(core, store, on_fatal=lambda message: None)
    adapter.driver = Driver(master)
    adapter.calls = CallSender(adapter.endpoint, adapter.before_batch)
    adapter.calls.start()
    try:
        adapter.registered(adapter.driver, {"value": FRAMEWORK_ID}, {"hostname": "m", "port": 5050})
        yield adapter
    finally:
        adapter.calls.stop()


def settle(scheduler: AlluxioScheduler) -> None:
    assert scheduler.calls is not None
    assert scheduler.calls.wait_idle(10)


def launched_ids(call: dict[str, Any]) -> list[str]:
    return [
        info["task_id"]["value"]
        for operation in call["accept"]["operations"]
        for info in operation["launch"]["task_infos"]
    ]


def test_the_task_record_is_on_disk_before_the_launch_leaves(
    scheduler: AlluxioScheduler, master: RecordingMaster
) -> None:
    scheduler.resourceOffers(scheduler.driver, [offer("host-1")])
    settle(scheduler)
    (accept,) = [r for r in master.received if r.call["type"] == "ACCEPT"]
    assert accept.call["framework_id"] == {"value": FRAMEWORK_ID}
    assert accept.observed is not None
    assert sorted(accept.observed.tasks) == launched_ids(accept.call)


def test_a_refused_launch_is_forgotten_its_offer_declined_and_its_body_not_logged(
    scheduler: AlluxioScheduler, master: RecordingMaster, caplog: pytest.LogCaptureFixture
) -> None:
    master.answers["ACCEPT"] = Answer(400, b"Failed to validate\n" + b'{"data": "plan-secret-value"}')
    with caplog.at_level(logging.INFO):
        scheduler.resourceOffers(scheduler.driver, [offer("host-1")])
        settle(scheduler)
        settle(scheduler)  # the decline that follows
    assert "HTTP 400: Failed to validate" in caplog.text
    assert "plan-secret-value" not in caplog.text
    assert scheduler.core.state.tasks == {}
    (accept,) = master.calls("ACCEPT")
    declined = [o["value"] for call in master.calls("DECLINE") for o in call["decline"]["offer_ids"]]
    assert accept["accept"]["offer_ids"][0]["value"] in declined
    scheduler.tick()
    saved = read_state(scheduler.store.directory)
    assert saved is not None
    assert saved.tasks == {}


def test_no_launch_while_disconnected(scheduler: AlluxioScheduler, master: RecordingMaster) -> None:
    scheduler.driver.stream_id = None
    scheduler.resourceOffers(scheduler.driver, [offer("host-1")])
    settle(scheduler)
    assert master.calls("ACCEPT") == []
    assert scheduler.core.state.tasks == {}


def test_offers_that_cannot_be_handled_are_declined(
    scheduler: AlluxioScheduler, master: RecordingMaster
) -> None:
    broken = offer("host-1")
    broken["resources"] = [{"name": "cpus", "type": "SCALAR"}]  # no value
    scheduler.resourceOffers(scheduler.driver, [broken])
    settle(scheduler)
    declined = [o["value"] for call in master.calls("DECLINE") for o in call["decline"]["offer_ids"]]
    assert broken["id"]["value"] in declined


def test_status_updates_are_on_disk_before_they_are_acknowledged(
    scheduler: AlluxioScheduler, master: RecordingMaster
) -> None:
    scheduler.resourceOffers(scheduler.driver, [offer("host-1")])
    settle(scheduler)
    (task_id,) = scheduler.core.state.tasks
    update = {
        "task_id": {"value": task_id},
        "agent_id": {"value": "S1"},
        "state": "TASK_RUNNING",
        "uuid": "c29tZS11dWlk",
    }
    scheduler.statusUpdate(scheduler.driver, update)
    settle(scheduler)
    (ack,) = [r for r in master.received if r.call["type"] == "ACKNOWLEDGE"]
    assert ack.call["acknowledge"] == {
        "agent_id": {"value": "S1"},
        "task_id": {"value": task_id},
        "uuid": "c29tZS11dWlk",
    }
    assert ack.observed.tasks[task_id].state == "TASK_RUNNING"


def test_answers_to_reconciliation_are_not_acknowledged_but_saved(
    scheduler: AlluxioScheduler, master: RecordingMaster
) -> None:
    scheduler.resourceOffers(scheduler.driver, [offer("host-1")])
    settle(scheduler)
    (task_id,) = scheduler.core.state.tasks
    scheduler.statusUpdate(scheduler.driver, {"task_id": {"value": task_id}, "state": "TASK_RUNNING"})
    scheduler.tick()
    settle(scheduler)
    assert master.calls("ACKNOWLEDGE") == []
    saved = read_state(scheduler.store.directory)
    assert saved is not None
    assert saved.tasks[task_id].state == "TASK_RUNNING"


def test_a_big_offers_event_is_decided_in_slices_and_every_launch_is_sent(
    scheduler: AlluxioScheduler, master: RecordingMaster, caplog: pytest.LogCaptureFixture
) -> None:
    master.observe = None  # reading a 1,000-task state file per call would dominate
    hosts = [f"host-{i}" for i in range(OFFERS_PER_SLICE * 2 + 7)]
    scheduler.resourceOffers(scheduler.driver, [offer(hosts[0])])  # the master first
    settle(scheduler)
    (master_task,) = scheduler.core.state.tasks
    scheduler.statusUpdate(scheduler.driver, {"task_id": {"value": master_task}, "state": "TASK_RUNNING"})
    with caplog.at_level(logging.INFO, logger="framework.mesos"):
        scheduler.resourceOffers(scheduler.driver, [offer(h) for h in hosts])
        settle(scheduler)
    workers = {
        info["task_id"]["value"]
        for call in master.calls("ACCEPT")
        for operation in call["accept"]["operations"]
        for info in operation["launch"]["task_infos"]
    } - {master_task}
    assert len(workers) == len(hosts)
    # one log line per wave of launches the master answered; together they count every worker
    sent = [re.match(r"sent (\d+) launch\(es\) to Mesos in ", r.getMessage()) for r in caplog.records]
    assert sum(int(m.group(1)) for m in sent if m) == len(hosts)
    # decided in slices (each releases the lock, so the sender can start on the first launches)
    assert scheduler.core.counters["offer_events"] == 1 + 3


def test_an_error_event_is_fatal(store: StateStore) -> None:
    messages: list[str] = []
    core = SchedulerCore(make_spec(), store.load(), FakeClock())
    adapter = AlluxioScheduler(core, store, on_fatal=messages.append)
    adapter.error(None, "Framework has been removed")
    assert messages == ["Framework has been removed"]


class SubmittedCalls:
    """Stands in for the call sender: keeps what the scheduler submits."""

    def __init__(self) -> None:
        self.calls: list[Call] = []

    def submit(self, call: Call) -> None:
        self.calls.append(call)

    def defer_background(self, seconds: float) -> None:
        pass

    def release_background(self) -> None:
        pass


def _returns_within(seconds: float, function: Callable[[], bool]) -> bool | None:
    """What `function` returned, or None if it was still running after `seconds`."""
    result: list[bool] = []
    thread = threading.Thread(target=lambda: result.append(function()), daemon=True)
    thread.start()
    thread.join(seconds)
    return result[0] if result else None


def test_a_batch_waits_for_the_scheduler_lock_only_when_its_state_is_not_saved_yet(
    store: StateStore, master: RecordingMaster
) -> None:
    core = SchedulerCore(make_spec(), store.load(), FakeClock())
    adapter = AlluxioScheduler(core, store, on_fatal=lambda message: None)
    adapter.driver = Driver(master)
    submitted = SubmittedCalls()
    adapter.calls = submitted  # type: ignore[assignment]
    adapter.registered(adapter.driver, {"value": FRAMEWORK_ID}, {"hostname": "m", "port": 5050})
    adapter.resourceOffers(adapter.driver, [offer("host-1")])
    (accept,) = [c for c in submitted.calls if c.kind == "ACCEPT"]
    (task_id,) = core.state.tasks
    saved = read_state(store.directory)
    assert saved is not None
    assert task_id in saved.tasks  # saved together with the decision

    held, release = threading.Event(), threading.Event()

    def hold_the_lock() -> None:
        with adapter.lock:
            held.set()
            release.wait(10)

    holder = threading.Thread(target=hold_the_lock, daemon=True)
    try:
        adapter.statusUpdate(
            adapter.driver,
            {
                "task_id": {"value": task_id},
                "agent_id": {"value": "S1"},
                "state": "TASK_RUNNING",
                "uuid": "dQ==",
            },
        )
        (ack,) = [c for c in submitted.calls if c.kind == "ACKNOWLEDGE"]
        holder.start()
        assert held.wait(5)
        assert _returns_within(2, lambda: adapter.before_batch([accept])) is True
        assert _returns_within(0.5, lambda: adapter.before_batch([ack])) is None  # must save first
    finally:
        release.set()
        holder.join(5)
    assert _returns_within(5, lambda: adapter.before_batch([ack])) is True
    saved = read_state(store.directory)
    assert saved is not None
    assert saved.tasks[task_id].state == "TASK_RUNNING"
