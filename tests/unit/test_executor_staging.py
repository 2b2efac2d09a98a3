"""Staging a tarball once per host (executor/staging.py), with real processes, locks and archives."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import http.server
import io
import json
import logging
import os
import pwd
import shutil
import signal
import stat
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from executor import staging
from executor.layout import LayoutError, check_access
from executor.process_group import resolve_run_as

REPO = Path(__file__).resolve().parents[2]
OLD = 8 * 86400  # older than the 7 days after which unused versions are pruned


def make_tarball(path: Path, members: dict[str, bytes], top: str = "alluxio-9.9") -> str:
    """A gzipped tarball of `members` (relative names under `top`); returns its sha256."""
    with tarfile.open(path, "w:gz") as archive:
        directory = tarfile.TarInfo(top)
        directory.type = tarfile.DIRTYPE
        directory.mode = 0o700  # staged directories must still be 0755
        archive.addfile(directory)
        for name, data in members.items():
            info = tarfile.TarInfo(f"{top}/{name}")
            info.size = len(data)
            info.mode = 0o700 if name.endswith(".sh") else 0o600
            archive.addfile(info, io.BytesIO(data))
    return hashlib.sha256(path.read_bytes()).hexdigest()


def evil_tarball(path: Path, *entries: tarfile.TarInfo) -> str:
    with tarfile.open(path, "w:gz") as archive:
        for info in entries:
            archive.addfile(info, io.BytesIO(b"x" * info.size) if info.isfile() else None)
    return hashlib.sha256(path.read_bytes()).hexdigest()


def entry(name: str, kind: bytes = tarfile.REGTYPE, link: str = "", size: int = 1) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = link
    info.size = size if kind == tarfile.REGTYPE else 0
    info.mode = 0o644
    return info


@pytest.fixture
def tarball(tmp_path: Path) -> tuple[Path, str]:
    path = tmp_path / "alluxio-9.9-bin.tar.gz"
    members = {
        "conf/log4j.properties": b"log4j\n",
        "bin/alluxio.sh": b"#!/bin/sh\n",
        "big": os.urandom(3 << 20),
    }
    return path, make_tarball(path, members)


class CountingServer:
    """Serves one file over HTTP and counts the downloads; `slow` stalls mid-body."""

    def __init__(self, path: Path, slow: bool = False) -> None:
        self.downloads = 0
        self.path = path
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.downloads += 1
                data = server.path.read_bytes()
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if slow:
                    self.wfile.write(data[: len(data) // 2])
                    self.wfile.flush()
                    time.sleep(30)
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/{path.name}"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@contextlib.contextmanager
def serving(path: Path, slow: bool = False) -> Iterator[CountingServer]:
    server = CountingServer(path, slow)
    try:
        yield server
    finally:
        server.close()


_STAGE_SCRIPT = """
import json, sys, time
from executor import staging
staged = staging.stage(sys.argv[1], sys.argv[2], sys.argv[3])
print(json.dumps({"directory": staged.directory, "reused": staged.reused}), flush=True)
time.sleep(float(sys.argv[4]))  # keeps the version in use (its shared lock) meanwhile
"""


def stage_in_process(cache: Path, url: str, sha: str, hold: float = 0.0) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", _STAGE_SCRIPT, str(cache), url, sha, str(hold)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


@contextlib.contextmanager
def processes() -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    try:
        yield started
    finally:
        for proc in started:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate(timeout=30)


def dist_entries(cache: Path) -> list[str]:
    return sorted(os.listdir(cache / "dist"))


# ---- staging once --------------------------------------------------------------------------------


def test_concurrent_executors_stage_exactly_once(tmp_path: Path, tarball: tuple[Path, str]) -> None:
    path, sha = tarball
    cache = tmp_path / "cache"
    with serving(path) as server, processes() as started:
        started.extend(stage_in_process(cache, server.url, sha) for _ in range(4))
        results = []
        for proc in started:
            out, err = proc.communicate(timeout=120)
            assert proc.returncode == 0, err
            results.append(json.loads(out))
        # threads of one process take their own locks too (one open file description each)
        in_threads: list[staging.StagedDistribution] = []
        workers = [
            threading.Thread(target=lambda: in_threads.append(staging.stage(str(cache), server.url, sha)))
            for _ in range(3)
        ]
        for t in workers:
            t.start()
        for t in workers:
            t.join(60)
        assert server.downloads == 1
    assert {r["directory"] for r in results} == {str(cache / "dist" / sha)}
    assert sorted(r["reused"] for r in results) == [False, True, True, True]
    assert [d.reused for d in in_threads] == [True, True, True]
    for held in in_threads:
        held.release()
    assert dist_entries(cache) == [sha, sha + ".lock"]
    home = cache / "dist" / sha / "alluxio-9.9"
    with tarfile.open(path) as archive:
        assert (home / "big").read_bytes() == archive.extractfile("alluxio-9.9/big").read()  # type: ignore[union-attr]
    marker = json.loads((cache / "dist" / sha / staging.MARKER).read_text())
    assert marker["sha256"] == sha
    assert marker["url"] == server.url


def test_an_executor_waiting_to_stage_uses_what_another_staged_and_keeps_in_use(
    tmp_path: Path, tarball: tuple[Path, str]
) -> None:
    """An executor found no marker and waits for the lock exclusively, while another executor
    holds the version shared (its JVM runs) and the marker appears. The waiting one must take the
    staged directory, not wait for an exclusive lock it would get only when that JVM stops."""
    path, sha = tarball
    cache = tmp_path / "cache"
    root = cache / "dist"
    root.mkdir(parents=True)
    other = os.open(root / f"{sha}.lock", os.O_RDWR | os.O_CREAT, 0o644)
    result: list[staging.StagedDistribution] = []
    waits = threading.Event()

    class WaitSeen(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if "waiting for" in record.getMessage():
                waits.set()

    seen = WaitSeen()
    level = staging.LOG.level
    staging.LOG.setLevel(logging.INFO)
    staging.LOG.addHandler(seen)
    try:
        fcntl.flock(other, fcntl.LOCK_SH)  # the other executor's JVM uses this version...
        waiting = threading.Thread(
            target=lambda: result.append(staging.stage(str(cache), path.as_uri(), sha)), daemon=True
        )
        waiting.start()
        assert waits.wait(10), "the executor never waited for the exclusive lock"
        (root / sha).mkdir()  # ...which is complete now (staged by the other one)
        (root / sha / staging.MARKER).write_text("{}")
        waiting.join(10)
        assert not waiting.is_alive(), "still waiting for an exclusive lock while the version is in use"
        assert [d.reused for d in result] == [True]
        assert result[0].directory == str(root / sha)
    finally:
        staging.LOG.removeHandler(seen)
        staging.LOG.setLevel(level)
        for staged in result:
            staged.release()
        os.close(other)


@pytest.fixture
def open_dir() -> Iterator[Path]:
    """A directory everyone may enter (pytest's tmp_path sits below a 0700 directory)."""
    path = Path(tempfile.mkdtemp(prefix="staging-test-", dir="/tmp"))
    try:
        path.chmod(0o755)
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def test_staged_files_are_readable_by_the_jvm_user(open_dir: Path, tarball: tuple[Path, str]) -> None:
    path, sha = tarball
    cache = open_dir / "cache"
    old_umask = os.umask(0o077)  # an executor's strict umask must not narrow what it stages
    try:
        staged = staging.stage(str(cache), path.as_uri(), sha)
    finally:
        os.umask(old_umask)
    home = Path(staged.directory) / "alluxio-9.9"
    modes = {p.relative_to(cache): stat.S_IMODE(p.stat().st_mode) for p in [cache, *cache.rglob("*")]}
    assert modes[Path("dist")] == 0o755
    assert modes[Path("dist") / sha / "alluxio-9.9"] == 0o755  # 0700 in the archive
    assert modes[Path("dist") / sha / "alluxio-9.9" / "bin" / "alluxio.sh"] == 0o755
    assert modes[Path("dist") / sha / "alluxio-9.9" / "conf" / "log4j.properties"] == 0o644
    nobody = resolve_run_as("nobody")
    check_access(str(home / "conf" / "log4j.properties"), nobody)
    with pytest.raises(LayoutError, match="cannot write"):
        check_access(str(home), nobody, write=True)
    assert pwd.getpwuid(home.stat().st_uid).pw_name == pwd.getpwuid(os.geteuid()).pw_name
    staged.release()


def test_a_plain_absolute_path_is_staged_and_reused(tmp_path: Path, tarball: tuple[Path, str]) -> None:
    path, sha = tarball
    first = staging.stage(str(tmp_path / "cache"), str(path), sha)
    again = staging.stage(str(tmp_path / "cache"), str(path), sha)
    assert (first.reused, again.reused) == (False, True)
    assert first.directory == again.directory
    first.release()
    again.release()


# ---- nothing staged from a bad download -----------------------------------------------------------


def test_a_sha256_mismatch_leaves_nothing_behind(tmp_path: Path, tarball: tuple[Path, str]) -> None:
    path, sha = tarball
    wrong = "0" * 64
    cache = tmp_path / "cache"
    with serving(path) as server, pytest.raises(staging.StagingError) as caught:
        staging.stage(str(cache), server.url, wrong, what="the Alluxio distribution")
    message = str(caught.value)
    assert f"has sha256 {sha} but the plan expects {wrong}" in message
    assert "the Alluxio distribution from http://127.0.0.1:" in message
    assert dist_entries(cache) == []


def test_a_corrupt_download_is_reported_as_a_mismatch(tmp_path: Path, tarball: tuple[Path, str]) -> None:
    path, sha = tarball
    corrupt = tmp_path / "corrupt.tar.gz"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    corrupt.write_bytes(bytes(data))
    cache = tmp_path / "cache"
    with pytest.raises(staging.StagingError, match=f"but the plan expects {sha}"):
        staging.stage(str(cache), corrupt.as_uri(), sha)
    assert dist_entries(cache) == []


def test_a_missing_url_is_named(tmp_path: Path) -> None:
    with pytest.raises(staging.StagingError, match=r"cannot download file:///nonexistent/a.tgz"):
        staging.stage(str(tmp_path / "cache"), "file:///nonexistent/a.tgz", "a" * 64)
    with pytest.raises(staging.StagingError, match="only http, https, file and absolute paths"):
        staging.stage(str(tmp_path / "cache"), "hdfs://nn/a.tgz", "a" * 64)
    assert dist_entries(tmp_path / "cache") == []


# ---- crashes --------------------------------------------------------------------------------------


def test_a_crashed_staging_leaves_only_a_temp_dir_that_the_next_one_removes(
    tmp_path: Path, tarball: tuple[Path, str]
) -> None:
    path, sha = tarball
    cache = tmp_path / "cache"
    with serving(path, slow=True) as slow, processes() as started:
        proc = stage_in_process(cache, slow.url, sha)
        started.append(proc)
        deadline = time.monotonic() + 60
        temp: list[Path] = []
        # Killed mid-download, with part of the tarball already unpacked.
        while not temp or not any(p.is_file() for p in temp[0].rglob("*")):
            assert time.monotonic() < deadline, proc.stderr.read() if proc.poll() is not None else "slow"
            time.sleep(0.05)
            temp = list((cache / "dist").glob(f".tmp-{sha}-*")) if (cache / "dist").is_dir() else []
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    assert not (cache / "dist" / sha).exists()  # never renamed into place: not usable by anyone
    assert len(list((cache / "dist").glob(f".tmp-{sha}-*"))) == 1

    staged = staging.stage(str(cache), path.as_uri(), sha)
    assert staged.reused is False
    assert dist_entries(cache) == [sha, sha + ".lock"]
    staged.release()


def test_a_directory_without_its_marker_is_staged_again(tmp_path: Path, tarball: tuple[Path, str]) -> None:
    path, sha = tarball
    cache = tmp_path / "cache"
    partial = cache / "dist" / sha / "alluxio-9.9"
    partial.mkdir(parents=True)
    (partial / "half-written.jar").write_bytes(b"PK")
    staged = staging.stage(str(cache), path.as_uri(), sha)
    assert staged.reused is False
    assert not (partial / "half-written.jar").exists()
    assert (partial / "big").stat().st_size == 3 << 20
    staged.release()


def test_a_kill_while_unpacking_removes_the_temp_dir(tmp_path: Path, tarball: tuple[Path, str]) -> None:
    path, sha = tarball
    cache = tmp_path / "cache"
    calls = []

    def abort() -> None:
        calls.append(1)
        if len(calls) > 3:
            raise KeyboardInterrupt("kill requested")

    with pytest.raises(KeyboardInterrupt):
        staging.stage(str(cache), path.as_uri(), sha, abort=abort)
    assert dist_entries(cache) == []


# ---- unsafe archives ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("entries", "problem"),
    [
        ([entry("../escaped")], "'..' would leave the directory"),
        ([entry("a/../../escaped")], "'..' would leave the directory"),
        ([entry("/tmp/escaped-absolute")], "absolute path"),
        ([entry("link", tarfile.SYMTYPE, "/etc")], "absolute symlink"),
        ([entry("link", tarfile.SYMTYPE, "../..")], "outside the staging directory"),
        # each link looks harmless where it is made; together "here/up" points above the root
        (
            [entry("here", tarfile.SYMTYPE, "."), entry("here/up", tarfile.SYMTYPE, "..")],
            "outside the staging directory",
        ),
        # "up" stays inside while "sub" does not exist; once "sub" points at the root, it leaves
        (
            [entry("up", tarfile.SYMTYPE, "sub/../x"), entry("sub", tarfile.SYMTYPE, ".")],
            "outside the staging directory",
        ),
        # a file written through a directory symlink that leaves the root
        (
            [entry("d", tarfile.DIRTYPE), entry("d/out", tarfile.SYMTYPE, "../.."), entry("d/out/x")],
            "outside the staging directory",
        ),
        ([entry("hard", tarfile.LNKTYPE, "../../etc/passwd")], "'..' would leave the directory"),
        ([entry("dev", tarfile.CHRTYPE)], "refusing a device"),
    ],
)
def test_unsafe_archives_are_refused(tmp_path: Path, entries: list[tarfile.TarInfo], problem: str) -> None:
    archive = tmp_path / "evil.tar.gz"
    sha = evil_tarball(archive, *entries)
    cache = tmp_path / "deep" / "cache"
    with pytest.raises(staging.UnsafeArchive, match=problem) as caught:
        staging.stage(str(cache), archive.as_uri(), sha)
    assert "is refused" in str(caught.value)
    assert dist_entries(cache) == []
    assert sorted(os.listdir(tmp_path)) == ["deep", "evil.tar.gz"]
    assert not Path("/tmp/escaped-absolute").exists()


def test_internal_links_are_kept(tmp_path: Path) -> None:
    archive = tmp_path / "jdk.tar.gz"
    sha = evil_tarball(
        archive,
        entry("jdk/lib/libjvm.so", size=4),
        entry("jdk/lib/current", tarfile.SYMTYPE, "libjvm.so"),
        entry("jdk/bin", tarfile.DIRTYPE),
        entry("jdk/bin/hard", tarfile.LNKTYPE, "jdk/lib/libjvm.so"),
    )
    staged = staging.stage(str(tmp_path / "cache"), archive.as_uri(), sha)
    jdk = Path(staged.directory) / "jdk"
    assert (jdk / "lib" / "current").resolve() == (jdk / "lib" / "libjvm.so").resolve()
    assert (jdk / "bin" / "hard").stat().st_ino == (jdk / "lib" / "libjvm.so").stat().st_ino
    staged.release()


# ---- pruning --------------------------------------------------------------------------------------


def _age(cache: Path, sha: str, seconds: float) -> None:
    marker = cache / "dist" / sha / staging.MARKER
    then = time.time() - seconds
    os.utime(marker, (then, then))


def test_pruning_removes_old_versions_but_never_one_in_use(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    versions = []
    for index in range(4):
        path = tmp_path / f"alluxio-{index}.tar.gz"
        versions.append((path, make_tarball(path, {"VERSION": str(index).encode()})))
    (a_path, a), (b_path, b), (c_path, c), (_, d) = versions

    with processes() as started:
        # A is used by another executor's JVM (its shared lock, held by a live process).
        user = stage_in_process(cache, a_path.as_uri(), a, hold=120)
        started.append(user)
        assert json.loads(user.stdout.readline())["reused"] is False  # type: ignore[union-attr]
        held_b = staging.stage(str(cache), b_path.as_uri(), b)  # B: used by this process
        held_b.release()
        # C: old, unused: goes. An incomplete leftover of D (no marker, no lock holder): goes too.
        staging.stage(str(cache), c_path.as_uri(), c).release()
        (cache / "dist" / d / "alluxio-9.9").mkdir(parents=True)
        for sha in (a, b, c):
            _age(cache, sha, OLD)
        reused_b = staging.stage(str(cache), b_path.as_uri(), b)  # in use again, but reuse never prunes
        assert reused_b.reused
        _age(cache, b, OLD)

        new = tmp_path / "alluxio-new.tar.gz"
        new_sha = make_tarball(new, {"VERSION": b"new"})
        staging.stage(str(cache), new.as_uri(), new_sha).release()
        left = dist_entries(cache)
        assert a in left  # old, but its JVM still runs
        assert a + ".lock" in left
        assert b in left  # old, but held by reused_b
        assert c not in left
        assert c + ".lock" not in left
        assert d not in left
        assert new_sha in left

        reused_b.release()
        os.killpg(user.pid, signal.SIGKILL)
        user.wait(timeout=30)
        removed = staging.prune(str(cache), keep=new_sha)
        assert sorted(removed) == sorted(str(cache / "dist" / s) for s in (a, b))
    assert dist_entries(cache) == [new_sha, new_sha + ".lock"]


def test_a_recently_used_version_is_kept(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    old = tmp_path / "old.tar.gz"
    old_sha = make_tarball(old, {"v": b"1"})
    staging.stage(str(cache), old.as_uri(), old_sha).release()
    _age(cache, old_sha, 6 * 86400)
    assert staging.prune(str(cache), keep="f" * 64) == []
    assert old_sha in dist_entries(cache)


def test_a_shared_lock_blocks_pruning_and_an_exclusive_lock_blocks_using(tmp_path: Path) -> None:
    """The locks are real flocks between processes: check one from outside the module too."""
    cache = tmp_path / "cache"
    path = tmp_path / "a.tar.gz"
    sha = make_tarball(path, {"v": b"1"})
    staged = staging.stage(str(cache), path.as_uri(), sha)
    lock = os.open(cache / "dist" / f"{sha}.lock", os.O_RDWR)
    try:
        with pytest.raises(BlockingIOError):
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        fcntl.flock(lock, fcntl.LOCK_SH | fcntl.LOCK_NB)  # other users may share it
        staged.release()
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    finally:
        os.close(lock)
