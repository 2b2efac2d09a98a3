"""Name resolution for the cluster's hosts: a marked block in /etc/hosts per cluster.

Alluxio resolves `alluxio.master.hostname` and the workers' hostnames (agents' `--hostname`), and
the network namespaces share the root mount namespace (on purpose, see the package doc), so
/etc/hosts is the one resolver they all read. Each cluster owns one block between marker lines
naming it; names carry the cluster's tag (host-0.amc1a2b3c), so blocks never clash.
"""

from __future__ import annotations

import contextlib
import fcntl
import pathlib
import re
from collections.abc import Iterator, Mapping

HOSTS_FILE = pathlib.Path("/etc/hosts")
_BEGIN = "# >>> alluxio-mesos-localcluster {cluster}"
_END = "# <<< alluxio-mesos-localcluster {cluster}"
_BLOCK_START = re.compile(r"^# >>> alluxio-mesos-localcluster (\S+)$")


@contextlib.contextmanager
def _locked(path: pathlib.Path) -> Iterator[None]:
    with open(path, "r+", encoding="utf-8") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _without_block(lines: list[str], cluster: str) -> list[str]:
    begin, end = _BEGIN.format(cluster=cluster), _END.format(cluster=cluster)
    kept, inside = [], False
    for line in lines:
        if line == begin:
            inside = True
        elif inside and line == end:
            inside = False
        elif not inside:
            kept.append(line)
    return kept


def _rewrite(path: pathlib.Path, lines: list[str]) -> None:
    # In place, not by rename: /etc/hosts may be a bind mount, and readers keep their inode.
    with open(path, "r+", encoding="utf-8") as handle:
        handle.seek(0)
        handle.write("".join(f"{line}\n" for line in lines))
        handle.truncate()


def add_block(cluster: str, addresses: Mapping[str, str], path: pathlib.Path = HOSTS_FILE) -> None:
    """Map each hostname to its address, replacing an older block of the same cluster."""
    with _locked(path):
        lines = _without_block(path.read_text(encoding="utf-8").splitlines(), cluster)
        lines.append(_BEGIN.format(cluster=cluster))
        lines.extend(f"{address} {name}" for name, address in addresses.items())
        lines.append(_END.format(cluster=cluster))
        _rewrite(path, lines)


def remove_block(cluster: str, path: pathlib.Path = HOSTS_FILE) -> None:
    with _locked(path):
        lines = path.read_text(encoding="utf-8").splitlines()
        kept = _without_block(lines, cluster)
        if kept != lines:
            _rewrite(path, kept)


def clusters_with_blocks(path: pathlib.Path = HOSTS_FILE) -> list[str]:
    found = []
    for line in path.read_text(encoding="utf-8").splitlines():
        match = _BLOCK_START.match(line)
        if match:
            found.append(match.group(1))
    return found
