"""The executor bundle: one deterministic file that runs on a bare Python 3 without the venv."""

from __future__ import annotations

import glob
import hashlib
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from executor.bundle import MANIFEST, SHEBANG, build

REPO = Path(__file__).resolve().parents[2]


def find_python39() -> str:
    """A real CPython 3.9: the oldest Python the agents may have."""
    candidates = [os.environ.get("ALLUXIO_MESOS_PYTHON39", "")]
    candidates += sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.9*/bin/python3.9")))
    candidates += [shutil.which("python3.9") or ""]
    for candidate in filter(None, candidates):
        probe = subprocess.run(
            [candidate, "-c", "import sys; print(sys.version_info[:2])"],
            capture_output=True,
            text=True,
            check=False,
        )
        if probe.returncode == 0 and probe.stdout.strip() == "(3, 9)":
            return candidate
    pytest.fail("no Python 3.9 interpreter found (pyenv 3.9.x or ALLUXIO_MESOS_PYTHON39)")


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("bundle") / "alluxio-mesos-executor.pyz"


def test_build_is_deterministic_and_self_contained(bundle: Path, tmp_path: Path) -> None:
    first = build(str(bundle))
    # Through the CLI, into another path: same bytes.
    other = tmp_path / "again.pyz"
    result = subprocess.run(
        [sys.executable, "-m", "executor.bundle", "--output", str(other)],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[0] == first
    assert (
        hashlib.sha256(other.read_bytes()).hexdigest()
        == first
        == hashlib.sha256(bundle.read_bytes()).hexdigest()
    )
    assert bundle.read_bytes().startswith(SHEBANG)
    assert os.stat(bundle).st_mode & 0o777 == 0o755
    with zipfile.ZipFile(bundle) as archive:
        names = archive.namelist()
        assert names == sorted(names)
        assert {i.date_time for i in archive.infolist()} == {(1980, 1, 1, 0, 0, 0)}
        manifest = json.loads(archive.read(MANIFEST))
    for required in (
        "__main__.py",
        "executor/main.py",
        "executor/ramdisk.py",
        "pymesos/executor.py",
        "http_parser/pyparser.py",
        "six.py",
        "addict/addict.py",
    ):
        assert required in names
    assert not [n for n in names if n.endswith((".so", ".pyc")) or "__pycache__" in n]
    assert manifest["distributions"]["pymesos"]["version"] == "0.3.15"
    assert (
        manifest["files"]["executor/main.py"]
        == hashlib.sha256((REPO / "executor" / "main.py").read_bytes()).hexdigest()
    )


@pytest.mark.parametrize("interpreter", ["/usr/bin/python3", "python3.9"])
def test_bundle_runs_on_a_bare_python_from_an_empty_dir(
    bundle: Path, tmp_path: Path, interpreter: str
) -> None:
    if not bundle.exists():
        build(str(bundle))
    python = find_python39() if interpreter == "python3.9" else interpreter
    empty = tmp_path / "empty"
    empty.mkdir()
    for args in (["--version"], ["--self-test"]):
        result = subprocess.run(
            ["env", "-i", python, "-I", str(bundle), *args],
            capture_output=True,
            text=True,
            cwd=empty,
            check=False,
        )
        assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["ok"] is True
    assert report["pymesos"] == "0.3.15"
    assert report["http_parser"] == "pure-python"
    expected = subprocess.run(
        [python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert report["python"].startswith(expected + ".")
    assert os.listdir(empty) == []  # nothing written next to it (no __pycache__, no logs)


def test_bundle_without_agent_environment_explains_itself(bundle: Path, tmp_path: Path) -> None:
    if not bundle.exists():
        build(str(bundle))
    result = subprocess.run(
        ["env", "-i", "/usr/bin/python3", "-I", str(bundle)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=False,
    )
    assert result.returncode == 2
    assert "MESOS_SANDBOX is not set" in result.stderr
