"""Fixtures for the master conformance suite (raw HTTP against a real master subprocess)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tests.integration.mesos_conformance.client import FakeAgent, SchedulerClient
from tests.mesos_fixtures import MasterProcess, mesos_master, mesos_master_factory  # noqa: F401

# Two simulated agents with distinct attributes, a short heartbeat and quick simulated tasks.
SIM_FLAGS = (
    "--heartbeat_interval=1secs",
    "--simulated_agents=2",
    "--simulated_agent_resources=cpus:2;mem:1024;disk:4096;ports:[31000-31009]",
    "--simulated_agent_attributes=rack:r1;size:3",
    "--simulated_task_delay=50ms",
)


@pytest.fixture
def sim_master(mesos_master_factory: Callable[..., MasterProcess]) -> MasterProcess:  # noqa: F811
    """A master with two simulated agents (see SIM_FLAGS)."""
    return mesos_master_factory(*SIM_FLAGS)


@pytest.fixture
def schedulers() -> Iterator[list[SchedulerClient]]:
    """Register SchedulerClients here to have them closed after the test."""
    clients: list[SchedulerClient] = []
    try:
        yield clients
    finally:
        for client in clients:
            client.close()


@pytest.fixture
def subscribe(sim_master: MasterProcess, schedulers: list[SchedulerClient]) -> Callable[..., SchedulerClient]:
    """``subscribe(**framework_info_overrides)`` -> a subscribed SchedulerClient on sim_master."""

    def make(**overrides: object) -> SchedulerClient:
        client = SchedulerClient.subscribe(sim_master, **overrides)
        schedulers.append(client)
        return client

    return make


@pytest.fixture
def fake_agent(sim_master: MasterProcess) -> Iterator[FakeAgent]:
    """An internal-protocol agent run by the test itself, registered with sim_master."""
    agent = FakeAgent(sim_master)
    try:
        yield agent
    finally:
        agent.close()
