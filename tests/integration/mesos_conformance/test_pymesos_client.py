"""The unmodified pymesos scheduler driver against the stand-in master (simulated agents)."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from pymesos import MesosSchedulerDriver, Scheduler

from tests.mesos_fixtures import MasterProcess

pytestmark = pytest.mark.integration


class RecordingScheduler(Scheduler):  # type: ignore[misc]
    def __init__(self) -> None:
        self.registered_with: list[Any] = []
        self.updates: list[dict[str, Any]] = []
        self.errors: list[str] = []
        self.launched: list[str] = []
        self.finished = threading.Event()
        self.lock = threading.Lock()

    def registered(self, driver: Any, framework_id: Any, master_info: Any) -> None:
        self.registered_with.append((framework_id, master_info))

    def resourceOffers(self, driver: Any, offers: list[Any]) -> None:
        for offer in offers:
            with self.lock:
                if len(self.launched) >= 2:
                    driver.declineOffer(offer["id"], filters={"refuse_seconds": 60})
                    continue
                task_id = f"pm-{len(self.launched)}"
                self.launched.append(task_id)
            task = {
                "task_id": {"value": task_id},
                "agent_id": offer["agent_id"],
                "name": task_id,
                "resources": [
                    {"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.5}},
                    {"name": "mem", "type": "SCALAR", "scalar": {"value": 64}},
                ],
                "command": {"value": "sleep 0.3"},
            }
            driver.launchTasks(offer["id"], [task])

    def statusUpdate(self, driver: Any, status: Any) -> None:
        with self.lock:
            self.updates.append(dict(status))
            finished = {u["task_id"]["value"] for u in self.updates if u["state"] == "TASK_FINISHED"}
        if len(finished) == 2:
            self.finished.set()

    def error(self, driver: Any, message: str) -> None:
        self.errors.append(message)


def test_pymesos_runs_tasks_to_completion(sim_master: MasterProcess) -> None:
    scheduler = RecordingScheduler()
    driver = MesosSchedulerDriver(scheduler, {"user": "root", "name": "pymesos-check"}, sim_master.address)
    driver.start()
    try:
        assert scheduler.finished.wait(30), scheduler.updates
        framework_id, master_info = scheduler.registered_with[0]
        assert master_info["version"] == "1.11.0"
        states = [(u["task_id"]["value"], u["state"]) for u in scheduler.updates]
        for task_id in ("pm-0", "pm-1"):
            assert [s for t, s in states if t == task_id] == [
                "TASK_STARTING",
                "TASK_RUNNING",
                "TASK_FINISHED",
            ]
        # Implicit acknowledgements reached the master: finished tasks are gone from "tasks".
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            framework = sim_master.state()["frameworks"][0]
            if not framework["tasks"]:
                break
            time.sleep(0.1)
        assert framework["tasks"] == []
        assert {t["id"] for t in framework["completed_tasks"]} == {"pm-0", "pm-1"}
        assert framework["id"] == framework_id["value"]
        assert "GPU_RESOURCES" in framework["capabilities"]  # pymesos adds it for masters >= 1.0
        assert framework["failover_timeout"] == 100.0  # pymesos' default
        assert scheduler.errors == []
    finally:
        driver.stop()
        driver.join()
    # stop() without failover sends TEARDOWN.
    deadline = time.monotonic() + 5
    while sim_master.state()["frameworks"] and time.monotonic() < deadline:
        time.sleep(0.1)
    assert [f["name"] for f in sim_master.state()["completed_frameworks"]] == ["pymesos-check"]
