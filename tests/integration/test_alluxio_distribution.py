"""The cached Alluxio distribution runs for real: format, master, worker on a tmpfs, shell I/O.

Uses the tarball built by `setup/bootstrap.sh alluxio`, starts every JVM through
executor/alluxio_process.py and mounts the worker's ramdisk through executor/ramdisk.py, exactly
as the executor does. All ports are free ports chosen at run time, so parallel runs do not clash.
Needs root (mounting a tmpfs).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import tarfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from executor import alluxio_process, ramdisk, readiness

pytestmark = pytest.mark.integration

RAMDISK_BYTES = 64 * 1024 * 1024
READY_TIMEOUT_S = 180.0
STOP_TIMEOUT_S = 60.0
SHELL_TIMEOUT_S = 120.0


def _version() -> str:
    return os.environ.get("ALLUXIO_VERSION", "2.9.6")


def _tarball() -> Path:
    version = _version()
    return Path(os.environ["ALLUXIO_MESOS_CACHE"]) / "alluxio" / version / f"alluxio-{version}-bin.tar.gz"


@pytest.fixture(scope="module")
def alluxio_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The cached tarball, checked against its .sha256 and extracted into a fresh directory
    (removed afterwards: it is 175 MB)."""
    if os.geteuid() != 0:
        pytest.fail("this test mounts a tmpfs and must run as root")
    tarball = _tarball()
    sha_file = tarball.with_name(tarball.name + ".sha256")
    if not tarball.is_file() or not sha_file.is_file():
        pytest.fail(f"{tarball} (or its .sha256) is missing: run `setup/bootstrap.sh alluxio` first")
    digest = hashlib.sha256()
    with tarball.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    assert digest.hexdigest() == sha_file.read_text().split()[0], f"{tarball} does not match {sha_file}"
    dest = tmp_path_factory.mktemp("dist")
    try:
        with tarfile.open(tarball) as tar:
            tar.extractall(dest, filter="data")
        home = dest / f"alluxio-{_version()}"
        assert (home / "VERSION").read_text().strip() == _version()
        yield home
    finally:
        shutil.rmtree(dest)


def _free_ports(count: int) -> list[int]:
    # Hold all sockets open until every port is chosen, so the same port is not handed out twice.
    socks = []
    try:
        for _ in range(count):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _processes_mentioning(text: str) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            cmdline = (
                Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            )
        except OSError:
            continue
        if text in cmdline:
            found.append(int(entry))
    return found


def _mounts_under(prefix: str) -> list[str]:
    return [
        m.mount_point
        for m in ramdisk.parse_mountinfo(Path("/proc/self/mountinfo").read_text())
        if m.mount_point.startswith(prefix)
    ]


def _listening_ports(pid: int) -> set[int]:
    """TCP ports that process ``pid`` listens on (from its fds and /proc/net/tcp{,6})."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # 0A: LISTEN
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


@dataclass
class Cluster:
    root: Path
    cfg: alluxio_process.AlluxioJvmConfig
    ports: dict[str, int]
    ramdisk_dir: Path
    processes: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def start(self, role: str, command: alluxio_process.JavaCommand, ready_port: int) -> float:
        """Start a server JVM in its own session; returns the seconds until its RPC port answered."""
        out = (self.root / f"{role}.out").open("wb")
        started = time.monotonic()
        proc = subprocess.Popen(
            command.argv, env=command.env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        out.close()
        self.processes[role] = proc

        def died() -> str | None:
            code = proc.poll()
            if code is None:
                return None
            return f"{role} exited with status {code}; log tail:\n{self.log_tail(role)}"

        # The executor's own readiness check: the gRPC port answers HTTP/2, not merely accepts.
        readiness.wait_until_answering("127.0.0.1", ready_port, READY_TIMEOUT_S, abort=died)
        return time.monotonic() - started

    def log_tail(self, role: str) -> str:
        logs = Path(self.cfg.logs_dir)
        return "\n".join(
            alluxio_process.tail_file(str(p), 30) for p in (logs / f"{role}.log", self.root / f"{role}.out")
        )

    def shell(self, command: alluxio_process.JavaCommand) -> subprocess.CompletedProcess[bytes]:
        result = subprocess.run(
            command.argv, env=command.env, capture_output=True, timeout=SHELL_TIMEOUT_S, check=False
        )
        output = (
            result.stderr.decode(errors="replace")[-3000:] + result.stdout.decode(errors="replace")[-2000:]
        )
        assert result.returncode == 0, f"{command.argv[-3:]} exited {result.returncode}: {output}"
        return result

    def stop(self, role: str, timeout_s: float = STOP_TIMEOUT_S) -> float:
        """SIGTERM the role's process group and wait; returns the seconds it took to exit."""
        proc = self.processes[role]
        started = time.monotonic()
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=timeout_s)
        return time.monotonic() - started


@pytest.fixture
def cluster(alluxio_home: Path, tmp_path: Path) -> Iterator[Cluster]:
    """Conf, journal, under-storage and ramdisk dirs for one master and one worker, all on free
    ports. Whatever the test leaves running or mounted is killed and unmounted here."""
    names = ["master_rpc", "master_web", "journal", "worker_rpc", "worker_web", "job_rpc", "job_web"]
    ports = dict(zip(names, _free_ports(len(names)), strict=True))
    conf_dir = tmp_path / "conf"
    conf_dir.mkdir()
    (conf_dir / "log4j.properties").write_bytes((alluxio_home / "conf" / "log4j.properties").read_bytes())
    ramdisk_dir = tmp_path / "ramdisk"
    site = {
        "alluxio.master.hostname": "127.0.0.1",
        "alluxio.master.rpc.port": ports["master_rpc"],
        "alluxio.master.web.port": ports["master_web"],
        "alluxio.master.embedded.journal.port": ports["journal"],
        "alluxio.master.journal.folder": tmp_path / "journal",
        "alluxio.master.mount.table.root.ufs": tmp_path / "ufs",
        # The job service is not started, but its ports must not collide with a parallel run's.
        "alluxio.job.master.rpc.port": ports["job_rpc"],
        "alluxio.job.master.web.port": ports["job_web"],
        # No phoning home (and no EC2 metadata probes) from a test.
        "alluxio.master.update.check.enabled": "false",
        # Safe mode waits this long for workers after a master starts; 5 s by default.
        "alluxio.master.worker.connect.wait.time": "1s",
        "alluxio.worker.hostname": "127.0.0.1",
        "alluxio.worker.rpc.port": ports["worker_rpc"],
        "alluxio.worker.web.port": ports["worker_web"],
        "alluxio.worker.ramdisk.size": "64MB",
        "alluxio.worker.tieredstore.levels": "1",
        "alluxio.worker.tieredstore.level0.alias": "MEM",
        "alluxio.worker.tieredstore.level0.dirs.path": ramdisk_dir,
        "alluxio.worker.tieredstore.level0.dirs.mediumtype": "MEM",
        "alluxio.worker.tieredstore.level0.dirs.quota": "64MB",
        # Writes land in the worker's ramdisk and in the under-storage, without the job service.
        "alluxio.user.file.writetype.default": "CACHE_THROUGH",
    }
    (tmp_path / "ufs").mkdir()
    jvm_tmp = tmp_path / "jvm-tmp"  # java.io.tmpdir: RocksDB's native library lands here, not in /tmp
    jvm_tmp.mkdir()
    (conf_dir / "alluxio-site.properties").write_text("".join(f"{k}={v}\n" for k, v in site.items()))
    cfg = alluxio_process.AlluxioJvmConfig(
        alluxio_home=str(alluxio_home),
        conf_dir=str(conf_dir),
        logs_dir=str(tmp_path / "logs"),
        tmp_dir=str(jvm_tmp),
        heap_size="512MB",
    )
    c = Cluster(root=tmp_path, cfg=cfg, ports=ports, ramdisk_dir=ramdisk_dir)
    try:
        yield c
    finally:
        for proc in c.processes.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=30)
        for pid in _processes_mentioning(str(tmp_path)):
            os.kill(pid, signal.SIGKILL)
        ramdisk.unmount_ramdisk(str(ramdisk_dir))


def _mapped_files(pid: int, name_part: str) -> set[str]:
    """Files mapped into a process whose name contains `name_part` (its loaded native libraries)."""
    with open(f"/proc/{pid}/maps", encoding="utf-8", errors="replace") as maps:
        paths = {line.split(None, 5)[5].strip() for line in maps if len(line.split(None, 5)) == 6}
    return {p for p in paths if name_part in os.path.basename(p)}


def _master_info(c: Cluster) -> dict[str, object] | None:
    url = f"http://127.0.0.1:{c.ports['master_web']}/api/v1/master/info"
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return json.loads(response.read())
    except (urllib.error.URLError, OSError, ValueError):
        return None  # 500 while the master is in safe mode, refused before the web server is up


def test_master_and_worker_serve_files_from_a_tmpfs(cluster: Cluster, tmp_path: Path) -> None:
    c = cluster
    fmt = subprocess.run(
        alluxio_process.format_command(c.cfg).argv,
        env=alluxio_process.format_command(c.cfg).env,
        capture_output=True,
        timeout=SHELL_TIMEOUT_S,
        check=False,
    )
    assert fmt.returncode == 0, fmt.stderr.decode(errors="replace")
    assert (tmp_path / "journal").is_dir()

    master_ready_s = c.start("master", alluxio_process.master_command(c.cfg), c.ports["master_rpc"])
    # The master's RocksDB metastore unpacked its native library into the JVM's java.io.tmpdir
    # (the test's own dir), not into the host's /tmp where a killed JVM would leave it behind.
    rocksdb = _mapped_files(c.processes["master"].pid, "librocksdbjni")
    assert rocksdb, "the master has not loaded RocksDB's native library"
    assert all(path.startswith(c.cfg.tmp_dir + os.sep) for path in rocksdb), rocksdb

    mounted = ramdisk.mount_ramdisk(str(c.ramdisk_dir), RAMDISK_BYTES)
    assert mounted.size_bytes == RAMDISK_BYTES
    worker_started = time.monotonic()
    worker_ready_s = c.start("worker", alluxio_process.worker_command(c.cfg), c.ports["worker_rpc"])

    # The master counts the worker live with exactly the ramdisk's capacity.
    deadline = time.monotonic() + READY_TIMEOUT_S
    info = _master_info(c)
    while not (info and info["capacity"]["total"] == RAMDISK_BYTES):  # type: ignore[index]
        assert time.monotonic() < deadline, (
            f"worker never registered; master info: {info}\n{c.log_tail('worker')}"
        )
        time.sleep(0.25)
        info = _master_info(c)
    registered_s = time.monotonic() - worker_started
    report = c.shell(alluxio_process.fsadmin_command(c.cfg, ["report", "capacity"])).stdout.decode()
    live = [line.split() for line in report.splitlines() if "ACTIVE" in line]
    assert len(live) == 1, report
    assert live[0][0] == "127.0.0.1", report
    assert "64.00MB" in live[0], report

    # Every port the JVMs listen on is one this test chose: no fixed default port is used. The
    # ports are set only in the site file, so this also shows Alluxio reads its site file with the
    # conf dir at the END of the classpath (where class-data sharing needs it).
    assert _listening_ports(c.processes["master"].pid) <= set(c.ports.values())
    assert _listening_ports(c.processes["worker"].pid) <= set(c.ports.values())

    payload = os.urandom(3 * 1024 * 1024 + 17)
    local = tmp_path / "payload.bin"
    local.write_bytes(payload)
    c.shell(alluxio_process.fs_shell_command(c.cfg, ["copyFromLocal", str(local), "/payload.bin"]))
    read_back = c.shell(alluxio_process.fs_shell_command(c.cfg, ["cat", "/payload.bin"])).stdout
    assert read_back == payload
    # The bytes really live in the tmpfs (a block file of the payload's size) and in the UFS.
    blocks = [p.stat().st_size for p in c.ramdisk_dir.rglob("*") if p.is_file()]
    assert len(payload) in blocks, blocks
    assert (tmp_path / "ufs" / "payload.bin").read_bytes() == payload

    worker_stop_s = c.stop("worker")
    master_stop_s = c.stop("master")
    assert ramdisk.unmount_ramdisk(str(c.ramdisk_dir)) is True
    assert _processes_mentioning(str(tmp_path)) == []
    assert _mounts_under(str(tmp_path)) == []
    assert "Alluxio master" in (Path(c.cfg.logs_dir) / "master.log").read_text()
    assert (Path(c.cfg.logs_dir) / "worker.log").is_file()
    print(
        f"\nmaster ready {master_ready_s:.2f}s, worker ready {worker_ready_s:.2f}s, "
        f"worker registered {registered_s:.2f}s after its start, "
        f"worker stop {worker_stop_s:.2f}s, master stop {master_stop_s:.2f}s"
    )


def test_parse_bytes_matches_alluxio_format_utils(alluxio_home: Path, tmp_path: Path) -> None:
    """parse_bytes agrees with Alluxio's own FormatUtils.parseSpaceSize from the distribution."""
    cases = [
        "0",
        "1",
        "1B",
        "64MB",
        "64mb",
        "1.5KB",
        "0.5B",
        "1e3",
        "1kib",
        "7m",
        "8Ti",
        "1GB",
        "1.1PB",
        "2PB",
        "0.3GB",
        " 7MB",
        ".5k",
        "+2G",
        "12345678901",
    ]
    bad = [
        "",
        "MB",
        "64 MB",
        "4 KB",
        "64MB ",
        "1 potato",
        "1.2.3",
        "abc",
        "1XB",
        "1MBB",
        "1.",
        "-",
        "Infinity",
        "1e",
    ]
    source = tmp_path / "ParseSizes.java"
    source.write_text(
        "public class ParseSizes { public static void main(String[] a) {"
        " for (String s : a) { try { System.out.println(alluxio.util.FormatUtils.parseSpaceSize(s)); }"
        ' catch (IllegalArgumentException e) { System.out.println("error"); } } } }'
    )
    java = alluxio_process.resolve_java()
    classpath = alluxio_process.server_classpath(str(alluxio_home), str(tmp_path))
    # Java 11+ runs a single source file directly; no compile step to clean up.
    out = subprocess.run(
        [java, "-cp", classpath, str(source), *cases, *bad],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    alluxio_results = out.stdout.split()
    assert alluxio_results[len(cases) :] == ["error"] * len(bad), alluxio_results
    assert [str(alluxio_process.parse_bytes(s)) for s in cases] == alluxio_results[: len(cases)]
    for s in bad:
        with pytest.raises(ValueError, match="cannot parse"):
            alluxio_process.parse_bytes(s)
