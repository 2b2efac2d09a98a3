"""How to run Alluxio's JVMs: argv and environment, JVM flags, sizes and log tails.

Everything the project knows about starting an Alluxio 2.9 JVM lives here, so the executor (and the
tests) never assemble java command lines themselves. Runs on the agents' stock Python 3.9 with only
the standard library. Whether a started server answers is executor/readiness.py's job.

Public API::

    cfg = AlluxioJvmConfig(alluxio_home, conf_dir, logs_dir, tmp_dir, java=None, heap_size="1GB",
                           properties={"alluxio.master.hostname": "h1"})
    cmd = master_command(cfg)            # JavaCommand(argv=[...], env={...})
    cmd = worker_command(cfg)
    cmd = format_command(cfg)            # alluxio.cli.Format master: formats the journal
    cmd = fs_shell_command(cfg, ["cat", "/f"])
    cmd = fsadmin_command(cfg, ["report", "capacity"])
    subprocess.Popen(cmd.argv, env=cmd.env, start_new_session=True, ...)

    parse_bytes("64MB") == 67108864      # Alluxio's FormatUtils.parseSpaceSize
    tail_file("/logs/master.log", max_lines=40)

The distribution layout this expects is the one ``setup/steps/alluxio.sh`` builds (jars under
``assembly/server/`` listed in Maven's order by ``assembly/server.classpath``, the local
under-storage in ``lib/``); an official Alluxio tarball (``assembly/alluxio-server-*.jar``) works
as well, for deployments that install Alluxio themselves.
"""

from __future__ import annotations

import glob
import math
import os
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Dict, List, Mapping, NamedTuple, Optional, Sequence, Tuple

MASTER_MAIN_CLASS = "alluxio.master.AlluxioMaster"
WORKER_MAIN_CLASS = "alluxio.worker.AlluxioWorker"
FORMAT_MAIN_CLASS = "alluxio.cli.Format"
FS_SHELL_MAIN_CLASS = "alluxio.cli.fs.FileSystemShell"
FSADMIN_MAIN_CLASS = "alluxio.cli.fsadmin.FileSystemAdminShell"

# Names of the log4j appenders in conf/log4j.properties; alluxio.logger.type picks one per JVM.
MASTER_LOGGER = "MASTER_LOGGER"
WORKER_LOGGER = "WORKER_LOGGER"
USER_LOGGER = "USER_LOGGER"
MASTER_AUDIT_LOGGER = "MASTER_AUDIT_LOGGER"
NULL_LOGGER = "NULL_LOGGER"

# Relative to alluxio.home. The classpath file keeps Maven's resolution order, which decides
# which copy wins when two jars carry the same class; a plain directory listing would not.
CLASSPATH_FILE = os.path.join("assembly", "server.classpath")
JARS_DIR = os.path.join("assembly", "server")
OFFICIAL_SERVER_JAR_GLOB = os.path.join("assembly", "alluxio-server-*.jar")
LOG4J_FILE = "log4j.properties"

DEFAULT_SERVER_HEAP = "1GB"
DEFAULT_SHELL_HEAP = "256MB"

# Alluxio 2.9 targets Java 8/11; on Java 16+ reflection into JDK internals is denied unless the
# package is opened. Every JVM of Java 9+ gets these flags (Java 8 rejects them, so they are left
# out there). Each was checked against Alluxio 2.9.6 on OpenJDK 17: without it, the named thing
# fails or silently degrades. BufferUtils' and Netty's buffer cleaning need nothing: on Java 9+
# they use sun.misc.Unsafe.invokeCleaner, which jdk.unsupported exports.
JDK9_MODULE_FLAGS: Tuple[str, ...] = (
    # Netty (gRPC's and Ratis' shaded copy) calls the private DirectByteBuffer(long, int)
    # constructor to allocate direct buffers without a Cleaner and count them against its own
    # limit; without it Netty logs "direct buffer constructor: unavailable" and falls back to
    # ByteBuffer.allocateDirect, which is slower and bounded only by -XX:MaxDirectMemorySize.
    "--add-opens=java.base/java.nio=ALL-UNNAMED",
    # Netty's PlatformDependent0 uses jdk.internal.misc.Unsafe.allocateUninitializedArray to
    # skip zeroing large heap buffers ("allocateUninitializedArray(int): unavailable" otherwise).
    "--add-opens=java.base/jdk.internal.misc=ALL-UNNAMED",
    # Alluxio's ObjectSizeCalculator walks inodes and block metadata, which hold Strings,
    # HashMaps and ConcurrentHashMaps, for the Master.InodeHeapSize / Master.BlockHeapSize
    # gauges (alluxio.master.metrics.heap.enabled). Without these three the gauges report
    # InaccessibleObjectException ("java.base does not opens java.util.concurrent").
    "--add-opens=java.base/java.lang=ALL-UNNAMED",
    "--add-opens=java.base/java.util=ALL-UNNAMED",
    "--add-opens=java.base/java.util.concurrent=ALL-UNNAMED",
)

# System properties every Alluxio JVM gets, whatever its role.
COMMON_SYSTEM_PROPERTIES: Tuple[Tuple[str, str], ...] = (
    # Netty only uses setAccessible on the JDK internals opened above when told it may.
    ("io.netty.tryReflectionSetAccessible", "true"),
    # The same switch for the copy of Netty shaded into Ratis (the embedded journal), which
    # reads its properties under the relocated package name.
    ("org.apache.ratis.thirdparty.io.netty.tryReflectionSetAccessible", "true"),
    # Jetty's JSP support (the web UI) would otherwise look for a javac (JSR 199) a JRE lacks;
    # Alluxio's own launch scripts set the same.
    ("org.apache.jasper.compiler.disablejsr199", "true"),
    # Alluxio's scripts run IPv4-only too: servers bind and advertise IPv4 addresses, and a
    # dual-stack resolver would otherwise hand clients ::1 for localhost.
    ("java.net.preferIPv4Stack", "true"),
)

# Short-lived shell JVMs spend most of their life starting up: the C1-only JIT and the serial
# collector cut 10-25% off each `fs`/`fsadmin` call (measured on 2 cores); servers keep defaults.
SHELL_JVM_FLAGS: Tuple[str, ...] = ("-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC")

_PROPERTY_KEY = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.\-]*$")


class AlluxioProcessError(Exception):
    """A JVM could not be described or started as asked; the message says which input is wrong."""


class JavaCommand(NamedTuple):
    """A complete command: pass ``argv`` and ``env`` to subprocess.Popen as they are."""

    argv: List[str]
    env: Dict[str, str]


@dataclass(frozen=True)
class AlluxioJvmConfig:
    """Where Alluxio lives and how to run its JVMs.

    alluxio_home: the extracted distribution (``alluxio.home``).
    conf_dir: holds alluxio-site.properties and log4j.properties (``alluxio.conf.dir``).
    logs_dir: master.log / worker.log go here, user (shell) logs in ``<logs_dir>/user``.
    tmp_dir: the JVM's ``java.io.tmpdir``, an existing directory the JVM's user can write. Required:
        RocksDB (the master's metastore) and Netty unpack native libraries there and delete them
        only on a clean exit, so a killed JVM left 12 MB per start in the host's /tmp. Pointing it
        into the caller's own work area (the task sandbox) lets whoever removes that area remove
        them too.
    java: a java executable, a JDK/JRE home, or None for $JAVA_HOME/bin/java then PATH.
    heap_size: maximum heap in Alluxio's size syntax (``1GB``, ``512MB``); None for the role's
        default.
    properties: extra ``-Dkey=value`` Alluxio/JVM system properties; they override the site file.
    jvm_options: extra raw JVM options, appended after the project's own flags.
    base_env: the environment to start from (default: this process's); the command's env adds
        ALLUXIO_HOME/ALLUXIO_CONF_DIR/ALLUXIO_LOGS_DIR and JAVA_HOME. The caller removes
        anything secret from it first: the JVM and its children see all of it.
    """

    alluxio_home: str
    conf_dir: str
    logs_dir: str
    tmp_dir: Optional[str] = None
    java: Optional[str] = None
    heap_size: Optional[str] = None
    properties: Mapping[str, str] = field(default_factory=dict)
    jvm_options: Sequence[str] = ()
    base_env: Optional[Mapping[str, str]] = None


# ---------------------------------------------------------------------------------------------
# Sizes


# Alluxio's spellings of the binary units below a petabyte, lower-cased, and their factors.
_SIZE_MULTIPLIERS: Dict[str, int] = {"": 1, "b": 1}
_SIZE_MULTIPLIERS.update(
    (letter + suffix, 1024**power)
    for power, letter in enumerate("kmgt", start=1)
    for suffix in ("", "b", "i", "ib")
)
_PETABYTE_SPELLINGS = ("p", "pb", "pi", "pib")


def _unit_problem(unit: str) -> str:
    """Why Alluxio rejects this unit; a stray space is the usual mistake, so it is named."""
    stripped = unit.strip().lower()
    if unit != unit.rstrip():
        return "trailing whitespace is not allowed"
    if stripped in _SIZE_MULTIPLIERS or stripped in _PETABYTE_SPELLINGS:
        return "no space is allowed between the number and the unit %r" % unit.strip()
    return "unknown size unit %r (use B, KB, MB, GB, TB or PB)" % unit.strip()


def parse_bytes(size: str) -> int:
    """Parse a size in Alluxio's syntax into bytes, like ``alluxio.util.FormatUtils.parseSpaceSize``.

    A decimal number followed by an optional, case-insensitive unit: none or ``B``; ``K``/``KB``/
    ``KI``/``KIB``; likewise ``M``, ``G``, ``T``, ``P`` (all powers of 1024). Fractions are
    allowed and truncated to whole bytes (``1.5KB`` is 1536, ``0.5B`` is 0), exactly as Alluxio
    computes them (double arithmetic, +0.0001, truncation; petabytes exactly in decimal).
    Raises ValueError naming the input if Alluxio would reject it, and also for negative sizes,
    sizes beyond 2**63-1 (which Alluxio would silently mangle) and hexadecimal numbers (which
    Java's parser happens to accept).
    """
    if not isinstance(size, str):
        raise ValueError("size must be a string such as '64MB', got %r" % (size,))
    original = size
    # Alluxio peels every trailing non-digit off as the unit, then parses the rest as a double.
    end = len(size)
    while end > 0 and not "0" <= size[end - 1] <= "9":
        end -= 1
    number, unit = size[:end], size[end:].lower()
    if not re.match(r"^\s*[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$", number):
        raise ValueError(
            "cannot parse %r as a size: expected a number with an optional unit "
            "B, KB, MB, GB, TB or PB (e.g. '64MB')" % original
        )
    value = float(number)
    if value < 0:
        raise ValueError("size %r is negative" % original)
    too_large = ValueError("size %r is larger than Alluxio can represent (2**63-1 bytes)" % original)
    if math.isinf(value):
        raise too_large
    alpha = 0.0001  # Alluxio's guard against 0.9999999 truncating down
    if unit in _SIZE_MULTIPLIERS:
        scaled = value * _SIZE_MULTIPLIERS[unit] + alpha
        if math.isinf(scaled):
            raise too_large
        result = int(scaled)
    elif unit in _PETABYTE_SPELLINGS:
        # Alluxio switches to BigDecimal here: Double.toString(value) times 2**50, truncated.
        result = int(Decimal(repr(value)) * Decimal(1024**5))
    else:
        raise ValueError("cannot parse %r as a size: %s" % (original, _unit_problem(size[end:])))
    if result > 2**63 - 1:
        raise too_large
    return result


def heap_flag(heap_size: str) -> str:
    """``-Xmx`` for a heap in Alluxio's syntax, in whole MiB (the JVM's own granularity)."""
    try:
        size = parse_bytes(heap_size)
    except ValueError as e:
        raise AlluxioProcessError("heap_size: %s" % e) from e
    mib = size // (1024 * 1024)
    if mib < 16:
        raise AlluxioProcessError("heap_size %r is below the 16MB an Alluxio JVM needs at all" % heap_size)
    return "-Xmx%dm" % mib


# ---------------------------------------------------------------------------------------------
# Java


def resolve_java(java: Optional[str] = None, env: Optional[Mapping[str, str]] = None) -> str:
    """The java executable: ``java`` (an executable or a JDK home), else $JAVA_HOME/bin/java,
    else ``java`` on PATH. Raises AlluxioProcessError saying what was tried."""
    environ = os.environ if env is None else env
    if java:
        candidate = os.path.join(java, "bin", "java") if os.path.isdir(java) else java
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return os.path.abspath(candidate)
        raise AlluxioProcessError("java: %r is neither an executable nor a JDK home with bin/java" % java)
    java_home = environ.get("JAVA_HOME")
    if java_home:
        candidate = os.path.join(java_home, "bin", "java")
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
        raise AlluxioProcessError("JAVA_HOME=%s has no executable bin/java" % java_home)
    on_path = shutil.which("java", path=environ.get("PATH", os.defpath))
    if on_path:
        return on_path
    raise AlluxioProcessError("no java found: JAVA_HOME is unset and 'java' is not on PATH")


_java_major_cache: Dict[str, int] = {}


def java_major_version(java: str) -> int:
    """The Java feature version (8, 11, 17...) of a java executable, cached per path."""
    real = os.path.realpath(java)
    if real in _java_major_cache:
        return _java_major_cache[real]
    version = ""
    # A JDK's `release` file answers without starting a JVM (saves ~100 ms per launch).
    release = os.path.join(os.path.dirname(os.path.dirname(real)), "release")
    if os.path.isfile(release):
        with open(release, encoding="utf-8", errors="replace") as f:
            m = re.search(r'^JAVA_VERSION="([^"]+)"', f.read(), re.MULTILINE)
            version = m.group(1) if m else ""
    if not version:
        out = subprocess.run([real, "-version"], capture_output=True, text=True, timeout=60, check=False)
        m = re.search(r'version "([^"]+)"', out.stderr + out.stdout)
        if not m:
            raise AlluxioProcessError("cannot tell the Java version of %s: %s" % (java, out.stderr.strip()))
        version = m.group(1)
    parts = version.split(".")
    major = int(parts[1]) if parts[0] == "1" else int(re.match(r"\d+", parts[0]).group(0))  # type: ignore[union-attr]
    _java_major_cache[real] = major
    return major


def jvm_module_flags(java: str) -> List[str]:
    """The --add-opens/--add-exports flags for this java (none before Java 9)."""
    return list(JDK9_MODULE_FLAGS) if java_major_version(java) >= 9 else []


# ---------------------------------------------------------------------------------------------
# Classpath and commands


def server_jars(alluxio_home: str) -> List[str]:
    """The distribution's server jars, in classpath order (absolute paths)."""
    listing = os.path.join(alluxio_home, CLASSPATH_FILE)
    if os.path.isfile(listing):
        with open(listing, encoding="utf-8") as f:
            names = [line.strip() for line in f if line.strip() and not line.startswith("#")]
        jars = [os.path.join(alluxio_home, JARS_DIR, name) for name in names]
        missing = [j for j in jars if not os.path.isfile(j)]
        if missing:
            raise AlluxioProcessError(
                "alluxio_home %s is incomplete: %d jar(s) listed in %s are missing, e.g. %s"
                % (alluxio_home, len(missing), CLASSPATH_FILE, missing[0])
            )
    else:
        jars = sorted(glob.glob(os.path.join(alluxio_home, OFFICIAL_SERVER_JAR_GLOB)))
    if not jars:
        raise AlluxioProcessError(
            "alluxio_home %s is not an Alluxio distribution: neither %s nor %s exists"
            % (alluxio_home, CLASSPATH_FILE, OFFICIAL_SERVER_JAR_GLOB)
        )
    return [os.path.abspath(j) for j in jars]


def server_classpath(alluxio_home: str, conf_dir: str) -> str:
    """The jars, then the conf dir. Alluxio finds its site file through ``alluxio.conf.dir`` (set
    on every JVM), and log4j's through ``log4j.configuration``; the conf dir stays on the
    classpath only for resources looked up there. It comes LAST so that the classpath's jar
    prefix is the same for every task on a host: a class-data sharing archive (executor/cds.py)
    is only used by JVMs whose classpath starts with the one it was dumped with."""
    return os.pathsep.join([*server_jars(alluxio_home), os.path.abspath(conf_dir)])


def _system_property_args(cfg: AlluxioJvmConfig, logger_type: str) -> List[str]:
    logs_dir = os.path.abspath(cfg.logs_dir)
    conf_dir = os.path.abspath(cfg.conf_dir)
    props: List[Tuple[str, str]] = [
        ("alluxio.home", os.path.abspath(cfg.alluxio_home)),
        ("alluxio.conf.dir", conf_dir),
        ("alluxio.logs.dir", logs_dir),
        ("alluxio.user.logs.dir", os.path.join(logs_dir, "user")),
        ("java.io.tmpdir", os.path.abspath(cfg.tmp_dir or "")),
        ("log4j.configuration", "file:" + os.path.join(conf_dir, LOG4J_FILE)),
        ("alluxio.logger.type", logger_type),
    ]
    props.extend(COMMON_SYSTEM_PROPERTIES)
    # log4j.properties routes the AUDIT_LOG logger through this; every JVM must name an appender.
    audit = MASTER_AUDIT_LOGGER if logger_type == MASTER_LOGGER else NULL_LOGGER
    props.append(("alluxio.master.audit.logger.type", audit))
    for key, value in sorted(cfg.properties.items()):
        if not isinstance(key, str) or not _PROPERTY_KEY.match(key):
            raise AlluxioProcessError("properties: %r is not a valid property name" % (key,))
        if not isinstance(value, str):
            raise AlluxioProcessError("properties[%r]: value must be a string, got %r" % (key, value))
        if "\n" in value or "\0" in value:
            raise AlluxioProcessError("properties[%r]: value must be a single line" % key)
        props.append((key, value))
    return ["-D%s=%s" % kv for kv in props]


def _command(
    cfg: AlluxioJvmConfig,
    main_class: str,
    args: Sequence[str],
    *,
    logger_type: str,
    default_heap: str,
    role_flags: Sequence[str] = (),
) -> JavaCommand:
    for name in ("alluxio_home", "conf_dir", "logs_dir"):
        if not getattr(cfg, name):
            raise AlluxioProcessError("%s must be set" % name)
    if not os.path.isdir(cfg.alluxio_home):
        raise AlluxioProcessError("alluxio_home %s is not a directory" % cfg.alluxio_home)
    if not cfg.tmp_dir:
        raise AlluxioProcessError(
            "tmp_dir must be set (the JVM's java.io.tmpdir, inside the caller's own work area; "
            "the host's /tmp would collect the native libraries a killed JVM leaves behind)"
        )
    if not os.path.isdir(cfg.tmp_dir):
        raise AlluxioProcessError("tmp_dir %s is not a directory" % cfg.tmp_dir)
    base_env = dict(os.environ if cfg.base_env is None else cfg.base_env)
    java = resolve_java(cfg.java, base_env)
    argv = [java, heap_flag(cfg.heap_size or default_heap)]
    argv.extend(jvm_module_flags(java))
    argv.extend(role_flags)
    argv.extend(_system_property_args(cfg, logger_type))
    argv.extend(cfg.jvm_options)
    argv.extend(["-cp", server_classpath(cfg.alluxio_home, cfg.conf_dir), main_class])
    argv.extend(args)
    env = base_env
    env["ALLUXIO_HOME"] = os.path.abspath(cfg.alluxio_home)
    env["ALLUXIO_CONF_DIR"] = os.path.abspath(cfg.conf_dir)
    env["ALLUXIO_LOGS_DIR"] = os.path.abspath(cfg.logs_dir)
    env["JAVA_HOME"] = os.path.dirname(os.path.dirname(os.path.realpath(java)))
    return JavaCommand(argv=argv, env=env)


def _shell_command(cfg: AlluxioJvmConfig, main_class: str, args: Sequence[str]) -> JavaCommand:
    return _command(
        cfg,
        main_class,
        args,
        logger_type=USER_LOGGER,
        default_heap=DEFAULT_SHELL_HEAP,
        role_flags=SHELL_JVM_FLAGS,
    )


def master_command(cfg: AlluxioJvmConfig) -> JavaCommand:
    """The Alluxio master server; logs to <logs_dir>/master.log."""
    return _command(cfg, MASTER_MAIN_CLASS, [], logger_type=MASTER_LOGGER, default_heap=DEFAULT_SERVER_HEAP)


def worker_command(cfg: AlluxioJvmConfig) -> JavaCommand:
    """The Alluxio worker server; logs to <logs_dir>/worker.log."""
    return _command(cfg, WORKER_MAIN_CLASS, [], logger_type=WORKER_LOGGER, default_heap=DEFAULT_SERVER_HEAP)


def format_command(cfg: AlluxioJvmConfig) -> JavaCommand:
    """``alluxio format master``: formats the master's journal (destroys its metadata)."""
    return _shell_command(cfg, FORMAT_MAIN_CLASS, ["master"])


def fs_shell_command(cfg: AlluxioJvmConfig, args: Sequence[str]) -> JavaCommand:
    """``alluxio fs <args>``, e.g. ``["copyFromLocal", "/tmp/a", "/a"]``."""
    return _shell_command(cfg, FS_SHELL_MAIN_CLASS, list(args))


def fsadmin_command(cfg: AlluxioJvmConfig, args: Sequence[str]) -> JavaCommand:
    """``alluxio fsadmin <args>``, e.g. ``["report", "capacity"]``."""
    return _shell_command(cfg, FSADMIN_MAIN_CLASS, list(args))


# ---------------------------------------------------------------------------------------------
# Logs


def tail_file(path: str, max_lines: int = 40, max_bytes: int = 64 * 1024) -> str:
    """The last ``max_lines`` lines of a text file (reading at most ``max_bytes`` from its end).

    Returns "" if the file does not exist; undecodable bytes are replaced, never raised.
    """
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            # One byte more than the limit tells whether the cut fell exactly on a line start.
            start = max(0, size - max_bytes - 1)
            f.seek(start)
            data = f.read()
    except FileNotFoundError:
        return ""
    if start > 0:
        newline = data.find(b"\n")
        data = data[newline + 1 :] if newline >= 0 else b""  # drop the line the limit cut
    lines = data.decode("utf-8", errors="replace").splitlines()
    return "\n".join(lines[-max_lines:]) if max_lines > 0 else ""
