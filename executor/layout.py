"""Where things live for one task: the Alluxio and Java homes, and the conf, logs and ramdisk
directories in the sandbox, readable or writable by the user the JVM runs as."""

from __future__ import annotations

import os
import shutil
import stat
from dataclasses import dataclass
from typing import Dict, Mapping, Optional

from executor.process_group import RunAs
from executor.task_plan import TaskPlan

SITE_PROPERTIES = "alluxio-site.properties"
# Copied from the distribution's conf/ into the task's own conf dir; the site file is always ours.
_NOT_COPIED = (SITE_PROPERTIES, "alluxio-env.sh", "masters", "workers")
# The JVM gets a small, explicit environment: nothing of the executor's (no MESOS_* internals).
_PASSED_ENV = ("PATH", "LANG", "LC_ALL", "TZ", "JAVA_HOME")


class LayoutError(RuntimeError):
    """The sandbox or the Alluxio/Java installation is not usable as planned."""


@dataclass(frozen=True)
class TaskLayout:
    sandbox: str
    alluxio_home: str
    java: Optional[str]
    conf_dir: str
    logs_dir: str
    # alluxio.work.dir unless the plan sets it: Alluxio's defaults put the master's metastore and
    # the local root under-storage under ${alluxio.home}, which the JVM's user may not write.
    work_dir: str
    # The JVMs' java.io.tmpdir: native libraries they unpack (RocksDB's, 12 MB) stay in the
    # sandbox, which the agent's garbage collection removes, even when a JVM is killed.
    tmp_dir: str
    ramdisk_dir: Optional[str]

    @property
    def site_properties(self) -> str:
        return os.path.join(self.conf_dir, SITE_PROPERTIES)


def plan_layout(plan: TaskPlan, sandbox: str, staged: Optional[Mapping[str, str]] = None) -> TaskLayout:
    """``staged``: the staged directories (executor/staging.py) by name, ``alluxio`` and ``jdk``,
    for the homes whose mode is ``staged``."""
    sandbox = os.path.realpath(sandbox)
    staged = staged or {}
    if plan.alluxio_home_mode == "fetched":
        home = os.path.join(sandbox, plan.alluxio_home)
        origin = "fetched into the sandbox"
    elif plan.alluxio_home_mode == "staged":
        home = os.path.join(_staged_dir(staged, "alluxio"), plan.alluxio_home)
        origin = "inside the staged tarball; check the Alluxio directory name in the plan"
    else:
        home = plan.alluxio_home
        origin = "LOCAL (alluxio.home on this agent)"
    if not os.path.isdir(home):
        raise LayoutError("alluxio_home %s (%s) is not a directory" % (home, origin))
    java = None  # type: Optional[str]
    if plan.java_home_mode == "fetched":
        java = os.path.join(sandbox, plan.java_home)
        if not os.path.isfile(os.path.join(java, "bin", "java")):
            raise LayoutError(
                "java_home %s (fetched JDK) has no bin/java; check the jdk path in the plan" % java
            )
    elif plan.java_home_mode == "staged":
        java = os.path.join(_staged_dir(staged, "jdk"), plan.java_home)
        if not os.path.isfile(os.path.join(java, "bin", "java")):
            raise LayoutError(
                "java_home %s (staged JDK) has no bin/java; check the jdk path in the plan" % java
            )
    elif plan.java_home:
        java = plan.java_home
    ramdisk_dir = None  # type: Optional[str]
    if plan.role == "worker":
        ramdisk_dir = plan.ramdisk_dir or os.path.join(sandbox, "ramdisk")
    if plan.role == "master" and _inside(plan.journal_dir, sandbox):
        raise LayoutError(
            "journal_dir %s is inside the sandbox %s; the journal must outlive the task"
            % (plan.journal_dir, sandbox)
        )
    return TaskLayout(
        sandbox=sandbox,
        alluxio_home=os.path.realpath(home),
        java=java,
        conf_dir=os.path.join(sandbox, "conf"),
        logs_dir=os.path.join(sandbox, "logs"),
        work_dir=os.path.join(sandbox, "work"),
        tmp_dir=os.path.join(sandbox, "tmp"),
        ramdisk_dir=ramdisk_dir,
    )


def _staged_dir(staged: Mapping[str, str], name: str) -> str:
    if name not in staged:
        raise LayoutError("the %s distribution was not staged before planning the layout" % name)
    return staged[name]


def _inside(path: str, directory: str) -> bool:
    path = os.path.realpath(path)
    return os.path.commonpath([path, directory]) == directory


def create_directories(layout: TaskLayout, run_as: Optional[RunAs]) -> None:
    """conf (readable by all); logs (+ logs/user for shell JVMs), work and tmp, owned by the JVM's user."""
    _make_reachable(layout.sandbox)
    os.makedirs(layout.conf_dir, mode=0o755, exist_ok=True)
    for path in (layout.logs_dir, os.path.join(layout.logs_dir, "user"), layout.work_dir, layout.tmp_dir):
        os.makedirs(path, mode=0o755, exist_ok=True)
        if run_as is not None:
            os.chown(path, run_as.uid, run_as.gid)
    source = os.path.join(layout.alluxio_home, "conf")
    if not os.path.isfile(os.path.join(source, "log4j.properties")):
        raise LayoutError(
            "alluxio_home %s has no conf/log4j.properties; it is not a complete Alluxio distribution"
            % layout.alluxio_home
        )
    for name in sorted(os.listdir(source)):
        src = os.path.join(source, name)
        if name not in _NOT_COPIED and os.path.isfile(src):
            shutil.copyfile(src, os.path.join(layout.conf_dir, name))
            os.chmod(os.path.join(layout.conf_dir, name), 0o644)


def _make_reachable(sandbox: str) -> None:
    # The agent may create the sandbox 0700 for the executor's user; the JVM's user must enter it.
    mode = os.stat(sandbox).st_mode
    if not mode & stat.S_IXOTH:
        os.chmod(sandbox, stat.S_IMODE(mode) | stat.S_IXOTH)


def check_access(path: str, run_as: Optional[RunAs], write: bool = False) -> None:
    """Fail clearly if the JVM's user cannot reach ``path`` (root's own access proves nothing)."""
    if run_as is None:
        return
    groups = {run_as.gid}
    current = os.path.realpath(path)
    chain = []
    while True:
        chain.append(current)
        parent = os.path.dirname(current)
        if parent == current:
            break
        current = parent
    for index, directory in enumerate(reversed(chain)):
        st = os.stat(directory)
        last = index == len(chain) - 1
        need = (stat.S_IXUSR, stat.S_IXGRP, stat.S_IXOTH)
        if last:
            need = (stat.S_IRUSR, stat.S_IRGRP, stat.S_IROTH)
            if write:
                need = (stat.S_IWUSR, stat.S_IWGRP, stat.S_IWOTH)
        if st.st_uid == run_as.uid:
            allowed = st.st_mode & need[0]
        elif st.st_gid in groups:
            allowed = st.st_mode & need[1]
        else:
            allowed = st.st_mode & need[2]
        if not allowed:
            what = "write" if last and write else ("read" if last else "enter")
            raise LayoutError(
                "user %s cannot %s %s (mode %04o, owner %d:%d), needed for %s"
                % (run_as.name, what, directory, stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, path)
            )


def jvm_environment(layout: TaskLayout, run_as: Optional[RunAs], source: Mapping[str, str]) -> Dict[str, str]:
    env = {name: source[name] for name in _PASSED_ENV if name in source}
    env.setdefault("PATH", os.defpath)
    env["MESOS_SANDBOX"] = layout.sandbox
    if run_as is not None:
        env["HOME"] = run_as.home
        env["USER"] = env["LOGNAME"] = run_as.name
    elif "HOME" in source:
        env["HOME"] = source["HOME"]
    return env
