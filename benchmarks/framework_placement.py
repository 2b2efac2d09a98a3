"""Placement benchmark of the framework: how fast it places one worker per agent on a big cluster.

The stand-in Mesos master runs N simulated agents (`--simulated_agents N`: in-process agents whose
tasks go RUNNING at once). The framework's real CLI starts against it; measured per N, from
starting the framework process:

- decided: the last worker launch decided (its log line "launching AlluxioWorker ..."),
- placed: every launch accepted by Mesos (the log lines "sent N launch(es) to Mesos ...", written
  when the master has answered every ACCEPT queued so far; the ACCEPTs go out pipelined),
- running: every worker reported TASK_RUNNING (capped by --running-timeout),
- scheduler CPU per offer: the framework's CPU time from registration until placed, divided by
  the offers it had processed by then. Startup and registration CPU is shown separately.

    python benchmarks/framework_placement.py                 # 1000 2500 5000 10000
    python benchmarks/framework_placement.py 10000 --repeat 5   # medians of 5 runs per size
    python benchmarks/framework_placement.py 10000 --profile /tmp/framework.prof
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import pathlib
import re
import shutil
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field

from framework_support import FrameworkRun, log_lines, process_cpu_seconds, write_conf

from sandbox.localcluster.mesos_processes import start_master
from sandbox.localcluster.ports import free_port

TARGET_SECONDS = 5.0
AGENT_RESOURCES = "cpus:4;mem:8192;disk:65536;ports:[19000-32000]"
# The framework never reaches a real agent here: the executor and Alluxio are never fetched.
SETTINGS = {
    "alluxio.integration.mesos.executor.url": "http://artifacts.invalid/alluxio-mesos-executor.pyz",
    "alluxio.integration.mesos.executor.sha256": "0" * 64,
    "alluxio.integration.mesos.alluxio.jar.url": "LOCAL",
}


@dataclass
class Result:
    agents: int
    decided_seconds: float
    placed_seconds: float
    running_seconds: float | None  # None: not all RUNNING within --running-timeout
    running_count: int
    offers: int
    startup_cpu: float
    placement_cpu: float
    master_cpu: float  # the stand-in master's CPU from the framework's start until placed

    @property
    def cpu_per_offer_ms(self) -> float:
        return 1000 * self.placement_cpu / max(1, self.offers)


_SENT = re.compile(r"^sent (\d+) launch\(es\) to Mesos in [\d.]+ s \((\d+) offers received so far\)$")


@dataclass
class _Progress:
    """What the framework's log said so far. It is read incrementally: re-reading a log of
    30,000 lines ten times a second would take a core away from the processes being measured."""

    run: FrameworkRun
    registered: bool = False
    decided: list[float] = field(default_factory=list)
    sent: list[tuple[float, int, int]] = field(default_factory=list)  # (time, launches, offers)
    running: list[float] = field(default_factory=list)
    _offset: int = 0

    def update(self) -> _Progress:
        try:
            with open(self.run.log_path, "rb") as log:
                log.seek(self._offset)
                chunk = log.read()
        except OSError:
            return self
        complete = chunk[: chunk.rfind(b"\n") + 1]
        self._offset += len(complete)
        for stamp, message in log_lines(complete.decode("utf-8", errors="replace")):
            if message.startswith("launching AlluxioWorker "):
                self.decided.append(stamp)
            elif message.startswith("alluxio-worker-") and message.endswith("-> TASK_RUNNING"):
                self.running.append(stamp)
            elif message.startswith("registered with master"):
                self.registered = True
            elif match := _SENT.match(message):
                self.sent.append((stamp, int(match.group(1)), int(match.group(2))))
        return self


def measure(
    agents: int, work: pathlib.Path, timeout: float, running_timeout: float, profile: pathlib.Path | None
) -> Result:
    """One placement on a fresh master and a fresh framework home under ``work`` (unique per call)."""
    master = start_master(
        "127.0.0.1",
        free_port(),
        work / "master",
        [
            f"--simulated_agents={agents}",
            f"--simulated_agent_resources={AGENT_RESOURCES}",
            "--heartbeat_interval=60secs",
            "--log_level=WARNING",
        ],
        timeout=300,
    )
    home = work / "framework"
    write_conf(home, SETTINGS)
    run = FrameworkRun(master.address, home)
    try:
        # The master answers /health before it has finished registering its simulated agents;
        # what the benchmark measures is the framework, so it starts on a settled master.
        _wait_until_idle(master.process.pid)
        master_cpu_before = process_cpu_seconds(master.process.pid)
        run.start(profile)
        progress = _Progress(run)
        startup_cpu = placed_cpu = None
        deadline = time.monotonic() + timeout
        while True:  # until every worker launch was accepted by Mesos
            if not run.alive():
                raise RuntimeError(f"the framework exited; see {run.log_path}")
            progress.update()
            if startup_cpu is None and progress.registered:
                startup_cpu = run.cpu_seconds()
            workers_sent = sum(n for _, n, _ in progress.sent) - 1  # one launch was the master
            if workers_sent >= agents:
                placed_cpu = run.cpu_seconds()
                master_cpu = process_cpu_seconds(master.process.pid) - master_cpu_before
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"{workers_sent} of {agents} launches sent after {timeout}s")
            time.sleep(0.1)
        placed_at, _, offers = progress.sent[-1]
        deadline = time.monotonic() + running_timeout
        while len(progress.running) < agents and time.monotonic() < deadline and run.alive():
            time.sleep(0.5)
            progress.update()
        done = len(progress.running) >= agents
        return Result(
            agents=agents,
            decided_seconds=max(progress.decided) - run.started_at,
            placed_seconds=placed_at - run.started_at,
            running_seconds=(max(progress.running) - run.started_at) if done else None,
            running_count=len(progress.running),
            offers=offers,
            startup_cpu=startup_cpu or 0.0,
            placement_cpu=placed_cpu - (startup_cpu or 0.0),
            master_cpu=master_cpu,
        )
    finally:
        run.kill()  # SIGTERM: the failover path, so the profile (if any) is written
        master.stop()


def _wait_until_idle(pid: int, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    used = process_cpu_seconds(pid)
    while time.monotonic() < deadline:
        time.sleep(0.25)
        now = process_cpu_seconds(pid)
        if now - used < 0.01:
            return
        used = now
    raise RuntimeError(f"the Mesos master (pid {pid}) was still busy after {timeout:g}s")


def _report(result: Result, running_timeout: float) -> str:
    running = (
        f"{result.running_seconds:6.2f} s"
        if result.running_seconds is not None
        else f"{result.running_count} of {result.agents} after +{running_timeout:g} s"
    )
    return (
        f"{result.agents:>6} agents: decided {result.decided_seconds:6.2f} s, "
        f"placed {result.placed_seconds:6.2f} s, running {running}; "
        f"CPU/offer {result.cpu_per_offer_ms:.3f} ms "
        f"({result.placement_cpu:.2f} s for {result.offers} offers; "
        f"startup+registration {result.startup_cpu:.2f} s); "
        f"master CPU {result.master_cpu:.2f} s"
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("agents", nargs="*", type=int, default=[1000, 2500, 5000, 10000])
    parser.add_argument("--timeout", type=float, default=600.0, help="per size, until placed (default 600 s)")
    parser.add_argument(
        "--running-timeout", type=float, default=60.0, help="extra wait for TASK_RUNNING (default 60 s)"
    )
    parser.add_argument(
        "--repeat", type=int, default=1, help="runs per size; medians are compared (default 1)"
    )
    parser.add_argument(
        "--profile", type=pathlib.Path, help="cProfile the framework (largest size, last run only)"
    )
    parser.add_argument("--json", type=pathlib.Path, help="also write the results to this file")
    args = parser.parse_args()
    if any(n < 1 for n in args.agents):
        parser.error("agents: every size must be at least 1")
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    sizes = sorted(set(args.agents))
    work = pathlib.Path(tempfile.mkdtemp(prefix="framework-placement-"))
    results: dict[int, list[Result]] = {agents: [] for agents in sizes}
    try:
        for run in range(args.repeat):
            for agents in sizes:
                last = run == args.repeat - 1 and agents == sizes[-1]
                profile = args.profile if last else None
                result = measure(
                    agents, work / f"{agents}-{run}", args.timeout, args.running_timeout, profile
                )
                results[agents].append(result)
                print(_report(result, args.running_timeout), flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if args.json:
        rows = [dataclasses.asdict(r) for size in sizes for r in results[size]]
        args.json.write_text(json.dumps(rows, indent=1), encoding="utf-8")
    placed = {size: statistics.median(r.placed_seconds for r in results[size]) for size in sizes}
    cpu = {size: statistics.median(r.cpu_per_offer_ms for r in results[size]) for size in sizes}
    for size in sizes:
        runs = sorted(round(r.placed_seconds, 2) for r in results[size])
        print(f"{size:>6} agents: median placed {placed[size]:.2f} s {runs}, CPU/offer {cpu[size]:.3f} ms")
    smallest, largest = sizes[0], sizes[-1]
    if largest > smallest:
        print(
            f"agents x{largest / smallest:.1f}: placement time x{placed[largest] / placed[smallest]:.2f}, "
            f"CPU per offer x{cpu[largest] / cpu[smallest]:.2f} (linear: x{largest / smallest:.1f} and x1)"
        )
    verdict = "meets" if placed[largest] < TARGET_SECONDS else "MISSES"
    print(
        f"{largest} agents placed in {placed[largest]:.2f} s (median of {args.repeat}): "
        f"{verdict} the {TARGET_SECONDS:g} s target"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
