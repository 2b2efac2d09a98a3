"""Placement benchmark of the framework: how fast it places one worker per agent on a big cluster.

The stand-in Mesos master runs N simulated agents (`--simulated_agents N`: in-process agents whose
tasks go RUNNING at once). The framework's real CLI starts against it; measured per N:

- start → placed: from starting the framework process until the last worker launch (its log),
- start → running: until the last worker reported TASK_RUNNING,
- scheduler CPU per offer: the framework process's CPU time from registration until all workers
  ran, divided by the offers it processed (its status endpoint's counters); the CPU spent
  starting the interpreter and registering is reported separately.

    python benchmarks/framework_placement.py                 # 1000 2500 5000 10000
    python benchmarks/framework_placement.py 10000 --profile /tmp/framework.prof
"""

from __future__ import annotations

import argparse
import pathlib
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass

from framework_support import FrameworkRun, write_conf

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
    placed_seconds: float
    running_seconds: float
    offers: int
    offer_events: int
    startup_cpu: float
    placement_cpu: float

    @property
    def cpu_per_offer_ms(self) -> float:
        return 1000 * self.placement_cpu / max(1, self.offers)


def _worker_events(run: FrameworkRun) -> tuple[list[float], list[float]]:
    launched, running = [], []
    for stamp, message in run.log_events():
        if message.startswith("launching AlluxioWorker "):
            launched.append(stamp)
        elif message.startswith("alluxio-worker-") and message.endswith("-> TASK_RUNNING"):
            running.append(stamp)
    return launched, running


def measure(agents: int, work: pathlib.Path, timeout: float, profile: pathlib.Path | None) -> Result:
    master = start_master(
        "127.0.0.1",
        free_port(),
        work / f"master-{agents}",
        [
            f"--simulated_agents={agents}",
            f"--simulated_agent_resources={AGENT_RESOURCES}",
            "--heartbeat_interval=60secs",
            "--log_level=WARNING",
        ],
        timeout=300,
    )
    home = work / f"framework-{agents}"
    write_conf(home, SETTINGS)
    run = FrameworkRun(master.address, home)
    try:
        run.start(profile)
        registered_cpu = None
        deadline = time.monotonic() + timeout
        while True:
            if not run.alive():
                raise RuntimeError(f"the framework exited; see {run.log_path}")
            if registered_cpu is None and any(
                "registered with master" in m for _, m in run.log_events()[-20:]
            ):
                registered_cpu = run.cpu_seconds()
            launched, running = _worker_events(run)
            if len(running) >= agents:
                done_cpu = run.cpu_seconds()
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"{len(launched)} launched, {len(running)} running after {timeout}s")
            time.sleep(0.1)
        status = run.status(timeout=120) or {}
        counters = status.get("counters", {})
        startup_cpu = registered_cpu if registered_cpu is not None else 0.0
        return Result(
            agents=agents,
            placed_seconds=max(launched) - run.started_at,
            running_seconds=max(running) - run.started_at,
            offers=int(counters.get("offers", 0)),
            offer_events=int(counters.get("offer_events", 0)),
            startup_cpu=startup_cpu,
            placement_cpu=done_cpu - startup_cpu,
        )
    finally:
        run.kill()  # SIGTERM: the failover path, so the profile (if any) is written
        master.stop()


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("agents", nargs="*", type=int, default=[1000, 2500, 5000, 10000])
    parser.add_argument("--timeout", type=float, default=600.0, help="per size (default 600 s)")
    parser.add_argument("--profile", type=pathlib.Path, help="cProfile the framework (largest size only)")
    args = parser.parse_args()
    if any(n < 1 for n in args.agents):
        parser.error("agents: every size must be at least 1")
    work = pathlib.Path(tempfile.mkdtemp(prefix="framework-placement-"))
    results = []
    try:
        for agents in sorted(args.agents):
            profile = args.profile if args.profile and agents == max(args.agents) else None
            result = measure(agents, work, args.timeout, profile)
            results.append(result)
            print(
                f"{agents:>6} agents: start->placed {result.placed_seconds:6.2f} s, "
                f"start->running {result.running_seconds:6.2f} s, "
                f"{result.offers} offers in {result.offer_events} events, "
                f"CPU/offer {result.cpu_per_offer_ms:.3f} ms "
                f"(placement CPU {result.placement_cpu:.2f} s, "
                f"startup+registration {result.startup_cpu:.2f} s)",
                flush=True,
            )
    finally:
        shutil.rmtree(work, ignore_errors=True)
    smallest, largest = results[0], results[-1]
    if largest.agents > smallest.agents:
        scale = largest.agents / smallest.agents
        growth = largest.placed_seconds / smallest.placed_seconds
        print(f"time x{growth:.2f} for agents x{scale:.1f} (linear: x{scale:.1f})")
    verdict = "meets" if largest.placed_seconds < TARGET_SECONDS else "MISSES"
    placed = f"{largest.agents} agents placed in {largest.placed_seconds:.2f} s"
    print(f"{placed}: {verdict} the {TARGET_SECONDS:g} s target")
    return 0


if __name__ == "__main__":
    sys.exit(main())
