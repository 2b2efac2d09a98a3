"""Class-data sharing archives (executor/cds.py): keys, flags, locking and keeping a dump."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from executor import cds

ARCHIVE = cds.DYNAMIC_ARCHIVE_MAGIC + b" the rest of a dynamic archive"


@pytest.fixture
def jdk(tmp_path: Path) -> Path:
    """A JDK-shaped tree: bin/java and lib/server/libjvm.so (the key reads their metadata only)."""
    (tmp_path / "jdk" / "bin").mkdir(parents=True)
    (tmp_path / "jdk" / "lib" / "server").mkdir(parents=True)
    java = tmp_path / "jdk" / "bin" / "java"
    java.write_bytes(b"#!/bin/sh\n")
    java.chmod(0o755)
    (tmp_path / "jdk" / "lib" / "server" / "libjvm.so").write_bytes(b"\x7fELF" + b"0" * 100)
    return java


@pytest.fixture
def jars(tmp_path: Path) -> list[str]:
    paths = []
    for name in ("alluxio-core.jar", "grpc.jar"):
        path = tmp_path / "dist" / name
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(b"PK" + name.encode())
        paths.append(str(path))
    return paths


def test_the_key_changes_with_the_jvm_build_the_jars_and_the_role(
    tmp_path: Path, jdk: Path, jars: list[str]
) -> None:
    key = cds.archive_key(str(jdk), jars, "worker")
    assert key == cds.archive_key(str(jdk), jars, "worker")
    assert key != cds.archive_key(str(jdk), jars, "master")
    assert key != cds.archive_key(str(jdk), list(reversed(jars)), "worker")
    link = tmp_path / "java-link"
    link.symlink_to(jdk)
    assert cds.archive_key(str(link), jars, "worker") == key  # the real path counts
    Path(jars[0]).write_bytes(b"PK rebuilt")  # same path, other content: another archive
    assert cds.archive_key(str(jdk), jars, "worker") != key
    key = cds.archive_key(str(jdk), jars, "worker")
    libjvm = jdk.parent.parent / "lib" / "server" / "libjvm.so"
    os.utime(libjvm, (1, 1))  # a JDK update in place
    assert cds.archive_key(str(jdk), jars, "worker") != key


def test_the_first_start_dumps_into_the_tmp_dir_and_a_graceful_stop_keeps_the_archive(
    tmp_path: Path, jdk: Path, jars: list[str]
) -> None:
    cache, dump_dir = tmp_path / "cache", tmp_path / "sandbox-tmp"
    dump_dir.mkdir()
    first = cds.plan_archive(str(cache), str(jdk), jars, "worker", dump_dir=str(dump_dir))
    assert first is not None
    assert first.dump is not None
    assert first.flags == [f"-XX:ArchiveClassesAtExit={first.dump}"]
    assert Path(first.dump).parent == dump_dir
    assert not first.uses_archive
    # Meanwhile another executor starts the same JVM: it neither waits nor dumps too.
    other = cds.plan_archive(str(cache), str(jdk), jars, "worker", dump_dir=str(dump_dir))
    assert other is not None
    assert other.flags == []

    Path(first.dump).write_bytes(ARCHIVE)  # what the JVM writes at exit
    created = first.finish(graceful=True)
    assert created == first.archive
    assert Path(first.archive).read_bytes() == ARCHIVE
    assert oct(Path(first.archive).stat().st_mode & 0o777) == "0o644"
    assert not Path(first.dump).exists()

    again = cds.plan_archive(str(cache), str(jdk), jars, "worker", dump_dir=str(dump_dir))
    assert again is not None
    assert again.flags == [f"-XX:SharedArchiveFile={first.archive}"]
    assert again.uses_archive
    assert again.finish(graceful=True) is None  # nothing to keep: it only read the archive


def test_a_dump_of_a_killed_jvm_is_discarded_and_the_next_start_dumps_again(
    tmp_path: Path, jdk: Path, jars: list[str]
) -> None:
    cache, dump_dir = tmp_path / "cache", tmp_path / "tmp"
    dump_dir.mkdir()
    first = cds.plan_archive(str(cache), str(jdk), jars, "master", dump_dir=str(dump_dir))
    assert first is not None
    assert first.dump is not None
    Path(first.dump).write_bytes(ARCHIVE[:3])  # SIGKILLed while dumping
    assert first.finish(graceful=False) is None
    assert not Path(first.archive).exists()
    assert not Path(first.dump).exists()
    retry = cds.plan_archive(str(cache), str(jdk), jars, "master", dump_dir=str(dump_dir))
    assert retry is not None
    assert retry.flags == [f"-XX:ArchiveClassesAtExit={first.dump}"]  # the lock was released
    retry.release()


def test_a_graceful_exit_without_a_valid_archive_keeps_nothing(
    tmp_path: Path, jdk: Path, jars: list[str]
) -> None:
    plan = cds.plan_archive(str(tmp_path / "cache"), str(jdk), jars, "worker", dump_dir=str(tmp_path))
    assert plan is not None
    assert plan.dump is not None
    Path(plan.dump).write_bytes(b"")  # the dump failed (say, the disk was full)
    assert plan.finish(graceful=True) is None
    assert not Path(plan.archive).exists()


def test_another_process_creating_the_archive_is_respected(
    tmp_path: Path, jdk: Path, jars: list[str]
) -> None:
    cache = tmp_path / "cache"
    key = cds.archive_key(str(jdk), jars, "worker")
    (cache / "cds").mkdir(parents=True)
    lock = cache / "cds" / f"{key}.lock"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl, os, sys, time\n"
            "fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)\n"
            "fcntl.flock(fd, fcntl.LOCK_EX)\n"
            "print('locked', flush=True)\n"
            "time.sleep(60)\n",
            str(lock),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "locked"
        plan = cds.plan_archive(str(cache), str(jdk), jars, "worker", dump_dir=str(tmp_path))
        assert plan is not None
        assert plan.flags == []
    finally:
        holder.kill()
        holder.wait(timeout=30)
    fd = os.open(lock, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # free again once that process is gone
    finally:
        os.close(fd)


def test_operator_cds_options_win(tmp_path: Path, jdk: Path, jars: list[str]) -> None:
    for option in ("-XX:SharedArchiveFile=/mine.jsa", "-XX:ArchiveClassesAtExit=/x.jsa", "-Xshare:off"):
        plan = cds.plan_archive(
            str(tmp_path / "cache"), str(jdk), jars, "worker", dump_dir=str(tmp_path), jvm_options=[option]
        )
        assert plan is None, option
    assert not (tmp_path / "cache").exists()


def test_archives_unused_for_a_week_are_pruned_when_a_new_one_is_kept(
    tmp_path: Path, jdk: Path, jars: list[str]
) -> None:
    cache, dump_dir = tmp_path / "cache", tmp_path / "tmp"
    dump_dir.mkdir()
    (cache / "cds").mkdir(parents=True)
    old = cache / "cds" / ("0" * 64 + ".jsa")
    recent = cache / "cds" / ("1" * 64 + ".jsa")
    for path in (old, recent):
        path.write_bytes(b"x")
    week_ago = time.time() - 8 * 86400
    os.utime(old, (week_ago, week_ago))
    plan = cds.plan_archive(str(cache), str(jdk), jars, "worker", dump_dir=str(dump_dir))
    assert plan is not None
    assert plan.dump is not None
    Path(plan.dump).write_bytes(ARCHIVE)
    assert plan.finish(graceful=True) == plan.archive
    assert not old.exists()
    assert recent.exists()
