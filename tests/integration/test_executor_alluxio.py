"""The executor core with real Alluxio 2.9 JVMs: fetched tarball checked and used, journal formatted
once, worker ramdisk registered with the master, kill sequence, relaunch, JVM death reported."""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import os
import shutil
import signal
import subprocess
import tarfile
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from executor import alluxio_process, ramdisk, staging
from executor.leftovers import process_start
from executor.runner import TaskRunner
from executor.status import TaskUpdate
from executor.task_plan import Artifact, Distribution, TaskPlan
from tests.mesos_fixtures import wait_until

pytestmark = pytest.mark.integration

RAMDISK_BYTES = 32 << 20
READY_TIMEOUT = 240.0


def tarball() -> Path:
    cache = Path(os.environ.get("ALLUXIO_MESOS_CACHE", Path.home() / ".cache" / "alluxio-mesos"))
    version = os.environ.get("ALLUXIO_VERSION", "2.9.6")
    path = cache / "alluxio" / version / f"alluxio-{version}-bin.tar.gz"
    if not path.is_file():
        pytest.fail(f"{path} is missing: run `setup/bootstrap.sh alluxio` (or `make setup`) first")
    return path


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """One TaskRunner on its own thread (the thread lives as long as the JVM, like the
    executor's main thread), with the updates it reported."""

    def __init__(self, name: str, plan: TaskPlan, sandbox: Path, **runner_options: Any) -> None:
        self.name = name
        self.updates: list[TaskUpdate] = []
        sandbox.mkdir(parents=True, exist_ok=True, mode=0o755)
        self.sandbox = sandbox
        self.runner = TaskRunner(
            name, plan, str(sandbox), self.updates.append, killing_state_capable=True, **runner_options
        )
        self.thread = threading.Thread(target=self.runner.run, name=name, daemon=True)
        self.thread.start()

    def states(self) -> list[str]:
        return [u.state for u in self.updates]

    def wait_running(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        while "TASK_RUNNING" not in self.states():
            assert self.thread.is_alive(), f"{self.name} ended: {self.updates[-1:]}"
            assert time.monotonic() < deadline, f"{self.name} not RUNNING after {READY_TIMEOUT}s"
            time.sleep(0.1)

    def finish(self, timeout: float = 60.0) -> TaskUpdate:
        self.thread.join(timeout)
        assert not self.thread.is_alive(), f"{self.name} did not finish"
        return self.updates[-1]

    def kill(self, grace: float = 20.0) -> TaskUpdate:
        self.runner.request_kill(grace)
        return self.finish()


@pytest.fixture(scope="module")
def root() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="alluxio-executor-real-", dir="/tmp"))
    servers_pgids: list[int] = []
    try:
        path.chmod(0o755)
        yield path
    finally:
        for entry in filter(str.isdigit, os.listdir("/proc")):
            try:
                if str(path).encode() in Path("/proc", entry, "cmdline").read_bytes():
                    servers_pgids.append(int(entry))
            except OSError:
                continue
        for pgid in servers_pgids:
            with contextlib.suppress(OSError):
                os.killpg(pgid, signal.SIGKILL)
        for line in reversed(Path("/proc/self/mountinfo").read_text().splitlines()):
            if line.split(" ")[4].startswith(str(path)):
                ramdisk.unmount_ramdisk(line.split(" ")[4])
        shutil.rmtree(path, ignore_errors=True)


def fetch_into(sandbox: Path) -> tuple[Artifact, str]:
    """What the agent's fetcher does with extract=true: the tarball lands in the sandbox, unpacked."""
    source = tarball()
    sandbox.mkdir(parents=True, mode=0o755)
    shutil.copyfile(source, sandbox / source.name)
    with tarfile.open(sandbox / source.name) as archive:
        top = archive.getnames()[0].split("/")[0]
        archive.extractall(sandbox, filter="tar")
    digest = hashlib.sha256((sandbox / source.name).read_bytes()).hexdigest()
    return Artifact(source.name, digest, url=f"file://{source}"), top


def master_plan(root: Path, home_mode: str, home: str, artifacts: list[Artifact], port: int) -> TaskPlan:
    return TaskPlan(
        role="master",
        alluxio_properties={"alluxio.master.hostname": "localhost"},
        artifacts=artifacts,
        alluxio_home_mode=home_mode,
        alluxio_home=home,
        java_home_mode="local",
        java_home="",
        heap_size_mb=512,
        ports={"rpc": port, "web": free_port(), "embedded_journal": free_port()},
        journal_dir=str(root / "journal"),
        state_dir=str(root / "state"),
        readiness_timeout_secs=READY_TIMEOUT,
    )


def worker_plan(
    state_dir: Path, home: str, master_port: int, instance_name: str, **overrides: Any
) -> TaskPlan:
    """A worker using the agent's Java and ``home`` as its Alluxio home (LOCAL unless overridden)."""
    fields: dict[str, Any] = dict(
        role="worker",
        alluxio_properties={
            "alluxio.master.hostname": "localhost",
            "alluxio.master.rpc.port": str(master_port),
            "alluxio.worker.hostname": "localhost",
        },
        artifacts=[],
        alluxio_home_mode="local",
        alluxio_home=home,
        java_home_mode="local",
        java_home="",
        heap_size_mb=256,
        ports={"rpc": free_port(), "web": free_port()},
        ramdisk_size_bytes=RAMDISK_BYTES,
        state_dir=str(state_dir),
        instance_name=instance_name,
        readiness_timeout_secs=READY_TIMEOUT,
    )
    fields.update(overrides)
    return TaskPlan(**fields)


def _uid(pid: int) -> int:
    line = next(x for x in Path(f"/proc/{pid}/status").read_text().splitlines() if x.startswith("Uid:"))
    return int(line.split()[1])


def test_alluxio_master_and_worker_lifecycle(root: Path) -> None:
    master_port = free_port()
    artifact, top = fetch_into(root / "master-1")
    master = Server("master-1", master_plan(root, "fetched", top, [artifact], master_port), root / "master-1")
    master.wait_running()
    assert master.runner.process is not None
    assert _uid(master.runner.process.pid) == 65534
    assert os.getpgid(master.runner.process.pid) == master.runner.process.pid
    assert (root / "master-1" / "logs" / "format.out").exists()
    home = str(root / "master-1" / top)

    worker = Server(
        "worker-1", worker_plan(root / "state", home, master_port, "worker-slot"), root / "worker-1"
    )
    worker.wait_running()
    mount = ramdisk.find_mount(str(root / "worker-1" / "ramdisk"))
    assert mount is not None
    assert "size=32768k" in mount.super_options

    # The worker registered with the master and offers exactly its ramdisk.
    (root / "shell-tmp").mkdir()
    cfg = alluxio_process.AlluxioJvmConfig(
        alluxio_home=home,
        conf_dir=str(root / "worker-1" / "conf"),
        logs_dir=str(root / "shell-logs"),
        tmp_dir=str(root / "shell-tmp"),
    )
    command = alluxio_process.fsadmin_command(cfg, ["report", "capacity"])
    report = ""
    deadline = time.monotonic() + 120
    while "32.00MB" not in report and time.monotonic() < deadline:
        done = subprocess.run(
            command.argv, env=command.env, capture_output=True, text=True, timeout=120, check=False
        )
        report = done.stdout + done.stderr
        time.sleep(1)
    assert "32.00MB" in report, report

    killed = worker.kill()
    assert killed.state == "TASK_KILLED", killed.message
    assert worker.states() == ["TASK_STARTING", "TASK_RUNNING", "TASK_KILLING", "TASK_KILLED"]
    assert ramdisk.find_mount(str(root / "worker-1" / "ramdisk")) is None
    killed = master.kill()
    assert killed.state == "TASK_KILLED", killed.message
    print("master timings", master.runner.timings)
    print("worker timings", worker.runner.timings)
    # measured, not judged here: benchmarks/framework_executor_overhead.py checks the targets
    assert worker.runner.timings["launch_to_exec"] > 0
    assert worker.runner.timings["ready_detection_max"] >= 0

    # Relaunch on the same journal (LOCAL home this time): no second format, metadata kept.
    relaunched = Server("master-2", master_plan(root, "local", home, [], master_port), root / "master-2")
    relaunched.wait_running()
    assert not (root / "master-2" / "logs" / "format.out").exists()
    assert relaunched.runner.process is not None
    jvm = relaunched.runner.process.pid
    # The JVM dies on its own (here: SIGKILL from outside): TASK_FAILED with status and log tail.
    os.kill(jvm, signal.SIGKILL)
    failed = relaunched.finish()
    assert failed.state == "TASK_FAILED"
    assert "the Alluxio master JVM ended (killed by SIGKILL) after it was running" in failed.message
    assert "--- last lines of logs/master.log ---" in failed.message
    assert process_start(jvm) is None
    assert not (root / "state" / "alluxio-master.json").exists()


def _mapped_files(pid: int, name_part: str) -> set[str]:
    with open(f"/proc/{pid}/maps", encoding="utf-8", errors="replace") as maps:
        paths = {line.split(None, 5)[5].strip() for line in maps if len(line.split(None, 5)) == 6}
    return {p for p in paths if name_part in os.path.basename(p)}


def test_a_staged_distribution_is_unpacked_once_and_shared(root: Path) -> None:
    """Master and worker on one host stage the tarball once into the cache dir and run from it."""
    source = tarball()
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    cache = root / "staged" / "cache"
    staged = {
        "alluxio_home_mode": "staged",
        "alluxio_dist": Distribution(url=source.as_uri(), sha256=digest),
        "cache_dir": str(cache),
    }
    master_port = free_port()
    top = source.name.removesuffix("-bin.tar.gz")
    plan = master_plan(root / "staged", "fetched", top, [], master_port)  # made staged below
    # The class-data sharing build starts 1 s after ready instead of 10 s: same path, shorter test.
    master = Server(
        "staged-master",
        dataclasses.replace(plan, **staged),
        root / "staged" / "master",
        cds_build_after_secs=1.0,
    )
    staged_worker = worker_plan(root / "staged" / "state", top, master_port, "staged-worker", **staged)
    # Started together: the second waits on the first one's lock, then reuses its directory.
    worker = Server("staged-worker", staged_worker, root / "staged" / "worker", cds_build_after_secs=1.0)
    second: Server | None = None
    try:
        master.wait_running()
        worker.wait_running()
        home = cache / "dist" / digest / top
        assert sorted(os.listdir(cache / "dist")) == [digest, f"{digest}.lock"]
        assert sorted([master.runner.staged["alluxio"].reused, worker.runner.staged["alluxio"].reused]) == [
            False,
            True,
        ]
        for server in (master, worker):
            assert server.runner.process is not None
            cmdline = Path(f"/proc/{server.runner.process.pid}/cmdline").read_bytes().split(b"\0")
            assert f"-Dalluxio.home={home}".encode() in cmdline
            assert not any(p.is_dir() for p in server.sandbox.glob("alluxio-*"))  # no copy per task
        # RocksDB's native library: in the master's sandbox, not in the host's /tmp.
        rocksdb = _mapped_files(master.runner.process.pid, "librocksdbjni")  # type: ignore[union-attr]
        assert rocksdb, "the master has not loaded RocksDB's native library"
        assert all(p.startswith(str(master.sandbox / "tmp") + "/") for p in rocksdb), rocksdb

        # Class-data sharing: the first worker lists its classes; once it has run a while, the
        # executor builds the host's archive from that list at idle priority, while it serves...
        assert worker.runner.cds is not None
        list_flag = worker.runner.cds.flags
        assert list_flag[0].startswith("-XX:DumpLoadedClassList="), list_flag
        build_seen = wait_until(
            lambda: worker.runner.cds_build, 60, "the worker's archive build", interval=0.05
        )
        with contextlib.suppress(ProcessLookupError):
            assert os.sched_getscheduler(build_seen.pid) == os.SCHED_IDLE
        worker_archive = Path(worker.runner.cds.archive)
        wait_until(worker_archive.is_file, 120, "the worker's archive", interval=0.05)
        assert worker.runner.process is not None
        assert worker.runner.process.poll() is None  # built while the worker kept running
        assert not list((worker.sandbox / "tmp").glob("cds-*"))  # the build was moved into the cache
        assert master.runner.cds is not None
        wait_until(Path(master.runner.cds.archive).is_file, 120, "the master's archive", interval=0.05)
        assert len(list((cache / "cds").glob("*.jsa"))) == 2
        stop_started = time.monotonic()
        assert worker.kill().state == "TASK_KILLED"
        first_stop = time.monotonic() - stop_started
        assert "SIGKILL" not in worker.runner.kill_steps

        # ... and the next worker maps that archive (-Xshare:on: it would not start without it).
        again = dataclasses.replace(
            staged_worker,
            ports={"rpc": free_port(), "web": free_port()},
            instance_name="staged-worker-2",
            jvm_options=["-Xshare:on"],
        )
        second = Server("staged-worker-2", again, root / "staged" / "worker-2")
        second.wait_running()
        assert second.runner.cds is not None
        assert second.runner.cds.flags == [f"-XX:SharedArchiveFile={worker_archive}"]
        assert _mapped_files(second.runner.process.pid, worker_archive.name) == {str(worker_archive)}  # type: ignore[union-attr]
        assert second.runner.cds_build is None
        stop_started = time.monotonic()
        assert second.kill().state == "TASK_KILLED"
        print(
            f"\nworker exec->ready: {worker.runner.timings['exec_to_ready']:.0f} ms listing its classes "
            f"(first start), {second.runner.timings['exec_to_ready']:.0f} ms with the archive; graceful stop "
            f"{first_stop:.2f} s and {time.monotonic() - stop_started:.2f} s"
        )
        assert master.kill().state == "TASK_KILLED"
    finally:
        for server in (worker, master, second):
            if server is not None and server.thread.is_alive():
                server.kill()
    # Nothing holds the version any more: a prune (of everything, whatever its age) may take it.
    assert staging.prune(str(cache), keep="0" * 64, max_age_secs=-1) == [str(cache / "dist" / digest)]
