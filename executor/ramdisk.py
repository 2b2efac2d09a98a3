"""The worker ramdisk: a tmpfs of an exact size, mounted, checked and unmounted.

This module is the only place in the project that mounts or unmounts the worker's ramdisk.
It replaces the old integration's ``sudo mount -t ramfs`` (no size limit, never unmounted) with a
size-limited tmpfs that is verified after mounting and removed on the way out.

Runs on the agents' stock Python 3.9 with only the standard library; it needs CAP_SYS_ADMIN
(root, or a privileged container) to mount.

Public API::

    ramdisk = mount_ramdisk("/var/lib/alluxio/ramdisk", 64 * 1024 * 1024, uid=1000, gid=1000)
    ramdisk.path, ramdisk.size_bytes           # what was mounted and verified
    verify_ramdisk(path, size_bytes)            # raises RamdiskError if it no longer holds
    find_mount(path)                            # MountInfo of the topmost mount at path, or None
    unmount_ramdisk(path)                       # idempotent; returns True if something was unmounted
    page_aligned(size_bytes)                    # size rounded up to whole pages

Sizes: tmpfs allocates whole pages, so the kernel silently rounds ``size=N`` up to a multiple of
the page size. To keep "exactly N bytes" true, :func:`mount_ramdisk` refuses an N that is not
page-aligned unless ``round_up=True`` is given, in which case it mounts :func:`page_aligned` (N)
and reports that size. Alluxio sizes such as 64MB or 1GB are always page-aligned.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import time
from dataclasses import dataclass
from typing import List, Optional

PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")
MOUNTINFO_PATH = "/proc/self/mountinfo"
RAMDISK_FS_TYPE = "tmpfs"
# Shown as the mount's source in mountinfo/df, so an operator can tell what mounted it.
RAMDISK_SOURCE = "alluxio-ramdisk"
DEFAULT_MODE = 0o755

# mount(2)/umount2(2) flags from <sys/mount.h>. The ramdisk only holds block files, so set-uid
# bits and device nodes on it are never legitimate: refuse them.
_MS_NOSUID = 0x2
_MS_NODEV = 0x4
_MNT_DETACH = 0x2
_PROBE_NAME = ".alluxio-ramdisk-probe"


class RamdiskError(Exception):
    """The ramdisk could not be mounted, verified or unmounted; the message says why."""


@dataclass(frozen=True)
class MountInfo:
    """One line of /proc/self/mountinfo, reduced to what the ramdisk checks need."""

    mount_point: str
    fs_type: str
    source: str
    mount_options: str
    super_options: str


@dataclass(frozen=True)
class Ramdisk:
    """A mounted and verified ramdisk."""

    path: str
    size_bytes: int

    def verify(self) -> None:
        verify_ramdisk(self.path, self.size_bytes)

    def unmount(self) -> bool:
        return unmount_ramdisk(self.path)


def page_aligned(size_bytes: int) -> int:
    """``size_bytes`` rounded up to a whole number of pages, as tmpfs will allocate it."""
    return -(-size_bytes // PAGE_SIZE) * PAGE_SIZE


def _unescape_mountinfo(field: str) -> str:
    # The kernel writes space, tab, newline and backslash in paths as 3-digit octal escapes.
    out: List[str] = []
    i = 0
    while i < len(field):
        if field[i] == "\\" and i + 3 < len(field) and field[i + 1 : i + 4].isdigit():
            out.append(chr(int(field[i + 1 : i + 4], 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def parse_mountinfo(text: str) -> List[MountInfo]:
    """Parse the text of a mountinfo file (see proc(5)) into entries, in kernel order."""
    mounts: List[MountInfo] = []
    for line in text.splitlines():
        fields = line.split(" ")
        try:
            separator = fields.index("-", 6)
        except ValueError:
            continue
        if len(fields) < separator + 3:
            continue
        mounts.append(
            MountInfo(
                mount_point=_unescape_mountinfo(fields[4]),
                mount_options=fields[5],
                fs_type=fields[separator + 1],
                source=_unescape_mountinfo(fields[separator + 2]),
                super_options=fields[separator + 3] if len(fields) > separator + 3 else "",
            )
        )
    return mounts


def _read_mounts() -> List[MountInfo]:
    with open(MOUNTINFO_PATH, encoding="utf-8", errors="surrogateescape") as f:
        return parse_mountinfo(f.read())


def _canonical(path: str) -> str:
    # mountinfo lists mount points with symlinks resolved, so compare like with like.
    return os.path.realpath(os.path.abspath(path))


def find_mount(path: str) -> Optional[MountInfo]:
    """The topmost mount whose mount point is exactly ``path`` (symlinks resolved), or None."""
    target = _canonical(path)
    found: Optional[MountInfo] = None
    for mount in _read_mounts():
        if mount.mount_point == target:
            found = mount  # later lines are stacked on top of earlier ones
    return found


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)


def _errno_text(err: int) -> str:
    hint = ""
    if err == errno.EPERM:
        hint = " (mounting needs CAP_SYS_ADMIN: run the executor as root or in a privileged container)"
    return "%s%s" % (os.strerror(err), hint)


def _mount_tmpfs(target: str, options: str) -> None:
    libc = _libc()
    rc = libc.mount(
        RAMDISK_SOURCE.encode(),
        target.encode(),
        RAMDISK_FS_TYPE.encode(),
        ctypes.c_ulong(_MS_NOSUID | _MS_NODEV),
        options.encode(),
    )
    if rc != 0:
        err = ctypes.get_errno()
        raise RamdiskError(
            "mount -t tmpfs -o %s %s %s failed: %s" % (options, RAMDISK_SOURCE, target, _errno_text(err))
        )


def _umount(target: str, lazy: bool) -> int:
    """umount2(2); returns 0 or the errno."""
    rc = _libc().umount2(target.encode(), _MNT_DETACH if lazy else 0)
    return 0 if rc == 0 else ctypes.get_errno()


def unmount_ramdisk(path: str, timeout_s: float = 5.0) -> bool:
    """Unmount every tmpfs stacked at ``path``. Idempotent: returns False when none was mounted.

    The caller stops the processes that use the ramdisk first; this function kills nothing. If
    the mount is still busy it is detached lazily (``umount -l``): it disappears from the
    namespace at once and the kernel frees it when the last user goes away.

    Raises RamdiskError if something this module did not mount is at ``path`` (a different
    filesystem type, or a tmpfs whose source is not ``alluxio-ramdisk``), or the mount cannot be
    removed.
    """
    target = _canonical(path)
    removed = False
    deadline = time.monotonic() + timeout_s
    while True:
        mount = find_mount(target)
        if mount is None:
            return removed
        if mount.fs_type != RAMDISK_FS_TYPE or mount.source != RAMDISK_SOURCE:
            # Only our own mounts are recognisable by their source; a user's /dev/shm or data
            # disk configured as the ramdisk path by mistake must never be unmounted.
            raise RamdiskError(
                "refusing to unmount %s: it is a %s mount of %r, not a ramdisk this executor "
                "mounted (tmpfs of %r); unmount it yourself or choose another path"
                % (target, mount.fs_type, mount.source, RAMDISK_SOURCE)
            )
        err = _umount(target, lazy=False)
        if err == errno.EBUSY:
            err = _umount(target, lazy=True)
        # EINVAL: no longer a mount point, i.e. someone else unmounted it in the meantime.
        if err not in (0, errno.EINVAL):
            raise RamdiskError("umount %s failed: %s" % (target, _errno_text(err)))
        removed = True
        if time.monotonic() > deadline:
            raise RamdiskError(
                "a tmpfs is still mounted at %s after %.0fs of unmounting" % (target, timeout_s)
            )


def verify_ramdisk(path: str, size_bytes: int) -> None:
    """Check that ``path`` is a tmpfs of exactly ``size_bytes`` that accepts writes.

    Raises RamdiskError naming the first check that fails.
    """
    target = _canonical(path)
    mount = find_mount(target)
    if mount is None:
        raise RamdiskError("no filesystem is mounted at %s (expected a tmpfs ramdisk)" % target)
    if mount.fs_type != RAMDISK_FS_TYPE:
        raise RamdiskError("%s is a %s mount, expected %s" % (target, mount.fs_type, RAMDISK_FS_TYPE))
    st = os.statvfs(target)
    total = st.f_blocks * st.f_frsize
    if total != size_bytes:
        raise RamdiskError(
            "the tmpfs at %s holds %d bytes, expected exactly %d" % (target, total, size_bytes)
        )
    probe = os.path.join(target, _PROBE_NAME)
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            payload = b"alluxio ramdisk probe\n"
            if os.write(fd, payload) != len(payload):
                raise RamdiskError("short write to the probe file %s" % probe)
        finally:
            os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise RamdiskError("the tmpfs at %s is not writable: %s" % (target, e)) from e


def mount_ramdisk(
    path: str,
    size_bytes: int,
    *,
    mode: int = DEFAULT_MODE,
    uid: Optional[int] = None,
    gid: Optional[int] = None,
    round_up: bool = False,
) -> Ramdisk:
    """Mount a tmpfs of exactly ``size_bytes`` at ``path`` and verify it.

    ``path`` is created if missing. A ramdisk already mounted there (left by a crashed run) is
    unmounted first; any other mount there is an error (see :func:`unmount_ramdisk`). ``mode``,
    ``uid`` and ``gid`` set the permissions and owner of the ramdisk's root directory, so an
    unprivileged JVM can write to it. ``size_bytes`` must be a multiple of the page size unless
    ``round_up`` is True (see the module docstring). If verification fails, the new mount is
    removed before the error is raised.
    """
    if isinstance(size_bytes, bool) or not isinstance(size_bytes, int) or size_bytes <= 0:
        raise RamdiskError("size_bytes must be a positive integer number of bytes, got %r" % (size_bytes,))
    if size_bytes % PAGE_SIZE != 0:
        if not round_up:
            raise RamdiskError(
                "size_bytes %d is not a multiple of the page size %d; tmpfs would round it up to %d. "
                "Use a page-aligned size or pass round_up=True"
                % (size_bytes, PAGE_SIZE, page_aligned(size_bytes))
            )
        size_bytes = page_aligned(size_bytes)
    if not 0 <= mode <= 0o7777:
        raise RamdiskError("mode must be a permission mode between 0 and 0o7777, got %r" % (mode,))
    for name, value in (("uid", uid), ("gid", gid)):
        if value is not None and (not isinstance(value, int) or value < 0):
            raise RamdiskError("%s must be a non-negative integer, got %r" % (name, value))

    os.makedirs(path, exist_ok=True)
    target = _canonical(path)
    unmount_ramdisk(target)  # stale mount from a crashed run

    options = ["size=%d" % size_bytes, "mode=%04o" % mode]
    if uid is not None:
        options.append("uid=%d" % uid)
    if gid is not None:
        options.append("gid=%d" % gid)
    _mount_tmpfs(target, ",".join(options))
    try:
        verify_ramdisk(target, size_bytes)
    except BaseException:
        unmount_ramdisk(target)
        raise
    return Ramdisk(path=target, size_bytes=size_bytes)
