"""Pipelined scheduler calls answered as soon as they are parsed, in request order.

A framework placing thousands of tasks pipelines its ACCEPTs and ACKNOWLEDGEs on one keep-alive
connection. aiohttp handles every request with its full machinery: a request object, a task,
routing, a response object and two trips through the event loop, which costs several times
more than the call itself. Here, while aiohttp's request loop (RequestHandler.start) has
nothing to do, the requests aiohttp's parser has just queued are looked at first: a plain
request to a path with a *pipelined answerer* (POST, HTTP/1.1, keep-alive, Content-Length, no
Expect, a small body) whose answerer can take it is executed on the spot and answered
``202 Accepted``, byte for byte what aiohttp would have written.

Everything else goes the normal way, in order: the first request the answerer declines (an
error to report, a call whose answer is not a bare 202, anything unusual) and every request
behind it are left to aiohttp's request loop, which is woken for them. The answerer declines
before changing anything, so the normal path then answers the call itself. Should executing a
call fail, the normal path is handed the request with the failure, and aiohttp answers 500 as
it would have (see PipelinedAnswerer.remember_failure).

Responses leave through the connection's CoalescingTransport, so a burst of pipelined calls
is answered with one write.

This works with aiohttp's request handler from the inside (aiohttp is pinned): its queue of
parsed requests (``_messages``), the future its request loop waits on (``_waiter``) and the
books that loop keeps after a request. tests/unit/test_mesos_master_pipelining.py and
tests/integration/mesos_conformance/test_s7_pipelining.py check the result against aiohttp's
own answers.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from aiohttp import web
from aiohttp.helpers import rfc822_formatted_time
from aiohttp.http import SERVER_SOFTWARE, HttpVersion11, RawRequestMessage
from aiohttp.streams import StreamReader
from aiohttp.web_protocol import RequestHandler
from multidict import CIMultiDictProxy

from sandbox.mesos.master.coalescing import CoalescingRequestHandler

# Larger bodies take the normal path: they are not what pipelined calls look like, and a body
# is only waited for here while it is small (a large one may make aiohttp's flow control pause
# the connection until someone reads the body, which nobody would here).
MAX_PIPELINED_BODY_BYTES = 32 * 1024


class PipelinedAnswerer(Protocol):
    def answer_now(self, headers: CIMultiDictProxy[str], body: bytes) -> bool:
        """Execute the call if its answer is a bare ``202 Accepted``; False (and no change) otherwise."""

    def remember_failure(self, payload: StreamReader, error: Exception) -> None:
        """answer_now raised: the request comes back through the normal path with ``payload``
        as its body and must then fail with ``error`` (without executing the call again)."""


class _AcceptedResponse:
    """aiohttp's answer to web.Response(status=202) on a keep-alive HTTP/1.1 connection.

    Only its Date header changes (once a second, with aiohttp's own clock).
    """

    def __init__(self) -> None:
        self._date = ""
        self._bytes = b""

    def __call__(self) -> bytes:
        date = rfc822_formatted_time()
        if date != self._date:
            self._date = date
            self._bytes = (
                f"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\nDate: {date}\r\n"
                f"Server: {SERVER_SOFTWARE}\r\n\r\n"
            ).encode("latin-1")
        return self._bytes


_accepted_response = _AcceptedResponse()


class PipelinedRequestHandler(CoalescingRequestHandler):
    """aiohttp's request handler, answering plain pipelined calls itself while start() idles."""

    __slots__ = ()

    def data_received(self, data: bytes) -> None:
        manager = self._manager
        answerers: Mapping[str, PipelinedAnswerer] = getattr(manager, "pipelined_answerers", {})
        waiter = self._waiter
        if not answerers or waiter is None or waiter.done() or self._close or self._force_close:
            # The request loop is busy (or there is nothing to answer here): aiohttp's way.
            super().data_received(data)
            return
        # The request loop waits for a request. Keep aiohttp from waking it: only requests
        # that are not answered here are handed to it, below.
        self._waiter = None
        try:
            super().data_received(data)
            hand_over = self._answer_queued(answerers)
        finally:
            self._waiter = waiter
        if hand_over and not waiter.done():
            waiter.set_result(None)

    def _answer_queued(self, answerers: Mapping[str, PipelinedAnswerer]) -> bool:
        """Answer the requests at the head of the queue; True when the request loop must take over."""
        messages = self._messages
        while messages:
            message, payload = messages[0]
            answerer = self._answerer_of(message, answerers)
            if answerer is None:
                return True
            if payload.exception() is not None:
                return True
            if not payload.is_eof():
                # Its body is still arriving: answered by a later data_received. Nothing can be
                # queued behind it meanwhile, and the request loop stays asleep.
                return False
            body = payload.read_nowait(-1)
            messages.popleft()
            try:
                answered = answerer.answer_now(message.headers, body)
            except Exception as error:  # answered 500 by aiohttp, as a failing handler would be
                replay = self._replay(body)
                answerer.remember_failure(replay, error)
                messages.appendleft((message, replay))
                return True
            if not answered:
                # An empty body was not consumed: the request keeps its own (aiohttp's empty one).
                messages.appendleft((message, self._replay(body) if body else payload))
                return True
            self._answered()
            if self._buffer_paused and len(messages) <= self._msg_queue_resume_size:
                # What the request loop does once the queue drains: parse what was held back.
                self._resume_reading_if_drained()
        return False

    def _answerer_of(
        self, message: Any, answerers: Mapping[str, PipelinedAnswerer]
    ) -> PipelinedAnswerer | None:
        if not isinstance(message, RawRequestMessage) or message.method != "POST":
            return None
        answerer = answerers.get(message.path)
        length = message.headers.get("Content-Length", "")
        if (
            answerer is None
            or not (length.isascii() and length.isdigit())
            or int(length) > MAX_PIPELINED_BODY_BYTES
            or message.version != HttpVersion11
            or message.should_close
            or message.upgrade
            or message.chunked
            or message.compression is not None
            or "Expect" in message.headers
        ):
            return None
        return answerer

    def _replay(self, body: bytes) -> StreamReader:
        """A request body holding ``body`` again, for the normal path."""
        payload = StreamReader(self, self._read_bufsize, loop=self._loop)
        if body:
            payload.feed_data(body)
        payload.feed_eof()
        return payload

    def _answered(self) -> None:
        """Write the 202 and keep the books the request loop keeps after a request."""
        self._parser.message_consumed()  # type: ignore[union-attr]
        assert self.transport is not None
        self.transport.write(_accepted_response())
        if self._manager is not None:
            self._manager.requests_count += 1
        loop = self._loop
        close_time = loop.time() + self._keepalive_timeout
        self._next_keepalive_close_time = close_time
        if self._keepalive_handle is None:
            self._keepalive_handle = loop.call_at(close_time, self._process_keepalive)


class PipeliningServer(web.Server):
    """aiohttp's low-level server, making PipelinedRequestHandlers."""

    pipelined_answerers: Mapping[str, PipelinedAnswerer] = {}

    def __call__(self) -> RequestHandler:
        handler = super().__call__()
        # Same memory layout (no new slots), so the class can be switched in place; this keeps
        # aiohttp's own construction (and its argument checks) untouched.
        handler.__class__ = PipelinedRequestHandler
        return handler


class PipeliningAppRunner(web.AppRunner):
    """An AppRunner whose connections coalesce their writes and answer plain pipelined calls.

    ``pipelined_answerers``: request path (exactly, without query) -> its answerer.
    """

    def __init__(
        self, app: web.Application, pipelined_answerers: Mapping[str, PipelinedAnswerer], **kwargs: Any
    ) -> None:
        super().__init__(app, **kwargs)
        self._pipelined_answerers = dict(pipelined_answerers)

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        server.__class__ = PipeliningServer
        server.pipelined_answerers = self._pipelined_answerers  # type: ignore[attr-defined]
        return server
