"""Class-data sharing (AppCDS) for the server JVMs: one archive per host, java, jars and role.

Loading and verifying Alluxio's ~10,000 classes is most of a server JVM's start-up CPU. A CDS
archive of them, mapped at start, cuts it (measured on 2 cores: master ready 1.46 s -> 0.87 s,
2.2 -> 1.3 CPU-s). An archive is only valid for the JVM build that wrote it and for the exact
classpath (the jars' paths, sizes and mtimes), so it is kept next to the staged distribution,
whose jar paths are the same for every task on the host:

    <cache>/cds/<key>.jsa     key = sha256 of the java binary's real path, its libjvm.so's size
                              and mtime, the jar classpath (each jar's size and mtime too) and
                              the role
    <cache>/cds/<key>.lock    flock: held exclusively by the one executor creating the archive

Nothing of the archive's making is on a start's critical path:

1. The first start on a host only lists the classes it loads (``-XX:DumpLoadedClassList``, free;
   ``-XX:ArchiveClassesAtExit`` instead would cost the start +65% time to ready and +1.4 CPU-s,
   and its dump at exit would hold up every graceful stop by seconds).
2. Once the server has answered for ``BUILD_AFTER_SECS`` (by then its list has settled), the
   executor snapshots the list and runs ``java -Xshare:dump`` on it at SCHED_IDLE priority: a
   one-off ~7 CPU-s that only takes CPU nobody else wants. It needs ~400 MB, so it runs only when
   the host and the executor's memory cgroup have ``BUILD_MEMORY_BYTES`` to spare.
3. A dump that exits 0 with a static archive's magic number is moved into place; anything else
   is deleted. Later starts of that role on the host map the archive (``-XX:SharedArchiveFile``;
   with the default ``-Xshare:auto`` a stale one costs only speed).

``plan_archive()`` decides the start's flags; ``ArchivePlan.build_command()`` and
``build_finished()`` make the archive; ``finish()`` discards what is left and releases the lock.
Only a JRE's ``java`` is needed (no jcmd). Standard library only, Python 3.9.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import logging
import os
import shutil
import time
from typing import Callable, List, Optional, Sequence

LOG = logging.getLogger("executor.cds")

CDS_DIR = "cds"
# The first bytes of a HotSpot static archive (-Xshare:dump): 0xf00baba2, little-endian. A file
# without them (a failed dump) would make -Xshare:auto drop even the JDK's own base archive.
STATIC_ARCHIVE_MAGIC = b"\xa2\xab\x0b\xf0"
PRUNE_AFTER_SECS = 7 * 86400.0
# The class list grows for ~10 s after the server first answers (web server, metrics, the
# first heartbeats); an archive of what start-up and that settling load serves later starts best.
BUILD_AFTER_SECS = 10.0
# Peak RSS of `java -Xshare:dump` over Alluxio 2.9's ~12,000 classes is ~400 MB, whatever -Xmx.
BUILD_MEMORY_BYTES = 512 << 20
BUILD_HEAP = "-Xmx128m"
# Our flags would clash with the operator's own class-data sharing options.
_OPERATOR_CDS_OPTIONS = (
    "-XX:SharedArchiveFile",
    "-XX:ArchiveClassesAtExit",
    "-XX:DumpLoadedClassList",
    "-XX:SharedClassListFile",
    "-Xshare:off",
)


class ArchivePlan:
    """The CDS flags of one JVM start, and how to turn what it listed into the host's archive."""

    def __init__(
        self,
        flags: List[str],
        archive: str,
        *,
        class_list: Optional[str] = None,
        java: str = "",
        jars: Sequence[str] = (),
        lock_fd: Optional[int] = None,
    ) -> None:
        self.flags = flags
        self.archive = archive
        self.class_list = class_list
        self._java = java
        self._jars = list(jars)
        self._lock_fd = lock_fd
        self._dump = None  # type: Optional[str]

    @property
    def uses_archive(self) -> bool:
        return any(f.startswith("-XX:SharedArchiveFile=") for f in self.flags)

    @property
    def wants_build(self) -> bool:
        """This start lists its classes and no build was started from them yet."""
        return self.class_list is not None and self._dump is None and self._lock_fd is not None

    def build_command(self) -> Optional[List[str]]:
        """The ``java -Xshare:dump`` argv over a snapshot of the class list so far, or None (and
        the plan gives up building) when there is no usable list or not enough memory."""
        assert self.class_list is not None
        headroom = memory_headroom_bytes()
        if headroom is not None and headroom < BUILD_MEMORY_BYTES:
            LOG.info(
                "no class-data sharing archive this time: building it needs ~%d MB, only %d MB free",
                BUILD_MEMORY_BYTES >> 20,
                headroom >> 20,
            )
            self.finish()
            return None
        try:
            snapshot = _snapshot_complete_lines(self.class_list)
        except OSError as exc:
            LOG.warning("no class-data sharing archive: cannot read %s: %s", self.class_list, exc)
            self.finish()
            return None
        self._dump = os.path.join(os.path.dirname(self.class_list), os.path.basename(self.archive) + ".dump")
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._dump)
        return [
            self._java,
            BUILD_HEAP,
            "-Xshare:dump",
            "-XX:SharedClassListFile=" + snapshot,
            "-XX:SharedArchiveFile=" + self._dump,
            "-cp",
            os.pathsep.join(self._jars),
        ]

    def build_finished(self, returncode: int) -> Optional[str]:
        """After the build's JVM exited: install its archive if it made one. Returns the archive
        path if it did. Never raises (an archive is an optimisation)."""
        created = None
        try:
            if returncode == 0 and self._dump is not None and _has_magic(self._dump, STATIC_ARCHIVE_MAGIC):
                # The sandbox is cleaned before the archive appears: whoever sees it sees the end.
                _install(self._dump, self.archive, before_rename=self._remove_leftovers)
                created = self.archive
                LOG.info("created the class-data sharing archive %s", self.archive)
                _prune(os.path.dirname(self.archive), keep=self.archive)
            else:
                LOG.warning(
                    "no class-data sharing archive: java -Xshare:dump ended with status %d", returncode
                )
        except OSError as exc:
            LOG.warning("could not keep the class-data sharing archive %s: %s", self.archive, exc)
        finally:
            self.finish()
        return created

    def finish(self) -> None:
        """Delete the build's leftovers and release the lock. Idempotent; never raises.
        (The JVM may still append to the unlinked class list; that costs nothing.)"""
        self._remove_leftovers()
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def _remove_leftovers(self) -> None:
        leftovers = [self._dump]
        if self.class_list is not None:
            leftovers += [self.class_list, self.class_list + ".snapshot"]
        for path in leftovers:
            if path:
                with contextlib.suppress(OSError):
                    os.unlink(path)


def _snapshot_complete_lines(class_list: str) -> str:
    """Copy the complete lines the JVM has written so far (it is still appending)."""
    with open(class_list, "rb") as handle:
        data = handle.read()
    snapshot = class_list + ".snapshot"
    with open(snapshot, "wb") as handle:
        handle.write(data[: data.rfind(b"\n") + 1])
    return snapshot


def memory_headroom_bytes() -> Optional[int]:
    """How much memory a new child of this process may use: the host's MemAvailable, bounded by
    every memory limit of this process's cgroup and its ancestors (v2 or v1). None if unknown."""
    candidates = []
    available = _meminfo_available()
    if available is not None:
        candidates.append(available)
    for limit_file, usage_file in _cgroup_memory_files():
        limit, usage = _read_int(limit_file), _read_int(usage_file)
        if limit is not None and usage is not None:
            candidates.append(max(0, limit - usage))
    return min(candidates) if candidates else None


def _meminfo_available() -> Optional[int]:
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _cgroup_memory_files(proc_cgroup: str = "/proc/self/cgroup", root: str = "/sys/fs/cgroup") -> List[tuple]:
    """(limit file, usage file) for this process's cgroup and each ancestor that has them."""
    pairs = []
    try:
        with open(proc_cgroup, encoding="utf-8") as handle:
            lines = handle.read().splitlines()
    except OSError:
        return pairs
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        controllers, path = parts[1].split(","), parts[2]
        if parts[0] == "0" and parts[1] == "":
            base, names = root, ("memory.max", "memory.current")
        elif "memory" in controllers:
            base, names = os.path.join(root, "memory"), ("memory.limit_in_bytes", "memory.usage_in_bytes")
        else:
            continue
        directory = os.path.normpath(os.path.join(base, path.lstrip("/")))
        while directory.startswith(base):
            limit, usage = (os.path.join(directory, n) for n in names)
            if os.path.isfile(limit) and os.path.isfile(usage):
                pairs.append((limit, usage))
            if directory == base:
                break
            directory = os.path.dirname(directory)
    return pairs


def _read_int(path: str) -> Optional[int]:
    """An integer file such as memory.max; None for 'max', unlimited or unreadable."""
    try:
        with open(path, encoding="ascii") as handle:
            value = int(handle.read().strip())
    except (OSError, ValueError):
        return None
    # cgroup v1 reports "no limit" as a huge page-aligned number.
    return value if value < (1 << 60) else None


def archive_key(java: str, jars: Sequence[str], role: str) -> str:
    """What an archive is bound to: the JVM build and the exact jars, in order (and the role,
    whose classes differ)."""
    real_java = os.path.realpath(java)
    digest = hashlib.sha256()
    digest.update(("java=%s\n" % real_java).encode("utf-8"))
    libjvm = os.path.join(os.path.dirname(os.path.dirname(real_java)), "lib", "server", "libjvm.so")
    identity = libjvm if os.path.isfile(libjvm) else real_java
    st = os.stat(identity)
    digest.update(("jvm=%s %d %d\n" % (identity, st.st_size, st.st_mtime_ns)).encode("utf-8"))
    for jar in jars:
        st = os.stat(jar)
        digest.update(("jar=%s %d %d\n" % (jar, st.st_size, st.st_mtime_ns)).encode("utf-8"))
    digest.update(("role=%s\n" % role).encode("utf-8"))
    return digest.hexdigest()


def plan_archive(
    cache_dir: str,
    java: str,
    jars: Sequence[str],
    role: str,
    *,
    dump_dir: str,
    jvm_options: Sequence[str] = (),
) -> Optional[ArchivePlan]:
    """The CDS flags for a server JVM, or None when the operator manages class-data sharing
    (their own options) or the cache cannot be used (then the JVM simply starts without CDS)."""
    if any(o.startswith(_OPERATOR_CDS_OPTIONS) for o in jvm_options):
        return None
    directory = os.path.join(cache_dir, CDS_DIR)
    try:
        if not os.path.isdir(directory):
            os.makedirs(directory, 0o755, exist_ok=True)
            os.chmod(directory, 0o755)
        key = archive_key(java, jars, role)
    except OSError as exc:
        LOG.warning("class-data sharing disabled for this start: %s", exc)
        return None
    archive = os.path.join(directory, key + ".jsa")
    if os.path.isfile(archive):
        with contextlib.suppress(OSError):
            os.utime(archive)  # the last use, for pruning
        return ArchivePlan(["-XX:SharedArchiveFile=" + archive], archive)
    fd = os.open(os.path.join(directory, key + ".lock"), os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        os.close(fd)
        if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
            raise
        LOG.info("another executor is creating the class-data sharing archive %s", archive)
        return ArchivePlan([], archive)
    if os.path.isfile(archive):  # created between our check and the lock
        os.close(fd)
        return ArchivePlan(["-XX:SharedArchiveFile=" + archive], archive)
    class_list = os.path.join(dump_dir, "cds-%s-%s.classlist" % (role, key[:16]))
    with contextlib.suppress(FileNotFoundError):
        os.unlink(class_list)
    return ArchivePlan(
        ["-XX:DumpLoadedClassList=" + class_list],
        archive,
        class_list=class_list,
        java=java,
        jars=jars,
        lock_fd=fd,
    )


def _has_magic(path: str, magic: bytes) -> bool:
    with open(path, "rb") as handle:
        return handle.read(len(magic)) == magic


def _install(dump: str, archive: str, before_rename: Callable[[], None]) -> None:
    # The dump is in the task's sandbox, maybe on another filesystem: copy beside, then rename.
    temp = "%s.tmp-%d" % (archive, os.getpid())
    try:
        shutil.copyfile(dump, temp)
        os.chmod(temp, 0o644)
        before_rename()
        os.rename(temp, archive)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise


def _prune(directory: str, keep: str, max_age_secs: float = PRUNE_AFTER_SECS) -> None:
    """Remove archives (and leftovers) unused for a week: their JDK or jars are likely gone.
    A JVM that maps one keeps its pages even if the file is removed."""
    now = time.time()
    for name in os.listdir(directory):
        path = os.path.join(directory, name)
        if path == keep or not (name.endswith((".jsa", ".lock")) or ".jsa.tmp-" in name):
            continue
        with contextlib.suppress(OSError):
            if now - os.stat(path).st_mtime > max_age_secs:
                os.unlink(path)
                LOG.info("pruned the class-data sharing archive %s (unused for a week)", path)
