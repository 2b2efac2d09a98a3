"""Time to ready: from starting the framework until Alluxio reports every worker live, on a local
three-host cluster (sandbox/localcluster), next to a floor measured in the same run.

The floor is the work nobody can skip, done back to back by hand on the same hosts: fetch and
extract the tarball with the agents' own fetcher, format the journal and start a master JVM until
its RPC port answers, then start a worker JVM (ramdisk mounted) until the master lists it live.
Each framework run is a fresh deployment (new framework, new journal), torn down afterwards with
`alluxio-mesos framework stop`. Printed: every run's timeline, the median, and median / floor.

Every run starts with an EMPTY cache dir (alluxio.integration.mesos.cache.dir), like a cold host:
the executors download and unpack the tarball (once per host; here the hosts share one
filesystem, so once in all) before any JVM starts, which is the honest comparison with the floor's
one fetch. `--warm` also measures as many runs on a warm cache, as a relaunch or a second
deployment on the same hosts sees it: the directory the last cold run staged, kept, with the
class-data sharing archives its executors built while it ran (that run stays up until they exist).

    python benchmarks/framework_time_to_ready.py --runs 3 [--warm]
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import json
import os
import pathlib
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from framework_support import (
    RAMDISK_BYTES,
    FrameworkRun,
    alluxio_master_info,
    alluxio_tarball,
    deployment_settings,
    executor_bundle,
    live_worker_hosts,
    sandbox_stderr_files,
    task_timings,
    write_conf,
)

from executor import alluxio_process, readiness
from framework.spec import STARTUP_DEFAULTS
from sandbox.localcluster import ClusterHost, HostSpec, LocalCluster
from sandbox.localcluster.network import netns_path

TARGET_RATIO = 1.25
HOSTS = 3
MASTER_HEAP = "576MB"  # 75% of the deployment's 768MB, as the framework sizes it
WORKER_HEAP = "384MB"  # 75% of 512MB
FETCHER = pathlib.Path(__file__).resolve().parents[1] / "sandbox" / "mesos" / "agent" / "fetcher.py"


def _wait(condition: Callable[[], Any], timeout: float, what: str, interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = condition()
        if result:
            return result
        time.sleep(interval)
    raise RuntimeError(f"timed out after {timeout:g}s waiting for {what}")


# ---- the floor ------------------------------------------------------------------------------------
@contextlib.contextmanager
def _jvm_on(host: ClusterHost, command: alluxio_process.JavaCommand, log: pathlib.Path) -> Iterator[None]:
    with open(log, "wb") as output:
        process = subprocess.Popen(
            ["nsenter", f"--net={netns_path(host.netns)}", "--", *command.argv],
            env=command.env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, 9)
        process.wait(timeout=30)


def _fetch(host: ClusterHost, url: str, sandbox: pathlib.Path) -> None:
    sandbox.mkdir(parents=True)
    info = {
        "items": [{"uri": {"value": url, "extract": True}, "action": "BYPASS_CACHE"}],
        "sandbox_directory": str(sandbox),
    }
    done = subprocess.run(
        ["nsenter", f"--net={netns_path(host.netns)}", "--", sys.executable, str(FETCHER)],
        env={**os.environ, "MESOS_FETCHER_INFO": json.dumps(info)},
        cwd=sandbox,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"the fetcher failed: {done.stderr[-2000:]}")


def _config(home: pathlib.Path, work: pathlib.Path, heap: str, properties: dict[str, str]) -> Any:
    conf = work / "conf"
    conf.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(home / "conf" / "log4j.properties", conf / "log4j.properties")
    tmp = work / "tmp"  # java.io.tmpdir: RocksDB's native library stays in the run's own dir
    tmp.mkdir(exist_ok=True)
    # the framework's own start-up defaults, so the floor runs the JVMs the way the tasks do
    lines = [f"{k}={v}\n" for k, v in {**STARTUP_DEFAULTS, **properties}.items()]
    (conf / "alluxio-site.properties").write_text("".join(lines), encoding="utf-8")
    return alluxio_process.AlluxioJvmConfig(
        alluxio_home=str(home),
        conf_dir=str(conf),
        logs_dir=str(work / "logs"),
        tmp_dir=str(tmp),
        heap_size=heap,
    )


def _start_worker(
    home: pathlib.Path, host: ClusterHost, master: ClusterHost, work: pathlib.Path
) -> contextlib.AbstractContextManager[None]:
    ramdisk = work / "ramdisk"
    ramdisk.mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={RAMDISK_BYTES}", "tmpfs", str(ramdisk)], check=True)
    stack = contextlib.ExitStack()
    stack.callback(subprocess.run, ["umount", str(ramdisk)], check=False)
    worker = _config(
        home,
        work,
        WORKER_HEAP,
        {
            "alluxio.master.hostname": master.hostname,
            "alluxio.worker.hostname": host.hostname,
            "alluxio.worker.tieredstore.level0.alias": "MEM",
            "alluxio.worker.tieredstore.level0.dirs.path": str(ramdisk),
            "alluxio.worker.tieredstore.level0.dirs.quota": str(RAMDISK_BYTES),
            "alluxio.worker.ramdisk.size": str(RAMDISK_BYTES),
        },
    )
    stack.enter_context(_jvm_on(host, alluxio_process.worker_command(worker), work / "worker.out"))
    return stack


def measure_floor(
    cluster: LocalCluster, tarball_url: str, work: pathlib.Path, workers: int
) -> dict[str, float]:
    """workers=0: the brief's floor (one fetch, master, then one worker from the same unpacked
    tarball). workers=N: what a masters-first deployment cannot avoid on these shared cores: the
    master's path, then N hosts each fetching and starting a worker at the same time."""
    master_host = cluster.hosts[0]
    phases: dict[str, float] = {}
    started = time.monotonic()
    _fetch(master_host, tarball_url, work / "sandbox")
    (home,) = [p for p in (work / "sandbox").iterdir() if p.is_dir()]
    phases["fetch+extract"] = time.monotonic() - started

    mark = time.monotonic()
    master = _config(
        home,
        work / "master",
        MASTER_HEAP,
        {
            "alluxio.master.hostname": master_host.hostname,
            "alluxio.master.journal.folder": str(work / "journal"),
            "alluxio.master.mount.table.root.ufs": str(work / "underfs"),
        },
    )
    (work / "underfs").mkdir()
    format_command = alluxio_process.format_command(master)
    formatted = subprocess.run(
        ["nsenter", f"--net={netns_path(master_host.netns)}", "--", *format_command.argv],
        env=format_command.env,
        capture_output=True,
        timeout=300,
        check=False,
    )
    if formatted.returncode != 0:
        raise RuntimeError(f"alluxio format master failed: {formatted.stdout[-2000:]!r}")
    phases["journal format"] = time.monotonic() - mark

    mark = time.monotonic()
    with contextlib.ExitStack() as running:
        running.enter_context(
            _jvm_on(master_host, alluxio_process.master_command(master), work / "master.out")
        )
        readiness.wait_until_answering(master_host.ip, 19998, 300)
        phases["master JVM ready"] = time.monotonic() - mark

        mark = time.monotonic()
        if workers == 0:
            hosts = [cluster.hosts[1 % len(cluster.hosts)]]  # another host when there is one
            running.enter_context(_start_worker(home, hosts[0], master_host, work / "worker-0"))
        else:
            hosts = cluster.hosts[:workers]

            def fetch_and_start(index: int, host: ClusterHost) -> contextlib.AbstractContextManager[None]:
                sandbox = work / f"worker-{index}" / "sandbox"
                _fetch(host, tarball_url, sandbox)
                (worker_home,) = [p for p in sandbox.iterdir() if p.is_dir()]
                return _start_worker(worker_home, host, master_host, work / f"worker-{index}")

            with concurrent.futures.ThreadPoolExecutor(len(hosts)) as pool:
                for started_worker in pool.map(fetch_and_start, range(len(hosts)), hosts):
                    running.enter_context(started_worker)
        expected = sorted(h.hostname for h in hosts)
        _wait(
            lambda: live_worker_hosts(alluxio_master_info(master_host.hostname)) == expected,
            300,
            f"{len(hosts)} floor worker(s) live in the master",
        )
        phases["workers live" if workers else "worker JVM live"] = time.monotonic() - mark
    phases["total"] = time.monotonic() - started
    return phases


# ---- one framework deployment ------------------------------------------------------------------
_MILESTONES = (
    ("registered", lambda m: m.startswith("registered with master")),
    ("master launched", lambda m: m.startswith("launching AlluxioMaster")),
    ("master RUNNING", lambda m: m.startswith("alluxio-master-") and "-> TASK_RUNNING" in m),
    ("first worker launched", lambda m: m.startswith("launching AlluxioWorker")),
    ("last worker RUNNING", lambda m: m.startswith("alluxio-worker-") and "-> TASK_RUNNING" in m),
)


def deploy_once(
    cluster: LocalCluster,
    artifacts: tuple[tuple[str, str], tuple[str, str]],
    run_dir: pathlib.Path,
    cache_dir: pathlib.Path,
    keep_up_for_archives: bool = False,
) -> dict[str, float]:
    settings = deployment_settings(run_dir, *artifacts, cache_dir=cache_dir)
    write_conf(run_dir / "home", settings)
    run = FrameworkRun(cluster.master.address, run_dir / "home")
    run.start()
    try:
        expected = sorted(h.hostname for h in cluster.hosts)

        def all_live() -> bool:
            status = run.status(timeout=2.0)
            masters = (status or {}).get("master_hosts") or []
            if not masters or not masters[0]:
                return False
            info = alluxio_master_info(masters[0])
            workers = (info or {}).get("workers") or []
            return live_worker_hosts(info) == expected and all(
                w["capacityBytes"] == RAMDISK_BYTES for w in workers
            )

        _wait(all_live, 600, "every worker live in Alluxio", interval=0.1)
        timeline = {"ready (all workers live)": time.time() - run.started_at}
        events = run.log_events()
        for name, matches in _MILESTONES:
            stamps = [t for t, m in events if matches(m)]
            if stamps:
                chosen = max(stamps) if name.startswith("last") else min(stamps)
                timeline[name] = chosen - run.started_at
        framework_id = (run.status() or {})["framework"]["id"]
        tasks = [
            task_timings(path)
            for host in cluster.hosts
            for path in sandbox_stderr_files(host.work_dir, framework_id)
        ]
        timeline.update(_task_phases(tasks, run.started_at))
        if keep_up_for_archives:
            # One archive per role, built by the executors at idle priority once their JVMs settled.
            _wait(lambda: len(list((cache_dir / "cds").glob("*.jsa"))) >= 2, 300, "the CDS archives")
            timeline["(CDS archives built)"] = time.time() - run.started_at
        return timeline
    finally:
        run.teardown(timeout=180)
        left = [p for h in cluster.hosts for p in h.pids_running("alluxio.")]
        if left:
            raise RuntimeError(f"Alluxio JVMs left after `framework stop`: {left}")


def _task_phases(tasks: list[dict[str, Any]], started_at: float) -> dict[str, float]:
    """The executors' side of the timeline: fetch, hash check, journal format, JVM start."""
    phases: dict[str, float] = {}
    for role in ("master", "worker"):
        mine = [t for t in tasks if t.get("role") == role and "fetch_done" in t and "running" in t]
        if not mine:
            continue
        slowest = max(mine, key=lambda t: t["running"])
        prefix = "master" if role == "master" else "slowest worker"
        if "stage_ms" in slowest:
            # A duration, not a moment: when the JVM exec happened, staging had taken this long.
            phases[f"{prefix}: staging took"] = slowest["stage_ms"] / 1000
        if "journal_ms" in slowest:
            phases[f"{prefix}: journal format took"] = slowest["journal_ms"] / 1000
        if "executor_started" in slowest:
            phases[f"{prefix}: executor started"] = slowest["executor_started"] - started_at
        phases[f"{prefix}: fetch started"] = slowest["fetch_started"] - started_at
        phases[f"{prefix}: fetched"] = slowest["fetch_done"] - started_at
        phases[f"{prefix}: JVM exec"] = slowest["exec"] - started_at
        phases[f"{prefix}: RUNNING sent"] = slowest["running"] - started_at
    return phases


def _format(phases: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:.2f} s" for k, v in sorted(phases.items(), key=lambda kv: kv[1]))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=3, help="framework deployments to measure (default 3)")
    parser.add_argument(
        "--hosts", type=int, default=HOSTS, help=f"agent hosts, one worker each (default {HOSTS})"
    )
    parser.add_argument("--floors", type=int, default=1, help="floor measurements (default 1)")
    parser.add_argument("--json", type=pathlib.Path, help="also write the results to this file")
    parser.add_argument("--allocation-interval", default="1secs", help="the Mesos master's (default 1secs)")
    parser.add_argument(
        "--warm",
        action="store_true",
        help="after the cold runs, as many runs on a warm cache (the tarball already staged)",
    )
    args = parser.parse_args(argv)
    if args.runs < 1 or args.floors < 1 or args.hosts < 1:
        parser.error("--runs, --floors and --hosts must be at least 1")
    tarball, tarball_sha = alluxio_tarball()
    work = pathlib.Path(tempfile.mkdtemp(prefix="framework-ttr-"))
    work.chmod(0o755)
    try:
        with LocalCluster(
            [HostSpec()] * args.hosts,
            master_flags=["--heartbeat_interval=5secs", f"--allocation_interval={args.allocation_interval}"],
        ) as cluster:
            bundle, bundle_sha = executor_bundle(work)
            artifacts = ((cluster.serve(tarball), tarball_sha), (cluster.serve(bundle), bundle_sha))
            floors, matched = [], []
            for index in range(args.floors):
                floor = measure_floor(cluster, artifacts[0][0], cluster.base_dir / f"floor-{index}", 0)
                floors.append(floor)
                print(f"floor {index + 1} (fetch, master, one worker): {_format(floor)}", flush=True)
                floor = measure_floor(
                    cluster, artifacts[0][0], cluster.base_dir / f"matched-{index}", args.hosts
                )
                matched.append(floor)
                print(
                    f"matched floor {index + 1} (master path, then {args.hosts} hosts fetching and starting "
                    f"workers at once): {_format(floor)}",
                    flush=True,
                )
            runs: list[dict[str, float]] = []
            warm_runs: list[dict[str, float]] = []
            cache = cluster.base_dir / "no-cache-yet"
            for index in range(args.runs):
                run_dir = cluster.base_dir / f"run-{index}"
                run_dir.mkdir(mode=0o755)
                cache = run_dir / "cache"
                if cache.exists():
                    raise RuntimeError(f"{cache} exists: a cold run must start with an empty cache")
                last_cold = index == args.runs - 1
                timeline = deploy_once(cluster, artifacts, run_dir, cache, args.warm and last_cold)
                runs.append(timeline)
                print(f"cold run {index + 1}:\n  " + _format(timeline).replace(", ", "\n  "), flush=True)
            for index in range(args.runs if args.warm else 0):
                run_dir = cluster.base_dir / f"warm-run-{index}"
                run_dir.mkdir(mode=0o755)
                # the last cold run's staged tarball and CDS archives, kept: every host finds them
                timeline = deploy_once(cluster, artifacts, run_dir, cache)
                warm_runs.append(timeline)
                print(f"warm run {index + 1}:\n  " + _format(timeline).replace(", ", "\n  "), flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if args.json:
        args.json.write_text(
            json.dumps(
                {"floors": floors, "matched_floors": matched, "runs": runs, "warm_runs": warm_runs}, indent=1
            )
        )
    floor_total = statistics.median(f["total"] for f in floors)
    matched_total = statistics.median(f["total"] for f in matched)
    ready = statistics.median(r["ready (all workers live)"] for r in runs)
    ratio = ready / floor_total
    print(
        f"time to ready ({args.hosts} workers), COLD cache (empty at every run's start): "
        f"median {ready:.2f} s "
        f"over {len(runs)} run(s) {sorted(round(r['ready (all workers live)'], 2) for r in runs)}; "
        f"floor {floor_total:.2f} s, ratio {ratio:.2f} "
        f"({'meets' if ratio <= TARGET_RATIO else 'MISSES'} the {TARGET_RATIO}x target); "
        f"matched floor {matched_total:.2f} s, ratio {ready / matched_total:.2f}"
    )
    if warm_runs:
        warm = statistics.median(r["ready (all workers live)"] for r in warm_runs)
        print(
            f"time to ready ({args.hosts} workers), WARM cache (tarball staged, CDS archives built): "
            f"median {warm:.2f} s "
            f"over {len(warm_runs)} run(s) "
            f"{sorted(round(r['ready (all workers live)'], 2) for r in warm_runs)}; "
            f"ratio to the floor {warm / floor_total:.2f} (the floor still includes its fetch+extract)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
