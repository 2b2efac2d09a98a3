"""Fixtures of the agent suite: a real master, real agents, pymesos frameworks; all cleaned up."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.mesos_agent.harness import TestFramework
from tests.mesos_fixtures import (  # noqa: F401 - fixtures
    AgentProcess,
    MasterProcess,
    kill_container_processes,
    mesos_agent,
    mesos_master,
    start_agent,
    stop_agent,
)


@pytest.fixture
def frameworks(mesos_master: MasterProcess) -> Iterator[Callable[..., TestFramework]]:  # noqa: F811
    """``frameworks(**kwargs)`` starts a pymesos framework on the master; all stopped afterwards."""
    started: list[TestFramework] = []

    def start(**kwargs: Any) -> TestFramework:
        framework = TestFramework(mesos_master.address, **kwargs)
        started.append(framework)
        return framework.start()

    try:
        yield start
    finally:
        for framework in reversed(started):
            framework.stop()


@pytest.fixture
def agents(mesos_master: MasterProcess, tmp_path: Path) -> Iterator[Callable[..., AgentProcess]]:  # noqa: F811
    """``agents(*flags, work_dir=..., **kwargs)`` starts agents, stopped with their executors after."""
    started: list[AgentProcess] = []
    work_dirs: set[Path] = set()

    def start(
        *flags: str, work_dir: Path | None = None, master: str | None = None, **kwargs: Any
    ) -> AgentProcess:
        directory = work_dir or tmp_path / f"agent-{len(started)}" / "work"
        work_dirs.add(directory)
        agent = start_agent(master or mesos_master.address, directory, flags, **kwargs)
        started.append(agent)
        return agent

    try:
        yield start
    finally:
        for agent in started:
            stop_agent(agent)
        for directory in work_dirs:
            kill_container_processes(directory)
