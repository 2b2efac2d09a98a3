"""The fetcher: http, file and plain paths; extract, executable, output_file, cache; failures."""

from __future__ import annotations

import functools
import http.server
import io
import tarfile
import threading
import time
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.mesos_agent.harness import TestFramework, command_task, latest_sandbox
from tests.mesos_fixtures import AgentProcess

pytestmark = pytest.mark.integration


class CountingServer:
    """Serves a directory over HTTP and counts GETs per path."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.hits: dict[str, int] = {}
        counts = self.hits

        class Handler(http.server.SimpleHTTPRequestHandler):
            def do_GET(self) -> None:
                counts[self.path] = counts.get(self.path, 0) + 1
                super().do_GET()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(
            ("127.0.0.1", 0), functools.partial(Handler, directory=str(root))
        )
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/{name}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[CountingServer]:
    root = tmp_path / "served"
    root.mkdir()
    (root / "plain.txt").write_text("plain content\n")
    (root / "tool.sh").write_text("#!/bin/sh\necho tool ran\n")
    with tarfile.open(root / "bundle.tar.gz", "w:gz") as archive:
        data = b"from the tarball\n"
        info = tarfile.TarInfo("bundle/inner.txt")
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
    with zipfile.ZipFile(root / "pack.zip", "w") as archive:
        archive.writestr("pack/zipped.txt", "from the zip\n")
    (root / "cached.txt").write_text("cached content\n")
    server = CountingServer(root)
    try:
        yield server
    finally:
        server.close()


def test_fetches_every_kind_of_uri_into_thelatest_sandbox(
    tmp_path: Path,
    served: CountingServer,
    mesos_agent: AgentProcess,
    frameworks: Callable[..., TestFramework],
) -> None:
    local = tmp_path / "local-file.cfg"
    local.write_text("local content\n")
    framework = frameworks()
    agent_id = mesos_agent.agent_id
    uris = [
        {"value": served.url("plain.txt"), "extract": False},
        {"value": served.url("bundle.tar.gz")},
        {"value": served.url("pack.zip")},
        {"value": served.url("tool.sh"), "executable": True},
        {"value": served.url("plain.txt"), "output_file": "nested/dir/renamed.txt"},
        {"value": f"file://{local}"},
        {"value": str(local), "output_file": "by-path.cfg"},
    ]
    framework.launch(
        [command_task("fetching", agent_id, "cat bundle/inner.txt pack/zipped.txt && ./tool.sh", uris=uris)],
        agent_id,
    )
    done = framework.wait_terminal("fetching")
    sandbox = latest_sandbox(mesos_agent, framework.framework_id, "fetching")
    assert done["state"] == "TASK_FINISHED", (sandbox / "stderr").read_text()
    assert (sandbox / "plain.txt").read_text() == "plain content\n"
    assert (sandbox / "bundle" / "inner.txt").read_text() == "from the tarball\n"
    assert (sandbox / "bundle.tar.gz").exists(), "the archive itself stays next to what it held"
    assert (sandbox / "pack" / "zipped.txt").read_text() == "from the zip\n"
    assert (sandbox / "tool.sh").stat().st_mode & 0o777 == 0o755
    assert (sandbox / "nested" / "dir" / "renamed.txt").read_text() == "plain content\n"
    assert (sandbox / "local-file.cfg").read_text() == "local content\n"
    assert (sandbox / "by-path.cfg").read_text() == "local content\n"
    stdout = (sandbox / "stdout").read_text()
    assert "from the tarball" in stdout
    assert "tool ran" in stdout
    stderr = (sandbox / "stderr").read_text()
    assert f"Fetching URI '{served.url('plain.txt')}'" in stderr, "the fetcher logs into the sandbox"
    assert f"Successfully fetched all URIs into '{sandbox}'" in stderr


def test_cached_uris_are_downloaded_once(
    served: CountingServer, mesos_agent: AgentProcess, frameworks: Callable[..., TestFramework]
) -> None:
    framework = frameworks()
    agent_id = mesos_agent.agent_id
    uri = {"value": served.url("cached.txt"), "cache": True}
    framework.launch([command_task("first", agent_id, "cat cached.txt", uris=[uri])], agent_id)
    assert framework.wait_terminal("first")["state"] == "TASK_FINISHED"
    framework.launch([command_task("second", agent_id, "cat cached.txt", uris=[uri])], agent_id)
    assert framework.wait_terminal("second")["state"] == "TASK_FINISHED"
    for task in ("first", "second"):
        assert (
            latest_sandbox(mesos_agent, framework.framework_id, task) / "cached.txt"
        ).read_text() == "cached content\n"
    assert served.hits["/cached.txt"] == 1
    cache = mesos_agent.work_dir / "fetch" / "root"
    assert [p.read_text() for p in cache.iterdir() if not p.name.endswith(".lock")] == ["cached content\n"]


def test_failed_fetch_fails_the_task_with_container_launch_failed(
    served: CountingServer, mesos_agent: AgentProcess, frameworks: Callable[..., TestFramework]
) -> None:
    framework = frameworks()
    agent_id = mesos_agent.agent_id
    framework.launch(
        [command_task("unfetchable", agent_id, "true", uris=[{"value": served.url("missing.tar.gz")}])],
        agent_id,
    )
    failed = framework.wait_terminal("unfetchable")
    assert failed["state"] == "TASK_FAILED"
    assert failed["reason"] == "REASON_CONTAINER_LAUNCH_FAILED"
    assert failed["source"] == "SOURCE_AGENT"
    assert failed["message"].startswith(
        "Failed to launch container: Failed to fetch all URIs for container '"
    )
    assert failed["message"].endswith("': exited with status 1")
    assert framework.states("unfetchable") == ["TASK_FAILED"], "the command never started"
    stderr = (latest_sandbox(mesos_agent, framework.framework_id, "unfetchable") / "stderr").read_text()
    assert "Error downloading resource, received HTTP return code 404" in stderr
    time.sleep(0.2)
    assert served.hits["/missing.tar.gz"] == 1
