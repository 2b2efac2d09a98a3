"""From the spec to what Mesos runs: the task plan (executor/task_plan.py), the TaskInfo around it,
and the fingerprint that tells whether a running task still matches the spec.

The fingerprint is an HMAC keyed with a per-cluster salt kept in the framework's state dir: task
labels are visible to anyone who can read the Mesos master's state, and a plain hash of a config
holding UFS credentials could be brute-forced offline.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
import shlex
from collections.abc import Sequence
from typing import Any

from executor.staging import can_stage
from executor.task_plan import Artifact as PlanArtifact
from executor.task_plan import Distribution, TaskPlan
from framework.mesos_resources import Resources
from framework.offer_matching import ResourceNeeds
from framework.spec import LOCAL, Artifact, ClusterSpec, Key, Role

ROLE_LABEL = "alluxio-mesos/role"
CONFIG_LABEL = "alluxio-mesos/config"
CLUSTER_LABEL = "alluxio-mesos/cluster"
# The agent must let the executor finish its own kill sequence (grace, unmount, report) first.
EXECUTOR_SHUTDOWN_MARGIN_SECONDS = 15.0
_ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz", ".tar", ".zip")
# What the executor can unpack while downloading (executor/staging.py); anything else (a zip, an
# hdfs:// URL) is left to the agent's fetcher, into each task's sandbox.
_STAGED_SUFFIXES = tuple(s for s in _ARCHIVE_SUFFIXES if s != ".zip")
WORKER_PROPERTY_PREFIX = "alluxio.worker."
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def slug(text: str) -> str:
    """A fragment safe in task ids and instance names."""
    return _UNSAFE.sub("-", text).strip("-.") or "x"


def unpacked_directory(artifact: Artifact) -> str:
    """The directory an Alluxio tarball unpacks to: its name without archive suffix and `-bin`
    (`alluxio-2.9.6-bin.tar.gz` -> `alluxio-2.9.6`), as official and setup-built tarballs do."""
    name = artifact.filename
    for suffix in _ARCHIVE_SUFFIXES:
        if name.endswith(suffix):
            name = name[: -len(suffix)]
            break
    return name.removesuffix("-bin")


def is_staged(artifact: Artifact) -> bool:
    """Whether executors stage this tarball once per host instead of the fetcher per task."""
    return can_stage(artifact.url) and artifact.filename.endswith(_STAGED_SUFFIXES)


class TaskFactory:
    """Builds tasks for one spec. `master_hosts` is the masters' placement, in slot order."""

    def __init__(self, spec: ClusterSpec, salt: bytes) -> None:
        self.spec = spec
        self._salt = salt
        # A factory's spec never changes, and tasks of one role differ only by their host: each
        # (role, masters) gets one validated plan and one fingerprint, and a launch only renders
        # the host into a copy (10,000 workers must not mean 10,000 validations and HMACs).
        self._templates: dict[tuple[Role, tuple[str, ...]], _PlanTemplate] = {}
        self._command: dict[str, Any] | None = None
        self._task_id_prefix = slug(spec.framework_name)
        self._needs = {
            role: ResourceNeeds(
                cpus=spec.cpus(role),
                mem_mb=float(spec.task_mem_mb(role)),
                ports=tuple(spec.ports(role).values()),
            )
            for role in Role
        }

    def new_task_id(self, role: Role, hostname: str) -> str:
        """`<framework>-<role>-<host>-<8 hex>`: readable in Mesos' UI, unique per launch."""
        return f"{self._task_id_prefix}-{role.value}-{slug(hostname)}-{os.urandom(4).hex()}"

    # ---- what a task needs ------------------------------------------------------------------
    def needs(self, role: Role) -> ResourceNeeds:
        return self._needs[role]

    def plan(self, role: Role, hostname: str, master_hosts: Sequence[str]) -> TaskPlan:
        """The plan of the task of `role` on `hostname`, as the executor will read it."""
        return TaskPlan.from_dict(self._template(role, master_hosts).render(hostname))

    def _host_independent_plan(self, role: Role, master_hosts: Sequence[str]) -> TaskPlan:
        spec = self.spec
        alluxio = self._distribution(spec.alluxio_url, spec.alluxio_sha256)
        jdk = self._distribution(spec.jdk_url, spec.jdk_sha256)
        return TaskPlan(
            role=role.value,
            alluxio_properties=self._properties(role, master_hosts),
            artifacts=[
                PlanArtifact(filename=a.filename, sha256=a.sha256, url=a.url)
                for a in [spec.executor_artifact(), *self._fetched_artifacts()]
            ],
            alluxio_home_mode=_home_mode(spec.alluxio_url, alluxio),
            alluxio_home=spec.alluxio_home if spec.alluxio_url == LOCAL else self._alluxio_dir(),
            alluxio_dist=alluxio,
            java_home_mode=_home_mode(spec.jdk_url, jdk),
            java_home="" if spec.jdk_url == LOCAL else str(spec.jdk_path),
            jdk_dist=jdk,
            cache_dir=spec.cache_dir if alluxio or jdk else "",
            heap_size_mb=spec.heap_mb(role),
            ports=self._plan_ports(role),
            ramdisk_size_bytes=spec.ramdisk_bytes if role is Role.WORKER else 0,
            journal_dir=spec.journal_folder if role is Role.MASTER else "",
            run_as_user=spec.run_as_user or "",
            grace_period_secs=spec.kill_grace_seconds,
            readiness_timeout_secs=spec.readiness_timeout_seconds,
        )

    def _template(self, role: Role, master_hosts: Sequence[str]) -> _PlanTemplate:
        key = (role, tuple(master_hosts))
        template = self._templates.get(key)
        if template is None:
            plan = self._host_independent_plan(role, master_hosts)
            template = _PlanTemplate(
                plan.to_dict(),
                self._compute_hash(role, plan),
                hostname_key=Key.MASTER_HOSTNAME if role is Role.MASTER else Key.WORKER_HOSTNAME,
                instance_prefix=f"{self._task_id_prefix}-{role.value}-",
            )
            self._templates[key] = template
        return template

    def _distribution(self, url: str, sha256: str | None) -> Distribution | None:
        if url == LOCAL or sha256 is None or not is_staged(Artifact(url=url, sha256=sha256)):
            return None
        return Distribution(url=url, sha256=sha256)

    def _fetched_artifacts(self) -> list[Artifact]:
        """The spec's tarballs the agent's fetcher still downloads into every sandbox."""
        return [a for a in self.spec.artifacts() if not is_staged(a)]

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

    def _properties(self, role: Role, master_hosts: Sequence[str]) -> dict[str, str]:
        """Every Alluxio property of a role's tasks except the task's own hostname."""
        spec = self.spec
        props = spec.common_alluxio_properties()
        if len(master_hosts) > 1:
            props[Key.MASTER_RPC_ADDRESSES] = ",".join(f"{h}:{spec.master_rpc_port}" for h in master_hosts)
            props[Key.EMBEDDED_JOURNAL_ADDRESSES] = ",".join(
                f"{h}:{spec.embedded_journal_port}" for h in master_hosts
            )
        if role is Role.WORKER:
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
        uris.extend({"value": a.url, "extract": True} for a in self._fetched_artifacts())
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

    def config_hash(self, role: Role, master_hosts: Sequence[str]) -> str:
        """Fingerprint of everything the spec decides about a role's tasks. A task's own host is
        not part of it: a task stays on its host, so the host never makes it outdated."""
        return self._template(role, master_hosts).fingerprint

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
                "data": self._template(role, master_hosts).task_data(hostname),
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


class _PlanTemplate:
    """A role's validated plan without the host, and its fingerprint. A host differs only by
    strings (its name in one property, its slug in the instance name), so rendering one needs no
    new validation: the canonical JSON is cut once around those strings and glued per host."""

    # Control characters: json.dumps escapes them, so the escaped marks cannot come from a value.
    _HOST_MARK = "\x00host\x00"
    _SLUG_MARK = "\x00slug\x00"

    def __init__(
        self, plan: dict[str, Any], fingerprint: str, hostname_key: str, instance_prefix: str
    ) -> None:
        self.plan = plan
        self.fingerprint = fingerprint
        self._hostname_key = hostname_key
        self._instance_prefix = instance_prefix
        text = _canonical_json(self._render(self._HOST_MARK, self._SLUG_MARK))
        host_mark, slug_mark = (json.dumps(m)[1:-1] for m in (self._HOST_MARK, self._SLUG_MARK))
        before_host, _, rest = text.partition(host_mark)
        between, _, after_slug = rest.partition(slug_mark)
        # Both JSON objects are sorted the same way; the hostname property sorts before
        # "instance_name" only because "alluxio_properties" does. Anything else: render slowly.
        self._pieces = (
            (before_host, between, after_slug)
            if text.count(host_mark) == 1 == text.count(slug_mark) and after_slug
            else None
        )

    def _render(self, hostname: str, host_slug: str) -> dict[str, Any]:
        rendered = dict(self.plan)
        rendered["alluxio_properties"] = {**self.plan["alluxio_properties"], self._hostname_key: hostname}
        rendered["instance_name"] = self._instance_prefix + host_slug
        return rendered

    def render(self, hostname: str) -> dict[str, Any]:
        return self._render(hostname, slug(hostname))

    def task_data(self, hostname: str) -> str:
        """TaskInfo.data: the canonical JSON that TaskPlan.to_task_data() gives, base64."""
        if self._pieces is None:
            text = _canonical_json(self.render(hostname))
        else:
            before_host, between, after_slug = self._pieces
            text = before_host + json.dumps(hostname)[1:-1] + between + slug(hostname) + after_slug
        return base64.b64encode(text.encode("utf-8")).decode("ascii")


def _home_mode(url: str, staged: Distribution | None) -> str:
    if url == LOCAL:
        return "local"
    return "fetched" if staged is None else "staged"


def _canonical_json(document: dict[str, Any]) -> str:
    return json.dumps(document, sort_keys=True, separators=(",", ":"))
