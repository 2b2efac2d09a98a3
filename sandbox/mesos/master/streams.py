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
# on every event (same compact output as recordio.encode_json). Events are trees built from
# JSON (never cyclic), so the encoder's cycle bookkeeping is skipped.
_COMPACT = json.JSONEncoder(separators=(",", ":"), check_circular=False)


def encode_event(event: JsonObject) -> bytes:
    """One event framed as a RecordIO record."""
    return encode(_COMPACT.encode(event).encode("utf-8"))


_encode_string = json.encoder.encode_basestring_ascii  # what _COMPACT uses (ensure_ascii)


class OffersEncoder:
    """Encodes OFFERS events as encode_event does, byte for byte, reusing shared JSON.

    Offers repeat a lot of JSON: every offer of an agent carries the same URL and attributes
    objects, and identical agents share one resources list (Resources.to_json is memoized).
    The text of such lists and objects is remembered by identity, with a reference that keeps
    the object (and so its id) alive; the memory is bounded by forgetting everything at
    ``max_remembered`` entries. Values of offers are never mutated after being sent.
    """

    def __init__(self, max_remembered: int = 100_000) -> None:
        self._texts: dict[int, tuple[Any, str]] = {}
        self._max = max_remembered
        self._keys: dict[str, str] = {}  # key -> '"key":'

    def remember(self, value: JsonObject | list[Any]) -> None:
        """Encode a list or object that offers will share, ahead of the first OFFERS event."""
        self._encode(value)

    def _encode(self, value: Any) -> str:
        if type(value) is str:
            return _encode_string(value)
        if type(value) is dict and len(value) == 1 and type(value.get("value")) is str:
            # An id ({"value": "..."}): usually unique, not worth remembering.
            return '{"value":' + _encode_string(value["value"]) + "}"
        if type(value) is not dict and type(value) is not list:
            return _COMPACT.encode(value)
        known = self._texts.get(id(value))
        if known is not None and known[0] is value:
            return known[1]
        text = _COMPACT.encode(value)
        if len(self._texts) >= self._max:
            self._texts.clear()
        self._texts[id(value)] = (value, text)
        return text

    def encode(self, offers: list[JsonObject]) -> bytes:
        """The framed record of ``{"type": "OFFERS", "offers": {"offers": offers}}``."""
        texts = self._texts
        keys = self._keys
        parts = ['{"type":"OFFERS","offers":{"offers":[']
        append = parts.append
        separator = ""
        for offer in offers:
            append(separator)
            separator = ","
            start = len(parts)
            opening = "{"
            for key, value in offer.items():
                key_text = keys.get(key)
                if key_text is None:
                    if type(key) is not str:
                        # Not what offers hold; the encoder knows what to do with such keys.
                        del parts[start:]
                        append(_COMPACT.encode(offer))
                        break
                    key_text = keys[key] = _encode_string(key) + ":"
                append(opening)
                opening = ","
                append(key_text)
                known = texts.get(id(value))
                if known is not None and known[0] is value:
                    append(known[1])
                else:
                    append(self._encode(value))
            else:
                append("}" if opening == "," else "{}")
        append("]}}")
        return encode_record("".join(parts))


# The status an executor sends on each state change, in the order the stand-in's executors
# (and the simulated ones) write it.
_EXECUTOR_STATUS_KEYS = ("task_id", "state", "source", "agent_id", "executor_id", "timestamp", "uuid")
_EXECUTOR_STATUS_UPDATE = (
    '{"type":"UPDATE","update":{"status":{"task_id":{"value":%s},"state":%s,"source":%s,'
    '"agent_id":{"value":%s},"executor_id":{"value":%s},"timestamp":%s,"uuid":%s}}}'
)


def _id_value(value: Any) -> str | None:
    """The string of an id ``{"value": "..."}``, or None for anything else."""
    if type(value) is dict and len(value) == 1:
        inner = value.get("value")
        if type(inner) is str:
            return inner
    return None


def encode_update_event(status: JsonObject) -> bytes:
    """``encode_event({"type": "UPDATE", "update": {"status": status}})``, byte for byte.

    Status updates are the most frequent event. The common executor status (see
    _EXECUTOR_STATUS_KEYS) is written through a template, three times cheaper than the
    encoder; any other status goes through the encoder.
    """
    if tuple(status) == _EXECUTOR_STATUS_KEYS:
        task_id = _id_value(status["task_id"])
        agent_id = _id_value(status["agent_id"])
        executor_id = _id_value(status["executor_id"])
        state, source, timestamp, uuid = (
            status["state"],
            status["source"],
            status["timestamp"],
            status["uuid"],
        )
        if (
            task_id is not None
            and agent_id is not None
            and executor_id is not None
            and type(state) is str
            and type(source) is str
            and type(uuid) is str
            and type(timestamp) is float
            and timestamp - timestamp == 0.0  # finite: the encoder writes repr()
        ):
            text = _EXECUTOR_STATUS_UPDATE % (
                _encode_string(task_id),
                _encode_string(state),
                _encode_string(source),
                _encode_string(agent_id),
                _encode_string(executor_id),
                float.__repr__(timestamp),
                _encode_string(uuid),
            )
            return encode_record(text)
    return encode_event({"type": "UPDATE", "update": {"status": status}})


def encode_record(text: str) -> bytes:
    """A JSON text framed as a RecordIO record."""
    return encode(text.encode("utf-8"))


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
                    # Events queued while writing (or waiting) go out before the stream ends:
                    # a last ERROR is often queued together with close().
                    continue
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
