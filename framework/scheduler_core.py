"""The scheduler's decisions as a pure state machine: events in, actions out, no I/O.

The pymesos adapter (framework/mesos_scheduler.py) feeds it Mesos events and a clock tick and
carries out the actions it returns; tests feed it recorded v1 events and check the actions.

Rules it enforces:
- Nothing is launched or killed until explicit reconciliation of every task it remembers has been
  answered (retried with backoff); then an implicit reconciliation finds tasks it does not know,
  which are killed.
- Masters first. A master slot keeps its host (the journal lives there); workers are launched only
  once a majority of the masters runs (RUNNING means the RPC port answers).
- At most one master and one worker of this cluster per host, also across restarts: workers are
  tracked by hostname, and a host with a live task of a role never gets a second one.
- Failed, lost or unexpectedly killed tasks are relaunched on their host with exponential backoff
  (reset after a task ran for `stable_running_seconds`).
- A task whose config fingerprint differs from the spec's is replaced: masters first, one at a time,
  then workers one at a time, and only when no other worker is down: kill, wait for the terminal
  update (its ports are free), launch, wait for RUNNING, next.
- Unneeded offers are declined with long filters, misfits with short ones and a reason; offers are
  suppressed when nothing is wanted and revived when a task must be placed.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from framework.decline_log import DeclineLog
from framework.offer_matching import OfferView, allocate, unmet
from framework.spec import ClusterSpec, Key, Role
from framework.state_store import PersistedState, TaskRecord
from framework.task_factory import TaskFactory

LOG = logging.getLogger("framework.scheduler")

LAUNCHING = "LAUNCHING"
RUNNING = "TASK_RUNNING"
KILLING = "TASK_KILLING"
TERMINAL_STATES = frozenset(
    {
        "TASK_FINISHED",
        "TASK_FAILED",
        "TASK_KILLED",
        "TASK_LOST",
        "TASK_ERROR",
        "TASK_DROPPED",
        "TASK_GONE",
        "TASK_GONE_BY_OPERATOR",
        "TASK_UNKNOWN",
    }
)
# Offers are decided this many at a time, so that the first launches reach Mesos while the rest
# of a big batch of offers (one per agent on a 10,000-agent cluster) is still being decided.
OFFERS_PER_SLICE = 500
KILL_FOR_UPDATE = "update"
KILL_FOR_REMOVAL = "removal"


# ---- actions ---------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Launch:
    offer_id: str
    agent_id: str
    task_infos: tuple[dict[str, Any], ...]
    refuse_seconds: float


@dataclasses.dataclass(frozen=True)
class Decline:
    offer_ids: tuple[str, ...]
    refuse_seconds: float


@dataclasses.dataclass(frozen=True)
class Kill:
    task_id: str
    agent_id: str


@dataclasses.dataclass(frozen=True)
class Reconcile:
    """Explicit for the listed (task_id, agent_id) pairs; implicit when empty."""

    tasks: tuple[tuple[str, str], ...]


@dataclasses.dataclass(frozen=True)
class Revive:
    pass


@dataclasses.dataclass(frozen=True)
class Suppress:
    pass


Action = Launch | Decline | Kill | Reconcile | Revive | Suppress


@dataclasses.dataclass(frozen=True)
class Timing:
    """Every delay the scheduler uses, in seconds (tests shorten them)."""

    decline_unneeded: float = 3600.0
    decline_misfit: float = 60.0
    decline_not_ready: float = 10.0
    reconcile_retry_initial: float = 5.0
    reconcile_retry_max: float = 60.0
    revive_interval: float = 30.0
    launch_stale: float = 120.0
    kill_retry: float = 60.0
    stable_running: float = 300.0
    relocate_after: float = 600.0
    hold_offers: float = 60.0


class ReloadRefused(ValueError):
    """A new spec changes something that cannot change while the cluster runs."""


@dataclasses.dataclass
class _Backoff:
    failures: int = 0
    not_before: float = 0.0


def master_slot(index: int) -> str:
    return f"master-{index}"


def worker_slot(hostname: str) -> str:
    return f"worker@{hostname}"


class SchedulerCore:
    def __init__(
        self,
        spec: ClusterSpec,
        state: PersistedState,
        clock: Callable[[], float],
        timing: Timing | None = None,
    ) -> None:
        self.spec = spec
        self.state = state
        self.clock = clock
        self.timing = timing or Timing()
        self.factory = TaskFactory(spec, state.salt_bytes())
        self.connected = False
        self.reconciled = False
        self.teardown = False
        # dirty: save a snapshot; dirty_tasks and new_worker_hosts: only these task records changed
        # or were added, only these hosts were added (journaled).
        self.dirty = False
        self.dirty_tasks: set[str] = set()
        self.new_worker_hosts: list[str] = []
        self.declines = DeclineLog()
        self.history: deque[str] = deque(maxlen=100)
        # Debug counters for the status endpoint (benchmarks divide CPU time by offers).
        self.counters: dict[str, int] = {"offer_events": 0, "offers": 0, "launches": 0}
        self.reload_error: str | None = None
        self._reconcile_pending: set[str] = set()
        self._reconcile_next = 0.0
        self._reconcile_interval = self.timing.reconcile_retry_initial
        self._backoff: dict[str, _Backoff] = {}
        self._kill_sent: dict[str, float] = {}
        self._host_seen: dict[str, float] = {}
        self._host_attributes: dict[str, dict[str, str]] = {}
        self._suppressed = False
        self._revive_wanted = False
        self._last_revive = float("-inf")
        self._masters_were_ready = False
        self._started = clock()
        self._slot_index: dict[str, TaskRecord] | None = None
        self._worker_host_set = set(state.worker_hosts)
        # Offers kept while the masters start, for the workers that follow (see on_offers).
        self._held: dict[str, OfferView] = {}
        self._held_since = 0.0
        self._membership_version = 0
        self._factory_version = 0
        self._outdated_key: tuple[Any, ...] | None = None
        self._outdated_ids: frozenset[str] = frozenset()
        self._init_master_slots()

    # ---- bookkeeping ----------------------------------------------------------------------
    def _init_master_slots(self) -> None:
        hosts = self.state.master_hosts
        count = self.spec.master_count
        if len(hosts) != count:
            if any(t.role == Role.MASTER for t in self.state.tasks.values()):
                raise ReloadRefused(
                    f"{Key.MASTER_COUNT} is {count} but the running cluster has {len(hosts)} master(s); "
                    "changing the number of masters needs a new cluster (alluxio-mesos framework stop first)"
                )
            self.state.master_hosts = [None] * count
            self.dirty = True
        if self.spec.master_hostname and self.state.master_hosts[0] != self.spec.master_hostname:
            self.state.master_hosts[0] = self.spec.master_hostname
            self.dirty = True

    def _note(self, text: str) -> None:
        LOG.info("%s", text)
        self.history.append(f"{self.clock():.0f} {text}")

    def _active(self) -> list[TaskRecord]:
        return [t for t in self.state.tasks.values() if t.state not in TERMINAL_STATES]

    def _active_in(self, slot: str) -> TaskRecord | None:
        # Called for every slot on every event: an index keeps that O(1) with 10,000 workers.
        if self._slot_index is None:
            index: dict[str, TaskRecord] = {}
            for task in self.state.tasks.values():
                if task.state not in TERMINAL_STATES:
                    index.setdefault(task.slot, task)
            self._slot_index = index
        return self._slot_index.get(slot)

    def _tasks_changed(self) -> None:
        """A task was removed or became terminal: the slot index is stale."""
        self._slot_index = None
        self._membership_version += 1

    def _task_added(self, task: TaskRecord) -> None:
        self.state.tasks[task.task_id] = task
        if self._slot_index is not None:
            self._slot_index.setdefault(task.slot, task)
        if not self._is_current(task):
            self._membership_version += 1  # the set of outdated tasks grows

    def _add_worker_host(self, host: str) -> None:
        self.state.worker_hosts.append(host)
        self._worker_host_set.add(host)
        self.new_worker_hosts.append(host)

    def _drop_worker_host(self, host: str) -> None:
        self.state.worker_hosts.remove(host)
        self._worker_host_set.discard(host)
        self.dirty = True

    def _hosts_with(self, role: Role) -> set[str]:
        return {t.hostname for t in self._active() if t.role == role.value}

    def _backoff_of(self, slot: str) -> _Backoff:
        return self._backoff.setdefault(slot, _Backoff())

    def _launchable(self, slot: str, now: float) -> bool:
        return self._active_in(slot) is None and self._backoff_of(slot).not_before <= now

    def _master_hosts(self) -> list[str] | None:
        hosts = self.state.master_hosts
        return None if any(h is None for h in hosts) else [str(h) for h in hosts]

    def masters_ready(self) -> bool:
        running = sum(
            1
            for i in range(self.spec.master_count)
            if (task := self._active_in(master_slot(i))) is not None and task.state == RUNNING
        )
        return running >= self.spec.master_count // 2 + 1

    def _desired_hash(self, task: TaskRecord) -> str | None:
        masters = self._master_hosts()
        if masters is None:
            return None
        return self.factory.config_hash(Role(task.role), masters)

    def _is_current(self, task: TaskRecord) -> bool:
        if task.role == Role.MASTER:
            index = int(task.slot.split("-", 1)[1])
            if self.state.master_hosts[index] != task.hostname:
                return False
        desired = self._desired_hash(task)
        return desired is None or desired == task.config_hash

    def _worker_target_reached(self) -> bool:
        count = self.spec.worker_count
        return count is not None and len(self.state.worker_hosts) >= count

    # ---- inputs: connection ----------------------------------------------------------------
    def on_subscribed(self, framework_id: str) -> list[Action]:
        now = self.clock()
        if self.state.framework_id != framework_id:
            self.state.framework_id = framework_id
            self.dirty = True
        self.connected = True
        # Mesos starts a (re)subscribed framework unsuppressed and forgets old offers.
        self._suppressed = False
        self._held.clear()
        self._note(f"subscribed as framework {framework_id}")
        actions: list[Action] = []
        pending = self._active()
        if pending:
            self.reconciled = False
            self._reconcile_pending = {t.task_id for t in pending}
            self._reconcile_interval = self.timing.reconcile_retry_initial
            self._reconcile_next = now + self._reconcile_interval
            self._note(f"reconciling {len(pending)} task(s) before acting")
            actions.append(Reconcile(tuple((t.task_id, t.agent_id) for t in pending)))
        else:
            actions.extend(self._reconciliation_complete())
        return actions + self._after_change(now)

    def on_disconnected(self) -> None:
        self.connected = False
        self._held.clear()  # offers die with the subscription
        self._note("disconnected from the Mesos master; pymesos reconnects")

    def _reconciliation_complete(self) -> list[Action]:
        self.reconciled = True
        self._reconcile_pending.clear()
        self._revive_wanted = True
        self._note("reconciliation complete")
        # Tasks the master knows but we do not (a crash between launch and save) show up here.
        return [Reconcile(())]

    # ---- inputs: offers --------------------------------------------------------------------
    def on_offers(self, offers: Sequence[Mapping[str, Any]]) -> list[Action]:
        now = self.clock()
        self.counters["offer_events"] += 1
        self.counters["offers"] += len(offers)
        views = [OfferView.from_json(o) for o in offers]
        for view in views:
            self._host_seen[view.hostname] = now
            self._host_attributes[view.hostname] = view.attributes
        if not self.reconciled or self.teardown or not self.connected:
            ids = tuple(v.offer_id for v in views)
            return [Decline(ids, self.timing.decline_not_ready)] if ids else []
        placement = _Placement(views)
        self._place_masters(placement, now)
        if self._workers_may_start():
            self._place_workers(placement, now)
        elif self._masters_starting():
            # Workers start the moment the masters answer. Declining these offers now would mean
            # waiting then for Mesos to offer every agent again (on a big cluster, a full
            # allocation round and megabytes of offers); they are kept instead, for a while.
            if not self._held:
                self._held_since = now
            for view in placement.available():
                if view.offer_id not in placement.needed:
                    self._held[view.offer_id] = view
                    placement.used.add(view.offer_id)
        return self._settle(placement, views, now) + self._after_change(now)

    def _settle(self, placement: _Placement, views: Sequence[OfferView], now: float) -> list[Action]:
        """The launches of a placement, and a decline (with its filter) for every offer it left."""
        actions: list[Action] = list(placement.launches)
        for view in views:
            if view.offer_id in placement.used:
                continue
            reasons = placement.reasons.get(view.offer_id, [])
            for reason in reasons:
                self.declines.record(view.agent_id, view.hostname, reason, now)
        misfit = tuple(
            v.offer_id for v in views if v.offer_id in placement.needed and v.offer_id not in placement.used
        )
        unneeded = tuple(
            v.offer_id
            for v in views
            if v.offer_id not in placement.needed and v.offer_id not in placement.used
        )
        if misfit:
            actions.append(Decline(misfit, self.timing.decline_misfit))
        if unneeded:
            actions.append(Decline(unneeded, self.timing.decline_unneeded))
        return actions

    def _workers_may_start(self) -> bool:
        return self.masters_ready() and not self._masters_outdated()

    def _masters_starting(self) -> bool:
        """Every master slot has a launched task, not all of them answer yet."""
        masters = [self._active_in(master_slot(i)) for i in range(self.spec.master_count)]
        return all(t is not None for t in masters) and not self.masters_ready()

    def _held_offers(self, now: float) -> list[Action]:
        """Use the kept offers for workers once the masters are ready (one slice per call; see
        `held_offers_ready`); give them back when the masters stop starting (a master failed) or
        after `hold_offers` seconds."""
        if not self._held:
            return []
        if self._held_offers_usable():
            views = [
                self._held.pop(offer_id) for offer_id in list(itertools.islice(self._held, OFFERS_PER_SLICE))
            ]
            placement = _Placement(views)
            self._place_workers(placement, now)
            return self._settle(placement, views, now)
        if self.teardown or not self._masters_starting() or now - self._held_since >= self.timing.hold_offers:
            ids = tuple(self._held)
            self._held.clear()
            return [Decline(ids, self.timing.decline_not_ready)]
        return []

    def _held_offers_usable(self) -> bool:
        return self.reconciled and not self.teardown and self._workers_may_start()

    def held_offers_ready(self) -> bool:
        """Kept offers are waiting to be decided: call `use_held_offers` (again)."""
        return bool(self._held) and self._held_offers_usable()

    def use_held_offers(self) -> list[Action]:
        return self._held_offers(self.clock())

    def on_rescinded(self, offer_id: str) -> None:
        if self._held.pop(offer_id, None) is not None:
            LOG.info("held offer %s rescinded by Mesos", offer_id)

    def _place_masters(self, placement: _Placement, now: float) -> None:
        role = Role.MASTER
        needs = self.factory.needs(role)
        constraints = self.spec.role_constraints(role)
        name = self.spec.task_name(role)
        hosts = self.state.master_hosts
        waiting = [i for i in range(len(hosts)) if self._launchable(master_slot(i), now)]
        if not waiting:
            return
        busy = self._hosts_with(role) | {h for h in hosts if h is not None}
        # Choose hosts for slots that have none: all of them before any master starts, because
        # every master's configuration lists every master.
        for index in [i for i in waiting if hosts[i] is None]:
            for view in placement.available():
                if view.hostname in busy:
                    continue
                placement.needed.add(view.offer_id)
                problems = unmet(view, needs, constraints)
                if problems:
                    placement.explain(view, name, problems)
                    continue
                hosts[index] = view.hostname
                busy.add(view.hostname)
                self.dirty = True
                self._note(f"{name} slot {index} placed on host {view.hostname}")
                break
        masters = self._master_hosts()
        if masters is None:
            return
        active_master_hosts = self._hosts_with(role)
        for index in waiting:
            host = hosts[index]
            if host in active_master_hosts:
                continue
            for view in placement.available():
                if view.hostname != host:
                    continue
                placement.needed.add(view.offer_id)
                problems = unmet(view, needs, constraints)
                if problems:
                    placement.explain(view, name, problems)
                    continue
                placement.launch(self._launch(role, master_slot(index), view, masters, now), view)
                active_master_hosts.add(view.hostname)
                break

    def _place_workers(self, placement: _Placement, now: float) -> None:
        role = Role.WORKER
        masters = self._master_hosts()
        if masters is None:
            return
        needs = self.factory.needs(role)
        constraints = self.spec.role_constraints(role)
        name = self.spec.task_name(role)
        busy = self._hosts_with(role)
        removing = self._surplus_worker_hosts()
        for view in placement.available():
            host = view.hostname
            if host in busy or host in removing:
                continue
            slot = worker_slot(host)
            known = host in self._worker_host_set
            if known and not self._launchable(slot, now):
                continue
            if not known and self._worker_target_reached():
                continue
            problems = unmet(view, needs, constraints)
            if problems:
                placement.explain(view, name, problems)
                # Constraint failures do not change until the spec does: decline those for long.
                if len(problems) > len([p for p in problems if p.startswith("constraint ")]):
                    placement.needed.add(view.offer_id)
                continue
            placement.needed.add(view.offer_id)
            if not known:
                self._add_worker_host(host)
            placement.launch(self._launch(role, slot, view, masters, now), view)
            busy.add(host)

    def _launch(self, role: Role, slot: str, view: OfferView, masters: list[str], now: float) -> Launch:
        task_id = self.factory.new_task_id(role, view.hostname)
        config_hash = self.factory.config_hash(role, masters)
        resources = allocate(view.resources, self.factory.needs(role))
        info = self.factory.task_info(
            role,
            task_id=task_id,
            agent_id=view.agent_id,
            hostname=view.hostname,
            master_hosts=masters,
            resources=resources,
            config_hash=config_hash,
        )
        # Recorded (and saved by the adapter) before the ACCEPT goes out: a crash in between leaves
        # a record that reconciliation resolves, never an unknown task.
        self._task_added(
            TaskRecord(
                task_id=task_id,
                role=role.value,
                slot=slot,
                hostname=view.hostname,
                agent_id=view.agent_id,
                config_hash=config_hash,
                state=LAUNCHING,
                launched_at=now,
                state_since=now,
            )
        )
        self.dirty_tasks.add(task_id)
        self.counters["launches"] += 1
        self.declines.forget_agent(view.agent_id)
        self._note(f"launching {self.spec.task_name(role)} {task_id} on {view.describe()}")
        return Launch(view.offer_id, view.agent_id, (info,), self.timing.decline_unneeded)

    # ---- inputs: status updates -------------------------------------------------------------
    def on_update(self, status: Mapping[str, Any]) -> list[Action]:
        now = self.clock()
        task_id = str(status["task_id"]["value"])
        state = str(status["state"])
        agent_id = str((status.get("agent_id") or {}).get("value", ""))
        message = str(status.get("message", ""))
        reason = str(status.get("reason", ""))
        actions: list[Action] = []
        was_reconciled = self.reconciled
        self._reconcile_pending.discard(task_id)
        task = self.state.tasks.get(task_id)
        if task is None:
            if state not in TERMINAL_STATES:
                self._note(f"killing unknown task {task_id} ({state}) on agent {agent_id}")
                actions.append(Kill(task_id, agent_id))
            return actions + self._after_change(now)
        if agent_id and task.agent_id != agent_id:
            task.agent_id = agent_id
        if state != task.state:
            detail = f": {message}" if message else ""
            self._note(
                f"{task.task_id} on {task.hostname}: {task.state} -> {state} {reason}{detail}".rstrip()
            )
            task.state = state
            task.state_since = now
            if state in TERMINAL_STATES:
                self._tasks_changed()
            task.message = message
            self.dirty_tasks.add(task.task_id)
        if state == RUNNING and task.running_since is None:
            task.running_since = now
            self.dirty_tasks.add(task.task_id)
        if state in TERMINAL_STATES:
            self._task_ended(task, now)
        if not self.reconciled and not self._reconcile_pending:
            actions.extend(self._reconciliation_complete())
        if was_reconciled and self._changes_nothing_global(task, state):
            return actions
        return actions + self._after_change(now)

    def _changes_nothing_global(self, task: TaskRecord, state: str) -> bool:
        """A current worker moving between live states (STAGING, STARTING, RUNNING) changes no
        decision: the set of live tasks, the masters' readiness and every fingerprint stay the
        same, and with nothing outdated or surplus no replacement waits for it. Skipping the
        cluster-wide re-evaluation keeps a 10,000-worker startup linear; time-based decisions
        (backoff, revive) run on every tick anyway."""
        return (
            not self.teardown
            and task.role == Role.WORKER
            and state not in TERMINAL_STATES
            and task.kill_reason is None
            and not self._outdated()
            and not self._surplus_possible()
        )

    def _outdated(self) -> frozenset[str]:
        """Ids of live tasks whose fingerprint differs from the spec's (cached until the tasks,
        the spec or the masters' placement change)."""
        key = (self._factory_version, tuple(self.state.master_hosts), self._membership_version)
        if key != self._outdated_key:
            self._outdated_ids = frozenset(t.task_id for t in self._active() if not self._is_current(t))
            self._outdated_key = key
        return self._outdated_ids

    def _surplus_possible(self) -> bool:
        """Only worker constraints or a worker count can make a worker host surplus."""
        return bool(self.spec.role_constraints(Role.WORKER)) or self.spec.worker_count is not None

    def _task_ended(self, task: TaskRecord, now: float) -> None:
        backoff = self._backoff_of(task.slot)
        if task.kill_reason is None:
            if task.running_since is not None and now - task.running_since >= self.timing.stable_running:
                backoff.failures = 0
            backoff.failures += 1
            delay = min(
                self.spec.backoff_initial_seconds * 2 ** (backoff.failures - 1), self.spec.backoff_max_seconds
            )
            backoff.not_before = now + delay
            self._note(
                f"{task.task_id} ended unexpectedly ({task.state}); relaunch on {task.hostname} in {delay:g}s"
            )
        else:
            backoff.failures = 0
            backoff.not_before = now
        if task.kill_reason == KILL_FOR_REMOVAL and task.hostname in self._worker_host_set:
            self._drop_worker_host(task.hostname)
            self._note(f"worker host {task.hostname} removed from the cluster")
        del self.state.tasks[task.task_id]
        self._tasks_changed()
        self._kill_sent.pop(task.task_id, None)
        self._revive_wanted = True
        self.dirty = True

    def launch_failed(self, task_id: str, error: str) -> list[Action]:
        """The ACCEPT for a task did not go through: treat the task as lost, with backoff."""
        task = self.state.tasks.get(task_id)
        if task is None:
            return []
        return self.on_update(
            {"task_id": {"value": task_id}, "state": "TASK_LOST", "message": f"launch failed: {error}"}
        )

    def on_agent_lost(self, agent_id: str) -> list[Action]:
        # The master follows with TASK_LOST updates for the agent's tasks; only note it here.
        self._note(f"agent {agent_id} lost")
        return []

    # ---- inputs: time ----------------------------------------------------------------------
    def tick(self) -> list[Action]:
        now = self.clock()
        actions: list[Action] = []
        if not self.connected:
            return actions
        if not self.reconciled and now >= self._reconcile_next and self._reconcile_pending:
            pending = [self.state.tasks[t] for t in sorted(self._reconcile_pending) if t in self.state.tasks]
            self._reconcile_interval = min(self._reconcile_interval * 2, self.timing.reconcile_retry_max)
            self._reconcile_next = now + self._reconcile_interval
            self._note(f"still waiting for reconciliation of {len(pending)} task(s); asking again")
            actions.append(Reconcile(tuple((t.task_id, t.agent_id) for t in pending)))
        if self.reconciled:
            stale = [
                t
                for t in self._active()
                if t.state == LAUNCHING and now - t.launched_at >= self.timing.launch_stale
            ]
            if stale:
                for task in stale:
                    task.launched_at = now  # ask again only after another launch_stale period
                actions.append(Reconcile(tuple((t.task_id, t.agent_id) for t in stale)))
            for task_id, sent in list(self._kill_sent.items()):
                task = self.state.tasks.get(task_id)
                if task is not None and now - sent >= self.spec.kill_grace_seconds + self.timing.kill_retry:
                    self._kill_sent[task_id] = now
                    actions.append(Kill(task_id, task.agent_id))
            self._relocate_or_abandon(now)
        return actions + self._after_change(now)

    def _relocate_or_abandon(self, now: float) -> None:
        """Give up on hosts that stopped offering: free worker slots; move a lone master."""

        def gone(host: str) -> bool:
            return now - self._host_seen.get(host, self._started) >= self.timing.relocate_after

        for host in list(self.state.worker_hosts):
            if self._active_in(worker_slot(host)) is None and gone(host):
                self._drop_worker_host(host)
                self._backoff.pop(worker_slot(host), None)
                self._note(f"worker host {host} sent no offer for {self.timing.relocate_after:g}s; dropped")
        host = self.state.master_hosts[0] if self.spec.master_count == 1 else None
        if (
            host is not None
            and not self.spec.master_hostname
            and self._active_in(master_slot(0)) is None
            and gone(host)
        ):
            self.state.master_hosts[0] = None
            self.dirty = True
            self._note(
                f"master host {host} has not offered resources for {self.timing.relocate_after:g}s; "
                "placing the master elsewhere (its journal stays behind on that host)"
            )

    # ---- spec changes ----------------------------------------------------------------------
    def replace_spec(self, new: ClusterSpec) -> list[Action]:
        """Adopt a new spec; tasks whose fingerprint changes are replaced one at a time."""
        old = self.spec
        refused = [
            (key, getattr(old, attr), getattr(new, attr))
            for key, attr in (
                (Key.MASTER_COUNT, "master_count"),
                (Key.JOURNAL_TYPE, "journal_type"),
                (Key.FRAMEWORK_NAME, "framework_name"),
                (Key.ROLE, "role"),
                (Key.PRINCIPAL, "principal"),
                (Key.USER, "user"),
            )
            if getattr(old, attr) != getattr(new, attr)
        ]
        if refused:
            text = "; ".join(f"{k} {a!r} -> {b!r}" for k, a, b in refused)
            self.reload_error = f"reload refused: {text} cannot change while the cluster runs"
            raise ReloadRefused(self.reload_error)
        self.spec = new
        self.factory = TaskFactory(new, self.state.salt_bytes())
        self._factory_version += 1
        self.reload_error = None
        if new.master_hostname and self.state.master_hosts[0] != new.master_hostname:
            self.state.master_hosts[0] = new.master_hostname
            self.dirty = True
        self._revive_wanted = True
        self.declines.clear()
        self._note("new spec adopted")
        return self._after_change(self.clock())

    def begin_teardown(self) -> None:
        self.teardown = True
        self._note("tearing down: no more launches")

    # ---- the common tail of every input ----------------------------------------------------
    def _after_change(self, now: float) -> list[Action]:
        actions: list[Action] = []
        if not self.connected:
            return actions
        ready = self.reconciled and self.masters_ready()
        if ready and not self._masters_were_ready:
            self._revive_wanted = True
            self._note("masters ready: workers may start")
        self._masters_were_ready = ready
        held = self._held_offers(now)
        if self.reconciled and not self.teardown:
            actions.extend(self._replacement_kills(now))
        # A REVIVE goes out before the launches from kept offers: it clears every refusal filter,
        # and the filters those ACCEPTs set on their agents' leftovers must outlive it (otherwise
        # Mesos offers every leftover again, only to have it declined).
        return self._offer_interest(now) + held + actions

    def _masters_outdated(self) -> bool:
        outdated = self._outdated()
        return bool(outdated) and any(t.task_id in outdated for t in self._active() if t.role == Role.MASTER)

    def _surplus_worker_hosts(self) -> set[str]:
        """Worker hosts no longer wanted: now violating a constraint, or beyond the count."""
        if not self._surplus_possible():
            return set()
        constraints = self.spec.role_constraints(Role.WORKER)
        surplus = set()
        for host in self.state.worker_hosts:
            attributes = self._host_attributes.get(host)
            if attributes is not None and any(c.violation(host, attributes) for c in constraints):
                surplus.add(host)
        count = self.spec.worker_count
        keep = [h for h in self.state.worker_hosts if h not in surplus]
        if count is not None and len(keep) > count:

            def keep_first(host: str) -> tuple[bool, str]:
                task = self._active_in(worker_slot(host))
                return (task is None or task.state != RUNNING, host)

            surplus.update(sorted(keep, key=keep_first)[count:])
        return surplus

    def _kill(self, task: TaskRecord, reason: str, now: float) -> Kill:
        task.kill_reason = reason
        self._kill_sent[task.task_id] = now
        self.dirty = True
        self._note(f"killing {task.task_id} on {task.hostname} ({reason})")
        return Kill(task.task_id, task.agent_id)

    def _replacement_kills(self, now: float) -> list[Action]:
        if not self._outdated() and not self._surplus_possible():
            return []  # nothing to replace or remove; skips scanning every task on every event
        active = self._active()
        if any(t.kill_reason is not None for t in active):
            return []  # one replacement at a time
        masters = sorted((t for t in active if t.role == Role.MASTER), key=lambda t: t.slot)
        outdated_masters = [t for t in masters if not self._is_current(t)]
        if outdated_masters:
            task = outdated_masters[0]
            others_running = all(t.state == RUNNING for t in masters if t is not task)
            if task.state != RUNNING or others_running or self.spec.master_count == 1:
                return [self._kill(task, KILL_FOR_UPDATE, now)]
            return []
        if not self.masters_ready():
            return []
        workers = sorted((t for t in active if t.role == Role.WORKER), key=lambda t: t.hostname)
        surplus = self._surplus_worker_hosts()
        for task in workers:
            if task.hostname in surplus:
                return [self._kill(task, KILL_FOR_REMOVAL, now)]
        for host in [h for h in self.state.worker_hosts if h in surplus]:
            if self._active_in(worker_slot(host)) is None:
                self._drop_worker_host(host)
        down = [
            h
            for h in self.state.worker_hosts
            if (t := self._active_in(worker_slot(h))) is None or t.state != RUNNING
        ]
        outdated = self._outdated()
        for task in workers:
            if task.task_id not in outdated:
                continue
            if task.state != RUNNING:
                return [self._kill(task, KILL_FOR_UPDATE, now)]  # already down: no extra outage
            if not down:
                return [self._kill(task, KILL_FOR_UPDATE, now)]
            return []
        return []

    def wants_offers(self, now: float) -> bool:
        if not (self.connected and self.reconciled) or self.teardown:
            return False
        if any(self._launchable(master_slot(i), now) for i in range(self.spec.master_count)):
            return True
        if not self.masters_ready() or self._masters_outdated():
            return False
        surplus = self._surplus_worker_hosts()
        if any(self._launchable(worker_slot(h), now) for h in self.state.worker_hosts if h not in surplus):
            return True
        return not self._worker_target_reached()

    def _waiting_for_a_host(self, now: float) -> bool:
        """Some slot needs an offer from one particular host (a relaunch or a replacement)."""
        for index, host in enumerate(self.state.master_hosts):
            if host is not None and self._launchable(master_slot(index), now):
                return True
        return any(self._launchable(worker_slot(h), now) for h in self.state.worker_hosts)

    def _offer_interest(self, now: float) -> list[Action]:
        wants = self.wants_offers(now)
        if wants and self._waiting_for_a_host(now) and now - self._last_revive >= self.timing.revive_interval:
            self._revive_wanted = True  # declines with long filters may hide the host we need
        if wants and (self._suppressed or self._revive_wanted):
            self._suppressed = False
            self._revive_wanted = False
            self._last_revive = now
            return [Revive()]
        if not wants:
            self._revive_wanted = False
            if not self._suppressed:
                self._suppressed = True
                return [Suppress()]
        return []

    # ---- views -----------------------------------------------------------------------------
    def phase(self) -> str:
        if self.teardown:
            return "tearing_down"
        if not self.connected:
            return "disconnected" if self.state.framework_id else "registering"
        if not self.reconciled:
            return "reconciling"
        masters = [self._active_in(master_slot(i)) for i in range(self.spec.master_count)]
        if not all(t is not None and t.state == RUNNING for t in masters):
            return "launching_masters"
        active = self._active()
        if any(t.kill_reason is not None for t in active) or self._outdated():
            return "rolling_update"
        workers_down = any(
            (t := self._active_in(worker_slot(h))) is None or t.state != RUNNING
            for h in self.state.worker_hosts
        )
        if (
            workers_down
            or not self.state.worker_hosts
            or (self.spec.worker_count is not None and len(self.state.worker_hosts) < self.spec.worker_count)
        ):
            return "launching_workers"
        return "running"

    def tasks_view(self) -> list[dict[str, Any]]:
        rows = []
        for task in sorted(self.state.tasks.values(), key=lambda t: (t.role, t.slot)):
            rows.append(
                {
                    "task_id": task.task_id,
                    "role": task.role,
                    "host": task.hostname,
                    "agent_id": task.agent_id,
                    "state": task.state,
                    "since": task.state_since,
                    "config": task.config_hash,
                    "config_current": self._is_current(task),
                    "being_replaced": task.kill_reason is not None,
                    "message": task.message,
                }
            )
        return rows

    def waiting_slots(self) -> list[dict[str, Any]]:
        now = self.clock()
        rows: list[dict[str, Any]] = []
        slots: Iterable[tuple[str, str | None]] = [
            (master_slot(i), h) for i, h in enumerate(self.state.master_hosts)
        ] + [(worker_slot(h), h) for h in self.state.worker_hosts]
        for slot, host in slots:
            if self._active_in(slot) is not None:
                continue
            backoff = self._backoff_of(slot)
            rows.append(
                {
                    "slot": slot,
                    "host": host,
                    "failures": backoff.failures,
                    "relaunch_in": max(0.0, backoff.not_before - now),
                }
            )
        return rows


class _Placement:
    """The offers of one OFFERS event as they get used up."""

    def __init__(self, views: Sequence[OfferView]) -> None:
        self.views = {v.offer_id: v for v in views}
        self.used: set[str] = set()
        self.needed: set[str] = set()
        self.reasons: dict[str, list[str]] = {}
        self.launches: list[Launch] = []

    def available(self) -> list[OfferView]:
        return [v for k, v in self.views.items() if k not in self.used]

    def explain(self, view: OfferView, task_name: str, problems: Sequence[str]) -> None:
        self.reasons.setdefault(view.offer_id, []).append(f"{task_name}: {'; '.join(problems)}")

    def launch(self, launch: Launch, view: OfferView) -> None:
        self.used.add(view.offer_id)
        self.launches.append(launch)
