"""Reference section 2: status updates, uuids, acknowledgements and retries."""

from __future__ import annotations

import base64
import time
from collections.abc import Callable

import pytest

from tests.integration.mesos_conformance.client import (
    FakeAgent,
    SchedulerClient,
    executor_status,
    post_json,
    task_info,
    uuid_bytes,
)
from tests.mesos_fixtures import MasterProcess

pytestmark = pytest.mark.integration

Subscribe = Callable[..., SchedulerClient]


def _manual(sim_master: MasterProcess, schedulers: list[SchedulerClient], **info: object) -> SchedulerClient:
    client = SchedulerClient.subscribe(sim_master, auto_ack=False, **info)
    schedulers.append(client)
    return client


def test_agent_updates_carry_a_uuid_and_arrive_in_order(subscribe: Subscribe) -> None:
    client = subscribe()
    offer = client.offers()[0]
    agent_id = offer["agent_id"]["value"]
    client.launch(offer, [task_info("ordered", agent_id)])
    starting = client.update_for("ordered", "TASK_STARTING")
    running = client.update_for("ordered", "TASK_RUNNING")
    for status in (starting, running):
        assert len(uuid_bytes(status)) == 16
        assert status["source"] == "SOURCE_EXECUTOR"
        assert status["agent_id"] == {"value": agent_id}
        assert status["executor_id"] == {"value": "ordered"}  # the command executor's id is the task id
        assert isinstance(status["timestamp"], float)
    assert starting["uuid"] != running["uuid"]
    assert starting["timestamp"] <= running["timestamp"]
    assert [a.status for a in client.acks] == [202, 202]


def test_next_update_waits_for_the_acknowledgement(
    sim_master: MasterProcess, schedulers: list[SchedulerClient]
) -> None:
    client = _manual(sim_master, schedulers)
    offer = client.offers()[0]
    client.launch(offer, [task_info("gated", offer["agent_id"]["value"])])
    starting = client.update_for("gated", "TASK_STARTING")
    assert client.stream.collect(1.0, "UPDATE") == []
    assert client.acknowledge(starting).status == 202
    client.update_for("gated", "TASK_RUNNING", timeout=3)


def test_unacknowledged_update_is_retried_with_the_same_uuid(
    sim_master: MasterProcess, schedulers: list[SchedulerClient]
) -> None:
    client = _manual(sim_master, schedulers)
    offer = client.offers()[0]
    client.launch(offer, [task_info("retried", offer["agent_id"]["value"])])
    first = client.update_for("retried", "TASK_STARTING")
    started = time.monotonic()
    again = client.update_for("retried", "TASK_STARTING", timeout=15)
    assert 9.0 <= time.monotonic() - started <= 14.0
    assert again["uuid"] == first["uuid"]


def test_terminal_task_leaves_the_master_only_once_acknowledged(
    sim_master: MasterProcess, schedulers: list[SchedulerClient]
) -> None:
    client = _manual(sim_master, schedulers)
    offer = client.offers()[0]
    agent_id = offer["agent_id"]["value"]
    client.launch(offer, [task_info("short", agent_id, command="exit 3")])
    for state in ("TASK_STARTING", "TASK_RUNNING"):
        client.acknowledge(client.update_for("short", state))
    failed = client.update_for("short", "TASK_FAILED")
    assert failed["message"] == "Command exited with status 3"
    framework = sim_master.state()["frameworks"][0]
    assert [(t["id"], t["state"]) for t in framework["tasks"]] == [("short", "TASK_FAILED")]
    # Resources are freed on the terminal update, before the acknowledgement.
    assert framework["used_resources"]["cpus"] == 0.0
    client.acknowledge(failed)
    deadline = time.monotonic() + 5
    while sim_master.state()["frameworks"][0]["tasks"] and time.monotonic() < deadline:
        time.sleep(0.05)
    framework = sim_master.state()["frameworks"][0]
    assert framework["tasks"] == []
    completed = framework["completed_tasks"][0]
    assert completed["state"] == "TASK_FAILED"
    assert [s["state"] for s in completed["statuses"]] == ["TASK_STARTING", "TASK_RUNNING", "TASK_FAILED"]


def test_master_generated_updates_need_no_acknowledgement(subscribe: Subscribe) -> None:
    client = subscribe()
    offer = client.offers()[0]
    client.launch(offer, [task_info("", offer["agent_id"]["value"])])
    error = client.update(predicate=lambda e: e["update"]["status"]["state"] == "TASK_ERROR")
    assert error["message"] == "ID must not be empty"
    assert "uuid" not in error
    assert client.acks == []


# --------------------------------------------------------------------------------------------
# The internal-protocol path (what a real stand-in agent does)
# --------------------------------------------------------------------------------------------


def test_run_task_and_updates_through_the_internal_protocol(
    sim_master: MasterProcess, fake_agent: FakeAgent, schedulers: list[SchedulerClient]
) -> None:
    client = _manual(sim_master, schedulers)
    offers = client.offers()
    offer = next(o for o in offers if o["agent_id"]["value"] == fake_agent.agent_id)
    assert offer["hostname"] == "fake-agent"
    assert offer["url"]["address"]["port"] == fake_agent.info["port"]
    executor = {"executor_id": {"value": "custom"}, "command": {"value": "./run"}}
    client.launch(
        offer, [task_info("remote", fake_agent.agent_id, cpus=0.5, command=None, executor=executor)]
    )
    run_task = fake_agent.wait_message("run_task")[0]
    assert run_task["framework_info"]["id"] == {"value": client.framework_id}
    assert run_task["task"]["task_id"] == {"value": "remote"}
    assert run_task["executor_info"]["executor_id"] == {"value": "custom"}
    assert run_task["executor_info"]["framework_id"] == {"value": client.framework_id}

    status = executor_status("remote", "TASK_RUNNING", fake_agent.agent_id, executor_id={"value": "custom"})
    assert fake_agent.send_update(client.framework_id, status, latest_state="TASK_FINISHED").status == 202
    forwarded = client.update_for("remote", "TASK_RUNNING")
    assert forwarded == status
    tasks = post_json(sim_master, "/api/v1", {"type": "GET_TASKS"}).json()["get_tasks"]["tasks"]
    remote = next(t for t in tasks if t["task_id"]["value"] == "remote")
    assert remote["state"] == "TASK_FINISHED"  # latest_state wins for the task's state
    assert remote["status_update_state"] == "TASK_RUNNING"

    client.acknowledge(forwarded)
    ack = fake_agent.wait_message("acknowledge")[0]
    assert ack == {
        "framework_id": {"value": client.framework_id},
        "task_id": {"value": "remote"},
        "uuid": status["uuid"],
    }
    assert base64.b64decode(ack["uuid"]) == uuid_bytes(status)


def test_kill_shutdown_and_message_reach_the_agent(
    sim_master: MasterProcess, fake_agent: FakeAgent, schedulers: list[SchedulerClient]
) -> None:
    client = _manual(sim_master, schedulers)
    offer = next(o for o in client.offers() if o["agent_id"]["value"] == fake_agent.agent_id)
    client.launch(offer, [task_info("remote", fake_agent.agent_id, cpus=0.5)])
    fake_agent.wait_message("run_task")
    client.call(
        "KILL", kill={"task_id": {"value": "remote"}, "kill_policy": {"grace_period": {"nanoseconds": 5}}}
    )
    kill = fake_agent.wait_message("kill_task")[0]
    assert kill == {
        "framework_id": {"value": client.framework_id},
        "task_id": {"value": "remote"},
        "kill_policy": {"grace_period": {"nanoseconds": 5}},
    }
    client.call(
        "SHUTDOWN", shutdown={"executor_id": {"value": "remote"}, "agent_id": {"value": fake_agent.agent_id}}
    )
    assert fake_agent.wait_message("shutdown_executor")[0]["executor_id"] == {"value": "remote"}
    client.call(
        "MESSAGE",
        message={
            "agent_id": {"value": fake_agent.agent_id},
            "executor_id": {"value": "remote"},
            "data": "eA==",
        },
    )
    assert fake_agent.wait_message("framework_message")[0]["data"] == "eA=="


def test_executor_exit_and_messages_come_back_as_events(
    sim_master: MasterProcess, fake_agent: FakeAgent, schedulers: list[SchedulerClient]
) -> None:
    client = _manual(sim_master, schedulers)
    offer = next(o for o in client.offers() if o["agent_id"]["value"] == fake_agent.agent_id)
    executor = {
        "executor_id": {"value": "ex"},
        "command": {"value": "./run"},
        "resources": [{"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.25}}],
    }
    client.launch(offer, [task_info("t", fake_agent.agent_id, cpus=0.25, command=None, executor=executor)])
    fake_agent.wait_message("run_task")
    ids = {"agent_id": fake_agent.agent_id, "framework_id": client.framework_id, "executor_id": "ex"}
    assert (
        post_json(sim_master, "/internal/agent/executor_message", {**ids, "data": "aGVsbG8="}).status == 202
    )
    assert client.stream.wait_for("MESSAGE")["message"] == {
        "agent_id": {"value": fake_agent.agent_id},
        "executor_id": {"value": "ex"},
        "data": "aGVsbG8=",
    }
    assert post_json(sim_master, "/internal/agent/exited_executor", {**ids, "status": 256}).status == 202
    failure = client.stream.wait_for("FAILURE")["failure"]
    assert failure == {
        "agent_id": {"value": fake_agent.agent_id},
        "executor_id": {"value": "ex"},
        "status": 256,
    }
    agent = next(a for a in sim_master.state()["slaves"] if a["id"] == fake_agent.agent_id)
    assert agent["used_resources"]["cpus"] == 0.25  # the executor's share is back, the task's is not


def test_lost_pings_make_the_agent_unreachable(
    mesos_master_factory: Callable[..., MasterProcess], schedulers: list[SchedulerClient]
) -> None:
    master = mesos_master_factory(
        "--heartbeat_interval=1secs", "--agent_ping_timeout=200ms", "--max_agent_ping_timeouts=3"
    )
    agent = FakeAgent(master)
    try:
        client = SchedulerClient.subscribe(master)
        schedulers.append(client)
        offer = client.offers()[0]
        client.launch(offer, [task_info("t", agent.agent_id, cpus=0.5)])
        agent.wait_message("run_task")
        time.sleep(1.0)
        assert [a["id"] for a in master.state()["slaves"]] == [agent.agent_id]  # pings answered
        agent.ping_ok = False
        lost = client.update_for("t", "TASK_LOST", timeout=5)
        assert lost["reason"] == "REASON_AGENT_REMOVED"
        assert client.stream.wait_for("FAILURE")["failure"] == {"agent_id": {"value": agent.agent_id}}
        assert master.state()["slaves"] == []
        # The agent comes back: re-registration keeps its id.
        agent.ping_ok = True
        body = {
            "agent_info": {**agent.info, "id": {"value": agent.agent_id}},
            "agent_url": agent.url,
            "tasks": [],
        }
        reply = post_json(master, "/internal/agent/reregister", body)
        assert (reply.status, reply.json()["agent_id"]) == (200, {"value": agent.agent_id})
        assert [a["id"] for a in master.state()["slaves"]] == [agent.agent_id]
    finally:
        agent.close()


def test_internal_protocol_refuses_bad_bodies(sim_master: MasterProcess) -> None:
    bad_url = post_json(
        sim_master, "/internal/agent/register", {"agent_info": {"hostname": "h"}, "agent_url": "nonsense"}
    )
    assert bad_url.status == 400
    assert "agent_url" in bad_url.json()["error"]
    missing = post_json(sim_master, "/internal/agent/status_update", {"agent_id": "a", "framework_id": "f"})
    assert missing.status == 400
    assert missing.json()["error"].endswith("Missing required fields: status")
    gone_id = post_json(
        sim_master,
        "/internal/agent/reregister",
        {"agent_info": {"hostname": "h"}, "agent_url": "http://127.0.0.1:9"},
    )
    assert (gone_id.status, gone_id.json()) == (400, {"error": "agent_info.id is required to re-register"})
