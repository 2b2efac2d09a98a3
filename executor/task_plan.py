"""The task plan: what the framework tells one executor to run, carried in ``TaskInfo.data``.

Wire form: ``TaskInfo.data`` is base64 (Mesos ``bytes``) of a UTF-8 JSON object. Version 2 fields
(version 2 added the ``staged`` home modes, ``alluxio_dist``, ``jdk_dist`` and ``cache_dir``):

``version``                 2 (an executor refuses versions it does not know)
``role``                    ``"master"`` or ``"worker"``
``alluxio_properties``      ``{key: value}`` strings, written to ``conf/alluxio-site.properties``.
                            Never framework secrets: keys like ``alluxio.integration.mesos.secret``
                            are refused. Keys the executor manages itself (ports, tier-0 path and
                            quota, ramdisk size, journal folder) may appear only with the same value.
``artifacts``               ``[{"filename", "sha256", "url"?}]``: files the agent's fetcher put in
                            the sandbox (``filename`` relative to it), checked before anything runs.
``alluxio_home_mode``       ``"fetched"``: ``alluxio_home`` is a directory inside the sandbox
                            (the unpacked tarball); ``"local"``: ``alluxio_home`` is an absolute
                            path on the agent (the old ``alluxio.home`` with jar url ``LOCAL``);
                            ``"staged"``: the executor stages ``alluxio_dist`` once per host under
                            ``cache_dir`` (executor/staging.py) and ``alluxio_home`` is the
                            directory inside that tarball.
``alluxio_home``            see above
``alluxio_dist``            ``{"url", "sha256"}`` of the Alluxio tarball when ``alluxio_home_mode``
                            is ``"staged"``, else null
``java_home_mode``          ``"fetched"``: ``java_home`` is the JDK directory inside the sandbox
                            (the old ``jdk.path`` inside the fetched JDK tarball); ``"local"``: the
                            agent's JDK, ``java_home`` absolute or empty (then ``JAVA_HOME`` or PATH);
                            ``"staged"``: like Alluxio's, from ``jdk_dist``, ``java_home`` the JDK
                            directory inside that tarball.
``java_home``               see above
``jdk_dist``                ``{"url", "sha256"}`` of the JDK tarball when ``java_home_mode`` is
                            ``"staged"``, else null
``cache_dir``               absolute directory on the agent holding staged tarballs (shared by
                            every executor on the host); required with a staged mode, else empty
``heap_size_mb``            JVM heap (-Xmx and -Xms)
``ramdisk_size_bytes``      worker only, > 0: the tmpfs tier-0 size, exactly
``ramdisk_dir``             worker only: absolute mount point, or empty for ``<sandbox>/ramdisk``
``journal_dir``             master only: absolute directory outside the sandbox, kept across runs
``ports``                   master: ``rpc``, ``web`` (optional ``embedded_journal``);
                            worker: ``rpc``, ``web`` (optional legacy ``data``, not used by 2.x)
``run_as_user``             user the JVM runs as when the executor is root (empty: ``nobody``);
                            never ``root``. A non-root executor runs the JVM as itself.
``grace_period_secs``       SIGTERM→SIGKILL grace, or null (then kill_policy / agent default)
``readiness_timeout_secs``  how long the server may take to answer on its RPC port
``instance_name``           names this server's leftover-state file; one per worker/master slot
``state_dir``               where that state file lives (empty: a default outside the sandbox)
``jvm_options``             extra JVM options, appended after the executor's own
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from dataclasses import MISSING, dataclass, field, fields
from typing import Any, Dict, List, Optional, Tuple

PLAN_VERSION = 2
ROLES = ("master", "worker")
HOME_MODES = ("fetched", "local", "staged")

# Port names per role and the Alluxio 2.x properties for each: the first is written, all are
# checked against the plan (the 1.x names are aliases Alluxio 2.x still reads). A worker's legacy
# ``data`` port is accepted, so plans can reserve it, but Alluxio 2.x serves data over ``rpc``.
PORT_PROPERTIES: Dict[str, Dict[str, Tuple[str, ...]]] = {
    "master": {
        "rpc": ("alluxio.master.rpc.port", "alluxio.master.port"),
        "web": ("alluxio.master.web.port",),
        "embedded_journal": ("alluxio.master.embedded.journal.port",),
    },
    "worker": {
        "rpc": ("alluxio.worker.rpc.port", "alluxio.worker.port"),
        "data": (),
        "web": ("alluxio.worker.web.port",),
    },
}
REQUIRED_PORTS: Dict[str, Tuple[str, ...]] = {"master": ("rpc", "web"), "worker": ("rpc", "web")}

TIER0_PATH_KEY = "alluxio.worker.tieredstore.level0.dirs.path"
TIER0_QUOTA_KEY = "alluxio.worker.tieredstore.level0.dirs.quota"
RAMDISK_SIZE_KEY = "alluxio.worker.ramdisk.size"
JOURNAL_FOLDER_KEY = "alluxio.master.journal.folder"

# Framework credentials live under alluxio.integration.*; they must never reach a task.
_SECRET_KEY = re.compile(r"^alluxio\.integration\..*(secret|password|passwd|token|credential)", re.IGNORECASE)
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_INSTANCE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
_USER_NAME = re.compile(r"^[a-z_][a-z0-9_-]{0,31}\$?$")
_PROPERTY_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_STAGEABLE_URL = re.compile(r"^(https?|file)://")


class TaskPlanError(ValueError):
    """The plan is malformed; the message names the offending key and what is wrong."""


def is_secret_key(key: str) -> bool:
    """True for keys that carry framework credentials (never written for a task)."""
    return bool(_SECRET_KEY.search(key))


@dataclass(frozen=True)
class Artifact:
    filename: str
    sha256: str
    url: str = ""


@dataclass(frozen=True)
class Distribution:
    """A tarball the executor stages once per host (executor/staging.py), named by its sha256."""

    url: str
    sha256: str


@dataclass(frozen=True)
class TaskPlan:
    role: str
    alluxio_properties: Dict[str, str]
    artifacts: List[Artifact]
    alluxio_home_mode: str
    alluxio_home: str
    java_home_mode: str
    java_home: str
    heap_size_mb: int
    ports: Dict[str, int]
    ramdisk_size_bytes: int = 0
    ramdisk_dir: str = ""
    journal_dir: str = ""
    run_as_user: str = ""
    grace_period_secs: Optional[float] = None
    readiness_timeout_secs: float = 180.0
    instance_name: str = ""
    state_dir: str = ""
    jvm_options: List[str] = field(default_factory=list)
    alluxio_dist: Optional[Distribution] = None
    jdk_dist: Optional[Distribution] = None
    cache_dir: str = ""
    version: int = PLAN_VERSION

    def __post_init__(self) -> None:
        _validate(self)

    @property
    def effective_instance_name(self) -> str:
        return self.instance_name or "alluxio-" + self.role

    def to_dict(self) -> Dict[str, Any]:
        return {
            "version": self.version,
            "role": self.role,
            "alluxio_properties": dict(sorted(self.alluxio_properties.items())),
            "artifacts": [{"filename": a.filename, "sha256": a.sha256, "url": a.url} for a in self.artifacts],
            "alluxio_home_mode": self.alluxio_home_mode,
            "alluxio_home": self.alluxio_home,
            "java_home_mode": self.java_home_mode,
            "java_home": self.java_home,
            "heap_size_mb": self.heap_size_mb,
            "ports": dict(sorted(self.ports.items())),
            "ramdisk_size_bytes": self.ramdisk_size_bytes,
            "ramdisk_dir": self.ramdisk_dir,
            "journal_dir": self.journal_dir,
            "run_as_user": self.run_as_user,
            "grace_period_secs": self.grace_period_secs,
            "readiness_timeout_secs": self.readiness_timeout_secs,
            "instance_name": self.instance_name,
            "state_dir": self.state_dir,
            "jvm_options": list(self.jvm_options),
            "alluxio_dist": _dist_dict(self.alluxio_dist),
            "jdk_dist": _dist_dict(self.jdk_dist),
            "cache_dir": self.cache_dir,
        }

    def to_json(self) -> str:
        """Canonical JSON: sorted keys, no whitespace, so equal plans give equal bytes."""
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    def to_task_data(self) -> str:
        """The base64 string to put in ``TaskInfo.data``."""
        return base64.b64encode(self.to_json().encode("utf-8")).decode("ascii")

    @classmethod
    def from_json(cls, text: Any) -> TaskPlan:
        if isinstance(text, (bytes, bytearray)):
            try:
                text = bytes(text).decode("utf-8")
            except UnicodeDecodeError as exc:
                raise TaskPlanError("task plan: not UTF-8 (%s)" % exc) from None
        if not isinstance(text, str):
            raise TaskPlanError("task plan: expected JSON text, got %s" % type(text).__name__)
        try:
            raw = json.loads(text)
        except ValueError as exc:
            raise TaskPlanError("task plan: not valid JSON (%s)" % exc) from None
        return cls.from_dict(raw)

    @classmethod
    def from_task_data(cls, data: Any) -> TaskPlan:
        """Decode ``TaskInfo.data`` (base64 as it arrives over the v1 JSON API)."""
        if not data:
            raise TaskPlanError("task plan: TaskInfo.data is empty; the framework must send a task plan")
        try:
            decoded = base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError, TypeError) as exc:
            raise TaskPlanError("task plan: TaskInfo.data is not base64 (%s)" % exc) from None
        return cls.from_json(decoded)

    @classmethod
    def from_dict(cls, raw: Any) -> TaskPlan:
        if not isinstance(raw, dict):
            raise TaskPlanError("task plan: expected a JSON object, got %s" % type(raw).__name__)
        version = raw.get("version")
        if version != PLAN_VERSION:
            raise TaskPlanError(
                "task plan: key 'version': this executor understands version %d, got %r"
                % (PLAN_VERSION, version)
            )
        unknown = sorted(set(raw) - _FIELD_NAMES)
        if unknown:
            raise TaskPlanError("task plan: unknown key(s) %s" % ", ".join(repr(k) for k in unknown))
        missing = sorted(k for k in _REQUIRED_FIELDS if k not in raw)
        if missing:
            raise TaskPlanError("task plan: missing key(s) %s" % ", ".join(repr(k) for k in missing))
        artifacts_raw = raw["artifacts"]
        if not isinstance(artifacts_raw, list):
            raise TaskPlanError("task plan: key 'artifacts': must be a list")
        artifacts = []
        for i, entry in enumerate(artifacts_raw):
            if not isinstance(entry, dict):
                raise TaskPlanError("task plan: key 'artifacts[%d]': must be an object" % i)
            extra = sorted(set(entry) - {"filename", "sha256", "url"})
            if extra:
                raise TaskPlanError("task plan: key 'artifacts[%d]': unknown key(s) %s" % (i, extra))
            for name in ("filename", "sha256"):
                if name not in entry:
                    raise TaskPlanError("task plan: key 'artifacts[%d].%s': missing" % (i, name))
            artifacts.append(
                Artifact(filename=entry["filename"], sha256=entry["sha256"], url=entry.get("url", ""))
            )
        kwargs = {k: v for k, v in raw.items() if k not in ("artifacts", "version")}
        kwargs["artifacts"] = artifacts
        for name in ("alluxio_dist", "jdk_dist"):
            kwargs[name] = _dist_from(name, raw.get(name))
        return cls(version=version, **kwargs)


# Derived from the dataclass so a new field cannot be forgotten here.
_FIELD_NAMES = {f.name for f in fields(TaskPlan)}
_REQUIRED_FIELDS = {f.name for f in fields(TaskPlan) if f.default is MISSING and f.default_factory is MISSING}


def _dist_dict(dist: Optional[Distribution]) -> Optional[Dict[str, str]]:
    return None if dist is None else {"url": dist.url, "sha256": dist.sha256}


def _dist_from(key: str, raw: Any) -> Optional[Distribution]:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise _fail(key, "must be null or an object with url and sha256")
    extra = sorted(set(raw) - {"url", "sha256"})
    if extra:
        raise _fail(key, "unknown key(s) %s" % extra)
    for name in ("url", "sha256"):
        if name not in raw:
            raise _fail("%s.%s" % (key, name), "missing")
    return Distribution(url=raw["url"], sha256=raw["sha256"])


def _fail(key: str, problem: str) -> TaskPlanError:
    return TaskPlanError("task plan: key %r: %s" % (key, problem))


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool)) and math.isfinite(value)


def _check_relative_path(key: str, value: Any) -> None:
    if not isinstance(value, str) or not value:
        raise _fail(key, "must be a non-empty path relative to the sandbox")
    parts = value.split("/")
    if value.startswith("/") or ".." in parts or "\x00" in value:
        raise _fail(key, "must stay inside the sandbox (relative, no '..'), got %r" % value)


def _check_absolute_path(key: str, value: Any, allow_empty: bool) -> None:
    if not isinstance(value, str):
        raise _fail(key, "must be a string")
    if value == "" and allow_empty:
        return
    if not value.startswith("/") or "\x00" in value or ".." in value.split("/"):
        raise _fail(key, "must be an absolute path without '..', got %r" % value)


def _validate(plan: TaskPlan) -> None:
    if plan.version != PLAN_VERSION:
        raise _fail("version", "this executor understands version %d, got %r" % (PLAN_VERSION, plan.version))
    if plan.role not in ROLES:
        raise _fail("role", "must be one of %s, got %r" % ("|".join(ROLES), plan.role))
    _validate_properties(plan)
    _validate_artifacts(plan)
    _validate_homes(plan)
    if not _is_int(plan.heap_size_mb) or plan.heap_size_mb < 64:
        raise _fail("heap_size_mb", "must be an integer >= 64, got %r" % (plan.heap_size_mb,))
    _validate_ports(plan)
    _validate_role_storage(plan)
    if not isinstance(plan.run_as_user, str) or (plan.run_as_user and not _USER_NAME.match(plan.run_as_user)):
        raise _fail("run_as_user", "must be a user name like 'alluxio', got %r" % (plan.run_as_user,))
    if plan.run_as_user == "root":
        raise _fail("run_as_user", "must be an unprivileged user, not 'root'")
    if plan.grace_period_secs is not None and (
        not _is_number(plan.grace_period_secs) or plan.grace_period_secs < 0
    ):
        raise _fail("grace_period_secs", "must be null or a number >= 0, got %r" % (plan.grace_period_secs,))
    if not _is_number(plan.readiness_timeout_secs) or plan.readiness_timeout_secs <= 0:
        raise _fail("readiness_timeout_secs", "must be a number > 0, got %r" % (plan.readiness_timeout_secs,))
    if not isinstance(plan.instance_name, str) or (
        plan.instance_name and not _INSTANCE_NAME.match(plan.instance_name)
    ):
        raise _fail("instance_name", "must match [A-Za-z0-9][A-Za-z0-9._-]*, got %r" % (plan.instance_name,))
    _check_absolute_path("state_dir", plan.state_dir, allow_empty=True)
    if not isinstance(plan.jvm_options, list) or not all(isinstance(o, str) and o for o in plan.jvm_options):
        raise _fail("jvm_options", "must be a list of non-empty strings")


def _validate_properties(plan: TaskPlan) -> None:
    props = plan.alluxio_properties
    if not isinstance(props, dict):
        raise _fail("alluxio_properties", "must be an object of string keys to string values")
    for key, value in props.items():
        if not isinstance(key, str) or not _PROPERTY_KEY.match(key):
            raise _fail("alluxio_properties", "invalid property name %r" % (key,))
        if not isinstance(value, str):
            raise _fail(
                "alluxio_properties.%s" % key, "value must be a string, got %s" % type(value).__name__
            )
        if is_secret_key(key):
            raise _fail(
                "alluxio_properties.%s" % key,
                "framework secrets must never be sent to tasks; remove this key from the plan",
            )


def _validate_artifacts(plan: TaskPlan) -> None:
    if not isinstance(plan.artifacts, list):
        raise _fail("artifacts", "must be a list")
    seen = set()
    for i, artifact in enumerate(plan.artifacts):
        key = "artifacts[%d]" % i
        if not isinstance(artifact, Artifact):
            raise _fail(key, "must be an Artifact")
        _check_relative_path(key + ".filename", artifact.filename)
        if not isinstance(artifact.sha256, str) or not _SHA256.match(artifact.sha256):
            raise _fail(key + ".sha256", "must be 64 lowercase hex digits, got %r" % (artifact.sha256,))
        if not isinstance(artifact.url, str):
            raise _fail(key + ".url", "must be a string")
        if artifact.filename in seen:
            raise _fail(key + ".filename", "%r is listed twice" % artifact.filename)
        seen.add(artifact.filename)


def _validate_homes(plan: TaskPlan) -> None:
    if plan.alluxio_home_mode not in HOME_MODES:
        raise _fail(
            "alluxio_home_mode", "must be one of %s, got %r" % ("|".join(HOME_MODES), plan.alluxio_home_mode)
        )
    if plan.alluxio_home_mode in ("fetched", "staged"):
        _check_relative_path("alluxio_home", plan.alluxio_home)
    else:
        _check_absolute_path("alluxio_home", plan.alluxio_home, allow_empty=False)
    _validate_dist(plan, "alluxio_dist", plan.alluxio_dist, "alluxio_home_mode", plan.alluxio_home_mode)
    if plan.java_home_mode not in HOME_MODES:
        raise _fail(
            "java_home_mode", "must be one of %s, got %r" % ("|".join(HOME_MODES), plan.java_home_mode)
        )
    if plan.java_home_mode in ("fetched", "staged"):
        _check_relative_path("java_home", plan.java_home)
    else:
        _check_absolute_path("java_home", plan.java_home, allow_empty=True)
    _validate_dist(plan, "jdk_dist", plan.jdk_dist, "java_home_mode", plan.java_home_mode)
    staged = "staged" in (plan.alluxio_home_mode, plan.java_home_mode)
    _check_absolute_path("cache_dir", plan.cache_dir, allow_empty=not staged)
    if plan.cache_dir and not staged:
        raise _fail("cache_dir", "only used with a staged home mode; must be empty")


def _validate_dist(plan: TaskPlan, key: str, dist: Any, mode_key: str, mode: str) -> None:
    if mode != "staged":
        if dist is not None:
            raise _fail(key, "only used when %s is 'staged' (it is %r); must be null" % (mode_key, mode))
        return
    if not isinstance(dist, Distribution):
        raise _fail(key, "required when %s is 'staged': an object with url and sha256" % mode_key)
    if not isinstance(dist.url, str) or not dist.url or any(c.isspace() or c == "\x00" for c in dist.url):
        raise _fail(key + ".url", "must be a non-empty URL without whitespace, got %r" % (dist.url,))
    if not (dist.url.startswith("/") or _STAGEABLE_URL.match(dist.url)):
        raise _fail(key + ".url", "must be an http, https or file URL or an absolute path, got %r" % dist.url)
    if not isinstance(dist.sha256, str) or not _SHA256.match(dist.sha256):
        raise _fail(key + ".sha256", "must be 64 lowercase hex digits, got %r" % (dist.sha256,))


def _validate_ports(plan: TaskPlan) -> None:
    if not isinstance(plan.ports, dict):
        raise _fail("ports", "must be an object of port name to port number")
    allowed = PORT_PROPERTIES[plan.role]
    for name in REQUIRED_PORTS[plan.role]:
        if name not in plan.ports:
            raise _fail(
                "ports.%s" % name,
                "missing (a %s needs ports %s)" % (plan.role, ", ".join(REQUIRED_PORTS[plan.role])),
            )
    used: Dict[int, str] = {}
    for name, port in plan.ports.items():
        if name not in allowed:
            raise _fail(
                "ports.%s" % name, "unknown for a %s; known: %s" % (plan.role, ", ".join(sorted(allowed)))
            )
        if not _is_int(port) or not 1 <= port <= 65535:
            raise _fail("ports.%s" % name, "must be an integer 1..65535, got %r" % (port,))
        if port in used:
            raise _fail("ports.%s" % name, "port %d is also used by ports.%s" % (port, used[port]))
        used[port] = name
        for key in allowed[name]:
            _check_managed_key(plan, key, str(port), "ports.%s" % name)


def _validate_role_storage(plan: TaskPlan) -> None:
    size = plan.ramdisk_size_bytes
    if not _is_int(size) or size < 0:
        raise _fail("ramdisk_size_bytes", "must be an integer >= 0, got %r" % (size,))
    _check_absolute_path("ramdisk_dir", plan.ramdisk_dir, allow_empty=True)
    _check_absolute_path("journal_dir", plan.journal_dir, allow_empty=True)
    if plan.role == "worker":
        if size <= 0:
            raise _fail("ramdisk_size_bytes", "a worker needs a ramdisk size > 0")
        if plan.journal_dir:
            raise _fail("journal_dir", "only a master has a journal")
        _check_managed_key(plan, TIER0_QUOTA_KEY, str(size), "ramdisk_size_bytes")
        _check_managed_key(plan, RAMDISK_SIZE_KEY, str(size), "ramdisk_size_bytes")
        if plan.ramdisk_dir:
            _check_managed_key(plan, TIER0_PATH_KEY, plan.ramdisk_dir, "ramdisk_dir")
        elif TIER0_PATH_KEY in plan.alluxio_properties:
            raise _fail(
                "alluxio_properties.%s" % TIER0_PATH_KEY,
                "the executor mounts the ramdisk and sets this; use the plan field 'ramdisk_dir' instead",
            )
    else:
        if size:
            raise _fail("ramdisk_size_bytes", "only a worker has a ramdisk; must be 0 for a master")
        if plan.ramdisk_dir:
            raise _fail("ramdisk_dir", "only a worker has a ramdisk")
        if not plan.journal_dir:
            raise _fail("journal_dir", "a master needs an absolute journal directory outside the sandbox")
        _check_managed_key(plan, JOURNAL_FOLDER_KEY, plan.journal_dir, "journal_dir")


def _check_managed_key(plan: TaskPlan, key: str, value: str, plan_field: str) -> None:
    given = plan.alluxio_properties.get(key) if isinstance(plan.alluxio_properties, dict) else None
    if given is not None and given != value:
        raise _fail(
            "alluxio_properties.%s" % key,
            "is %r but the plan field %r sets it to %r; the executor manages this key"
            % (given, plan_field, value),
        )
