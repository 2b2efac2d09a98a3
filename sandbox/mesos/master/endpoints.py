"""The master's GET endpoints that tools read, and ``POST /master/teardown``."""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from sandbox.mesos.http import bad_request, json_response, method_not_allowed, ok, text_response
from sandbox.mesos.master.auth import (
    READONLY_REALM,
    READWRITE_REALM,
    AuthenticationFailed,
    BasicAuthenticator,
    unauthorized,
)
from sandbox.mesos.master.master import Master
from sandbox.mesos.master.state_json import (
    frameworks_model,
    slaves_model,
    state_model,
    task_model,
    version_json,
)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ReadOnlyEndpoints:
    def __init__(
        self,
        master: Master,
        readonly_auth: BasicAuthenticator | None,
        readwrite_auth: BasicAuthenticator | None,
    ) -> None:
        self.master = master
        self._readonly_auth = readonly_auth
        self._readwrite_auth = readwrite_auth

    def routes(self) -> list[web.AbstractRouteDef]:
        state = self._get(lambda r: state_model(self.master))
        return [
            web.route("*", "/master/state", state),
            web.route("*", "/master/state.json", state),
            web.route("*", "/state", state),
            web.route("*", "/state.json", state),
            web.route(
                "*", "/master/slaves", self._get(lambda r: slaves_model(self.master, r.query.get("slave_id")))
            ),
            web.route(
                "*",
                "/master/frameworks",
                self._get(lambda r: frameworks_model(self.master, r.query.get("framework_id"))),
            ),
            web.route("*", "/master/tasks", self._get(self._tasks)),
            web.route("*", "/master/health", self.health),
            web.route("*", "/health", self.health),
            web.route("*", "/master/redirect", self.redirect),
            web.route("*", "/redirect", self.redirect),
            web.route("*", "/version", self._get(lambda r: version_json(), auth=False)),
            web.route("*", "/master/teardown", self.teardown),
        ]

    def _get(self, build: Callable[[web.Request], Any], *, auth: bool = True) -> Handler:
        async def handler(request: web.Request) -> web.StreamResponse:
            if auth and self._readonly_auth is not None:
                try:
                    self._readonly_auth.principal(request)
                except AuthenticationFailed:
                    return unauthorized(READONLY_REALM)
            if request.method not in ("GET", "HEAD"):
                return method_not_allowed(request, ("GET",))
            body = build(request)
            jsonp = request.query.get("jsonp")
            if jsonp:
                return web.Response(text=f"{jsonp}({json.dumps(body)});", content_type="text/javascript")
            return json_response(body)

        return handler

    def _tasks(self, request: web.Request) -> Any:
        tasks = [
            task_model(task)
            for framework in self.master.frameworks.values()
            for task in [*framework.tasks.values(), *framework.completed_tasks]
        ]
        return {"tasks": tasks}

    async def health(self, request: web.Request) -> web.StreamResponse:
        if request.method not in ("GET", "HEAD"):
            return method_not_allowed(request, ("GET",))
        return ok()

    async def redirect(self, request: web.Request) -> web.StreamResponse:
        info = self.master.info
        host = info.get("hostname") or info["address"]["ip"]
        return text_response(307, "", headers={"Location": f"//{host}:{info['port']}"})

    async def teardown(self, request: web.Request) -> web.StreamResponse:
        if self._readwrite_auth is not None:
            try:
                self._readwrite_auth.principal(request)
            except AuthenticationFailed:
                return unauthorized(READWRITE_REALM)
        if request.method != "POST":
            return method_not_allowed(request)
        body = (await request.read()).decode("utf-8", errors="replace")
        try:
            values = dict(urllib.parse.parse_qsl(body, strict_parsing=bool(body), keep_blank_values=True))
        except ValueError as error:
            return bad_request(f"Unable to decode query string: {error}")
        framework_id = values.get("frameworkId")
        if framework_id is None:
            return bad_request("Missing 'frameworkId' query parameter in the request body")
        framework = self.master.frameworks.get(framework_id)
        if framework is None:
            return bad_request("No framework found with specified ID")
        self.master.remove_framework(framework)
        return ok()
