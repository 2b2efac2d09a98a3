"""TaskRunner end to end with real processes, a real tmpfs ramdisk and a fake server in place of
the JVM: status order, kill sequence, failure reports and cleanup on every path."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import signal
import stat
import subprocess
import tarfile
import tempfile
import threading
import time
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from executor import cds, ramdisk, staging
from executor.alluxio_process import AlluxioJvmConfig, JavaCommand, server_jars
from executor.process_group import group_members
from executor.runner import TaskRunner
from executor.status import TaskUpdate
from executor.task_plan import Artifact, Distribution, TaskPlan
from tests.mesos_fixtures import wait_until

RAMDISK_BYTES = 4 << 20

# Stands in for an Alluxio JVM: listens on the RPC port (after a delay), forks a helper into its
# process group, logs to stdout, and reacts to SIGTERM as asked.
FAKE_SERVER = r"""
import argparse, os, signal, socket, subprocess, sys, threading, time
p = argparse.ArgumentParser()
p.add_argument("--port", type=int, required=True)
p.add_argument("--listen-after", type=float, default=0.0)
p.add_argument("--exit-after", type=float, default=None)
p.add_argument("--exit-code", type=int, default=0)
p.add_argument("--ignore-term", action="store_true")
p.add_argument("--no-listen", action="store_true")
p.add_argument("--marker", required=True)
p.add_argument("--class-list", default=None)  # what -XX:DumpLoadedClassList makes a JVM do
a = p.parse_args()
def note(text):
    with open(a.marker, "a") as f:
        f.write("%s %.6f\n" % (text, time.time()))
note("started uid=%d pgid=%d" % (os.getuid(), os.getpgid(0)))
subprocess.Popen(["sleep", "1000"])  # a grandchild in the same process group
if a.class_list:
    with open(a.class_list, "w") as f:
        f.write("java/lang/Object id: 0\njava/lang/String id: 1\n")
        f.flush()
        f.write("java/util/ArrayL")  # a line the JVM is still writing
if a.ignore_term:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
else:
    signal.signal(signal.SIGTERM, lambda *_: (note("SIGTERM"), os._exit(143)))
print("fake server starting on port %d" % a.port, flush=True)
time.sleep(a.listen_after)
def serve(s):
    # Answer like a gRPC server: the HTTP/2 client preface gets a SETTINGS frame back.
    while True:
        conn, _ = s.accept()
        conn.settimeout(1.0)
        try:
            conn.recv(64)
            conn.sendall(b"\x00\x00\x00\x04\x00\x00\x00\x00\x00")
        except OSError:
            pass
        conn.close()
if not a.no_listen:
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", a.port))
    s.listen(16)
    note("listening")
    threading.Thread(target=serve, args=(s,), daemon=True).start()
start = time.time()
while True:
    if a.exit_after is not None and time.time() - start > a.exit_after:
        print("FATAL fake server gives up with status %d" % a.exit_code, flush=True)
        sys.exit(a.exit_code)
    time.sleep(0.02)
"""

# Stands in for `alluxio format master`: writes journal content and counts its runs.
FAKE_FORMAT = r"""
import os, sys
conf = dict(line.split("=", 1) for line in open(sys.argv[1]).read().splitlines() if "=" in line)
journal = conf["alluxio.master.journal.folder"].strip()
os.makedirs(os.path.join(journal, "raft"), exist_ok=True)
with open(os.path.join(journal, "raft", "format-count"), "a") as f:
    f.write("x")
"""


@dataclass
class World:
    root: Path
    marker: Path
    updates: list[tuple[float, TaskUpdate]] = field(default_factory=list)

    @property
    def sandbox(self) -> Path:
        return self.root / "sandbox"

    def plan(self, role: str = "worker", **overrides: Any) -> TaskPlan:
        fields: dict[str, Any] = {
            "role": role,
            "alluxio_properties": {"alluxio.master.hostname": "localhost"},
            "artifacts": [],
            "alluxio_home_mode": "local",
            "alluxio_home": str(self.root / "alluxio-home"),
            "java_home_mode": "local",
            "java_home": "",
            "heap_size_mb": 256,
            "ports": {"rpc": free_port(), "data": free_port(), "web": free_port()},
            "ramdisk_size_bytes": RAMDISK_BYTES,
            "state_dir": str(self.root / "state"),
            "readiness_timeout_secs": 20.0,
        }
        if role == "master":
            fields["ports"] = {"rpc": free_port(), "web": free_port()}
            fields["ramdisk_size_bytes"] = 0
            fields["journal_dir"] = str(self.root / "journal")
        fields.update(overrides)
        return TaskPlan(**fields)

    def factory(self, *server_args: str) -> Callable[[str, AlluxioJvmConfig], JavaCommand]:
        def make(purpose: str, cfg: AlluxioJvmConfig) -> JavaCommand:
            env = dict(cfg.base_env or {})
            if purpose == "format":
                site = os.path.join(cfg.conf_dir, "alluxio-site.properties")
                return JavaCommand(["/usr/bin/python3", "-I", str(self.root / "fake_format.py"), site], env)
            port = self._port_from_site(cfg.conf_dir, purpose)
            argv = ["/usr/bin/python3", "-I", str(self.root / "fake_server.py"), "--port", port]
            for option in cfg.jvm_options:
                if option.startswith("-XX:DumpLoadedClassList="):
                    argv += ["--class-list", option.split("=", 1)[1]]
            return JavaCommand([*argv, "--marker", str(self.marker), *server_args], env)

        return make

    @staticmethod
    def _port_from_site(conf_dir: str, role: str) -> str:
        text = Path(conf_dir, "alluxio-site.properties").read_text()
        key = f"alluxio.{role}.rpc.port="
        return next(line[len(key) :] for line in text.splitlines() if line.startswith(key))

    def runner(self, plan: TaskPlan, *server_args: str, **kwargs: Any) -> TaskRunner:
        def sink(update: TaskUpdate) -> None:
            self.updates.append((time.time(), update))

        kwargs.setdefault("killing_state_capable", True)
        return TaskRunner(
            "task-1", plan, str(self.sandbox), sink, command_factory=self.factory(*server_args), **kwargs
        )

    def states(self) -> list[str]:
        return [u.state for _, u in self.updates]

    def marker_lines(self) -> list[str]:
        return self.marker.read_text().splitlines() if self.marker.exists() else []

    def marker_time(self, prefix: str) -> float:
        return next(float(line.split()[-1]) for line in self.marker_lines() if line.startswith(prefix))


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _kill_leftover_groups(root: Path) -> None:
    # Any fake server still alive (only if a test failed midway) is found by its marker path.
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                cmdline = Path("/proc", entry, "cmdline").read_bytes()
            except OSError:
                continue
            if str(root).encode() in cmdline:
                with contextlib.suppress(OSError):
                    os.killpg(int(entry), signal.SIGKILL)


def _unmount_all_under(root: Path) -> None:
    mounts = Path("/proc/self/mountinfo").read_text().splitlines()
    for line in reversed(mounts):
        point = line.split(" ")[4]
        if point.startswith(str(root)):
            ramdisk.unmount_ramdisk(point)


@pytest.fixture
def world() -> Iterator[World]:
    # Not pytest's tmp_path: its parents are 0700, which the unprivileged server user cannot enter.
    root = Path(tempfile.mkdtemp(prefix="alluxio-executor-test-", dir="/tmp"))
    try:
        root.chmod(0o755)
        home = root / "alluxio-home" / "conf"
        home.mkdir(parents=True)
        (home / "log4j.properties").write_text("log4j.rootLogger=INFO\n")
        (root / "fake_server.py").write_text(FAKE_SERVER)
        (root / "fake_format.py").write_text(FAKE_FORMAT)
        (root / "sandbox").mkdir(mode=0o755)
        marker = root / "marker.log"
        marker.touch()
        marker.chmod(0o666)
        yield World(root=root, marker=marker)
    finally:
        _kill_leftover_groups(root)
        _unmount_all_under(root)
        shutil.rmtree(root, ignore_errors=True)


def _uid_of(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("Uid:"):
            return int(line.split()[1])
    raise AssertionError("no Uid line")


def kill_when_running(runner: TaskRunner, world: World, grace: float | None, checks: list[str]) -> None:
    """Once RUNNING is reported, request a kill from another thread (as pymesos' IO thread does)."""

    def watch() -> None:
        deadline = time.monotonic() + 30
        while "TASK_RUNNING" not in world.states() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert runner.process is not None
        checks.append(f"pgid-members-before-kill={len(group_members(runner.process.pid))}")
        runner.request_kill(grace)

    threading.Thread(target=watch, daemon=True).start()


def test_worker_runs_reports_running_after_port_opens_and_is_killed_in_order(world: World) -> None:
    plan = world.plan()
    runner = world.runner(plan, "--listen-after", "0.6")
    checks: list[str] = []
    kill_when_running(runner, world, grace=5.0, checks=checks)

    observed: dict[str, Any] = {}
    original = runner.reporter._sink

    def sink(update: TaskUpdate) -> None:
        # Observe the world at the moment each update is sent.
        assert runner.process is not None or update.state == "TASK_STARTING"
        if update.state == "TASK_RUNNING":
            mount = ramdisk.find_mount(str(world.sandbox / "ramdisk"))
            observed["mount_at_running"] = mount
            observed["uid"] = _uid_of(runner.process.pid)
            observed["pgid"] = os.getpgid(runner.process.pid)
        if update.state == "TASK_KILLING":
            observed["alive_at_killing"] = runner.process.poll() is None
            observed["sigterm_before_killing"] = any("SIGTERM" in line for line in world.marker_lines())
        if update.state == "TASK_KILLED":
            observed["mount_at_killed"] = ramdisk.find_mount(str(world.sandbox / "ramdisk"))
            observed["members_at_killed"] = group_members(runner.process.pid)
            observed["steps_at_killed"] = list(runner.kill_steps)
        original(update)

    runner.reporter._sink = sink
    final = runner.run()

    assert world.states() == ["TASK_STARTING", "TASK_RUNNING", "TASK_KILLING", "TASK_KILLED"]
    assert final.state == "TASK_KILLED"
    # RUNNING only once the server answered, and promptly after that.
    running_at = next(t for t, u in world.updates if u.state == "TASK_RUNNING")
    listened_at = world.marker_time("listening")
    assert running_at >= listened_at
    assert running_at - listened_at < 0.25
    assert runner.timings["exec_to_ready"] >= 600
    # The ramdisk: exactly the configured size, a tmpfs, owned by the server's user.
    mount = observed["mount_at_running"]
    assert mount is not None
    assert mount.fs_type == "tmpfs"
    assert "size=4096k" in mount.super_options
    assert observed["uid"] == 65534  # nobody: the executor is root, the server is not
    assert observed["pgid"] == runner.process.pid != os.getpgid(0)
    assert checks == ["pgid-members-before-kill=2"]  # the server and its grandchild
    # Kill sequence: KILLING while the server still ran, then SIGTERM, exit, unmount, KILLED.
    assert observed["alive_at_killing"] is True
    assert observed["sigterm_before_killing"] is False
    assert observed["mount_at_killed"] is None
    assert observed["members_at_killed"] == []
    assert observed["steps_at_killed"][0] == "SIGTERM"
    assert "SIGKILL" not in observed["steps_at_killed"]
    assert observed["steps_at_killed"][-1].startswith("unmounted ")
    site = (world.sandbox / "conf" / "alluxio-site.properties").read_text()
    assert f"alluxio.worker.tieredstore.level0.dirs.path={world.sandbox}/ramdisk" in site
    assert f"alluxio.worker.tieredstore.level0.dirs.quota={RAMDISK_BYTES}" in site
    assert f"alluxio.worker.rpc.port={plan.ports['rpc']}" in site
    assert "data.port" not in site  # Alluxio 2.x has no separate data port
    assert not Path(plan.state_dir, "alluxio-worker.json").exists()


def test_server_ignoring_sigterm_is_sigkilled_after_the_grace_period(world: World) -> None:
    runner = world.runner(world.plan(), "--ignore-term")
    kill_when_running(runner, world, grace=0.7, checks=[])
    started = time.monotonic()
    final = runner.run()
    assert final.state == "TASK_KILLED"
    assert "SIGKILL after the 0.7s grace period" in final.message
    steps = runner.kill_steps
    assert steps[:3] == ["SIGTERM", "SIGKILL", "exited (killed by SIGKILL)"]
    assert steps[3].startswith("unmounted ")
    assert time.monotonic() - started >= 0.7
    assert group_members(runner.process.pid) == []


def test_without_killing_capability_no_task_killing_is_sent(world: World) -> None:
    runner = world.runner(world.plan(), killing_state_capable=False)
    kill_when_running(runner, world, grace=2.0, checks=[])
    runner.run()
    assert world.states() == ["TASK_STARTING", "TASK_RUNNING", "TASK_KILLED"]


def test_server_dying_after_running_is_failed_with_exit_status_and_log_tail(world: World) -> None:
    runner = world.runner(world.plan(), "--exit-after", "0.5", "--exit-code", "3")
    final = runner.run()
    assert world.states() == ["TASK_STARTING", "TASK_RUNNING", "TASK_FAILED"]
    assert "ended (exit status 3) after it was running" in final.message
    assert "FATAL fake server gives up with status 3" in final.message  # the log tail
    assert final.details == {"exit_status": 3}
    assert ramdisk.find_mount(str(world.sandbox / "ramdisk")) is None
    assert group_members(runner.process.pid) == []  # the grandchild is gone too


def test_server_dying_before_ready_is_failed(world: World) -> None:
    runner = world.runner(world.plan(), "--no-listen", "--exit-after", "0.2", "--exit-code", "1")
    final = runner.run()
    assert world.states() == ["TASK_STARTING", "TASK_FAILED"]
    assert "ended (exit status 1) before answering on port" in final.message
    assert ramdisk.find_mount(str(world.sandbox / "ramdisk")) is None


def test_readiness_timeout_fails_and_stops_the_server(world: World) -> None:
    runner = world.runner(world.plan(readiness_timeout_secs=1.0), "--no-listen")
    final = runner.run()
    assert world.states() == ["TASK_STARTING", "TASK_FAILED"]
    assert "did not answer on port" in final.message
    assert "within 1s" in final.message
    assert "fake server starting" in final.message
    assert group_members(runner.process.pid) == []
    assert ramdisk.find_mount(str(world.sandbox / "ramdisk")) is None


def test_artifact_mismatch_fails_before_anything_starts(world: World) -> None:
    (world.sandbox / "alluxio.tar.gz").write_bytes(b"tampered")
    expected = hashlib.sha256(b"published").hexdigest()
    plan = world.plan(artifacts=[Artifact("alluxio.tar.gz", expected)])
    final = world.runner(plan).run()
    assert world.states() == ["TASK_STARTING", "TASK_FAILED"]
    assert "alluxio.tar.gz" in final.message
    assert expected in final.message
    assert hashlib.sha256(b"tampered").hexdigest() in final.message
    assert world.marker_lines() == []  # the server never started
    assert not (world.sandbox / "ramdisk").exists()


def _staged_plan(world: World, sha: str | None = None) -> TaskPlan:
    """The fake distribution as a tarball the runner stages into <root>/cache, as for a URL."""
    tarball = world.root / "alluxio-fake-bin.tar.gz"
    jars = world.root / "alluxio-home" / "assembly" / "server"
    jars.mkdir(parents=True, exist_ok=True)
    zipfile.ZipFile(jars / "alluxio-fake-server.jar", "w").close()  # java opens it for real
    (jars.parent / "server.classpath").write_text("alluxio-fake-server.jar\n")
    with tarfile.open(tarball, "w:gz") as archive:
        archive.add(world.root / "alluxio-home", arcname="alluxio-fake")
    digest = hashlib.sha256(tarball.read_bytes()).hexdigest()
    return world.plan(
        alluxio_home_mode="staged",
        alluxio_home="alluxio-fake",
        alluxio_dist=Distribution(url=tarball.as_uri(), sha256=sha or digest),
        cache_dir=str(world.root / "cache"),
    )


def test_a_staged_distribution_is_used_and_released_after_the_server_stops(world: World) -> None:
    plan = _staged_plan(world)
    assert plan.alluxio_dist is not None
    staged_dir = world.root / "cache" / "dist" / plan.alluxio_dist.sha256
    runner = world.runner(plan)
    held: list[bool] = []

    def watch() -> None:
        deadline = time.monotonic() + 30
        while "TASK_RUNNING" not in world.states() and time.monotonic() < deadline:
            time.sleep(0.01)
        # In use while the server runs: another executor's prune cannot take it.
        held.append(staging.prune(str(world.root / "cache"), keep="0" * 64, max_age_secs=-1) == [])
        runner.request_kill(2.0)

    threading.Thread(target=watch, daemon=True).start()
    final = runner.run()
    assert final.state == "TASK_KILLED", final.message
    assert held == [True]
    assert runner.layout is not None
    assert runner.layout.alluxio_home == str(staged_dir / "alluxio-fake")
    assert (world.sandbox / "conf" / "log4j.properties").read_text() == "log4j.rootLogger=INFO\n"
    assert runner.timings["stage"] > 0
    # Released once the server is gone: now an (aged) version can be pruned.
    assert staging.prune(str(world.root / "cache"), keep="0" * 64, max_age_secs=-1) == [str(staged_dir)]


def test_a_class_data_sharing_archive_is_built_at_idle_priority_once_the_server_has_settled(
    world: World,
) -> None:
    plan = _staged_plan(world)
    cds_dir = world.root / "cache" / "cds"
    first = world.runner(plan, cds_build_after_secs=0.3)
    seen: dict[str, Any] = {}

    def watch() -> None:
        wait_until(lambda: "TASK_RUNNING" in world.states(), 30, "TASK_RUNNING", interval=0.02)
        assert first.cds is not None
        assert first.cds.class_list is not None
        seen["flags"] = list(first.cds.flags)
        seen["built_early"] = bool(list(cds_dir.glob("*.jsa")))
        build = wait_until(lambda: first.cds_build, 30, "the archive build to start", interval=0.02)
        with contextlib.suppress(ProcessLookupError):  # it may already be done: it is quick
            seen["policy"] = os.sched_getscheduler(build.pid)
            seen["uid"] = _uid_of(build.pid)
        seen["archives"] = wait_until(lambda: list(cds_dir.glob("*.jsa")), 30, "the archive", interval=0.02)
        seen["running_while_built"] = first.process is not None and first.process.poll() is None
        first.request_kill(2.0)

    threading.Thread(target=watch, daemon=True).start()
    assert first.run().state == "TASK_KILLED"
    assert first.cds is None  # finished: lock released
    (archive,) = seen["archives"]
    assert seen["flags"] == [f"-XX:DumpLoadedClassList={world.sandbox}/tmp/{_class_list_name(plan, archive)}"]
    assert not seen["built_early"]
    assert seen["running_while_built"]
    if "policy" in seen:
        assert seen["policy"] == os.SCHED_IDLE
        assert seen["uid"] != 0  # like the JVM: never as root
    assert archive.read_bytes().startswith(cds.STATIC_ARCHIVE_MAGIC)
    assert not list((world.sandbox / "tmp").glob("cds-*"))  # nothing of the build stays behind
    assert (world.sandbox / "logs" / "cds-archive.out").exists()

    world.updates.clear()
    second = world.runner(plan, cds_build_after_secs=0.0)
    options: list[list[str]] = []
    make = second._command_factory

    def recording(purpose: str, cfg: AlluxioJvmConfig) -> JavaCommand:
        options.append(list(cfg.jvm_options))
        return make(purpose, cfg)

    second._command_factory = recording
    kill_when_running(second, world, grace=1.0, checks=[])
    assert second.run().state == "TASK_KILLED"
    assert options == [[f"-XX:SharedArchiveFile={archive}"]]  # maps it, lists nothing
    assert second.cds_build is None
    assert list(cds_dir.glob("*.jsa")) == [archive]


def _class_list_name(plan: TaskPlan, archive: Path) -> str:
    return f"cds-{plan.role}-{archive.stem[:16]}.classlist"


def test_a_kill_during_the_archive_build_stops_it_and_keeps_nothing(world: World) -> None:
    """The build is a JVM of its own: a kill mid-build stops it with the task, and the next start
    on the host lists its classes again."""
    jdk = world.root / "slow-jdk"
    (jdk / "bin").mkdir(parents=True)
    (jdk / "lib" / "server").mkdir(parents=True)
    (jdk / "lib" / "server" / "libjvm.so").write_bytes(b"\x7fELF")
    notes = world.root / "notes"  # the build runs unprivileged, like the JVM
    notes.mkdir(mode=0o777)
    notes.chmod(0o777)
    started = notes / "build-started"
    java = jdk / "bin" / "java"
    java.write_text(
        f'#!/bin/sh\necho $$ "$@" > {started}.tmp && mv {started}.tmp {started}\nexec sleep 1000\n'
    )
    java.chmod(0o755)
    plan = _staged_plan(world)
    runner = world.runner(plan, cds_build_after_secs=0.0, environ={**os.environ, "JAVA_HOME": str(jdk)})

    def watch() -> None:
        wait_until(started.exists, 30, "the archive build to start", interval=0.02)
        runner.request_kill(2.0)

    threading.Thread(target=watch, daemon=True).start()
    assert runner.run().state == "TASK_KILLED"
    pid, *build_args = started.read_text().split()
    assert build_args[:2] == ["-Xmx128m", "-Xshare:dump"]
    assert build_args[2].startswith("-XX:SharedClassListFile=")
    assert not _alive(int(pid))  # the build died with the task
    assert not list((world.root / "cache" / "cds").glob("*.jsa"))
    assert not list((world.sandbox / "tmp").glob("cds-*"))
    # The lock was released: the next start on the host lists its classes again.
    assert runner.layout is not None
    jars = server_jars(runner.layout.alluxio_home)
    again = cds.plan_archive(str(world.root / "cache"), str(java), jars, "worker", dump_dir=str(world.root))
    assert again is not None
    assert again.class_list is not None
    again.finish()


def _alive(pid: int) -> bool:
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"


def test_a_staged_distribution_with_the_wrong_sha256_fails_before_anything_starts(world: World) -> None:
    wrong = "0" * 64
    final = world.runner(_staged_plan(world, sha=wrong)).run()
    assert world.states() == ["TASK_STARTING", "TASK_FAILED"]
    assert f"but the plan expects {wrong}" in final.message
    assert "could not start the Alluxio worker: the Alluxio distribution from file://" in final.message
    assert world.marker_lines() == []  # the server never started
    assert not (world.sandbox / "ramdisk").exists()
    assert os.listdir(world.root / "cache" / "dist") == []


def test_the_jvm_tmp_dir_is_in_the_sandbox_and_writable_by_the_server_user(world: World) -> None:
    seen: list[str] = []

    def factory(purpose: str, cfg: AlluxioJvmConfig) -> JavaCommand:
        seen.append(cfg.tmp_dir or "")
        return world.factory()(purpose, cfg)

    runner = world.runner(world.plan())
    runner._command_factory = factory
    kill_when_running(runner, world, grace=2.0, checks=[])
    assert runner.run().state == "TASK_KILLED"
    tmp = world.sandbox / "tmp"
    assert seen == [str(tmp)]
    assert tmp.stat().st_uid == 65534  # the JVM's user (nobody) owns it


def test_kill_before_start_reports_killed_without_starting(world: World) -> None:
    runner = world.runner(world.plan())
    runner.request_kill(1.0)
    final = runner.run()
    assert world.states() == ["TASK_STARTING", "TASK_KILLING", "TASK_KILLED"]
    assert final.message == "killed the Alluxio worker before it started"
    assert world.marker_lines() == []


def test_master_formats_its_journal_once_across_relaunches(world: World) -> None:
    for attempt in range(2):
        world.updates.clear()
        runner = world.runner(world.plan("master"))
        kill_when_running(runner, world, grace=2.0, checks=[])
        final = runner.run()
        assert final.state == "TASK_KILLED", final.message
        assert (world.root / "journal" / "raft" / "format-count").read_text() == "x", attempt
    journal = world.root / "journal"
    assert stat.S_IMODE(journal.stat().st_mode) == 0o750
    assert journal.stat().st_uid == 65534
    site = (world.sandbox / "conf" / "alluxio-site.properties").read_text()
    assert f"alluxio.master.journal.folder={journal}" in site


def test_journal_inside_the_sandbox_is_refused(world: World) -> None:
    final = world.runner(world.plan("master", journal_dir=str(world.sandbox / "journal"))).run()
    assert final.state == "TASK_FAILED"
    assert "is inside the sandbox" in final.message


def test_unreachable_alluxio_home_is_a_clear_error(world: World) -> None:
    (world.root / "alluxio-home").chmod(0o700)
    final = world.runner(world.plan()).run()
    assert final.state == "TASK_FAILED"
    assert "user nobody cannot enter" in final.message or "user nobody cannot read" in final.message
    assert ramdisk.find_mount(str(world.sandbox / "ramdisk")) is None


def test_a_port_that_only_accepts_is_not_ready(world: World) -> None:
    import socket

    from executor.readiness import rpc_answers

    # Bound and listening but never served, like a port an Alluxio JVM reserves early: the
    # kernel completes the TCP handshake, yet nothing answers the HTTP/2 preface.
    with socket.socket() as placeholder:
        placeholder.bind(("127.0.0.1", 0))
        placeholder.listen(4)
        port = placeholder.getsockname()[1]
        started = time.monotonic()
        assert rpc_answers("127.0.0.1", port, timeout=0.3) is False
        assert time.monotonic() - started < 1.0
    assert rpc_answers("127.0.0.1", port, timeout=0.3) is False  # closed: refused


def test_a_foreign_mount_at_the_ramdisk_path_fails_clearly_and_does_not_block_the_slot(world: World) -> None:
    foreign = world.root / "foreign"
    foreign.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "somebody-elses", str(foreign)], check=True)
    try:
        plan = world.plan(ramdisk_dir=str(foreign))
        final = world.runner(plan).run()
        assert final.state == "TASK_FAILED"
        assert "refusing to unmount" in final.message
        mount = ramdisk.find_mount(str(foreign))
        assert mount is not None
        assert mount.source == "somebody-elses"  # untouched
        assert not Path(plan.state_dir, "alluxio-worker.json").exists()
        # The slot is free again: a correct plan runs.
        world.updates.clear()
        runner = world.runner(world.plan())
        kill_when_running(runner, world, grace=2.0, checks=[])
        assert runner.run().state == "TASK_KILLED"
    finally:
        subprocess.run(["umount", str(foreign)], check=True)
