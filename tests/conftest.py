"""Suite-wide guards: the suite runs inside setup/env.sh, and leaves no mount behind."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest


def _mount_points() -> set[str]:
    with open("/proc/self/mountinfo", encoding="utf-8") as mountinfo:
        return {line.split()[4] for line in mountinfo}


def pytest_configure(config: pytest.Config) -> None:
    if "ALLUXIO_MESOS_CACHE" not in os.environ:
        raise pytest.UsageError("run the tests through `make test` (or `source setup/env.sh` first)")


@pytest.fixture(scope="session", autouse=True)
def no_mount_left_under_test_dirs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    base = str(tmp_path_factory.getbasetemp())
    yield
    leaked = sorted(m for m in _mount_points() if m.startswith(base))
    assert not leaked, f"tests left mounts behind: {leaked}"


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return Path(__file__).resolve().parent.parent
