"""`LocalCluster`: one stand-in Mesos master and N agents, each agent on its own network-namespace
"host", plus an HTTP file server for artifacts. Everything is torn down on exit, even on failure.

    with local_cluster([HostSpec()] * 3) as cluster:
        url = cluster.serve(tarball)            # http://10.213.n.1:<port>/alluxio-2.9.6-bin.tar.gz
        ... alluxio-mesos framework start {cluster.master.address} ...
        cluster.hosts[0].pids()                 # everything running on host-0

Names (hosts are host-<i>.amc<tag>, resolvable through /etc/hosts while the cluster lives) and
the subnet (10.213.<n>.0/24) are unique per cluster, so parallel runs do not clash; leftovers of
a crashed run are removed by `clean_stale_clusters()` (run at every start).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import pathlib
import subprocess
from collections.abc import Iterator, Sequence
from typing import Any

from sandbox.localcluster import hosts_file, network, processes, registry
from sandbox.localcluster.errors import ClusterError
from sandbox.localcluster.file_server import FileServer
from sandbox.localcluster.mesos_processes import MesosProcess, start_agent, start_master
from sandbox.localcluster.names import ClusterNames, new_tag
from sandbox.localcluster.ports import free_port
from sandbox.localcluster.stale import clean_stale_clusters
from sandbox.localcluster.teardown import destroy_cluster

LOG = logging.getLogger("sandbox.localcluster")

# Room for Alluxio's default ports (19200, 19998-19999, 29998-30000), a second framework on
# shifted ports, and Mesos' default range.
DEFAULT_RESOURCES = "cpus:4;mem:8192;disk:20000;ports:[19000-19999,29000-30000,31000-32000]"
DEFAULT_MASTER_FLAGS = ("--heartbeat_interval=5secs",)


@dataclasses.dataclass(frozen=True)
class HostSpec:
    """One agent host: what its agent offers and any extra agent flags."""

    resources: str = DEFAULT_RESOURCES
    attributes: str = ""
    agent_flags: tuple[str, ...] = ()


@dataclasses.dataclass
class ClusterHost:
    index: int
    hostname: str
    ip: str
    netns: str
    work_dir: pathlib.Path
    log_path: pathlib.Path
    spec: HostSpec
    agent: MesosProcess | None = None

    def pids(self) -> list[int]:
        """Every live process on this host (the agent, its executors, their JVMs)."""
        return processes.pids_in_netns(self.netns)

    def pids_running(self, fragment: str) -> list[int]:
        """Processes on this host whose command line has an argument containing `fragment`
        (e.g. "alluxio.worker.AlluxioWorker")."""
        return [p for p in self.pids() if any(fragment in arg for arg in processes.command_line(p))]

    def mounts(self) -> list[str]:
        return processes.mounts_under(str(self.work_dir))

    def run(self, argv: Sequence[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
        """Run a command on this host (in its network namespace)."""
        return subprocess.run(
            ["nsenter", f"--net={network.netns_path(self.netns)}", "--", *argv],
            text=True,
            capture_output=True,
            check=False,
            **kwargs,
        )


class LocalCluster:
    def __init__(
        self,
        hosts: Sequence[HostSpec],
        *,
        master_flags: Sequence[str] = DEFAULT_MASTER_FLAGS,
    ) -> None:
        if not hosts:
            raise ValueError("hosts: a cluster needs at least one agent host")
        if os.geteuid() != 0:
            raise ClusterError("a local cluster needs root (network namespaces, tmpfs mounts)")
        self.host_specs = list(hosts)
        self.master_flags = list(master_flags)
        self.names: ClusterNames | None = None
        self.hosts: list[ClusterHost] = []
        self._master: MesosProcess | None = None
        self._files: FileServer | None = None
        self._closed = False

    # ---- accessors -----------------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self._names().cluster

    @property
    def base_dir(self) -> pathlib.Path:
        return self._names().base_dir

    @property
    def master(self) -> MesosProcess:
        if self._master is None:
            raise ClusterError("the cluster is not started")
        return self._master

    @property
    def files(self) -> FileServer:
        if self._files is None:
            raise ClusterError("the cluster is not started")
        return self._files

    def _names(self) -> ClusterNames:
        if self.names is None:
            raise ClusterError("the cluster is not started")
        return self.names

    def host(self, hostname: str) -> ClusterHost:
        for host in self.hosts:
            if host.hostname == hostname:
                return host
        raise KeyError(f"{hostname} is not a host of {self.name}")

    def serve(self, path: pathlib.Path, name: str | None = None) -> str:
        """Publish a file on the file server; returns its http:// URL."""
        target = self.base_dir / "www" / (name or path.name)
        if target.exists() or target.is_symlink():
            target.unlink()
        try:
            os.link(path, target)  # no copy of a 170 MB tarball; falls back across filesystems
        except OSError:
            target.symlink_to(path.resolve())
        return self.files.url(target.name)

    # ---- lifecycle ------------------------------------------------------------------------------
    def start(self) -> LocalCluster:
        clean_stale_clusters()
        with registry.registry_lock():
            record = registry.new_record(new_tag(), len(self.host_specs))
        self.names = names = record.names
        names.check()
        try:
            self._build(names)
        except BaseException:
            try:
                self.close()
            except ClusterError as error:  # the setup error is the one to report
                LOG.error("%s", error)
            raise
        LOG.info(
            "local cluster %s up: master %s, %d host(s)", names.cluster, self.master.address, len(self.hosts)
        )
        return self

    def _build(self, names: ClusterNames) -> None:
        base = names.base_dir
        base.mkdir(mode=0o755)
        base.chmod(0o755)  # the JVMs run as nobody and must reach their sandboxes
        (base / "www").mkdir(mode=0o755)
        network.create_bridge(names)
        for index, spec in enumerate(self.host_specs):
            network.create_host(names, index)
            host_dir = base / "hosts" / names.hostname(index)
            self.hosts.append(
                ClusterHost(
                    index=index,
                    hostname=names.hostname(index),
                    ip=names.host_ip(index),
                    netns=names.netns(index),
                    work_dir=host_dir / "agent",
                    log_path=host_dir / "agent.log",
                    spec=spec,
                )
            )
        hosts_file.add_block(names.cluster, {h.hostname: h.ip for h in self.hosts})
        self._files = FileServer(base / "www", names.bridge_ip, base / "file-server.log")
        self._files.start()
        self._master = start_master(
            names.bridge_ip, free_port(names.bridge_ip), base / "mesos-master", self.master_flags
        )
        for host in self.hosts:
            self.start_agent(host)

    def start_agent(self, host: ClusterHost) -> MesosProcess:
        """(Re)start the agent of `host` (its work dir, and so its checkpoints, are kept)."""
        if host.agent is not None and host.agent.is_running():
            raise ClusterError(f"the agent of {host.hostname} is already running")
        host.work_dir.mkdir(parents=True, exist_ok=True)
        host.agent = start_agent(
            master_address=self.master.address,
            netns=host.netns,
            ip=host.ip,
            hostname=host.hostname,
            work_dir=host.work_dir,
            log_path=host.log_path,
            resources=host.spec.resources,
            attributes=host.spec.attributes,
            flags=host.spec.agent_flags,
        )
        return host.agent

    def close(self) -> None:
        """Kill every process, unmount, delete the namespaces, bridge, rule, hosts block and files."""
        if self._closed or self.names is None:
            return
        self._closed = True
        problems: list[str] = []
        # Gracefully first (agents checkpoint, the master says goodbye); destroy_cluster then
        # SIGKILLs whatever is left in the namespaces and in the root namespace.
        stoppable: list[MesosProcess | FileServer | None] = [h.agent for h in self.hosts if h.agent]
        stoppable += [self._master, self._files]
        for process in stoppable:
            if process is None:
                continue
            try:
                process.stop()
            except (OSError, subprocess.SubprocessError) as error:
                problems.append(f"stopping {process}: {error}")
        problems += destroy_cluster(self.names.tag)
        if problems:
            raise ClusterError(f"tearing down {self.names.cluster} left problems: " + "; ".join(problems))

    def __enter__(self) -> LocalCluster:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()


@contextlib.contextmanager
def local_cluster(hosts: Sequence[HostSpec], **kwargs: Any) -> Iterator[LocalCluster]:
    cluster = LocalCluster(hosts, **kwargs)
    with cluster:
        yield cluster
