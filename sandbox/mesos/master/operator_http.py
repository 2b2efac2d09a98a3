"""The v1 operator API, ``POST /api/v1`` (GET_STATE, GET_AGENTS, GET_FRAMEWORKS, GET_TASKS, ...).

SUBSCRIBE streams SUBSCRIBED{get_state} followed by HEARTBEATs and TASK_ADDED/TASK_UPDATED,
FRAMEWORK_ADDED/UPDATED/REMOVED and AGENT_ADDED/REMOVED events. Calls the stand-in does not
implement (reservations, volumes, quota, maintenance, files, logging) answer 501.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from sandbox.mesos.http import (
    bad_request,
    check_call_headers,
    json_response,
    negotiate_json,
    ok,
    text_response,
)
from sandbox.mesos.master.auth import READWRITE_REALM, AuthenticationFailed, BasicAuthenticator, unauthorized
from sandbox.mesos.master.master import Master
from sandbox.mesos.master.scheduler_http import read_call
from sandbox.mesos.master.state_json import (
    get_agents,
    get_executors,
    get_frameworks,
    get_state,
    get_tasks,
    version_json,
)
from sandbox.mesos.master.streams import EventStream
from sandbox.mesos.protojson import OperatorCall
from sandbox.mesos.wire import JSON_CONTENT_TYPE

JsonObject = dict[str, Any]

_REQUIRED_SUB_MESSAGE = {
    "GET_METRICS": "get_metrics",
    "SET_LOGGING_LEVEL": "set_logging_level",
    "LIST_FILES": "list_files",
    "READ_FILE": "read_file",
    "TEARDOWN": "teardown",
    "MARK_AGENT_GONE": "mark_agent_gone",
}


class OperatorEndpoint:
    def __init__(self, master: Master, authenticator: BasicAuthenticator | None) -> None:
        self.master = master
        self.authenticator = authenticator

    async def handle(self, request: web.Request) -> web.StreamResponse:
        if self.authenticator is not None:
            try:
                self.authenticator.principal(request)
            except AuthenticationFailed:
                return unauthorized(READWRITE_REALM)
        problem = check_call_headers(request)
        if problem is not None:
            return problem
        call, problem = await read_call(request, OperatorCall, "Call")
        if problem is not None:
            return problem
        assert call is not None
        kind = call.get("type")
        if kind is None:
            return bad_request("Failed to validate master::Call: Expecting 'type' to be present")
        sub = _REQUIRED_SUB_MESSAGE.get(kind)
        if sub is not None and sub not in call:
            return bad_request(f"Failed to validate master::Call: Expecting '{sub}' to be present")
        problem = negotiate_json(request)
        if problem is not None:
            return problem
        return await self._dispatch(request, call, kind)

    async def _dispatch(self, request: web.Request, call: JsonObject, kind: str) -> web.StreamResponse:
        master = self.master
        if kind == "GET_HEALTH":
            return json_response({"type": kind, "get_health": {"healthy": True}})
        if kind == "GET_VERSION":
            return json_response({"type": kind, "get_version": {"version_info": version_json()}})
        if kind == "GET_FLAGS":
            flags = [{"name": k, "value": v} for k, v in sorted(master.config.raw_flags.items())]
            return json_response({"type": kind, "get_flags": {"flags": flags}})
        if kind == "GET_MASTER":
            return json_response(
                {
                    "type": kind,
                    "get_master": {
                        "master_info": master.info,
                        "start_time": master.start_time,
                        "elected_time": master.elected_time,
                    },
                }
            )
        if kind == "GET_STATE":
            return json_response({"type": kind, "get_state": get_state(master)})
        if kind == "GET_AGENTS":
            return json_response({"type": kind, "get_agents": get_agents(master)})
        if kind == "GET_FRAMEWORKS":
            return json_response({"type": kind, "get_frameworks": get_frameworks(master)})
        if kind == "GET_TASKS":
            return json_response({"type": kind, "get_tasks": get_tasks(master)})
        if kind == "GET_EXECUTORS":
            return json_response({"type": kind, "get_executors": get_executors(master)})
        if kind == "GET_ROLES":
            roles = sorted({r for f in master.frameworks.values() for r in f.roles()})
            return json_response(
                {"type": kind, "get_roles": {"roles": [{"name": r, "weight": 1.0} for r in roles]}}
            )
        if kind == "TEARDOWN":
            framework = master.frameworks.get(call["teardown"]["framework_id"]["value"])
            if framework is None:
                return bad_request("No framework found with specified ID")
            master.remove_framework(framework)
            return ok()
        if kind == "MARK_AGENT_GONE":
            if not master.mark_gone(call["mark_agent_gone"]["agent_id"]["value"]):
                return bad_request("Agent not found")
            return ok()
        if kind == "SUBSCRIBE":
            return await self._subscribe(request)
        return text_response(501, f"{kind} is not implemented by this master")

    async def _subscribe(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(status=200, headers={"Content-Type": JSON_CONTENT_TYPE})
        response.enable_chunked_encoding()
        await response.prepare(request)
        stream = EventStream(
            response,
            self.master.config.heartbeat_interval,
            {"type": "HEARTBEAT"},
            self.master.operator_stream_closed,
            request.transport,
        )
        self.master.operator_subscribe(stream)
        await stream.run()
        return response
