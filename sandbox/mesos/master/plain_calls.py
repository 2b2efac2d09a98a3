"""The scheduler calls sent most often, recognised in their usual shape so the generic check can be skipped.

Every call is checked against the v1 protobuf shape (protojson.check) before the master looks at
it. For an ACKNOWLEDGE and for an ACCEPT of LAUNCH operations, which a framework placing
thousands of tasks sends thousands of, that generic walk is a large part of the cost of a call.

The recognisers here accept a document only when it is well typed, has every required field,
holds no null and uses only the fields listed below. For such a document the generic check can
neither fail nor change anything except turning integral numbers in ``double`` fields into
floats, which the recogniser does too. Anything else (an extra field, a null, a string where a
number belongs, a value out of range) is left to the generic check, which then answers with
Mesos' error text. tests/unit/test_mesos_plain_calls.py checks both properties against
protojson.check on mutated documents.
"""

from __future__ import annotations

import math
from typing import Any

from sandbox.mesos.protojson import VALUE_TYPES
from sandbox.mesos.wire import b64decode

__all__ = ["is_plain_accept", "is_plain_acknowledge"]

_ID_KEYS = {"value"}
_ACKNOWLEDGE_KEYS = {"type", "framework_id", "acknowledge"}
_ACKNOWLEDGE_BODY_KEYS = {"agent_id", "task_id", "uuid"}
_ACCEPT_KEYS = {"type", "framework_id", "accept"}
_ACCEPT_BODY_KEYS = frozenset({"offer_ids", "operations", "filters"})
_LAUNCH_OPERATION_KEYS = {"type", "launch"}
_LAUNCH_KEYS = {"task_infos"}
_TASK_KEYS = frozenset(
    {"name", "task_id", "agent_id", "resources", "command", "executor", "kill_policy", "data", "labels"}
)
_EXECUTOR_KEYS = frozenset(
    {
        "type",
        "executor_id",
        "framework_id",
        "command",
        "resources",
        "name",
        "source",
        "data",
        "shutdown_grace_period",
        "labels",
    }
)
_EXECUTOR_TYPES = frozenset({"UNKNOWN", "DEFAULT", "CUSTOM"})
_COMMAND_KEYS = frozenset({"uris", "environment", "shell", "value", "arguments", "user"})
_URI_KEYS = frozenset({"value", "executable", "extract", "cache", "output_file"})
_URI_FLAGS = ("executable", "extract", "cache")
_ENVIRONMENT_KEYS = {"variables"}
_VARIABLE_KEYS = frozenset({"name", "type", "value"})
_VARIABLE_TYPES = frozenset({"UNKNOWN", "VALUE", "SECRET"})
_RESOURCE_KEYS = frozenset({"name", "type", "scalar", "ranges", "set", "role"})
_SCALAR_KEYS = {"value"}
_RANGES_KEYS = {"range"}
_RANGE_KEYS = {"begin", "end"}
_SET_KEYS = {"item"}
_LABELS_KEYS = {"labels"}
_LABEL_KEYS = frozenset({"key", "value"})
_FILTERS_KEYS = {"refuse_seconds"}
_DURATION_KEYS = {"nanoseconds"}
_KILL_POLICY_KEYS = {"grace_period"}
_VALUE_TYPES = frozenset(VALUE_TYPES)

# Integers a double can hold exactly; bigger ones are left to the generic check.
_EXACT_INT = 2**53
_INT64_MIN = -(2**63)
_UINT64_END = 2**64


def _is_id(value: Any) -> bool:
    return type(value) is dict and value.keys() == _ID_KEYS and type(value["value"]) is str


def _is_str(value: Any) -> bool:
    return type(value) is str


def _is_bool(value: Any) -> bool:
    return type(value) is bool


def _is_bytes(value: Any) -> bool:
    if type(value) is not str:
        return False
    try:
        b64decode(value)
    except ValueError:
        return False
    return True


def _is_int64(value: Any) -> bool:
    return type(value) is int and _INT64_MIN <= value < _UINT64_END


def _is_uint64(value: Any) -> bool:
    return type(value) is int and 0 <= value < _UINT64_END


def _to_double(message: dict[str, Any], key: str) -> bool:
    """Check ``message[key]`` as a double, making an integral one a float like the generic check."""
    value = message[key]
    if type(value) is float:
        return not math.isnan(value)  # NaN is refused by the generic check
    if type(value) is int and -_EXACT_INT <= value <= _EXACT_INT:
        message[key] = float(value)
        return True
    return False


def _is_list_of(value: Any, check: Any) -> bool:
    if type(value) is not list:
        return False
    for item in value:  # noqa: SIM110 - a loop is cheaper than all() over a generator
        if not check(item):
            return False
    return True


def _fields_are(message: dict[str, Any], checks: dict[str, Any]) -> bool:
    """Every field of ``message`` passes its check (the caller made sure all have one)."""
    for key, field in message.items():  # noqa: SIM110 - a loop is cheaper than all()
        if not checks[key](field):
            return False
    return True


def _is_duration(value: Any) -> bool:
    return type(value) is dict and value.keys() == _DURATION_KEYS and _is_int64(value["nanoseconds"])


def _is_label(value: Any) -> bool:
    if type(value) is not dict or not _LABEL_KEYS.issuperset(value) or type(value.get("key")) is not str:
        return False
    return "value" not in value or type(value["value"]) is str


def _is_labels(value: Any) -> bool:
    return type(value) is dict and value.keys() == _LABELS_KEYS and _is_list_of(value["labels"], _is_label)


def _is_range(value: Any) -> bool:
    return (
        type(value) is dict
        and value.keys() == _RANGE_KEYS
        and _is_uint64(value["begin"])
        and _is_uint64(value["end"])
    )


def _is_resource(value: Any) -> bool:
    if type(value) is not dict or not _RESOURCE_KEYS.issuperset(value):
        return False
    kind = value.get("type")
    if type(value.get("name")) is not str or type(kind) is not str or kind not in _VALUE_TYPES:
        return False
    if "role" in value and type(value["role"]) is not str:
        return False
    scalar = value.get("scalar")
    if scalar is not None:
        if type(scalar) is not dict or scalar.keys() != _SCALAR_KEYS or not _to_double(scalar, "value"):
            return False
    elif "scalar" in value:
        return False
    ranges = value.get("ranges")
    if ranges is not None:
        if type(ranges) is not dict or not _RANGES_KEYS.issuperset(ranges):
            return False
        if "range" in ranges and not _is_list_of(ranges["range"], _is_range):
            return False
    elif "ranges" in value:
        return False
    items = value.get("set")
    if items is not None:
        if type(items) is not dict or not _SET_KEYS.issuperset(items):
            return False
        if "item" in items and not _is_list_of(items["item"], _is_str):
            return False
    elif "set" in value:
        return False
    return True


def _is_uri(value: Any) -> bool:
    if type(value) is not dict or not _URI_KEYS.issuperset(value) or type(value.get("value")) is not str:
        return False
    for flag in _URI_FLAGS:
        if flag in value and type(value[flag]) is not bool:
            return False
    return "output_file" not in value or type(value["output_file"]) is str


def _is_variable(value: Any) -> bool:
    if type(value) is not dict or not _VARIABLE_KEYS.issuperset(value) or type(value.get("name")) is not str:
        return False
    if "type" in value and (type(value["type"]) is not str or value["type"] not in _VARIABLE_TYPES):
        return False
    return "value" not in value or type(value["value"]) is str


_COMMAND_FIELDS = {
    "value": _is_str,
    "shell": _is_bool,
    "user": _is_str,
    "arguments": lambda value: _is_list_of(value, _is_str),
    "uris": lambda value: _is_list_of(value, _is_uri),
    "environment": lambda value: (
        type(value) is dict
        and value.keys() == _ENVIRONMENT_KEYS
        and _is_list_of(value["variables"], _is_variable)
    ),
}


def _is_command(value: Any) -> bool:
    return type(value) is dict and _COMMAND_KEYS.issuperset(value) and _fields_are(value, _COMMAND_FIELDS)


def _is_resources(value: Any) -> bool:
    return _is_list_of(value, _is_resource)


_EXECUTOR_FIELDS = {
    "type": lambda value: type(value) is str and value in _EXECUTOR_TYPES,
    "executor_id": _is_id,
    "framework_id": _is_id,
    "command": _is_command,
    "resources": _is_resources,
    "name": _is_str,
    "source": _is_str,
    "data": _is_bytes,
    "shutdown_grace_period": _is_duration,
    "labels": _is_labels,
}


def _is_executor(value: Any) -> bool:
    if type(value) is not dict or not _EXECUTOR_KEYS.issuperset(value) or "executor_id" not in value:
        return False
    return _fields_are(value, _EXECUTOR_FIELDS)


_TASK_FIELDS = {
    "name": _is_str,
    "task_id": _is_id,
    "agent_id": _is_id,
    "resources": _is_resources,
    "command": _is_command,
    "executor": _is_executor,
    "kill_policy": lambda value: (
        type(value) is dict and value.keys() == _KILL_POLICY_KEYS and _is_duration(value["grace_period"])
    ),
    "data": _is_bytes,
    "labels": _is_labels,
}


def _is_task(value: Any) -> bool:
    if type(value) is not dict or not _TASK_KEYS.issuperset(value):
        return False
    if "name" not in value or "task_id" not in value or "agent_id" not in value:
        return False
    return _fields_are(value, _TASK_FIELDS)


def _is_launch(value: Any) -> bool:
    if type(value) is not dict or value.keys() != _LAUNCH_OPERATION_KEYS or value["type"] != "LAUNCH":
        return False
    launch = value["launch"]
    return (
        type(launch) is dict and launch.keys() == _LAUNCH_KEYS and _is_list_of(launch["task_infos"], _is_task)
    )


def is_plain_accept(document: Any) -> bool:
    """An ACCEPT of LAUNCH operations with the fields schedulers send, all well typed.

    Integral ``double`` values (resource scalars, ``refuse_seconds``) are made floats on the
    way, as the generic check does; a document that is then refused has had only such values
    converted, which does not change what the generic check makes of it.
    """
    if type(document) is not dict or document.keys() != _ACCEPT_KEYS:
        return False
    accept = document["accept"]
    if (
        document["type"] != "ACCEPT"
        or not _is_id(document["framework_id"])
        or type(accept) is not dict
        or not _ACCEPT_BODY_KEYS.issuperset(accept)
    ):
        return False
    if "offer_ids" in accept and not _is_list_of(accept["offer_ids"], _is_id):
        return False
    if "operations" in accept and not _is_list_of(accept["operations"], _is_launch):
        return False
    if "filters" in accept:
        filters = accept["filters"]
        if type(filters) is not dict or not _FILTERS_KEYS.issuperset(filters):
            return False
        if "refuse_seconds" in filters and not _to_double(filters, "refuse_seconds"):
            return False
    return True


def is_plain_acknowledge(document: Any) -> bool:
    """An ACKNOWLEDGE call with exactly the fields a scheduler sends, all well typed.

    Anything else (extra or missing fields, nulls, bad base64) takes the generic path and gets
    Mesos' error.
    """
    if type(document) is not dict or document.keys() != _ACKNOWLEDGE_KEYS:
        return False
    ack = document["acknowledge"]
    if (
        document["type"] != "ACKNOWLEDGE"
        or not _is_id(document["framework_id"])
        or type(ack) is not dict
        or ack.keys() != _ACKNOWLEDGE_BODY_KEYS
        or not _is_id(ack["agent_id"])
        or not _is_id(ack["task_id"])
    ):
        return False
    return _is_bytes(ack["uuid"])
