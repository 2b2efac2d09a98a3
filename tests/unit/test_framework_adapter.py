"""The pymesos adapter: state on disk before a launch leaves, failures turned into relaunches,
offers never left hanging, no task plan in the logs. The driver is a recorder standing in for
pymesos's MesosSchedulerDriver (same method names and arguments)."""

from __future__ import annotations

import logging
import pathlib
from collections.abc import Iterator
from typing import Any

import pytest

from framework.mesos_scheduler import AlluxioScheduler
from framework.scheduler_core import SchedulerCore
from framework.state_store import StateStore, read_state
from tests.unit.test_framework_core import FakeClock
from tests.unit.test_framework_events import FRAMEWORK_ID, make_spec, offer


class RecordingDriver:
    def __init__(self, store: StateStore) -> None:
        self.store = store
        self.connected = True
        self.framework_id = FRAMEWORK_ID
        self.calls: list[tuple[str, Any]] = []
        self.fail_launch: str | None = None
        self.saved_at_launch: list[str] = []

    def launchTasks(self, offer_ids: Any, tasks: Any, filters: Any = None) -> None:
        saved = read_state(self.store.directory)
        self.saved_at_launch = sorted(saved.tasks) if saved else []
        self.calls.append(("launch", [t["task_id"]["value"] for t in tasks]))
        if self.fail_launch:
            raise RuntimeError(self.fail_launch)

    def declineOffer(self, offer_ids: Any, filters: Any = None) -> None:
        self.calls.append(("decline", [o["value"] for o in offer_ids]))

    def killTask(self, task_id: Any) -> None:
        self.calls.append(("kill", task_id["value"]))

    def reconcileTasks(self, tasks: Any) -> None:
        self.calls.append(("reconcile", [t["task_id"]["value"] for t in tasks]))

    def reviveOffers(self) -> None:
        self.calls.append(("revive", None))

    def suppressOffers(self) -> None:
        self.calls.append(("suppress", None))


@pytest.fixture
def store(tmp_path: pathlib.Path) -> Iterator[StateStore]:
    state_store = StateStore(tmp_path / "state")
    state_store.lock()
    try:
        yield state_store
    finally:
        state_store.unlock()


@pytest.fixture
def scheduler(store: StateStore) -> AlluxioScheduler:
    spec = make_spec(**{"aws.secretKey": "plan-secret-value"})
    core = SchedulerCore(spec, store.load(), FakeClock())
    adapter = AlluxioScheduler(core, store, on_fatal=lambda message: None)
    adapter.driver = RecordingDriver(store)
    adapter.registered(adapter.driver, {"value": FRAMEWORK_ID}, {"hostname": "m", "port": 5050})
    return adapter


def test_the_task_record_is_on_disk_before_the_launch_leaves(scheduler: AlluxioScheduler) -> None:
    scheduler.resourceOffers(scheduler.driver, [offer("host-1")])
    (launched,) = [ids for kind, ids in scheduler.driver.calls if kind == "launch"]
    assert scheduler.driver.saved_at_launch == launched


def test_a_failed_launch_is_forgotten_and_its_body_not_logged(
    scheduler: AlluxioScheduler, caplog: pytest.LogCaptureFixture
) -> None:
    scheduler.driver.fail_launch = 'Failed to send request 400: b\'invalid\'\n{"data": "plan-secret-value"}'
    with caplog.at_level(logging.INFO):
        scheduler.resourceOffers(scheduler.driver, [offer("host-1")])
    assert "Failed to send request 400" in caplog.text
    assert "plan-secret-value" not in caplog.text
    assert scheduler.core.state.tasks == {}
    saved = read_state(scheduler.store.directory)
    assert saved is not None
    assert saved.tasks == {}


def test_no_launch_while_disconnected(scheduler: AlluxioScheduler) -> None:
    scheduler.driver.connected = False
    scheduler.resourceOffers(scheduler.driver, [offer("host-1")])
    assert [kind for kind, _ in scheduler.driver.calls if kind == "launch"] == []
    assert scheduler.core.state.tasks == {}


def test_offers_that_cannot_be_handled_are_declined(scheduler: AlluxioScheduler) -> None:
    broken = offer("host-1")
    broken["resources"] = [{"name": "cpus", "type": "SCALAR"}]  # no value
    scheduler.resourceOffers(scheduler.driver, [broken])
    assert ("decline", [broken["id"]["value"]]) in scheduler.driver.calls


def test_status_updates_are_saved_before_they_are_acknowledged(scheduler: AlluxioScheduler) -> None:
    scheduler.resourceOffers(scheduler.driver, [offer("host-1")])
    (task_id,) = scheduler.core.state.tasks
    scheduler.statusUpdate(scheduler.driver, {"task_id": {"value": task_id}, "state": "TASK_RUNNING"})
    # pymesos acknowledges when statusUpdate returns; by then the state is on disk.
    saved = read_state(scheduler.store.directory)
    assert saved is not None
    assert saved.tasks[task_id].state == "TASK_RUNNING"


def test_an_error_event_is_fatal(store: StateStore) -> None:
    messages: list[str] = []
    core = SchedulerCore(make_spec(), store.load(), FakeClock())
    adapter = AlluxioScheduler(core, store, on_fatal=messages.append)
    adapter.error(None, "Framework has been removed")
    assert messages == ["Framework has been removed"]
