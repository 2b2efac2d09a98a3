"""Each framework benchmark run once at a small scale: it must finish and produce sane numbers.
The performance targets themselves are not asserted here (timed tests on a shared 2-core
machine would be flaky); the benchmarks print them, see benchmarks/framework_*.py."""

from __future__ import annotations

import json
import pathlib
import subprocess
import sys
from typing import Any

import pytest

from sandbox.localcluster import clean_stale_clusters

pytestmark = pytest.mark.benchmark

REPO = pathlib.Path(__file__).resolve().parents[2]


def run_benchmark(name: str, args: list[str], output: pathlib.Path, timeout: float) -> Any:
    """Run benchmarks/framework_<name>.py with --json; returns the parsed results."""
    try:
        done = subprocess.run(
            [sys.executable, str(REPO / "benchmarks" / f"framework_{name}.py"), *args, "--json", str(output)],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    finally:
        clean_stale_clusters()  # a benchmark killed by the timeout leaves its cluster behind
    assert done.returncode == 0, f"{name} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    print(done.stdout)
    return json.loads(output.read_text(encoding="utf-8"))


def test_placement_benchmark(tmp_path: pathlib.Path) -> None:
    (result,) = run_benchmark("placement", ["300", "--running-timeout", "120"], tmp_path / "out.json", 600)
    assert result["agents"] == 300
    assert 0 < result["decided_seconds"] <= result["placed_seconds"]
    assert result["running_seconds"] is not None, "every worker reached TASK_RUNNING"
    assert result["placed_seconds"] <= result["running_seconds"]
    assert result["offers"] >= 300, "at least one offer per agent was processed"
    assert 0 < result["placement_cpu"] < result["placed_seconds"] * 2  # one process, at most 2 cores


def test_time_to_ready_benchmark(tmp_path: pathlib.Path) -> None:
    result = run_benchmark("time_to_ready", ["--runs", "1", "--hosts", "1"], tmp_path / "out.json", 900)
    (floor,) = result["floors"]
    (run,) = result["runs"]
    parts = ("fetch+extract", "journal format", "master JVM ready", "worker JVM live")
    assert all(floor[p] > 0 for p in parts)
    assert floor["total"] >= sum(floor[p] for p in parts)
    ready = run["ready (all workers live)"]
    order = (
        "registered",
        "master launched",
        "master RUNNING",
        "first worker launched",
        "last worker RUNNING",
    )
    stamps = [run[name] for name in order]
    assert stamps == sorted(stamps), run
    assert stamps[-1] <= ready
    assert ready > floor["fetch+extract"] + floor["master JVM ready"], "a deployment cannot beat its parts"


def test_executor_overhead_benchmark(tmp_path: pathlib.Path) -> None:
    tasks = run_benchmark("executor_overhead", ["--hosts", "1"], tmp_path / "out.json", 900)
    assert sorted(t["role"] for t in tasks) == ["master", "worker"]
    for task in tasks:
        assert 0 < task["launch_to_exec_without_hash_ms"] < task["launch_to_exec_ms"]
        assert task["verify_ms"] > 0, "the artifacts were hashed"
        assert 0 < task["ready_detection_ms"] <= 1000
        assert (
            task["fetch_started"]
            < task["fetch_done"]
            < task["executor_started"]
            < task["exec"]
            < task["running"]
        )
    (master,) = [t for t in tasks if t["role"] == "master"]
    assert master["journal_ms"] > 0, "a fresh journal was formatted"
