"""Containers as plain processes (Mesos' MesosContainerizer with the POSIX/Linux launcher).

A container is one executor run: fetch its URIs, then start ``ExecutorInfo.command`` in the
sandbox, in its own session, as the right user, with stdout/stderr appended to the sandbox
files. ``wait`` resolves with the raw wait status (None when it cannot be known: a recovered
container the agent did not start). ``destroy`` kills everything in the container.

Every container also gets a runtime record (pid + sandbox) under ``<runtime_dir>/containers``,
checkpointing framework or not, so a restarted agent can kill containers it no longer knows
(Mesos destroys such "orphans" the same way).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import pwd
import shutil
import subprocess
from dataclasses import dataclass, field
from typing import Any

from sandbox.mesos.agent import checkpoint, paths, processes
from sandbox.mesos.agent.fetch_launch import Fetch, FetchFailed, RunAs
from sandbox.mesos.agent.processes import ProcessIdentity

log = logging.getLogger("mesos.agent.containerizer")


class LaunchFailed(Exception):
    """The container could not be started; ``str()`` follows "Failed to launch container: "."""


@dataclass
class Container:
    container_id: str
    sandbox: str
    leader: ProcessIdentity | None = None
    fetch: Fetch | None = None
    destroying: bool = False
    termination: asyncio.Future[int | None] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


def resolve_user(name: str) -> RunAs:
    try:
        entry = pwd.getpwnam(name)
    except KeyError as error:
        raise LaunchFailed(f"Failed to get user information for '{name}': No such user '{name}'") from error
    return RunAs(
        name=name, uid=entry.pw_uid, gid=entry.pw_gid, groups=tuple(os.getgrouplist(name, entry.pw_gid))
    )


def _current_user() -> str:
    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        return str(os.geteuid())


def command_argv(command: dict[str, Any]) -> tuple[str, list[str]]:
    """(program, argv) for a CommandInfo: ``sh -c value``, or execvp(value, arguments)."""
    if command.get("shell", True):
        return "/bin/sh", ["sh", "-c", str(command.get("value", ""))]
    value = str(command.get("value", ""))
    arguments = [str(a) for a in command.get("arguments", [])] or [value]
    return value, arguments


class Containerizer:
    def __init__(self, runtime_dir: str, fetcher_cache_dir: str, switch_user: bool) -> None:
        self._runtime_dir = runtime_dir
        self._fetcher_cache_dir = fetcher_cache_dir
        self._switch_user = switch_user
        self._containers: dict[str, Container] = {}

    def containers(self) -> list[str]:
        return list(self._containers)

    def _run_as(self, user: str | None) -> RunAs | None:
        if not self._switch_user or not user or user == _current_user():
            return None
        if os.geteuid() != 0:
            raise LaunchFailed(f"Failed to switch to user '{user}': the agent does not run as root")
        return resolve_user(user)

    async def launch(
        self,
        *,
        container_id: str,
        sandbox: str,
        command: dict[str, Any],
        env: dict[str, str],
        user: str | None,
        forked_pid_path: str | None,
    ) -> None:
        """Fetch and start the container; raises LaunchFailed (the container is then gone)."""
        container = Container(container_id=container_id, sandbox=sandbox)
        self._containers[container_id] = container
        try:
            run_as = self._run_as(user)
            if run_as is not None:
                for root, _dirs, files in os.walk(sandbox):
                    for entry in [root, *(os.path.join(root, f) for f in files)]:
                        os.chown(entry, run_as.uid, run_as.gid)
            container.fetch = Fetch(container_id)
            await container.fetch.run(command, sandbox, self._fetcher_cache_dir, user, run_as)
            container.fetch = None
            if container.destroying:
                raise LaunchFailed(f"Container '{container_id}' was destroyed during launch")
            self._start(container, command, env, run_as, forked_pid_path)
        except (FetchFailed, OSError, LaunchFailed) as error:
            self._containers.pop(container_id, None)
            if not container.termination.done():
                container.termination.set_result(None)
            if isinstance(error, OSError):
                raise LaunchFailed(f"{type(error).__name__}: {error}") from error
            raise LaunchFailed(str(error)) from error

    def _start(
        self,
        container: Container,
        command: dict[str, Any],
        env: dict[str, str],
        run_as: RunAs | None,
        forked_pid_path: str | None,
    ) -> None:
        program, argv = command_argv(command)
        kwargs: dict[str, Any] = {}
        if run_as is not None:
            kwargs = {"user": run_as.uid, "group": run_as.gid, "extra_groups": list(run_as.groups)}
            env.setdefault("USER", run_as.name)
        stdout = open(os.path.join(container.sandbox, "stdout"), "ab")  # noqa: SIM115 - handed to the child
        stderr = open(os.path.join(container.sandbox, "stderr"), "ab")  # noqa: SIM115
        try:
            if "/" not in program and shutil.which(program, path=env.get("PATH", os.defpath)) is None:
                raise FileNotFoundError(2, "No such file or directory", program)
            child = subprocess.Popen(
                argv,
                executable=program,
                stdin=subprocess.DEVNULL,
                stdout=stdout,
                stderr=stderr,
                cwd=container.sandbox,
                env=env,
                start_new_session=True,
                close_fds=True,
                **kwargs,
            )
        except OSError as error:
            # Mesos' launch helper forks fine and then fails to exec: the container "runs",
            # exits with status 1, and the reason is in the sandbox's stderr.
            stderr.write(f"Failed to execute '{program}': {error.strerror}\n".encode())
            container.termination.set_result(1 << 8)
            asyncio.get_running_loop().call_soon(self._forget, container.container_id)
            return
        finally:
            stdout.close()
            stderr.close()
        identity = processes.identify(child.pid) or ProcessIdentity(child.pid, 0)
        container.leader = identity
        record = {"container_id": container.container_id, "sandbox": container.sandbox, **identity.to_json()}
        checkpoint.write_json(
            os.path.join(paths.container_runtime_path(self._runtime_dir, container.container_id), "pid"),
            record,
        )
        if forked_pid_path is not None:
            checkpoint.write_text(forked_pid_path, str(child.pid))
        log.info("Launched container %s with pid %d", container.container_id, child.pid)
        asyncio.get_running_loop().create_task(self._reap(container, child))

    def _forget(self, container_id: str) -> None:
        self._containers.pop(container_id, None)
        shutil.rmtree(paths.container_runtime_path(self._runtime_dir, container_id), ignore_errors=True)

    async def _reap(self, container: Container, child: subprocess.Popen[bytes]) -> None:
        status = await processes.wait_child(child.pid)
        child.returncode = os.waitstatus_to_exitcode(status) if status >= 0 else -1
        self._finish(container, status)

    async def _watch_foreign(self, container: Container) -> None:
        assert container.leader is not None
        await processes.wait_foreign(container.leader)
        self._finish(container, None)

    def _finish(self, container: Container, status: int | None) -> None:
        # The executor is gone; like a cgroup destroy, nothing it started may outlive it.
        killed = processes.kill_container(container.leader, container.sandbox)
        if killed:
            log.info("Killed %d leftover process(es) of container %s", len(killed), container.container_id)
        self._forget(container.container_id)
        if not container.termination.done():
            container.termination.set_result(status)

    def wait(self, container_id: str) -> asyncio.Future[int | None] | None:
        container = self._containers.get(container_id)
        return container.termination if container is not None else None

    def destroy(self, container_id: str) -> None:
        """Kill the container now (SIGKILL to every process of it); ``wait`` then resolves."""
        container = self._containers.get(container_id)
        if container is None:
            return
        container.destroying = True
        if container.fetch is not None:
            container.fetch.cancel()
        if container.leader is not None:
            killed = processes.kill_container(container.leader, container.sandbox)
            log.info("Destroyed container %s (%d process(es) killed)", container_id, len(killed))

    def recover(self, known: dict[str, tuple[str, ProcessIdentity | None]]) -> dict[str, bool]:
        """Adopt the containers of recovered executors; kill every other recorded container.

        ``known`` maps container id -> (sandbox, checkpointed forked pid). Returns, per known
        container, whether its executor is still running.
        """
        records: dict[str, dict[str, Any]] = {}
        containers_dir = os.path.join(self._runtime_dir, "containers")
        if os.path.isdir(containers_dir):
            for container_id in os.listdir(containers_dir):
                with contextlib.suppress(OSError, ValueError, KeyError):
                    records[container_id] = checkpoint.read_json(
                        os.path.join(containers_dir, container_id, "pid")
                    )
        alive: dict[str, bool] = {}
        for container_id, (sandbox, forked) in known.items():
            record = records.pop(container_id, None)
            identity = ProcessIdentity.from_json(record) if record is not None else None
            if identity is None and forked is not None:
                identity = processes.identify(forked.pid)
            running = identity is not None and processes.is_alive(identity)
            alive[container_id] = running
            container = Container(container_id=container_id, sandbox=sandbox, leader=identity)
            self._containers[container_id] = container
            if running:
                asyncio.get_running_loop().create_task(self._watch_foreign(container))
            else:
                self._finish(container, None)
        for container_id, record in records.items():
            identity = ProcessIdentity.from_json(record) if "pid" in record else None
            killed = processes.kill_container(identity, str(record.get("sandbox", "")))
            log.info("Destroyed orphan container %s (%d process(es) killed)", container_id, len(killed))
            shutil.rmtree(os.path.join(containers_dir, container_id), ignore_errors=True)
        return alive
