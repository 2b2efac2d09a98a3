"""The cluster's network: a bridge in the root namespace, one network namespace per host joined
to it by a veth pair, and the one firewall rule that lets bridged traffic through.

Docker sets the FORWARD policy to DROP and loads br_netfilter, so without the rule the hosts could
reach the root namespace but not each other (a worker could not reach its master).
"""

from __future__ import annotations

import os
import shlex
import time

from sandbox.localcluster.errors import ClusterError, run_command
from sandbox.localcluster.names import ClusterNames

NETNS_DIR = "/run/netns"


def netns_path(name: str) -> str:
    return os.path.join(NETNS_DIR, name)


def create_bridge(names: ClusterNames) -> None:
    bridge = names.bridge
    run_command(["ip", "link", "add", bridge, "type", "bridge"], f"creating bridge {bridge}")
    run_command(
        ["ip", "addr", "add", f"{names.bridge_ip}/{names.prefix_length}", "dev", bridge],
        f"addressing bridge {bridge}",
    )
    run_command(["ip", "link", "set", bridge, "up"], f"bringing bridge {bridge} up")
    run_command(
        [
            "iptables", "-I", "FORWARD", "1", "-i", bridge, "-o", bridge,
            "-m", "comment", "--comment", names.firewall_comment, "-j", "ACCEPT",
        ],
        f"allowing traffic between the hosts of {names.cluster} (iptables)",
    )  # fmt: skip


def create_host(names: ClusterNames, index: int) -> None:
    """A network namespace with loopback and eth0 (the host's address) on the bridge."""
    netns, root_end, peer = names.netns(index), names.veth_root(index), names.veth_peer(index)
    run_command(["ip", "netns", "add", netns], f"creating network namespace {netns}")
    run_command(
        ["ip", "link", "add", root_end, "type", "veth", "peer", "name", peer],
        f"creating veth pair {root_end}/{peer}",
    )
    run_command(["ip", "link", "set", peer, "netns", netns], f"moving {peer} into {netns}")
    run_command(["ip", "-n", netns, "link", "set", peer, "name", "eth0"], f"renaming {peer} in {netns}")
    run_command(["ip", "link", "set", root_end, "master", names.bridge], f"attaching {root_end}")
    run_command(["ip", "link", "set", root_end, "up"], f"bringing {root_end} up")
    address = f"{names.host_ip(index)}/{names.prefix_length}"
    run_command(["ip", "-n", netns, "addr", "add", address, "dev", "eth0"], f"addressing {netns}")
    run_command(["ip", "-n", netns, "link", "set", "eth0", "up"], f"bringing eth0 of {netns} up")
    run_command(["ip", "-n", netns, "link", "set", "lo", "up"], f"bringing loopback of {netns} up")


def delete_netns(name: str) -> None:
    """Delete a network namespace (its veth end goes with it, and so does the peer)."""
    if os.path.exists(netns_path(name)):
        run_command(["ip", "netns", "delete", name], f"deleting network namespace {name}")


def delete_link(name: str) -> None:
    if not os.path.exists(f"/sys/class/net/{name}"):
        return
    try:
        run_command(["ip", "link", "delete", name], f"deleting interface {name}")
    except ClusterError:
        # A veth end goes away on its own, shortly after its peer's namespace is deleted.
        deadline = time.monotonic() + 5.0
        while os.path.exists(f"/sys/class/net/{name}"):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def _forward_rules() -> list[list[str]]:
    """FORWARD rules as argv lists (`-A FORWARD ...`); iptables -S quotes comments with spaces."""
    listing = run_command(["iptables", "-S", "FORWARD"], "listing FORWARD rules")
    rules = []
    for line in listing.splitlines():
        try:
            words = shlex.split(line)
        except ValueError as error:
            raise ClusterError(f"cannot parse iptables rule {line!r}: {error}") from None
        if words[:2] == ["-A", "FORWARD"]:
            rules.append(words)
    return rules


def _comment_of(rule: list[str]) -> str | None:
    if "--comment" in rule[:-1]:
        return rule[rule.index("--comment") + 1]
    return None


def delete_firewall_rules(comment: str) -> None:
    """Remove every FORWARD rule carrying `comment`."""
    for rule in _forward_rules():
        if _comment_of(rule) == comment:
            run_command(["iptables", "-D", *rule[1:]], f"removing firewall rule `{' '.join(rule)}`")


def firewall_comments() -> list[str]:
    return [c for c in (_comment_of(r) for r in _forward_rules()) if c is not None]


def list_netns() -> list[str]:
    try:
        return sorted(os.listdir(NETNS_DIR))
    except FileNotFoundError:
        return []


def list_links() -> list[str]:
    try:
        return sorted(os.listdir("/sys/class/net"))
    except FileNotFoundError:
        return []
