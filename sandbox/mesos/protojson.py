"""Checking JSON against the shape of Mesos' v1 protobuf messages, as stout's JSON->protobuf does.

Mesos converts every JSON request into a protobuf message before looking at it: unknown keys
are ignored, a value of the wrong JSON type is refused, an unknown enum name is refused and
missing ``required`` fields are reported all at once ("Missing required fields: a.b, a.c").
The stand-in does the same against the schemas below, so that handlers can trust the types
of what they read and clients get Mesos' answers for malformed calls.

Only the messages the stand-in reads are described field by field; nested messages it only
stores and echoes (ContainerInfo, HealthCheck, ...) are accepted as any JSON object.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from sandbox.mesos.wire import b64decode

__all__ = ["ProtoJsonError", "check"]


class ProtoJsonError(ValueError):
    """The JSON cannot be converted into the protobuf message; ``str()`` is Mesos' reason."""


@dataclass(frozen=True)
class Field:
    kind: str  # string|bool|double|int|uint|bytes|enum|message|any|idlike
    required: bool = False
    repeated: bool = False
    message: Callable[[], dict[str, Field]] | None = None
    values: frozenset[str] | None = None
    open_prefix: str | None = None  # enum that accepts any name with this prefix


def _f(kind: str, **kwargs: Any) -> Field:
    return Field(kind, **kwargs)


def _msg(schema: Callable[[], dict[str, Field]], **kwargs: Any) -> Field:
    return Field("message", message=schema, **kwargs)


def _enum(values: Iterable[str], **kwargs: Any) -> Field:
    return Field("enum", values=frozenset(values), **kwargs)


_JSON_TYPE_NAMES = {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}


def _json_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    return _JSON_TYPE_NAMES.get(type(value), type(value).__name__)


def _not_expecting(value: Any, name: str) -> ProtoJsonError:
    return ProtoJsonError(f"Not expecting a JSON {_json_type(value)} for field '{name}'")


def _check_scalar(field: Field, name: str, value: Any) -> Any:
    kind = field.kind
    if kind == "string":
        if not isinstance(value, str):
            raise _not_expecting(value, name)
        return value
    if kind == "bool":
        if not isinstance(value, bool):
            raise _not_expecting(value, name)
        return value
    if kind == "double":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise _not_expecting(value, name)
        if isinstance(value, float) and math.isnan(value):
            raise ProtoJsonError(f"Invalid value for field '{name}': NaN")
        return float(value)
    if kind in ("int", "uint"):
        number: Any = value
        if isinstance(value, str):
            try:
                number = int(value, 10)
            except ValueError as error:
                raise ProtoJsonError(f"Failed to convert '{value}' to integer for field '{name}'") from error
        elif isinstance(value, float) and value.is_integer():
            number = int(value)
        if isinstance(number, bool) or not isinstance(number, int):
            raise _not_expecting(value, name)
        if kind == "uint" and number < 0:
            raise ProtoJsonError(f"Value {number} out of range for unsigned field '{name}'")
        if not -(2**63) <= number < 2**64:
            raise ProtoJsonError(f"Value {number} out of range for field '{name}'")
        return number
    if kind == "bytes":
        if not isinstance(value, str):
            raise _not_expecting(value, name)
        try:
            b64decode(value)
        except ValueError as error:
            raise ProtoJsonError(f"Failed to base64-decode the value of field '{name}'") from error
        return value
    if kind == "enum":
        if not isinstance(value, str):
            raise _not_expecting(value, name)
        allowed = field.values or frozenset()
        if value not in allowed and not (field.open_prefix and value.startswith(field.open_prefix)):
            raise ProtoJsonError(f"Failed to find enum for '{value}'")
        return value
    if kind == "idlike":
        # Internal protocol only: an id may be {"value": "x"} or the bare string "x".
        if isinstance(value, str):
            return {"value": value}
        if isinstance(value, dict) and isinstance(value.get("value"), str):
            return value
        raise _not_expecting(value, name)
    if kind == "any":
        return value
    raise AssertionError(f"unknown field kind {kind}")


# How _check_message treats a known field, decided once per schema field.
_STRING = 0
_MESSAGE = 1
_REPEATED_MESSAGE = 2
_REPEATED_STRING = 3
_REPEATED_LEAF = 4
_LEAF = 5
_ENUM = 6
_BOOL = 7

# Sub-message shapes common enough to be checked inline by their parent (see _check_message).
_SHAPE_ID = 1  # {"value": string (required)}
_SHAPE_DOUBLE_VALUE = 2  # {"value": double (required)}


def _plan(field: Field) -> int:
    if field.repeated:
        if field.kind == "message":
            return _REPEATED_MESSAGE
        return _REPEATED_STRING if field.kind == "string" else _REPEATED_LEAF
    if field.kind == "string":
        return _STRING
    if field.kind == "enum" and field.values is not None and not field.open_prefix:
        return _ENUM
    if field.kind == "bool":
        return _BOOL
    return _MESSAGE if field.kind == "message" else _LEAF


def _shape(fields: dict[str, Field]) -> int:
    only = fields.get("value")
    if len(fields) != 1 or only is None or not only.required or only.repeated:
        return 0
    if only.kind == "string":
        return _SHAPE_ID
    return _SHAPE_DOUBLE_VALUE if only.kind == "double" else 0


class _Compiled:
    """A schema's field table plus what checking needs precomputed (built once per schema)."""

    __slots__ = ("fields", "plans", "required", "shape", "subs")

    def __init__(self, fields: dict[str, Field]) -> None:
        self.fields = fields
        self.required = tuple(name for name, field in fields.items() if field.required)
        self.plans = {name: (_plan(field), field) for name, field in fields.items()}
        self.shape = _shape(fields)
        self.subs: dict[str, _Compiled] = {}

    def sub(self, name: str) -> _Compiled:
        compiled = self.subs.get(name)
        if compiled is None:
            message = self.fields[name].message
            assert message is not None
            compiled = self.subs[name] = _compile(message)
        return compiled


_COMPILED: dict[int, tuple[Callable[[], dict[str, Field]], _Compiled]] = {}


def _compile(schema: Callable[[], dict[str, Field]]) -> _Compiled:
    cached = _COMPILED.get(id(schema))
    if cached is None or cached[0] is not schema:
        cached = (schema, _Compiled(schema()))
        _COMPILED[id(schema)] = cached
    return cached[1]


# Where a message sits in the document: None for the root, else (parent, field name, index or
# -1). Rendered ("a.b[0].c") only when a required field is missing, which is rare.
_Where = tuple[Any, str, int] | None


def _render(where: _Where) -> str:
    if where is None:
        return ""
    parent, name, index = where
    prefix = _render(parent)
    text = f"{prefix}.{name}" if prefix else name
    return f"{text}[{index}]" if index >= 0 else text


def _missing_name(where: _Where, name: str) -> str:
    path = _render(where)
    return f"{path}.{name}" if path else name


def _inline_ok(shape: int, value: dict[str, Any]) -> bool:
    """True when a sub-message of a common shape is valid and needs no change: skip the call."""
    inner = value.get("value")
    if shape == _SHAPE_ID:
        return type(inner) is str
    # A double that is already a float (and not NaN) is kept as it is.
    return type(inner) is float and not math.isnan(inner)


def _check_message(compiled: _Compiled, obj: dict[str, Any], where: _Where, missing: list[str]) -> None:
    # Like protobuf's FindInitializationErrors: this message's missing fields first, then the
    # nested ones. A null counts as absent.
    for name in compiled.required:
        if obj.get(name) is None:
            missing.append(_missing_name(where, name))
    plans = compiled.plans
    nulls: list[str] | None = None
    # Only keys that are present and known need looking at (unknown keys are ignored). Values
    # may be replaced while iterating (same keys); nulls are removed after the loop.
    for name, value in obj.items():
        planned = plans.get(name)
        if planned is None:
            continue
        if value is None:
            # protobuf JSON treats null as "not set"; drop it so handlers see absence.
            if nulls is None:
                nulls = []
            nulls.append(name)
            continue
        plan, field = planned
        if plan == _STRING:
            if type(value) is not str:
                raise _not_expecting(value, name)
        elif plan == _MESSAGE:
            if type(value) is not dict:
                raise _not_expecting(value, name)
            sub = compiled.sub(name)
            if not (sub.shape and _inline_ok(sub.shape, value)):
                _check_message(sub, value, (where, name, -1), missing)
        elif plan == _ENUM:
            if not isinstance(value, str):
                raise _not_expecting(value, name)
            if value not in field.values:  # type: ignore[operator]
                raise ProtoJsonError(f"Failed to find enum for '{value}'")
        elif plan == _BOOL:
            if not isinstance(value, bool):
                raise _not_expecting(value, name)
        elif plan == _REPEATED_MESSAGE:
            if type(value) is not list:
                raise _not_expecting(value, name)
            sub = compiled.sub(name)
            shape = sub.shape
            for index, item in enumerate(value):
                if type(item) is not dict:
                    raise _not_expecting(item, name)
                if not (shape and _inline_ok(shape, item)):
                    _check_message(sub, item, (where, name, index), missing)
        elif plan == _REPEATED_STRING:
            if type(value) is not list:
                raise _not_expecting(value, name)
            for item in value:
                if type(item) is not str:
                    raise _not_expecting(item, name)
        elif plan == _REPEATED_LEAF:
            if type(value) is not list:
                raise _not_expecting(value, name)
            value[:] = [_check_leaf(field, name, item) for item in value]
        else:
            obj[name] = _check_leaf(field, name, value)
    if nulls is not None:
        for name in nulls:
            del obj[name]


def _check_leaf(field: Field, name: str, value: Any) -> Any:
    if field.kind == "any":
        if not isinstance(value, dict | list | str | int | float | bool):
            raise _not_expecting(value, name)
        return value
    return _check_scalar(field, name, value)


def check(schema: Callable[[], dict[str, Field]], obj: Any) -> dict[str, Any]:
    """Validate (in place) and return ``obj`` as an instance of ``schema``.

    Raises ProtoJsonError with Mesos' wording: type errors first, then all missing required
    fields together.
    """
    if not isinstance(obj, dict):
        raise ProtoJsonError("Expecting a JSON object")
    missing: list[str] = []
    _check_message(_compile(schema), obj, None, missing)
    if missing:
        raise ProtoJsonError("Missing required fields: " + ", ".join(missing))
    return obj


# ---------------------------------------------------------------------------------------------
# Enumerations
# ---------------------------------------------------------------------------------------------

TASK_STATES = (
    "TASK_STAGING",
    "TASK_STARTING",
    "TASK_RUNNING",
    "TASK_KILLING",
    "TASK_FINISHED",
    "TASK_FAILED",
    "TASK_KILLED",
    "TASK_ERROR",
    "TASK_LOST",
    "TASK_DROPPED",
    "TASK_UNREACHABLE",
    "TASK_GONE",
    "TASK_GONE_BY_OPERATOR",
    "TASK_UNKNOWN",
)
TERMINAL_STATES = frozenset(
    {
        "TASK_FINISHED",
        "TASK_FAILED",
        "TASK_KILLED",
        "TASK_ERROR",
        "TASK_LOST",
        "TASK_DROPPED",
        "TASK_GONE",
        "TASK_GONE_BY_OPERATOR",
    }
)
SCHEDULER_CALL_TYPES = (
    "UNKNOWN",
    "SUBSCRIBE",
    "TEARDOWN",
    "ACCEPT",
    "DECLINE",
    "ACCEPT_INVERSE_OFFERS",
    "DECLINE_INVERSE_OFFERS",
    "REVIVE",
    "KILL",
    "SHUTDOWN",
    "ACKNOWLEDGE",
    "ACKNOWLEDGE_OPERATION_STATUS",
    "RECONCILE",
    "RECONCILE_OPERATIONS",
    "MESSAGE",
    "REQUEST",
    "SUPPRESS",
    "UPDATE_FRAMEWORK",
)
OPERATOR_CALL_TYPES = (
    "UNKNOWN",
    "GET_HEALTH",
    "GET_FLAGS",
    "GET_VERSION",
    "GET_METRICS",
    "GET_LOGGING_LEVEL",
    "SET_LOGGING_LEVEL",
    "LIST_FILES",
    "READ_FILE",
    "GET_STATE",
    "GET_AGENTS",
    "GET_FRAMEWORKS",
    "GET_EXECUTORS",
    "GET_OPERATIONS",
    "GET_TASKS",
    "GET_ROLES",
    "GET_WEIGHTS",
    "UPDATE_WEIGHTS",
    "GET_MASTER",
    "SUBSCRIBE",
    "RESERVE_RESOURCES",
    "UNRESERVE_RESOURCES",
    "CREATE_VOLUMES",
    "DESTROY_VOLUMES",
    "GROW_VOLUME",
    "SHRINK_VOLUME",
    "GET_MAINTENANCE_STATUS",
    "GET_MAINTENANCE_SCHEDULE",
    "UPDATE_MAINTENANCE_SCHEDULE",
    "START_MAINTENANCE",
    "STOP_MAINTENANCE",
    "DRAIN_AGENT",
    "DEACTIVATE_AGENT",
    "REACTIVATE_AGENT",
    "GET_QUOTA",
    "UPDATE_QUOTA",
    "SET_QUOTA",
    "REMOVE_QUOTA",
    "TEARDOWN",
    "MARK_AGENT_GONE",
)
OPERATION_TYPES = (
    "UNKNOWN",
    "LAUNCH",
    "LAUNCH_GROUP",
    "RESERVE",
    "UNRESERVE",
    "CREATE",
    "DESTROY",
    "GROW_VOLUME",
    "SHRINK_VOLUME",
    "CREATE_DISK",
    "DESTROY_DISK",
)
FRAMEWORK_CAPABILITIES = (
    "UNKNOWN",
    "REVOCABLE_RESOURCES",
    "TASK_KILLING_STATE",
    "GPU_RESOURCES",
    "SHARED_RESOURCES",
    "PARTITION_AWARE",
    "MULTI_ROLE",
    "RESERVATION_REFINEMENT",
    "REGION_AWARE",
)
VALUE_TYPES = ("SCALAR", "RANGES", "SET", "TEXT")
STATUS_SOURCES = ("SOURCE_MASTER", "SOURCE_AGENT", "SOURCE_EXECUTOR")


# ---------------------------------------------------------------------------------------------
# Messages (v1 field names)
# ---------------------------------------------------------------------------------------------


def ID() -> dict[str, Field]:
    return {"value": _f("string", required=True)}


def Label() -> dict[str, Field]:
    return {"key": _f("string", required=True), "value": _f("string")}


def Labels() -> dict[str, Field]:
    return {"labels": _msg(Label, repeated=True)}


def Scalar() -> dict[str, Field]:
    return {"value": _f("double", required=True)}


def Range() -> dict[str, Field]:
    return {"begin": _f("uint", required=True), "end": _f("uint", required=True)}


def Ranges() -> dict[str, Field]:
    return {"range": _msg(Range, repeated=True)}


def ValueSet() -> dict[str, Field]:
    return {"item": _f("string", repeated=True)}


def Text() -> dict[str, Field]:
    return {"value": _f("string", required=True)}


def ReservationInfo() -> dict[str, Field]:
    return {
        "type": _enum(("UNKNOWN", "STATIC", "DYNAMIC")),
        "role": _f("string"),
        "principal": _f("string"),
        "labels": _msg(Labels),
    }


def Resource() -> dict[str, Field]:
    return {
        "name": _f("string", required=True),
        "type": _enum(VALUE_TYPES, required=True),
        "scalar": _msg(Scalar),
        "ranges": _msg(Ranges),
        "set": _msg(ValueSet),
        "role": _f("string"),
        "reservations": _msg(ReservationInfo, repeated=True),
        "reservation": _f("any"),
        "disk": _f("any"),
        "revocable": _f("any"),
        "shared": _f("any"),
        "allocation_info": _msg(lambda: {"role": _f("string")}),
        "provider_id": _f("any"),
    }


def Attribute() -> dict[str, Field]:
    return {
        "name": _f("string", required=True),
        "type": _enum(VALUE_TYPES, required=True),
        "scalar": _msg(Scalar),
        "ranges": _msg(Ranges),
        "set": _msg(ValueSet),
        "text": _msg(Text),
    }


def Filters() -> dict[str, Field]:
    return {"refuse_seconds": _f("double")}


def DurationInfo() -> dict[str, Field]:
    return {"nanoseconds": _f("int", required=True)}


def KillPolicy() -> dict[str, Field]:
    return {"grace_period": _msg(DurationInfo)}


def URI() -> dict[str, Field]:
    return {
        "value": _f("string", required=True),
        "executable": _f("bool"),
        "extract": _f("bool"),
        "cache": _f("bool"),
        "output_file": _f("string"),
    }


def EnvironmentVariable() -> dict[str, Field]:
    return {
        "name": _f("string", required=True),
        "type": _enum(("UNKNOWN", "VALUE", "SECRET")),
        "value": _f("string"),
        "secret": _f("any"),
    }


def CommandInfo() -> dict[str, Field]:
    return {
        "uris": _msg(URI, repeated=True),
        "environment": _msg(lambda: {"variables": _msg(EnvironmentVariable, repeated=True)}),
        "shell": _f("bool"),
        "value": _f("string"),
        "arguments": _f("string", repeated=True),
        "user": _f("string"),
    }


def ExecutorInfo() -> dict[str, Field]:
    return {
        "type": _enum(("UNKNOWN", "DEFAULT", "CUSTOM")),
        "executor_id": _msg(ID, required=True),
        "framework_id": _msg(ID),
        "command": _msg(CommandInfo),
        "container": _f("any"),
        "resources": _msg(Resource, repeated=True),
        "name": _f("string"),
        "source": _f("string"),
        "data": _f("bytes"),
        "discovery": _f("any"),
        "shutdown_grace_period": _msg(DurationInfo),
        "labels": _msg(Labels),
    }


def TaskInfo() -> dict[str, Field]:
    return {
        "name": _f("string", required=True),
        "task_id": _msg(ID, required=True),
        "agent_id": _msg(ID, required=True),
        "resources": _msg(Resource, repeated=True),
        "executor": _msg(ExecutorInfo),
        "command": _msg(CommandInfo),
        "container": _f("any"),
        "health_check": _f("any"),
        "check": _f("any"),
        "kill_policy": _msg(KillPolicy),
        "data": _f("bytes"),
        "labels": _msg(Labels),
        "discovery": _f("any"),
        "max_completion_time": _msg(DurationInfo),
        "limits": _f("any"),
    }


def Operation() -> dict[str, Field]:
    return {
        "type": _enum(OPERATION_TYPES),
        "id": _msg(ID),
        "launch": _msg(lambda: {"task_infos": _msg(TaskInfo, repeated=True)}),
        "launch_group": _msg(
            lambda: {
                "executor": _msg(ExecutorInfo, required=True),
                "task_group": _msg(lambda: {"tasks": _msg(TaskInfo, repeated=True)}, required=True),
            }
        ),
        "reserve": _f("any"),
        "unreserve": _f("any"),
        "create": _f("any"),
        "destroy": _f("any"),
        "grow_volume": _f("any"),
        "shrink_volume": _f("any"),
        "create_disk": _f("any"),
        "destroy_disk": _f("any"),
    }


def FrameworkInfo() -> dict[str, Field]:
    return {
        "user": _f("string", required=True),
        "name": _f("string", required=True),
        "id": _msg(ID),
        "failover_timeout": _f("double"),
        "checkpoint": _f("bool"),
        "role": _f("string"),
        "roles": _f("string", repeated=True),
        "hostname": _f("string"),
        "principal": _f("string"),
        "webui_url": _f("string"),
        "capabilities": _msg(lambda: {"type": _enum(FRAMEWORK_CAPABILITIES)}, repeated=True),
        "labels": _msg(Labels),
        "offer_filters": _f("any"),
    }


def SchedulerCall() -> dict[str, Field]:
    return {
        "framework_id": _msg(ID),
        "type": _enum(SCHEDULER_CALL_TYPES),
        "subscribe": _msg(
            lambda: {
                "framework_info": _msg(FrameworkInfo, required=True),
                "force": _f("bool"),
                "suppressed_roles": _f("string", repeated=True),
                "offer_constraints": _f("any"),
            }
        ),
        "accept": _msg(
            lambda: {
                "offer_ids": _msg(ID, repeated=True),
                "operations": _msg(Operation, repeated=True),
                "filters": _msg(Filters),
            }
        ),
        "decline": _msg(lambda: {"offer_ids": _msg(ID, repeated=True), "filters": _msg(Filters)}),
        "accept_inverse_offers": _f("any"),
        "decline_inverse_offers": _f("any"),
        "revive": _msg(lambda: {"roles": _f("string", repeated=True)}),
        "suppress": _msg(lambda: {"roles": _f("string", repeated=True)}),
        "kill": _msg(
            lambda: {
                "task_id": _msg(ID, required=True),
                "agent_id": _msg(ID),
                "kill_policy": _msg(KillPolicy),
            }
        ),
        "shutdown": _msg(
            lambda: {"executor_id": _msg(ID, required=True), "agent_id": _msg(ID, required=True)}
        ),
        "acknowledge": _msg(
            lambda: {
                "agent_id": _msg(ID, required=True),
                "task_id": _msg(ID, required=True),
                "uuid": _f("bytes", required=True),
            }
        ),
        "acknowledge_operation_status": _f("any"),
        "reconcile": _msg(
            lambda: {
                "tasks": _msg(
                    lambda: {"task_id": _msg(ID, required=True), "agent_id": _msg(ID)}, repeated=True
                )
            }
        ),
        "reconcile_operations": _f("any"),
        "message": _msg(
            lambda: {
                "agent_id": _msg(ID, required=True),
                "executor_id": _msg(ID, required=True),
                "data": _f("bytes", required=True),
            }
        ),
        "request": _f("any"),
        "update_framework": _msg(
            lambda: {
                "framework_info": _msg(FrameworkInfo, required=True),
                "suppressed_roles": _f("string", repeated=True),
                "offer_constraints": _f("any"),
            }
        ),
    }


def OperatorCall() -> dict[str, Field]:
    return {
        "type": _enum(OPERATOR_CALL_TYPES),
        "teardown": _msg(lambda: {"framework_id": _msg(ID, required=True)}),
        "mark_agent_gone": _msg(lambda: {"agent_id": _msg(ID, required=True)}),
        "get_metrics": _f("any"),
        "set_logging_level": _f("any"),
        "list_files": _f("any"),
        "read_file": _f("any"),
    }


def TaskStatus() -> dict[str, Field]:
    return {
        "task_id": _msg(ID, required=True),
        "state": _enum(TASK_STATES, required=True),
        "message": _f("string"),
        "source": _enum(STATUS_SOURCES),
        # Agents may use reasons newer than this file; any REASON_* name is accepted.
        "reason": Field("enum", values=frozenset(), open_prefix="REASON_"),
        "data": _f("bytes"),
        "agent_id": _msg(ID),
        "executor_id": _msg(ID),
        "timestamp": _f("double"),
        "uuid": _f("bytes"),
        "healthy": _f("bool"),
        "check_status": _f("any"),
        "labels": _msg(Labels),
        "container_status": _f("any"),
        "unreachable_time": _f("any"),
        "limitation": _f("any"),
    }


def AgentInfo() -> dict[str, Field]:
    return {
        "hostname": _f("string", required=True),
        "port": _f("int"),
        "resources": _msg(Resource, repeated=True),
        "attributes": _msg(Attribute, repeated=True),
        "id": _msg(ID),
        "domain": _f("any"),
    }


def AgentTask() -> dict[str, Field]:
    return {
        "name": _f("string", required=True),
        "task_id": _msg(ID, required=True),
        "framework_id": _msg(ID, required=True),
        "executor_id": _msg(ID),
        "agent_id": _msg(ID),
        "state": _enum(TASK_STATES, required=True),
        "resources": _msg(Resource, repeated=True),
        "statuses": _msg(TaskStatus, repeated=True),
        "status_update_state": _enum(TASK_STATES),
        "status_update_uuid": _f("bytes"),
        "labels": _msg(Labels),
        "discovery": _f("any"),
        "container": _f("any"),
        "health_check": _f("any"),
        "kill_policy": _msg(KillPolicy),
        "user": _f("string"),
    }


def RegisterAgent() -> dict[str, Field]:
    return {
        "agent_info": _msg(AgentInfo, required=True),
        "agent_url": _f("string", required=True),
        "version": _f("string"),
        "capabilities": _f("any"),
    }


def ReregisterAgent() -> dict[str, Field]:
    return {
        **RegisterAgent(),
        "frameworks": _msg(FrameworkInfo, repeated=True),
        "executors": _msg(ExecutorInfo, repeated=True),
        "tasks": _msg(AgentTask, repeated=True),
    }


def AgentStatusUpdate() -> dict[str, Field]:
    return {
        "agent_id": _f("idlike", required=True),
        "framework_id": _f("idlike", required=True),
        "status": _msg(TaskStatus, required=True),
        "latest_state": _enum(TASK_STATES),
    }


def AgentExitedExecutor() -> dict[str, Field]:
    return {
        "agent_id": _f("idlike", required=True),
        "framework_id": _f("idlike", required=True),
        "executor_id": _f("idlike", required=True),
        "status": _f("int", required=True),
    }


def AgentExecutorMessage() -> dict[str, Field]:
    return {
        "agent_id": _f("idlike", required=True),
        "framework_id": _f("idlike", required=True),
        "executor_id": _f("idlike", required=True),
        "data": _f("bytes", required=True),
    }
