"""Stage a distribution tarball (Alluxio, a JDK) once per host, keyed by its sha256.

Instead of every task's fetcher downloading and unpacking the 170 MB Alluxio tarball into its own
sandbox, the executor unpacks it once into a cache directory shared by every executor on the host:

    <cache>/dist/<sha256>/                    the unpacked tarball; complete iff it holds MARKER
    <cache>/dist/<sha256>.lock                flock: exclusive while staging or pruning it,
                                              shared while a task uses it
    <cache>/dist/.tmp-<sha256>-<pid>-<hex>/   being staged (left only by a crashed executor)

``stage()`` takes the exclusive lock (other executors staging the same sha wait on it and then
reuse the result), downloads the URL (http, https, file or an absolute path) and unpacks it while
hashing the stream, into a temporary directory beside the target. Only when the whole download
has the expected sha256 and every member stayed inside the directory does it write MARKER and
rename the directory into place, so a crash at any point leaves either nothing or a temporary
directory that the next ``stage()`` of that sha removes. The caller keeps the returned
distribution's shared lock while its JVM runs; ``prune()`` removes other versions unused for a
week, and only those whose lock it can take exclusively without waiting.

Files are created by the executor (root on real agents) and are readable by everyone: directories
0755, files 0644 or 0755, so the JVM's unprivileged user can use them.

Standard library only, Python 3.9.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import logging
import os
import re
import shutil
import stat
import tarfile
import time
import urllib.parse
import urllib.request
from typing import Any, Callable, List, Optional

LOG = logging.getLogger("executor.staging")

DIST_DIR = "dist"
MARKER = ".alluxio-mesos-staged"
TEMP_PREFIX = ".tmp-"
PRUNE_AFTER_SECS = 7 * 86400.0
DOWNLOAD_TIMEOUT_SECS = 60.0
_CHUNK = 1 << 20
_LOCK_POLL_SECS = 0.1
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_SCHEMES = ("http", "https", "file")

Abort = Callable[[], None]


class StagingError(RuntimeError):
    """The distribution could not be staged; the message names the URL and what is wrong."""


class UnsafeArchive(StagingError):
    """A member would land outside the staging directory, or is of a refused type."""


class StagedDistribution:
    """A complete staged directory, held in use (shared flock) until ``release()``."""

    def __init__(self, directory: str, sha256: str, lock_fd: int, reused: bool, seconds: float) -> None:
        self.directory = directory
        self.sha256 = sha256
        self.reused = reused
        self.seconds = seconds
        self._lock_fd = lock_fd  # type: Optional[int]

    @property
    def held(self) -> bool:
        return self._lock_fd is not None

    def release(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None


def can_stage(url: str) -> bool:
    """True for the URLs ``stage()`` can download (http, https, file, an absolute path)."""
    return url.startswith("/") or urllib.parse.urlparse(url).scheme in _SCHEMES


def dist_root(cache_dir: str) -> str:
    return os.path.join(cache_dir, DIST_DIR)


def stage(
    cache_dir: str,
    url: str,
    sha256: str,
    *,
    what: str = "distribution",
    abort: Optional[Abort] = None,
    prune_after_secs: float = PRUNE_AFTER_SECS,
) -> StagedDistribution:
    """The staged directory of the tarball at ``url`` with ``sha256``, staging it if needed.

    Raises StagingError (nothing left behind) if the download fails, its digest differs or the
    archive is unsafe; whatever ``abort`` raises (checked while waiting and while unpacking)
    propagates after the temporary directory is removed.
    """
    if not _SHA256.match(sha256):
        raise StagingError("%s: sha256 %r is not 64 lowercase hex digits" % (what, sha256))
    if not can_stage(url):
        raise StagingError("%s: cannot download %s (only http, https, file and absolute paths)" % (what, url))
    started = time.monotonic()
    root = dist_root(cache_dir)
    try:
        _make_dirs(root)
    except OSError as exc:
        raise StagingError("%s: cannot create the cache directory %s: %s" % (what, root, exc)) from None
    target = os.path.join(root, sha256)
    lock_path = target + ".lock"

    def waiting() -> None:
        LOG.info("%s %s: another executor is staging it; waiting for %s", what, sha256[:12], lock_path)

    marker = os.path.join(target, MARKER)
    while True:
        # Shared first: executors whose JVMs use this version hold it shared, and a complete
        # directory needs nothing more. Only staging it needs the lock exclusively.
        fd = _lock(lock_path, fcntl.LOCK_SH, abort=abort, on_wait=waiting)
        assert fd is not None
        reused = True
        try:
            if not os.path.isfile(marker):
                # flock converts by releasing first, so two executors converting at once cannot
                # deadlock; one stages, then keeps the version shared while its JVM runs. The
                # other stops waiting for the exclusive lock when the marker appears.
                if not _flock(
                    fd, fcntl.LOCK_EX, abort=abort, on_wait=waiting, give_up=lambda: os.path.isfile(marker)
                ):
                    _flock(fd, fcntl.LOCK_SH, abort=abort, on_wait=waiting)
                    os.utime(marker)
                    break
                if not _is_file_at(fd, lock_path):
                    os.close(fd)  # a failed staging removed that lock file meanwhile: start over
                    continue
                if not os.path.isfile(marker):
                    reused = False
                    _remove_temporaries(root, sha256)
                    if os.path.lexists(target):
                        LOG.warning(
                            "%s %s: removing the incomplete %s (no %s)", what, sha256[:12], target, MARKER
                        )
                        _remove_tree(target)
                    _stage_into(root, target, url, sha256, what=what, abort=abort)
                fcntl.flock(fd, fcntl.LOCK_SH)
            os.utime(marker)  # the last use, for prune()
        except BaseException:
            if not os.path.isdir(target) and _holds_exclusive(fd):
                _unlink_quietly(lock_path)  # nothing is left of this sha, not even its lock file
            os.close(fd)
            raise
        break
    seconds = time.monotonic() - started
    if reused:
        LOG.info("%s %s: reused the staged %s (%.2f s)", what, sha256[:12], target, seconds)
    else:
        LOG.info("%s %s: staged %s into %s in %.2f s", what, sha256[:12], url, target, seconds)
        try:
            removed = prune(cache_dir, keep=sha256, max_age_secs=prune_after_secs)
        except OSError as exc:  # pruning is housekeeping: never fail a task over it
            LOG.warning("pruning %s failed: %s", root, exc)
        else:
            for path in removed:
                LOG.info("pruned %s (unused for more than %.0f days)", path, prune_after_secs / 86400)
    return StagedDistribution(target, sha256, fd, reused, seconds)


def prune(cache_dir: str, keep: str, max_age_secs: float = PRUNE_AFTER_SECS) -> List[str]:
    """Remove staged versions other than ``keep`` whose last use is older than ``max_age_secs``
    (incomplete ones at once), skipping any whose lock another executor holds. Returns them."""
    root = dist_root(cache_dir)
    removed = []  # type: List[str]
    now = time.time()
    try:
        names = sorted(os.listdir(root))
    except FileNotFoundError:
        return removed
    shas = {n[: -len(".lock")] if n.endswith(".lock") else n for n in names if not n.startswith(TEMP_PREFIX)}
    for sha in sorted(s for s in shas if _SHA256.match(s) and s != keep):
        target = os.path.join(root, sha)
        lock_path = target + ".lock"
        fd = _lock(lock_path, fcntl.LOCK_EX, blocking=False)
        if fd is None:
            continue  # in use (or being staged) by another executor
        try:
            marker = os.path.join(target, MARKER)
            try:
                age = now - os.stat(marker).st_mtime
            except FileNotFoundError:
                age = float("inf")  # incomplete, or only a lock file left
            if age <= max_age_secs:
                continue
            if os.path.lexists(target):
                _remove_tree(target)
                removed.append(target)
            _remove_temporaries(root, sha)
            _unlink_quietly(lock_path)
        finally:
            os.close(fd)
    return removed


# ---- locking ------------------------------------------------------------------------------------


def _lock(
    path: str,
    mode: int,
    blocking: bool = True,
    abort: Optional[Abort] = None,
    on_wait: Optional[Callable[[], None]] = None,
) -> Optional[int]:
    """An fd holding ``flock(mode)`` on ``path``; None if not blocking and someone else holds it.

    Lock files are removed by whoever holds them exclusively, so after locking, the file must
    still be the one at ``path``; if not, the lock is on a removed file and we start over.
    """
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            if not _flock(fd, mode, blocking=blocking, abort=abort, on_wait=on_wait):
                os.close(fd)
                return None
            if _is_file_at(fd, path):
                return fd
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)


def _flock(
    fd: int,
    mode: int,
    *,
    blocking: bool = True,
    abort: Optional[Abort] = None,
    on_wait: Optional[Callable[[], None]] = None,
    give_up: Optional[Callable[[], bool]] = None,
) -> bool:
    """flock, polled so that ``abort`` (a kill) is noticed while another executor holds it.
    False when not blocking and it is held, or when ``give_up()`` says waiting is pointless.
    A failed conversion leaves the fd without any lock (flock releases before converting)."""
    waited = False
    while True:
        try:
            fcntl.flock(fd, mode | fcntl.LOCK_NB)
            return True
        except OSError as exc:
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise
        if not blocking or (give_up is not None and give_up()):
            return False
        if not waited and on_wait is not None:
            on_wait()
        waited = True
        if abort is not None:
            abort()
        time.sleep(_LOCK_POLL_SECS)


def _is_file_at(fd: int, path: str) -> bool:
    mine = os.fstat(fd)
    try:
        current = os.stat(path)
    except FileNotFoundError:
        return False
    return (current.st_dev, current.st_ino) == (mine.st_dev, mine.st_ino)


def _holds_exclusive(fd: int) -> bool:
    """Whether this fd's flock is exclusive: converting to exclusive again succeeds at once only
    if no one else holds it, which is what removing the lock file needs."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        return False
    return True


# ---- download and unpack ------------------------------------------------------------------------


class _HashingReader:
    """A file-like reader that hashes and counts what passes through it."""

    def __init__(self, raw: Any, abort: Optional[Abort]) -> None:
        self._raw = raw
        self._abort = abort
        self.digest = hashlib.sha256()
        self.size = 0

    def read(self, size: int = -1) -> bytes:
        if self._abort is not None:
            self._abort()
        data = self._raw.read(size if size is not None and size >= 0 else _CHUNK)
        self.digest.update(data)
        self.size += len(data)
        return bytes(data)

    def drain(self) -> None:
        while self.read(_CHUNK):
            pass


def _open_url(url: str) -> Any:
    if url.startswith("/"):
        return open(url, "rb")
    return urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT_SECS)


def _stage_into(root: str, target: str, url: str, sha256: str, *, what: str, abort: Optional[Abort]) -> None:
    temp = os.path.join(root, "%s%s-%d-%s" % (TEMP_PREFIX, sha256, os.getpid(), os.urandom(4).hex()))
    os.mkdir(temp, 0o755)
    os.chmod(temp, 0o755)
    try:
        LOG.info("%s %s: downloading and unpacking %s", what, sha256[:12], url)
        size = _download_and_unpack(url, sha256, temp, what, abort)
        with open(os.path.join(temp, MARKER), "w", encoding="utf-8") as handle:
            json.dump({"url": url, "sha256": sha256, "bytes": size, "staged_at": time.time()}, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(os.path.join(temp, MARKER), 0o644)
        os.rename(temp, target)
        _fsync_dir(root)
    except BaseException:
        _remove_tree(temp)
        raise


def _download_and_unpack(url: str, sha256: str, temp: str, what: str, abort: Optional[Abort]) -> int:
    try:
        raw = _open_url(url)
    except (OSError, ValueError) as exc:
        raise StagingError("%s: cannot download %s: %s" % (what, url, exc)) from None
    with raw:
        reader = _HashingReader(raw, abort)
        problem = None  # type: Optional[Exception]
        try:
            # "r|*": one pass over the stream (gzip, bzip2, xz or none), unpacked while it arrives.
            with tarfile.open(fileobj=reader, mode="r|*") as archive:  # type: ignore[call-overload]
                _unpack(archive, temp, abort)
            reader.drain()  # the compressor's trailer and padding count towards the digest too
        except (tarfile.TarError, EOFError, OSError, UnsafeArchive, ValueError) as exc:
            problem = exc
            with contextlib.suppress(OSError, ValueError):
                reader.drain()
        actual = reader.digest.hexdigest()
        if actual != sha256:
            raise StagingError(
                "%s from %s has sha256 %s but the plan expects %s (%d bytes read); nothing was "
                "staged and nothing started" % (what, url, actual, sha256, reader.size)
            )
        if isinstance(problem, UnsafeArchive):
            raise UnsafeArchive("%s from %s is refused: %s" % (what, url, problem))
        if problem is not None:
            raise StagingError("%s from %s cannot be unpacked: %s" % (what, url, problem))
        try:
            _check_links(temp)
        except UnsafeArchive as exc:
            raise UnsafeArchive("%s from %s is refused: %s" % (what, url, exc)) from None
        return reader.size


def _unpack(archive: tarfile.TarFile, root: str, abort: Optional[Abort]) -> None:
    real_root = os.path.realpath(root)
    for member in archive:
        if abort is not None:
            abort()
        rel = _member_path(member.name)
        if rel is None:
            continue  # the archive's own top directory entry ("./")
        dest = os.path.join(real_root, rel)
        parent = os.path.dirname(dest)
        _require_inside(real_root, os.path.realpath(parent), member.name)
        _make_dirs(parent, stop_at=real_root)
        if member.isdir():
            if os.path.islink(dest) or (os.path.lexists(dest) and not os.path.isdir(dest)):
                raise UnsafeArchive("member %r: a directory over an existing non-directory" % member.name)
            _make_dirs(dest, stop_at=real_root)
            os.chmod(dest, 0o755)
            continue
        if os.path.isdir(dest) and not os.path.islink(dest):
            raise UnsafeArchive("member %r: would replace a directory" % member.name)
        if os.path.lexists(dest):
            os.unlink(dest)
        if member.isfile():
            source = archive.extractfile(member)
            assert source is not None
            mode = 0o755 if member.mode & 0o111 else 0o644
            fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
            with os.fdopen(fd, "wb") as out:
                os.fchmod(out.fileno(), mode)  # not narrowed by the umask
                shutil.copyfileobj(source, out, _CHUNK)
        elif member.issym():
            link = member.linkname
            if link.startswith("/") or "\x00" in link:
                raise UnsafeArchive("member %r: absolute symlink to %r" % (member.name, link))
            _require_inside(real_root, os.path.realpath(os.path.join(parent, link)), member.name)
            os.symlink(link, dest)
        elif member.islnk():
            source_rel = _member_path(member.linkname)
            if source_rel is None:
                raise UnsafeArchive("member %r: hard link to %r" % (member.name, member.linkname))
            source_path = os.path.join(real_root, source_rel)
            _require_inside(real_root, os.path.realpath(os.path.dirname(source_path)), member.name)
            if not os.path.lexists(source_path):
                raise UnsafeArchive("member %r: hard link to missing %r" % (member.name, member.linkname))
            os.link(source_path, dest, follow_symlinks=False)
        else:
            raise UnsafeArchive("member %r: refusing a device, fifo or other special file" % member.name)


def _member_path(name: str) -> Optional[str]:
    """The member's path relative to the staging directory; refuses absolute paths and '..'."""
    if name.startswith("/") or "\x00" in name:
        raise UnsafeArchive("member %r: absolute path" % name)
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise UnsafeArchive("member %r: '..' would leave the directory" % name)
    return "/".join(parts) if parts else None


def _require_inside(root: str, path: str, member: str) -> None:
    if path != root and not path.startswith(root + os.sep):
        raise UnsafeArchive("member %r: resolves to %s, outside the staging directory" % (member, path))


def _check_links(root: str) -> None:
    """Every symlink, as the tree finally stands (a later link can redirect an earlier one),
    resolves inside the directory."""
    real_root = os.path.realpath(root)
    for directory, dirs, files in os.walk(real_root):
        for name in dirs + files:
            path = os.path.join(directory, name)
            if os.path.islink(path):
                _require_inside(real_root, os.path.realpath(path), os.path.relpath(path, real_root))


# ---- files --------------------------------------------------------------------------------------


def _make_dirs(path: str, stop_at: str = "/") -> None:
    """mkdir -p with every created directory 0755 whatever the umask (the JVM's user enters them)."""
    missing = []
    current = path
    while not os.path.isdir(current) and current not in (stop_at, os.path.dirname(current)):
        missing.append(current)
        current = os.path.dirname(current)
    for directory in reversed(missing):
        try:
            os.mkdir(directory, 0o755)
        except FileExistsError:
            if not os.path.isdir(directory):
                raise
            continue
        os.chmod(directory, 0o755)


def _remove_tree(path: str) -> None:
    if os.path.islink(path) or not os.path.isdir(path):
        _unlink_quietly(path)
        return

    def onerror(function: Any, failed: str, info: Any) -> None:
        # A read-only directory inside (an archive can ship one): make it writable and retry.
        if function in (os.unlink, os.rmdir) and os.path.isdir(os.path.dirname(failed)):
            os.chmod(os.path.dirname(failed), stat.S_IRWXU)
            function(failed)
        else:
            raise info[1]

    shutil.rmtree(path, onerror=onerror)


def _remove_temporaries(root: str, sha256: str) -> None:
    prefix = "%s%s-" % (TEMP_PREFIX, sha256)
    for name in os.listdir(root):
        if name.startswith(prefix):
            LOG.warning("removing %s, left by a crashed staging", os.path.join(root, name))
            _remove_tree(os.path.join(root, name))


def _unlink_quietly(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
