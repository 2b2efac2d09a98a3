"""The agent's HTTP server: executor API, internal master->agent endpoints, state endpoints.

libprocess serves every endpoint of the ``slave(1)`` process both as ``/slave(1)/<name>`` and,
because it is the delegate, as ``/<name>``; tools use either.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from sandbox.mesos.agent.agent import Agent
from sandbox.mesos.agent.executor_api import make_handler
from sandbox.mesos.agent.internal_api import make_routes
from sandbox.mesos.agent.registration import Registrar
from sandbox.mesos.agent.state_json import VERSION, agent_state
from sandbox.mesos.http import json_response


def build_app(agent: Agent, registrar: Registrar) -> web.Application:
    app = web.Application(client_max_size=64 * 1024 * 1024)
    executor_handler = make_handler(agent)

    async def state(_request: web.Request) -> web.Response:
        return json_response(agent_state(agent))

    async def health(_request: web.Request) -> web.Response:
        return web.Response(status=200)

    async def flags(_request: web.Request) -> web.Response:
        return json_response({"flags": agent.flags.as_strings()})

    async def version(_request: web.Request) -> web.Response:
        return json_response({"version": VERSION, "build_date": "", "build_time": 0.0, "build_user": ""})

    routes: list[Any] = []
    for prefix in ("", "/slave(1)"):
        routes += [
            web.route("*", f"{prefix}/api/v1/executor", executor_handler),
            web.get(f"{prefix}/state", state),
            web.get(f"{prefix}/state.json", state),
            web.get(f"{prefix}/health", health),
            web.get(f"{prefix}/flags", flags),
        ]
    routes.append(web.get("/version", version))
    routes += make_routes(agent, registrar.pinged)
    app.add_routes(routes)
    return app
