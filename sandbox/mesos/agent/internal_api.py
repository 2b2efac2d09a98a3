"""Master -> agent messages of the internal protocol (sandbox/mesos/INTERNAL_PROTOCOL.md).

Each POST answers 202 at once, like a libprocess message that has been delivered; what it
causes comes back to the master as status updates. A body that is not the expected JSON is
answered 400 naming the problem (a master bug, never a framework's).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from sandbox.mesos.agent.agent import Agent
from sandbox.mesos.http import accepted, bad_request

log = logging.getLogger("mesos.agent.internal")


class BadMessage(ValueError):
    pass


def _id(body: dict[str, Any], key: str) -> str:
    value = body.get(key)
    if isinstance(value, dict):
        value = value.get("value")
    if not isinstance(value, str) or not value:
        raise BadMessage(f'\'{key}\' must be an id ({{"value": "..."}})')
    return value


def _object(body: dict[str, Any], key: str) -> dict[str, Any]:
    value = body.get(key)
    if not isinstance(value, dict):
        raise BadMessage(f"'{key}' must be a JSON object")
    return value


def _optional_object(body: dict[str, Any], key: str) -> dict[str, Any] | None:
    return None if body.get(key) is None else _object(body, key)


def _string(body: dict[str, Any], key: str) -> str:
    value = body.get(key)
    if not isinstance(value, str):
        raise BadMessage(f"'{key}' must be a string")
    return value


def _handlers(agent: Agent) -> dict[str, Callable[[dict[str, Any]], None]]:
    def run_task(body: dict[str, Any]) -> None:
        framework_info = _object(body, "framework_info")
        task = _object(body, "task")
        _id(framework_info, "id")
        _id(task, "task_id")
        agent.run_task(framework_info, task, _optional_object(body, "executor_info"))

    def run_task_group(body: dict[str, Any]) -> None:
        framework_info = _object(body, "framework_info")
        executor_info = _object(body, "executor_info")
        group = _object(body, "task_group")
        _id(framework_info, "id")
        if not isinstance(group.get("tasks"), list) or not group["tasks"]:
            raise BadMessage("'task_group.tasks' must be a non-empty array")
        agent.run_task(framework_info, None, executor_info, task_group=group)

    def kill_task(body: dict[str, Any]) -> None:
        agent.kill_task(
            _id(body, "framework_id"),
            {"value": _id(body, "task_id")},
            _optional_object(body, "kill_policy"),
        )

    def shutdown_executor(body: dict[str, Any]) -> None:
        agent.shutdown_executor(_id(body, "framework_id"), _id(body, "executor_id"))

    def shutdown_framework(body: dict[str, Any]) -> None:
        agent.shutdown_framework(_id(body, "framework_id"))

    def acknowledge(body: dict[str, Any]) -> None:
        agent.acknowledge(_id(body, "framework_id"), _id(body, "task_id"), _string(body, "uuid"))

    def framework_message(body: dict[str, Any]) -> None:
        agent.framework_message(_id(body, "framework_id"), _id(body, "executor_id"), _string(body, "data"))

    def update_framework(body: dict[str, Any]) -> None:
        framework_info = _object(body, "framework_info")
        _id(framework_info, "id")
        agent.update_framework(framework_info)

    def shutdown(body: dict[str, Any]) -> None:
        message = body.get("message", "")
        agent.shutdown_requested(message if isinstance(message, str) else "")

    return {
        "shutdown": shutdown,
        "run_task": run_task,
        "run_task_group": run_task_group,
        "kill_task": kill_task,
        "shutdown_executor": shutdown_executor,
        "shutdown_framework": shutdown_framework,
        "acknowledge": acknowledge,
        "framework_message": framework_message,
        "update_framework": update_framework,
    }


def make_routes(agent: Agent, on_ping: Callable[[], None]) -> list[web.RouteDef]:
    handlers = _handlers(agent)

    def message_handler(kind: str) -> Callable[[web.Request], Awaitable[web.Response]]:
        async def handle(request: web.Request) -> web.Response:
            try:
                body = json.loads(await request.read())
                if not isinstance(body, dict):
                    raise BadMessage("expected a JSON object")
                handlers[kind](body)
            except (BadMessage, ValueError) as error:
                log.error("Bad %s message from the master: %s", kind, error)
                return bad_request(f"{kind}: {error}")
            return accepted()

        return handle

    async def ping(_request: web.Request) -> web.Response:
        on_ping()
        return web.Response(status=200)

    routes = [web.post(f"/internal/master/{kind}", message_handler(kind)) for kind in handlers]
    routes.append(web.get("/internal/master/ping", ping))
    return routes
