"""The cluster spec: ONE validated model of what the framework must run, and the only place that
knows the configuration keys.

Input is a flat mapping of property names to values, read from `conf/alluxio-site.properties`
(java properties, like the old start script) or given as a dict/JSON object (the Pulumi stack).

- `alluxio.integration.*` keys configure the framework. They keep the legacy meaning and defaults
  (see `Key`) and are never passed to Alluxio. An unknown `alluxio.integration.*` key is an error
  (it is almost always a typo).
- Every other key is an Alluxio property and reaches every master and worker unchanged, except the
  few the framework derives per task (`FRAMEWORK_MANAGED_KEYS`), which are refused.
- Secrets: `alluxio.integration.mesos.secret` (or `...secret.file`) stays in the framework process
  (SecretStr, used only for Mesos HTTP Basic auth). Alluxio properties whose names look secret
  (`is_sensitive_key`) must reach Alluxio (e.g. UFS credentials) but are masked in every view made
  for logs, labels and the status endpoint.

Memory (legacy semantics, made precise):
- master task mem = `alluxio.integration.master.resource.mem`; the master JVM heap is 75% of it,
  the rest is left for metaspace, direct buffers and RocksDB.
- worker task mem = `alluxio.integration.worker.resource.mem` (the JVM, heap 75% of it) PLUS the
  ramdisk (`alluxio.worker.ramdisk.size`, legacy `alluxio.worker.memory.size`), because tmpfs pages
  are charged to the task's memory. The ramdisk can therefore never eat the JVM's memory. A ramdisk of
  0 is refused (a tmpfs of size 0 is unlimited), and the tier-0 path/quota are set by the executor to
  the ramdisk, so setting them is refused.

Ports: the task asks Mesos for exactly the ports its Alluxio 2.9 process binds: master rpc
(`alluxio.master.rpc.port`, legacy `alluxio.master.port`, 19998), master web (19999), the embedded
journal port (`alluxio.master.embedded.journal.port`, 19200) when `alluxio.master.journal.type` is
EMBEDDED (Alluxio 2.9's default); worker rpc (`alluxio.worker.rpc.port`, legacy `alluxio.worker.port`,
legacy default 29998 kept, so agents offering the old 29998-30000 still fit) and worker web (30000).
`alluxio.worker.data.port` is accepted for old configurations, but Alluxio 2.x serves data on the RPC
port and binds no data port, so it is not requested from Mesos. The job master and job worker
are not run, so their ports are not requested.
"""

from __future__ import annotations

import difflib
import enum
import json
import math
import pathlib
import posixpath
import re
import urllib.parse
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from framework.constraints import Constraint, parse_constraints
from framework.java_properties import load_properties_file
from framework.mesos_resources import validate_role
from framework.units import MB, bytes_to_mb_ceil, format_duration, format_size, parse_duration, parse_size

LOCAL = "LOCAL"
INTEGRATION_PREFIX = "alluxio.integration."
ALLUXIO_VERSION = "2.9.6"
DEFAULT_ALLUXIO_URL = (
    f"https://downloads.alluxio.io/downloads/files/{ALLUXIO_VERSION}/alluxio-{ALLUXIO_VERSION}-bin.tar.gz"
)
JVM_HEAP_FRACTION = 0.75
MIN_JVM_MEM_MB = 256
WORKER_COUNT_ALL = "all"


class Key:
    """Every configuration key the framework reads. Legacy keys first, then the new ones."""

    # legacy alluxio.integration.* keys (old meaning and defaults)
    ALLUXIO_URL = "alluxio.integration.mesos.alluxio.jar.url"
    JDK_URL = "alluxio.integration.mesos.jdk.url"
    JDK_PATH = "alluxio.integration.mesos.jdk.path"
    MASTER_CPU = "alluxio.integration.master.resource.cpu"
    MASTER_MEM = "alluxio.integration.master.resource.mem"
    WORKER_CPU = "alluxio.integration.worker.resource.cpu"
    WORKER_MEM = "alluxio.integration.worker.resource.mem"
    MASTER_NAME = "alluxio.integration.mesos.master.name"
    WORKER_NAME = "alluxio.integration.mesos.worker.name"
    MASTER_COUNT = "alluxio.integration.mesos.master.node.count"
    PRINCIPAL = "alluxio.integration.mesos.principal"
    SECRET = "alluxio.integration.mesos.secret"
    ROLE = "alluxio.integration.mesos.role"
    USER = "alluxio.integration.mesos.user"
    # new alluxio.integration.* keys
    ALLUXIO_SHA256 = "alluxio.integration.mesos.alluxio.jar.sha256"
    ALLUXIO_PATH = "alluxio.integration.mesos.alluxio.jar.path"
    JDK_SHA256 = "alluxio.integration.mesos.jdk.sha256"
    EXECUTOR_URL = "alluxio.integration.mesos.executor.url"
    EXECUTOR_SHA256 = "alluxio.integration.mesos.executor.sha256"
    EXECUTOR_PYTHON = "alluxio.integration.mesos.executor.python"
    SECRET_FILE = "alluxio.integration.mesos.secret.file"
    FRAMEWORK_NAME = "alluxio.integration.mesos.framework.name"
    FAILOVER_TIMEOUT = "alluxio.integration.mesos.failover.timeout"
    WORKER_COUNT = "alluxio.integration.mesos.worker.count"
    CONSTRAINTS = "alluxio.integration.mesos.constraints"
    MASTER_CONSTRAINTS = "alluxio.integration.mesos.master.constraints"
    WORKER_CONSTRAINTS = "alluxio.integration.mesos.worker.constraints"
    STATUS_PORT = "alluxio.integration.mesos.status.port"
    KILL_GRACE = "alluxio.integration.mesos.kill.grace.period"
    READINESS_TIMEOUT = "alluxio.integration.mesos.readiness.timeout"
    BACKOFF_INITIAL = "alluxio.integration.mesos.relaunch.backoff.initial"
    BACKOFF_MAX = "alluxio.integration.mesos.relaunch.backoff.max"
    RUN_AS_USER = "alluxio.integration.mesos.run.as.user"
    CACHE_DIR = "alluxio.integration.mesos.cache.dir"
    # Alluxio properties the framework reads (and passes on)
    ALLUXIO_HOME = "alluxio.home"
    MASTER_HOSTNAME = "alluxio.master.hostname"
    MASTER_RPC_PORT = "alluxio.master.rpc.port"
    MASTER_PORT_LEGACY = "alluxio.master.port"
    MASTER_WEB_PORT = "alluxio.master.web.port"
    EMBEDDED_JOURNAL_PORT = "alluxio.master.embedded.journal.port"
    JOURNAL_TYPE = "alluxio.master.journal.type"
    JOURNAL_FOLDER = "alluxio.master.journal.folder"
    WORKER_RPC_PORT = "alluxio.worker.rpc.port"
    WORKER_PORT_LEGACY = "alluxio.worker.port"
    WORKER_DATA_PORT = "alluxio.worker.data.port"
    WORKER_WEB_PORT = "alluxio.worker.web.port"
    RAMDISK_SIZE = "alluxio.worker.ramdisk.size"
    MEMORY_SIZE_LEGACY = "alluxio.worker.memory.size"
    # Alluxio properties the framework sets per task (see FRAMEWORK_MANAGED_KEYS)
    WORKER_HOSTNAME = "alluxio.worker.hostname"
    MASTER_RPC_ADDRESSES = "alluxio.master.rpc.addresses"
    EMBEDDED_JOURNAL_ADDRESSES = "alluxio.master.embedded.journal.addresses"
    TIER0_PATH = "alluxio.worker.tieredstore.level0.dirs.path"
    TIER0_QUOTA = "alluxio.worker.tieredstore.level0.dirs.quota"


# Two spellings of one setting: (Alluxio 2.9 name, legacy alias).
ALIAS_PAIRS: tuple[tuple[str, str], ...] = (
    (Key.MASTER_RPC_PORT, Key.MASTER_PORT_LEGACY),
    (Key.WORKER_RPC_PORT, Key.WORKER_PORT_LEGACY),
    (Key.RAMDISK_SIZE, Key.MEMORY_SIZE_LEGACY),
)

FRAMEWORK_MANAGED_KEYS: dict[str, str] = {
    Key.WORKER_HOSTNAME: "set per worker to its agent's hostname",
    Key.MASTER_RPC_ADDRESSES: "derived from the masters' placement",
    Key.EMBEDDED_JOURNAL_ADDRESSES: "derived from the masters' placement",
    Key.TIER0_PATH: "the executor points it at the worker's ramdisk",
    Key.TIER0_QUOTA: "the executor sets it to the ramdisk size (alluxio.worker.ramdisk.size)",
}

_SENSITIVE_KEY = re.compile(
    r"secret|password|passwd|credential|token|keytab|access[._-]?key|account\.key|private[._-]?key|\.key$",
    re.IGNORECASE,
)
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_URL_SCHEMES_NEEDING_HOST = {"http", "https", "ftp", "ftps", "hdfs", "s3", "s3a"}
MASKED = "******"


def is_sensitive_key(key: str) -> bool:
    """Whether a property's value must never appear in logs, labels or the status endpoint."""
    return key == Key.SECRET or _SENSITIVE_KEY.search(key) is not None


def mask_properties(properties: Mapping[str, str]) -> dict[str, str]:
    return {k: (MASKED if is_sensitive_key(k) else v) for k, v in properties.items()}


class Role(enum.StrEnum):
    MASTER = "master"
    WORKER = "worker"


class JournalType(enum.StrEnum):
    EMBEDDED = "EMBEDDED"
    UFS = "UFS"
    NOOP = "NOOP"


class SpecError(ValueError):
    """Every problem of a spec at once, each as (key, reason)."""

    def __init__(self, issues: list[tuple[str, str]]) -> None:
        self.issues = issues
        lines = "\n".join(f"  {key}: {reason}" for key, reason in issues)
        super().__init__(f"invalid configuration ({len(issues)} problem(s)):\n{lines}")


# Start-up delays with nothing to wait for; an operator's explicit value wins.
# - Alluxio masters phone home for updates by default; clusters here are often offline,
#   where the check only adds start-up latency.
# - A master that just won the Raft election submits its catch-up entry at once, and
#   Ratis refuses it until the new leader has committed its first entry; Alluxio then
#   sleeps this long (1s by default) before trying again. Once the JVM starts quickly
#   the first try always loses that race, and workers wait on it: 100ms saves ~0.8 s
#   between the master's RPC port answering and it serving. A retry is one local
#   Raft request, and the journal progress log it triggers is rate-limited.
STARTUP_DEFAULTS: dict[str, str] = {
    "alluxio.master.update.check.enabled": "false",
    "alluxio.master.embedded.journal.catchup.retry.wait": "100ms",
}


class Artifact(BaseModel):
    """Something the agent's fetcher downloads, and the executor verifies by sha256."""

    model_config = ConfigDict(frozen=True)
    url: str
    sha256: str

    @property
    def filename(self) -> str:
        """The name the Mesos fetcher gives the download in the sandbox: the URI's basename."""
        return posixpath.basename(urllib.parse.urlparse(self.url).path)


def _check_url(value: str) -> str:
    if value != value.strip() or any(c.isspace() for c in value):
        raise ValueError("a URL must not contain whitespace")
    if value.startswith("/"):
        return value
    parsed = urllib.parse.urlparse(value)
    if not parsed.scheme:
        raise ValueError(f"{value!r} is not a URL (scheme://host/path) or an absolute path")
    if parsed.scheme in _URL_SCHEMES_NEEDING_HOST and not parsed.netloc:
        raise ValueError(f"{value!r} has no host")
    if parsed.scheme == "file" and not parsed.path.startswith("/"):
        raise ValueError(f"{value!r}: a file URL needs an absolute path (file:///...)")
    if not posixpath.basename(parsed.path):
        raise ValueError(f"{value!r} does not name a file")
    return value


def _is_relative_inside(path: str) -> bool:
    parts = pathlib.PurePosixPath(path).parts
    return bool(parts) and not path.startswith("/") and ".." not in parts


def _port(value: int) -> int:
    if not 1 <= value <= 65535:
        raise ValueError(f"{value} is not a TCP port (1-65535)")
    return value


class ClusterSpec(BaseModel):
    """The desired Alluxio-on-Mesos deployment. Build it with `load_spec` (all problems at once)."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    # artifacts
    alluxio_url: str = Field(DEFAULT_ALLUXIO_URL, alias=Key.ALLUXIO_URL)
    alluxio_sha256: str | None = Field(None, alias=Key.ALLUXIO_SHA256)
    alluxio_path: str | None = Field(None, alias=Key.ALLUXIO_PATH)
    alluxio_home: str = Field("/opt/alluxio", alias=Key.ALLUXIO_HOME)
    jdk_url: str = Field(LOCAL, alias=Key.JDK_URL)
    jdk_sha256: str | None = Field(None, alias=Key.JDK_SHA256)
    jdk_path: str | None = Field(None, alias=Key.JDK_PATH)
    executor_url: str = Field(alias=Key.EXECUTOR_URL)
    executor_sha256: str = Field(alias=Key.EXECUTOR_SHA256)
    executor_python: str = Field("python3", alias=Key.EXECUTOR_PYTHON)
    cache_dir: str = Field("/var/lib/alluxio-mesos/cache", alias=Key.CACHE_DIR)
    # resources
    master_cpus: float = Field(1.0, alias=Key.MASTER_CPU)
    master_mem_bytes: int = Field(1024 * MB, alias=Key.MASTER_MEM)
    worker_cpus: float = Field(1.0, alias=Key.WORKER_CPU)
    worker_jvm_mem_bytes: int = Field(1024 * MB, alias=Key.WORKER_MEM)
    ramdisk_bytes: int = Field(1024 * MB, alias=Key.RAMDISK_SIZE)
    # tasks and placement
    master_name: str = Field("AlluxioMaster", alias=Key.MASTER_NAME, min_length=1)
    worker_name: str = Field("AlluxioWorker", alias=Key.WORKER_NAME, min_length=1)
    master_count: int = Field(1, alias=Key.MASTER_COUNT, ge=1, le=7)
    worker_count: int | None = Field(None, alias=Key.WORKER_COUNT)
    constraints: tuple[Constraint, ...] = Field((), alias=Key.CONSTRAINTS)
    master_constraints: tuple[Constraint, ...] = Field((), alias=Key.MASTER_CONSTRAINTS)
    worker_constraints: tuple[Constraint, ...] = Field((), alias=Key.WORKER_CONSTRAINTS)
    master_hostname: str | None = Field(None, alias=Key.MASTER_HOSTNAME)
    # registration
    framework_name: str = Field("alluxio", alias=Key.FRAMEWORK_NAME, min_length=1)
    principal: str = Field("alluxio", alias=Key.PRINCIPAL)
    secret: SecretStr | None = Field(None, alias=Key.SECRET)
    secret_file: str | None = Field(None, alias=Key.SECRET_FILE)
    role: str = Field("*", alias=Key.ROLE)
    user: str = Field("", alias=Key.USER)
    failover_timeout_seconds: float = Field(7 * 86400.0, alias=Key.FAILOVER_TIMEOUT)
    status_port: int = Field(19990, alias=Key.STATUS_PORT, ge=0, le=65535)
    # task lifecycle
    kill_grace_seconds: float = Field(30.0, alias=Key.KILL_GRACE)
    readiness_timeout_seconds: float = Field(300.0, alias=Key.READINESS_TIMEOUT)
    backoff_initial_seconds: float = Field(5.0, alias=Key.BACKOFF_INITIAL)
    backoff_max_seconds: float = Field(300.0, alias=Key.BACKOFF_MAX)
    run_as_user: str | None = Field(None, alias=Key.RUN_AS_USER)
    # ports and journal
    master_rpc_port: int = Field(19998, alias=Key.MASTER_RPC_PORT)
    master_web_port: int = Field(19999, alias=Key.MASTER_WEB_PORT)
    embedded_journal_port: int = Field(19200, alias=Key.EMBEDDED_JOURNAL_PORT)
    journal_type: JournalType = Field(JournalType.EMBEDDED, alias=Key.JOURNAL_TYPE)
    journal_folder: str = Field("/var/lib/alluxio-mesos/journal", alias=Key.JOURNAL_FOLDER)
    worker_rpc_port: int = Field(29998, alias=Key.WORKER_RPC_PORT)
    worker_data_port: int = Field(29999, alias=Key.WORKER_DATA_PORT)
    worker_web_port: int = Field(30000, alias=Key.WORKER_WEB_PORT)
    # every other property, passed to Alluxio unchanged
    properties: dict[str, str] = Field(default_factory=dict)

    # ---- field validators -------------------------------------------------------------------
    @field_validator("master_mem_bytes", "worker_jvm_mem_bytes", "ramdisk_bytes", mode="before")
    @classmethod
    def _size(cls, value: Any) -> int:
        if isinstance(value, bool):
            raise ValueError("expected a size such as 1024MB")
        if isinstance(value, int | float):
            # Alluxio reads a bare number as bytes (the old framework read these keys the same way).
            return int(value)
        return parse_size(str(value))

    @field_validator(
        "failover_timeout_seconds",
        "kill_grace_seconds",
        "readiness_timeout_seconds",
        "backoff_initial_seconds",
        "backoff_max_seconds",
        mode="before",
    )
    @classmethod
    def _duration(cls, value: Any) -> float:
        if isinstance(value, bool):
            raise ValueError("expected a duration such as 30secs")
        if isinstance(value, int | float):
            return float(value)
        return parse_duration(str(value))

    @field_validator("constraints", "master_constraints", "worker_constraints", mode="before")
    @classmethod
    def _constraints(cls, value: Any) -> tuple[Constraint, ...]:
        if isinstance(value, tuple) and all(isinstance(c, Constraint) for c in value):
            return value
        if isinstance(value, str) or (isinstance(value, list) and all(isinstance(v, str) for v in value)):
            return parse_constraints(value)
        raise ValueError("expected 'field:value;field:LIKE:regex' or a list of such entries")

    @field_validator("worker_count", mode="before")
    @classmethod
    def _worker_count(cls, value: Any) -> int | None:
        if value is None or (isinstance(value, str) and value.strip().lower() == WORKER_COUNT_ALL):
            return None
        try:
            count = int(str(value).strip())
        except ValueError:
            raise ValueError(f"{value!r}: expected '{WORKER_COUNT_ALL}' or a positive number") from None
        if count < 1:
            raise ValueError(f"{count}: must be at least 1 (or '{WORKER_COUNT_ALL}')")
        return count

    @field_validator("alluxio_sha256", "jdk_sha256", "executor_sha256", mode="before")
    @classmethod
    def _sha256(cls, value: Any) -> str | None:
        if value is None:
            return None
        text = str(value).strip().lower()
        if not _SHA256.match(text):
            raise ValueError("expected 64 hexadecimal characters (a sha256 digest)")
        return text

    @field_validator("alluxio_url", "jdk_url", mode="after")
    @classmethod
    def _artifact_url(cls, value: str) -> str:
        return value if value == LOCAL else _check_url(value)

    @field_validator("executor_url", mode="after")
    @classmethod
    def _executor_url(cls, value: str) -> str:
        return _check_url(value)

    @field_validator("master_rpc_port", "master_web_port", "embedded_journal_port", mode="after")
    @classmethod
    def _master_port(cls, value: int) -> int:
        return _port(value)

    @field_validator("worker_rpc_port", "worker_data_port", "worker_web_port", mode="after")
    @classmethod
    def _worker_port(cls, value: int) -> int:
        return _port(value)

    @field_validator("master_cpus", "worker_cpus", mode="after")
    @classmethod
    def _cpus(cls, value: float) -> float:
        if not math.isfinite(value) or value < 0.01:
            raise ValueError(f"{value} cpus: must be at least 0.01")
        return round(value, 3)

    @field_validator("role", mode="after")
    @classmethod
    def _role(cls, value: str) -> str:
        problem = validate_role(value)
        if problem:
            raise ValueError(problem)
        return value

    # ---- cross-field rules ------------------------------------------------------------------
    @model_validator(mode="after")
    def _cross_field(self) -> ClusterSpec:
        issues = list(self._cross_field_issues())
        if issues:
            raise PydanticCustomError(
                "spec_issues",
                "{summary}",
                {"summary": "; ".join(f"{k}: {r}" for k, r in issues), "issues": issues},
            )
        return self

    def _cross_field_issues(self) -> Iterable[tuple[str, str]]:
        yield from self._artifact_issues()
        yield from self._memory_issues()
        yield from self._port_issues()
        if self.master_count > 1 and self.journal_type is not JournalType.EMBEDDED:
            yield (
                Key.MASTER_COUNT,
                f"{self.master_count} masters need {Key.JOURNAL_TYPE}=EMBEDDED (is {self.journal_type})",
            )
        if self.master_count > 1 and self.master_hostname:
            yield Key.MASTER_HOSTNAME, f"pins a single master but {Key.MASTER_COUNT} is {self.master_count}"
        if self.failover_timeout_seconds <= 0:
            yield Key.FAILOVER_TIMEOUT, "must be positive, or every framework restart kills all Alluxio tasks"
        if self.backoff_initial_seconds <= 0:
            yield Key.BACKOFF_INITIAL, "must be positive"
        if self.backoff_max_seconds < self.backoff_initial_seconds:
            yield (
                Key.BACKOFF_MAX,
                f"must be at least {Key.BACKOFF_INITIAL} ({self.backoff_initial_seconds:g}s)",
            )
        if self.kill_grace_seconds < 0:
            yield Key.KILL_GRACE, "must not be negative"
        if self.readiness_timeout_seconds <= 0:
            yield Key.READINESS_TIMEOUT, "must be positive"
        if self.secret is not None and self.secret_file is not None:
            yield Key.SECRET_FILE, f"give either {Key.SECRET} or {Key.SECRET_FILE}, not both"
        if self.secret_file is not None and not pathlib.PurePosixPath(self.secret_file).is_absolute():
            yield Key.SECRET_FILE, f"{self.secret_file!r} must be an absolute path"
        journal = pathlib.PurePosixPath(self.journal_folder)
        if not journal.is_absolute() or ".." in journal.parts:
            yield Key.JOURNAL_FOLDER, f"{self.journal_folder!r} must be an absolute local path"
        cache = pathlib.PurePosixPath(self.cache_dir)
        if not cache.is_absolute() or ".." in cache.parts or "\x00" in self.cache_dir:
            yield Key.CACHE_DIR, f"{self.cache_dir!r} must be an absolute local path"
        for key, why in FRAMEWORK_MANAGED_KEYS.items():
            if key in self.properties:
                yield key, f"is managed by the framework ({why}); remove it"
        for key in self.properties:
            if key.startswith(INTEGRATION_PREFIX):
                yield key, "unknown alluxio.integration key"

    def _artifact_issues(self) -> Iterable[tuple[str, str]]:
        if self.alluxio_url == LOCAL:
            if self.alluxio_sha256 is not None:
                yield Key.ALLUXIO_SHA256, f"given but {Key.ALLUXIO_URL} is LOCAL (nothing is downloaded)"
            if not self.alluxio_home or not self.alluxio_home.startswith("/"):
                yield (
                    Key.ALLUXIO_HOME,
                    f"{Key.ALLUXIO_URL}=LOCAL needs the absolute path of the preinstalled Alluxio",
                )
        elif self.alluxio_sha256 is None:
            yield Key.ALLUXIO_SHA256, f"required: {Key.ALLUXIO_URL} is downloaded and must be verified"
        if self.alluxio_path is not None:
            if self.alluxio_url == LOCAL:
                yield (
                    Key.ALLUXIO_PATH,
                    f"only means something inside a downloaded tarball; {Key.ALLUXIO_URL} is LOCAL",
                )
            elif not _is_relative_inside(self.alluxio_path):
                yield Key.ALLUXIO_PATH, f"{self.alluxio_path!r} must be a relative path inside the tarball"
        if self.jdk_url == LOCAL:
            if self.jdk_sha256 is not None:
                yield Key.JDK_SHA256, f"given but {Key.JDK_URL} is LOCAL (nothing is downloaded)"
            if self.jdk_path is not None:
                yield Key.JDK_PATH, f"only means something inside a downloaded JDK; {Key.JDK_URL} is LOCAL"
        else:
            if self.jdk_sha256 is None:
                yield Key.JDK_SHA256, f"required: {Key.JDK_URL} is downloaded and must be verified"
            if not self.jdk_path:
                yield Key.JDK_PATH, f"required with a JDK URL: the JDK's directory inside {self.jdk_url}"
            elif not _is_relative_inside(self.jdk_path):
                yield Key.JDK_PATH, f"{self.jdk_path!r} must be a relative path inside the JDK archive"

    def _memory_issues(self) -> Iterable[tuple[str, str]]:
        if self.master_mem_bytes < MIN_JVM_MEM_MB * MB:
            yield (
                Key.MASTER_MEM,
                f"{self.master_mem_bytes // MB}MB is below the {MIN_JVM_MEM_MB}MB a JVM needs",
            )
        if self.worker_jvm_mem_bytes < MIN_JVM_MEM_MB * MB:
            yield (
                Key.WORKER_MEM,
                f"{self.worker_jvm_mem_bytes // MB}MB is below the {MIN_JVM_MEM_MB}MB a JVM needs",
            )
        if self.ramdisk_bytes < MB:
            yield Key.RAMDISK_SIZE, "must be at least 1MB (a tmpfs of size 0 would be unlimited)"

    def _port_issues(self) -> Iterable[tuple[str, str]]:
        owners: dict[int, str] = {}
        for key, port in {**self.master_ports(), **self.worker_ports()}.items():
            if port in owners:
                yield (
                    key,
                    f"port {port} is also {owners[port]}; a master and a worker may share a host,"
                    " so every port must differ",
                )
            else:
                owners[port] = key

    # ---- derived values ---------------------------------------------------------------------
    def master_ports(self) -> dict[str, int]:
        """Ports a master binds, by property name."""
        ports = {Key.MASTER_RPC_PORT: self.master_rpc_port, Key.MASTER_WEB_PORT: self.master_web_port}
        if self.journal_type is JournalType.EMBEDDED:
            ports[Key.EMBEDDED_JOURNAL_PORT] = self.embedded_journal_port
        return ports

    def worker_ports(self) -> dict[str, int]:
        """Ports a worker binds, by property name (Alluxio 2.x binds no separate data port)."""
        return {Key.WORKER_RPC_PORT: self.worker_rpc_port, Key.WORKER_WEB_PORT: self.worker_web_port}

    def ports(self, role: Role) -> dict[str, int]:
        return self.master_ports() if role is Role.MASTER else self.worker_ports()

    def all_ports(self) -> list[int]:
        """Every port an agent must offer to host a master and a worker (for agent provisioning)."""
        return sorted({*self.master_ports().values(), *self.worker_ports().values()})

    def cpus(self, role: Role) -> float:
        return self.master_cpus if role is Role.MASTER else self.worker_cpus

    def jvm_mem_mb(self, role: Role) -> int:
        return bytes_to_mb_ceil(self.master_mem_bytes if role is Role.MASTER else self.worker_jvm_mem_bytes)

    def heap_mb(self, role: Role) -> int:
        return max(int(self.jvm_mem_mb(role) * JVM_HEAP_FRACTION), 128)

    def ramdisk_mb(self) -> int:
        return bytes_to_mb_ceil(self.ramdisk_bytes)

    def task_mem_mb(self, role: Role) -> int:
        """Mesos mem of a task: the JVM, plus the ramdisk for a worker (tmpfs pages count as memory)."""
        return self.jvm_mem_mb(role) + (self.ramdisk_mb() if role is Role.WORKER else 0)

    def task_name(self, role: Role) -> str:
        return self.master_name if role is Role.MASTER else self.worker_name

    def role_constraints(self, role: Role) -> tuple[Constraint, ...]:
        return self.constraints + (
            self.master_constraints if role is Role.MASTER else self.worker_constraints
        )

    def artifacts(self) -> list[Artifact]:
        """What agents fetch for a task, besides the executor bundle."""
        found = []
        if self.alluxio_url != LOCAL and self.alluxio_sha256:
            found.append(Artifact(url=self.alluxio_url, sha256=self.alluxio_sha256))
        if self.jdk_url != LOCAL and self.jdk_sha256:
            found.append(Artifact(url=self.jdk_url, sha256=self.jdk_sha256))
        return found

    def executor_artifact(self) -> Artifact:
        return Artifact(url=self.executor_url, sha256=self.executor_sha256)

    def common_alluxio_properties(self) -> dict[str, str]:
        """Properties every master and worker gets; the task factory adds per-task ones, and the
        executor writes the task's own ports, ramdisk and journal folder from the task plan."""
        props = {**STARTUP_DEFAULTS, **self.properties}
        props[Key.JOURNAL_TYPE] = self.journal_type.value
        return props

    def mesos_secret(self) -> str | None:
        """The Mesos secret, read from the secret file if one is configured. Never log it."""
        if self.secret is not None:
            return self.secret.get_secret_value()
        if self.secret_file is not None:
            return pathlib.Path(self.secret_file).read_text(encoding="utf-8").strip()
        return None

    # ---- views ------------------------------------------------------------------------------
    def to_properties(self) -> dict[str, str]:
        """The flat key/value form (secrets included: only for the framework's own 0600 config file)."""
        data: dict[str, str] = {}
        for name, info in type(self).model_fields.items():
            if name == "properties":
                continue
            value = getattr(self, name)
            if value is None or value == ():
                continue
            data[info.alias or name] = _field_text(name, value)
        data.update(self.properties)
        return dict(sorted(data.items()))

    def public_view(self) -> dict[str, str]:
        """The flat form with every secret masked: safe for logs and the status endpoint."""
        return mask_properties(self.to_properties())

    def model_copy_with(self, overrides: Mapping[str, Any]) -> ClusterSpec:
        """A new validated spec with some keys replaced (used for the CLI's master-host argument)."""
        return load_spec({**self.to_properties(), **overrides})


def _field_text(name: str, value: Any) -> str:
    """A field's value as a property string, sizes and durations in their readable units."""
    if name.endswith("_bytes"):
        return format_size(int(value))
    if name.endswith("_seconds"):
        return format_duration(float(value))
    return _property_text(value)


def _property_text(value: Any) -> str:
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, tuple):
        return ";".join(str(c) for c in value)
    if isinstance(value, enum.Enum):
        return str(value.value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


_KNOWN_KEYS = frozenset(
    info.alias for name, info in ClusterSpec.model_fields.items() if name != "properties" and info.alias
) | {alias for _, alias in ALIAS_PAIRS}


KEY_HELP: dict[str, str] = {
    Key.ALLUXIO_URL: "Alluxio tarball URL, or LOCAL (preinstalled at alluxio.home)",
    Key.ALLUXIO_SHA256: "sha256 of that tarball (required with a URL)",
    Key.ALLUXIO_PATH: "the Alluxio directory inside the tarball (default: its name without -bin.tar.gz)",
    Key.ALLUXIO_HOME: "where Alluxio is installed on agents when the URL is LOCAL",
    Key.JDK_URL: "JDK tarball URL, or LOCAL (the agents' java)",
    Key.JDK_SHA256: "sha256 of the JDK tarball (required with a URL)",
    Key.JDK_PATH: "the JDK directory inside its tarball",
    Key.EXECUTOR_URL: "the executor bundle (alluxio-mesos-executor.pyz) URL",
    Key.EXECUTOR_SHA256: "its sha256, checked before it runs",
    Key.EXECUTOR_PYTHON: "the Python 3.9+ the agents run the executor with",
    Key.CACHE_DIR: "directory on each agent where executors unpack the Alluxio (and JDK) tarball once "
    "per host, by sha256, and share it (versions unused for 7 days are pruned)",
    Key.MASTER_CPU: "cpus per Alluxio master",
    Key.MASTER_MEM: "memory per master (the JVM heap is 75% of it)",
    Key.WORKER_CPU: "cpus per Alluxio worker",
    Key.WORKER_MEM: "JVM memory per worker; the task asks for this plus the ramdisk",
    Key.RAMDISK_SIZE: "each worker's tmpfs ramdisk (legacy name alluxio.worker.memory.size)",
    Key.MASTER_NAME: "Mesos task name of masters",
    Key.WORKER_NAME: "Mesos task name of workers",
    Key.MASTER_COUNT: "number of masters (more than 1 needs the EMBEDDED journal)",
    Key.WORKER_COUNT: "'all' (one per eligible agent) or the maximum number of workers",
    Key.CONSTRAINTS: "placement constraints for all tasks, separated by ';': field:value, "
    "field:LIKE:regex, field:UNLIKE:regex (field: hostname or an agent attribute)",
    Key.MASTER_CONSTRAINTS: "extra constraints for masters",
    Key.WORKER_CONSTRAINTS: "extra constraints for workers",
    Key.MASTER_HOSTNAME: "run the master on the agent with this hostname",
    Key.FRAMEWORK_NAME: "the framework's name in Mesos",
    Key.PRINCIPAL: "Mesos principal",
    Key.SECRET: "Mesos secret for HTTP Basic authentication (never passed to tasks)",
    Key.SECRET_FILE: "file holding the Mesos secret instead",
    Key.ROLE: "Mesos role",
    Key.USER: "user Mesos runs the executors as (empty: the framework's user)",
    Key.FAILOVER_TIMEOUT: "how long Mesos keeps the tasks while the framework is away",
    Key.STATUS_PORT: "port of the framework's status endpoint (its Mesos web UI link)",
    Key.KILL_GRACE: "SIGTERM to SIGKILL grace when a task is killed",
    Key.READINESS_TIMEOUT: "how long a server may take to answer on its RPC port",
    Key.BACKOFF_INITIAL: "first delay before relaunching a failed task (doubles each time)",
    Key.BACKOFF_MAX: "longest relaunch delay",
    Key.RUN_AS_USER: "unprivileged user the JVMs run as when the executor is root",
    Key.MASTER_RPC_PORT: "master RPC port (legacy name alluxio.master.port)",
    Key.MASTER_WEB_PORT: "master web UI port",
    Key.EMBEDDED_JOURNAL_PORT: "embedded journal port (requested only with the EMBEDDED journal)",
    Key.JOURNAL_TYPE: "EMBEDDED, UFS or NOOP",
    Key.JOURNAL_FOLDER: "the masters' journal directory on their hosts, kept across relaunches",
    Key.WORKER_RPC_PORT: "worker RPC port (legacy name alluxio.worker.port)",
    Key.WORKER_DATA_PORT: "accepted for old configurations; Alluxio 2.x binds no data port",
    Key.WORKER_WEB_PORT: "worker web UI port",
}


def describe_keys() -> str:
    """Every key with its default and meaning, for `--help`."""
    defaults: dict[str, str] = {}
    for name, info in ClusterSpec.model_fields.items():
        if not info.alias:
            continue
        if info.is_required():
            defaults[info.alias] = "(required)"
            continue
        default = info.get_default(call_default_factory=True)
        if default is None or default == ():
            defaults[info.alias] = "(unset)"
        else:
            defaults[info.alias] = _field_text(name, default) or '""'
    return "\n".join(f"  {key} = {defaults[key]}\n      {text}" for key, text in KEY_HELP.items())


def _normalize_value(key: str, value: Any, issues: list[tuple[str, str]]) -> Any:
    if value is None or isinstance(value, str | int | float | bool):
        if isinstance(value, bool):
            return "true" if value else "false"
        return value
    if isinstance(value, list) and key in {Key.CONSTRAINTS, Key.MASTER_CONSTRAINTS, Key.WORKER_CONSTRAINTS}:
        return value
    issues.append((key, f"expected a string or number, got {type(value).__name__}"))
    return None


def load_spec(source: Mapping[str, Any]) -> ClusterSpec:
    """Validate a flat mapping of keys; raise SpecError listing every problem with its key."""
    issues: list[tuple[str, str]] = []
    data: dict[str, Any] = {}
    for key, value in source.items():
        if not isinstance(key, str) or not key:
            issues.append((str(key), "keys must be non-empty strings"))
            continue
        normalized = _normalize_value(key, value, issues)
        if normalized is not None:
            data[key] = normalized
    for key in list(data):
        if key.startswith(INTEGRATION_PREFIX) and key not in _KNOWN_KEYS:
            close = difflib.get_close_matches(
                key, sorted(k for k in _KNOWN_KEYS if k.startswith(INTEGRATION_PREFIX)), n=1
            )
            hint = f" (did you mean {close[0]}?)" if close else ""
            issues.append((key, f"unknown alluxio.integration key{hint}"))
            del data[key]
    for current, legacy in ALIAS_PAIRS:
        if legacy in data:
            legacy_value = data.pop(legacy)
            if current in data and str(data[current]) != str(legacy_value):
                issues.append(
                    (
                        legacy,
                        f"conflicts with {current} ({legacy_value!r} vs {data[current]!r}); set only one",
                    )
                )
            else:
                data.setdefault(current, legacy_value)
    known = {k: v for k, v in data.items() if k in _KNOWN_KEYS}
    known["properties"] = {k: str(v) for k, v in data.items() if k not in _KNOWN_KEYS}
    if issues:
        # Report shape problems together with whatever validation finds in the rest.
        issues.extend(_validation_issues(known))
        raise SpecError(issues)
    try:
        return ClusterSpec.model_validate(known)
    except ValidationError as error:
        raise SpecError(_issues_from(error)) from None


def _validation_issues(data: dict[str, Any]) -> list[tuple[str, str]]:
    try:
        ClusterSpec.model_validate(data)
    except ValidationError as error:
        return _issues_from(error)
    return []


def _issues_from(error: ValidationError) -> list[tuple[str, str]]:
    issues: list[tuple[str, str]] = []
    for item in error.errors(include_url=False):
        if item["type"] == "spec_issues":
            issues.extend((str(k), str(r)) for k, r in item["ctx"]["issues"])
            continue
        key = ".".join(str(part) for part in item["loc"]) or "<spec>"
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "missing":
            message = "required"
        issues.append((key, message))
    return issues


def load_spec_file(path: pathlib.Path) -> ClusterSpec:
    """Load `alluxio-site.properties` (java properties) or a `.json` file with the same flat keys."""
    if not path.is_file():
        raise SpecError([(str(path), "configuration file not found")])
    if path.suffix == ".json":
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as error:
            raise SpecError([(str(path), f"not valid JSON: {error}")]) from None
        if not isinstance(raw, dict):
            raise SpecError([(str(path), "must contain one JSON object of key: value")])
        return load_spec(raw)
    try:
        return load_spec(load_properties_file(path))
    except ValueError as error:
        if isinstance(error, SpecError):
            raise
        raise SpecError([(str(path), str(error))]) from None
