"""The agent side of fetching (Mesos' FetcherProcess): validate URIs, run the fetcher program.

The fetcher runs as its own process, as the container's user, with the sandbox's ``stdout``
and ``stderr`` (truncated first, then appended to by the executor) as its log. The cache is
per user (``<fetcher_cache_dir>/<user>``) and keyed by the URI, so two containers asking for
the same cached URI download it once.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import signal
import sys
from dataclasses import dataclass
from typing import Any

from sandbox.mesos.agent.processes import describe_wait_status

FETCHER_PROGRAM = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fetcher.py")
STALL_TIMEOUT_NS = 60 * 10**9


class FetchFailed(Exception):
    """Fetching failed; ``str()`` is what Mesos puts after "Failed to launch container: "."""


@dataclass(frozen=True)
class RunAs:
    """A resolved user to run a process as (None fields keep the agent's identity)."""

    name: str
    uid: int
    gid: int
    groups: tuple[int, ...]


def validate_uris(command_info: dict[str, Any]) -> None:
    for uri in command_info.get("uris", []):
        value = str(uri.get("value", ""))
        if any(ch in value for ch in ("\\", "'", "\0")):
            raise FetchFailed("Could not fetch: Illegal characters in URI")
        if "output_file" in uri:
            output_file = str(uri["output_file"])
            if not output_file:
                raise FetchFailed("Could not fetch: URI output file path is empty")
            if output_file.startswith("/"):
                raise FetchFailed("Could not fetch: URI output file must be within the sandbox directory")


def cache_filename(user: str | None, uri: str) -> str:
    """Stable cache file name: a digest of the cache key plus the URI's tail (for extensions)."""
    key = uri if user is None else f"{user}@{uri}"
    base = uri.rstrip("/").rsplit("/", 1)[-1] or "resource"
    if len(base) > 20:
        base = base[:10] + "_" + base[-10:]
    return "c" + hashlib.sha256(key.encode("utf-8")).hexdigest()[:16] + "-" + base


def fetcher_info(
    command_info: dict[str, Any], sandbox: str, cache_root: str, user: str | None
) -> dict[str, Any]:
    cache_directory = os.path.join(cache_root, user) if user else cache_root
    items = []
    for uri in command_info.get("uris", []):
        item: dict[str, Any] = {"uri": uri}
        if uri.get("cache", False):
            item["action"] = "DOWNLOAD_AND_CACHE"
            item["cache_filename"] = cache_filename(user, str(uri["value"]))
        else:
            item["action"] = "BYPASS_CACHE"
        items.append(item)
    info: dict[str, Any] = {
        "items": items,
        "sandbox_directory": sandbox,
        "cache_directory": cache_directory,
        "stall_timeout": {"nanoseconds": STALL_TIMEOUT_NS},
    }
    if user:
        info["user"] = user
    return info


def _open_log(path: str, run_as: RunAs | None) -> int:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
    if run_as is not None:
        os.fchown(fd, run_as.uid, run_as.gid)
    return fd


class Fetch:
    """One fetch for one container; ``cancel()`` kills the fetcher (container destroyed)."""

    def __init__(self, container_id: str) -> None:
        self.container_id = container_id
        self._process: asyncio.subprocess.Process | None = None
        self.cancelled = False

    async def run(
        self,
        command_info: dict[str, Any],
        sandbox: str,
        cache_root: str,
        user: str | None,
        run_as: RunAs | None,
    ) -> None:
        """Fetch every URI of ``command_info`` into ``sandbox``; raises FetchFailed."""
        validate_uris(command_info)
        stdout = _open_log(os.path.join(sandbox, "stdout"), run_as)
        stderr = _open_log(os.path.join(sandbox, "stderr"), run_as)
        try:
            if not command_info.get("uris"):
                return
            info = fetcher_info(command_info, sandbox, cache_root, user)
            if any(item["action"] != "BYPASS_CACHE" for item in info["items"]):
                os.makedirs(info["cache_directory"], exist_ok=True)
                if run_as is not None:
                    os.chown(info["cache_directory"], run_as.uid, run_as.gid)
            # Like Mesos, the fetcher gets the agent's environment minus MESOS_*/LIBPROCESS_*.
            env = {k: v for k, v in os.environ.items() if not k.startswith(("MESOS_", "LIBPROCESS_"))}
            env["MESOS_FETCHER_INFO"] = json.dumps(info)
            kwargs: dict[str, Any] = {}
            if run_as is not None:
                kwargs = {"user": run_as.uid, "group": run_as.gid, "extra_groups": list(run_as.groups)}
            self._process = await asyncio.create_subprocess_exec(
                sys.executable,
                FETCHER_PROGRAM,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=stdout,
                stderr=stderr,
                env=env,
                cwd=sandbox,
                start_new_session=True,
                **kwargs,
            )
        finally:
            os.close(stdout)
            os.close(stderr)
        returncode = await self._process.wait()
        if self.cancelled:
            raise FetchFailed(f"Container '{self.container_id}' was destroyed during fetching")
        if returncode != 0:
            status = (-returncode) if returncode < 0 else (returncode << 8)
            reason = describe_wait_status(status)
            raise FetchFailed(f"Failed to fetch all URIs for container '{self.container_id}': {reason}")

    def cancel(self) -> None:
        self.cancelled = True
        if self._process is not None and self._process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._process.pid, signal.SIGKILL)
