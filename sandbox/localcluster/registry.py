"""Which local clusters exist and who owns them: one JSON record per cluster under /run.

A record names its owner process (pid and start time, so a recycled pid is not mistaken for
it). A cluster whose owner is gone is stale and may be removed by anyone (`stale.py`). All
changes happen under one file lock, so parallel runs never pick the same subnet.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import ipaddress
import json
import os
import time
from collections.abc import Iterator

from sandbox.localcluster.errors import ClusterError, run_command
from sandbox.localcluster.names import REGISTRY_DIR, SUBNET_INDEXES, SUBNET_TEMPLATE, ClusterNames


@dataclasses.dataclass(frozen=True)
class ClusterRecord:
    tag: str
    subnet_index: int
    host_count: int
    owner_pid: int
    owner_start: str
    created_at: float

    @property
    def names(self) -> ClusterNames:
        return ClusterNames(self.tag, self.subnet_index)


def process_start_time(pid: int) -> str | None:
    """Start time of a live process in clock ticks since boot (field 22 of /proc/<pid>/stat)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return None if fields[0] == "Z" else fields[19]


def owner_alive(record: ClusterRecord) -> bool:
    return process_start_time(record.owner_pid) == record.owner_start


@contextlib.contextmanager
def registry_lock() -> Iterator[None]:
    REGISTRY_DIR.mkdir(mode=0o700, parents=True, exist_ok=True)
    with open(REGISTRY_DIR / ".lock", "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def read_records() -> list[ClusterRecord]:
    records = []
    if not REGISTRY_DIR.is_dir():
        return records
    for path in sorted(REGISTRY_DIR.glob("*.json")):
        try:
            records.append(ClusterRecord(**json.loads(path.read_text(encoding="utf-8"))))
        except (OSError, ValueError, TypeError):
            continue  # a half-written or foreign file: the stale sweep finds its objects by name
    return records


def write_record(record: ClusterRecord) -> None:
    path = record.names.registry_file
    temporary = path.with_suffix(".tmp")
    temporary.write_text(json.dumps(dataclasses.asdict(record), sort_keys=True), encoding="utf-8")
    os.replace(temporary, path)


def remove_record(names: ClusterNames) -> None:
    with contextlib.suppress(FileNotFoundError):
        names.registry_file.unlink()


def _networks_in_use() -> list[ipaddress.IPv4Network]:
    """Every IPv4 network the root namespace has a route or an address for."""
    found = []
    text = run_command(["ip", "-4", "-o", "route", "show", "table", "all"], "listing routes")
    text += run_command(["ip", "-4", "-o", "addr", "show"], "listing addresses")
    for line in text.splitlines():
        for word in line.split():
            if word[0].isdigit():
                with contextlib.suppress(ValueError):
                    found.append(ipaddress.IPv4Network(word, strict=False))
    return found


def new_record(tag: str, host_count: int) -> ClusterRecord:
    """Register a new cluster owned by this process, on a 10.213.<n>.0/24 nobody uses. Call under
    registry_lock()."""
    taken = {r.subnet_index for r in read_records()}
    in_use = _networks_in_use()
    for index in SUBNET_INDEXES:
        if index in taken:
            continue
        candidate = ipaddress.IPv4Network(SUBNET_TEMPLATE.format(index=index))
        if any(candidate.overlaps(n) and n.prefixlen > 0 for n in in_use):
            continue
        start = process_start_time(os.getpid())
        assert start is not None
        record = ClusterRecord(tag, index, host_count, os.getpid(), start, time.time())
        write_record(record)
        return record
    raise ClusterError(
        f"no free subnet among {SUBNET_TEMPLATE.format(index='1..254')}: "
        "remove stale clusters with `python -m sandbox.localcluster clean`"
    )
