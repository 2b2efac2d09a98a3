"""Remove everything one cluster created, found by its tag rather than remembered, so the same code
cleans up after this process, after a half-finished setup and after a crashed earlier run.

Order matters: processes first (a JVM keeps its ramdisk busy), then mounts, then the network
objects, then files. Every step runs even if an earlier one failed; the problems are returned.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import time
from collections.abc import Callable

from sandbox.localcluster import hosts_file, network, processes, registry
from sandbox.localcluster.errors import ClusterError
from sandbox.localcluster.names import ClusterNames


def _pids_mentioning(text: str) -> list[int]:
    """Processes (in any namespace) whose command line contains `text`: the root-namespace
    master, file server and frameworks of a cluster all name its base directory."""
    needle = text.encode()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as handle:
                if needle not in handle.read():
                    continue
        except OSError:
            continue
        if processes.process_state(int(entry)) not in (None, "Z"):
            found.append(int(entry))
    return found


def kill_processes_mentioning(text: str, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while pids := _pids_mentioning(text):
        if time.monotonic() > deadline:
            raise ClusterError(f"processes naming {text} survive SIGKILL: {pids}")
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.05)


def destroy_cluster(tag: str) -> list[str]:
    """Tear down cluster `tag` completely; returns the problems (empty when all went well)."""
    names = ClusterNames(tag, subnet_index=0)  # the subnet is not needed to find its objects
    cluster = names.cluster
    base_dir = str(names.base_dir)
    problems: list[str] = []

    def step(what: str, action: Callable[[], object]) -> None:
        try:
            action()
        except (ClusterError, OSError) as error:
            problems.append(f"{what}: {error}")

    namespaces = [n for n in network.list_netns() if n.startswith(f"{cluster}-")]
    for netns in namespaces:
        step(f"killing the processes of {netns}", lambda n=netns: processes.kill_netns_processes(n))
    step(f"killing processes naming {base_dir}", lambda: kill_processes_mentioning(base_dir))
    step(f"unmounting below {base_dir}", lambda: processes.unmount_all_under(base_dir))
    for netns in namespaces:
        step(f"deleting {netns}", lambda n=netns: network.delete_netns(n))
    # veth root ends vanish with their namespaces; the bridge (and any half-made veth) does not.
    for link in network.list_links():
        if link.startswith(cluster):
            step(f"deleting interface {link}", lambda link=link: network.delete_link(link))
    step("removing the firewall rule", lambda: network.delete_firewall_rules(names.firewall_comment))
    step("removing the /etc/hosts block", lambda: hosts_file.remove_block(cluster))
    if os.path.isdir(base_dir):
        if processes.mounts_under(base_dir):
            problems.append(f"left {base_dir} in place: something is still mounted below it")
        else:
            step(f"removing {base_dir}", lambda: shutil.rmtree(base_dir))
    registry.remove_record(names)
    return problems
