"""The real Pulumi engine built by setup/steps/pulumi.sh, driven through its CLI with no network.

A one-resource program (tests/integration/pulumi_minimal) goes through a whole stack lifecycle:
init, preview, up, update, drift and refresh, destroy, rm. Every command runs with the environment
that setup/env.sh produces, plus a temporary backend, PULUMI_HOME and passphrase file, and with an
HTTP(S) proxy that records every outbound connection attempt, so "offline" is checked, not assumed.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[2]
PROGRAM_DIR = Path(__file__).resolve().parent / "pulumi_minimal"
ENGINE_BINARIES = (
    "pulumi",
    "pulumi-language-python",
    "pulumi-language-python-exec",
    "pulumi-resource-pulumi-python",
)
STACK = "engine-test"
PROJECT = "pulumi-minimal"
PASSPHRASE = "engine-test-passphrase"
TOKEN = "tok-3f9a1c77e2"
COMMAND_TIMEOUT_S = 300
RESOURCE_TYPE = "pulumi-python:dynamic:Resource"


class ConnectionRecorder:
    """A local HTTP proxy that refuses everything and remembers who tried to go out.

    Go's and Python's HTTP clients send every non-local request through HTTP(S)_PROXY, so any update
    check or plugin download the engine attempts arrives here first, as a CONNECT or a GET line.
    """

    def __init__(self) -> None:
        self._server = socket.create_server(("127.0.0.1", 0))
        self._server.settimeout(0.2)
        self.attempts: list[str] = []
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="connection-recorder", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.getsockname()[1]}"

    def _serve(self) -> None:
        while not self._stopping.is_set():
            try:
                conn, _ = self._server.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(5)
                try:
                    request_line = conn.recv(4096).split(b"\r\n", 1)[0].decode("latin-1")
                    conn.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                except OSError as exc:
                    request_line = f"<unreadable request: {exc}>"
                self.attempts.append(request_line)

    def close(self) -> None:
        self._stopping.set()
        self._thread.join(timeout=5)
        self._server.close()


@dataclass
class PulumiWorkspace:
    """Everything one CLI session needs: a project copy, its environment and its temp state."""

    project_dir: Path
    env: dict[str, str]
    pulumi_home: Path
    backend_dir: Path
    managed_file: Path
    recorder: ConnectionRecorder
    stray_process_groups: list[str] = field(default_factory=list)

    def run(self, *args: str, expect_rc: int | None = 0) -> subprocess.CompletedProcess[str]:
        return run_cli(self, ["pulumi", "--color", "never", *args], expect_rc=expect_rc)


def run_cli(
    workspace: PulumiWorkspace, argv: Sequence[str], expect_rc: int | None = 0
) -> subprocess.CompletedProcess[str]:
    # Its own process group, so a hung command takes its language host and providers down with it.
    proc = subprocess.Popen(
        list(argv),
        cwd=workspace.project_dir,
        env=workspace.env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = proc.communicate(timeout=COMMAND_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        stdout, stderr = proc.communicate()
        pytest.fail(f"`{' '.join(argv)}` hung for {COMMAND_TIMEOUT_S}s\n{stdout}\n{stderr}")
    finally:
        # The engine must stop the plugins it started; anything left in the group is a leak.
        try:
            os.killpg(proc.pid, signal.SIGKILL)
            workspace.stray_process_groups.append(" ".join(argv))
        except ProcessLookupError:
            pass
    result = subprocess.CompletedProcess(list(argv), proc.returncode, stdout, stderr)
    if expect_rc is not None:
        assert result.returncode == expect_rc, (
            f"`{' '.join(argv)}` exited {result.returncode}, expected {expect_rc}\n"
            f"stdout:\n{stdout}\nstderr:\n{stderr}"
        )
    return result


def env_from_env_sh() -> dict[str, str]:
    """The environment setup/env.sh exports, computed from a clean slate.

    Pulumi and proxy variables of the calling shell are dropped first, so the test checks what
    env.sh itself configures rather than whatever the developer happened to export.
    """
    base = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("PULUMI_") and key.lower() not in {"http_proxy", "https_proxy", "no_proxy"}
    }
    dump = subprocess.run(
        ["bash", "-c", ". setup/env.sh && env -0"],
        cwd=REPO_ROOT,
        env=base,
        capture_output=True,
        check=True,
        timeout=30,
    ).stdout
    pairs = (entry.split(b"=", 1) for entry in dump.split(b"\0") if b"=" in entry)
    return {key.decode(): value.decode() for key, value in pairs}


def plugin_entries(pulumi_home: Path) -> list[str]:
    plugins = pulumi_home / "plugins"
    return sorted(p.name for p in plugins.iterdir()) if plugins.exists() else []


@pytest.fixture(scope="module")
def engine_env() -> dict[str, str]:
    env = env_from_env_sh()
    bin_dir = Path(env["ALLUXIO_MESOS_PULUMI_BIN"])
    missing = [name for name in ENGINE_BINARIES if not os.access(bin_dir / name, os.X_OK)]
    assert not missing, f"{missing} not built in {bin_dir}: run `setup/bootstrap.sh pulumi` first"
    assert shutil.which("pulumi", path=env["PATH"]) == str(bin_dir / "pulumi"), (
        "setup/env.sh must put the built engine first on PATH"
    )
    return env


@pytest.fixture
def scratch_dir() -> Iterator[Path]:
    # Not tmp_path: pytest keeps those after the run, and these hold state and passphrase files.
    path = Path(tempfile.mkdtemp(prefix="alluxio-mesos-pulumi-test-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def workspace(engine_env: dict[str, str], scratch_dir: Path) -> Iterator[PulumiWorkspace]:
    project_dir = scratch_dir / "project"
    shutil.copytree(PROGRAM_DIR, project_dir, ignore=shutil.ignore_patterns("__pycache__", "Pulumi.*.yaml"))
    # Pulumi.yaml names `.venv`, like the real project's: a link makes it the repository's venv.
    (project_dir / ".venv").symlink_to(engine_env["ALLUXIO_MESOS_VENV"], target_is_directory=True)
    passphrase_file = scratch_dir / "passphrase"
    passphrase_file.write_text(PASSPHRASE, encoding="utf-8")
    pulumi_home = scratch_dir / "pulumi-home"
    backend_dir = scratch_dir / "state"
    backend_dir.mkdir()
    recorder = ConnectionRecorder()
    env = {
        **engine_env,
        "PULUMI_HOME": str(pulumi_home),
        "PULUMI_BACKEND_URL": f"file://{backend_dir}",
        "PULUMI_CONFIG_PASSPHRASE_FILE": str(passphrase_file),
        "HTTP_PROXY": recorder.url,
        "HTTPS_PROXY": recorder.url,
        "http_proxy": recorder.url,
        "https_proxy": recorder.url,
        # The engine and its plugins talk gRPC over loopback; only that may bypass the recorder.
        "NO_PROXY": "localhost,127.0.0.1,::1",
        "no_proxy": "localhost,127.0.0.1,::1",
    }
    ws = PulumiWorkspace(
        project_dir=project_dir,
        env=env,
        pulumi_home=pulumi_home,
        backend_dir=backend_dir,
        managed_file=scratch_dir / "managed" / "greeting.txt",
        recorder=recorder,
    )
    try:
        yield ws
    finally:
        try:
            stacks = ws.run("stack", "ls", "--json", expect_rc=None)
            if stacks.returncode == 0 and any(s["name"] == STACK for s in json.loads(stacks.stdout or "[]")):
                ws.run("destroy", "--yes", "--stack", STACK, expect_rc=None)
                ws.run("stack", "rm", "--yes", "--force", "--stack", STACK, expect_rc=None)
        finally:
            recorder.close()


def test_engine_versions_match_the_sdk_pin(workspace: PulumiWorkspace) -> None:
    pin = workspace.env["PULUMI_VERSION"]
    assert f'"pulumi=={pin}"' in (REPO_ROOT / "pyproject.toml").read_text(encoding="utf-8")
    sdk = subprocess.run(
        [
            f"{workspace.env['ALLUXIO_MESOS_VENV']}/bin/python",
            "-c",
            "import importlib.metadata as m; print(m.version('pulumi'))",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert sdk.stdout.strip() == pin
    assert workspace.run("version").stdout.strip() == f"v{pin}"
    # The language host the engine actually loads for this project reports its own version.
    about = json.loads(workspace.run("about", "--json").stdout)
    assert {"name": "python", "version": pin, "kind": "language"} in about["plugins"]


def test_update_check_is_skipped(engine_env: dict[str, str], scratch_dir: Path) -> None:
    home = scratch_dir / "pulumi-home"
    verbose = subprocess.run(
        ["pulumi", "version", "--logtostderr", "-v=5"],
        env={**engine_env, "PULUMI_HOME": str(home)},
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert "skipping update check" in verbose.stderr
    # The CLI caches every update check it makes in PULUMI_HOME.
    assert not (home / ".cachedVersionInfo").exists()


def test_recorder_sees_a_real_network_attempt(workspace: PulumiWorkspace) -> None:
    # The control for the offline assertions: an explicit plugin install must reach the recorder,
    # otherwise "no attempts recorded" below would prove nothing.
    result = workspace.run("plugin", "install", "resource", "random", "4.16.0", expect_rc=None)
    assert result.returncode != 0
    assert workspace.recorder.attempts, f"no connection recorded; stderr:\n{result.stderr}"


def read_outputs(ws: PulumiWorkspace) -> dict[str, str]:
    return json.loads(ws.run("stack", "output", "--json", "--show-secrets").stdout)


def managed_file_state(ws: PulumiWorkspace) -> dict[str, str]:
    """The resource's outputs as the backend records them (stack outputs only change on `up`)."""
    deployment = json.loads(ws.run("stack", "export").stdout)["deployment"]
    (resource,) = [r for r in deployment["resources"] if r["type"] == RESOURCE_TYPE]
    return resource["outputs"]


def preview_ops(ws: PulumiWorkspace) -> dict[str, str]:
    """Resource type → the operation `pulumi preview` plans for it."""
    preview = json.loads(ws.run("preview", "--json").stdout)
    return {step["urn"].split("::")[-2]: step["op"] for step in preview["steps"]}


def test_stack_lifecycle_offline(workspace: PulumiWorkspace) -> None:
    ws = workspace
    ws.run("stack", "init", STACK)
    ws.run("config", "set", "path", str(ws.managed_file))
    ws.run("config", "set", "content", "hello from pulumi")
    ws.run("config", "set", "--secret", "token", TOKEN)
    stack_config = (ws.project_dir / f"Pulumi.{STACK}.yaml").read_text(encoding="utf-8")
    assert TOKEN not in stack_config
    assert "secure:" in stack_config

    assert preview_ops(ws)[RESOURCE_TYPE] == "create"
    assert not ws.managed_file.exists()

    ws.run("up", "--yes", "--skip-preview")
    assert ws.managed_file.read_text(encoding="utf-8") == "hello from pulumi"
    outputs = read_outputs(ws)
    assert outputs["path"] == str(ws.managed_file)
    assert outputs["content"] == "hello from pulumi"
    assert outputs["token"] == TOKEN
    # Both the program (language host) and the dynamic provider ran from the project's .venv.
    venv_link = ws.project_dir / ".venv"
    for key in ("program_python_prefix", "provider_python_prefix"):
        assert Path(outputs[key]).resolve() == venv_link.resolve(), key
    # The secret is encrypted at rest in the state, too.
    state_files = list(ws.backend_dir.rglob("*.json"))
    assert state_files
    assert not any(TOKEN in f.read_text(encoding="utf-8") for f in state_files)

    ws.run("preview", "--expect-no-changes")

    ws.run("config", "set", "content", "changed by config")
    assert preview_ops(ws)[RESOURCE_TYPE] == "update"
    ws.run("up", "--yes", "--skip-preview")
    assert ws.managed_file.read_text(encoding="utf-8") == "changed by config"

    # Drift: refresh must see what is on disk, and the next preview must want to put it back.
    ws.managed_file.write_text("edited behind pulumi's back", encoding="utf-8")
    ws.run("preview", "--expect-no-changes")
    ws.run("refresh", "--yes", "--skip-preview")
    assert managed_file_state(ws)["content"] == "edited behind pulumi's back"
    ws.run("preview", "--expect-no-changes", expect_rc=255)
    ws.run("up", "--yes", "--skip-preview")
    assert ws.managed_file.read_text(encoding="utf-8") == "changed by config"
    ws.run("preview", "--expect-no-changes")

    ws.run("destroy", "--yes", "--skip-preview")
    assert not ws.managed_file.exists()
    ws.run("stack", "rm", "--yes", STACK)
    assert json.loads(ws.run("stack", "ls", "--json").stdout) == []

    assert ws.recorder.attempts == [], "the engine tried to reach the network"
    assert plugin_entries(ws.pulumi_home) == [], "the engine downloaded plugins"
    assert not (ws.pulumi_home / ".cachedVersionInfo").exists(), "the engine checked for updates"
    assert ws.stray_process_groups == [], "plugins outlived the pulumi command that started them"
