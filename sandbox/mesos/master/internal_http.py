"""Agent -> master endpoints of the internal protocol (sandbox/mesos/INTERNAL_PROTOCOL.md).

Plus ``/internal/simulation/...``, test controls for simulated agents.
Errors answer 400 with ``{"error": "<what is wrong>"}``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from sandbox.mesos.http import json_response, method_not_allowed
from sandbox.mesos.master.master import Master
from sandbox.mesos.master.scheduler_http import parse_json_body
from sandbox.mesos.protojson import (
    AgentExecutorMessage,
    AgentExitedExecutor,
    AgentStatusUpdate,
    RegisterAgent,
    ReregisterAgent,
    check,
)

JsonObject = dict[str, Any]


def _error(status: int, message: str) -> web.Response:
    return json_response({"error": message}, status=status)


class InternalEndpoints:
    def __init__(self, master: Master) -> None:
        self.master = master

    def routes(self) -> list[web.AbstractRouteDef]:
        return [
            web.route("*", "/internal/agent/register", self._json(RegisterAgent, self.register)),
            web.route("*", "/internal/agent/reregister", self._json(ReregisterAgent, self.reregister)),
            web.route(
                "*", "/internal/agent/status_update", self._json(AgentStatusUpdate, self.status_update)
            ),
            web.route(
                "*", "/internal/agent/exited_executor", self._json(AgentExitedExecutor, self.exited_executor)
            ),
            web.route(
                "*",
                "/internal/agent/executor_message",
                self._json(AgentExecutorMessage, self.executor_message),
            ),
            web.route("*", "/internal/simulation/agents/{agent_id}/unreachable", self.simulate_unreachable),
        ]

    def _json(
        self, schema: Any, handler: Callable[[JsonObject], web.Response]
    ) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def endpoint(request: web.Request) -> web.StreamResponse:
            if request.method != "POST":
                return method_not_allowed(request)
            try:
                body = check(schema, parse_json_body(await request.read()))
            except (ValueError, UnicodeDecodeError) as error:
                return _error(400, f"invalid request body: {error}")
            return handler(body)

        return endpoint

    def register(self, body: JsonObject) -> web.Response:
        status, answer = self.master.register_agent(
            body["agent_info"], body["agent_url"], body.get("version", "")
        )
        return json_response(answer, status=status)

    def reregister(self, body: JsonObject) -> web.Response:
        status, answer = self.master.reregister_agent(body)
        return json_response(answer, status=status)

    def status_update(self, body: JsonObject) -> web.Response:
        self.master.status_update(
            body["agent_id"]["value"], body["framework_id"]["value"], body["status"], body.get("latest_state")
        )
        return web.Response(status=202)

    def exited_executor(self, body: JsonObject) -> web.Response:
        self.master.exited_executor(
            body["agent_id"]["value"],
            body["framework_id"]["value"],
            body["executor_id"]["value"],
            body["status"],
        )
        return web.Response(status=202)

    def executor_message(self, body: JsonObject) -> web.Response:
        self.master.executor_message(
            body["agent_id"]["value"],
            body["framework_id"]["value"],
            body["executor_id"]["value"],
            body["data"],
        )
        return web.Response(status=202)

    async def simulate_unreachable(self, request: web.Request) -> web.StreamResponse:
        if request.method != "POST":
            return method_not_allowed(request)
        agent = self.master.agents.get(request.match_info["agent_id"])
        if agent is None or not agent.link.simulated:
            return _error(404, "no such simulated agent")
        self.master.mark_unreachable(agent)
        return web.Response(status=202)
