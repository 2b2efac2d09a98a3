"""An Alluxio deployment on a local cluster through the framework's real CLI, and what the tests
observe of it: the framework's /status.json, Mesos' /master/state and operator API, Alluxio's REST
API, and the processes and mounts on each host. Every wait names what it waited for and, on
timeout, dumps the framework status, the Mesos tasks and the tails of the logs."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import pathlib
import signal
import subprocess
import urllib.request
from collections.abc import Callable
from typing import Any

from framework.spec import Key
from sandbox.localcluster import ClusterHost, LocalCluster
from tests.e2e.alluxio_client import AlluxioShell, live_workers, master_info
from tests.integration.test_framework_mesos import Framework, cli, write_conf
from tests.mesos_fixtures import wait_until

RAMDISK_BYTES = 128 * 1024 * 1024
MASTER_MAIN_CLASS = "alluxio.master.AlluxioMaster"
WORKER_MAIN_CLASS = "alluxio.worker.AlluxioWorker"
EXECUTOR_BUNDLE = "alluxio-mesos-executor.pyz"
TERMINAL = {"TASK_FINISHED", "TASK_FAILED", "TASK_KILLED", "TASK_LOST", "TASK_ERROR", "TASK_DROPPED"}
TERMINAL |= {"TASK_GONE", "TASK_GONE_BY_OPERATOR", "TASK_UNKNOWN"}


@dataclasses.dataclass(frozen=True)
class Artifacts:
    """What the agents fetch over HTTP, and a local copy of Alluxio for the shell."""

    tarball_url: str
    tarball_sha256: str
    bundle_url: str
    bundle_sha256: str
    alluxio_home: pathlib.Path


@dataclasses.dataclass(frozen=True)
class Healthy:
    status: dict[str, Any]
    alluxio: dict[str, Any]

    def task_ids(self, role: str) -> dict[str, str]:
        """{hostname: task id} of the running tasks of a role."""
        return {t["host"]: t["task_id"] for t in self.status["tasks"] if t["role"] == role}


class Deployment:
    """One framework (its own name, home and state dir) deploying Alluxio onto `cluster`."""

    def __init__(
        self,
        cluster: LocalCluster,
        artifacts: Artifacts,
        *,
        name: str = "alluxio",
        workers: int = 3,
        extra: dict[str, str] | None = None,
    ) -> None:
        self.cluster = cluster
        self.artifacts = artifacts
        self.name = name
        self.expected_workers = workers
        self.home = cluster.base_dir / "frameworks" / name
        self.home.mkdir(parents=True, exist_ok=True)
        shared = cluster.base_dir / "shared"
        underfs = shared / f"{name}-underfs"
        underfs.mkdir(parents=True, exist_ok=True)
        underfs.chmod(0o777)  # the JVMs run as nobody
        self.settings: dict[str, str] = {
            Key.FRAMEWORK_NAME: name,
            Key.EXECUTOR_URL: artifacts.bundle_url,
            Key.EXECUTOR_SHA256: artifacts.bundle_sha256,
            Key.EXECUTOR_PYTHON: "/usr/bin/python3",
            Key.ALLUXIO_URL: artifacts.tarball_url,
            Key.ALLUXIO_SHA256: artifacts.tarball_sha256,
            Key.MASTER_MEM: "768MB",
            Key.WORKER_MEM: "512MB",
            Key.RAMDISK_SIZE: str(RAMDISK_BYTES),
            Key.KILL_GRACE: "5secs",
            Key.BACKOFF_INITIAL: "1secs",
            Key.BACKOFF_MAX: "10secs",
            Key.READINESS_TIMEOUT: "3mins",
            Key.JOURNAL_FOLDER: str(shared / f"{name}-journal"),
            Key.CACHE_DIR: str(shared / f"{name}-cache"),  # the hosts' staged tarballs
            "alluxio.master.mount.table.root.ufs": str(underfs),
            **(extra or {}),
        }
        self.framework: Framework | None = None
        self._started: list[Framework] = []
        write_conf(self.home, self.settings)

    # ---- the framework process ----------------------------------------------------------------
    def write_conf(self, overrides: dict[str, str] | None = None) -> None:
        self.settings = {**self.settings, **(overrides or {})}
        write_conf(self.home, self.settings)

    def start_framework(self) -> Framework:
        framework = Framework(self.cluster.master, self.home)  # type: ignore[arg-type]
        self._started.append(framework)
        framework.start()
        self.framework = framework
        return framework

    def kill_framework(self) -> None:
        """SIGKILL: no goodbye to Mesos, no state saved on the way out."""
        assert self.framework is not None
        assert self.framework.process is not None
        self.framework.process.send_signal(signal.SIGKILL)
        self.framework.process.wait(timeout=30)

    def stop(self, timeout: float = 180.0) -> subprocess.CompletedProcess[str]:
        """`alluxio-mesos framework stop`: teardown, waits until no task is left."""
        return cli("framework", "stop", "--home", str(self.home), "--timeout", str(int(timeout)))

    def close(self) -> None:
        """Tear down whatever this deployment still runs (best effort; the cluster kills the rest)."""
        with contextlib.suppress(Exception):
            if (self.home / "state").is_dir():
                self.stop(timeout=60)
        for framework in self._started:
            with contextlib.suppress(Exception):
                framework.stop()

    def framework_log(self, lines: int = 80) -> str:
        path = self.home / "logs" / "framework.out"
        try:
            return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no framework.out)"

    # ---- observations -----------------------------------------------------------------------
    def status(self) -> dict[str, Any] | None:
        return self.framework.status() if self.framework is not None else None

    def framework_id(self) -> str:
        doc = self.status()
        if not doc or not doc["framework"]["id"]:
            raise AssertionError("the framework has no id yet (or its status endpoint does not answer)")
        return str(doc["framework"]["id"])

    def mesos_framework(self, framework_id: str | None = None) -> dict[str, Any]:
        wanted = framework_id or self.framework_id()
        state = self.cluster.master.state()
        for entry in state["frameworks"] + state.get("completed_frameworks", []):
            if entry["id"] == wanted:
                return dict(entry)
        raise AssertionError(f"framework {wanted} is not in /master/state")

    def agent_hostnames(self) -> dict[str, str]:
        return {a["id"]: a["hostname"] for a in self.cluster.master.state()["slaves"]}

    def live_mesos_tasks(self, framework_id: str | None = None) -> dict[str, tuple[str, str]]:
        """{task id: (task name, hostname)} of the framework's non-terminal tasks, per Mesos."""
        hosts = self.agent_hostnames()
        return {
            t["id"]: (t["name"], hosts.get(t["slave_id"], t["slave_id"]))
            for t in self.mesos_framework(framework_id)["tasks"]
            if t["state"] not in TERMINAL
        }

    def operator_tasks(self) -> list[dict[str, Any]]:
        """Mesos' operator API GET_TASKS: every task with its full statuses (messages included)."""
        request = urllib.request.Request(
            f"http://{self.cluster.master.address}/api/v1",
            data=json.dumps({"type": "GET_TASKS"}).encode(),
            headers={"Content-Type": "application/json", "Accept": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10) as reply:
            tasks = json.load(reply)["get_tasks"]
        found: list[dict[str, Any]] = []
        for group in ("tasks", "completed_tasks", "unreachable_tasks", "orphan_tasks"):
            found.extend(tasks.get(group) or [])
        return found

    def master_hostname(self) -> str:
        doc = self.status()
        if not doc or not doc["master_hosts"] or not doc["master_hosts"][0]:
            raise AssertionError("no Alluxio master placed yet (or the status endpoint does not answer)")
        return str(doc["master_hosts"][0])

    def alluxio_info(self) -> dict[str, Any] | None:
        doc = self.status()
        if not doc or not doc["master_hosts"] or not doc["master_hosts"][0]:
            return None
        return master_info(doc["master_hosts"][0], int(self.settings.get(Key.MASTER_WEB_PORT, "19999")))

    def shell(self) -> AlluxioShell:
        return AlluxioShell(
            home=self.artifacts.alluxio_home,
            work_dir=self.cluster.base_dir / "shell" / self.name,
            master_hostname=self.master_hostname(),
            master_rpc_port=int(self.settings.get(Key.MASTER_RPC_PORT, "19998")),
        )

    def host(self, hostname: str) -> ClusterHost:
        return self.cluster.host(hostname)

    def executor_pid(self, task_id: str) -> int:
        """The executor process of a task (its executor id is the task id)."""
        for host in self.cluster.hosts:
            for pid in host.pids_running(EXECUTOR_BUNDLE):
                if f"MESOS_EXECUTOR_ID={task_id}".encode() in _environ(pid).split(b"\0"):
                    return pid
        raise AssertionError(f"no executor process runs task {task_id}\n{self.diagnostics()}")

    def processes_of(self, framework_id: str) -> list[tuple[str, int, str]]:
        """(hostname, pid, command) of every process on any host that belongs to the framework:
        its executors (MESOS_FRAMEWORK_ID) and their JVMs (sandbox paths name the framework)."""
        found = []
        for host in self.cluster.hosts:
            for pid in host.pids():
                command = _cmdline(pid)
                if framework_id in command or framework_id.encode() in _environ(pid):
                    found.append((host.hostname, pid, command[:200]))
        return found

    # ---- waiting ------------------------------------------------------------------------------
    def wait_for(self, condition: Callable[[], Any], timeout: float, what: str) -> Any:
        try:
            return wait_until(condition, timeout, what, interval=0.5)
        except AssertionError as error:
            raise AssertionError(f"{error}\n{self.diagnostics()}") from None

    def healthy(self) -> Healthy | None:
        """Phase running, one master and every worker RUNNING, and Alluxio listing each worker
        live with its ramdisk as capacity."""
        doc = self.status()
        if not doc or doc["phase"] != "running":
            return None
        running = [t for t in doc["tasks"] if t["state"] == "TASK_RUNNING"]
        masters = [t for t in running if t["role"] == "master"]
        workers = [t for t in running if t["role"] == "worker"]
        if len(masters) != 1 or len(workers) != self.expected_workers:
            return None
        info = self.alluxio_info()
        live = live_workers(info)
        if sorted(w["address"]["host"] for w in live) != sorted(t["host"] for t in workers):
            return None
        if any(w["capacityBytes"] != RAMDISK_BYTES for w in live):
            return None
        assert info is not None
        return Healthy(doc, info)

    def wait_healthy(self, timeout: float = 300.0) -> Healthy:
        return self.wait_for(
            self.healthy,
            timeout,
            f"1 master and {self.expected_workers} workers RUNNING, Alluxio reporting "
            f"{self.expected_workers} live workers with {RAMDISK_BYTES} bytes each",
        )

    # ---- diagnostics --------------------------------------------------------------------------
    def diagnostics(self) -> str:
        parts = [f"===== diagnostics of deployment {self.name!r} on {self.cluster.name} ====="]
        parts.append(_section("framework /status.json", lambda: _status_summary(self.status())))
        parts.append(_section("Mesos tasks (/master/state)", self._mesos_summary))
        parts.append(_section("framework.out (tail)", lambda: self.framework_log(60)))
        parts.append(_section("Alluxio master info", lambda: _alluxio_summary(self.alluxio_info())))
        for host in self.cluster.hosts:
            parts.append(_section(f"{host.hostname} agent log (tail)", lambda h=host: _tail(h.log_path, 25)))
        parts.append(_section("latest sandbox stderr files (tails)", self._sandbox_tails))
        return "\n".join(parts)

    def _mesos_summary(self) -> str:
        state = self.cluster.master.state()
        hosts = {a["id"]: a["hostname"] for a in state["slaves"]}
        lines = []
        for entry in state["frameworks"] + state.get("completed_frameworks", []):
            lines.append(f"framework {entry['name']} {entry['id']} active={entry.get('active')}")
            for task in entry["tasks"] + entry.get("completed_tasks", [])[-8:]:
                states = " ".join(f"{s['state'][5:]}@{s['timestamp']:.1f}" for s in task["statuses"])
                host = hosts.get(task["slave_id"], task["slave_id"])
                lines.append(f"  {task['id']} {task['state']} on {host}: {states}")
        return "\n".join(lines)

    def _sandbox_tails(self) -> str:
        files = []
        for host in self.cluster.hosts:
            files.extend(p for p in host.work_dir.glob("**/runs/*/stderr") if p.parent.name != "latest")
        files.sort(key=lambda p: p.stat().st_mtime, reverse=True)
        root = self.cluster.base_dir
        return "\n".join(f"--- {path.relative_to(root)}\n{_tail(path, 12, 400)}" for path in files[:6])


def _environ(pid: int) -> bytes:
    try:
        return pathlib.Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return b""


def _cmdline(pid: int) -> str:
    try:
        return pathlib.Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _tail(path: pathlib.Path, lines: int, width: int = 600) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:]
        return "\n".join(line if len(line) <= width else line[:width] + " ..." for line in text)
    except OSError as error:
        return f"({error})"


def _section(title: str, build: Callable[[], str]) -> str:
    try:
        body = build()
    except Exception as error:  # diagnostics must never hide the original failure
        body = f"(could not collect: {error!r})"
    return f"----- {title} -----\n{body}"


def _status_summary(doc: dict[str, Any] | None) -> str:
    if doc is None:
        return "(the framework's status endpoint does not answer)"
    keep = {k: doc.get(k) for k in ("phase", "framework", "master_hosts", "worker_hosts", "waiting")}
    keep["tasks"] = [
        {k: t[k] for k in ("role", "host", "state", "task_id", "config_current", "message")}
        for t in doc["tasks"]
    ]
    keep["declines"] = [d["line"] for d in doc.get("declines", [])[:10]]
    keep["recent_events"] = doc.get("recent_events", [])[-20:]
    return json.dumps(keep, indent=1, default=str)[:12000]


def _alluxio_summary(info: dict[str, Any] | None) -> str:
    if info is None:
        return "(the Alluxio master's REST API does not answer)"
    workers = [(w["address"]["host"], w.get("state"), w.get("capacityBytes")) for w in live_workers(info)]
    lost = [w["address"]["host"] for w in info.get("lostWorkers") or []]
    return f"version {info.get('version')}; live workers {workers}; lost workers {lost}"
