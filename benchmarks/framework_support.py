"""Shared pieces of the framework benchmarks (not a benchmark itself): run the framework's real CLI
as a child process, write its configuration, read its log and status, measure CPU and medians."""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import json
import os
import pathlib
import re
import shutil
import signal
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterable, Mapping
from typing import Any

from framework.state_store import read_runtime

REPO_ROOT = pathlib.Path(__file__).resolve().parent.parent
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
CLI = shutil.which("alluxio-mesos") or str(pathlib.Path(sys.executable).parent / "alluxio-mesos")
# The framework's log format: "2026-11-26 18:51:05,945 INFO framework.scheduler: ..."
_LOG_LINE = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) (\w+) ([\w.]+): (.*)$")


def process_cpu_seconds(pid: int) -> float:
    """user + system CPU of a live process, from /proc/<pid>/stat."""
    with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def median(values: Iterable[float]) -> float:
    return float(statistics.median(list(values)))


def write_conf(home: pathlib.Path, settings: Mapping[str, str]) -> None:
    conf = home / "conf" / "alluxio-site.properties"
    conf.parent.mkdir(parents=True, exist_ok=True)
    conf.write_text("".join(f"{k}={v}\n" for k, v in settings.items()), encoding="utf-8")


# pymesos handles Mesos events on its own thread, which `python -m cProfile` does not see: profile
# every thread, each into <profile>.<thread name> (merge them with pstats.Stats(*files)).
_PROFILE_ALL_THREADS = """
import cProfile, sys, threading
from framework.cli import main
target = sys.argv.pop(1)
original_run = threading.Thread.run
def profiled_run(self):
    profile = cProfile.Profile()
    profile.enable()
    try:
        original_run(self)
    finally:
        profile.disable()
        profile.dump_stats(target + "." + self.name.replace("/", "_"))
threading.Thread.run = profiled_run
sys.argv[0] = "alluxio-mesos"
profile = cProfile.Profile()
profile.enable()
try:
    code = main()
finally:
    profile.disable()
    profile.dump_stats(target + ".main")
sys.exit(code)
"""


def log_lines(text: str) -> list[tuple[float, str]]:
    """(unix time, message) of each framework log line in ``text`` (other lines are skipped)."""
    events = []
    for line in text.splitlines():
        match = _LOG_LINE.match(line)
        if match:
            stamp = datetime.datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp()
            events.append((stamp, match.group(4)))
    return events


class FrameworkRun:
    """`alluxio-mesos framework start --foreground` as a child process, like a service manager."""

    def __init__(self, mesos_master: str, home: pathlib.Path) -> None:
        self.mesos_master = mesos_master
        self.home = home
        self.process: subprocess.Popen[bytes] | None = None
        self.started_at = 0.0

    @property
    def log_path(self) -> pathlib.Path:
        return self.home / "logs" / "framework.out"

    def start(self, profile: pathlib.Path | None = None) -> None:
        command = [CLI]
        if profile is not None:  # the same entry point, every thread under cProfile
            command = [sys.executable, "-c", _PROFILE_ALL_THREADS, str(profile)]
        command += [
            "framework", "start", self.mesos_master, "--home", str(self.home), "--foreground",
            "--advertise-host", "127.0.0.1", "--status-bind", "127.0.0.1", "--status-port", "0",
        ]  # fmt: skip
        self.home.mkdir(parents=True, exist_ok=True)
        self.started_at = time.time()
        with open(self.home / "console.log", "ab") as console:
            self.process = subprocess.Popen(
                command, stdout=console, stderr=subprocess.STDOUT, cwd=REPO_ROOT, start_new_session=True
            )

    @property
    def pid(self) -> int:
        assert self.process is not None, "not started"
        return self.process.pid

    def cpu_seconds(self) -> float:
        return process_cpu_seconds(self.pid)

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def status(self, timeout: float = 30.0) -> dict[str, Any] | None:
        runtime = read_runtime(self.home / "state")
        if not runtime or runtime.get("pid") != self.pid:
            return None
        try:
            with urllib.request.urlopen(runtime["status_url"], timeout=timeout) as reply:
                return dict(json.load(reply))
        except OSError:
            return None

    def log_events(self) -> list[tuple[float, str]]:
        """(unix time, message) of every line of framework.out."""
        try:
            return log_lines(self.log_path.read_text(encoding="utf-8", errors="replace"))
        except OSError:
            return []

    def teardown(self, timeout: float = 300.0) -> None:
        """`alluxio-mesos framework stop` (TEARDOWN, waits until no task is left), then make sure
        the process is gone."""
        if self.alive():
            subprocess.run(
                [CLI, "framework", "stop", "--home", str(self.home), "--timeout", str(int(timeout))],
                capture_output=True,
                timeout=timeout + 30,
                check=False,
            )
        self.kill()

    def kill(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)


# ---- a real deployment on a local cluster (time to ready, executor overhead) --------------------
RAMDISK_BYTES = 128 * 1024 * 1024
MASTER_WEB_PORT = 19999


def alluxio_tarball() -> tuple[pathlib.Path, str]:
    version = os.environ.get("ALLUXIO_VERSION", "2.9.6")
    cache = pathlib.Path(os.environ["ALLUXIO_MESOS_CACHE"]) / "alluxio" / version
    tarball = cache / f"alluxio-{version}-bin.tar.gz"
    if not tarball.is_file():
        raise SystemExit(f"{tarball} is missing: run `setup/bootstrap.sh alluxio` first")
    return tarball, (cache / f"{tarball.name}.sha256").read_text(encoding="utf-8").split()[0]


def executor_bundle(directory: pathlib.Path) -> tuple[pathlib.Path, str]:
    output = directory / "alluxio-mesos-executor.pyz"
    subprocess.run(
        [sys.executable, "-m", "executor.bundle", "--output", str(output)],
        check=True,
        cwd=REPO_ROOT,
        capture_output=True,
        timeout=120,
    )
    return output, hashlib.sha256(output.read_bytes()).hexdigest()


def deployment_settings(
    base: pathlib.Path,
    tarball: tuple[str, str],
    bundle: tuple[str, str],
    cache_dir: pathlib.Path | None = None,
) -> dict[str, str]:
    """The e2e suite's deployment: 768 MB masters, 512 MB + 128 MB ramdisk workers, fresh journal.
    The hosts stage the tarball in `cache_dir` (default: a fresh `base/cache`, a cold host)."""
    underfs = base / "underfs"
    underfs.mkdir(parents=True, exist_ok=True)
    underfs.chmod(0o777)  # the JVMs run as nobody
    return {
        "alluxio.integration.mesos.executor.url": bundle[0],
        "alluxio.integration.mesos.executor.sha256": bundle[1],
        "alluxio.integration.mesos.executor.python": "/usr/bin/python3",
        "alluxio.integration.mesos.alluxio.jar.url": tarball[0],
        "alluxio.integration.mesos.alluxio.jar.sha256": tarball[1],
        "alluxio.integration.master.resource.mem": "768MB",
        "alluxio.integration.worker.resource.mem": "512MB",
        "alluxio.worker.ramdisk.size": str(RAMDISK_BYTES),
        # The framework's default, spelled out: a worker needs ~4-5 s to stop gracefully.
        "alluxio.integration.mesos.kill.grace.period": "30secs",
        "alluxio.master.journal.folder": str(base / "journal"),
        "alluxio.integration.mesos.cache.dir": str(cache_dir or base / "cache"),
        "alluxio.master.mount.table.root.ufs": str(underfs),
    }


def alluxio_master_info(host: str, timeout: float = 2.0) -> dict[str, Any] | None:
    try:
        url = f"http://{host}:{MASTER_WEB_PORT}/api/v1/master/info"
        with urllib.request.urlopen(url, timeout=timeout) as reply:
            return dict(json.load(reply))
    except (OSError, ValueError):
        return None


def live_worker_hosts(info: dict[str, Any] | None) -> list[str]:
    return sorted(w["address"]["host"] for w in (info or {}).get("workers") or [])


# ---- what one task's sandbox stderr says (the fetcher's glog lines, then the executor's log) -----
_GLOG = re.compile(r"^[IWEF](\d\d)(\d\d) (\d\d):(\d\d):(\d\d)\.(\d{6}) +\d+ fetcher\.py\] (.*)$")
_EXECUTOR_LOG = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) \w+ \[[\w.]+\] (.*)$")
_LAUNCH_TO_EXEC = re.compile(
    r"launch→exec ([\d.]+) ms for the (\w+) JVM pid \d+ \((.*)\); without artifact hashing and journal "
    r"format: ([\d.]+) ms"
)
_READY = re.compile(
    r"answers gRPC on port \d+ (\d+) ms after exec \(port open seen within (\d+) ms, "
    r"its first HTTP/2 answer took (\d+) ms\)"
)


def _glog_time(match: re.Match[str]) -> float:
    month, day, hour, minute, second, micros = (int(g) for g in match.groups()[:6])
    year = datetime.date.today().year
    return datetime.datetime(year, month, day, hour, minute, second, micros).timestamp()


def task_timings(stderr: pathlib.Path) -> dict[str, Any]:
    """Timestamps (unix seconds) and the executor's own measurements (ms) of one task."""
    found: dict[str, Any] = {}
    for line in stderr.read_text(encoding="utf-8", errors="replace").splitlines():
        if glog := _GLOG.match(line):
            stamp, message = _glog_time(glog), glog.group(7)
            found.setdefault("fetch_started", stamp)
            if message.startswith("Successfully fetched all URIs"):
                found["fetch_done"] = stamp
            continue
        entry = _EXECUTOR_LOG.match(line)
        if not entry:
            continue
        stamp = datetime.datetime.strptime(entry.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp()
        message = entry.group(2)
        if message.startswith("alluxio-mesos executor "):
            found["executor_started"] = stamp
        elif launch := _LAUNCH_TO_EXEC.search(message):
            found["role"] = launch.group(2)
            found["launch_to_exec_ms"] = float(launch.group(1))
            found["launch_to_exec_without_hash_ms"] = float(launch.group(4))
            for part in launch.group(3).split(", "):
                name, value, _ = part.rsplit(" ", 2)
                found[f"{name}_ms"] = float(value)
            found["exec"] = stamp
        elif ready := _READY.search(message):
            found["exec_to_ready_ms"] = float(ready.group(1))
            found["ready_detection_ms"] = float(ready.group(2))
            found["first_answer_ms"] = float(ready.group(3))
        elif "→ TASK_RUNNING" in message:
            found["running"] = stamp
    return found


def sandbox_stderr_files(work_dir: pathlib.Path, framework_id: str) -> list[pathlib.Path]:
    """Every task sandbox's stderr of one framework under an agent's work dir (not runs/latest)."""
    pattern = f"slaves/*/frameworks/{framework_id}/executors/*/runs/*/stderr"
    return sorted(p for p in work_dir.glob(pattern) if p.parent.name != "latest")
