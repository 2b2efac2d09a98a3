"""Offer matching: resources, ports, constraints, what a task takes, and the reason lines."""

from __future__ import annotations

import pytest

from framework.constraints import Operator, parse_constraint, parse_constraints
from framework.mesos_resources import Resources
from framework.offer_matching import OfferView, ResourceNeeds, allocate, shortfalls, unmet
from tests.unit.test_framework_events import offer

WORKER = ResourceNeeds(cpus=1.0, mem_mb=2048.0, ports=(29998, 30000))
MASTER = ResourceNeeds(cpus=1.0, mem_mb=1024.0, ports=(19998, 19999, 19200))


def view(**kwargs: object) -> OfferView:
    return OfferView.from_json(offer("host-3", agent_id="a3", **kwargs))  # type: ignore[arg-type]


def test_an_offer_with_everything_fits() -> None:
    assert unmet(view(), WORKER, ()) == []


def test_missing_ports_are_named_as_ranges() -> None:
    agent = view(ports=((31000, 32000),))
    assert shortfalls(agent.resources, ResourceNeeds(1.0, 1.0, (29998, 29999, 30000))) == [
        "missing ports 29998-30000"
    ]
    assert shortfalls(agent.resources, MASTER) == ["missing ports 19200,19998-19999"]


def test_partially_offered_ports() -> None:
    agent = view(ports=((29998, 29998), (31000, 32000)))
    assert shortfalls(agent.resources, WORKER) == ["missing ports 30000"]


def test_short_cpus_and_mem() -> None:
    agent = view(cpus=0.5, mem=1024)
    assert shortfalls(agent.resources, WORKER) == ["cpus 0.5 < 1", "mem 1024MB < 2048MB"]


def test_no_ports_resource_at_all() -> None:
    assert shortfalls(view(ports=()).resources, WORKER) == ["missing ports 29998,30000"]


def test_reason_line_format() -> None:
    agent = view(ports=((31000, 32000),))
    assert agent.describe() == "agent a3 (host-3)"


@pytest.mark.parametrize(
    ("text", "field", "operator", "value"),
    [
        ("rack:r1", "rack", Operator.EQ, "r1"),
        ("rack:EQ:r1", "rack", Operator.EQ, "r1"),
        ("hostname:UNLIKE:x", "hostname", Operator.UNLIKE, "x"),
        ("hostname:like:worker-[0-9]+", "hostname", Operator.LIKE, "worker-[0-9]+"),
        ("url:http://x", "url", Operator.EQ, "http://x"),
        ("rack:LIKE", "rack", Operator.EQ, "LIKE"),
    ],
)
def test_constraint_syntax(text: str, field: str, operator: Operator, value: str) -> None:
    constraint = parse_constraint(text)
    assert (constraint.field, constraint.operator, constraint.value) == (field, operator, value)


def test_constraints_on_attributes_and_hostname() -> None:
    constraints = parse_constraints("rack:r1;hostname:UNLIKE:host-[0-2];zone:LIKE:us-.*")
    good = OfferView.from_json(offer("host-3", attributes={"rack": "r1", "zone": "us-east"}))
    assert unmet(good, WORKER, constraints) == []
    wrong_rack = OfferView.from_json(offer("host-3", attributes={"rack": "r2", "zone": "us-east"}))
    assert unmet(wrong_rack, WORKER, constraints) == ["constraint rack:EQ:r1 not met (rack is 'r2')"]
    excluded = OfferView.from_json(offer("host-1", attributes={"rack": "r1", "zone": "us-east"}))
    assert unmet(excluded, WORKER, constraints) == [
        "constraint hostname:UNLIKE:host-[0-2] not met (hostname is 'host-1')"
    ]
    no_zone = OfferView.from_json(offer("host-3", attributes={"rack": "r1"}))
    assert unmet(no_zone, WORKER, constraints) == ["constraint zone:LIKE:us-.* not met (zone is absent)"]


def test_like_matches_the_whole_value() -> None:
    (constraint,) = parse_constraints("rack:LIKE:r1")
    assert constraint.violation("h", {"rack": "r1"}) is None
    assert constraint.violation("h", {"rack": "r10"}) is not None


def test_unlike_is_satisfied_by_an_absent_attribute() -> None:
    (constraint,) = parse_constraints("gpu:UNLIKE:.*")
    assert constraint.violation("h", {}) is None
    assert constraint.violation("h", {"gpu": "1"}) is not None


def test_scalar_attributes_compare_as_mesos_prints_them() -> None:
    agent = OfferView.from_json(offer("h", attributes={"slots": 2, "weight": 2.5}))
    assert unmet(agent, WORKER, parse_constraints("slots:2;weight:2.5")) == []


def test_constraints_and_resources_are_all_reported() -> None:
    agent = OfferView.from_json(offer("host-9", cpus=0.25, attributes={"rack": "r2"}))
    assert unmet(agent, WORKER, parse_constraints("rack:r1")) == [
        "constraint rack:EQ:r1 not met (rack is 'r2')",
        "cpus 0.25 < 1",
    ]


def test_allocation_takes_exactly_the_needs() -> None:
    agent = view()
    taken = allocate(agent.resources, WORKER)
    assert taken == Resources.of(cpus=1.0, mem=2048.0, ports=[(29998, 29998), (30000, 30000)])
    left = agent.taking(taken).resources
    assert left.scalar("cpus") == 3.0
    assert left.ranges("ports") == ((19000, 19999), (29000, 29997), (29999, 29999), (30001, 32000))


def test_allocation_spends_the_role_reservation_first() -> None:
    reserved = OfferView.from_json(offer("h", cpus=0.5, mem=1024, role="alluxio", ports=((29998, 29998),)))
    shared = OfferView.from_json(offer("h", cpus=4, mem=8192, ports=((30000, 30000),)))
    available = reserved.resources + shared.resources
    taken = allocate(available, WORKER)
    by_role = {(r.name, r.role): r for r in taken}
    assert by_role[("cpus", "alluxio")].scalar == 0.5
    assert by_role[("cpus", "*")].scalar == 0.5
    assert by_role[("mem", "alluxio")].scalar == 1024.0
    assert by_role[("mem", "*")].scalar == 1024.0
    assert by_role[("ports", "alluxio")].ranges == ((29998, 29998),)
    assert by_role[("ports", "*")].ranges == ((30000, 30000),)
    assert available.contains(taken)


def test_allocation_refuses_an_offer_that_does_not_fit() -> None:
    with pytest.raises(ValueError, match="lacks ports 29998"):
        allocate(view(ports=((30000, 30000),)).resources, WORKER)
