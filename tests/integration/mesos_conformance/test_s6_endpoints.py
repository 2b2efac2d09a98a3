"""Reference section 6: the GET endpoints tools read and the v1 operator API."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from tests.integration.mesos_conformance.client import (
    EventStream,
    SchedulerClient,
    post_json,
    request,
    task_info,
)
from tests.mesos_fixtures import MasterProcess

pytestmark = pytest.mark.integration

Subscribe = Callable[..., SchedulerClient]

STATE_KEYS = {
    "version",
    "start_time",
    "elected_time",
    "id",
    "pid",
    "hostname",
    "activated_slaves",
    "leader",
    "leader_info",
    "flags",
    "slaves",
    "frameworks",
    "completed_frameworks",
    "orphan_tasks",
    "unregistered_frameworks",
}
SLAVE_KEYS = {
    "id",
    "hostname",
    "port",
    "attributes",
    "pid",
    "registered_time",
    "resources",
    "used_resources",
    "offered_resources",
    "reserved_resources",
    "unreserved_resources",
    "active",
    "version",
}
FRAMEWORK_KEYS = {
    "id",
    "name",
    "active",
    "connected",
    "recovered",
    "user",
    "failover_timeout",
    "checkpoint",
    "principal",
    "webui_url",
    "hostname",
    "role",
    "tasks",
    "completed_tasks",
    "offers",
    "executors",
    "used_resources",
    "offered_resources",
    "registered_time",
}
TASK_KEYS = {"id", "name", "framework_id", "executor_id", "slave_id", "state", "resources", "statuses"}


@pytest.fixture
def busy_master(subscribe: Subscribe, sim_master: MasterProcess) -> tuple[MasterProcess, SchedulerClient]:
    """sim_master with one framework running one task (labelled) and holding one offer."""
    client = subscribe(webui_url="http://ui", hostname="fw-host")
    offers = client.offers()
    task = task_info("web-1", offers[0]["agent_id"]["value"], ports=[(31000, 31000)])
    task["labels"] = {"labels": [{"key": "tier", "value": "web"}]}
    client.launch(offers[0], [task])
    client.update_for("web-1", "TASK_RUNNING")
    return sim_master, client


def test_state_has_what_tools_read(busy_master: tuple[MasterProcess, SchedulerClient]) -> None:
    master, client = busy_master
    state = master.state()
    assert set(state) >= STATE_KEYS
    assert state["version"] == "1.11.0"
    assert state["activated_slaves"] == 2
    assert state["leader"] == state["pid"]
    assert state["leader_info"]["port"] == master.port
    assert state["flags"]["port"] == str(master.port)
    slave = next(s for s in state["slaves"] if s["used_resources"]["cpus"] > 0)
    assert set(slave) >= SLAVE_KEYS
    assert slave["port"] == 5051
    assert slave["attributes"] == {"rack": "r1", "size": 3.0}
    assert slave["resources"] == {
        "cpus": 2.0,
        "gpus": 0.0,
        "mem": 1024.0,
        "disk": 4096.0,
        "ports": "[31000-31009]",
    }
    assert slave["used_resources"]["ports"] == "[31000-31000]"
    assert slave["unreserved_resources"] == slave["resources"]
    assert slave["reserved_resources"] == {}
    framework = state["frameworks"][0]
    assert set(framework) >= FRAMEWORK_KEYS
    assert framework["id"] == client.framework_id
    assert (framework["active"], framework["connected"], framework["recovered"]) == (True, True, False)
    assert (framework["role"], framework["checkpoint"], framework["failover_timeout"]) == ("*", False, 0.0)
    assert (framework["webui_url"], framework["hostname"]) == ("http://ui", "fw-host")
    task = framework["tasks"][0]
    assert set(task) >= TASK_KEYS
    assert task["slave_id"] == slave["id"]
    assert task["state"] == "TASK_RUNNING"
    assert task["executor_id"] == ""
    assert task["resources"]["ports"] == "[31000-31000]"
    assert [s["state"] for s in task["statuses"]] == ["TASK_STARTING", "TASK_RUNNING"]
    assert all(isinstance(s["timestamp"], float) for s in task["statuses"])
    assert task["labels"] == [{"key": "tier", "value": "web"}]


def test_state_aliases_answer_the_same(busy_master: tuple[MasterProcess, SchedulerClient]) -> None:
    master, _ = busy_master
    reference = master.get_json("/master/state")
    for path in ("/state", "/master/state.json", "/state.json"):
        other = master.get_json(path)
        assert other["id"] == reference["id"]
        assert [f["id"] for f in other["frameworks"]] == [f["id"] for f in reference["frameworks"]]


def test_slaves_and_frameworks_endpoints(busy_master: tuple[MasterProcess, SchedulerClient]) -> None:
    master, client = busy_master
    slaves = master.get_json("/master/slaves")
    assert set(slaves) == {"slaves", "recovered_slaves"}
    assert len(slaves["slaves"]) == 2
    frameworks = master.get_json("/master/frameworks")
    assert set(frameworks) == {"frameworks", "completed_frameworks", "unregistered_frameworks"}
    assert [f["id"] for f in frameworks["frameworks"]] == [client.framework_id]
    assert master.get_json(f"/master/frameworks?framework_id={client.framework_id}")["frameworks"]
    assert master.get_json("/master/frameworks?framework_id=other")["frameworks"] == []


def test_health_version_and_jsonp(mesos_master: MasterProcess) -> None:
    health = request(mesos_master, "GET", "/master/health")
    assert (health.status, health.body) == (200, b"")
    version = mesos_master.get_json("/version")
    assert set(version) == {"version", "build_date", "build_time", "build_user"}
    jsonp = request(mesos_master, "GET", "/master/slaves?jsonp=cb")
    assert jsonp.text.startswith("cb(")
    assert jsonp.text.endswith(");")


def test_post_master_teardown(busy_master: tuple[MasterProcess, SchedulerClient]) -> None:
    master, client = busy_master
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    assert request(master, "GET", "/master/teardown").status == 405
    missing = request(master, "POST", "/master/teardown", "", headers=form)
    assert (missing.status, missing.text) == (
        400,
        "Missing 'frameworkId' query parameter in the request body",
    )
    unknown = request(master, "POST", "/master/teardown", "frameworkId=nope", headers=form)
    assert (unknown.status, unknown.text) == (400, "No framework found with specified ID")
    ok = request(master, "POST", "/master/teardown", f"frameworkId={client.framework_id}", headers=form)
    assert ok.status == 200
    client.stream.wait_closed()
    state = master.state()
    assert state["frameworks"] == []
    assert state["completed_frameworks"][0]["completed_tasks"][0]["state"] == "TASK_KILLED"


# --------------------------------------------------------------------------------------------
# Operator API
# --------------------------------------------------------------------------------------------


def _api(master: MasterProcess, body: dict) -> dict:
    reply = post_json(master, "/api/v1", body)
    assert reply.status == 200, reply.text
    assert reply.headers["content-type"] == "application/json"
    return reply.json()


def test_operator_get_calls(busy_master: tuple[MasterProcess, SchedulerClient]) -> None:
    master, client = busy_master
    agents = _api(master, {"type": "GET_AGENTS"})
    assert agents["type"] == "GET_AGENTS"
    agent = agents["get_agents"]["agents"][0]
    assert set(agent) >= {"agent_info", "active", "total_resources", "allocated_resources", "registered_time"}
    assert agent["agent_info"]["port"] == 5051
    assert isinstance(agent["registered_time"]["nanoseconds"], int)
    frameworks = _api(master, {"type": "GET_FRAMEWORKS"})["get_frameworks"]
    entry = frameworks["frameworks"][0]
    assert entry["framework_info"]["id"] == {"value": client.framework_id}
    assert (entry["active"], entry["connected"], entry["recovered"]) == (True, True, False)
    tasks = _api(master, {"type": "GET_TASKS"})["get_tasks"]
    task = tasks["tasks"][0]
    assert task["task_id"] == {"value": "web-1"}
    assert task["state"] == "TASK_RUNNING"
    assert {r["name"] for r in task["resources"]} == {"cpus", "mem", "ports"}
    state = _api(master, {"type": "GET_STATE"})["get_state"]
    assert set(state) == {"get_tasks", "get_executors", "get_frameworks", "get_agents"}
    assert state["get_tasks"] == tasks
    assert _api(master, {"type": "GET_HEALTH"})["get_health"] == {"healthy": True}
    assert _api(master, {"type": "GET_VERSION"})["get_version"]["version_info"]["version"] == "1.11.0"


def test_operator_teardown(busy_master: tuple[MasterProcess, SchedulerClient]) -> None:
    master, client = busy_master
    unknown = post_json(master, "/api/v1", {"type": "TEARDOWN", "teardown": {"framework_id": {"value": "x"}}})
    assert (unknown.status, unknown.text) == (400, "No framework found with specified ID")
    reply = post_json(
        master, "/api/v1", {"type": "TEARDOWN", "teardown": {"framework_id": {"value": client.framework_id}}}
    )
    assert (reply.status, reply.body) == (200, b"")
    client.stream.wait_closed()
    assert master.state()["completed_frameworks"][0]["id"] == client.framework_id


def test_operator_api_checks(mesos_master: MasterProcess) -> None:
    assert request(mesos_master, "GET", "/api/v1").status == 405
    body = json.dumps({"type": "GET_STATE"})
    assert request(mesos_master, "POST", "/api/v1", body).status == 400
    assert (
        request(mesos_master, "POST", "/api/v1", body, headers={"Content-Type": "text/plain"}).status == 415
    )
    refused = request(
        mesos_master,
        "POST",
        "/api/v1",
        body,
        headers={"Content-Type": "application/json", "Accept": "text/html"},
    )
    assert refused.status == 406
    missing = post_json(mesos_master, "/api/v1", {"type": "TEARDOWN"})
    assert (missing.status, missing.text) == (
        400,
        "Failed to validate master::Call: Expecting 'teardown' to be present",
    )
    assert post_json(mesos_master, "/api/v1", {"type": "RESERVE_RESOURCES"}).status == 501


def test_operator_subscribe_streams_state_and_changes(
    busy_master: tuple[MasterProcess, SchedulerClient],
) -> None:
    master, client = busy_master
    stream = EventStream(master, {"type": "SUBSCRIBE"}, path="/api/v1")
    try:
        assert stream.status == 200
        subscribed = stream.wait_for("SUBSCRIBED")["subscribed"]
        assert subscribed["get_state"]["get_tasks"]["tasks"][0]["task_id"] == {"value": "web-1"}
        stream.wait_for("HEARTBEAT")
        offer = client.offers()[0]
        client.launch(offer, [task_info("web-2", offer["agent_id"]["value"], cpus=0.1)])
        added = stream.wait_for("TASK_ADDED")["task_added"]["task"]
        assert added["task_id"] == {"value": "web-2"}
        updated = stream.wait_for("TASK_UPDATED")["task_updated"]
        assert updated["framework_id"] == {"value": client.framework_id}
        assert updated["state"] in ("TASK_STARTING", "TASK_RUNNING")
    finally:
        stream.close()
