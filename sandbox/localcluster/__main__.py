"""`python -m sandbox.localcluster up [--hosts N]` runs a local cluster until Ctrl-C;
`python -m sandbox.localcluster clean` removes the leftovers of crashed runs."""

from __future__ import annotations

import argparse
import contextlib
import logging
import signal
import sys
import threading
from collections.abc import Sequence

from sandbox.localcluster.cluster import DEFAULT_RESOURCES, HostSpec, LocalCluster
from sandbox.localcluster.errors import ClusterError
from sandbox.localcluster.stale import clean_stale_clusters


def _up(args: argparse.Namespace) -> int:
    if args.hosts < 1:
        print("--hosts: must be at least 1", file=sys.stderr)
        return 2
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with LocalCluster([HostSpec(resources=args.resources)] * args.hosts) as cluster:
        print(
            f"cluster {cluster.name}: Mesos master {cluster.master.address}, files {cluster.files.base_url}"
        )
        for host in cluster.hosts:
            print(f"  {host.hostname} {host.ip} (netns {host.netns}, agent log {host.log_path})")
        print("Ctrl-C or SIGTERM tears it down", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            stop.wait()
    return 0


def _clean(_: argparse.Namespace) -> int:
    removed = clean_stale_clusters()
    for tag, problems in removed.items():
        print(f"removed amc{tag}" + (f" (problems: {'; '.join(problems)})" if problems else ""))
    if not removed:
        print("no stale local cluster found")
    return 1 if any(removed.values()) else 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m sandbox.localcluster", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("up", help="run a cluster until Ctrl-C")
    up.add_argument("--hosts", type=int, default=3, help="number of agent hosts (default 3)")
    up.add_argument("--resources", default=DEFAULT_RESOURCES, help="each agent's --resources")
    up.set_defaults(handler=_up)
    clean = commands.add_parser("clean", help="remove leftovers of crashed runs")
    clean.set_defaults(handler=_clean)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        return int(args.handler(args))
    except ClusterError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
