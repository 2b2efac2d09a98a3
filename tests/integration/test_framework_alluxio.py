"""The whole chain on one machine: the framework (real CLI, real pymesos), the stand-in Mesos
master and a real stand-in agent, the executor bundle it fetches and verifies, and real Alluxio
2.9 master and worker JVMs with a tmpfs ramdisk.

One lifecycle: start, the worker registers with the master (Alluxio reports the ramdisk as its
capacity), a SIGHUP reload replaces the worker, a framework restart keeps every task, and
`framework stop` leaves no JVM and no mount behind.
"""

from __future__ import annotations

import os
import pathlib
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from typing import Any

import pytest

from framework.spec import Key
from sandbox.localcluster.processes import mounts_under
from tests.e2e.alluxio_client import master_info
from tests.e2e.artifacts import ALLUXIO_VERSION, alluxio_tarball, executor_bundle
from tests.integration.test_framework_mesos import Framework, cli, write_conf
from tests.mesos_fixtures import container_processes, free_port, running_agent, running_master, wait_until

pytestmark = pytest.mark.integration

RAMDISK_BYTES = 128 * 1024 * 1024


@pytest.fixture
def world() -> Iterator[pathlib.Path]:
    """A world-readable directory: the JVMs run as `nobody`, which cannot enter pytest's 0700 tmp."""
    directory = pathlib.Path(tempfile.mkdtemp(prefix="alluxio-mesos-e2e-"))
    directory.chmod(0o755)
    try:
        yield directory
    finally:
        for pid in container_processes(directory / "agent"):
            os.kill(pid, signal.SIGKILL)
        for mount in reversed(_mounts_under(directory)):
            subprocess.run(["umount", "-l", mount], check=False)
        shutil.rmtree(directory, ignore_errors=True)


def _mounts_under(path: pathlib.Path) -> list[str]:
    return mounts_under(str(path))


def _alluxio_info(port: int) -> dict[str, Any] | None:
    return master_info("localhost", port, timeout=3.0)


def test_alluxio_lifecycle_on_a_real_agent(world: pathlib.Path) -> None:
    tarball, tarball_sha = alluxio_tarball()
    bundle, bundle_sha = executor_bundle(world)
    ports = {key: free_port() for key in ("mrpc", "mweb", "journal", "wrpc", "wdata", "wweb")}
    agent_ports = ",".join(f"{p}-{p}" for p in sorted(ports.values()))
    home = world / "home"
    settings = {
        Key.EXECUTOR_URL: bundle.as_uri(),
        Key.EXECUTOR_SHA256: bundle_sha,
        Key.EXECUTOR_PYTHON: "/usr/bin/python3",
        Key.ALLUXIO_URL: tarball.as_uri(),
        Key.ALLUXIO_SHA256: tarball_sha,
        Key.MASTER_MEM: "768MB",
        Key.WORKER_MEM: "512MB",
        Key.RAMDISK_SIZE: f"{RAMDISK_BYTES}",
        Key.KILL_GRACE: "10secs",
        Key.MASTER_RPC_PORT: str(ports["mrpc"]),
        Key.MASTER_WEB_PORT: str(ports["mweb"]),
        Key.EMBEDDED_JOURNAL_PORT: str(ports["journal"]),
        Key.WORKER_RPC_PORT: str(ports["wrpc"]),
        Key.WORKER_DATA_PORT: str(ports["wdata"]),
        Key.WORKER_WEB_PORT: str(ports["wweb"]),
        Key.JOURNAL_FOLDER: str(world / "journal"),
        Key.CACHE_DIR: str(world / "cache"),  # the staged tarball, removed with the world
        "alluxio.master.mount.table.root.ufs": str(world / "underfs"),
    }
    (world / "underfs").mkdir(mode=0o777)
    (world / "underfs").chmod(0o777)
    write_conf(home, settings)
    agent_flags = [
        "--hostname=localhost",
        f"--resources=cpus:4;mem:8192;disk:20000;ports:[{agent_ports}]",
    ]
    with (
        running_master(["--heartbeat_interval=2secs"], work_dir=world / "master") as master,
        running_agent(master.address, world / "agent", agent_flags) as agent,
    ):
        framework = Framework(master, home)
        try:
            framework.start()
            first = framework.wait_phase("running", timeout=300)
            info = wait_until(
                lambda: (i := _alluxio_info(ports["mweb"])) and i["capacity"]["total"] == RAMDISK_BYTES and i,
                120,
                "the worker's ramdisk in the master's capacity",
            )
            assert info["version"] == ALLUXIO_VERSION
            mounts = _mounts_under(agent.work_dir)
            assert len(mounts) == 1, "one tmpfs ramdisk for the one worker"

            # A reload that changes the worker replaces only the worker.
            old = {t["role"]: t["task_id"] for t in first["tasks"]}
            write_conf(home, {**settings, Key.WORKER_MEM: "640MB"})
            framework.signal(signal.SIGHUP)
            reloaded = wait_until(
                lambda: (
                    (d := framework.status())
                    and d["phase"] == "running"
                    and {t["role"]: t["task_id"] for t in d["tasks"]}.get("worker")
                    not in (None, old["worker"])
                    and d
                ),
                300,
                "the replaced worker running",
            )
            now = {t["role"]: t["task_id"] for t in reloaded["tasks"]}
            assert now["master"] == old["master"]
            wait_until(
                lambda: (i := _alluxio_info(ports["mweb"])) and i["capacity"]["total"] == RAMDISK_BYTES,
                120,
                "the new worker registered",
            )

            # Restarting the framework keeps Alluxio running and launches nothing new.
            framework.signal(signal.SIGTERM)
            assert framework.wait_exit() == 0
            assert container_processes(agent.work_dir), "the JVMs outlive the framework process"
            again = Framework(master, home)
            try:
                again.start()
                after = again.wait_phase("running", timeout=60)
                assert sorted(t["task_id"] for t in after["tasks"]) == sorted(now.values())
                stopped = cli("framework", "stop", "--home", str(home), "--timeout", "120")
                assert stopped.returncode == 0, stopped.stdout + stopped.stderr
                assert "stopped: no Alluxio task is left" in stopped.stdout
            finally:
                again.stop()
            assert container_processes(agent.work_dir) == []
            assert _mounts_under(agent.work_dir) == []
        finally:
            framework.stop()
