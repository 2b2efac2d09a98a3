"""The framework process: lock the state dir, register with Mesos, serve the status endpoint, tick
the scheduler, and react to signals.

Signals:
- SIGTERM, SIGINT: stop the framework but keep Alluxio running (Mesos keeps the tasks for the
  failover timeout; the next start re-subscribes and reconciles).
- SIGHUP: re-read the configuration; changed tasks are replaced one at a time.
- SIGUSR1: tear the framework down (TEARDOWN: Mesos kills every Alluxio task), then exit.
  `alluxio-mesos framework stop` sends it.
"""

from __future__ import annotations

import dataclasses
import getpass
import logging
import os
import pathlib
import signal
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import pymesos.process
from pymesos import MesosSchedulerDriver

from framework.mesos_calls import CallSender
from framework.mesos_http import (
    MesosHttpError,
    basic_authorization,
    framework_tasks,
    get_json,
    teardown_framework,
)
from framework.mesos_scheduler import FRAMEWORK_REMOVED, AlluxioScheduler
from framework.scheduler_core import ReloadRefused, SchedulerCore
from framework.spec import ClusterSpec, Key, SpecError, load_spec_file
from framework.state_store import PersistedState, StateStore
from framework.status import status_document
from framework.status_server import StatusServer

LOG = logging.getLogger("framework")
TICK_SECONDS = 1.0
CALLS_DRAIN_SECONDS = 5.0
# pymesos reads the event stream PIPE_BUF (4 KiB) at a time, and the pure-Python HTTP parser joins
# the whole pending chunk again on every read: one OFFERS event from 10,000 agents (~10 MB, one
# chunk) then costs seconds of copying, quadratic in its size. Reading up to 1 MiB at a time makes
# it linear; small events are unaffected (recv returns what is there).
STREAM_READ_BYTES = 1 << 20
pymesos.process.PIPE_BUF = max(pymesos.process.PIPE_BUF, STREAM_READ_BYTES)
CAPABILITIES = [{"type": "TASK_KILLING_STATE"}]


class StartupError(RuntimeError):
    """The framework cannot start; the message names the setting to change."""


@dataclasses.dataclass(frozen=True)
class RunOptions:
    mesos_master: str
    conf_path: pathlib.Path
    state_dir: pathlib.Path
    master_host: str | None = None
    status_bind: str = "0.0.0.0"
    status_port: int | None = None
    advertise_host: str | None = None


def load_configuration(options: RunOptions) -> ClusterSpec:
    spec = load_spec_file(options.conf_path)
    overrides: dict[str, Any] = {}
    if options.master_host:
        overrides[Key.MASTER_HOSTNAME] = options.master_host
    if options.status_port is not None:
        overrides[Key.STATUS_PORT] = options.status_port
    return spec.model_copy_with(overrides) if overrides else spec


def framework_info(spec: ClusterSpec, state: PersistedState, webui_url: str, hostname: str) -> dict[str, Any]:
    info: dict[str, Any] = {
        "name": spec.framework_name,
        "user": spec.user or getpass.getuser(),
        "principal": spec.principal,
        "role": spec.role,
        "checkpoint": True,
        "failover_timeout": spec.failover_timeout_seconds,
        "webui_url": webui_url,
        "hostname": hostname,
        "capabilities": list(CAPABILITIES),
    }
    if state.framework_id:
        info["id"] = {"value": state.framework_id}
    return info


class FrameworkProcess:
    """One running framework. `run()` returns the process exit code."""

    def __init__(self, options: RunOptions, spec: ClusterSpec) -> None:
        self.options = options
        self.spec = spec
        self.store = StateStore(options.state_dir)
        self._stop = threading.Event()
        self._reload = threading.Event()
        self._teardown = threading.Event()
        self._fatal: str | None = None
        self.started_at = time.time()

    # signal handlers only set flags; the main loop acts on them
    def request_stop(self, *_: Any) -> None:
        self._stop.set()

    def request_reload(self, *_: Any) -> None:
        self._reload.set()

    def request_teardown(self, *_: Any) -> None:
        self._teardown.set()

    def _fatal_error(self, message: str) -> None:
        self._fatal = message
        self._stop.set()

    def run(self) -> int:
        self.store.lock()
        try:
            return self._run_locked()
        finally:
            self.store.clear_runtime()
            self.store.unlock()

    def _run_locked(self) -> int:
        state = self.store.load()
        state.mesos_master = self.options.mesos_master
        core = SchedulerCore(self.spec, state, time.time)
        core.dirty = True
        scheduler = AlluxioScheduler(core, self.store, self._fatal_error)
        with scheduler.lock:
            scheduler.save_state()  # the salt and master slots, before anything refers to them
        try:
            server = StatusServer(
                self.options.status_bind, self.spec.status_port, self._snapshot_for(scheduler)
            )
        except OSError as error:
            raise StartupError(
                f"the status endpoint cannot listen on {self.options.status_bind}:{self.spec.status_port}: "
                f"{error.strerror}; choose another {Key.STATUS_PORT} (or --status-port)"
            ) from None
        server.start()
        try:
            return self._drive(scheduler, server.port)
        finally:
            server.stop()

    def _snapshot_for(self, scheduler: AlluxioScheduler) -> Callable[[], dict[str, Any]]:
        def snapshot() -> dict[str, Any]:
            with scheduler.lock:
                return status_document(
                    scheduler.core, mesos_master=self.options.mesos_master, started_at=self.started_at
                )

        return snapshot

    def _drive(self, scheduler: AlluxioScheduler, status_port: int) -> int:
        core = scheduler.core
        host = self.options.advertise_host or socket.getfqdn()
        webui_url = f"http://{host}:{status_port}/"
        try:
            secret = self.spec.mesos_secret()
        except OSError as error:
            raise StartupError(
                f"{Key.SECRET_FILE}: cannot read {self.spec.secret_file}: {error.strerror}"
            ) from None
        driver = MesosSchedulerDriver(
            scheduler,
            framework_info(self.spec, core.state, webui_url, host),
            self.options.mesos_master,
            use_addict=False,
            # framework/mesos_calls.py acknowledges, once the update is on disk (group commit).
            implicit_acknowledgements=False,
            principal=self.spec.principal if secret is not None else None,
            secret=secret,
            # failover=True: if pymesos's IO thread dies it must not send TEARDOWN on its own.
            failover=True,
        )
        scheduler.driver = driver
        calls = CallSender(
            scheduler.endpoint,
            scheduler.before_batch,
            basic_authorization(self.spec.principal, secret),
        )
        scheduler.calls = calls
        calls.start()
        self.store.write_runtime(
            {
                "pid": os.getpid(),
                "status_url": f"http://127.0.0.1:{status_port}/status.json",
                "webui_url": webui_url,
                "mesos_master": self.options.mesos_master,
                "conf": str(self.options.conf_path),
                "started_at": self.started_at,
            }
        )
        LOG.info(
            "starting framework %r for Mesos master %s; status at %s; state in %s",
            self.spec.framework_name,
            self.options.mesos_master,
            webui_url,
            self.options.state_dir,
        )
        driver.start()
        try:
            self._loop(scheduler)
        except KeyboardInterrupt:
            LOG.info("interrupted: stopping, Alluxio keeps running (failover)")
        except Exception as error:  # pymesos re-raises its IO thread's failure here
            self._fatal = f"the Mesos connection failed: {error}"
        # What is queued (acknowledgements, declines) goes out while the subscription still holds.
        calls.stop(drain_seconds=CALLS_DRAIN_SECONDS)
        if self._teardown.is_set() and self._fatal is None:
            return self._tear_down(scheduler, driver)
        driver.stop(failover=True)
        driver.join()
        if self._fatal is not None:
            LOG.error("stopping: %s", self._fatal)
            if FRAMEWORK_REMOVED in self._fatal:
                self._forget_framework(scheduler)
            return 1
        LOG.info(
            "stopped; Alluxio tasks keep running for the failover timeout (%gs)",
            self.spec.failover_timeout_seconds,
        )
        return 0

    def _loop(self, scheduler: AlluxioScheduler) -> None:
        while not self._stop.is_set() and not self._teardown.is_set():
            self._stop.wait(TICK_SECONDS)
            if self._reload.is_set():
                self._reload.clear()
                self._apply_reload(scheduler)
            scheduler.tick()

    def _apply_reload(self, scheduler: AlluxioScheduler) -> None:
        LOG.info("reloading %s", self.options.conf_path)
        try:
            spec = load_configuration(self.options)
        except SpecError as error:
            LOG.error("reload rejected, keeping the running configuration: %s", error)
            with scheduler.lock:
                scheduler.core.reload_error = f"reload rejected: {error}"
            return
        try:
            scheduler.handle(lambda: scheduler.core.replace_spec(spec))
        except ReloadRefused as error:
            LOG.error("%s", error)
            return
        self.spec = spec

    def _tear_down(self, scheduler: AlluxioScheduler, driver: MesosSchedulerDriver) -> int:
        with scheduler.lock:
            scheduler.core.begin_teardown()
            framework_id = scheduler.core.state.framework_id
        if framework_id is None:
            driver.stop(failover=True)
            driver.join()
            return 0
        master = driver.master or self.options.mesos_master
        connected = driver.connected
        LOG.info("tearing down framework %s: Mesos kills every Alluxio task", framework_id)
        # Connected, pymesos sends the scheduler API TEARDOWN on its way out; otherwise nothing.
        driver.stop(failover=not connected)
        driver.join()
        if not self._framework_gone(master, framework_id):
            try:
                teardown_framework(master, framework_id, self.spec.principal, self.spec.mesos_secret())
            except MesosHttpError as error:
                LOG.error("teardown failed, the framework id is kept for another try: %s", error)
                return 1
            if not self._framework_gone(master, framework_id):
                LOG.error("the Mesos master %s still lists framework %s after TEARDOWN", master, framework_id)
                return 1
        self._forget_framework(scheduler)
        LOG.info("framework %s torn down", framework_id)
        return 0

    @staticmethod
    def _framework_gone(master: str, framework_id: str, wait_seconds: float = 10.0) -> bool:
        deadline = time.monotonic() + wait_seconds
        while True:
            try:
                present, _ = framework_tasks(get_json(master, "/master/state"), framework_id)
            except MesosHttpError as error:
                LOG.warning("cannot read the master's state: %s", error)
                present = True
            if not present:
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.5)

    def _forget_framework(self, scheduler: AlluxioScheduler) -> None:
        """The framework id is dead: the next start registers a new framework."""
        with scheduler.lock:
            state = scheduler.core.state
            fresh = PersistedState(salt=state.salt, mesos_master=state.mesos_master)
            self.store.save(fresh)


def install_signal_handlers(process: FrameworkProcess) -> None:
    signal.signal(signal.SIGTERM, process.request_stop)
    signal.signal(signal.SIGHUP, process.request_reload)
    signal.signal(signal.SIGUSR1, process.request_teardown)
    # SIGINT stays with pymesos: its handler re-raises the IO thread's failure in the main thread.
