"""The executor's core, usable without Mesos: prepare → start → wait until ready → supervise → kill.

``TaskRunner.run()`` does all of it on the calling thread (the executor's main thread, which the
JVM's PR_SET_PDEATHSIG is tied to) and reports through a callback. Other threads only call
``request_kill``. Every exit path (normal, kill, exception, signal) stops the JVM's process group,
unmounts the ramdisk and removes the slot's state file before the terminal update is sent.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import threading
import time
from typing import Callable, Dict, List, Mapping, Optional, Tuple

from executor import alluxio_process, cds, journal, ramdisk, readiness, staging
from executor.artifacts import verify_artifacts
from executor.layout import TaskLayout, check_access, create_directories, jvm_environment, plan_layout
from executor.leftovers import (
    StateFile,
    clean_up_leftovers,
    default_state_dir,
    new_slot_state,
    process_start,
)
from executor.process_group import ServerProcess, describe_exit, resolve_run_as
from executor.properties import write_properties_file
from executor.status import (
    TASK_FAILED,
    TASK_KILLED,
    TASK_KILLING,
    TASK_RUNNING,
    TASK_STARTING,
    StatusReporter,
    StatusSink,
    TaskUpdate,
)
from executor.task_plan import (
    JOURNAL_FOLDER_KEY,
    PORT_PROPERTIES,
    RAMDISK_SIZE_KEY,
    TIER0_PATH_KEY,
    TIER0_QUOTA_KEY,
    TaskPlan,
)

LOG = logging.getLogger("executor.runner")
WORK_DIR_KEY = "alluxio.work.dir"

DEFAULT_GRACE_SECS = 5.0
FORMAT_TIMEOUT_SECS = 300.0
SUPERVISE_POLL_SECS = 0.05
LOG_TAIL_LINES = 25
MAX_MESSAGE_CHARS = 6000

# (JavaCommand factory for the server, for the journal format): tests swap in small scripts.
CommandFactory = Callable[[str, "alluxio_process.AlluxioJvmConfig"], "alluxio_process.JavaCommand"]


def alluxio_command(purpose: str, cfg: alluxio_process.AlluxioJvmConfig) -> alluxio_process.JavaCommand:
    if purpose == "master":
        return alluxio_process.master_command(cfg)
    if purpose == "worker":
        return alluxio_process.worker_command(cfg)
    if purpose == "format":
        return alluxio_process.format_command(cfg)
    raise ValueError("unknown command purpose %r" % purpose)


class KillRequested(Exception):
    """Raised inside preparation steps when a kill arrived; unwinds to the kill sequence."""


class TaskRunner:
    def __init__(
        self,
        task_id: str,
        plan: TaskPlan,
        sandbox: str,
        sink: StatusSink,
        *,
        killing_state_capable: bool = False,
        task_grace_secs: Optional[float] = None,
        agent_grace_secs: Optional[float] = None,
        launched_at: Optional[float] = None,
        command_factory: CommandFactory = alluxio_command,
        environ: Optional[Mapping[str, str]] = None,
        cds_build_after_secs: float = cds.BUILD_AFTER_SECS,
    ) -> None:
        self.task_id = task_id
        self.plan = plan
        self.sandbox = os.path.realpath(sandbox)
        self.reporter = StatusReporter(sink)
        self.killing_state_capable = killing_state_capable
        self._task_grace = task_grace_secs
        self._agent_grace = agent_grace_secs
        self._launched_at = time.monotonic() if launched_at is None else launched_at
        self._command_factory = command_factory
        self._environ = dict(os.environ if environ is None else environ)
        # Reentrant: request_kill may run in a signal handler on a thread that holds it.
        self._kill_lock = threading.RLock()
        self._kill_event = threading.Event()
        self._kill_grace = None  # type: Optional[float]
        self._finished = threading.Event()
        self.timings = {}  # type: Dict[str, float]
        self.layout = None  # type: Optional[TaskLayout]
        self.run_as = None  # type: Optional[RunAs]
        self.process = None  # type: Optional[ServerProcess]
        self._process_stopped = False
        self._exec_at = 0.0
        self.mounted = None  # type: Optional[str]
        self.kill_steps = []  # type: List[str]
        self._state_file = StateFile(plan.state_dir or default_state_dir(), plan.effective_instance_name)
        self._slot = None  # type: Optional[SlotState]
        # Staged distributions by name ("alluxio", "jdk"), held in use until cleanup.
        self.staged = {}  # type: Dict[str, staging.StagedDistribution]
        self.cds = None  # type: Optional[cds.ArchivePlan]
        self._cds_build_after = cds_build_after_secs
        self.cds_build = None  # type: Optional[ServerProcess]
        self._ready_at = 0.0

    # -- control from other threads -------------------------------------------------------------

    def request_kill(self, grace_secs: Optional[float] = None, announce: bool = True) -> None:
        """Ask the runner to stop the task. Thread-safe; the first request's grace wins.

        ``announce`` sends TASK_KILLING at once (when the framework supports it); a signal
        handler passes False and leaves that to the main loop.
        """
        with self._kill_lock:
            if not self._kill_event.is_set():
                self._kill_grace = grace_secs
                self._kill_event.set()
        if announce:
            self._announce_killing()

    @property
    def kill_requested(self) -> bool:
        return self._kill_event.is_set()

    def wait_finished(self, timeout: Optional[float] = None) -> bool:
        return self._finished.wait(timeout)

    def _announce_killing(self) -> None:
        # Before STARTING went out, the run loop announces it itself (keeps STARTING first).
        if self.killing_state_capable and TASK_STARTING in self.reporter.sent:
            self.reporter.report(TaskUpdate(TASK_KILLING, "stopping the Alluxio %s" % self.plan.role))

    def _check_kill(self) -> None:
        if self._kill_event.is_set():
            raise KillRequested()

    def grace_period(self) -> float:
        """KILL's kill_policy, else TaskInfo.kill_policy, else the plan, else the agent's
        executor shutdown grace period, else DEFAULT_GRACE_SECS."""
        for candidate in (self._kill_grace, self._task_grace, self.plan.grace_period_secs, self._agent_grace):
            if candidate is not None:
                return float(candidate)
        return DEFAULT_GRACE_SECS

    # -- the whole lifecycle ------------------------------------------------------------------

    def run(self) -> TaskUpdate:
        """Run the task to its end and return the terminal update that was reported."""
        outcome = TaskUpdate(TASK_FAILED, "the executor stopped unexpectedly")
        try:
            self.reporter.report(TaskUpdate(TASK_STARTING, "preparing the Alluxio %s" % self.plan.role))
            self.prepare()
            self.start()
            self.wait_ready()
            outcome = self.supervise()
        except KillRequested:
            outcome = self._kill_sequence()
        except Exception as exc:
            LOG.exception("task %s failed", self.task_id)
            outcome = self._failure(exc)
        except BaseException as exc:
            # KeyboardInterrupt / SystemExit (e.g. pymesos lost the agent): clean up, report if
            # the driver still can, and let it propagate.
            outcome = TaskUpdate(TASK_FAILED, "the executor was interrupted (%s)" % exc.__class__.__name__)
            raise
        finally:
            problems = self.cleanup()
            if problems:
                outcome = outcome._replace(
                    message=outcome.message + "\ncleanup problems: " + "; ".join(problems)
                )
            try:
                self.reporter.report(outcome)
            except Exception:
                LOG.exception("could not send the final %s update for task %s", outcome.state, self.task_id)
            self._finished.set()
        return outcome

    def prepare(self) -> None:
        plan = self.plan
        started = time.monotonic()
        done = clean_up_leftovers(self._state_file, LOG.warning)
        if done:
            LOG.warning("cleaned up after a crashed predecessor: %s", "; ".join(done))
        self._slot = new_slot_state(self.task_id, self.sandbox)
        self._state_file.write(self._slot)
        self._mark("leftovers", started)

        started = time.monotonic()
        self._stage_distributions()
        self._mark("stage", started)
        self._check_kill()

        started = time.monotonic()
        verify_artifacts(self.sandbox, plan.artifacts)
        self._mark("verify", started)
        self._check_kill()

        started = time.monotonic()
        self.run_as = resolve_run_as(plan.run_as_user)
        staged_dirs = {name: dist.directory for name, dist in self.staged.items()}
        self.layout = layout = plan_layout(plan, self.sandbox, staged_dirs)
        create_directories(layout, self.run_as)
        check_access(layout.alluxio_home, self.run_as)
        check_access(layout.conf_dir, self.run_as)
        check_access(layout.logs_dir, self.run_as, write=True)
        check_access(layout.tmp_dir, self.run_as, write=True)
        self._mark("layout", started)

        started = time.monotonic()
        properties = self.site_properties(layout)
        write_properties_file(layout.site_properties, properties)
        self._mark("conf", started)
        self._check_kill()

        if plan.role == "worker":
            started = time.monotonic()
            self._mount_ramdisk(layout)
            self._mark("ramdisk", started)
        else:
            started = time.monotonic()
            self._prepare_journal()
            self._mark("journal", started)
        self._check_kill()

    def _stage_distributions(self) -> None:
        """Stage the plan's tarballs once per host (shared by every executor on it)."""
        plan = self.plan
        for name, dist in (("alluxio", plan.alluxio_dist), ("jdk", plan.jdk_dist)):
            if dist is None:
                continue
            what = "the Alluxio distribution" if name == "alluxio" else "the JDK"
            self.staged[name] = staging.stage(
                plan.cache_dir, dist.url, dist.sha256, what=what, abort=self._check_kill
            )

    def site_properties(self, layout: TaskLayout) -> Dict[str, str]:
        plan = self.plan
        properties = dict(plan.alluxio_properties)
        properties.setdefault(WORK_DIR_KEY, layout.work_dir)
        for name, port in plan.ports.items():
            for key in PORT_PROPERTIES[plan.role][name][:1]:
                properties[key] = str(port)
        if plan.role == "worker":
            assert layout.ramdisk_dir is not None
            properties[TIER0_PATH_KEY] = layout.ramdisk_dir
            properties[TIER0_QUOTA_KEY] = str(plan.ramdisk_size_bytes)
            properties[RAMDISK_SIZE_KEY] = str(plan.ramdisk_size_bytes)
            properties.setdefault("alluxio.worker.tieredstore.level0.alias", "MEM")
        else:
            properties[JOURNAL_FOLDER_KEY] = plan.journal_dir
        return properties

    def _mount_ramdisk(self, layout: TaskLayout) -> None:
        assert layout.ramdisk_dir is not None
        assert self._slot is not None
        # Recorded before mounting: if we die mid-mount, the next executor still finds it.
        self._slot.mount_path = os.path.realpath(layout.ramdisk_dir)
        self._state_file.write(self._slot)
        uid = self.run_as.uid if self.run_as else None
        gid = self.run_as.gid if self.run_as else None
        try:
            mounted = ramdisk.mount_ramdisk(
                layout.ramdisk_dir, self.plan.ramdisk_size_bytes, mode=0o750, uid=uid, gid=gid
            )
        except BaseException:
            # mount_ramdisk leaves nothing of its own behind when it fails; whatever is at the
            # path now (say, someone else's mount) is not ours to unmount later.
            self._slot.mount_path = None
            self._state_file.write(self._slot)
            raise
        self.mounted = mounted.path
        check_access(mounted.path, self.run_as, write=True)
        LOG.info("mounted a %d-byte tmpfs ramdisk at %s", mounted.size_bytes, mounted.path)

    def _prepare_journal(self) -> None:
        owner = (self.run_as.uid, self.run_as.gid) if self.run_as else None
        journal.prepare_journal_dir(self.plan.journal_dir, owner)
        check_access(self.plan.journal_dir, self.run_as, write=True)
        outcome = journal.ensure_formatted(self.plan.journal_dir, self._format_journal)
        LOG.info("journal %s: %s", self.plan.journal_dir, outcome)

    def _format_journal(self) -> None:
        assert self.layout is not None
        command = self._command_factory("format", self._jvm_config(self.layout))
        output = os.path.join(self.layout.logs_dir, "format.out")
        process = ServerProcess.spawn(command.argv, command.env, self.sandbox, output, self.run_as)
        deadline = time.monotonic() + FORMAT_TIMEOUT_SECS
        code = None
        while code is None:
            code = process.wait(SUPERVISE_POLL_SECS)
            if code is None and (self._kill_event.is_set() or time.monotonic() > deadline):
                process.stop(0.0, lambda step: None)
                self._check_kill()
                raise RuntimeError("the journal format did not finish within %.0fs" % FORMAT_TIMEOUT_SECS)
        if code != 0:
            raise RuntimeError(
                "alluxio format master ended (%s); last lines of logs/format.out:\n%s"
                % (describe_exit(code), alluxio_process.tail_file(output, LOG_TAIL_LINES))
            )

    def _jvm_config(self, layout: TaskLayout) -> alluxio_process.AlluxioJvmConfig:
        return alluxio_process.AlluxioJvmConfig(
            alluxio_home=layout.alluxio_home,
            conf_dir=layout.conf_dir,
            logs_dir=layout.logs_dir,
            tmp_dir=layout.tmp_dir,
            java=layout.java,
            heap_size="%dMB" % self.plan.heap_size_mb,
            jvm_options=list(self.plan.jvm_options),
            base_env=jvm_environment(layout, self.run_as, self._environ),
        )

    @property
    def output_path(self) -> str:
        assert self.layout is not None
        return os.path.join(self.layout.logs_dir, "%s.out" % self.plan.role)

    def start(self) -> None:
        assert self.layout is not None
        assert self._slot is not None
        self._check_kill()
        started = time.monotonic()
        config = self._jvm_config(self.layout)
        self.cds = self._plan_cds(config)
        if self.cds is not None:
            config = dataclasses.replace(config, jvm_options=[*self.cds.flags, *config.jvm_options])
        command = self._command_factory(self.plan.role, config)
        self._mark("command", started)
        started = time.monotonic()
        self.process = ServerProcess.spawn(
            command.argv, command.env, self.sandbox, self.output_path, self.run_as
        )
        self._exec_at = time.monotonic()
        self._mark("spawn", started)
        self._slot.jvm_pid = self.process.pid
        self._slot.jvm_start = process_start(self.process.pid)
        self._state_file.write(self._slot)
        total = (self._exec_at - self._launched_at) * 1000
        slow = sum(self.timings.get(k, 0.0) for k in ("stage", "verify", "journal"))
        LOG.info(
            "launch→exec %.1f ms for the %s JVM pid %d (%s); without artifact hashing and journal "
            "format: %.1f ms",
            total,
            self.plan.role,
            self.process.pid,
            ", ".join("%s %.1f ms" % kv for kv in self.timings.items()),
            total - slow,
        )
        self.timings["launch_to_exec"] = total

    def _plan_cds(self, config: alluxio_process.AlluxioJvmConfig) -> Optional[cds.ArchivePlan]:
        """Class-data sharing needs jar paths that are the same for every task on the host: only
        a staged distribution has them (a fetched one lives in each task's own sandbox)."""
        if self.plan.alluxio_home_mode != "staged" or self.layout is None:
            return None
        try:
            java = alluxio_process.resolve_java(config.java, config.base_env)
            jars = alluxio_process.server_jars(config.alluxio_home)
            return cds.plan_archive(
                self.plan.cache_dir,
                java,
                jars,
                self.plan.role,
                dump_dir=self.layout.tmp_dir,
                jvm_options=self.plan.jvm_options,
            )
        except (OSError, alluxio_process.AlluxioProcessError) as exc:
            LOG.warning("starting without class-data sharing: %s", exc)
            return None

    def _probe_host(self) -> str:
        bind = self.plan.alluxio_properties.get("alluxio.%s.bind.host" % self.plan.role, "")
        return bind if bind and bind not in ("0.0.0.0", "::") else "127.0.0.1"

    def wait_ready(self) -> float:
        """Block until the server answers on its RPC port; returns seconds since exec."""
        assert self.process is not None
        process = self.process
        port = self.plan.ports["rpc"]

        def abort() -> Optional[str]:
            if self._kill_event.is_set():
                return "kill requested"
            code = process.poll()
            return None if code is None else "the JVM ended (%s)" % describe_exit(code)

        try:
            ready = readiness.wait_until_answering(
                self._probe_host(), port, self.plan.readiness_timeout_secs, abort
            )
        except readiness.NotReady as exc:
            if not exc.aborted:
                raise ReadinessTimeout(
                    "the Alluxio %s did not answer on port %d within %.0fs%s"
                    % (self.plan.role, port, self.plan.readiness_timeout_secs, self._log_tail())
                ) from None
            self._check_kill()
            code = process.wait()
            raise ServerExited(self._exit_message(code, "before answering on port %d" % port), code) from None
        self._ready_at = time.monotonic()
        ready_after = self._ready_at - self._exec_at
        self.timings["exec_to_ready"] = ready_after * 1000
        self.timings["ready_detection_max"] = ready.open_detected_within_secs * 1000
        self.timings["first_answer"] = ready.first_answer_secs * 1000
        LOG.info(
            "the %s answers gRPC on port %d %.0f ms after exec (port open seen within %.0f ms, "
            "its first HTTP/2 answer took %.0f ms)",
            self.plan.role,
            port,
            ready_after * 1000,
            ready.open_detected_within_secs * 1000,
            ready.first_answer_secs * 1000,
        )
        self.reporter.report(
            TaskUpdate(
                TASK_RUNNING,
                "the Alluxio %s answers on port %d" % (self.plan.role, port),
                details={"ports": dict(self.plan.ports), "pid": process.pid},
            )
        )
        return ready_after

    def supervise(self) -> TaskUpdate:
        """Wait for the JVM to exit (→ TASK_FAILED) or a kill (→ the kill sequence)."""
        assert self.process is not None
        while True:
            code = self.process.wait(SUPERVISE_POLL_SECS)
            if code is not None:
                return TaskUpdate(
                    TASK_FAILED,
                    self._exit_message(code, "after it was running"),
                    details={"exit_status": code},
                )
            self._check_kill()
            self._tend_cds_build()

    def _tend_cds_build(self) -> None:
        """Build the host's class-data sharing archive from what this JVM listed, once it has
        settled, at idle priority; spawned here so that it dies with the executor's main thread."""
        plan = self.cds
        if plan is None or self.layout is None:
            return
        if self.cds_build is not None:
            code = self.cds_build.poll()
            if code is not None:
                self.cds_build = None
                plan.build_finished(code)
            return
        if not plan.wants_build or time.monotonic() - self._ready_at < self._cds_build_after:
            return
        argv = plan.build_command()
        if argv is None:
            return
        output = os.path.join(self.layout.logs_dir, "cds-archive.out")
        try:
            self.cds_build = ServerProcess.spawn(
                argv,
                self._jvm_config(self.layout).base_env or {},
                self.sandbox,
                output,
                self.run_as,
                idle_priority=True,
            )
        except Exception as exc:
            LOG.warning("no class-data sharing archive: %s", exc)
            plan.finish()
            return
        LOG.info(
            "building the class-data sharing archive at idle priority (pid %d, logs/cds-archive.out)",
            self.cds_build.pid,
        )

    def _kill_sequence(self) -> TaskUpdate:
        self._announce_killing()
        grace = self.grace_period()
        code = None
        if self.process is not None:
            LOG.info(
                "stopping the %s JVM pid %d: SIGTERM, then SIGKILL after %.1fs",
                self.plan.role,
                self.process.pid,
                grace,
            )
            code = self.stop_process(grace)
        details = {"grace_period_secs": grace}  # type: Dict[str, object]
        if code is not None:
            details["exit_status"] = code
        escalated = "SIGKILL" in self.kill_steps
        message = "killed the Alluxio %s" % self.plan.role
        if self.process is None:
            message += " before it started"
        elif escalated:
            message += " (SIGKILL after the %.1fs grace period)" % grace
        return TaskUpdate(TASK_KILLED, message, details=details)

    def stop_process(self, grace: float) -> int:
        assert self.process is not None
        code = self.process.stop(grace, self._record_step)
        self._process_stopped = True
        return code

    def _record_step(self, step: str) -> None:
        self.kill_steps.append(step)
        LOG.info("kill: %s", step)

    def cleanup(self) -> List[str]:
        """Stop the JVM group, unmount, forget the slot. Idempotent; returns problems, never raises."""
        problems = []
        if self.process is not None and not self._process_stopped:
            try:
                self.stop_process(0.0)
            except Exception as exc:  # keep going: the unmount must still happen
                problems.append("stopping the JVM: %s" % exc)
        if self.cds_build is not None:
            try:
                self.cds_build.stop(0.0, lambda step: None)  # an unfinished archive is worthless
                self.cds_build = None
            except Exception as exc:
                problems.append("stopping the class-data sharing build: %s" % exc)
        if self.cds is not None and self.cds_build is None:
            self.cds.finish()
            self.cds = None
        if self.mounted is not None or (self._slot is not None and self._slot.mount_path):
            path = self.mounted or (self._slot.mount_path if self._slot else None)
            try:
                if path and ramdisk.unmount_ramdisk(path):
                    self.kill_steps.append("unmounted %s" % path)
                    LOG.info("unmounted the ramdisk %s", path)
                self.mounted = None
            except Exception as exc:
                problems.append("unmounting the ramdisk: %s" % exc)
        if not problems and self._slot is not None:
            try:
                self._state_file.remove()
            except OSError as exc:
                problems.append("removing %s: %s" % (self._state_file.path, exc))
        if self.process is None or self._process_stopped:
            # Only once no JVM of ours can still read it may another executor prune it.
            for dist in self.staged.values():
                dist.release()
        return problems

    # -- reporting helpers --------------------------------------------------------------------

    def _mark(self, phase: str, started: float) -> None:
        self.timings[phase] = (time.monotonic() - started) * 1000

    def _log_tail(self) -> str:
        if self.layout is None:
            return ""
        parts = []
        for name in ("%s.out" % self.plan.role, "%s.log" % self.plan.role):
            tail = alluxio_process.tail_file(os.path.join(self.layout.logs_dir, name), LOG_TAIL_LINES)
            if tail.strip():
                parts.append("\n--- last lines of logs/%s ---\n%s" % (name, tail))
        text = "".join(parts)
        return text if len(text) <= MAX_MESSAGE_CHARS else "..." + text[-MAX_MESSAGE_CHARS:]

    def _exit_message(self, code: int, when: str) -> str:
        return "the Alluxio %s JVM ended (%s) %s%s" % (
            self.plan.role,
            describe_exit(code),
            when,
            self._log_tail(),
        )

    def _failure(self, exc: Exception) -> TaskUpdate:
        details = {"error": exc.__class__.__name__}  # type: Dict[str, object]
        if isinstance(exc, ServerExited):
            details["exit_status"] = exc.code
            return TaskUpdate(TASK_FAILED, str(exc), details=details)
        message = str(exc) or exc.__class__.__name__
        if self.process is None:
            message = "could not start the Alluxio %s: %s" % (self.plan.role, message)
        return TaskUpdate(TASK_FAILED, message, details=details)


class ServerExited(RuntimeError):
    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


class ReadinessTimeout(RuntimeError):
    pass


def split_timings(timings: Mapping[str, float]) -> Tuple[float, float]:
    """(launch→exec ms, the part spent on staging, artifact hashing and journal formatting)."""
    slow = sum(timings.get(k, 0.0) for k in ("stage", "verify", "journal"))
    return timings.get("launch_to_exec", 0.0), slow
