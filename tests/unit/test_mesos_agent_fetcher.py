"""The fetcher program (mesos-fetcher): names, archives, executables, cache, errors, exit status."""

from __future__ import annotations

import gzip
import io
import json
import os
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path
from typing import Any

import pytest

from sandbox.mesos.agent import fetcher
from sandbox.mesos.agent.fetch_launch import (
    FETCHER_PROGRAM,
    FetchFailed,
    cache_filename,
    fetcher_info,
    validate_uris,
)


@pytest.mark.parametrize(
    ("uri", "name"),
    [
        ("http://host/path/file.tar.gz", "file.tar.gz"),
        ("http://host/path/file?x=1", "file?x=1"),
        ("/abs/dir/tool.sh", "tool.sh"),
        ("file:///abs/dir/conf.yaml", "conf.yaml"),
    ],
)
def test_basename_treats_uris_like_paths(uri: str, name: str) -> None:
    assert fetcher.basename(uri) == name


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        ("http://host", r"Malformed URI \(missing path\)"),
        ("http://host/a'b", "Illegal characters in URI"),
    ],
)
def test_basename_errors(uri: str, message: str) -> None:
    with pytest.raises(fetcher.FetchError, match=message):
        fetcher.basename(uri)


def _tar(path: Path, mode: str) -> None:
    with tarfile.open(path, mode) as archive:
        data = b"#!/bin/sh\necho hi\n"
        info = tarfile.TarInfo("pkg/bin/run")
        info.size = len(data)
        info.mode = 0o750
        archive.addfile(info, io.BytesIO(data))


@pytest.mark.parametrize("suffix", [".tar", ".tgz", ".tar.gz", ".tbz2", ".tar.bz2", ".txz", ".tar.xz"])
def test_tar_archives_extract_with_modes(tmp_path: Path, suffix: str) -> None:
    mode = {".tar": "w", ".tgz": "w:gz", ".tar.gz": "w:gz", ".tbz2": "w:bz2", ".tar.bz2": "w:bz2"}.get(
        suffix, "w:xz"
    )
    archive = tmp_path / f"pkg{suffix}"
    _tar(archive, mode)
    out = tmp_path / "out"
    out.mkdir()
    assert fetcher.extract(str(archive), str(out)) is True
    assert (out / "pkg" / "bin" / "run").stat().st_mode & 0o777 == 0o750


def test_zip_and_bare_gzip(tmp_path: Path) -> None:
    with zipfile.ZipFile(tmp_path / "a.zip", "w") as archive:
        info = zipfile.ZipInfo("z/run.sh")
        info.external_attr = 0o755 << 16
        archive.writestr(info, "echo z\n")
    with gzip.open(tmp_path / "notes.txt.gz", "wb") as handle:
        handle.write(b"gunzipped\n")
    out = tmp_path / "out"
    out.mkdir()
    assert fetcher.extract(str(tmp_path / "a.zip"), str(out))
    assert (out / "z" / "run.sh").stat().st_mode & 0o777 == 0o755
    assert fetcher.extract(str(tmp_path / "notes.txt.gz"), str(out))
    assert (out / "notes.txt").read_text() == "gunzipped\n"
    assert fetcher.extract(str(tmp_path / "a.zip.txt"), str(out)) is False


def test_archives_cannot_escape_the_sandbox(tmp_path: Path) -> None:
    archive = tmp_path / "evil.tar"
    with tarfile.open(archive, "w") as handle:
        info = tarfile.TarInfo("../escaped")
        info.size = 1
        handle.addfile(info, io.BytesIO(b"x"))
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(fetcher.FetchError, match="Failed to extract archive"):
        fetcher.extract(str(archive), str(out))
    assert not (tmp_path / "escaped").exists()


def _run_fetcher(info: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MESOS_FETCHER_INFO": json.dumps(info)}
    return subprocess.run(
        [sys.executable, FETCHER_PROGRAM], env=env, capture_output=True, text=True, timeout=30, check=False
    )


def test_program_fetches_through_the_cache_and_applies_flags(tmp_path: Path) -> None:
    source = tmp_path / "tool.sh"
    source.write_text("#!/bin/sh\n")
    sandbox = tmp_path / "sandbox"
    sandbox.mkdir()
    command = {
        "uris": [
            {"value": str(source), "executable": True, "cache": True},
            {"value": f"file://{source}", "output_file": "conf/copy.sh", "extract": False},
        ]
    }
    info = fetcher_info(command, str(sandbox), str(tmp_path / "cache"), "alice")
    assert info["cache_directory"] == str(tmp_path / "cache" / "alice")
    assert info["items"][0]["action"] == "DOWNLOAD_AND_CACHE"
    assert info["items"][0]["cache_filename"] == cache_filename("alice", str(source))
    assert info["items"][1]["action"] == "BYPASS_CACHE"
    result = _run_fetcher(info)
    assert result.returncode == 0, result.stderr
    assert (sandbox / "tool.sh").stat().st_mode & 0o777 == 0o755
    assert (sandbox / "conf" / "copy.sh").read_text() == "#!/bin/sh\n"
    cached = tmp_path / "cache" / "alice" / info["items"][0]["cache_filename"]
    assert cached.read_text() == "#!/bin/sh\n"
    assert "Downloading into cache" in result.stderr

    source.write_text("changed\n")
    (sandbox / "tool.sh").unlink()
    again = _run_fetcher(info)
    assert again.returncode == 0
    assert "Fetching from cache" in again.stderr
    assert (sandbox / "tool.sh").read_text() == "#!/bin/sh\n", "served from the cache, not the changed source"


def test_program_fails_with_status_1_and_says_why(tmp_path: Path) -> None:
    sandbox = tmp_path / "sandbox"
    sandbox.mkdir()
    result = _run_fetcher(
        fetcher_info({"uris": [{"value": "relative/file"}]}, str(sandbox), str(tmp_path), None)
    )
    assert result.returncode == 1
    assert "Failed to fetch 'relative/file': A relative path was passed for the resource" in result.stderr
    missing = _run_fetcher(
        fetcher_info({"uris": [{"value": f"file://{tmp_path}/nope"}]}, str(sandbox), str(tmp_path), None)
    )
    assert missing.returncode == 1
    assert "Failed to copy" in missing.stderr
    hdfs = _run_fetcher(
        fetcher_info({"uris": [{"value": "hdfs://nn/file"}]}, str(sandbox), str(tmp_path), None)
    )
    assert hdfs.returncode == 1
    assert "Failed to create HDFS client" in hdfs.stderr


@pytest.mark.parametrize(
    ("uri", "message"),
    [
        (
            {"value": "http://h/x", "output_file": "/etc/passwd"},
            "URI output file must be within the sandbox directory",
        ),
        ({"value": "http://h/x", "output_file": ""}, "URI output file path is empty"),
        ({"value": "http://h/it's"}, "Illegal characters in URI"),
    ],
)
def test_agent_side_validation(uri: dict[str, Any], message: str) -> None:
    with pytest.raises(FetchFailed, match=message):
        validate_uris({"uris": [uri]})


def test_passwords_in_uris_stay_out_of_the_sandbox_log(tmp_path: Path) -> None:
    sandbox = tmp_path / "sandbox"
    sandbox.mkdir()
    uri = "http://bob:s3cr3t@127.0.0.1:9/artifact.tgz"
    result = _run_fetcher(fetcher_info({"uris": [{"value": uri}]}, str(sandbox), str(tmp_path), None))
    assert result.returncode == 1
    assert "http://bob:***@127.0.0.1:9/artifact.tgz" in result.stderr
    assert "s3cr3t" not in result.stderr
