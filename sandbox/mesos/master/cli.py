"""``python -m sandbox.mesos master [--flag=value ...]``."""

from __future__ import annotations

import asyncio
import logging
import sys

from sandbox.mesos import MESOS_VERSION
from sandbox.mesos.flags import FlagError, usage
from sandbox.mesos.master.app import serve
from sandbox.mesos.master.config import MASTER_FLAGS, load_config


def main(argv: list[str]) -> int:
    if "--help" in argv or "-h" in argv:
        print(usage("python -m sandbox.mesos master", MASTER_FLAGS))
        return 0
    if "--version" in argv:
        print(f"mesos {MESOS_VERSION} (alluxio-mesos sandbox)")
        return 0
    try:
        config = load_config(argv)
    except FlagError as error:
        print(f"master: {error}", file=sys.stderr)
        return 1
    logging.basicConfig(
        level=getattr(logging, config.log_level),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        asyncio.run(serve(config))
    except OSError as error:
        print(f"master: cannot listen on {config.ip}:{config.port}: {error.strerror}", file=sys.stderr)
        return 1
    return 0
