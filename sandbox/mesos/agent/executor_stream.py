"""The event stream of one subscribed executor: a chunked RecordIO HTTP response.

Events are queued by the agent and written by the request handler that owns the response, so
the agent never blocks on a slow executor. The stream ends when the agent closes it (new
subscription, shutdown, agent exit) or when the executor's connection goes away.
HEARTBEAT events start after 30 minutes, as in Mesos (DEFAULT_EXECUTOR_HEARTBEAT_INTERVAL):
some executor libraries treat an early HEARTBEAT as a protocol error.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from aiohttp import web

from sandbox.mesos.recordio import encode_json
from sandbox.mesos.wire import JSON_CONTENT_TYPE

log = logging.getLogger("mesos.agent.executor_stream")

HEARTBEAT_INTERVAL = 30 * 60.0
_CONNECTION_CHECK_INTERVAL = 0.5


class ExecutorStream:
    def __init__(
        self, request: web.Request, name: str, heartbeat_interval: float = HEARTBEAT_INTERVAL
    ) -> None:
        self._request = request
        self._name = name
        self._queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        self._closed = asyncio.Event()
        self._heartbeat_interval = heartbeat_interval

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    def send(self, event: dict[str, Any]) -> None:
        if not self._closed.is_set():
            self._queue.put_nowait(event)

    def close(self) -> None:
        """Finish the response after the events already queued."""
        if not self._closed.is_set():
            self._queue.put_nowait(None)

    async def wait_closed(self) -> None:
        await self._closed.wait()

    def _connection_gone(self) -> bool:
        transport = self._request.transport
        return transport is None or transport.is_closing()

    async def serve(self) -> web.StreamResponse:
        """Run the stream until it is closed; call from the SUBSCRIBE request handler."""
        response = web.StreamResponse(status=200, headers={"Content-Type": JSON_CONTENT_TYPE})
        response.enable_chunked_encoding()
        loop = asyncio.get_running_loop()
        next_heartbeat = loop.time() + self._heartbeat_interval
        try:
            await response.prepare(self._request)
            while True:
                timeout = max(0.0, min(_CONNECTION_CHECK_INTERVAL, next_heartbeat - loop.time()))
                try:
                    event = await asyncio.wait_for(self._queue.get(), timeout)
                except TimeoutError:
                    if self._connection_gone():
                        log.info("Executor %s closed its connection", self._name)
                        break
                    if loop.time() >= next_heartbeat:
                        await response.write(encode_json({"type": "HEARTBEAT"}))
                        next_heartbeat = loop.time() + self._heartbeat_interval
                    continue
                if event is None:
                    break
                await response.write(encode_json(event))
        except (ConnectionError, RuntimeError) as error:
            log.info("Stream to executor %s ended: %s", self._name, error or type(error).__name__)
        finally:
            self._closed.set()
            with contextlib.suppress(ConnectionError, RuntimeError):
                await response.write_eof()
        return response
