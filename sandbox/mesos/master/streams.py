"""Long-lived RecordIO event streams (the scheduler SUBSCRIBE response, operator SUBSCRIBE).

Events are framed and queued synchronously by the master (so the order of events is the order
of the master's decisions) and written by the request handler's task, several records per
chunk when they pile up. Heartbeats go out on a fixed cadence, the first one immediately after
the first event, as Mesos' Heartbeater does.

Writes are coalesced: the first event after a quiet spell goes out on the next loop tick, but
a busy stream is written at most once per ``FLUSH_INTERVAL``, everything queued meanwhile in
one chunk (a chunk may hold several RecordIO records). Under load (thousands of updates per
second) this turns one send() and one reader wake-up per event into one per batch, at the
price of at most a couple of milliseconds of extra latency.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Callable
from typing import Any

from aiohttp import web

from sandbox.mesos.recordio import encode

log = logging.getLogger(__name__)

# A subscriber that stops reading must not make the master buffer without end.
MAX_PENDING_BYTES = 64 * 1024 * 1024
# Minimum spacing of writes on a busy stream (see the module docstring).
FLUSH_INTERVAL = 0.002

JsonObject = dict[str, Any]

# json.dumps builds a new encoder whenever separators are given; one shared encoder saves that
# on every event (same compact output as recordio.encode_json).
_COMPACT = json.JSONEncoder(separators=(",", ":"))


def encode_event(event: JsonObject) -> bytes:
    """One event framed as a RecordIO record."""
    return encode(_COMPACT.encode(event).encode("utf-8"))


class EventStream:
    """One chunked RecordIO response. ``send`` never blocks; ``run`` does the writing."""

    def __init__(
        self,
        response: web.StreamResponse,
        heartbeat_interval: float,
        heartbeat_event: JsonObject,
        on_closed: Callable[[EventStream], None] | None = None,
        transport: asyncio.BaseTransport | None = None,
    ) -> None:
        self.response = response
        self._transport = transport
        self._interval = heartbeat_interval
        self._heartbeat = encode_event(heartbeat_event)
        self._pending: list[bytes] = []
        self._pending_bytes = 0
        self._wakeup = asyncio.Event()
        self._closing = False
        self.closed = False
        self._on_closed = on_closed
        self._heartbeats_started = False
        self._next_heartbeat = 0.0
        self._timer: asyncio.TimerHandle | None = None
        # Set by the master once the subscription is accepted.
        self.framework_id: str | None = None
        self.stream_id: str | None = None

    def send(self, event: JsonObject) -> None:
        self.send_record(encode_event(event))

    def send_record(self, framed: bytes) -> None:
        if self._closing or self.closed:
            return
        self._pending.append(framed)
        self._pending_bytes += len(framed)
        if self._pending_bytes > MAX_PENDING_BYTES:
            log.warning("subscriber is not reading its event stream; dropping the connection")
            self._pending.clear()
            self._pending_bytes = 0
            self.close()
            if self._transport is not None:
                # The writer may be blocked on a full socket; aborting unblocks it.
                self._transport.abort()
        self._wakeup.set()

    def start_heartbeats(self) -> None:
        """Queue the first HEARTBEAT now; later ones follow every interval, on a fixed cadence."""
        if self._heartbeats_started or self._closing or self.closed:
            return
        self._heartbeats_started = True
        self.send_record(self._heartbeat)
        loop = asyncio.get_running_loop()
        self._next_heartbeat = loop.time() + self._interval
        self._timer = loop.call_at(self._next_heartbeat, self._heartbeat_due)

    def _heartbeat_due(self) -> None:
        if self._closing or self.closed:
            return
        self.send_record(self._heartbeat)
        self._next_heartbeat += self._interval
        self._timer = asyncio.get_running_loop().call_at(self._next_heartbeat, self._heartbeat_due)

    def close(self) -> None:
        """End the stream after what is already queued has been written."""
        self._closing = True
        self._wakeup.set()

    async def run(self) -> None:
        """Write until closed by the master or by the client going away."""
        try:
            while True:
                if not self._pending and not self._closing:
                    await self._wakeup.wait()
                    # Let events decided in the same burst join this write: one chunk, one
                    # syscall, instead of one per event.
                    await asyncio.sleep(0)
                self._wakeup.clear()
                if self._pending:
                    chunk = b"".join(self._pending)
                    self._pending.clear()
                    self._pending_bytes = 0
                    await self.response.write(chunk)
                    if not self._closing:
                        # Let the next burst gather before writing again.
                        await asyncio.sleep(FLUSH_INTERVAL)
                if self._closing:
                    break
            with contextlib.suppress(ConnectionError, RuntimeError):
                await self.response.write_eof()
        except (ConnectionError, RuntimeError) as error:
            log.info("event stream closed by the client: %s", error)
        finally:
            self.closed = True
            self._pending.clear()
            if self._timer is not None:
                self._timer.cancel()
            if self._on_closed is not None:
                callback, self._on_closed = self._on_closed, None
                callback(self)
