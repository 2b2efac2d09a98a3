"""The framework process (real pymesos, the real CLI) against the stand-in Mesos master.

The master runs simulated agents (in-process agents whose custom-executor tasks go
STAGING -> STARTING -> RUNNING and run until killed, with real status-update acknowledgements), so
these tests cover registration, offers, placement, reconciliation after a restart, rolling
updates, decline reasons and teardown without JVMs. The end-to-end path with real agents, the
executor and Alluxio is covered by the e2e suite.
"""

from __future__ import annotations

import contextlib
import json
import os
import pathlib
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest

from framework.mesos_http import get_json, teardown_framework
from framework.spec import Key
from framework.state_store import read_runtime, read_state
from tests.mesos_fixtures import MasterProcess, running_master, wait_until
from tests.unit.test_framework_events import EXECUTOR_SHA

pytestmark = pytest.mark.integration

ALLUXIO_PORTS = "ports:[19000-32000]"
SCRIPT = shutil.which("alluxio-mesos") or str(pathlib.Path(sys.executable).parent / "alluxio-mesos")


def write_conf(home: pathlib.Path, extra: dict[str, str] | None = None) -> pathlib.Path:
    conf = home / "conf" / "alluxio-site.properties"
    conf.parent.mkdir(parents=True, exist_ok=True)
    values = {
        Key.EXECUTOR_URL: "http://artifacts.example/alluxio-mesos-executor.pyz",
        Key.EXECUTOR_SHA256: EXECUTOR_SHA,
        Key.ALLUXIO_URL: "LOCAL",
        Key.STATUS_PORT: "0",
        **(extra or {}),
    }
    conf.write_text("".join(f"{k}={v}\n" for k, v in values.items()), encoding="utf-8")
    return conf


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([SCRIPT, *args], check=False, capture_output=True, text=True, timeout=120)


class Framework:
    """`alluxio-mesos framework start --foreground` as a child process."""

    def __init__(self, master: MasterProcess, home: pathlib.Path) -> None:
        self.master = master
        self.home = home
        self.log_path = home / "framework-console.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [
                    SCRIPT,
                    "framework",
                    "start",
                    self.master.address,
                    "--home",
                    str(self.home),
                    "--foreground",
                    "--advertise-host",
                    "127.0.0.1",
                    "--status-bind",
                    "127.0.0.1",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def status(self) -> dict[str, Any] | None:
        runtime = read_runtime(self.home / "state")
        if not runtime or self.process is None or runtime.get("pid") != self.process.pid:
            return None
        try:
            return get_json(runtime["status_url"], "", timeout=2.0)
        except Exception:
            return None

    def wait_phase(
        self, phase: str, timeout: float = 30.0, running_workers: int | None = None
    ) -> dict[str, Any]:
        """Until the status shows ``phase`` (and that many RUNNING workers, if given: with one
        worker per agent, "running" means every worker the framework knows of runs, and an agent
        whose first offer comes in a later allocation cycle is not known yet)."""

        def reached() -> dict[str, Any] | None:
            assert self.process is not None
            if self.process.poll() is not None:
                raise AssertionError(f"framework exited with {self.process.returncode}:\n{self.log()}")
            doc = self.status()
            if not doc or doc["phase"] != phase:
                return None
            workers = [t for t in doc["tasks"] if t["role"] == "worker" and t["state"] == "TASK_RUNNING"]
            return doc if running_workers is None or len(workers) == running_workers else None

        what = f"phase {phase}" + (f" with {running_workers} running workers" if running_workers else "")
        return wait_until(reached, timeout, what)

    def signal(self, signum: int) -> None:
        assert self.process is not None
        self.process.send_signal(signum)

    def wait_exit(self, timeout: float = 30.0) -> int:
        assert self.process is not None
        return self.process.wait(timeout=timeout)

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)


AGENTS = 3  # the simulated agents of the `master` fixture


@pytest.fixture
def master(tmp_path: pathlib.Path) -> Iterator[MasterProcess]:
    with running_master(
        [
            "--heartbeat_interval=1secs",
            "--allocation_interval=0.2secs",
            f"--simulated_agents={AGENTS}",
            f"--simulated_agent_resources=cpus:4;mem:8192;disk:65536;{ALLUXIO_PORTS}",
        ],
        work_dir=tmp_path / "mesos",
    ) as process:
        yield process


@pytest.fixture
def home(tmp_path: pathlib.Path) -> pathlib.Path:
    directory = tmp_path / "alluxio-home"
    write_conf(directory)
    return directory


@pytest.fixture
def framework(master: MasterProcess, home: pathlib.Path) -> Iterator[Framework]:
    started: list[Framework] = []

    def make() -> Framework:
        instance = Framework(master, home)
        started.append(instance)
        return instance

    first = make()
    first.make_another = make  # type: ignore[attr-defined]
    try:
        yield first
    finally:
        for instance in started:
            instance.stop()


def our_framework(master: MasterProcess, framework_id: str) -> dict[str, Any]:
    state = master.state()
    (found,) = [f for f in state["frameworks"] if f["id"] == framework_id]
    return found


def live_tasks(framework_json: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        t for t in framework_json["tasks"] if t["state"] not in {"TASK_KILLED", "TASK_FAILED", "TASK_LOST"}
    ]


def first_time(task: dict[str, Any], state: str) -> float:
    return min(s["timestamp"] for s in task["statuses"] if s["state"] == state)


def test_registers_then_runs_the_master_before_one_worker_per_agent(
    master: MasterProcess, framework: Framework
) -> None:
    framework.start()
    doc = framework.wait_phase("running", running_workers=AGENTS)
    framework_id = doc["framework"]["id"]
    info = our_framework(master, framework_id)
    assert info["name"] == "alluxio"
    assert info["checkpoint"] is True
    assert info["failover_timeout"] == 604800.0
    assert info["principal"] == "alluxio"
    assert info["role"] == "*"
    assert info["webui_url"] == read_runtime(framework.home / "state")["webui_url"]
    assert info["webui_url"].startswith("http://127.0.0.1:")
    assert "TASK_KILLING_STATE" in info["capabilities"]  # /master/state lists capability names

    tasks = live_tasks(info)
    masters = [t for t in tasks if t["name"] == "AlluxioMaster"]
    workers = [t for t in tasks if t["name"] == "AlluxioWorker"]
    assert len(masters) == 1
    assert len(workers) == 3
    assert len({t["slave_id"] for t in workers}) == 3, "one worker per agent"
    master_ready = first_time(masters[0], "TASK_RUNNING")
    # A worker's first status (TASK_STARTING) comes after the master was RUNNING.
    assert all(min(s["timestamp"] for s in w["statuses"]) >= master_ready for w in workers)
    assert {t["state"] for t in tasks} == {"TASK_RUNNING"}
    # The status endpoint is what Mesos links to.
    page = get_json(info["webui_url"].rstrip("/") + "/status.json", "")
    assert page["framework"]["id"] == framework_id


def test_restart_reconciles_and_keeps_every_task(master: MasterProcess, framework: Framework) -> None:
    framework.start()
    before = framework.wait_phase("running", running_workers=AGENTS)
    task_ids = sorted(t["task_id"] for t in before["tasks"])
    framework.signal(signal.SIGTERM)
    assert framework.wait_exit() == 0
    info = our_framework(master, before["framework"]["id"])
    assert info["active"] is False, "Mesos keeps the framework for its failover timeout"
    assert sorted(t["id"] for t in live_tasks(info)) == task_ids

    again = framework.make_another()  # type: ignore[attr-defined]
    again.start()
    after = again.wait_phase("running", running_workers=AGENTS)
    assert after["framework"]["id"] == before["framework"]["id"]
    assert sorted(t["task_id"] for t in after["tasks"]) == task_ids, "nothing relaunched"
    assert any("reconciliation complete" in e for e in after["recent_events"])
    assert our_framework(master, after["framework"]["id"])["active"] is True


def test_sighup_reload_replaces_workers_one_at_a_time(
    master: MasterProcess, framework: Framework, home: pathlib.Path
) -> None:
    framework.start()
    before = framework.wait_phase("running", running_workers=AGENTS)
    old_workers = {t["task_id"] for t in before["tasks"] if t["role"] == "worker"}
    old_master = [t["task_id"] for t in before["tasks"] if t["role"] == "master"]
    write_conf(home, {Key.WORKER_CPU: "2"})
    framework.signal(signal.SIGHUP)

    def replaced() -> dict[str, Any] | None:
        doc = framework.status()
        if not doc or doc["phase"] != "running":
            return None
        workers = {t["task_id"] for t in doc["tasks"] if t["role"] == "worker"}
        return doc if workers and not workers & old_workers else None

    after = wait_until(replaced, 60, "all workers replaced")
    assert [t["task_id"] for t in after["tasks"] if t["role"] == "master"] == old_master
    info = our_framework(master, after["framework"]["id"])
    by_id = {t["id"]: t for t in info["tasks"] + info.get("completed_tasks", [])}
    new_workers = [by_id[t["task_id"]] for t in after["tasks"] if t["role"] == "worker"]
    for task in new_workers:
        cpus = task["resources"]["cpus"]
        assert cpus == 2.0
    killed = sorted(first_time(by_id[t], "TASK_KILLED") for t in old_workers)
    started = sorted(first_time(t, "TASK_RUNNING") for t in new_workers)
    # kill 1, run 1, kill 2, run 2, kill 3, run 3: never two workers down at once
    assert killed[0] < started[0] < killed[1] < started[1] < killed[2] < started[2]


def test_unusable_offers_are_explained(tmp_path: pathlib.Path, home: pathlib.Path) -> None:
    # Agents with the default port range cannot host Alluxio's fixed ports.
    with running_master(
        ["--heartbeat_interval=1secs", "--allocation_interval=0.2secs", "--simulated_agents=2"],
        work_dir=tmp_path / "mesos-default-ports",
    ) as plain_master:
        framework = Framework(plain_master, home)
        try:
            framework.start()
            doc = wait_until(
                lambda: (d := framework.status()) and d["declines"] and d, 30, "a decline reason"
            )
            lines = {d["line"].split(": ", 1)[1] for d in doc["declines"]}
            assert lines == {"AlluxioMaster: missing ports 19200,19998-19999"}
            assert doc["phase"] == "launching_masters"
            shown = cli("framework", "status", "--home", str(home))
            assert shown.returncode == 0, shown.stderr
            assert "AlluxioMaster: missing ports 19200,19998-19999" in shown.stdout
            assert "(sim-agent-0)" in shown.stdout
        finally:
            framework.stop()
        assert "offer not usable: agent" in (home / "logs" / "framework.out").read_text(encoding="utf-8")


def test_stop_tears_down_and_waits_until_no_task_is_left(
    master: MasterProcess, framework: Framework, home: pathlib.Path
) -> None:
    framework.start()
    doc = framework.wait_phase("running")
    framework_id = doc["framework"]["id"]
    result = cli("framework", "stop", "--home", str(home))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "stopped: no Alluxio task is left" in result.stdout
    assert framework.wait_exit(timeout=5) == 0
    state = master.state()
    assert framework_id not in [f["id"] for f in state["frameworks"]]
    (completed,) = [f for f in state["completed_frameworks"] if f["id"] == framework_id]
    assert live_tasks(completed) == []
    saved = read_state(home / "state")
    assert saved is not None
    assert saved.framework_id is None
    assert saved.tasks == {}


def test_background_start_waits_for_registration_and_logs_to_framework_out(
    master: MasterProcess, home: pathlib.Path
) -> None:
    result = cli("framework", "start", master.address, "--home", str(home), "--advertise-host", "127.0.0.1")
    try:
        assert result.returncode == 0, result.stdout + result.stderr
        assert "registered with Mesos as framework" in result.stdout
        log = (home / "logs" / "framework.out").read_text(encoding="utf-8")
        assert "registered with master" in log
        status = cli("framework", "status", "--home", str(home), "--json")
        assert status.returncode == 0
        assert json.loads(status.stdout)["framework"]["connected"] is True
    finally:
        stopped = cli("framework", "stop", "--home", str(home), "--timeout", "60")
        runtime_pid = read_runtime(home / "state")
        if runtime_pid:  # the stop failed: do not leave the process behind
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(runtime_pid["pid"]), signal.SIGKILL)
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr


def test_authentication_with_the_secret(tmp_path: pathlib.Path, home: pathlib.Path) -> None:
    credentials = tmp_path / "credentials.json"
    credentials.write_text(json.dumps({"credentials": [{"principal": "alluxio", "secret": "right-secret"}]}))
    with running_master(
        [
            "--heartbeat_interval=1secs",
            "--simulated_agents=1",
            f"--simulated_agent_resources=cpus:4;mem:8192;{ALLUXIO_PORTS}",
            "--authenticate_http_frameworks",
            f"--credentials={credentials}",
        ],
        work_dir=tmp_path / "mesos-auth",
    ) as auth_master:
        write_conf(home, {Key.SECRET: "wrong-secret"})
        refused = Framework(auth_master, home)
        try:
            refused.start()
            assert refused.wait_exit(timeout=60) == 1
        finally:
            refused.stop()
        log = (home / "logs" / "framework.out").read_text(encoding="utf-8")
        assert "401" in log
        assert "wrong-secret" not in log + refused.log()

        write_conf(home, {Key.SECRET: "right-secret"})
        accepted = Framework(auth_master, home)
        try:
            accepted.start()
            accepted.wait_phase("running")
        finally:
            accepted.stop()
        assert "right-secret" not in (home / "logs" / "framework.out").read_text(encoding="utf-8")


def test_removal_by_the_operator_ends_the_framework_and_forgets_its_id(
    master: MasterProcess, framework: Framework, home: pathlib.Path
) -> None:
    framework.start()
    doc = framework.wait_phase("running")
    teardown_framework(master.address, doc["framework"]["id"])
    assert framework.wait_exit(timeout=60) == 1
    assert "Framework has been removed" in (home / "logs" / "framework.out").read_text(encoding="utf-8")
    saved = read_state(home / "state")
    assert saved is not None
    assert saved.framework_id is None, "the next start registers a new framework"
    assert saved.tasks == {}
