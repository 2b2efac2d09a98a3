"""The pymesos side: turns driver callbacks into SchedulerCore events and the core's actions into
driver calls, saving the state before any action leaves the process (write-ahead for launches).

pymesos calls back from its IO thread; the runner's main thread calls `tick()`. One lock
serialises both, and the driver's own lock is always taken after ours, never before.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from pymesos import Scheduler

from framework.scheduler_core import (
    Action,
    Decline,
    Kill,
    Launch,
    Reconcile,
    Revive,
    SchedulerCore,
    Suppress,
)
from framework.state_store import StateStore

LOG = logging.getLogger("framework.mesos")
FRAMEWORK_REMOVED = "Framework has been removed"


class AlluxioScheduler(Scheduler):
    def __init__(self, core: SchedulerCore, store: StateStore, on_fatal: Callable[[str], None]) -> None:
        self.core = core
        self.store = store
        self.lock = threading.RLock()
        self.driver: Any = None
        self._on_fatal = on_fatal

    # ---- pymesos callbacks -------------------------------------------------------------------
    def registered(self, driver: Any, framework_id: Any, master_info: Any) -> None:
        LOG.info("registered with master %s as framework %s", _address(master_info), framework_id["value"])
        self.handle(lambda: self.core.on_subscribed(str(framework_id["value"])))

    def reregistered(self, driver: Any, master_info: Any) -> None:
        LOG.info("re-registered with master %s as framework %s", _address(master_info), driver.framework_id)
        self.handle(lambda: self.core.on_subscribed(str(driver.framework_id)))

    def disconnected(self, driver: Any) -> None:
        with self.lock:
            self.core.on_disconnected()

    def resourceOffers(self, driver: Any, offers: Sequence[Any]) -> None:
        def event() -> list[Action]:
            try:
                return self.core.on_offers(offers)
            except Exception:
                # An offer we neither use nor decline stays locked up in Mesos; give it back.
                LOG.exception("could not handle %d offer(s); declining them", len(offers))
                ids = tuple(str(o.get("id", {}).get("value")) for o in offers if o.get("id"))
                return [Decline(ids, self.core.timing.decline_misfit)] if ids else []

        self.handle(event)

    def offerRescinded(self, driver: Any, offer_id: Any) -> None:
        with self.lock:
            self.core.on_rescinded(str(offer_id.get("value")))

    def statusUpdate(self, driver: Any, status: Any) -> None:
        # pymesos acknowledges after this returns, so the update is saved before it is acked.
        self.handle(lambda: self.core.on_update(status))

    def slaveLost(self, driver: Any, agent_id: Any) -> None:
        self.handle(lambda: self.core.on_agent_lost(str(agent_id.get("value"))))

    def executorLost(self, driver: Any, executor_id: Any, agent_id: Any, status: Any) -> None:
        LOG.warning(
            "executor %s on agent %s exited (wait status %s)",
            executor_id.get("value"),
            agent_id.get("value"),
            status,
        )

    def frameworkMessage(self, driver: Any, executor_id: Any, agent_id: Any, message: Any) -> None:
        LOG.info("message from executor %s ignored", executor_id.get("value"))

    def error(self, driver: Any, message: str) -> None:
        LOG.error("the Mesos master reported an error: %s", message)
        self._on_fatal(message)

    # ---- time ------------------------------------------------------------------------------
    def tick(self) -> None:
        self.handle(self.core.tick)

    # ---- plumbing --------------------------------------------------------------------------
    def handle(self, event: Callable[[], list[Action]]) -> None:
        """Run one event under the lock; never let an exception reach pymesos's IO thread
        (it would end the driver)."""
        with self.lock:
            try:
                actions = event()
            except Exception:
                LOG.exception("the scheduler failed to handle an event")
                return
            self._execute(actions)

    def save_state(self) -> bool:
        core = self.core
        if not core.dirty and not core.dirty_tasks:
            return True
        try:
            if core.dirty:
                self.store.save(core.state)
            else:
                self.store.save_tasks(core.state, core.dirty_tasks)
        except OSError:
            LOG.exception("cannot save the framework state to %s", self.store.state_path)
            return False
        core.dirty = False
        core.dirty_tasks.clear()
        return True

    def _execute(self, actions: list[Action]) -> None:
        saved = self.save_state()
        follow_up: list[Action] = []
        launches = sum(1 for a in actions if isinstance(a, Launch))
        started = time.monotonic()
        for action in actions:
            if isinstance(action, Launch) and not saved:
                # Never launch what could be forgotten: the state must be on disk first.
                for info in action.task_infos:
                    follow_up.extend(self.core.launch_failed(info["task_id"]["value"], "state not saved"))
                self._call(Decline((action.offer_id,), self.core.timing.decline_not_ready))
                continue
            if isinstance(action, Launch) and not (self.driver and self.driver.connected):
                for info in action.task_infos:
                    follow_up.extend(self.core.launch_failed(info["task_id"]["value"], "not connected"))
                continue
            if not self._call(action) and isinstance(action, Launch):
                for info in action.task_infos:
                    follow_up.extend(self.core.launch_failed(info["task_id"]["value"], "ACCEPT failed"))
        self.save_state()
        for action in follow_up:
            if not isinstance(action, Launch):
                self._call(action)
        if launches:
            LOG.info(
                "sent %d launch(es) to Mesos in %.3f s (%d offers received so far)",
                launches,
                time.monotonic() - started,
                self.core.counters["offers"],
            )

    def _call(self, action: Action) -> bool:
        driver = self.driver
        if driver is None:
            return False
        try:
            if isinstance(action, Launch):
                driver.launchTasks(
                    [{"value": action.offer_id}],
                    list(action.task_infos),
                    filters={"refuse_seconds": action.refuse_seconds},
                )
            elif isinstance(action, Decline):
                driver.declineOffer(
                    [{"value": offer_id} for offer_id in action.offer_ids],
                    filters={"refuse_seconds": action.refuse_seconds},
                )
            elif isinstance(action, Kill):
                driver.killTask({"value": action.task_id})
            elif isinstance(action, Reconcile):
                driver.reconcileTasks([{"task_id": {"value": task_id}} for task_id, _ in action.tasks])
            elif isinstance(action, Revive):
                driver.reviveOffers()
            elif isinstance(action, Suppress):
                driver.suppressOffers()
        except Exception as error:
            # pymesos appends the request body to its error text; a LAUNCH body carries the task
            # plan (possibly UFS credentials), so only the first line is logged.
            LOG.error("Mesos call %s failed: %s", type(action).__name__, str(error).split("\n", 1)[0])
            return False
        return True


def _address(master_info: Any) -> str:
    try:
        return f"{master_info['hostname']}:{master_info['port']}"
    except (KeyError, TypeError):
        return "?"
