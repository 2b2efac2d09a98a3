"""executor/ramdisk.py against real tmpfs mounts (needs root, like the executor itself)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from executor import ramdisk

MB = 1024 * 1024


def _mount_lines(path: Path) -> list[ramdisk.MountInfo]:
    text = Path("/proc/self/mountinfo").read_text()
    return [m for m in ramdisk.parse_mountinfo(text) if m.mount_point == os.path.realpath(path)]


def _raw_mount(path: Path, source: str, size: str) -> None:
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", source, str(path)], check=True)


@pytest.fixture
def mount_dir(tmp_path: Path) -> Iterator[Path]:
    """A mount point; every mount stacked on it is removed afterwards, whoever made it."""
    if os.geteuid() != 0:
        pytest.fail("ramdisk tests mount tmpfs and must run as root")
    path = tmp_path / "ramdisk"
    path.mkdir()
    try:
        yield path
    finally:
        while _mount_lines(path):
            subprocess.run(["umount", "-l", str(path)], check=False)


def test_mounts_a_tmpfs_of_exactly_the_size_with_owner_and_mode(mount_dir: Path) -> None:
    mounted = ramdisk.mount_ramdisk(str(mount_dir), 64 * MB, mode=0o750, uid=1234, gid=2345)

    assert mounted == ramdisk.Ramdisk(path=str(mount_dir), size_bytes=64 * MB)
    [info] = _mount_lines(mount_dir)
    assert info.fs_type == "tmpfs"
    assert info.source == ramdisk.RAMDISK_SOURCE
    assert {"nosuid", "nodev"} <= set(info.mount_options.split(","))
    st = os.statvfs(mount_dir)
    assert st.f_blocks * st.f_frsize == 64 * MB
    root = mount_dir.stat()
    assert (root.st_uid, root.st_gid, root.st_mode & 0o7777) == (1234, 2345, 0o750)
    assert list(mount_dir.iterdir()) == []  # the write probe was removed


def test_replaces_stale_ramdisks_stacked_at_the_path(mount_dir: Path) -> None:
    # Two leftovers of crashed runs, one on top of the other.
    _raw_mount(mount_dir, ramdisk.RAMDISK_SOURCE, "8m")
    _raw_mount(mount_dir, ramdisk.RAMDISK_SOURCE, "16m")
    (mount_dir / "old-block").write_bytes(b"x")

    ramdisk.mount_ramdisk(str(mount_dir), 32 * MB)

    assert len(_mount_lines(mount_dir)) == 1
    st = os.statvfs(mount_dir)
    assert st.f_blocks * st.f_frsize == 32 * MB
    assert not (mount_dir / "old-block").exists()


def test_never_unmounts_a_tmpfs_it_did_not_mount(mount_dir: Path) -> None:
    _raw_mount(mount_dir, "somebody-elses", "8m")

    with pytest.raises(ramdisk.RamdiskError, match=r"refusing to unmount .*'somebody-elses'"):
        ramdisk.mount_ramdisk(str(mount_dir), 8 * MB)
    with pytest.raises(ramdisk.RamdiskError, match="refusing to unmount"):
        ramdisk.unmount_ramdisk(str(mount_dir))
    assert [m.source for m in _mount_lines(mount_dir)] == ["somebody-elses"]


def test_size_must_be_page_aligned_unless_rounding_up(mount_dir: Path) -> None:
    odd = 10 * MB + 1
    with pytest.raises(ramdisk.RamdiskError, match="not a multiple of the page size"):
        ramdisk.mount_ramdisk(str(mount_dir), odd)
    assert _mount_lines(mount_dir) == []

    mounted = ramdisk.mount_ramdisk(str(mount_dir), odd, round_up=True)

    assert mounted.size_bytes == ramdisk.page_aligned(odd) == 10 * MB + ramdisk.PAGE_SIZE
    st = os.statvfs(mount_dir)
    assert st.f_blocks * st.f_frsize == mounted.size_bytes


@pytest.mark.parametrize("size", [0, -4096, 1.5, True, "64MB"])
def test_rejects_sizes_that_are_not_positive_integers(mount_dir: Path, size: object) -> None:
    with pytest.raises(ramdisk.RamdiskError, match="size_bytes must be a positive integer"):
        ramdisk.mount_ramdisk(str(mount_dir), size)  # type: ignore[arg-type]
    assert _mount_lines(mount_dir) == []


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"mode": 0o10000}, "mode must be"), ({"uid": -1}, "uid must be"), ({"gid": "root"}, "gid must be")],
)
def test_rejects_bad_owner_and_mode(mount_dir: Path, kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ramdisk.RamdiskError, match=message):
        ramdisk.mount_ramdisk(str(mount_dir), 4 * MB, **kwargs)  # type: ignore[arg-type]
    assert _mount_lines(mount_dir) == []


def test_unmount_is_idempotent(mount_dir: Path) -> None:
    ramdisk.mount_ramdisk(str(mount_dir), 4 * MB)

    assert ramdisk.unmount_ramdisk(str(mount_dir)) is True
    assert ramdisk.unmount_ramdisk(str(mount_dir)) is False
    assert _mount_lines(mount_dir) == []
    assert ramdisk.find_mount(str(mount_dir)) is None


def test_busy_ramdisk_is_detached_lazily(mount_dir: Path) -> None:
    ramdisk.mount_ramdisk(str(mount_dir), 4 * MB)
    holder = subprocess.Popen(["sleep", "60"], cwd=mount_dir)  # keeps the mount busy
    try:
        assert ramdisk.unmount_ramdisk(str(mount_dir)) is True
        assert _mount_lines(mount_dir) == []
    finally:
        holder.kill()
        holder.wait()


def test_verify_names_what_is_wrong(mount_dir: Path) -> None:
    with pytest.raises(ramdisk.RamdiskError, match=f"no filesystem is mounted at {mount_dir}"):
        ramdisk.verify_ramdisk(str(mount_dir), 4 * MB)

    mounted = ramdisk.mount_ramdisk(str(mount_dir), 4 * MB)
    mounted.verify()
    with pytest.raises(ramdisk.RamdiskError, match=r"holds 4194304 bytes, expected exactly 8388608"):
        ramdisk.verify_ramdisk(str(mount_dir), 8 * MB)
    assert mounted.unmount() is True


def test_a_symlinked_path_is_resolved_to_the_real_mount_point(mount_dir: Path, tmp_path: Path) -> None:
    link = tmp_path / "link"
    link.symlink_to(mount_dir)

    mounted = ramdisk.mount_ramdisk(str(link), 4 * MB)

    assert mounted.path == str(mount_dir)
    assert ramdisk.find_mount(str(link)) == ramdisk.find_mount(str(mount_dir))
    assert ramdisk.unmount_ramdisk(str(link)) is True


def test_parse_mountinfo_unescapes_paths_and_handles_optional_fields() -> None:
    text = (
        "36 35 98:0 / /mnt/with\\040space rw,noatime master:1 shared:2 "
        "- tmpfs alluxio-ramdisk rw,size=4096k\n"
        "37 35 0:22 / /plain rw - ext4 /dev/sda1 rw\n"
        "garbage line\n"
    )
    first, second = ramdisk.parse_mountinfo(text)
    assert first == ramdisk.MountInfo(
        mount_point="/mnt/with space",
        fs_type="tmpfs",
        source="alluxio-ramdisk",
        mount_options="rw,noatime",
        super_options="rw,size=4096k",
    )
    assert (second.mount_point, second.fs_type, second.source) == ("/plain", "ext4", "/dev/sda1")
