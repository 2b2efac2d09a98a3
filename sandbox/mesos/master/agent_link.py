"""How the master talks to one agent (INTERNAL_PROTOCOL.md, "Master -> agent").

Real Mesos sends libprocess messages; the stand-in POSTs JSON to the agent's ``agent_url``.
Messages to one agent are delivered in the order they were sent (run_task before kill_task),
by one sender task per agent. A message that cannot be delivered is dropped, as a message to
a disconnected Mesos agent is: the agent's re-registration and the framework's
reconciliation repair the state.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

import aiohttp

from sandbox.mesos.wire import dumps

log = logging.getLogger(__name__)

JsonObject = dict[str, Any]


class AgentLink:
    """Messages the master sends to an agent. Methods return immediately."""

    simulated = False

    def run_task(
        self, framework_info: JsonObject, task: JsonObject, executor_info: JsonObject | None
    ) -> None:
        self.send(
            "run_task", {"framework_info": framework_info, "task": task, "executor_info": executor_info}
        )

    def run_task_group(
        self, framework_info: JsonObject, executor_info: JsonObject, tasks: list[JsonObject]
    ) -> None:
        self.send(
            "run_task_group",
            {
                "framework_info": framework_info,
                "executor_info": executor_info,
                "task_group": {"tasks": tasks},
            },
        )

    def kill_task(self, framework_id: str, task_id: str, kill_policy: JsonObject | None) -> None:
        body: JsonObject = {"framework_id": {"value": framework_id}, "task_id": {"value": task_id}}
        if kill_policy is not None:
            body["kill_policy"] = kill_policy
        self.send("kill_task", body)

    def shutdown_executor(self, framework_id: str, executor_id: str) -> None:
        self.send(
            "shutdown_executor",
            {"framework_id": {"value": framework_id}, "executor_id": {"value": executor_id}},
        )

    def shutdown_framework(self, framework_id: str) -> None:
        self.send("shutdown_framework", {"framework_id": {"value": framework_id}})

    def acknowledge(self, framework_id: str, task_id: str, uuid: str) -> None:
        self.send(
            "acknowledge",
            {"framework_id": {"value": framework_id}, "task_id": {"value": task_id}, "uuid": uuid},
        )

    def framework_message(self, framework_id: str, executor_id: str, data: str) -> None:
        self.send(
            "framework_message",
            {"framework_id": {"value": framework_id}, "executor_id": {"value": executor_id}, "data": data},
        )

    def update_framework(self, framework_info: JsonObject) -> None:
        self.send("update_framework", {"framework_info": framework_info})

    def send(self, kind: str, body: JsonObject) -> None:
        raise NotImplementedError

    async def ping(self) -> bool:
        raise NotImplementedError

    def set_url(self, url: str) -> None:
        """A re-registered agent may come back on another address."""

    async def close(self) -> None:
        """Stop sending; pending messages are dropped."""


class HttpAgentLink(AgentLink):
    """Delivers messages to a real stand-in agent over HTTP, one at a time, in order."""

    def __init__(
        self, session: aiohttp.ClientSession, url: str, agent_id: str, timeout: float = 10.0
    ) -> None:
        self._session = session
        self._url = url.rstrip("/")
        self._agent_id = agent_id
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._queue: asyncio.Queue[tuple[str, bytes]] = asyncio.Queue()
        self._sender = asyncio.get_running_loop().create_task(self._deliver(), name=f"agent-link-{agent_id}")

    @property
    def url(self) -> str:
        return self._url

    def set_url(self, url: str) -> None:
        self._url = url.rstrip("/")

    def send(self, kind: str, body: JsonObject) -> None:
        self._queue.put_nowait((kind, dumps(body)))

    async def _deliver(self) -> None:
        while True:
            kind, payload = await self._queue.get()
            url = f"{self._url}/internal/master/{kind}"
            try:
                await self._post(url, kind, payload)
            finally:
                self._queue.task_done()

    async def _post(self, url: str, kind: str, payload: bytes) -> None:
        try:
            async with self._session.post(
                url, data=payload, headers={"Content-Type": "application/json"}, timeout=self._timeout
            ) as response:
                await response.read()
                if response.status >= 300:
                    log.warning("agent %s answered %s to %s", self._agent_id, response.status, kind)
        except (aiohttp.ClientError, TimeoutError, OSError) as error:
            log.warning("dropping %s for agent %s: %s", kind, self._agent_id, error)

    async def ping(self) -> bool:
        try:
            async with self._session.get(
                f"{self._url}/internal/master/ping", timeout=self._timeout
            ) as response:
                await response.read()
                return response.status == 200
        except (aiohttp.ClientError, TimeoutError, OSError):
            return False

    async def close(self) -> None:
        # Give already queued messages (e.g. a final shutdown) a moment to go out.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._queue.join(), 2.0)
        self._sender.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._sender
