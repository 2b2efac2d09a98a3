"""Class-data sharing (AppCDS) for the server JVMs: one archive per host, java, jars and role.

Loading and verifying Alluxio's ~10,000 classes is most of a server JVM's start-up CPU. A dynamic
CDS archive of them, mapped at start, halves it (measured on 2 cores: worker 4.1 -> 2.0 CPU-s,
master 6.0 -> 2.6). An archive is only valid for the JVM build that wrote it and for the exact
classpath (the jars' paths, sizes and mtimes), so it is kept next to the staged distribution,
whose jar paths are the same for every task on the host:

    <cache>/cds/<key>.jsa     key = sha256 of the java binary's real path, its libjvm.so's size
                              and mtime, the jar classpath (each jar's size and mtime too) and
                              the role
    <cache>/cds/<key>.lock    flock: held exclusively by the one executor creating the archive

``plan_archive()`` returns the JVM flags: ``-XX:SharedArchiveFile`` when the archive exists (with
the default ``-Xshare:auto`` a stale or mismatched one costs only speed), else, if no other
executor is creating it, ``-XX:ArchiveClassesAtExit`` into the task's own tmp dir (the JVM runs
unprivileged and cannot write the cache). ``finish()`` moves the dump into place only after a
graceful stop; a JVM that was SIGKILLed, or died on its own, may have left a partial file, which
is deleted. Only a JRE's ``java`` is needed (no jcmd).

Standard library only, Python 3.9.
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
from typing import List, Optional, Sequence

LOG = logging.getLogger("executor.cds")

CDS_DIR = "cds"
# The first bytes of a HotSpot dynamic (top) archive: 0xf00baba8, little-endian. A file without
# them (a failed dump) would make -Xshare:auto drop even the JDK's own base archive.
DYNAMIC_ARCHIVE_MAGIC = b"\xa8\xab\x0b\xf0"
PRUNE_AFTER_SECS = 7 * 86400.0
# Our flags would clash with the operator's own class-data sharing options.
_OPERATOR_CDS_OPTIONS = ("-XX:SharedArchiveFile", "-XX:ArchiveClassesAtExit", "-Xshare:off")


class ArchivePlan:
    """The CDS flags of one JVM start, and what to do with a dump once the JVM is gone."""

    def __init__(
        self,
        flags: List[str],
        archive: str,
        dump: Optional[str] = None,
        lock_fd: Optional[int] = None,
    ) -> None:
        self.flags = flags
        self.archive = archive
        self.dump = dump
        self._lock_fd = lock_fd

    @property
    def uses_archive(self) -> bool:
        return any(f.startswith("-XX:SharedArchiveFile=") for f in self.flags)

    def finish(self, graceful: bool) -> Optional[str]:
        """After the JVM exited: keep its dump as the archive if it stopped gracefully.
        Returns the archive path if one was created. Never raises (an archive is an optimisation)."""
        created = None
        try:
            if self.dump is not None and os.path.isfile(self.dump):
                if graceful and _is_dynamic_archive(self.dump):
                    _install(self.dump, self.archive)
                    created = self.archive
                    LOG.info("created the class-data sharing archive %s", self.archive)
                    _prune(os.path.dirname(self.archive), keep=self.archive)
                elif graceful:
                    LOG.warning("discarded %s: not a dynamic class-data sharing archive", self.dump)
                else:
                    LOG.info("discarded the class-data sharing dump of a JVM that did not stop gracefully")
        except OSError as exc:
            LOG.warning("could not keep the class-data sharing archive %s: %s", self.archive, exc)
        finally:
            if self.dump is not None:
                with contextlib.suppress(OSError):
                    os.unlink(self.dump)
            self.release()
        return created

    def release(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None


def archive_key(java: str, jars: Sequence[str], role: str) -> str:
    """What a dynamic archive is bound to: the JVM build and the exact jars, in order."""
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
    dump = os.path.join(dump_dir, "cds-%s-%s.jsa" % (role, key[:16]))
    with contextlib.suppress(FileNotFoundError):
        os.unlink(dump)
    return ArchivePlan(["-XX:ArchiveClassesAtExit=" + dump], archive, dump=dump, lock_fd=fd)


def _is_dynamic_archive(path: str) -> bool:
    with open(path, "rb") as handle:
        return handle.read(len(DYNAMIC_ARCHIVE_MAGIC)) == DYNAMIC_ARCHIVE_MAGIC


def _install(dump: str, archive: str) -> None:
    # The dump is in the task's sandbox, maybe on another filesystem: copy beside, then rename.
    temp = "%s.tmp-%d" % (archive, os.getpid())
    try:
        shutil.copyfile(dump, temp)
        os.chmod(temp, 0o644)
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
