"""HTTP responses to pipelined requests written together: one send() per burst, not per call.

A scheduler that pipelines its calls (ACKNOWLEDGEs, ACCEPTs) on one keep-alive connection gets
one small "202 Accepted" per call. aiohttp writes each with its own send(), and on loopback
that syscall (plus waking the reader) costs more than handling the call. The transport given
to aiohttp's request handler here keeps what is written during one event loop tick and writes
it at the end of the tick, or, while more requests of the same connection are already parsed
and waiting, after them (bounded, see ``MAX_DEFERRALS`` and ``MAX_COALESCED_BYTES``). A client
that sends one call at a time sees no delay: with nothing waiting, the flush is the next tick.

HTTP/1.1 allows this: responses stay in request order and byte-identical, only the TCP
segmentation changes.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp.web_protocol import RequestHandler

# Flush once this much is waiting, whatever else is queued.
MAX_COALESCED_BYTES = 64 * 1024
# Ticks a flush may be put off while requests of the connection are waiting (a handler that
# never finishes, like a SUBSCRIBE stream, must not hold back its own writes for long).
MAX_DEFERRALS = 64
# Bytes read from a connection at a time (asyncio's default is 256 KiB).
READ_SIZE = 16 * 1024


class CoalescingTransport(asyncio.Transport):
    """A write-coalescing view of a socket transport, for one aiohttp RequestHandler."""

    def __init__(self, transport: asyncio.Transport, handler: RequestHandler) -> None:
        super().__init__()
        self._transport = transport
        self._handler = handler
        self._loop = asyncio.get_running_loop()
        self._pending: list[bytes] = []
        self._pending_bytes = 0
        self._flush_handle: asyncio.Handle | None = None
        self._deferrals = 0

    # -- writing ----------------------------------------------------------------------------

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not data:
            return
        chunk = data if isinstance(data, bytes) else bytes(data)
        self._pending.append(chunk)
        self._pending_bytes += len(chunk)
        if self._pending_bytes >= MAX_COALESCED_BYTES:
            self.flush()
        elif self._flush_handle is None:
            self._flush_handle = self._loop.call_soon(self._flush_due)

    def writelines(self, list_of_data: Any) -> None:
        for data in list_of_data:
            self.write(data)

    def _requests_waiting(self) -> bool:
        # aiohttp keeps parsed, not yet handled requests of this connection in _messages
        # (aiohttp is pinned; without the attribute every flush simply happens at once).
        return bool(getattr(self._handler, "_messages", None))

    def _flush_due(self) -> None:
        self._flush_handle = None
        if self._deferrals < MAX_DEFERRALS and self._requests_waiting() and not self._transport.is_closing():
            # Their responses will join this write.
            self._deferrals += 1
            self._flush_handle = self._loop.call_soon(self._flush_due)
            return
        self.flush()

    def flush(self) -> None:
        """Write everything held back now."""
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        self._deferrals = 0
        if not self._pending:
            return
        chunk = self._pending[0] if len(self._pending) == 1 else b"".join(self._pending)
        self._pending.clear()
        self._pending_bytes = 0
        if not self._transport.is_closing():
            self._transport.write(chunk)

    def write_eof(self) -> None:
        self.flush()
        self._transport.write_eof()

    def can_write_eof(self) -> bool:
        return self._transport.can_write_eof()

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size() + self._pending_bytes

    def get_write_buffer_limits(self) -> tuple[int, int]:
        return self._transport.get_write_buffer_limits()

    def set_write_buffer_limits(self, high: int | None = None, low: int | None = None) -> None:
        self._transport.set_write_buffer_limits(high, low)

    # -- closing ----------------------------------------------------------------------------

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def abort(self) -> None:
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush_handle = None
        self._pending.clear()
        self._pending_bytes = 0
        self._transport.abort()

    def is_closing(self) -> bool:
        return self._transport.is_closing()

    # -- everything else is the socket transport's ----------------------------------------------

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return self._transport.get_extra_info(name, default)

    def pause_reading(self) -> None:
        self._transport.pause_reading()

    def resume_reading(self) -> None:
        self._transport.resume_reading()

    def is_reading(self) -> bool:
        return self._transport.is_reading()

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self._transport.set_protocol(protocol)

    def get_protocol(self) -> asyncio.BaseProtocol:
        return self._transport.get_protocol()


class CoalescingRequestHandler(RequestHandler):
    """aiohttp's request handler, writing through a CoalescingTransport."""

    __slots__ = ()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        if isinstance(getattr(transport, "max_size", None), int):
            # aiohttp's parser stops after 32 queued pipelined requests and keeps the rest of
            # the read as a tail it copies again on every resume: smaller reads, cheaper copies.
            transport.max_size = READ_SIZE  # type: ignore[attr-defined]
        super().connection_made(CoalescingTransport(transport, self))

    def resume_reading(self, resume_parser: bool = True) -> None:
        # aiohttp's request body reader calls this each time it drains a body, and at the end
        # of every body, paused or not; each call then re-feeds the parser's buffered tail of
        # pipelined requests. Only a flow-control pause (pause_reading) needs undoing here: the
        # parser's other stop, a full queue of parsed requests, is resumed once the queue has
        # drained (by the request loop, start(), or by pipelining.py), and it keeps the
        # transport paused meanwhile.
        if not self._reading_paused:
            return
        super().resume_reading(resume_parser)
