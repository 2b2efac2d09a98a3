"""The pymesos side: turns driver callbacks into SchedulerCore events and the core's actions into
v1 calls, which framework/mesos_calls.py sends pipelined. The state is saved before any call
leaves the process (write-ahead for launches, and for the status updates a batch acknowledges).

pymesos calls back from its IO thread; the runner's main thread calls `tick()`; the call sender
saves the state from its own thread. One lock serialises all three.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from pymesos import Scheduler

from framework.mesos_calls import Call, CallSender, Endpoint
from framework.scheduler_core import (
    OFFERS_PER_SLICE,
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
# Acknowledgements wait while launches are in flight, at most this long: well below the 10 s after
# which an agent sends an unacknowledged status update again.
ACKS_DEFERRED_AT_MOST_SECONDS = 5.0


class AlluxioScheduler(Scheduler):
    def __init__(self, core: SchedulerCore, store: StateStore, on_fatal: Callable[[str], None]) -> None:
        self.core = core
        self.store = store
        self.lock = threading.RLock()
        self.driver: Any = None
        self.calls: CallSender | None = None
        self._on_fatal = on_fatal
        self._launch_lock = threading.Lock()
        self._launches_pending = 0
        self._launch_wave = 0
        self._launch_wave_started = 0.0
        # Every submitted call gets a mark; `_saved_mark` is the last mark whose state is on disk,
        # so the call sender takes the lock to save only when a batch needs a newer state.
        self._marks_lock = threading.Lock()
        self._last_mark = 0
        self._saved_mark = 0

    def endpoint(self) -> Endpoint | None:
        """The master and stream pymesos is subscribed to now (None while it is not)."""
        driver = self.driver
        if driver is None:
            return None
        master, stream_id = driver.master, driver.stream_id
        return Endpoint(str(master), str(stream_id)) if master and stream_id else None

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
        for first in range(0, len(offers), OFFERS_PER_SLICE):
            self._offers(offers[first : first + OFFERS_PER_SLICE])

    def _offers(self, offers: Sequence[Any]) -> None:
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
        self.handle(lambda: self.core.on_update(status))
        # Answers to reconciliation carry no uuid and are not acknowledged. The acknowledgement
        # waits for the state to be on disk (the sender saves before each batch): a crash in
        # between makes Mesos send the update again, never lose it.
        if status.get("uuid"):
            self._submit(
                {
                    "type": "ACKNOWLEDGE",
                    "acknowledge": {
                        "agent_id": status["agent_id"],
                        "task_id": status["task_id"],
                        "uuid": status["uuid"],
                    },
                },
                needs_saved_state=True,
                background=True,
            )

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
        with self.lock:
            self.save_state()  # changes that sent no call (e.g. answers to reconciliation)

    # ---- plumbing --------------------------------------------------------------------------
    def handle(self, event: Callable[[], list[Action]]) -> None:
        """Run one event under the lock; never let an exception reach pymesos's IO thread
        (it would end the driver). Kept offers the event made usable are then decided slice by
        slice, with the lock released in between so that the call sender can save and send."""
        more = self._handle_once(event)
        while more:
            more = self._handle_once(self.core.use_held_offers)

    def _handle_once(self, event: Callable[[], list[Action]]) -> bool:
        with self.lock:
            try:
                actions = event()
            except Exception:
                LOG.exception("the scheduler failed to handle an event")
                return False
            self._execute(actions)
            if any(isinstance(action, Launch) for action in actions):
                # Write-ahead for the launches, here rather than in the call sender, which would
                # otherwise wait for this lock while the next slice of offers is decided.
                self.save_state()
            return self.core.held_offers_ready()

    def save_state(self) -> bool:
        """Save what changed (under `lock`)."""
        core = self.core
        with self._marks_lock:
            covered = self._last_mark  # every call marked so far changed the state before now
        if core.dirty or core.dirty_tasks or core.new_worker_hosts:
            try:
                if core.dirty:
                    self.store.save(core.state)
                else:
                    self.store.save_tasks(core.state, core.dirty_tasks, core.new_worker_hosts)
            except OSError:
                LOG.exception("cannot save the framework state to %s", self.store.state_path)
                return False
            core.dirty = False
            core.dirty_tasks.clear()
            core.new_worker_hosts.clear()
        self._saved_mark = max(self._saved_mark, covered)
        return True

    def before_batch(self, batch: Sequence[Call]) -> bool:
        """The call sender's `before_batch`: the state the batch's calls depend on is on disk."""
        needed = max((call.state_mark for call in batch if call.needs_saved_state), default=0)
        if needed <= self._saved_mark:
            return True
        with self.lock:
            return self.save_state()

    def _execute(self, actions: list[Action]) -> None:
        connected = bool(self.driver and self.driver.connected)
        follow_up: list[Action] = []
        for action in actions:
            if isinstance(action, Launch):
                if not connected:
                    follow_up.extend(self._launch_failed(action, "not connected"))
                    continue
                self._submit_launch(action)
            else:
                self._submit(_call_body(action))
        for action in follow_up:
            if not isinstance(action, Launch):
                self._submit(_call_body(action))

    def _launch_failed(self, action: Launch, reason: str) -> list[Action]:
        follow_up: list[Action] = []
        for info in action.task_infos:
            follow_up.extend(self.core.launch_failed(info["task_id"]["value"], reason))
        return follow_up

    def _submit(
        self,
        body: dict[str, Any],
        *,
        needs_saved_state: bool = False,
        on_failure: Callable[[str], None] | None = None,
        on_answer: Callable[[], None] | None = None,
        background: bool = False,
    ) -> None:
        calls = self.calls
        framework_id = self.core.state.framework_id
        if calls is None or framework_id is None:
            reason = "no call sender" if calls is None else "not registered"
            if on_failure is not None:
                on_failure(reason)
            else:
                LOG.warning("Mesos call %s not sent: %s", body.get("type"), reason)
            return
        body = {"type": body["type"], "framework_id": {"value": framework_id}, **body}
        with self._marks_lock:
            self._last_mark += 1
            mark = self._last_mark
        calls.submit(Call(body, needs_saved_state, on_failure, on_answer, background, mark))

    def _submit_launch(self, action: Launch) -> None:
        with self._launch_lock:
            if self._launches_pending == 0:
                self._launch_wave = 0
                self._launch_wave_started = time.monotonic()
                if self.calls is not None:
                    self.calls.defer_background(ACKS_DEFERRED_AT_MOST_SECONDS)
            self._launches_pending += 1
            self._launch_wave += 1

        def failed(reason: str) -> None:
            LOG.error("launch on agent %s not accepted by Mesos: %s", action.agent_id, reason)
            with self.lock:
                # The task counts as lost (relaunched with backoff); the offer goes back.
                follow_up = self._launch_failed(action, reason)
                follow_up.append(Decline((action.offer_id,), self.core.timing.decline_not_ready))
                self._execute(follow_up)
            answered()

        def answered() -> None:
            with self._launch_lock:
                self._launches_pending -= 1
                done = self._launches_pending == 0
                wave, started = self._launch_wave, self._launch_wave_started
                if done and self.calls is not None:
                    self.calls.release_background()
            if done:
                LOG.info(
                    "sent %d launch(es) to Mesos in %.3f s (%d offers received so far)",
                    wave,
                    time.monotonic() - started,
                    self.core.counters["offers"],
                )

        self._submit(_call_body(action), needs_saved_state=True, on_failure=failed, on_answer=answered)


def _call_body(action: Action) -> dict[str, Any]:
    """The v1 Call for an action (framework_id is added when it is sent)."""
    if isinstance(action, Launch):
        return {
            "type": "ACCEPT",
            "accept": {
                "offer_ids": [{"value": action.offer_id}],
                "operations": [{"type": "LAUNCH", "launch": {"task_infos": list(action.task_infos)}}],
                "filters": {"refuse_seconds": action.refuse_seconds},
            },
        }
    if isinstance(action, Decline):
        return {
            "type": "DECLINE",
            "decline": {
                "offer_ids": [{"value": offer_id} for offer_id in action.offer_ids],
                "filters": {"refuse_seconds": action.refuse_seconds},
            },
        }
    if isinstance(action, Kill):
        kill: dict[str, Any] = {"task_id": {"value": action.task_id}}
        if action.agent_id:
            kill["agent_id"] = {"value": action.agent_id}
        return {"type": "KILL", "kill": kill}
    if isinstance(action, Reconcile):
        return {
            "type": "RECONCILE",
            "reconcile": {"tasks": [{"task_id": {"value": task_id}} for task_id, _ in action.tasks]},
        }
    if isinstance(action, Revive):
        return {"type": "REVIVE"}
    if isinstance(action, Suppress):
        return {"type": "SUPPRESS"}
    raise TypeError(f"not a scheduler action: {action!r}")


def _address(master_info: Any) -> str:
    try:
        return f"{master_info['hostname']}:{master_info['port']}"
    except (KeyError, TypeError):
        return "?"
