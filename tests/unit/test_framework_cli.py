"""The `alluxio-mesos` command line: help, argument errors, configuration errors, and the
commands that have nothing to act on. Runs the installed console script as a real process."""

from __future__ import annotations

import os
import pathlib
import shutil
import socket
import subprocess
import sys
import textwrap

import pytest

from framework.spec import KEY_HELP, ClusterSpec, Key
from tests.unit.test_framework_events import EXECUTOR_SHA

REPO = pathlib.Path(__file__).resolve().parents[2]
SCRIPT = shutil.which("alluxio-mesos") or str(pathlib.Path(sys.executable).parent / "alluxio-mesos")


def cli(*args: str, cwd: pathlib.Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in {"ALLUXIO_HOME", "ALLUXIO_MESOS_HOME"}}
    env["COLUMNS"] = "200"  # argparse wraps help at the terminal width
    return subprocess.run(
        [SCRIPT, *args], check=False, capture_output=True, text=True, timeout=60, cwd=cwd, env=env
    )


def write_conf(home: pathlib.Path, extra: str = "") -> pathlib.Path:
    conf = home / "conf" / "alluxio-site.properties"
    conf.parent.mkdir(parents=True, exist_ok=True)
    conf.write_text(
        f"{Key.EXECUTOR_URL}=http://h/alluxio-mesos-executor.pyz\n"
        f"{Key.EXECUTOR_SHA256}={EXECUTOR_SHA}\n"
        f"{Key.ALLUXIO_URL}=LOCAL\n" + extra,
        encoding="utf-8",
    )
    return conf


def test_top_level_help() -> None:
    result = cli("--help")
    assert result.returncode == 0
    assert "usage: alluxio-mesos" in result.stdout
    assert "framework" in result.stdout


@pytest.mark.parametrize(
    ("action", "options"),
    [
        (
            "start",
            [
                "mesos_master",
                "alluxio_master_host",
                "--home",
                "--conf",
                "--state-dir",
                "--log-file",
                "--foreground",
                "--wait",
                "--status-bind",
                "--status-port",
                "--advertise-host",
            ],
        ),
        ("stop", ["--home", "--conf", "--state-dir", "--mesos-master", "--timeout"]),
        ("status", ["--home", "--conf", "--state-dir", "--url", "--json"]),
    ],
)
def test_every_option_is_explained(action: str, options: list[str]) -> None:
    result = cli("framework", action, "--help")
    assert result.returncode == 0
    lines = result.stdout.splitlines()
    for option in options:
        described = [line for line in lines if line.strip().startswith(option)]
        assert described, f"{option} missing from `framework {action} --help`"
        index = lines.index(described[-1])
        explanation = " ".join(lines[index : index + 2]).split(option, 1)[1]
        assert len(explanation.split()) >= 3, f"{option} has no explanation"
    assert "--log-to-stderr-only" not in result.stdout


def test_start_help_documents_every_configuration_key() -> None:
    result = cli("framework", "start", "--help")
    for key in KEY_HELP:
        assert f"  {key} = " in result.stdout, key
    assert f"  {Key.WORKER_MEM} = 1GB" in result.stdout
    assert f"  {Key.EXECUTOR_URL} = (required)" in result.stdout
    assert "field:LIKE:regex" in result.stdout


def test_every_spec_field_has_help() -> None:
    aliases = {info.alias for info in ClusterSpec.model_fields.values() if info.alias}
    assert aliases == set(KEY_HELP)


def test_start_help_shows_the_old_usage_and_logs() -> None:
    result = cli("framework", "start", "--help")
    assert "alluxio-mesos framework start mesos-master:5050" in result.stdout
    assert "logs/framework.out" in result.stdout
    assert "conf/alluxio-site.properties" in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "the following arguments are required: COMMAND"),
        (["framework"], "the following arguments are required: ACTION"),
        (["framework", "start"], "the following arguments are required: mesos_master"),
        (["framework", "start", "bad host:5050"], "is not a Mesos master address"),
        (["framework", "start", "m:99999"], "the port must be a number 1-65535"),
        (["framework", "start", "m:5050", "--status-port", "x"], "is not a port number"),
        (["framework", "start", "m:5050", "--wait", "-3"], "must not be negative"),
        (["framework", "stop", "--timeout", "soon"], "is not a number of seconds"),
        (["framework", "restart"], "invalid choice: 'restart'"),
    ],
)
def test_argument_errors(args: list[str], message: str) -> None:
    result = cli(*args)
    assert result.returncode == 2
    assert message in result.stderr


def test_a_bad_configuration_is_reported_with_keys_before_anything_starts(tmp_path: pathlib.Path) -> None:
    write_conf(
        tmp_path, f"{Key.WORKER_MEM}=12MB\n{Key.WORKER_WEB_PORT}=19999\nalluxio.integration.mesos.rol=x\n"
    )
    result = cli("framework", "start", "127.0.0.1:1", "--home", str(tmp_path))
    assert result.returncode == 2
    assert f"{Key.WORKER_MEM}: 12MB is below the 256MB a JVM needs" in result.stderr
    assert "alluxio.integration.mesos.rol: unknown alluxio.integration key" in result.stderr
    assert not (tmp_path / "state").exists()
    assert not (tmp_path / "logs").exists()


def test_a_missing_configuration_file(tmp_path: pathlib.Path) -> None:
    result = cli("framework", "start", "127.0.0.1:1", "--home", str(tmp_path))
    assert result.returncode == 2
    assert "configuration file not found" in result.stderr
    assert str(tmp_path / "conf" / "alluxio-site.properties") in result.stderr


def test_home_defaults_to_the_current_directory(tmp_path: pathlib.Path) -> None:
    write_conf(tmp_path, f"{Key.MASTER_CPU}=zero\n")
    result = cli("framework", "start", "127.0.0.1:1", cwd=tmp_path)
    assert result.returncode == 2
    assert f"{Key.MASTER_CPU}: Input should be a valid number" in result.stderr


def test_status_without_a_running_framework(tmp_path: pathlib.Path) -> None:
    result = cli("framework", "status", "--home", str(tmp_path))
    assert result.returncode == 1
    assert "no running framework" in result.stderr


def test_stop_without_a_framework_is_a_no_op(tmp_path: pathlib.Path) -> None:
    result = cli("framework", "stop", "--home", str(tmp_path))
    assert result.returncode == 0
    assert "nothing to stop" in result.stdout


def test_a_second_framework_for_the_same_state_dir_is_refused(tmp_path: pathlib.Path) -> None:
    write_conf(tmp_path)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                f"""
                import pathlib, sys
                sys.path.insert(0, {str(REPO)!r})
                from framework.state_store import StateStore
                StateStore(pathlib.Path({str(tmp_path / "state")!r})).lock()
                print("locked", flush=True)
                sys.stdin.readline()
                """
            ),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "locked"
        result = cli("framework", "start", "127.0.0.1:1", "--home", str(tmp_path))
        assert result.returncode == 1
        assert f"a framework (pid {holder.pid}) already runs" in result.stderr
    finally:
        holder.kill()
        holder.wait(timeout=10)


def test_a_busy_status_port_is_reported_with_the_setting_to_change(tmp_path: pathlib.Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        write_conf(tmp_path, f"{Key.STATUS_PORT}={port}\n")
        result = cli(
            "framework",
            "start",
            "127.0.0.1:1",
            "--home",
            str(tmp_path),
            "--foreground",
            "--status-bind",
            "127.0.0.1",
        )
    assert result.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}: Address already in use" in result.stderr
    assert Key.STATUS_PORT in result.stderr


def test_an_unreadable_secret_file_is_reported(tmp_path: pathlib.Path) -> None:
    write_conf(tmp_path, f"{Key.SECRET_FILE}={tmp_path / 'missing.secret'}\n{Key.STATUS_PORT}=0\n")
    result = cli("framework", "start", "127.0.0.1:1", "--home", str(tmp_path), "--foreground")
    assert result.returncode == 2
    assert (
        f"{Key.SECRET_FILE}: cannot read {tmp_path / 'missing.secret'}: No such file or directory"
        in result.stderr
    )
