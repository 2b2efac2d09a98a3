"""The scheduler state machine, driven with v1 events the way the Mesos master sends them."""

from __future__ import annotations

import base64
import itertools
import json
from collections.abc import Sequence
from typing import Any

import pytest

from executor.task_plan import TaskPlan
from framework.scheduler_core import (
    LAUNCHING,
    OFFERS_PER_SLICE,
    Action,
    Decline,
    Kill,
    Launch,
    Reconcile,
    ReloadRefused,
    Revive,
    SchedulerCore,
    Suppress,
    Timing,
)
from framework.spec import ClusterSpec, Key
from framework.state_store import PersistedState
from framework.task_factory import CONFIG_LABEL
from tests.unit.test_framework_events import FRAMEWORK_ID, make_spec, offer, update

HOSTS = ["host-1", "host-2", "host-3"]


class FakeClock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class Cluster:
    """Plays the Mesos master's part for one SchedulerCore and records every action."""

    def __init__(
        self, spec: ClusterSpec, state: PersistedState | None = None, timing: Timing | None = None
    ) -> None:
        self.clock = FakeClock()
        self.core = SchedulerCore(spec, state or PersistedState(), self.clock, timing)
        self.log: list[Action] = []

    def _record(self, actions: list[Action]) -> list[Action]:
        self.log.extend(actions)
        return actions

    def subscribe(self) -> list[Action]:
        return self._record(self.core.on_subscribed(FRAMEWORK_ID))

    def offers(self, *hosts: str, **kwargs: Any) -> list[Action]:
        return self._record(self.core.on_offers([offer(h, **kwargs) for h in hosts]))

    def raw_offers(self, offers: Sequence[dict[str, Any]]) -> list[Action]:
        return self._record(self.core.on_offers(list(offers)))

    def update(self, task_id: str, state: str, **kwargs: Any) -> list[Action]:
        return self._record(self.core.on_update(update(task_id, state, **kwargs)))

    def tick(self, seconds: float = 0.0) -> list[Action]:
        self.clock.advance(seconds)
        return self._record(self.core.tick())

    def run(self, task_id: str) -> list[Action]:
        self.update(task_id, "TASK_STARTING")
        return self.update(task_id, "TASK_RUNNING")

    def task(self, role: str, host: str) -> str:
        found = [t.task_id for t in self.core.state.tasks.values() if t.role == role and t.hostname == host]
        assert len(found) == 1, (role, host, self.core.state.tasks)
        return found[0]

    def states(self, role: str) -> dict[str, str]:
        return {t.hostname: t.state for t in self.core.state.tasks.values() if t.role == role}

    def start_everything(self, hosts: Sequence[str] = HOSTS) -> None:
        """Subscribe, run the master on hosts[0] and a worker on every host."""
        self.subscribe()
        self.offers(*hosts)
        self.run(self.task("master", hosts[0]))
        self.offers(*hosts)
        for host in hosts:
            self.run(self.task("worker", host))


def launches(actions: Sequence[Action]) -> list[dict[str, Any]]:
    return [info for a in actions if isinstance(a, Launch) for info in a.task_infos]


def launched_hosts(cluster: Cluster, actions: Sequence[Action]) -> list[tuple[str, str]]:
    result = []
    for info in launches(actions):
        record = cluster.core.state.tasks[info["task_id"]["value"]]
        result.append((record.role, record.hostname))
    return result


def kills(actions: Sequence[Action]) -> list[str]:
    return [a.task_id for a in actions if isinstance(a, Kill)]


def declined(actions: Sequence[Action]) -> dict[float, int]:
    result: dict[float, int] = {}
    for action in actions:
        if isinstance(action, Decline):
            result[action.refuse_seconds] = result.get(action.refuse_seconds, 0) + len(action.offer_ids)
    return result


def plan_of(info: dict[str, Any]) -> TaskPlan:
    return TaskPlan.from_task_data(info["data"])


# ---- phases and placement ----------------------------------------------------------------------
def test_masters_first_then_one_worker_per_host() -> None:
    cluster = Cluster(make_spec())
    assert cluster.core.phase() == "registering"
    cluster.subscribe()
    first = cluster.offers(*HOSTS)
    assert launched_hosts(cluster, first) == [("master", "host-1")]
    assert declined(first) == {}, "the other hosts' offers are kept for the workers"
    assert cluster.core.phase() == "launching_masters"

    master = cluster.task("master", "host-1")
    cluster.update(master, "TASK_STARTING")
    assert launches(cluster.offers("host-1")) == [], "no worker before the master answers"

    after_ready = cluster.update(master, "TASK_RUNNING")
    assert sorted(launched_hosts(cluster, after_ready)) == [("worker", h) for h in HOSTS], (
        "the kept offers start the workers as soon as the master answers"
    )
    kinds = [type(a).__name__ for a in after_ready]
    assert kinds.index("Revive") < kinds.index("Launch"), "the ACCEPTs' refusal filters outlive the REVIVE"
    assert cluster.core.phase() == "launching_workers"
    for host in HOSTS:
        cluster.run(cluster.task("worker", host))
    assert cluster.core.phase() == "running"
    again = cluster.offers(*HOSTS)
    assert launches(again) == []
    assert declined(again) == {3600.0: 3}


def test_worker_plan_points_at_the_master() -> None:
    cluster = Cluster(make_spec(**{"alluxio.user.file.writetype.default": "CACHE_THROUGH"}))
    cluster.subscribe()
    master_info = launches(cluster.offers("host-1"))[0]
    master_plan = plan_of(master_info)
    assert master_plan.role == "master"
    assert master_plan.alluxio_properties[Key.MASTER_HOSTNAME] == "host-1"
    assert master_plan.ports == {"rpc": 19998, "web": 19999, "embedded_journal": 19200}
    assert master_plan.journal_dir == "/var/lib/alluxio-mesos/journal"
    cluster.run(master_info["task_id"]["value"])
    worker_info = launches(cluster.offers("host-2"))[0]
    plan = plan_of(worker_info)
    assert plan.role == "worker"
    assert plan.alluxio_properties[Key.MASTER_HOSTNAME] == "host-1"
    assert plan.alluxio_properties[Key.WORKER_HOSTNAME] == "host-2"
    assert plan.alluxio_properties["alluxio.user.file.writetype.default"] == "CACHE_THROUGH"
    assert plan.ramdisk_size_bytes == 1024**3
    resources = {r["name"]: r for r in worker_info["resources"]}
    assert resources["mem"]["scalar"]["value"] == 2048.0
    assert resources["ports"]["ranges"]["range"] == [
        {"begin": 29998, "end": 29998},
        {"begin": 30000, "end": 30000},
    ]


def test_two_offers_from_one_host_get_one_worker() -> None:
    cluster = Cluster(make_spec())
    cluster.subscribe()
    cluster.offers("host-1")
    cluster.run(cluster.task("master", "host-1"))
    actions = cluster.raw_offers([offer("host-2"), offer("host-2")])
    assert launched_hosts(cluster, actions) == [("worker", "host-2")]


def test_worker_count_limits_workers_and_then_suppresses() -> None:
    cluster = Cluster(make_spec(**{Key.WORKER_COUNT: "2"}))
    cluster.subscribe()
    cluster.offers("host-1")
    cluster.run(cluster.task("master", "host-1"))
    actions = cluster.offers("host-1", "host-2", "host-3", "host-4")
    assert len(launches(actions)) == 2
    assert Suppress() in actions, "nothing more is wanted"
    assert cluster.core.state.worker_hosts == ["host-1", "host-2"]


def test_all_mode_never_suppresses_so_new_agents_get_workers() -> None:
    cluster = Cluster(make_spec())
    cluster.start_everything()
    last_suppress = max(i for i, a in enumerate(cluster.log) if isinstance(a, Suppress))
    last_revive = max(i for i, a in enumerate(cluster.log) if isinstance(a, Revive))
    assert last_revive > last_suppress, "suppressed only while the master was starting"
    assert cluster.core.wants_offers(cluster.clock.now)
    assert launched_hosts(cluster, cluster.offers("host-9")) == [("worker", "host-9")]


def test_unusable_offers_get_a_reason_and_short_filters() -> None:
    cluster = Cluster(make_spec(**{Key.WORKER_CONSTRAINTS: "rack:r1"}))
    cluster.subscribe()
    cluster.offers("host-1", attributes={"rack": "r1"})
    cluster.run(cluster.task("master", "host-1"))
    actions = cluster.raw_offers(
        [
            offer("host-1", attributes={"rack": "r1"}),
            offer("host-2", agent_id="a2", ports=((31000, 32000),), attributes={"rack": "r1"}),
            offer("host-3", agent_id="a3", attributes={"rack": "r2"}),
            offer("host-4", agent_id="a4", cpus=0.5, attributes={"rack": "r1"}),
        ]
    )
    assert launched_hosts(cluster, actions) == [("worker", "host-1")]
    # Resources may come back soon; a constraint will not until the spec changes.
    assert declined(actions) == {60.0: 2, 3600.0: 1}
    lines = {e.line() for e in cluster.core.declines.entries()}
    assert lines == {
        "agent a2 (host-2): AlluxioWorker: missing ports 29998,30000",
        "agent a3 (host-3): AlluxioWorker: constraint rack:EQ:r1 not met (rack is 'r2')",
        "agent a4 (host-4): AlluxioWorker: cpus 0.5 < 1",
    }
    cluster.raw_offers([offer("host-2", agent_id="a2", ports=((31000, 32000),), attributes={"rack": "r1"})])
    counts = {e.agent_id: e.count for e in cluster.core.declines.entries()}
    assert counts["a2"] == 2, "a repeated reason is counted, not logged again"


def test_master_pinned_to_a_host() -> None:
    cluster = Cluster(make_spec(**{Key.MASTER_HOSTNAME: "host-2"}))
    cluster.subscribe()
    actions = cluster.offers("host-1", "host-3")
    assert launches(actions) == []
    assert launched_hosts(cluster, cluster.offers("host-2")) == [("master", "host-2")]


def test_highly_available_masters_are_placed_together() -> None:
    cluster = Cluster(make_spec(**{Key.MASTER_COUNT: "3"}))
    cluster.subscribe()
    assert launches(cluster.offers("host-1", "host-2")) == [], "every master must know all three hosts"
    third = cluster.offers("host-3")
    assert launched_hosts(cluster, third) == [("master", "host-3")]
    plan = plan_of(launches(third)[0])
    assert plan.alluxio_properties[Key.EMBEDDED_JOURNAL_ADDRESSES] == "host-1:19200,host-2:19200,host-3:19200"
    assert plan.alluxio_properties[Key.MASTER_RPC_ADDRESSES] == "host-1:19998,host-2:19998,host-3:19998"
    assert sorted(launched_hosts(cluster, cluster.offers("host-1", "host-2"))) == [
        ("master", "host-1"),
        ("master", "host-2"),
    ]
    cluster.run(cluster.task("master", "host-1"))
    assert launches(cluster.offers("host-4")) == [], "one of three masters is no quorum"
    quorum = cluster.run(cluster.task("master", "host-2"))
    assert launched_hosts(cluster, quorum) == [("worker", "host-4")], "with the offer kept meanwhile"
    assert Key.MASTER_HOSTNAME not in plan_of(launches(quorum)[0]).alluxio_properties


# ---- failures and relaunch -------------------------------------------------------------------
def test_failed_worker_is_relaunched_on_its_host_with_exponential_backoff() -> None:
    cluster = Cluster(make_spec(**{Key.WORKER_COUNT: "3"}))
    cluster.start_everything()
    delays = []
    for _ in range(4):
        worker = cluster.task("worker", "host-2")
        cluster.update(worker, "TASK_FAILED", message="java exited with status 1")
        started = cluster.clock.now
        # Other hosts are no substitute: the worker slot belongs to host-2.
        assert launches(cluster.offers("host-4")) == []
        while not launches(cluster.offers("host-2")):
            cluster.tick(1.0)
        delays.append(cluster.clock.now - started)
        cluster.run(cluster.task("worker", "host-2"))
    assert delays == [5.0, 10.0, 20.0, 40.0]


def test_backoff_is_capped_and_reset_after_a_stable_run() -> None:
    spec = make_spec(**{Key.BACKOFF_INITIAL: "10secs", Key.BACKOFF_MAX: "30secs"})
    cluster = Cluster(spec, timing=Timing(stable_running=300.0))
    cluster.start_everything()
    waits = []
    for run_for in (0.0, 0.0, 0.0, 400.0):
        cluster.clock.advance(run_for)
        cluster.update(cluster.task("worker", "host-3"), "TASK_LOST", reason="REASON_AGENT_REMOVED")
        started = cluster.clock.now
        while not launches(cluster.offers("host-3")):
            cluster.tick(1.0)
        waits.append(cluster.clock.now - started)
        cluster.run(cluster.task("worker", "host-3"))
    assert waits == [10.0, 20.0, 30.0, 10.0]


def test_failed_master_is_relaunched_on_the_same_host() -> None:
    cluster = Cluster(make_spec())
    cluster.start_everything()
    cluster.update(cluster.task("master", "host-1"), "TASK_FAILED")
    assert cluster.core.phase() == "launching_masters"
    cluster.tick(5.0)
    assert launches(cluster.offers("host-2", "host-3")) == []
    assert launched_hosts(cluster, cluster.offers("host-1")) == [("master", "host-1")]


def test_unrequested_kill_is_a_failure_but_a_requested_one_is_not() -> None:
    cluster = Cluster(make_spec(**{Key.WORKER_COUNT: "3"}))
    cluster.start_everything()
    cluster.update(cluster.task("worker", "host-1"), "TASK_KILLED")
    assert launches(cluster.offers("host-1")) == [], "killed by someone else: backoff applies"
    cluster.tick(5.0)
    assert launches(cluster.offers("host-1"))


def test_launch_that_never_reached_mesos_is_retried() -> None:
    cluster = Cluster(make_spec())
    cluster.subscribe()
    info = launches(cluster.offers("host-1"))[0]
    cluster._record(cluster.core.launch_failed(info["task_id"]["value"], "ACCEPT failed"))
    assert cluster.core.state.tasks == {}
    cluster.tick(5.0)
    assert launched_hosts(cluster, cluster.offers("host-1")) == [("master", "host-1")]


def test_a_launch_without_news_is_reconciled() -> None:
    cluster = Cluster(make_spec(), timing=Timing(launch_stale=120.0))
    cluster.subscribe()
    info = launches(cluster.offers("host-1"))[0]
    task_id = info["task_id"]["value"]
    assert cluster.core.state.tasks[task_id].state == LAUNCHING
    assert task_id in cluster.core.dirty_tasks, "the record must be saved before the ACCEPT leaves"
    assert not [a for a in cluster.tick(60.0) if isinstance(a, Reconcile)]
    stale = [a for a in cluster.tick(61.0) if isinstance(a, Reconcile)]
    assert stale == [Reconcile(((task_id, info["agent_id"]["value"]),))]
    cluster.update(
        task_id, "TASK_LOST", source="SOURCE_MASTER", reason="REASON_RECONCILIATION", with_uuid=False
    )
    assert task_id not in cluster.core.state.tasks


# ---- reconciliation ----------------------------------------------------------------------------
def restarted(previous: Cluster, spec: ClusterSpec | None = None) -> Cluster:
    """A new framework process with the state the previous one saved."""
    saved = PersistedState.model_validate_json(previous.core.state.model_dump_json())
    cluster = Cluster(spec or previous.core.spec, saved)
    cluster.clock.now = previous.clock.now + 30
    return cluster


def test_nothing_happens_until_reconciliation_is_complete() -> None:
    before = Cluster(make_spec())
    before.start_everything()
    cluster = restarted(before)
    actions = cluster.subscribe()
    (explicit,) = [a for a in actions if isinstance(a, Reconcile)]
    assert sorted(t for t, _ in explicit.tasks) == sorted(cluster.core.state.tasks)
    assert Suppress() in actions
    assert cluster.core.phase() == "reconciling"
    gated = cluster.offers("host-4")
    assert launches(gated) == []
    assert declined(gated) == {10.0: 1}

    master = cluster.task("master", "host-1")
    cluster.update(
        master, "TASK_RUNNING", source="SOURCE_MASTER", reason="REASON_RECONCILIATION", with_uuid=False
    )
    retry = cluster.tick(6.0)
    (again,) = [a for a in retry if isinstance(a, Reconcile)]
    assert master not in [t for t, _ in again.tasks], "only unanswered tasks are asked again"
    assert len(again.tasks) == 3
    assert launches(cluster.offers("host-4")) == []

    for host in HOSTS:
        last = cluster.update(
            cluster.task("worker", host), "TASK_RUNNING", source="SOURCE_MASTER", with_uuid=False
        )
    assert Reconcile(()) in last, "then an implicit reconciliation for tasks we do not know"
    assert Revive() in last
    assert cluster.core.phase() == "running"
    assert launched_hosts(cluster, cluster.offers(*HOSTS, "host-4")) == [("worker", "host-4")]


def test_reconciliation_retries_back_off() -> None:
    before = Cluster(make_spec())
    before.start_everything()
    cluster = restarted(before)
    cluster.subscribe()
    asked_at = []
    for _ in range(300):
        if any(isinstance(a, Reconcile) for a in cluster.tick(1.0)):
            asked_at.append(cluster.clock.now)
    gaps = [b - a for a, b in itertools.pairwise(asked_at)]
    assert gaps[:5] == [10.0, 20.0, 40.0, 60.0, 60.0]


def test_tasks_lost_while_away_are_relaunched_and_no_host_gets_a_second_one() -> None:
    before = Cluster(make_spec())
    before.start_everything()
    cluster = restarted(before)
    cluster.subscribe()
    for task in list(cluster.core.state.tasks.values()):
        state = "TASK_LOST" if task.hostname == "host-2" and task.role == "worker" else "TASK_RUNNING"
        cluster.update(task.task_id, state, source="SOURCE_MASTER", with_uuid=False)
    cluster.tick(5.0)
    actions = cluster.offers(*HOSTS)
    assert launched_hosts(cluster, actions) == [("worker", "host-2")]


def test_unknown_tasks_are_killed() -> None:
    cluster = Cluster(make_spec())
    cluster.start_everything()
    actions = cluster.update("alluxio-worker-host-7-deadbeef", "TASK_RUNNING", agent_id="a7")
    assert kills(actions) == ["alluxio-worker-host-7-deadbeef"]
    assert kills(cluster.update("alluxio-worker-host-8-deadbeef", "TASK_FAILED")) == []


# ---- rolling updates ---------------------------------------------------------------------------
def drive_rolling_update(cluster: Cluster, hosts: Sequence[str]) -> list[str]:
    """Play Mesos until nothing is outdated; return the hosts in the order they were replaced, and
    check that never more than one worker was down at a time."""
    order: list[str] = []
    for _ in range(50):
        outdated = [t for t in cluster.core.state.tasks.values() if t.kill_reason is not None]
        down = [h for h in hosts if cluster.states("worker").get(h) != "TASK_RUNNING"]
        assert len(down) <= 1, f"two workers down at once: {down}"
        if not outdated:
            if cluster.core.phase() == "running":
                return order
            launched = cluster.offers(*hosts)
            for info in launches(launched):
                cluster.run(info["task_id"]["value"])
            continue
        (task,) = outdated
        order.append(f"{task.role}@{task.hostname}")
        # The kill is on its way but the task still reports RUNNING: nothing else may be killed.
        assert kills(cluster.tick(1.0)) == []
        assert launches(cluster.offers(*hosts)) == []
        cluster.update(task.task_id, "TASK_KILLING")
        cluster.update(task.task_id, "TASK_KILLED")
    raise AssertionError("the rolling update did not finish")


def test_worker_config_change_rolls_workers_one_at_a_time() -> None:
    cluster = Cluster(make_spec())
    cluster.start_everything()
    old_hashes = {t.task_id: t.config_hash for t in cluster.core.state.tasks.values()}
    master = cluster.task("master", "host-1")
    actions = cluster._record(cluster.core.replace_spec(make_spec(**{Key.WORKER_MEM: "2GB"})))
    assert len(kills(actions)) == 1
    assert cluster.core.phase() == "rolling_update"
    order = drive_rolling_update(cluster, HOSTS)
    assert order == ["worker@host-1", "worker@host-2", "worker@host-3"]
    assert cluster.task("master", "host-1") == master, "the master did not need a restart"
    for task in cluster.core.state.tasks.values():
        if task.role == "worker":
            assert task.task_id not in old_hashes


def test_master_change_restarts_the_master_first() -> None:
    cluster = Cluster(make_spec())
    cluster.start_everything()
    new = make_spec(**{"alluxio.master.audit.logging.enabled": "true"})
    actions = cluster._record(cluster.core.replace_spec(new))
    master = cluster.task("master", "host-1")
    assert kills(actions) == [master]
    cluster.update(master, "TASK_KILLED")
    assert kills(cluster.tick(1.0)) == [], "workers wait for the new master"
    cluster.run(launches(cluster.offers("host-1"))[0]["task_id"]["value"])
    order = drive_rolling_update(cluster, HOSTS)
    assert order == ["worker@host-1", "worker@host-2", "worker@host-3"]


def test_no_restart_when_nothing_that_shapes_a_task_changed() -> None:
    cluster = Cluster(make_spec())
    cluster.start_everything()
    same_tasks = make_spec(**{Key.FAILOVER_TIMEOUT: "2weeks", Key.STATUS_PORT: "20000"})
    actions = cluster._record(cluster.core.replace_spec(same_tasks))
    assert kills(actions) == []
    assert cluster.core.phase() == "running"
    assert all(t["config_current"] for t in cluster.core.tasks_view())


def test_restart_with_a_new_config_rolls_after_reconciliation() -> None:
    before = Cluster(make_spec())
    before.start_everything()
    cluster = restarted(before, make_spec(**{Key.WORKER_CPU: "2"}))
    cluster.subscribe()
    tasks = list(cluster.core.state.tasks.values())
    actions: list[Action] = []
    for task in tasks:
        actions += cluster.update(task.task_id, "TASK_RUNNING", source="SOURCE_MASTER", with_uuid=False)
    assert len(kills(actions)) == 1
    assert drive_rolling_update(cluster, HOSTS) == ["worker@host-1", "worker@host-2", "worker@host-3"]
    for info_task in cluster.core.state.tasks.values():
        if info_task.role == "worker":
            assert cluster.core._is_current(info_task)


def test_an_outdated_worker_that_is_down_does_not_block_the_update() -> None:
    cluster = Cluster(make_spec(**{Key.WORKER_COUNT: "3"}))
    cluster.start_everything()
    cluster.update(cluster.task("worker", "host-3"), "TASK_FAILED")
    actions = cluster._record(
        cluster.core.replace_spec(make_spec(**{Key.WORKER_COUNT: "3", Key.WORKER_CPU: "2"}))
    )
    assert kills(actions) == [], "host-3 is down: killing another worker would make two"
    cluster.tick(5.0)
    relaunched = launches(cluster.offers("host-3"))
    assert plan_of(relaunched[0])
    assert relaunched[0]["resources"][0]["scalar"]["value"] == 2.0
    assert len(kills(cluster.run(relaunched[0]["task_id"]["value"]))) == 1, "now the others roll"


def test_lowering_the_worker_count_removes_workers_one_at_a_time() -> None:
    cluster = Cluster(make_spec())
    cluster.start_everything()
    actions = cluster._record(cluster.core.replace_spec(make_spec(**{Key.WORKER_COUNT: "1"})))
    (first,) = kills(actions)
    (second,) = kills(cluster.update(first, "TASK_KILLED"))
    assert kills(cluster.update(second, "TASK_KILLED")) == []
    assert len(cluster.core.state.worker_hosts) == 1
    assert launches(cluster.offers(*HOSTS)) == []


def test_a_constraint_change_removes_workers_on_excluded_hosts() -> None:
    cluster = Cluster(make_spec())
    cluster.start_everything()
    new = make_spec(**{Key.WORKER_CONSTRAINTS: "hostname:UNLIKE:host-2"})
    (victim,) = kills(cluster._record(cluster.core.replace_spec(new)))
    assert cluster.core.state.tasks[victim].hostname == "host-2"
    cluster.update(victim, "TASK_KILLED")
    assert "host-2" not in cluster.core.state.worker_hosts
    assert launches(cluster.offers("host-2")) == []


def test_changes_that_need_a_new_cluster_are_refused() -> None:
    cluster = Cluster(make_spec())
    cluster.start_everything()
    with pytest.raises(ReloadRefused, match=Key.MASTER_COUNT):
        cluster.core.replace_spec(make_spec(**{Key.MASTER_COUNT: "3"}))
    assert cluster.core.reload_error is not None
    assert cluster.core.spec.master_count == 1


def test_a_saved_cluster_with_another_master_count_is_refused() -> None:
    before = Cluster(make_spec())
    before.start_everything()
    with pytest.raises(ReloadRefused, match="changing the number of masters"):
        restarted(before, make_spec(**{Key.MASTER_COUNT: "3"}))


def test_the_config_label_matches_the_record_and_hides_values() -> None:
    cluster = Cluster(make_spec(**{"aws.secretKey": "very-secret-value"}))
    cluster.subscribe()
    info = launches(cluster.offers("host-1"))[0]
    labels = {label["key"]: label["value"] for label in info["labels"]["labels"]}
    record = cluster.core.state.tasks[info["task_id"]["value"]]
    assert labels[CONFIG_LABEL] == record.config_hash
    visible = json.dumps({k: v for k, v in info.items() if k != "data"})
    assert "very-secret-value" not in visible
    assert base64.b64decode(info["data"]).count(b"very-secret-value") == 1, "Alluxio itself needs it"


# ---- hosts that disappear, teardown ------------------------------------------------------------
def test_a_lone_master_moves_when_its_host_is_gone() -> None:
    cluster = Cluster(make_spec(), timing=Timing(relocate_after=600.0))
    cluster.start_everything()
    cluster.update(cluster.task("master", "host-1"), "TASK_LOST", reason="REASON_AGENT_REMOVED")
    for _ in range(59):
        cluster.tick(10.0)
        assert launches(cluster.offers("host-2")) == []
    cluster.tick(20.0)
    assert launched_hosts(cluster, cluster.offers("host-2")) == [("master", "host-2")]


def test_teardown_stops_all_launches() -> None:
    cluster = Cluster(make_spec())
    cluster.subscribe()
    cluster.core.begin_teardown()
    actions = cluster.offers(*HOSTS)
    assert launches(actions) == []
    assert cluster.core.phase() == "tearing_down"


# ---- offers kept while the masters start ------------------------------------------------------
def held_ids(cluster: Cluster) -> set[str]:
    return set(cluster.core._held)


def test_kept_offers_go_back_when_the_master_fails() -> None:
    cluster = Cluster(make_spec())
    cluster.subscribe()
    cluster.offers(*HOSTS)
    kept = held_ids(cluster)
    assert len(kept) == 2
    actions = cluster.update(cluster.task("master", "host-1"), "TASK_FAILED")
    declines = [a for a in actions if isinstance(a, Decline)]
    assert [set(d.offer_ids) for d in declines] == [kept]
    assert declines[0].refuse_seconds == cluster.core.timing.decline_not_ready
    assert launches(actions) == []


def test_kept_offers_go_back_after_the_hold_time() -> None:
    cluster = Cluster(make_spec())
    cluster.subscribe()
    cluster.offers(*HOSTS)
    kept = held_ids(cluster)
    assert declined(cluster.tick(cluster.core.timing.hold_offers - 1)) == {}
    actions = cluster.tick(2)
    assert [set(a.offer_ids) for a in actions if isinstance(a, Decline)] == [kept]
    assert held_ids(cluster) == set()


def test_a_rescinded_or_disconnected_offer_is_never_used() -> None:
    cluster = Cluster(make_spec())
    cluster.subscribe()
    first = [offer(h) for h in HOSTS]
    cluster.raw_offers(first)
    cluster.core.on_rescinded(first[1]["id"]["value"])  # host-2's
    master = cluster.task("master", "host-1")
    started = cluster.run(master)
    assert launched_hosts(cluster, started) == [("worker", "host-3")]

    other = Cluster(make_spec())
    other.subscribe()
    other.offers(*HOSTS)
    other.core.on_disconnected()
    assert held_ids(other) == set()


def test_many_kept_offers_are_decided_a_slice_at_a_time() -> None:
    hosts = [f"host-{i}" for i in range(1, 2 * OFFERS_PER_SLICE + 12)]
    cluster = Cluster(make_spec())
    cluster.subscribe()
    cluster.offers(*hosts)
    assert not cluster.core.held_offers_ready()  # the master does not answer yet
    started = cluster.run(cluster.task("master", "host-1"))
    assert len(launches(started)) == OFFERS_PER_SLICE
    slices = [started]
    while cluster.core.held_offers_ready():
        slices.append(cluster.core.use_held_offers())
    assert [len(launches(s)) for s in slices] == [
        OFFERS_PER_SLICE,
        OFFERS_PER_SLICE,
        len(hosts) - 1 - 2 * OFFERS_PER_SLICE,
    ]
    assert sorted(cluster.states("worker")) == sorted(hosts[1:])
    assert held_ids(cluster) == set()
