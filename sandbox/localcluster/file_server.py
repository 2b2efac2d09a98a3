"""A directory served over HTTP on the bridge address, as an artifact host would: the agents'
fetcher downloads the Alluxio tarball and the executor bundle from it over http://, like in
production. A separate process (`python -m http.server`), so serving 170 MB per task does not
compete for the test process's GIL."""

from __future__ import annotations

import pathlib
import subprocess
import sys
import time
import urllib.error
import urllib.request

from sandbox.localcluster.errors import ClusterError
from sandbox.localcluster.ports import free_port


class FileServer:
    def __init__(self, directory: pathlib.Path, bind: str, log_path: pathlib.Path) -> None:
        self.directory = directory
        self.bind = bind
        self.port = free_port(bind)
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.bind}:{self.port}"

    def url(self, name: str) -> str:
        return f"{self.base_url}/{name}"

    def start(self, timeout: float = 20.0) -> None:
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [
                    sys.executable, "-m", "http.server", str(self.port),
                    "--bind", self.bind, "--directory", str(self.directory),
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )  # fmt: skip
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise ClusterError(
                    f"the file server on {self.bind}:{self.port} exited with {self.process.returncode}: "
                    f"{self.log_path.read_text(errors='replace')[-2000:]}"
                )
            try:
                with urllib.request.urlopen(self.base_url + "/", timeout=1.0):
                    return
            except (urllib.error.URLError, OSError):
                if time.monotonic() > deadline:
                    self.stop()
                    raise ClusterError(
                        f"the file server on {self.base_url} did not answer in {timeout}s"
                    ) from None
                time.sleep(0.05)

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=10)
