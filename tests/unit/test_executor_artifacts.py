"""Artifacts in the sandbox are checked against the plan's sha256 before anything starts."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from executor.artifacts import ArtifactError, sha256_of, verify_artifacts
from executor.task_plan import Artifact


def _write(path: Path, data: bytes) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return hashlib.sha256(data).hexdigest()


def test_matching_artifacts_pass(tmp_path: Path) -> None:
    big = os.urandom(3 << 20)  # several read chunks
    a = _write(tmp_path / "alluxio.tar.gz", big)
    b = _write(tmp_path / "sub" / "jdk.tgz", b"jdk")
    assert sha256_of(str(tmp_path / "alluxio.tar.gz")) == a
    verify_artifacts(str(tmp_path), [Artifact("alluxio.tar.gz", a), Artifact("sub/jdk.tgz", b)])


def test_mismatch_names_file_expected_and_actual(tmp_path: Path) -> None:
    actual = _write(tmp_path / "alluxio.tar.gz", b"tampered")
    expected = hashlib.sha256(b"published").hexdigest()
    with pytest.raises(ArtifactError) as caught:
        verify_artifacts(str(tmp_path), [Artifact("alluxio.tar.gz", expected)])
    message = str(caught.value)
    assert "alluxio.tar.gz" in message
    assert expected in message
    assert actual in message


def test_missing_artifact_names_its_url(tmp_path: Path) -> None:
    with pytest.raises(ArtifactError, match=r"jdk\.tgz \(fetched from http://repo/jdk\.tgz\) is missing"):
        verify_artifacts(str(tmp_path), [Artifact("jdk.tgz", "0" * 64, "http://repo/jdk.tgz")])


def test_symlink_out_of_the_sandbox_is_refused(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    digest = _write(outside, b"data")
    sandbox = tmp_path / "sandbox"
    sandbox.mkdir()
    (sandbox / "alluxio.tar.gz").symlink_to(outside)
    with pytest.raises(ArtifactError, match="outside the sandbox"):
        verify_artifacts(str(sandbox), [Artifact("alluxio.tar.gz", digest)])


def test_every_artifact_is_checked_not_just_the_first(tmp_path: Path) -> None:
    good = _write(tmp_path / "a", b"a")
    _write(tmp_path / "b", b"b")
    with pytest.raises(ArtifactError, match="artifact b has sha256"):
        verify_artifacts(str(tmp_path), [Artifact("a", good), Artifact("b", good)])
