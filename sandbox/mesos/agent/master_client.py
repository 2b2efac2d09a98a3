"""The agent's calls to the master over the internal protocol (sandbox/mesos/INTERNAL_PROTOCOL.md).

Real Mesos uses libprocess messages between agent and master; the stand-in uses JSON over HTTP
on the master's port. Every call is a POST; failures raise MasterUnreachable (network, 5xx)
or MasterRejected (the master refused this agent, e.g. 409 when it was marked gone).
"""

from __future__ import annotations

import json
from typing import Any

import aiohttp

__all__ = ["MasterClient", "MasterRejected", "MasterUnreachable", "parse_master_address"]

VERSION = "1.11.0"


def parse_master_address(master: str) -> str:
    """``--master`` (``host:port``, ``http://host:port`` or ``file:///path`` holding either)."""
    value = master.strip()
    if value.startswith("file://"):
        with open(value[len("file://") :], encoding="utf-8") as handle:
            value = handle.read().strip()
    if value.startswith("zk://"):
        raise ValueError("--master: ZooKeeper detection (zk://) is not supported by the stand-in agent")
    if value.startswith(("http://", "https://")):
        return value.rstrip("/")
    host, sep, port = value.rpartition(":")
    if not sep or not host:
        host, port = value, "5050"
    if not port.isdigit() or not host:
        raise ValueError(f"--master: expected host:port, got {master!r}")
    return f"http://{host}:{int(port)}"


class MasterUnreachable(Exception):
    """The master did not answer (or answered 5xx); try again later."""


class MasterRejected(Exception):
    """The master answered 4xx: it will not accept this call from this agent."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status


class MasterClient:
    def __init__(self, master: str, timeout: float = 10.0) -> None:
        self.base_url = parse_master_address(master)
        self._session: aiohttp.ClientSession | None = None
        self._timeout = aiohttp.ClientTimeout(total=timeout)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _post(self, path: str, body: dict[str, Any]) -> Any:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        try:
            async with self._session.post(
                self.base_url + path,
                data=json.dumps(body),
                headers={"Content-Type": "application/json", "Accept": "application/json"},
            ) as response:
                text = await response.text()
                if response.status >= 500:
                    raise MasterUnreachable(f"{path}: HTTP {response.status}: {text[:200]}")
                if response.status >= 400:
                    raise MasterRejected(response.status, text[:500])
                return json.loads(text) if text.strip() else None
        except (aiohttp.ClientError, TimeoutError, OSError) as error:
            raise MasterUnreachable(f"{path}: {error or type(error).__name__}") from error

    async def register(self, agent_info: dict[str, Any], agent_url: str) -> tuple[str, float]:
        answer = await self._post(
            "/internal/agent/register", {"agent_info": agent_info, "agent_url": agent_url, "version": VERSION}
        )
        return str(answer["agent_id"]["value"]), float(answer.get("ping_interval_seconds", 15.0))

    async def reregister(
        self,
        agent_info: dict[str, Any],
        agent_url: str,
        frameworks: list[dict[str, Any]],
        executors: list[dict[str, Any]],
        tasks: list[dict[str, Any]],
    ) -> tuple[str, float]:
        answer = await self._post(
            "/internal/agent/reregister",
            {
                "agent_info": agent_info,
                "agent_url": agent_url,
                "version": VERSION,
                "frameworks": frameworks,
                "executors": executors,
                "tasks": tasks,
            },
        )
        return str(answer["agent_id"]["value"]), float(answer.get("ping_interval_seconds", 15.0))

    async def status_update(self, agent_id: str, update: dict[str, Any]) -> None:
        await self._post("/internal/agent/status_update", {"agent_id": {"value": agent_id}, **update})

    async def exited_executor(self, agent_id: str, framework_id: str, executor_id: str, status: int) -> None:
        await self._post(
            "/internal/agent/exited_executor",
            {
                "agent_id": {"value": agent_id},
                "framework_id": {"value": framework_id},
                "executor_id": {"value": executor_id},
                "status": status,
            },
        )

    async def executor_message(self, agent_id: str, framework_id: str, executor_id: str, data: str) -> None:
        await self._post(
            "/internal/agent/executor_message",
            {
                "agent_id": {"value": agent_id},
                "framework_id": {"value": framework_id},
                "executor_id": {"value": executor_id},
                "data": data,
            },
        )
