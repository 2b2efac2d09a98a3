"""From the spec to what Mesos runs: the task plan (executor/task_plan.py), the TaskInfo around it,
and the fingerprint that tells whether a running task still matches the spec.

The fingerprint is an HMAC keyed with a per-cluster salt kept in the framework's state dir: task
labels are visible to anyone who can read the Mesos master's state, and a plain hash of a config
holding UFS credentials could be brute-forced offline.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import shlex
import uuid
from collections.abc import Sequence
from typing import Any

from executor.task_plan import Artifact as PlanArtifact
from executor.task_plan import TaskPlan
from framework.mesos_resources import Resources
from framework.offer_matching import ResourceNeeds
from framework.spec import LOCAL, Artifact, ClusterSpec, Key, Role

ROLE_LABEL = "alluxio-mesos/role"
CONFIG_LABEL = "alluxio-mesos/config"
CLUSTER_LABEL = "alluxio-mesos/cluster"
# The agent must let the executor finish its own kill sequence (grace, unmount, report) first.
EXECUTOR_SHUTDOWN_MARGIN_SECONDS = 15.0
_ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz", ".tar", ".zip")
WORKER_PROPERTY_PREFIX = "alluxio.worker."
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def slug(text: str) -> str:
    """A fragment safe in task ids and instance names."""
    return _UNSAFE.sub("-", text).strip("-.") or "x"


def new_task_id(spec: ClusterSpec, role: Role, hostname: str) -> str:
    return f"{slug(spec.framework_name)}-{role.value}-{slug(hostname)}-{uuid.uuid4().hex[:8]}"


def unpacked_directory(artifact: Artifact) -> str:
    """The directory an Alluxio tarball unpacks to: its name without archive suffix and `-bin`
    (`alluxio-2.9.6-bin.tar.gz` -> `alluxio-2.9.6`), as official and setup-built tarballs do."""
    name = artifact.filename
    for suffix in _ARCHIVE_SUFFIXES:
        if name.endswith(suffix):
            name = name[: -len(suffix)]
            break
    return name.removesuffix("-bin")


class TaskFactory:
    """Builds tasks for one spec. `master_hosts` is the masters' placement, in slot order."""

    def __init__(self, spec: ClusterSpec, salt: bytes) -> None:
        self.spec = spec
        self._salt = salt
        # The scheduler asks for task fingerprints on every event and builds a plan per launch;
        # a factory's spec never changes, so each (role, host, masters) is computed once.
        self._products: dict[tuple[Role, str, tuple[str, ...]], tuple[str, str]] = {}
        self._command: dict[str, Any] | None = None

    # ---- what a task needs ------------------------------------------------------------------
    def needs(self, role: Role) -> ResourceNeeds:
        spec = self.spec
        return ResourceNeeds(
            cpus=spec.cpus(role), mem_mb=float(spec.task_mem_mb(role)), ports=tuple(spec.ports(role).values())
        )

    def plan(self, role: Role, hostname: str, master_hosts: Sequence[str]) -> TaskPlan:
        spec = self.spec
        return TaskPlan(
            role=role.value,
            alluxio_properties=self._properties(role, hostname, master_hosts),
            artifacts=[
                PlanArtifact(filename=a.filename, sha256=a.sha256, url=a.url)
                for a in [spec.executor_artifact(), *spec.artifacts()]
            ],
            alluxio_home_mode="local" if spec.alluxio_url == LOCAL else "fetched",
            alluxio_home=spec.alluxio_home if spec.alluxio_url == LOCAL else self._alluxio_dir(),
            java_home_mode="local" if spec.jdk_url == LOCAL else "fetched",
            java_home="" if spec.jdk_url == LOCAL else str(spec.jdk_path),
            heap_size_mb=spec.heap_mb(role),
            ports=self._plan_ports(role),
            ramdisk_size_bytes=spec.ramdisk_bytes if role is Role.WORKER else 0,
            journal_dir=spec.journal_folder if role is Role.MASTER else "",
            run_as_user=spec.run_as_user or "",
            grace_period_secs=spec.kill_grace_seconds,
            readiness_timeout_secs=spec.readiness_timeout_seconds,
            # The executor's leftover-state file is named after this. The hostname keeps it
            # unique when several agents share one machine (and /run), as sandbox hosts do.
            instance_name=f"{slug(spec.framework_name)}-{role.value}-{slug(hostname)}",
        )

    def _alluxio_dir(self) -> str:
        if self.spec.alluxio_path:
            return self.spec.alluxio_path
        return unpacked_directory(self.spec.artifacts()[0])

    def _plan_ports(self, role: Role) -> dict[str, int]:
        spec = self.spec
        if role is Role.MASTER:
            ports = {"rpc": spec.master_rpc_port, "web": spec.master_web_port}
            if Key.EMBEDDED_JOURNAL_PORT in spec.master_ports():
                ports["embedded_journal"] = spec.embedded_journal_port
            return ports
        # The plan format wants the legacy data port too; Alluxio 2.x does not bind it.
        return {"rpc": spec.worker_rpc_port, "data": spec.worker_data_port, "web": spec.worker_web_port}

    def _properties(self, role: Role, hostname: str, master_hosts: Sequence[str]) -> dict[str, str]:
        spec = self.spec
        props = spec.common_alluxio_properties()
        if len(master_hosts) > 1:
            props[Key.MASTER_RPC_ADDRESSES] = ",".join(f"{h}:{spec.master_rpc_port}" for h in master_hosts)
            props[Key.EMBEDDED_JOURNAL_ADDRESSES] = ",".join(
                f"{h}:{spec.embedded_journal_port}" for h in master_hosts
            )
        if role is Role.MASTER:
            props[Key.MASTER_HOSTNAME] = hostname
        else:
            props[Key.WORKER_HOSTNAME] = hostname
            if len(master_hosts) == 1:
                props[Key.MASTER_HOSTNAME] = master_hosts[0]
            # The executor writes only the worker's own ports; the worker must find the master's.
            props[Key.MASTER_PORT_LEGACY] = str(spec.master_rpc_port)
        return props

    # ---- the Mesos task ---------------------------------------------------------------------
    def launch_command(self) -> str:
        bundle = self.spec.executor_artifact()
        name = shlex.quote(bundle.filename)
        check = f"echo {shlex.quote(bundle.sha256 + '  ' + bundle.filename)} | sha256sum --check --status"
        complaint = shlex.quote(
            f"alluxio-mesos: the executor bundle {bundle.filename} does not match sha256 {bundle.sha256}"
        )
        python = shlex.quote(self.spec.executor_python)
        return f"{check} || {{ echo {complaint} >&2; exit 86; }}; exec {python} {name}"

    def _uris(self) -> list[dict[str, Any]]:
        bundle = self.spec.executor_artifact()
        uris: list[dict[str, Any]] = [{"value": bundle.url, "executable": True, "extract": False}]
        uris.extend({"value": a.url, "extract": True} for a in self.spec.artifacts())
        return uris

    def _command_info(self) -> dict[str, Any]:
        # Shared by every TaskInfo of this factory (nothing mutates it once built).
        if self._command is None:
            self._command = {"value": self.launch_command(), "shell": True, "uris": self._uris()}
        return self._command

    def _executor_and_policy(self, role: Role) -> dict[str, Any]:
        """The parts of a TaskInfo that are the same for every task of a role."""
        spec = self.spec
        grace_ns = int(spec.kill_grace_seconds * 1e9)
        return {
            "name": spec.task_name(role),
            "executor": {
                "name": f"{spec.task_name(role)} executor (alluxio-mesos)",
                "command": self._command_info(),
                "shutdown_grace_period": {
                    "nanoseconds": grace_ns + int(EXECUTOR_SHUTDOWN_MARGIN_SECONDS * 1e9)
                },
            },
            "kill_policy": {"grace_period": {"nanoseconds": grace_ns}},
        }

    def config_hash(self, role: Role, hostname: str, master_hosts: Sequence[str]) -> str:
        """Fingerprint of everything that shapes this task on this host."""
        return self._plan_products(role, hostname, master_hosts)[0]

    def _plan_products(self, role: Role, hostname: str, master_hosts: Sequence[str]) -> tuple[str, str]:
        """(fingerprint, TaskInfo.data) of the task of `role` on `hostname`."""
        key = (role, hostname, tuple(master_hosts))
        found = self._products.get(key)
        if found is None:
            plan = self.plan(role, hostname, master_hosts)
            found = self._products[key] = (self._compute_hash(role, plan), plan.to_task_data())
        return found

    def _compute_hash(self, role: Role, task_plan: TaskPlan) -> str:
        needs = self.needs(role)
        plan = task_plan.to_dict()
        if role is Role.MASTER:
            # Masters do not read worker properties: changing one must roll the workers only, not
            # take the master (and with it the whole cluster) down. A master still gets the new
            # value in its site file at its next launch.
            plan["alluxio_properties"] = {
                k: v
                for k, v in plan["alluxio_properties"].items()
                if not k.startswith(WORKER_PROPERTY_PREFIX)
            }
        material = {
            "task": self._executor_and_policy(role),
            "needs": {"cpus": needs.cpus, "mem": needs.mem_mb, "ports": sorted(needs.ports)},
            "plan": plan,
        }
        canonical = json.dumps(material, sort_keys=True, separators=(",", ":")).encode("utf-8")
        return hmac.new(self._salt, canonical, hashlib.sha256).hexdigest()[:20]

    def spec_hash(self) -> str:
        """Fingerprint of the whole spec, for the status endpoint."""
        canonical = json.dumps(self.spec.to_properties(), sort_keys=True).encode("utf-8")
        return hmac.new(self._salt, canonical, hashlib.sha256).hexdigest()[:20]

    def task_info(
        self,
        role: Role,
        *,
        task_id: str,
        agent_id: str,
        hostname: str,
        master_hosts: Sequence[str],
        resources: Resources,
        config_hash: str,
    ) -> dict[str, Any]:
        info = self._executor_and_policy(role)
        info["executor"]["executor_id"] = {"value": task_id}
        info.update(
            {
                "task_id": {"value": task_id},
                "agent_id": {"value": agent_id},
                "resources": resources.to_json(),
                "data": self._plan_products(role, hostname, master_hosts)[1],
                "labels": {
                    "labels": [
                        {"key": ROLE_LABEL, "value": role.value},
                        {"key": CONFIG_LABEL, "value": config_hash},
                        {"key": CLUSTER_LABEL, "value": self.spec.framework_name},
                    ]
                },
            }
        )
        return info
