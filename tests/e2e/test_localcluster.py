"""The local multi-host cluster launcher itself (sandbox/localcluster): hosts are separate network
stacks that reach each other by name, the file server is reachable from the hosts, and teardown
(own or of a crashed run's leftovers) removes every process, mount, interface, rule and file."""

from __future__ import annotations

import hashlib
import os
import pathlib
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from sandbox.localcluster import HostSpec, LocalCluster, clean_stale_clusters
from sandbox.localcluster import network as cluster_network
from sandbox.localcluster.hosts_file import clusters_with_blocks
from sandbox.localcluster.processes import mounts_under, pids_in_netns
from sandbox.localcluster.registry import read_records

pytestmark = pytest.mark.e2e

REPO = pathlib.Path(__file__).resolve().parents[2]
LISTEN_ONCE = (
    "import socket,sys;s=socket.socket();s.bind(('0.0.0.0',19998));s.listen();"
    "print('listening',flush=True);c,a=s.accept();print(a[0],flush=True)"
)


def leftovers(cluster_name: str, base_dir: pathlib.Path) -> dict[str, object]:
    """Everything of a cluster still on this machine (empty values when it is all gone)."""
    found: dict[str, object] = {
        "netns": [n for n in cluster_network.list_netns() if n.startswith(cluster_name)],
        "links": [n for n in cluster_network.list_links() if n.startswith(cluster_name)],
        "firewall": [c for c in cluster_network.firewall_comments() if c.endswith(cluster_name)],
        "hosts file": [c for c in clusters_with_blocks() if c == cluster_name],
        "registry": [r.tag for r in read_records() if r.names.cluster == cluster_name],
        "mounts": mounts_under(str(base_dir)),
        "base dir": base_dir.exists(),
    }
    return {k: v for k, v in found.items() if v}


@pytest.fixture
def two_hosts() -> Iterator[LocalCluster]:
    with LocalCluster([HostSpec(), HostSpec(resources="cpus:2;mem:1024;ports:[31000-31010]")]) as cluster:
        yield cluster


def test_hosts_have_their_own_ports_and_reach_each_other_by_name(two_hosts: LocalCluster) -> None:
    first, second = two_hosts.hosts
    listeners = [
        subprocess.Popen(
            [
                "nsenter",
                f"--net={cluster_network.netns_path(h.netns)}",
                "--",
                sys.executable,
                "-c",
                LISTEN_ONCE,
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        for h in (first, second)
    ]
    try:
        for listener in listeners:  # the same fixed port, bound on both hosts
            assert listener.stdout is not None
            assert listener.stdout.readline().strip() == "listening"
        connect = "import socket,sys;socket.create_connection((sys.argv[1],19998),timeout=5)"
        assert second.run([sys.executable, "-c", connect, first.hostname], timeout=30).returncode == 0
        assert first.run([sys.executable, "-c", connect, second.hostname], timeout=30).returncode == 0
        outputs = [listener.communicate(timeout=10)[0].split() for listener in listeners]
        assert outputs == [[second.ip], [first.ip]], "each saw the other's address"
    finally:
        for listener in listeners:
            listener.kill()
            listener.wait()

    agents = {a["hostname"]: a for a in two_hosts.master.state()["slaves"]}
    assert set(agents) == {first.hostname, second.hostname}
    assert agents[second.hostname]["resources"]["ports"] == "[31000-31010]"
    assert first.agent is not None
    assert first.agent.state()["hostname"] == first.hostname
    assert pids_in_netns(first.netns) == [first.agent.process.pid], "nsenter execs the agent itself"


def test_served_files_are_fetched_over_http_from_the_hosts(two_hosts: LocalCluster) -> None:
    payload = two_hosts.base_dir / "payload.bin"
    payload.write_bytes(os.urandom(4096))
    url = two_hosts.serve(payload)
    assert url.startswith(f"http://{two_hosts.names.bridge_ip}:")  # type: ignore[union-attr]
    fetch = (
        "import hashlib,sys,urllib.request;"
        "print(hashlib.sha256(urllib.request.urlopen(sys.argv[1]).read()).hexdigest())"
    )
    fetched = two_hosts.hosts[1].run([sys.executable, "-c", fetch, url], timeout=30)
    assert fetched.returncode == 0, fetched.stderr
    assert fetched.stdout.strip() == hashlib.sha256(payload.read_bytes()).hexdigest()


def test_close_removes_processes_mounts_interfaces_rule_names_and_files() -> None:
    cluster = LocalCluster([HostSpec(), HostSpec()])
    cluster.start()
    try:
        name, base_dir, host = cluster.name, cluster.base_dir, cluster.hosts[1]
        # What executors leave behind: a process in its own session, and a tmpfs in the sandbox.
        orphan = subprocess.Popen(
            ["nsenter", f"--net={cluster_network.netns_path(host.netns)}", "--", "sleep", "600"],
            start_new_session=True,
        )
        ramdisk = host.work_dir / "sandbox" / "ramdisk"
        ramdisk.mkdir(parents=True)
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(ramdisk)], check=True)
        assert leftovers(name, base_dir).keys() >= {"netns", "links", "firewall", "hosts file", "mounts"}
    finally:
        cluster.close()
    assert orphan.wait(timeout=10) == -signal.SIGKILL
    assert leftovers(name, base_dir) == {}


def test_a_crashed_runs_cluster_is_removed_and_a_live_one_kept(two_hosts: LocalCluster) -> None:
    owner = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import time; from sandbox.localcluster import LocalCluster, HostSpec\n"
            "c = LocalCluster([HostSpec()]).start(); print(c.name, c.base_dir, flush=True); time.sleep(600)",
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert owner.stdout is not None
        name, base_dir = owner.stdout.readline().split()
        (host_netns,) = [n for n in cluster_network.list_netns() if n.startswith(name)]
        agents = pids_in_netns(host_netns)
        assert agents, "the crashed run's agent is running"
    finally:
        owner.kill()
        owner.wait()
    assert leftovers(name, pathlib.Path(base_dir)), "a SIGKILLed owner cannot clean up"

    removed = clean_stale_clusters()

    assert removed[name.removeprefix("amc")] == [], "removed without problems"
    assert leftovers(name, pathlib.Path(base_dir)) == {}
    deadline = time.monotonic() + 10
    while any(os.path.exists(f"/proc/{pid}") for pid in agents) and time.monotonic() < deadline:
        time.sleep(0.05)  # reaped by init
    assert not [pid for pid in agents if _is_live(pid)], "its agent was killed"
    mine = leftovers(two_hosts.name, two_hosts.base_dir)
    assert mine.keys() >= {"netns", "links", "firewall", "hosts file", "registry", "base dir"}, "ours is kept"
    assert two_hosts.master.is_running()


def _is_live(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False
