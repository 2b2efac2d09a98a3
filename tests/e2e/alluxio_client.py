"""Talking to a deployed Alluxio the way a user would: the master's REST API and the Alluxio
shell (`alluxio fs ...`) from an unpacked distribution, run in the root namespace (it reaches the
hosts over the bridge and resolves their names through the cluster's /etc/hosts block)."""

from __future__ import annotations

import dataclasses
import json
import pathlib
import shutil
import subprocess
import urllib.error
import urllib.request
from collections.abc import Sequence
from typing import Any

from executor import alluxio_process

CLIENT_PROPERTIES = {
    # Workers write through to the under storage, so a file survives the loss of the worker that
    # cached it (the failure tests kill workers after the file was written).
    "alluxio.user.file.writetype.default": "CACHE_THROUGH",
    # The servers run as nobody, which makes nobody Alluxio's superuser and the owner of `/`.
    "alluxio.security.login.username": "nobody",
}


def master_info(host: str, web_port: int, timeout: float = 5.0) -> dict[str, Any] | None:
    """GET /api/v1/master/info, or None while the master does not answer."""
    try:
        with urllib.request.urlopen(f"http://{host}:{web_port}/api/v1/master/info", timeout=timeout) as reply:
            return dict(json.load(reply))
    except (OSError, urllib.error.URLError, ValueError):
        return None


def live_workers(info: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The workers the master lists as live (Alluxio keeps lost ones in `lostWorkers`)."""
    return list((info or {}).get("workers") or [])


@dataclasses.dataclass(frozen=True)
class AlluxioShell:
    home: pathlib.Path
    work_dir: pathlib.Path
    master_hostname: str
    master_rpc_port: int = 19998

    def run(self, tool: str, args: Sequence[str], timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
        """`alluxio fs|fsadmin <args>`; returns the finished process (check returncode yourself)."""
        conf = self.work_dir / "conf"
        if not (conf / "log4j.properties").is_file():
            conf.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(self.home / "conf" / "log4j.properties", conf / "log4j.properties")
        tmp_dir = self.work_dir / "tmp"  # java.io.tmpdir, removed with the work dir
        tmp_dir.mkdir(parents=True, exist_ok=True)
        cfg = alluxio_process.AlluxioJvmConfig(
            alluxio_home=str(self.home),
            conf_dir=str(conf),
            logs_dir=str(self.work_dir / "logs"),
            tmp_dir=str(tmp_dir),
            heap_size="256MB",
            properties={
                "alluxio.master.hostname": self.master_hostname,
                "alluxio.master.rpc.port": str(self.master_rpc_port),
                **CLIENT_PROPERTIES,
            },
        )
        build = alluxio_process.fs_shell_command if tool == "fs" else alluxio_process.fsadmin_command
        command = build(cfg, list(args))
        return subprocess.run(
            command.argv, env=command.env, capture_output=True, text=True, timeout=timeout, check=False
        )

    def fs(self, *args: str, timeout: float = 120.0) -> subprocess.CompletedProcess[str]:
        return self.run("fs", args, timeout)
