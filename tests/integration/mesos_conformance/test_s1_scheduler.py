"""Reference section 1: the scheduler API (subscription, offers, ACCEPT/DECLINE, filters, failover)."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from tests.integration.mesos_conformance.client import (
    EventStream,
    SchedulerClient,
    framework_info,
    post_json,
    ranges,
    scalar,
    task_info,
)
from tests.mesos_fixtures import MasterProcess

pytestmark = pytest.mark.integration

Subscribe = Callable[..., SchedulerClient]


def _agent_state(master: MasterProcess, agent_id: str) -> dict:
    return next(a for a in master.state()["slaves"] if a["id"] == agent_id)


# --------------------------------------------------------------------------------------------
# SUBSCRIBE and OFFERS
# --------------------------------------------------------------------------------------------


def test_offers_cover_every_agent_in_one_event(subscribe: Subscribe) -> None:
    client = subscribe()
    offers = client.offers()
    assert len(offers) == 2
    assert len({o["agent_id"]["value"] for o in offers}) == 2
    offer = offers[0]
    assert set(offer) == {"id", "framework_id", "agent_id", "hostname", "url", "resources", "attributes"}
    assert offer["framework_id"] == {"value": client.framework_id}
    assert offer["hostname"].startswith("sim-agent-")
    assert offer["url"] == {
        "scheme": "http",
        "address": {"hostname": offer["hostname"], "ip": "127.0.0.1", "port": 5051},
        "path": "/slave(1)",
    }
    assert offer["resources"] == [
        {"name": "cpus", "type": "SCALAR", "scalar": {"value": 2.0}, "role": "*"},
        {"name": "mem", "type": "SCALAR", "scalar": {"value": 1024.0}, "role": "*"},
        {"name": "disk", "type": "SCALAR", "scalar": {"value": 4096.0}, "role": "*"},
        {
            "name": "ports",
            "type": "RANGES",
            "ranges": {"range": [{"begin": 31000, "end": 31009}]},
            "role": "*",
        },
    ]
    assert offer["attributes"] == [
        {"name": "rack", "type": "TEXT", "text": {"value": "r1"}},
        {"name": "size", "type": "SCALAR", "scalar": {"value": 3.0}},
    ]


def test_nothing_is_offered_twice(subscribe: Subscribe) -> None:
    first = subscribe()
    second = subscribe()
    offered = first.stream.collect(1.5, "OFFERS") + second.stream.collect(1.5, "OFFERS")
    agent_ids = [o["agent_id"]["value"] for event in offered for o in event["offers"]["offers"]]
    assert sorted(agent_ids) == sorted(set(agent_ids))
    assert len(agent_ids) == 2


def test_multi_role_offers_carry_allocation_info(subscribe: Subscribe) -> None:
    client = subscribe(roles=["web"], capabilities=[{"type": "MULTI_ROLE"}])
    offer = client.offers()[0]
    assert offer["allocation_info"] == {"role": "web"}
    assert all(r["allocation_info"] == {"role": "web"} for r in offer["resources"])


def test_reservation_refinement_changes_the_resource_format(subscribe: Subscribe) -> None:
    client = subscribe(capabilities=[{"type": "RESERVATION_REFINEMENT"}])
    offer = client.offers()[0]
    assert all("role" not in r and "reservations" not in r for r in offer["resources"])


def test_invalid_framework_info_gets_an_error_event(sim_master: MasterProcess) -> None:
    cases = [
        (framework_info(role="-bad"), "'FrameworkInfo.role' is not a valid role"),
        (
            framework_info(roles=["a"]),
            "'FrameworkInfo.roles' must not be set when the framework is not MULTI_ROLE",
        ),
        (
            framework_info(role="a", capabilities=[{"type": "MULTI_ROLE"}]),
            "'FrameworkInfo.role' must not be set when the framework is MULTI_ROLE capable",
        ),
    ]
    for info, message in cases:
        stream = EventStream(sim_master, {"type": "SUBSCRIBE", "subscribe": {"framework_info": info}})
        try:
            assert stream.status == 200
            error = stream.wait_for("ERROR")
            assert error["error"]["message"].startswith(message)
            stream.wait_closed()
        finally:
            stream.close()


# --------------------------------------------------------------------------------------------
# ACCEPT / LAUNCH and resource accounting
# --------------------------------------------------------------------------------------------


def test_launch_runs_the_task_and_accounts_its_resources(
    subscribe: Subscribe, sim_master: MasterProcess
) -> None:
    client = subscribe()
    offer = client.offers()[0]
    agent_id = offer["agent_id"]["value"]
    reply = client.launch(
        offer,
        [task_info("t1", agent_id, cpus=1.5, mem=256, ports=[(31002, 31003)])],
        filters={"refuse_seconds": 0},
    )
    assert (reply.status, reply.body) == (202, b"")
    running = client.update_for("t1", "TASK_RUNNING")
    assert running["agent_id"] == {"value": agent_id}
    agent = _agent_state(sim_master, agent_id)
    assert agent["used_resources"]["cpus"] == 1.5
    assert agent["used_resources"]["ports"] == "[31002-31003]"
    # The rest of the agent comes back with the used ranges subtracted.
    rest = client.stream.wait_for(
        "OFFERS", predicate=lambda e: any(o["agent_id"]["value"] == agent_id for o in e["offers"]["offers"])
    )
    again = next(o for o in rest["offers"]["offers"] if o["agent_id"]["value"] == agent_id)
    assert scalar(again, "cpus") == 0.5
    assert scalar(again, "mem") == 768.0
    assert ranges(again, "ports") == [(31000, 31001), (31004, 31009)]
    framework = sim_master.state()["frameworks"][0]
    assert framework["used_resources"]["cpus"] == 1.5
    assert framework["tasks"][0]["state"] == "TASK_RUNNING"


def test_resources_return_when_a_task_ends(subscribe: Subscribe, sim_master: MasterProcess) -> None:
    client = subscribe()
    offer = client.offers()[0]
    agent_id = offer["agent_id"]["value"]
    client.launch(
        offer, [task_info("quick", agent_id, cpus=2, command="exit 0")], filters={"refuse_seconds": 0}
    )
    finished = client.update_for("quick", "TASK_FINISHED")
    assert finished["message"] == "Command exited with status 0"
    assert _agent_state(sim_master, agent_id)["used_resources"]["cpus"] == 0.0
    client.acknowledge(finished)
    full = client.stream.wait_for(
        "OFFERS",
        predicate=lambda e: any(
            o["agent_id"]["value"] == agent_id and scalar(o, "cpus") == 2.0 for o in e["offers"]["offers"]
        ),
    )
    assert full


def test_an_offer_can_be_used_once(subscribe: Subscribe) -> None:
    client = subscribe()
    offer = client.offers()[0]
    agent_id = offer["agent_id"]["value"]
    client.launch(offer, [task_info("a", agent_id)])
    client.launch(offer, [task_info("b", agent_id)])
    lost = client.update_for("b", "TASK_LOST")
    assert lost["reason"] == "REASON_INVALID_OFFERS"
    assert lost["source"] == "SOURCE_MASTER"
    assert (
        lost["message"]
        == f"Task launched with invalid offers: Offer {offer['id']['value']} is no longer valid"
    )
    assert "uuid" not in lost


def test_offers_of_one_accept_must_share_an_agent(subscribe: Subscribe) -> None:
    client = subscribe()
    first, second = client.offers()
    reply = client.call(
        "ACCEPT",
        accept={
            "offer_ids": [first["id"], second["id"]],
            "operations": [
                {"type": "LAUNCH", "launch": {"task_infos": [task_info("x", first["agent_id"]["value"])]}}
            ],
        },
    )
    assert reply.status == 202
    lost = client.update_for("x", "TASK_LOST")
    assert lost["message"].startswith(
        "Task launched with invalid offers: Aggregated offers must belong to one"
    )


def test_partition_aware_frameworks_get_dropped_instead_of_lost(subscribe: Subscribe) -> None:
    client = subscribe(capabilities=[{"type": "PARTITION_AWARE"}])
    offer = client.offers()[0]
    client.launch({"id": {"value": "no-such-offer"}}, [task_info("x", offer["agent_id"]["value"])])
    assert client.update_for("x", "TASK_DROPPED")["reason"] == "REASON_INVALID_OFFERS"


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (
            lambda t: t.update(executor={"executor_id": {"value": "e"}, "command": {"value": "x"}}),
            "Task should have at least one (but not both) of CommandInfo or ExecutorInfo present",
        ),
        (
            lambda t: t.pop("command"),
            "Task should have at least one (but not both) of CommandInfo or ExecutorInfo",
        ),
        (lambda t: t.update(resources=[]), "Task uses no resources"),
        (lambda t: t.update(task_id={"value": "a/b"}), "'a/b' contains invalid characters"),
        (lambda t: t.update(task_id={"value": ".."}), "'..' is disallowed"),
        (
            lambda t: t.update(agent_id={"value": "elsewhere"}),
            "Task uses invalid agent elsewhere while agent",
        ),
        (
            lambda t: t.update(kill_policy={"grace_period": {"nanoseconds": -1}}),
            "Task's 'kill_policy.grace_period' must be non-negative",
        ),
        (
            lambda t: t["resources"].append({"name": "cpus", "type": "SCALAR", "scalar": {"value": 100}}),
            "Total resources cpus(allocated: *):100.5; mem(allocated: *):64 required by task and its "
            "executor is more than available cpus(allocated: *):2; mem(allocated: *):1024; "
            "disk(allocated: *):4096; ports(allocated: *):[31000-31009]",
        ),
    ],
)
def test_invalid_launches_get_task_error(
    subscribe: Subscribe, mutate: Callable[[dict], object], message: str
) -> None:
    client = subscribe()
    offer = client.offers()[0]
    task = task_info("bad", offer["agent_id"]["value"])
    mutate(task)
    client.launch(offer, [task])
    status = client.update(predicate=lambda e: e["update"]["status"]["state"] == "TASK_ERROR")
    assert status["reason"] == "REASON_TASK_INVALID"
    assert status["source"] == "SOURCE_MASTER"
    assert status["message"].startswith(message)
    assert "uuid" not in status


def test_duplicate_task_ids_are_refused(subscribe: Subscribe) -> None:
    client = subscribe()
    offer = client.offers()[0]
    agent_id = offer["agent_id"]["value"]
    client.launch(offer, [task_info("same", agent_id, cpus=0.5), task_info("same", agent_id, cpus=0.5)])
    error = client.update_for("same", "TASK_ERROR")
    assert error["message"] == "Task has duplicate ID: same"


def test_executor_tasks_and_executor_ids_in_offers(subscribe: Subscribe, sim_master: MasterProcess) -> None:
    client = subscribe()
    offer = client.offers()[0]
    agent_id = offer["agent_id"]["value"]
    executor = {
        "executor_id": {"value": "exec-1"},
        "command": {"value": "./executor"},
        "resources": [{"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.1}}],
    }
    task = task_info("with-executor", agent_id, command=None, executor=executor)
    client.launch(offer, [task], filters={"refuse_seconds": 0})
    client.update_for("with-executor", "TASK_RUNNING")
    assert _agent_state(sim_master, agent_id)["used_resources"]["cpus"] == 0.6
    again = client.stream.wait_for(
        "OFFERS", predicate=lambda e: any(o["agent_id"]["value"] == agent_id for o in e["offers"]["offers"])
    )
    offer = next(o for o in again["offers"]["offers"] if o["agent_id"]["value"] == agent_id)
    assert offer["executor_ids"] == [{"value": "exec-1"}]
    executors = sim_master.state()["frameworks"][0]["executors"]
    assert executors[0]["executor_id"] == "exec-1"
    assert executors[0]["framework_id"] == client.framework_id  # filled in by the master


def test_launch_group(subscribe: Subscribe) -> None:
    client = subscribe()
    offer = client.offers()[0]
    agent_id = offer["agent_id"]["value"]
    executor = {
        "type": "DEFAULT",
        "executor_id": {"value": "group-exec"},
        "resources": [
            {"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.1}},
            {"name": "mem", "type": "SCALAR", "scalar": {"value": 32}},
            {"name": "disk", "type": "SCALAR", "scalar": {"value": 10}},
        ],
    }
    tasks = [task_info(f"g{i}", agent_id) for i in range(2)]
    reply = client.call(
        "ACCEPT",
        accept={
            "offer_ids": [offer["id"]],
            "operations": [
                {
                    "type": "LAUNCH_GROUP",
                    "launch_group": {"executor": executor, "task_group": {"tasks": tasks}},
                }
            ],
        },
    )
    assert reply.status == 202
    client.update_for("g0", "TASK_RUNNING")
    client.update_for("g1", "TASK_RUNNING")


# --------------------------------------------------------------------------------------------
# DECLINE, filters, SUPPRESS, REVIVE
# --------------------------------------------------------------------------------------------


def _offered_agents(events: list[dict]) -> list[str]:
    return [o["agent_id"]["value"] for e in events for o in e["offers"]["offers"]]


def test_decline_filter_hides_the_agent_for_refuse_seconds(subscribe: Subscribe) -> None:
    client = subscribe()
    offers = client.offers()
    declined = offers[0]
    reply = client.call(
        "DECLINE", decline={"offer_ids": [declined["id"]], "filters": {"refuse_seconds": 2.0}}
    )
    assert reply.status == 202
    started = time.monotonic()
    event = client.stream.wait_for(
        "OFFERS", timeout=6, predicate=lambda e: declined["agent_id"]["value"] in _offered_agents([e])
    )
    elapsed = time.monotonic() - started
    assert 1.5 <= elapsed <= 6.0, elapsed  # lower bound: filtered; upper: allows a loaded machine
    assert event


def test_decline_without_filters_refuses_for_five_seconds(subscribe: Subscribe) -> None:
    client = subscribe()
    declined = client.offers()[0]
    client.call("DECLINE", decline={"offer_ids": [declined["id"]]})
    started = time.monotonic()
    client.stream.wait_for(
        "OFFERS", timeout=10, predicate=lambda e: declined["agent_id"]["value"] in _offered_agents([e])
    )
    elapsed = time.monotonic() - started
    assert 4.5 <= elapsed <= 9.0, elapsed


def test_unused_resources_of_an_accept_count_as_declined(subscribe: Subscribe) -> None:
    client = subscribe()
    offer = client.offers()[0]
    agent_id = offer["agent_id"]["value"]
    client.launch(offer, [task_info("part", agent_id, cpus=0.5)], filters={"refuse_seconds": 3})
    client.update_for("part", "TASK_RUNNING")
    events = client.stream.collect(2.0, "OFFERS")
    assert agent_id not in _offered_agents(events)
    client.stream.wait_for("OFFERS", timeout=5, predicate=lambda e: agent_id in _offered_agents([e]))


def test_revive_clears_filters(subscribe: Subscribe) -> None:
    client = subscribe()
    offers = client.offers()
    client.call(
        "DECLINE", decline={"offer_ids": [o["id"] for o in offers], "filters": {"refuse_seconds": 600}}
    )
    assert client.stream.collect(1.5, "OFFERS") == []
    assert client.call("REVIVE").status == 202
    revived = client.stream.wait_for("OFFERS", timeout=3)
    assert len(revived["offers"]["offers"]) == 2


def test_suppress_stops_offers_until_revive(subscribe: Subscribe) -> None:
    client = subscribe()
    offers = client.offers()
    assert client.call("SUPPRESS").status == 202
    client.call("DECLINE", decline={"offer_ids": [o["id"] for o in offers], "filters": {"refuse_seconds": 0}})
    assert client.stream.collect(2.0, "OFFERS") == []
    client.call("REVIVE")
    assert len(client.stream.wait_for("OFFERS", timeout=3)["offers"]["offers"]) == 2


def test_subscribe_with_suppressed_roles(subscribe: Subscribe, sim_master: MasterProcess) -> None:
    stream = EventStream(
        sim_master,
        {"type": "SUBSCRIBE", "subscribe": {"framework_info": framework_info(), "suppressed_roles": ["*"]}},
    )
    try:
        stream.wait_for("SUBSCRIBED")
        assert stream.collect(1.5, "OFFERS") == []
    finally:
        stream.close()


# --------------------------------------------------------------------------------------------
# Failover, teardown, agent loss
# --------------------------------------------------------------------------------------------


def test_second_subscription_fails_over_the_first(subscribe: Subscribe, sim_master: MasterProcess) -> None:
    first = subscribe(failover_timeout=60.0)
    offer = first.offers()[0]
    first.launch(offer, [task_info("survivor", offer["agent_id"]["value"])])
    first.update_for("survivor", "TASK_RUNNING")
    info = framework_info(failover_timeout=60.0, id={"value": first.framework_id})
    second = SchedulerClient.subscribe(sim_master, **info)
    try:
        assert second.framework_id == first.framework_id
        assert second.stream.stream_id != first.stream.stream_id
        error = first.stream.wait_for("ERROR")
        assert error == {"type": "ERROR", "error": {"message": "Framework failed over"}}
        first.stream.wait_closed()
        # The old stream id is void; the task survived.
        assert first.call("REVIVE").status == 400
        assert second.call("REVIVE").status == 202
        tasks = sim_master.state()["frameworks"][0]["tasks"]
        assert [t["id"] for t in tasks] == ["survivor"]
    finally:
        second.close()


def test_tasks_survive_a_reconnect_within_failover_timeout(
    subscribe: Subscribe, sim_master: MasterProcess
) -> None:
    first = subscribe(failover_timeout=60.0)
    offer = first.offers()[0]
    first.launch(offer, [task_info("kept", offer["agent_id"]["value"])])
    first.update_for("kept", "TASK_RUNNING")
    first.close()
    time.sleep(0.5)
    framework = sim_master.state()["frameworks"][0]
    assert (framework["active"], framework["connected"]) == (False, False)
    second = SchedulerClient.subscribe(sim_master, failover_timeout=60.0, id={"value": first.framework_id})
    try:
        second.call("RECONCILE", reconcile={"tasks": []})
        status = second.update(predicate=lambda e: e["update"]["status"]["task_id"]["value"] == "kept")
        assert status["state"] == "TASK_RUNNING"
        assert sim_master.state()["frameworks"][0]["connected"] is True
    finally:
        second.close()


def test_zero_failover_timeout_removes_the_framework_at_once(
    subscribe: Subscribe, sim_master: MasterProcess
) -> None:
    client = subscribe()
    offer = client.offers()[0]
    client.launch(offer, [task_info("doomed", offer["agent_id"]["value"])])
    client.update_for("doomed", "TASK_RUNNING")
    client.close()
    deadline = time.monotonic() + 5
    while sim_master.state()["frameworks"] and time.monotonic() < deadline:
        time.sleep(0.1)
    state = sim_master.state()
    assert state["frameworks"] == []
    completed = state["completed_frameworks"][0]
    assert completed["id"] == client.framework_id
    assert completed["completed_tasks"][0]["state"] == "TASK_KILLED"
    assert all(a["used_resources"]["cpus"] == 0.0 for a in state["slaves"])
    again = EventStream(
        sim_master,
        {
            "type": "SUBSCRIBE",
            "framework_id": {"value": client.framework_id},
            "subscribe": {"framework_info": framework_info(id={"value": client.framework_id})},
        },
    )
    try:
        assert again.wait_for("ERROR")["error"]["message"] == "Framework has been removed"
        again.wait_closed()
    finally:
        again.close()


def test_teardown(subscribe: Subscribe, sim_master: MasterProcess) -> None:
    client = subscribe(failover_timeout=60.0)
    offer = client.offers()[0]
    client.launch(offer, [task_info("victim", offer["agent_id"]["value"])])
    client.update_for("victim", "TASK_RUNNING")
    assert client.call("TEARDOWN").status == 202
    client.stream.wait_closed()
    state = sim_master.state()
    assert state["frameworks"] == []
    assert state["completed_frameworks"][0]["completed_tasks"][0]["state"] == "TASK_KILLED"


def test_agent_loss_rescinds_offers_and_loses_tasks(subscribe: Subscribe, sim_master: MasterProcess) -> None:
    client = subscribe()
    first, second = client.offers()
    agent_id = first["agent_id"]["value"]
    client.launch(first, [task_info("on-lost-agent", agent_id)], filters={"refuse_seconds": 0})
    client.update_for("on-lost-agent", "TASK_RUNNING")
    reply = post_json(
        sim_master, f"/internal/simulation/agents/{second['agent_id']['value']}/unreachable", {}
    )
    assert reply.status == 202
    rescind = client.stream.wait_for("RESCIND")
    assert rescind["rescind"] == {"offer_id": second["id"]}
    failure = client.stream.wait_for("FAILURE")
    assert failure["failure"] == {"agent_id": second["agent_id"]}
    post_json(sim_master, f"/internal/simulation/agents/{agent_id}/unreachable", {})
    lost = client.update_for("on-lost-agent", "TASK_LOST")
    assert lost["reason"] == "REASON_AGENT_REMOVED"
    assert lost["source"] == "SOURCE_MASTER"
    assert lost["message"] == "health check timed out"
    assert sim_master.state()["slaves"] == []


# --------------------------------------------------------------------------------------------
# KILL, MESSAGE, UPDATE_FRAMEWORK
# --------------------------------------------------------------------------------------------


def test_kill(subscribe: Subscribe) -> None:
    client = subscribe()
    offer = client.offers()[0]
    client.launch(offer, [task_info("k", offer["agent_id"]["value"])])
    client.update_for("k", "TASK_RUNNING")
    assert client.call("KILL", kill={"task_id": {"value": "k"}}).status == 202
    killed = client.update_for("k", "TASK_KILLED")
    assert killed["source"] == "SOURCE_EXECUTOR"
    assert "uuid" in killed


def test_kill_of_an_unknown_task_answers_with_reconciliation(subscribe: Subscribe) -> None:
    client = subscribe()
    client.call("KILL", kill={"task_id": {"value": "ghost"}})
    status = client.update_for("ghost", "TASK_LOST")
    assert status["reason"] == "REASON_RECONCILIATION"
    assert status["message"] == "Reconciliation: Task is unknown"


def test_framework_message_reaches_the_executor(subscribe: Subscribe) -> None:
    client = subscribe()
    offer = client.offers()[0]
    agent_id = offer["agent_id"]["value"]
    client.launch(offer, [task_info("m", agent_id)])
    running = client.update_for("m", "TASK_RUNNING")
    reply = client.call(
        "MESSAGE",
        message={"agent_id": {"value": agent_id}, "executor_id": running["executor_id"], "data": "aGk="},
    )
    assert reply.status == 202
    # The simulated executor echoes messages back.
    echoed = client.stream.wait_for("MESSAGE")["message"]
    assert echoed == {"agent_id": {"value": agent_id}, "executor_id": running["executor_id"], "data": "aGk="}


def test_update_framework(subscribe: Subscribe, sim_master: MasterProcess) -> None:
    client = subscribe()
    info = framework_info(id={"value": client.framework_id}, name="renamed")
    reply = client.call("UPDATE_FRAMEWORK", update_framework={"framework_info": info})
    assert (reply.status, reply.body) == (200, b"")
    assert sim_master.state()["frameworks"][0]["name"] == "renamed"
    bad = client.call(
        "UPDATE_FRAMEWORK", update_framework={"framework_info": {**info, "user": "someone-else"}}
    )
    assert bad.status == 400
    assert bad.text == (
        "FrameworkInfo update is not valid: Updating 'FrameworkInfo.user' is unsupported; "
        "attempted to update from 'root' to 'someone-else'"
    )
    mismatch = client.call(
        "UPDATE_FRAMEWORK", update_framework={"framework_info": framework_info(id={"value": "x"})}
    )
    assert mismatch.text == (
        "Failed to validate scheduler::Call: 'framework_id' differs from 'update_framework.framework_info.id'"
    )


def test_unknown_call_type_is_not_implemented(subscribe: Subscribe) -> None:
    client = subscribe()
    assert client.call("UNKNOWN").status == 501
    assert client.call("REQUEST", request={"requests": []}).status == 202


def test_unknown_framework_id_is_accepted_as_after_a_master_failover(sim_master: MasterProcess) -> None:
    # A scheduler that was registered with a previous master instance keeps its id.
    client = SchedulerClient.subscribe(sim_master, id={"value": "from-an-earlier-master-0000"})
    try:
        assert client.framework_id == "from-an-earlier-master-0000"
        assert client.offers()
        assert sim_master.state()["frameworks"][0]["id"] == "from-an-earlier-master-0000"
    finally:
        client.close()
