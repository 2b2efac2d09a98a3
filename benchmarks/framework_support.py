"""Shared pieces of the framework benchmarks (not a benchmark itself): run the framework's real CLI
as a child process, write its configuration, read its log and status, measure CPU and medians."""

from __future__ import annotations

import contextlib
import datetime
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
        events = []
        try:
            lines = self.log_path.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError:
            return events
        for line in lines:
            match = _LOG_LINE.match(line)
            if match:
                stamp = datetime.datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp()
                events.append((stamp, match.group(4)))
        return events

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
