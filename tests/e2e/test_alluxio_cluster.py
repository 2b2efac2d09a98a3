"""Alluxio on a local multi-host Mesos cluster, end to end: the framework's real CLI, the stand-in
Mesos master and three agents on three network-namespace hosts (plus one host that lacks
Alluxio's ports), the real tarball and executor bundle fetched over HTTP, real JVMs and tmpfs.

One deployment is shared by the module (deploying costs minutes on 2 cores). Every test first
waits until that deployment is healthy, so each test's assertions stand on their own; the
teardown test runs last. Failures carry the framework status, the Mesos tasks and log tails.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import pathlib
import secrets
import signal
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from framework.spec import Key
from sandbox.localcluster import ClusterHost, HostSpec, LocalCluster
from tests.e2e.alluxio_client import live_workers
from tests.e2e.conftest import publish_artifacts
from tests.e2e.deployment import (
    EXECUTOR_BUNDLE,
    MASTER_MAIN_CLASS,
    RAMDISK_BYTES,
    TERMINAL,
    WORKER_MAIN_CLASS,
    Artifacts,
    Deployment,
)
from tests.integration.test_framework_mesos import cli

pytestmark = pytest.mark.e2e

FULL_HOSTS = 3
# Mesos' default port range only: no Alluxio port fits, so the framework must say why.
PORTLESS_RESOURCES = "cpus:4;mem:8192;disk:20000;ports:[31000-32000]"
DEPLOY_TIMEOUT = 480.0
RECOVERY_TIMEOUT = 300.0
WORKER_ONLY_PROPERTY = "alluxio.worker.block.heartbeat.interval"


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalCluster]:
    hosts = [HostSpec()] * FULL_HOSTS + [HostSpec(resources=PORTLESS_RESOURCES)]
    with LocalCluster(hosts, master_flags=["--heartbeat_interval=5secs"]) as local:
        yield local


@pytest.fixture(scope="module")
def artifacts(cluster: LocalCluster) -> Artifacts:
    return publish_artifacts(cluster)


@pytest.fixture(scope="module")
def deployment(cluster: LocalCluster, artifacts: Artifacts) -> Iterator[Deployment]:
    deployed = Deployment(cluster, artifacts, workers=FULL_HOSTS)
    try:
        deployed.start_framework()
        yield deployed
    finally:
        deployed.close()


def _portless_host(cluster: LocalCluster) -> ClusterHost:
    return cluster.hosts[FULL_HOSTS]


def _only(pids: list[int], what: str) -> int:
    assert len(pids) == 1, f"expected exactly one {what}, found pids {pids}"
    return pids[0]


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _tmpfs_size(path: str) -> int:
    stats = os.statvfs(path)
    return stats.f_blocks * stats.f_frsize


def _operator_task(deployment: Deployment, task_id: str) -> dict[str, Any]:
    for task in deployment.operator_tasks():
        if task["task_id"]["value"] == task_id:
            return task
    raise AssertionError(f"Mesos does not know task {task_id}")


def _first_timestamp(task: dict[str, Any], *states: str) -> float:
    stamps = [s["timestamp"] for s in task["statuses"] if s["state"] in states]
    assert stamps, f"task {task['id']} never reached {states}: {task['statuses']}"
    return float(min(stamps))


def _sandbox_files(host: ClusterHost, task_id: str, relative: str) -> list[pathlib.Path]:
    """Files in the task's sandbox(es) on `host` (runs/latest is a link to one of them: skipped)."""
    found = host.work_dir.glob(f"**/executors/{task_id}/runs/*/{relative}")
    return sorted(p for p in found if "latest" not in p.relative_to(host.work_dir).parts)


def _write_file(deployment: Deployment, path: str) -> bytes:
    content = secrets.token_hex(512).encode()
    local = deployment.cluster.base_dir / "shell" / f"{secrets.token_hex(4)}.txt"
    local.parent.mkdir(parents=True, exist_ok=True)
    local.write_bytes(content)
    written = deployment.shell().fs("copyFromLocal", str(local), path)
    assert written.returncode == 0, f"copyFromLocal failed:\n{written.stdout}\n{written.stderr}"
    return content


# ---- deploy ------------------------------------------------------------------------------------
def test_deploys_a_master_and_one_worker_per_host_and_serves_files(deployment: Deployment) -> None:
    healthy = deployment.wait_healthy(DEPLOY_TIMEOUT)
    cluster = deployment.cluster
    full = {h.hostname for h in cluster.hosts[:FULL_HOSTS]}

    workers = healthy.task_ids("worker")
    masters = healthy.task_ids("master")
    assert set(workers) == full, "one worker on each host that offers Alluxio's ports"
    assert len(masters) == 1
    (master_host,) = masters
    assert master_host in full

    # Mesos agrees: the same tasks, on those hosts.
    mesos = deployment.live_mesos_tasks()
    assert sorted(mesos.values()) == sorted(
        [("AlluxioMaster", master_host)] + [("AlluxioWorker", h) for h in full]
    ), mesos

    # Alluxio: three live workers, each offering exactly its ramdisk.
    live = live_workers(healthy.alluxio)
    assert sorted(w["address"]["host"] for w in live) == sorted(full)
    assert [w["capacityBytes"] for w in live] == [RAMDISK_BYTES] * FULL_HOSTS
    assert healthy.alluxio["capacity"]["total"] == FULL_HOSTS * RAMDISK_BYTES
    assert healthy.alluxio["version"] == "2.9.6"

    # On the hosts: one worker JVM and one tmpfs of the ramdisk's size each, one master JVM.
    for hostname in full:
        host = cluster.host(hostname)
        _only(host.pids_running(WORKER_MAIN_CLASS), f"worker JVM on {hostname}")
        (mount,) = host.mounts()
        assert _tmpfs_size(mount) == RAMDISK_BYTES
    _only(cluster.host(master_host).pids_running(MASTER_MAIN_CLASS), "master JVM")
    portless = _portless_host(cluster)
    assert portless.pids_running("alluxio.") == []
    assert portless.mounts() == []

    # A file written through the Alluxio shell reads back.
    content = _write_file(deployment, "/e2e-hello.txt")
    read = deployment.shell().fs("cat", "/e2e-hello.txt")
    assert read.returncode == 0, read.stderr
    assert read.stdout.encode() == content


# ---- failures ----------------------------------------------------------------------------------
def _worker_hosts_without_master(healthy: Any) -> list[str]:
    masters = set(healthy.task_ids("master"))
    return sorted(h for h in healthy.task_ids("worker") if h not in masters)


def _wait_replaced(deployment: Deployment, role: str, host: str, old_task: str) -> Any:
    def replaced() -> Any:
        healthy = deployment.healthy()
        if healthy is None:
            return None
        current = healthy.task_ids(role).get(host)
        return healthy if current not in (None, old_task) else None

    return deployment.wait_for(
        replaced, RECOVERY_TIMEOUT, f"a new {role} RUNNING on {host} and a healthy cluster"
    )


def test_a_killed_worker_jvm_is_relaunched_on_its_host(deployment: Deployment) -> None:
    before = deployment.wait_healthy(DEPLOY_TIMEOUT)
    hostname = _worker_hosts_without_master(before)[0]
    host = deployment.host(hostname)
    old_task = before.task_ids("worker")[hostname]
    jvm = _only(host.pids_running(WORKER_MAIN_CLASS), f"worker JVM on {hostname}")

    os.kill(jvm, signal.SIGKILL)
    after = _wait_replaced(deployment, "worker", hostname, old_task)

    failed = _operator_task(deployment, old_task)
    assert failed["state"] == "TASK_FAILED"
    message = failed["statuses"][-1].get("message", "")
    assert "killed by SIGKILL" in message, message
    # Only that worker was replaced, on the same host; Alluxio is back to three live workers.
    assert {h: t for h, t in after.task_ids("worker").items() if h != hostname} == {
        h: t for h, t in before.task_ids("worker").items() if h != hostname
    }
    assert after.task_ids("master") == before.task_ids("master")
    assert len(live_workers(after.alluxio)) == FULL_HOSTS
    assert _only(host.pids_running(WORKER_MAIN_CLASS), f"worker JVM on {hostname}") != jvm
    assert len(host.mounts()) == 1


def test_a_killed_executor_is_replaced_and_leaves_no_jvm_or_mount(deployment: Deployment) -> None:
    before = deployment.wait_healthy(DEPLOY_TIMEOUT)
    hostname = _worker_hosts_without_master(before)[-1]
    host = deployment.host(hostname)
    old_task = before.task_ids("worker")[hostname]
    executor = deployment.executor_pid(old_task)
    jvm = _only(host.pids_running(WORKER_MAIN_CLASS), f"worker JVM on {hostname}")
    (old_mount,) = host.mounts()

    os.kill(executor, signal.SIGKILL)
    _wait_replaced(deployment, "worker", hostname, old_task)

    assert _operator_task(deployment, old_task)["state"] in TERMINAL
    assert not _alive(jvm), "the dead executor's JVM must die with it"
    assert _only(host.pids_running(WORKER_MAIN_CLASS), f"worker JVM on {hostname}") != jvm
    (new_mount,) = host.mounts()
    assert new_mount != old_mount, "the dead executor's ramdisk was unmounted"
    assert _tmpfs_size(new_mount) == RAMDISK_BYTES


def test_a_killed_master_jvm_is_relaunched_and_keeps_its_journal(deployment: Deployment) -> None:
    before = deployment.wait_healthy(DEPLOY_TIMEOUT)
    content = _write_file(deployment, "/e2e-before-master-kill.txt")
    ((hostname, old_task),) = before.task_ids("master").items()
    host = deployment.host(hostname)
    jvm = _only(host.pids_running(MASTER_MAIN_CLASS), "master JVM")

    os.kill(jvm, signal.SIGKILL)
    after = _wait_replaced(deployment, "master", hostname, old_task)

    assert _operator_task(deployment, old_task)["state"] == "TASK_FAILED"
    ((new_host, new_task),) = after.task_ids("master").items()
    assert new_host == hostname, "the master stays with its journal"
    assert _sandbox_files(host, new_task, "logs/master.out"), "the new master ran in its own sandbox"
    assert not _sandbox_files(host, new_task, "logs/format.out"), "the journal was not formatted again"
    shell = deployment.shell()
    listed = shell.fs("ls", "/e2e-before-master-kill.txt")
    assert listed.returncode == 0, listed.stdout + listed.stderr
    assert "/e2e-before-master-kill.txt" in listed.stdout
    read = shell.fs("cat", "/e2e-before-master-kill.txt")
    assert read.returncode == 0, read.stderr
    assert read.stdout.encode() == content


# ---- framework restart ------------------------------------------------------------------------
def test_a_killed_framework_restarts_without_losing_or_duplicating_tasks(deployment: Deployment) -> None:
    before = deployment.wait_healthy(DEPLOY_TIMEOUT)
    framework_id = before.status["framework"]["id"]
    tasks_before = deployment.live_mesos_tasks(framework_id)
    assert len(tasks_before) == 1 + FULL_HOSTS

    deployment.kill_framework()
    deployment.wait_for(
        lambda: deployment.mesos_framework(framework_id)["active"] is False,
        60,
        "Mesos to see the framework disconnected",
    )
    assert deployment.live_mesos_tasks(framework_id) == tasks_before, "Alluxio keeps running meanwhile"

    deployment.start_framework()
    after = deployment.wait_healthy(RECOVERY_TIMEOUT)
    assert after.status["framework"]["id"] == framework_id
    assert deployment.mesos_framework(framework_id)["active"] is True
    assert deployment.live_mesos_tasks(framework_id) == tasks_before, "no task lost, none launched"
    events = after.status["recent_events"]
    assert any(f"reconciling {len(tasks_before)} task(s) before acting" in e for e in events), events
    assert any("reconciliation complete" in e for e in events), events
    assert not any("launching" in e or "killing" in e for e in events), events


# ---- configuration changes ---------------------------------------------------------------------
class RunningWorkerPoller:
    """Counts the framework's RUNNING worker tasks in /master/state every 0.2 s, in a thread."""

    def __init__(self, deployment: Deployment, framework_id: str) -> None:
        self.deployment = deployment
        self.framework_id = framework_id
        self.samples: list[tuple[float, int]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="running-worker-poller", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            try:
                tasks = self.deployment.mesos_framework(self.framework_id)["tasks"]
            except Exception:
                continue  # a missed sample only makes the proof weaker, never wrong
            running = sum(1 for t in tasks if t["name"] == "AlluxioWorker" and t["state"] == "TASK_RUNNING")
            self.samples.append((time.time(), running))

    def __enter__(self) -> RunningWorkerPoller:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


def test_changing_a_worker_property_restarts_workers_one_at_a_time_and_not_the_master(
    deployment: Deployment,
) -> None:
    before = deployment.wait_healthy(DEPLOY_TIMEOUT)
    framework = deployment.framework
    assert framework is not None
    old_workers = before.task_ids("worker")
    old_value = deployment.settings.get(WORKER_ONLY_PROPERTY, "1sec")
    new_value = "2sec" if old_value != "2sec" else "3sec"

    with RunningWorkerPoller(deployment, before.status["framework"]["id"]) as poller:
        deployment.write_conf({WORKER_ONLY_PROPERTY: new_value})
        framework.signal(signal.SIGHUP)

        def all_replaced() -> Any:
            healthy = deployment.healthy()
            if healthy is None:
                return None
            current = healthy.task_ids("worker")
            return healthy if not set(current.values()) & set(old_workers.values()) else None

        after = deployment.wait_for(all_replaced, 3 * RECOVERY_TIMEOUT, "every worker replaced")

    assert after.task_ids("master") == before.task_ids("master"), "a worker-only property leaves the master"
    new_workers = after.task_ids("worker")
    assert set(new_workers) == set(old_workers), "each worker is replaced on its own host"
    # Mesos' timestamps: kill 1, run 1, kill 2, run 2, kill 3, run 3.
    tasks = {t["task_id"]["value"]: t for t in deployment.operator_tasks()}
    windows = sorted(
        (
            _first_timestamp(tasks[old_workers[h]], "TASK_KILLING", "TASK_KILLED"),
            _first_timestamp(tasks[new_workers[h]], "TASK_RUNNING"),
            h,
        )
        for h in old_workers
    )
    for (_, back, host), (down, _, next_host) in itertools.pairwise(windows):
        assert back < down, f"{next_host} went down before {host} was back: {windows}"
    assert len(poller.samples) > 10, "the poller saw the rollout"
    assert min(n for _, n in poller.samples) >= FULL_HOSTS - 1, "never two workers down at once"
    assert min(n for _, n in poller.samples) == FULL_HOSTS - 1, "the poller saw a worker down"
    # The new workers run with the new value.
    for hostname, task_id in new_workers.items():
        (site,) = _sandbox_files(deployment.host(hostname), task_id, "conf/alluxio-site.properties")
        assert f"{WORKER_ONLY_PROPERTY}={new_value}" in site.read_text(encoding="utf-8").splitlines()


def test_reloading_an_unchanged_configuration_restarts_nothing(deployment: Deployment) -> None:
    before = deployment.wait_healthy(DEPLOY_TIMEOUT)
    framework = deployment.framework
    assert framework is not None
    adopted = sum("new spec adopted" in e for e in before.status["recent_events"])

    framework.signal(signal.SIGHUP)
    reloaded = deployment.wait_for(
        lambda: (
            (d := deployment.status())
            and sum("new spec adopted" in e for e in d["recent_events"]) > adopted
            and d
        ),
        30,
        "the reload to be applied",
    )
    time.sleep(5)  # a few scheduler ticks: a replacement would start within one
    after = deployment.wait_healthy(RECOVERY_TIMEOUT)
    assert after.task_ids("worker") == before.task_ids("worker")
    assert after.task_ids("master") == before.task_ids("master")
    assert all(t["config_current"] for t in after.status["tasks"])
    assert not any(
        "killing" in e for e in after.status["recent_events"] if e not in before.status["recent_events"]
    )
    assert reloaded["spec_hash"] == before.status["spec_hash"]


# ---- bad inputs ----------------------------------------------------------------------------------
def test_an_agent_without_the_ports_gets_its_decline_reason(deployment: Deployment) -> None:
    deployment.wait_healthy(DEPLOY_TIMEOUT)
    portless = _portless_host(deployment.cluster)

    def reason() -> Any:
        doc = deployment.status()
        lines = [d["line"] for d in (doc or {}).get("declines", []) if d["hostname"] == portless.hostname]
        return [line for line in lines if "missing ports" in line]

    lines = deployment.wait_for(reason, 90, f"a decline reason for {portless.hostname}")
    assert any("AlluxioWorker: missing ports 29998,30000" in line for line in lines), lines
    shown = cli("framework", "status", "--home", str(deployment.home))
    assert shown.returncode == 0, shown.stderr
    assert "missing ports 29998,30000" in shown.stdout
    assert portless.hostname in shown.stdout
    assert portless.hostname not in deployment.status()["worker_hosts"]


def test_a_bad_sha256_fails_the_task_with_the_reason_and_starts_no_jvm(
    cluster: LocalCluster, artifacts: Artifacts
) -> None:
    wrong = hashlib.sha256(b"not the Alluxio tarball").hexdigest()
    # Its own framework on ports no other deployment uses, so it can run beside the shared one.
    bad = Deployment(
        cluster,
        artifacts,
        name="alluxio-bad-sha",
        extra={
            Key.ALLUXIO_SHA256: wrong,
            Key.MASTER_RPC_PORT: "19100",
            Key.MASTER_WEB_PORT: "19101",
            Key.EMBEDDED_JOURNAL_PORT: "19102",
            Key.WORKER_RPC_PORT: "29100",
            Key.WORKER_DATA_PORT: "29101",
            Key.WORKER_WEB_PORT: "29102",
        },
    )
    try:
        bad.start_framework()
        tarball = artifacts.tarball_url.rsplit("/", 1)[1]

        def failure() -> Any:
            for task in bad.operator_tasks():
                if task["framework_id"]["value"] != (bad.status() or {}).get("framework", {}).get("id"):
                    continue
                for status in task["statuses"]:
                    if status["state"] == "TASK_FAILED":
                        return task, status.get("message", "")
            return None

        task, message = bad.wait_for(failure, 180, "the master task of the bad-sha framework to fail")
        assert tarball in message, message
        assert artifacts.tarball_sha256 in message, "the actual hash is named"
        assert wrong in message, "the expected hash is named"
        framework_id = bad.framework_id()
        java = [p for p in bad.processes_of(framework_id) if "java" in p[2]]
        assert java == [], f"no JVM may start with a bad artifact: {java}"
        hostname = bad.agent_hostnames()[task["agent_id"]["value"]]
        sandbox_logs = _sandbox_files(cluster.host(hostname), task["task_id"]["value"], "logs/*")
        assert sandbox_logs == [], f"nothing was started, so nothing logged: {sandbox_logs}"
        stopped = bad.stop(timeout=120)
        assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    finally:
        bad.close()


# ---- teardown (last: it ends the shared deployment) ----------------------------------------------
def test_stop_leaves_no_jvm_mount_or_executor(deployment: Deployment) -> None:
    before = deployment.wait_healthy(DEPLOY_TIMEOUT)
    framework_id = before.status["framework"]["id"]
    cluster = deployment.cluster

    stopped = deployment.stop()
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    assert "stopped: no Alluxio task is left" in stopped.stdout
    assert deployment.framework is not None
    assert deployment.framework.wait_exit(timeout=30) == 0

    for host in cluster.hosts:
        assert host.pids_running("alluxio.") == [], f"Alluxio JVMs left on {host.hostname}"
        # Nor any other JVM of ours, such as a class-data sharing archive build (java -Xshare:dump).
        assert host.pids_running("java") == [], f"JVMs left on {host.hostname}"
        assert host.pids_running(EXECUTOR_BUNDLE) == [], f"executors left on {host.hostname}"
        assert host.mounts() == [], f"mounts left on {host.hostname}"
        assert host.agent is not None
        assert host.agent.is_running(), "the agents themselves keep running"
    assert deployment.processes_of(framework_id) == []
    state = cluster.master.state()
    assert framework_id not in [f["id"] for f in state["frameworks"]]
    (completed,) = [f for f in state["completed_frameworks"] if f["id"] == framework_id]
    assert [t for t in completed["tasks"] if t["state"] not in TERMINAL] == []
