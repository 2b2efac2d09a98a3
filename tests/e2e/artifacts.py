"""The artifacts a deployment fetches: the Alluxio distribution tarball built by
`setup/bootstrap.sh alluxio` and the executor bundle (`python -m executor.bundle`)."""

from __future__ import annotations

import hashlib
import os
import pathlib
import subprocess
import sys
import tarfile

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]
ALLUXIO_VERSION = os.environ.get("ALLUXIO_VERSION", "2.9.6")


def alluxio_tarball() -> tuple[pathlib.Path, str]:
    """The cached distribution and its sha256 (fails the test with the fix if it is missing)."""
    cache = pathlib.Path(os.environ["ALLUXIO_MESOS_CACHE"]) / "alluxio" / ALLUXIO_VERSION
    tarball = cache / f"alluxio-{ALLUXIO_VERSION}-bin.tar.gz"
    if not tarball.is_file():
        pytest.fail(f"{tarball} is missing: run `setup/bootstrap.sh alluxio` first")
    digest = (cache / f"{tarball.name}.sha256").read_text(encoding="utf-8").split()[0]
    return tarball, digest


def executor_bundle(directory: pathlib.Path) -> tuple[pathlib.Path, str]:
    """Build the executor zipapp into `directory`; returns it and its sha256."""
    output = directory / "alluxio-mesos-executor.pyz"
    subprocess.run(
        [sys.executable, "-m", "executor.bundle", "--output", str(output)], check=True, cwd=REPO, timeout=120
    )
    return output, hashlib.sha256(output.read_bytes()).hexdigest()


def extract_distribution(tarball: pathlib.Path, directory: pathlib.Path) -> pathlib.Path:
    """Unpack the distribution (for the Alluxio shell the tests use as a client); returns its home."""
    directory.mkdir(parents=True, exist_ok=True)
    subprocess.run(["tar", "-xzf", str(tarball), "-C", str(directory)], check=True, timeout=300)
    with tarfile.open(tarball) as archive:
        top = archive.next()
        assert top is not None, f"{tarball} is empty"
    home = directory / top.name.split("/", 1)[0]
    assert (home / "assembly").is_dir(), f"{home} is not an Alluxio distribution"
    return home
