"""Class-data sharing archives (executor/cds.py): keys, flags, locking, building and keeping one."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from executor import cds

ARCHIVE = cds.STATIC_ARCHIVE_MAGIC + b" the rest of a static archive"
# What -XX:ArchiveClassesAtExit writes (a dynamic archive): not what a build must produce.
DYNAMIC_ARCHIVE = b"\xa8\xab\x0b\xf0 a dynamic archive"


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


@pytest.fixture
def plenty_of_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cds, "memory_headroom_bytes", lambda: 8 << 30)


def _list_classes(plan: cds.ArchivePlan, text: str) -> None:
    """What -XX:DumpLoadedClassList makes the JVM do while it runs."""
    assert plan.class_list is not None
    Path(plan.class_list).write_text(text)


def _build_option(argv: list[str], name: str) -> str:
    return next(a.split("=", 1)[1] for a in argv if a.startswith(f"-XX:{name}="))


@pytest.mark.usefixtures("plenty_of_memory")
def test_the_first_start_lists_its_classes_and_the_build_from_them_becomes_the_archive(
    tmp_path: Path, jdk: Path, jars: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    cache, dump_dir = tmp_path / "cache", tmp_path / "sandbox-tmp"
    dump_dir.mkdir()
    first = cds.plan_archive(str(cache), str(jdk), jars, "worker", dump_dir=str(dump_dir))
    assert first is not None
    assert first.class_list is not None
    assert first.flags == [f"-XX:DumpLoadedClassList={first.class_list}"]
    assert Path(first.class_list).parent == dump_dir
    assert not first.uses_archive
    assert first.wants_build
    # Meanwhile another executor starts the same JVM: it neither waits nor lists too.
    other = cds.plan_archive(str(cache), str(jdk), jars, "worker", dump_dir=str(dump_dir))
    assert other is not None
    assert other.flags == []
    assert not other.wants_build

    _list_classes(first, "java/lang/Object id: 0\nalluxio/Foo id: 1\nalluxio/Ba")  # still writing
    argv = first.build_command()
    assert argv is not None
    assert not first.wants_build  # one build per start
    assert argv[:3] == [str(jdk), cds.BUILD_HEAP, "-Xshare:dump"]
    assert argv[-2:] == ["-cp", ":".join(jars)]
    snapshot = Path(_build_option(argv, "SharedClassListFile"))
    assert snapshot.read_text() == "java/lang/Object id: 0\nalluxio/Foo id: 1\n"  # complete lines only
    dump = Path(_build_option(argv, "SharedArchiveFile"))
    assert dump.parent == dump_dir  # written by the unprivileged build, moved in by the executor

    dump.write_bytes(ARCHIVE)
    seen_at_rename: list[list[Path]] = []
    rename = os.rename

    def watching_rename(src: str, dst: str) -> None:
        if dst == first.archive:
            seen_at_rename.append(list(dump_dir.iterdir()))
        rename(src, dst)

    monkeypatch.setattr(cds.os, "rename", watching_rename)
    assert first.build_finished(0) == first.archive
    assert seen_at_rename == [[]]  # the sandbox is clean before the archive appears
    assert Path(first.archive).read_bytes() == ARCHIVE
    assert oct(Path(first.archive).stat().st_mode & 0o777) == "0o644"
    assert list(dump_dir.iterdir()) == []  # list, snapshot and dump are gone

    again = cds.plan_archive(str(cache), str(jdk), jars, "worker", dump_dir=str(dump_dir))
    assert again is not None
    assert again.flags == [f"-XX:SharedArchiveFile={first.archive}"]
    assert again.uses_archive
    assert not again.wants_build


@pytest.mark.usefixtures("plenty_of_memory")
@pytest.mark.parametrize(
    ("status", "content"),
    [(1, ARCHIVE), (0, b""), (0, DYNAMIC_ARCHIVE), (0, None)],
)
def test_a_failed_build_keeps_nothing_and_the_next_start_lists_again(
    tmp_path: Path, jdk: Path, jars: list[str], status: int, content: bytes | None
) -> None:
    cache, dump_dir = tmp_path / "cache", tmp_path / "tmp"
    dump_dir.mkdir()
    first = cds.plan_archive(str(cache), str(jdk), jars, "master", dump_dir=str(dump_dir))
    assert first is not None
    _list_classes(first, "java/lang/Object id: 0\n")
    argv = first.build_command()
    assert argv is not None
    if content is not None:
        Path(_build_option(argv, "SharedArchiveFile")).write_bytes(content)
    assert first.build_finished(status) is None
    assert not Path(first.archive).exists()
    assert list(dump_dir.iterdir()) == []
    retry = cds.plan_archive(str(cache), str(jdk), jars, "master", dump_dir=str(dump_dir))
    assert retry is not None
    assert retry.wants_build  # the lock was released
    retry.finish()


def test_no_build_without_the_memory_it_needs(
    tmp_path: Path, jdk: Path, jars: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(cds, "memory_headroom_bytes", lambda: cds.BUILD_MEMORY_BYTES - 1)
    plan = cds.plan_archive(str(tmp_path / "cache"), str(jdk), jars, "worker", dump_dir=str(tmp_path))
    assert plan is not None
    _list_classes(plan, "java/lang/Object id: 0\n")
    assert plan.build_command() is None
    assert not plan.wants_build
    assert not list(tmp_path.glob("cds-*"))
    retry = cds.plan_archive(str(tmp_path / "cache"), str(jdk), jars, "worker", dump_dir=str(tmp_path))
    assert retry is not None
    assert retry.wants_build  # given up for this start only
    retry.finish()


def test_finish_before_any_build_releases_the_lock_and_deletes_the_list(
    tmp_path: Path, jdk: Path, jars: list[str]
) -> None:
    plan = cds.plan_archive(str(tmp_path / "cache"), str(jdk), jars, "worker", dump_dir=str(tmp_path))
    assert plan is not None
    _list_classes(plan, "java/lang/Object id: 0\n")
    plan.finish()
    plan.finish()  # idempotent
    assert not list(tmp_path.glob("cds-*"))
    retry = cds.plan_archive(str(tmp_path / "cache"), str(jdk), jars, "worker", dump_dir=str(tmp_path))
    assert retry is not None
    assert retry.wants_build
    retry.finish()


def _cgroup_files(
    tmp_path: Path, proc_cgroup: str, files: dict[str, str]
) -> tuple[Path, list[tuple[str, str]]]:
    """A /proc/self/cgroup and a /sys/fs/cgroup tree under tmp_path; returns the tree's root and
    the (limit, usage) files cds finds there."""
    proc = tmp_path / "cgroup"
    proc.write_text(proc_cgroup)
    root = tmp_path / "sys"
    for name, value in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(value + "\n")
    return root, cds._cgroup_memory_files(str(proc), str(root))


def _headroom(monkeypatch: pytest.MonkeyPatch, pairs: list[tuple[str, str]], available: int) -> int | None:
    monkeypatch.setattr(cds, "_cgroup_memory_files", lambda: pairs)
    monkeypatch.setattr(cds, "_meminfo_available", lambda: available)
    return cds.memory_headroom_bytes()


def test_memory_headroom_is_the_tightest_cgroup_limit_up_the_tree_v2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root, pairs = _cgroup_files(
        tmp_path,
        "0::/mesos/task-1\n",
        {
            "memory.max": "max",  # the root: unlimited
            "memory.current": "999999999999",
            "mesos/memory.max": str(8 << 30),
            "mesos/memory.current": str(1 << 30),  # 7 GiB left
            "mesos/task-1/memory.max": str(1 << 30),
            "mesos/task-1/memory.current": str(700 << 20),  # 324 MiB left: the tightest
        },
    )
    assert [Path(limit).parent for limit, _ in pairs] == [root / "mesos" / "task-1", root / "mesos", root]
    assert _headroom(monkeypatch, pairs, available=20 << 30) == 324 << 20


def test_memory_headroom_reads_cgroup_v1_and_ignores_its_no_limit_value(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root, pairs = _cgroup_files(
        tmp_path,
        "12:cpu,cpuacct:/mesos/x\n4:memory:/mesos/x\n",
        {
            "memory/mesos/x/memory.limit_in_bytes": "9223372036854771712",  # v1's "no limit"
            "memory/mesos/x/memory.usage_in_bytes": str(3 << 30),
        },
    )
    assert pairs == [
        (
            str(root / "memory/mesos/x/memory.limit_in_bytes"),
            str(root / "memory/mesos/x/memory.usage_in_bytes"),
        )
    ]
    assert _headroom(monkeypatch, pairs, available=2 << 30) == 2 << 30  # only the host's own limit applies


def test_memory_headroom_of_this_process_is_known() -> None:
    headroom = cds.memory_headroom_bytes()
    assert headroom is not None
    assert 0 < headroom <= os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


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
    for option in (
        "-XX:SharedArchiveFile=/mine.jsa",
        "-XX:ArchiveClassesAtExit=/x.jsa",
        "-XX:DumpLoadedClassList=/x.lst",
        "-XX:SharedClassListFile=/x.lst",
        "-Xshare:off",
    ):
        plan = cds.plan_archive(
            str(tmp_path / "cache"), str(jdk), jars, "worker", dump_dir=str(tmp_path), jvm_options=[option]
        )
        assert plan is None, option
    assert not (tmp_path / "cache").exists()


@pytest.mark.usefixtures("plenty_of_memory")
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
    _list_classes(plan, "java/lang/Object id: 0\n")
    argv = plan.build_command()
    assert argv is not None
    Path(_build_option(argv, "SharedArchiveFile")).write_bytes(ARCHIVE)
    assert plan.build_finished(0) == plan.archive
    assert not old.exists()
    assert recent.exists()
