"""Reference section 3: implicit and explicit reconciliation."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.integration.mesos_conformance.client import SchedulerClient, post_json, task_info
from tests.mesos_fixtures import MasterProcess

pytestmark = pytest.mark.integration

Subscribe = Callable[..., SchedulerClient]


def _reconciled(client: SchedulerClient, task_id: str) -> dict:
    return client.update(
        predicate=lambda e: (
            e["update"]["status"]["task_id"]["value"] == task_id
            and e["update"]["status"].get("reason") == "REASON_RECONCILIATION"
        )
    )


def _running_tasks(client: SchedulerClient, count: int) -> tuple[str, list[str]]:
    offer = client.offers()[0]
    agent_id = offer["agent_id"]["value"]
    ids = [f"r{i}" for i in range(count)]
    client.launch(offer, [task_info(t, agent_id, cpus=0.25) for t in ids])
    for task_id in ids:
        client.update_for(task_id, "TASK_RUNNING")
    return agent_id, ids


def test_implicit_reconciliation_reports_every_task(subscribe: Subscribe) -> None:
    client = subscribe()
    agent_id, ids = _running_tasks(client, 3)
    assert client.call("RECONCILE", reconcile={"tasks": []}).status == 202
    for task_id in ids:
        status = _reconciled(client, task_id)
        assert status["state"] == "TASK_RUNNING"
        assert status["source"] == "SOURCE_MASTER"
        assert status["message"] == "Reconciliation: Latest task state"
        assert status["agent_id"] == {"value": agent_id}
        assert "executor_id" not in status  # command tasks have no executor id at the master
        assert "uuid" not in status
    extra = client.stream.collect(0.5, "UPDATE")
    assert [e for e in extra if e["update"]["status"].get("reason") == "REASON_RECONCILIATION"] == []


def test_explicit_reconciliation_of_known_and_unknown_tasks(subscribe: Subscribe) -> None:
    client = subscribe()
    agent_id, _ = _running_tasks(client, 1)
    reply = client.call(
        "RECONCILE",
        reconcile={
            "tasks": [
                {"task_id": {"value": "r0"}},
                {"task_id": {"value": "missing-on-agent"}, "agent_id": {"value": agent_id}},
                {"task_id": {"value": "nowhere"}, "agent_id": {"value": "no-such-agent"}},
                {"task_id": {"value": "no-agent-given"}},
            ]
        },
    )
    assert reply.status == 202
    assert _reconciled(client, "r0")["state"] == "TASK_RUNNING"
    on_agent = _reconciled(client, "missing-on-agent")
    assert (on_agent["state"], on_agent["message"]) == (
        "TASK_LOST",
        "Reconciliation: Task is unknown to the agent",
    )
    assert on_agent["agent_id"] == {"value": agent_id}
    nowhere = _reconciled(client, "nowhere")
    assert (nowhere["state"], nowhere["message"]) == ("TASK_LOST", "Reconciliation: Task is unknown")
    no_agent = _reconciled(client, "no-agent-given")
    assert "agent_id" not in no_agent
    assert all("uuid" not in s for s in (on_agent, nowhere, no_agent))


def test_partition_aware_frameworks_get_precise_states(
    subscribe: Subscribe, sim_master: MasterProcess
) -> None:
    client = subscribe(capabilities=[{"type": "PARTITION_AWARE"}])
    first, second = client.offers()
    gone_agent = second["agent_id"]["value"]
    client.launch(first, [task_info("on-unreachable", first["agent_id"]["value"])])
    client.update_for("on-unreachable", "TASK_RUNNING")
    post_json(sim_master, f"/internal/simulation/agents/{first['agent_id']['value']}/unreachable", {})
    unreachable = client.update_for("on-unreachable", "TASK_UNREACHABLE")
    assert unreachable["reason"] == "REASON_AGENT_REMOVED"
    assert "unreachable_time" in unreachable
    client.call(
        "RECONCILE",
        reconcile={
            "tasks": [
                {"task_id": {"value": "x"}, "agent_id": {"value": gone_agent}},
                {"task_id": {"value": "y"}, "agent_id": first["agent_id"]},
                {"task_id": {"value": "z"}},
            ]
        },
    )
    assert _reconciled(client, "x")["state"] == "TASK_GONE"
    assert _reconciled(client, "y")["state"] == "TASK_UNREACHABLE"
    assert _reconciled(client, "z")["state"] == "TASK_UNKNOWN"


def test_unreachable_agent_tasks_are_lost_for_other_frameworks(
    subscribe: Subscribe, sim_master: MasterProcess
) -> None:
    client = subscribe()
    offer = client.offers()[0]
    agent_id = offer["agent_id"]["value"]
    post_json(sim_master, f"/internal/simulation/agents/{agent_id}/unreachable", {})
    client.call(
        "RECONCILE", reconcile={"tasks": [{"task_id": {"value": "q"}, "agent_id": {"value": agent_id}}]}
    )
    status = _reconciled(client, "q")
    assert (status["state"], status["message"]) == ("TASK_LOST", "Reconciliation: Task is unreachable")


def test_reconciliation_reports_the_unacknowledged_state(
    sim_master: MasterProcess, schedulers: list[SchedulerClient]
) -> None:
    client = SchedulerClient.subscribe(sim_master, auto_ack=False)
    schedulers.append(client)
    offer = client.offers()[0]
    client.launch(offer, [task_info("slow-ack", offer["agent_id"]["value"])])
    client.update_for("slow-ack", "TASK_STARTING")
    client.call("RECONCILE", reconcile={"tasks": [{"task_id": {"value": "slow-ack"}}]})
    assert _reconciled(client, "slow-ack")["state"] == "TASK_STARTING"
