"""framework.mesos_resources: the --resources/--attributes grammar, JSON shapes and arithmetic."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from framework.mesos_resources import (
    AttributeParseError,
    Resource,
    ResourceError,
    Resources,
    agent_resources,
    attributes_from_json,
    attributes_summary,
    attributes_to_json,
    format_attributes,
    format_ranges,
    parse_attributes,
    parse_ranges,
    ranges_contain,
    ranges_subtract,
    ranges_union,
    validate_role,
)

GB = 1024**3

# --------------------------------------------------------------------------------------------
# Grammar
# --------------------------------------------------------------------------------------------


def test_parses_scalars_ranges_and_sets_with_roles() -> None:
    resources = Resources.parse("cpus:4;mem(alluxio):1024.5;ports:[21000-24000,30000-34000];disks:{a,b}")
    assert resources.get("cpus").scalar == 4.0
    assert resources.get("mem", role="alluxio").scalar == 1024.5
    assert resources.get("mem") is None  # reserved, not unreserved
    assert resources.ranges("ports") == ((21000, 24000), (30000, 34000))
    assert resources.set_items("disks") == ("a", "b")


def test_spaces_and_empty_tokens_are_tolerated_like_mesos() -> None:
    resources = Resources.parse(" cpus : 2 ;;ports:[ 1-2 , 5-6 ];")
    assert resources.scalar("cpus") == 2.0
    assert resources.ranges("ports") == ((1, 2), (5, 6))


def test_overlapping_and_adjacent_ranges_are_coalesced() -> None:
    assert Resources.parse("ports:[10-20,15-30,31-40,50-50]").ranges("ports") == ((10, 40), (50, 50))


def test_duplicate_names_add_up() -> None:
    assert Resources.parse("cpus:1;cpus:2.5").scalar("cpus") == 3.5


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("cpus", "missing or extra ':'"),
        ("cpus:1:2", "missing or extra ':'"),
        ("cpus(role:1", "mismatched parentheses"),
        ("cpus:-1", "value <= 0"),
        ("cpus:abc", "Bad type for resource cpus"),
        ("ports:[5-1]", "begin > end"),
        ("ports:[5]", "begin-end"),
        ("ports:[a-b]", "begin-end"),
        ("disks:{a,a}", "duplicated elements"),
        ("cpus:nan", "Bad type"),
        ("cpus:1;cpus:[1-2]", "different types"),
        ("cpus(-bad):1", "cannot start with '-'"),
        (":1", "missing or extra"),
        ("(r):1", "empty resource name"),
    ],
)
def test_bad_grammar_is_refused_with_a_clear_reason(text: str, fragment: str) -> None:
    with pytest.raises(ResourceError, match=fragment.replace("(", r"\(").replace("[", r"\[")):
        Resources.parse(text)


def test_empty_ranges_and_zero_scalars_disappear() -> None:
    assert Resources.parse("cpus:0;ports:[]").is_empty()


def test_scalars_keep_three_decimals_with_mesos_rounding() -> None:
    assert Resources.parse("cpus:0.0005").scalar("cpus") == 0.001  # llround: half away from zero
    assert Resources.parse("cpus:0.1;cpus:0.2").scalar("cpus") == 0.3
    with pytest.raises(ResourceError, match="value <= 0"):
        Resources.parse("cpus:0.0004")  # non-zero but rounds to zero


# --------------------------------------------------------------------------------------------
# JSON
# --------------------------------------------------------------------------------------------


def test_json_array_is_accepted_and_defaults_role_to_star() -> None:
    document = [
        {"name": "cpus", "type": "SCALAR", "scalar": {"value": 2}},
        {"name": "ports", "type": "RANGES", "ranges": {"range": [{"begin": 1, "end": 3}]}, "role": "a"},
        {"name": "gpus_ids", "type": "SET", "set": {"item": ["x"]}},
    ]
    resources = Resources.parse(json.dumps(document))
    assert resources.get("cpus").role == "*"
    assert resources.get("ports", role="a").ranges == ((1, 3),)
    assert resources.to_json() == [
        {"name": "cpus", "type": "SCALAR", "scalar": {"value": 2.0}, "role": "*"},
        {"name": "ports", "type": "RANGES", "ranges": {"range": [{"begin": 1, "end": 3}]}, "role": "a"},
        {"name": "gpus_ids", "type": "SET", "set": {"item": ["x"]}, "role": "*"},
    ]


def test_post_refinement_format_in_and_out() -> None:
    document = [
        {
            "name": "mem",
            "type": "SCALAR",
            "scalar": {"value": 64},
            "reservations": [{"type": "STATIC", "role": "web"}],
        },
        {"name": "cpus", "type": "SCALAR", "scalar": {"value": 1}},
    ]
    resources = Resources.from_json(document)
    assert resources.get("mem", role="web") is not None
    assert resources.to_json(reservation_refinement=True) == [
        {
            "name": "mem",
            "type": "SCALAR",
            "scalar": {"value": 64.0},
            "reservations": [{"type": "STATIC", "role": "web"}],
        },
        {"name": "cpus", "type": "SCALAR", "scalar": {"value": 1.0}},
    ]


@pytest.mark.parametrize(
    ("document", "fragment"),
    [
        ({"name": "cpus"}, "expected a JSON array"),
        ([{"type": "SCALAR", "scalar": {"value": 1}}], r"resources\[0\]\.name"),
        ([{"name": "cpus", "type": "SCALAR"}], r"scalar\.value"),
        ([{"name": "cpus", "type": "SCALAR", "scalar": {"value": True}}], r"scalar\.value"),
        ([{"name": "cpus", "type": "TEXT", "text": {"value": "x"}}], "unsupported resource type TEXT"),
        ([{"name": "cpus", "type": "BOGUS"}], r"resources\[0\]\.type"),
        ([{"name": "p", "type": "RANGES", "ranges": {"range": [{"begin": -1, "end": 2}]}}], "non-negative"),
        ([{"name": "p", "type": "RANGES", "ranges": {"range": [{"begin": 3, "end": 2}]}}], "begin > end"),
        ([{"name": "s", "type": "SET", "set": {"item": [1]}}], r"set\.item"),
        ([{"name": "c", "type": "SCALAR", "scalar": {"value": 1}, "role": 5}], r"\.role"),
    ],
)
def test_bad_json_names_the_field(document: object, fragment: str) -> None:
    with pytest.raises(ResourceError, match=fragment):
        Resources.from_json(document)


def test_command_line_json_refuses_what_mesos_refuses() -> None:
    revocable = [{"name": "cpus", "type": "SCALAR", "scalar": {"value": 1}, "revocable": {}}]
    with pytest.raises(ResourceError, match="Revocable"):
        Resources.parse(json.dumps(revocable))
    dynamic = [
        {
            "name": "cpus",
            "type": "SCALAR",
            "scalar": {"value": 1},
            "reservations": [{"type": "DYNAMIC", "role": "r"}],
        }
    ]
    with pytest.raises(ResourceError, match="Dynamic reservations"):
        Resources.parse(json.dumps(dynamic))
    # Outside the command line the same JSON is fine (offers and tasks carry such resources).
    assert Resources.from_json(dynamic).scalar("cpus") == 1.0


# --------------------------------------------------------------------------------------------
# Agent defaults
# --------------------------------------------------------------------------------------------


def test_defaults_fill_everything_not_mentioned(tmp_path: Path) -> None:
    resources = agent_resources(None, str(tmp_path), cpus=8, memory_bytes=16 * GB, disk_bytes=100 * GB)
    assert resources.scalar("cpus") == 8.0
    assert resources.scalar("mem") == 15 * 1024.0  # total - 1 GB
    assert resources.scalar("disk") == 95 * 1024.0  # total - 5 GB
    assert resources.ranges("ports") == ((31000, 32000),)


def test_small_machines_get_half() -> None:
    resources = agent_resources("", "/", cpus=1, memory_bytes=GB, disk_bytes=8 * GB)
    assert resources.scalar("mem") == 512.0
    assert resources.scalar("disk") == 4096.0


def test_detected_sizes_go_through_six_significant_digits_like_mesos() -> None:
    memory = 23 * GB + 479 * 1024 * 1024 + 123456  # 23999.117... MB
    resources = agent_resources("cpus:1", "/", memory_bytes=memory, disk_bytes=20 * GB)
    assert resources.scalar("mem") == float(f"{(memory - GB) / 1024 / 1024:g}")


def test_given_ports_replace_the_default_range_instead_of_adding() -> None:
    resources = agent_resources(
        "ports:[19998-19999,29998-30000]", "/", cpus=1, memory_bytes=4 * GB, disk_bytes=GB
    )
    assert resources.ranges("ports") == ((19998, 19999), (29998, 30000))


def test_real_detection_uses_this_machine(tmp_path: Path) -> None:
    resources = agent_resources(None, str(tmp_path))
    assert resources.scalar("cpus") == float(os.cpu_count() or 1)
    assert resources.scalar("mem") > 0
    assert resources.scalar("disk") > 0


def test_flag_value_from_file(tmp_path: Path) -> None:
    path = tmp_path / "resources"
    path.write_text("cpus:3;mem:100;disk:10;ports:[1-2]\n")
    resources = agent_resources(f"file://{path}", str(tmp_path))
    assert resources.scalar("cpus") == 3.0
    assert resources.ranges("ports") == ((1, 2),)
    with pytest.raises(ResourceError, match="cannot read flag value"):
        agent_resources(f"file://{tmp_path}/missing", str(tmp_path))


# --------------------------------------------------------------------------------------------
# Arithmetic and output
# --------------------------------------------------------------------------------------------


def test_subtraction_of_ranges_splits_them() -> None:
    agent = Resources.parse("cpus:4;ports:[31000-32000]")
    used = Resources.parse("cpus:1;ports:[31005-31010]")
    left = agent - used
    assert left.scalar("cpus") == 3.0
    assert left.ranges("ports") == ((31000, 31004), (31011, 32000))
    assert left + used == agent


def test_subtraction_drops_resources_that_would_go_negative() -> None:
    assert (Resources.parse("cpus:1") - Resources.parse("cpus:2")).is_empty()


def test_roles_are_separate_pools() -> None:
    agent = Resources.parse("cpus:2;cpus(web):1")
    assert agent.scalar("cpus") == 3.0
    assert not agent.contains(Resources.parse("cpus(web):2"))
    assert agent.contains(Resources.parse("cpus:2;cpus(web):1"))
    assert agent.allocatable_to(["web"]) == agent
    assert agent.allocatable_to(["db"]) == Resources.parse("cpus:2")


def test_contains_for_each_type() -> None:
    agent = Resources.parse("cpus:2;ports:[1-10];disks:{a,b}")
    assert agent.contains(Resources.parse("cpus:2;ports:[3-4,7-8];disks:{b}"))
    assert not agent.contains(Resources.parse("cpus:2.001"))
    assert not agent.contains(Resources.parse("ports:[10-11]"))
    assert not agent.contains(Resources.parse("disks:{c}"))
    assert not agent.contains(Resources.parse("gpus:1"))


def test_summary_is_the_master_state_form() -> None:
    resources = Resources.parse("cpus:4;mem:1024;ports:[31000-31005,32000-32000];disks:{a,b}")
    assert resources.summary() == {
        "cpus": 4.0,
        "gpus": 0.0,
        "mem": 1024.0,
        "disk": 0.0,
        "ports": "[31000-31005, 32000-32000]",
        "disks": "{a, b}",
    }


def test_describe_matches_mesos_messages() -> None:
    resources = Resources.parse("cpus:1;mem(web):128;ports:[1-2,4-4]")
    assert resources.describe("*") == (
        "cpus(allocated: *):1; mem(allocated: *)(reservations: [(STATIC,web)]):128; "
        "ports(allocated: *):[1-2, 4-4]"
    )


def test_format_round_trips() -> None:
    text = "cpus:1.5;mem(web):128;ports:[1-2,4-4];disks:{a,b}"
    assert Resources.parse(text).format() == text
    assert Resources.parse(Resources.parse(text).format()) == Resources.parse(text)


def test_ranges_helpers() -> None:
    assert parse_ranges("[1-3, 2-5]") == ((1, 5),)
    assert format_ranges(((1, 2), (5, 6))) == "[1-2,5-6]"
    assert ranges_union(((1, 2),), ((3, 4),)) == ((1, 4),)
    assert ranges_subtract(((1, 10),), ((1, 1), (10, 10))) == ((2, 9),)
    assert ranges_contain(((1, 10),), ((2, 3),))
    assert not ranges_contain(((1, 10),), ((9, 11),))


# --------------------------------------------------------------------------------------------
# Attributes and roles
# --------------------------------------------------------------------------------------------


def test_attributes_types_and_outputs() -> None:
    attributes = parse_attributes("rack:r1;zone_size:3;ports:[1-2];host:a b")
    assert [a.type for a in attributes] == ["TEXT", "SCALAR", "RANGES", "TEXT"]
    assert attributes[3].text == "ab"  # Mesos strips spaces from values
    assert attributes_summary(attributes) == {"rack": "r1", "zone_size": 3.0, "ports": "[1-2]", "host": "ab"}
    assert attributes_to_json(attributes)[0] == {"name": "rack", "type": "TEXT", "text": {"value": "r1"}}
    assert attributes_from_json(attributes_to_json(attributes)) == attributes
    assert parse_attributes(format_attributes(attributes)) == attributes


def test_attribute_values_may_contain_colons() -> None:
    assert parse_attributes("url:http://x")[0].text == "http://x"


@pytest.mark.parametrize("text", ["rack", ":x", "rack:", "s:{a,b}"])
def test_bad_attributes_are_refused(text: str) -> None:
    with pytest.raises(AttributeParseError):
        parse_attributes(text)


def test_role_validation() -> None:
    assert validate_role("*") is None
    assert validate_role("a/b") is None
    for bad in ("", ".", "..", "-a", "a b", "a//b", "a/*"):
        assert validate_role(bad) is not None, bad


# --------------------------------------------------------------------------------------------
# Properties
# --------------------------------------------------------------------------------------------

_range = st.tuples(st.integers(0, 2000), st.integers(0, 50)).map(lambda t: (t[0], t[0] + t[1]))


@st.composite
def resources_strategy(draw: st.DrawFn) -> Resources:
    items: list[Resource] = []
    for name in ("cpus", "mem"):
        if draw(st.booleans()):
            millis = draw(st.integers(1, 10**7))
            role = draw(st.sampled_from(["*", "web"]))
            items.append(Resource(name, "SCALAR", role, millis=millis))
    if draw(st.booleans()):
        items.append(Resource.ranges_of("ports", draw(st.lists(_range, min_size=1, max_size=5))))
    if draw(st.booleans()):
        items.append(
            Resource.set_of("disks", draw(st.lists(st.sampled_from("abcdef"), min_size=1, unique=True)))
        )
    return Resources(items)


@settings(max_examples=300, deadline=None)
@given(resources_strategy(), resources_strategy())
def test_property_add_then_subtract_is_identity_for_disjoint_values(a: Resources, b: Resources) -> None:
    # Ranges/sets that overlap merge when added, so take b's disjoint part first.
    b_disjoint = b - a
    assert (a + b_disjoint) - b_disjoint == a
    assert (a + b_disjoint).contains(a)
    assert (a + b_disjoint).contains(b_disjoint)


@settings(max_examples=300, deadline=None)
@given(resources_strategy(), resources_strategy())
def test_property_subtraction_is_contained_and_complements(a: Resources, b: Resources) -> None:
    left = a - b
    assert a.contains(left)
    if a.contains(b):
        assert left + b == a


@settings(max_examples=300, deadline=None)
@given(resources_strategy())
def test_property_text_and_json_round_trip(a: Resources) -> None:
    assert Resources.parse(a.format()) == a
    assert Resources.from_json(a.to_json()) == a
    assert Resources.from_json(a.to_json(reservation_refinement=True)) == a


@settings(max_examples=300, deadline=None)
@given(st.lists(_range, max_size=6), st.lists(_range, max_size=6))
def test_property_ranges_subtract_matches_sets(a: list[tuple[int, int]], b: list[tuple[int, int]]) -> None:
    def points(ranges: object) -> set[int]:
        return {p for begin, end in ranges for p in range(begin, end + 1)}  # type: ignore[attr-defined]

    assert points(ranges_subtract(a, b)) == points(a) - points(b)
    assert points(ranges_union(a, b)) == points(a) | points(b)
