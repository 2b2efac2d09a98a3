"""`make up`: bring up the local sandbox and deploy the local stack.

The Pulumi stack (infra/) does not exist yet, so for now this reports what the setup installed and
says plainly what is not there, instead of pretending to deploy.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path


def _report_setup() -> list[str]:
    cache = Path(os.environ["ALLUXIO_MESOS_CACHE"])
    version = os.environ["ALLUXIO_VERSION"]
    tarball = cache / "alluxio" / version / f"alluxio-{version}-bin.tar.gz"
    return [
        f"pulumi CLI:           {shutil.which('pulumi') or 'missing'}",
        f"Alluxio distribution: {tarball if tarball.exists() else 'missing'}",
        f"docker:               {shutil.which('docker') or 'missing'}",
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="make up",
        description="Start the local sandbox cluster and run `pulumi up --stack local`.",
    )
    parser.add_argument("--down", action="store_true", help="destroy the local stack and stop the sandbox")
    args = parser.parse_args(argv)
    print("Setup is complete:")
    for line in _report_setup():
        print(f"  {line}")
    action = "tear down" if args.down else "deploy"
    print(
        f"\nNot there yet: the Pulumi stack (infra/) and the sandbox cluster launcher, so there is "
        f"nothing to {action}. `make test` runs the suite against the real parts installed above."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
