"""The master's shortcut for common ACCEPT/ACKNOWLEDGE calls against the generic protobuf check.

plain_calls may only recognise a document the generic check (protojson.check) accepts, and must
leave it exactly as that check would. Both are checked on realistic calls and on thousands of
mutations of them (wrong types, nulls, missing and unknown fields, out-of-range numbers).
"""

from __future__ import annotations

import copy
import json
import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sandbox.mesos.master.plain_calls import is_plain_accept, is_plain_acknowledge
from sandbox.mesos.protojson import ProtoJsonError, SchedulerCall, check

UUID = "q83vEjRWeJq83vEjRWeJqw=="

COMMAND_TASK = {
    "name": "t1",
    "task_id": {"value": "t1"},
    "agent_id": {"value": "m-S1"},
    "resources": [
        {"name": "cpus", "type": "SCALAR", "scalar": {"value": 0.5}},
        {"name": "mem", "type": "SCALAR", "scalar": {"value": 128}},
    ],
    "command": {"value": "sleep 3600"},
}
EXECUTOR_TASK = {
    "name": "alluxio-worker",
    "task_id": {"value": "worker-1"},
    "agent_id": {"value": "m-S2"},
    "resources": [
        {"name": "cpus", "type": "SCALAR", "scalar": {"value": 1.0}, "role": "*"},
        {
            "name": "ports",
            "type": "RANGES",
            "ranges": {"range": [{"begin": 29998, "end": 30000}]},
            "role": "*",
        },
        {"name": "gpus_ids", "type": "SET", "set": {"item": ["a", "b"]}},
    ],
    "executor": {
        "executor_id": {"value": "worker-1"},
        "framework_id": {"value": "fw-0000"},
        "name": "worker executor",
        "source": "alluxio",
        "command": {
            "value": "python3 launcher.py",
            "shell": True,
            "uris": [
                {"value": "http://artifacts/x.tar.gz", "extract": True, "cache": False, "executable": False}
            ],
            "environment": {
                "variables": [{"name": "A", "value": "1"}, {"name": "B", "type": "VALUE", "value": "2"}]
            },
            "arguments": ["a", "b"],
            "user": "alluxio",
        },
        "resources": [{"name": "mem", "type": "SCALAR", "scalar": {"value": 32}}],
        "data": "QUJD",
        "shutdown_grace_period": {"nanoseconds": 5000000000},
        "labels": {"labels": [{"key": "k", "value": "v"}, {"key": "only-key"}]},
        "type": "CUSTOM",
    },
    "kill_policy": {"grace_period": {"nanoseconds": 30000000000}},
    "data": "e30=",
    "labels": {"labels": [{"key": "role", "value": "worker"}]},
}
ACCEPT = {
    "type": "ACCEPT",
    "framework_id": {"value": "fw-0000"},
    "accept": {
        "offer_ids": [{"value": "m-O1"}, {"value": "m-O2"}],
        "operations": [
            {"type": "LAUNCH", "launch": {"task_infos": [COMMAND_TASK]}},
            {"type": "LAUNCH", "launch": {"task_infos": [EXECUTOR_TASK, COMMAND_TASK]}},
        ],
        "filters": {"refuse_seconds": 3600},
    },
}
ACKNOWLEDGE = {
    "type": "ACKNOWLEDGE",
    "framework_id": {"value": "fw-0000"},
    "acknowledge": {"agent_id": {"value": "m-S1"}, "task_id": {"value": "t1"}, "uuid": UUID},
}

# Values put in place of a random part of a call.
REPLACEMENTS: list[Any] = [
    None,
    0,
    -1,
    7,
    2**53 + 1,
    2**64,
    -(2**63) - 1,
    10**400,
    1.5,
    float("inf"),
    float("nan"),
    "",
    "x",
    "5",
    "QUJD",
    "not base64!",
    True,
    False,
    [],
    [None],
    [1],
    ["a"],
    [{}],
    {},
    {"value": "v"},
    {"value": None},
    {"value": 3},
    {"begin": 1, "end": 2},
    "SCALAR",
    "LAUNCH",
    "UNKNOWN",
    "TASK_RUNNING",
]


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            found += _paths(value, (*prefix, index))
    return found


def _mutate(document: dict[str, Any], rng: random.Random) -> dict[str, Any]:
    mutated = copy.deepcopy(document)
    for _ in range(rng.randint(1, 3)):
        path = rng.choice(_paths(mutated)[1:])
        parent: Any = mutated
        for step in path[:-1]:
            parent = parent[step]
        choice = rng.random()
        if choice < 0.65:
            parent[path[-1]] = copy.deepcopy(rng.choice(REPLACEMENTS))
        elif choice < 0.85 and isinstance(parent, dict):
            del parent[path[-1]]
        elif isinstance(parent, dict):
            parent[rng.choice(["unknown", "container", "role", "type", "value", "reservations"])] = "x"
    return mutated


def _generic(document: dict[str, Any]) -> tuple[str, str]:
    """What protojson.check makes of a document: its JSON text (types included) or its error."""
    try:
        return "ok", json.dumps(check(SchedulerCall, document))
    except ProtoJsonError as error:
        return "refused", str(error)
    except (ValueError, OverflowError) as error:
        return type(error).__name__, str(error)


def _assert_agrees_with_generic(document: dict[str, Any], recogniser: Any) -> bool:
    untouched = copy.deepcopy(document)
    candidate = copy.deepcopy(document)
    recognised = recogniser(candidate)
    expected = _generic(untouched)
    if recognised:
        # Recognised: the generic check accepts it and has nothing left to change.
        assert expected == ("ok", json.dumps(candidate))
    # Recognised or not, what the recogniser changed does not change the generic verdict.
    assert _generic(candidate) == expected
    return recognised


@pytest.mark.parametrize(
    ("document", "recogniser"),
    [(ACCEPT, is_plain_accept), (ACKNOWLEDGE, is_plain_acknowledge)],
    ids=["accept", "acknowledge"],
)
def test_common_calls_are_recognised(document: dict[str, Any], recogniser: Any) -> None:
    assert _assert_agrees_with_generic(document, recogniser)


def test_integral_doubles_become_floats_as_in_the_generic_check() -> None:
    document = copy.deepcopy(ACCEPT)
    assert is_plain_accept(document)
    assert document["accept"]["filters"]["refuse_seconds"] == 3600.0
    assert isinstance(document["accept"]["filters"]["refuse_seconds"], float)
    mem = document["accept"]["operations"][0]["launch"]["task_infos"][0]["resources"][1]
    assert isinstance(mem["scalar"]["value"], float)


@pytest.mark.parametrize(
    "change",
    [
        lambda d: d["accept"]["operations"][0].update(type="RESERVE"),
        lambda d: d["accept"].update(offer_ids=None),
        lambda d: d["accept"]["operations"][0]["launch"]["task_infos"][0].pop("name"),
        lambda d: d["accept"]["operations"][0]["launch"]["task_infos"][0].update(container={}),
        lambda d: d["accept"]["operations"][0]["launch"]["task_infos"][0]["resources"][0].update(type=[]),
        lambda d: d["accept"]["filters"].update(refuse_seconds="5"),
        lambda d: d["accept"]["filters"].update(refuse_seconds=2**60),
        lambda d: d["accept"]["filters"].update(refuse_seconds=float("nan")),
        lambda d: d["accept"]["operations"][0]["launch"]["task_infos"][0]["resources"][0].update(
            scalar={"value": float("nan")}
        ),
        lambda d: d["accept"]["operations"][1]["launch"]["task_infos"][0].update(data="%%%"),
    ],
)
def test_unusual_accepts_are_left_to_the_generic_check(change: Any) -> None:
    document = copy.deepcopy(ACCEPT)
    change(document)
    assert not _assert_agrees_with_generic(document, is_plain_accept)


def test_acknowledge_with_bad_uuid_is_left_to_the_generic_check() -> None:
    document = copy.deepcopy(ACKNOWLEDGE)
    document["acknowledge"]["uuid"] = "not base64!"
    assert not _assert_agrees_with_generic(document, is_plain_acknowledge)


@settings(max_examples=3000, deadline=None)
@given(seed=st.integers(min_value=0, max_value=2**32), accept=st.booleans())
def test_mutated_calls_agree_with_the_generic_check(seed: int, accept: bool) -> None:
    rng = random.Random(seed)
    base, recogniser = (ACCEPT, is_plain_accept) if accept else (ACKNOWLEDGE, is_plain_acknowledge)
    _assert_agrees_with_generic(_mutate(base, rng), recogniser)
