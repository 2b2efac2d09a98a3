"""The one error type of the local cluster, and the helper that runs system commands."""

from __future__ import annotations

import subprocess
from collections.abc import Sequence


class ClusterError(RuntimeError):
    """The local cluster could not be set up or torn down; the message names the step and cause."""


def run_command(argv: Sequence[str], what: str, *, check: bool = True, timeout: float = 30.0) -> str:
    """Run a system command (ip, iptables, umount); on failure raise ClusterError naming `what`,
    the command and its stderr. Returns stdout."""
    try:
        done = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise ClusterError(f"{what}: `{' '.join(argv)}` could not run: {error}") from None
    if check and done.returncode != 0:
        output = done.stderr.strip() or done.stdout.strip()
        raise ClusterError(f"{what}: `{' '.join(argv)}` exited with {done.returncode}: {output}")
    return done.stdout
