"""``POST /api/v1/executor``: the v1 executor HTTP API, checks in Mesos' order (slave/http.cpp).

503 while the agent cannot take executors yet; 405 / 400 / 415 for method and Content-Type;
400 for JSON that does not convert into an executor Call or fails validation; 406 when a
SUBSCRIBE does not accept JSON; 400 for unknown framework or executor; 403 for calls from an
executor that has not subscribed; then 200 + event stream for SUBSCRIBE and 202 for the rest.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from sandbox.mesos import protojson
from sandbox.mesos.agent.agent import Agent, AgentState
from sandbox.mesos.agent.executor_stream import ExecutorStream
from sandbox.mesos.agent.model import ExecutorState
from sandbox.mesos.http import (
    accepted,
    accepts_media_type,
    bad_request,
    check_call_headers,
    forbidden,
    text_response,
)
from sandbox.mesos.wire import JSON_CONTENT_TYPE, PROTOBUF_CONTENT_TYPE, b64decode

CALL_TYPES = ("UNKNOWN", "SUBSCRIBE", "UPDATE", "MESSAGE", "HEARTBEAT")
Field = protojson.Field


def _update_schema() -> dict[str, protojson.Field]:
    return {"status": Field("message", required=True, message=protojson.TaskStatus)}


def _subscribe_schema() -> dict[str, protojson.Field]:
    return {
        "unacknowledged_tasks": Field("message", repeated=True, message=protojson.TaskInfo),
        "unacknowledged_updates": Field("message", repeated=True, message=_update_schema),
    }


def executor_call_schema() -> dict[str, protojson.Field]:
    """mesos.v1.executor.Call: executor_id and framework_id are required."""
    return {
        "executor_id": Field("message", required=True, message=protojson.ID),
        "framework_id": Field("message", required=True, message=protojson.ID),
        "type": Field("enum", values=frozenset(CALL_TYPES)),
        "subscribe": Field("message", message=_subscribe_schema),
        "update": Field("message", message=_update_schema),
        "message": Field("message", message=lambda: {"data": Field("bytes", required=True)}),
    }


def validate_call(call: dict[str, Any]) -> str | None:
    """common/validation.cpp validateExecutorCall; returns the error, or None when valid."""
    kind = call.get("type")
    if kind is None:
        return "Expecting 'type' to be present"
    if kind == "SUBSCRIBE" and "subscribe" not in call:
        return "Expecting 'subscribe' to be present"
    if kind == "MESSAGE" and "message" not in call:
        return "Expecting 'message' to be present"
    if kind != "UPDATE":
        return None
    if "update" not in call:
        return "Expecting 'update' to be present"
    status = call["update"]["status"]
    if "uuid" not in status:
        return "Expecting 'uuid' to be present"
    if len(b64decode(status["uuid"])) != 16:
        return "Not a valid UUID"
    executor_id = call["executor_id"]["value"]
    framework_id = call["framework_id"]["value"]
    if "executor_id" in status and status["executor_id"]["value"] != executor_id:
        return (
            f"ExecutorID in Call: {executor_id} does not match ExecutorID in TaskStatus: "
            f"{status['executor_id']['value']}"
        )
    if status.get("source") != "SOURCE_EXECUTOR":
        return (
            f"Received Call from executor {executor_id} of framework {framework_id} "
            "with invalid source, expecting 'SOURCE_EXECUTOR'"
        )
    if status["state"] == "TASK_STAGING":
        return (
            f"Received TASK_STAGING from executor {executor_id} of framework {framework_id} "
            "which is not allowed"
        )
    return None


def _recovering() -> web.Response:
    return text_response(503, "Agent has not finished recovery")


def make_handler(agent: Agent) -> Any:
    async def handle(request: web.Request) -> web.StreamResponse:
        if not agent.reconnect_allowed:
            return _recovering()
        problem = check_call_headers(request)
        if problem is not None:
            return problem
        body = await request.read()
        try:
            document = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as error:
            return bad_request(f"Failed to parse body into JSON: {error}")
        try:
            call = protojson.check(executor_call_schema, document)
        except protojson.ProtoJsonError as error:
            return bad_request(f"Failed to convert JSON into Call protobuf: {error}")
        invalid = validate_call(call)
        if invalid is not None:
            return bad_request(f"Failed to validate Executor::Call: {invalid}")

        kind = call["type"]
        if kind == "SUBSCRIBE":
            if not accepts_media_type(request, JSON_CONTENT_TYPE):
                return text_response(
                    406, f"Expecting 'Accept' to allow '{PROTOBUF_CONTENT_TYPE}' or '{JSON_CONTENT_TYPE}'"
                )
        elif kind == "HEARTBEAT":
            return accepted()
        elif agent.state == AgentState.RECOVERING:
            return _recovering()

        framework_id = call["framework_id"]["value"]
        executor_id = call["executor_id"]["value"]
        framework, executor = agent.executor_of(framework_id, executor_id)
        if framework is None:
            return bad_request("Framework cannot be found")
        if executor is None:
            return bad_request("Executor cannot be found")
        if executor.state == ExecutorState.REGISTERING and kind != "SUBSCRIBE":
            return forbidden("Executor is not subscribed")

        if kind == "SUBSCRIBE":
            stream = ExecutorStream(request, f"{executor_id} of framework {framework_id}")
            agent.subscribe(framework, executor, call["subscribe"], stream)
            try:
                return await stream.serve()
            finally:
                agent.stream_closed(framework_id, executor_id, stream)
        if kind == "UPDATE":
            agent.executor_update(framework, executor, call["update"]["status"])
            return accepted()
        if kind == "MESSAGE":
            agent.executor_message(framework, executor, call["message"]["data"])
            return accepted()
        return text_response(501, "")

    return handle
