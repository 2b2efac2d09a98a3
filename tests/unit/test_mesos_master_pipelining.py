"""pipelining.py on a real aiohttp server: early answers, hand-overs and failures keep their order.

A small application stands in for the master: its answerer executes bodies starting with "ok",
declines "no..." and fails executing "boom"; the route's regular handler answers what the
answerer declined, and for what the answerer failed, fails the way a failing handler fails
(without executing it again).
"""

from __future__ import annotations

import asyncio
import re

from aiohttp import web
from aiohttp.streams import StreamReader
from multidict import CIMultiDictProxy

from sandbox.mesos.master.pipelining import PipeliningAppRunner

PATH = "/calls"
DATE = re.compile(rb"\r\nDate: [^\r]*\r\n")


class Answerer:
    def __init__(self) -> None:
        self.executed: list[bytes] = []
        self.failures: dict[int, tuple[StreamReader, Exception]] = {}

    def answer_now(self, headers: CIMultiDictProxy[str], body: bytes) -> bool:
        if not body.startswith((b"ok", b"boom")):
            return False
        self.executed.append(body)
        if body.startswith(b"boom"):
            raise RuntimeError("the call failed")
        return True

    def remember_failure(self, payload: StreamReader, error: Exception) -> None:
        self.failures[id(payload)] = (payload, error)

    async def handle(self, request: web.Request) -> web.Response:
        failure = self.failures.pop(id(request.content), None)
        if failure is not None and failure[0] is request.content:
            raise failure[1]
        body = await request.read()
        self.executed.append(body)
        if body.startswith(b"boom"):
            raise RuntimeError("the call failed")
        if body.startswith(b"ok"):
            return web.Response(status=202)
        return web.Response(status=400, text=f"regular answer to {body.decode()}")


def post(body: bytes, path: str = PATH, headers: str = "") -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: test\r\n{headers}Content-Length: {len(body)}\r\n\r\n".encode() + body
    )


async def _read_response(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    match = re.search(rb"\r\nContent-Length: (\d+)\r\n", head)
    body = await reader.readexactly(int(match.group(1))) if match else b""
    return DATE.sub(b"\r\n", head + body)


def _exchange(parts: list[bytes | float], answers: int) -> tuple[list[bytes], bool, Answerer]:
    """Send ``parts`` (bytes, or pauses in seconds) on one connection; read ``answers`` responses."""

    async def main() -> tuple[list[bytes], bool, Answerer]:
        answerer = Answerer()
        app = web.Application()
        app.router.add_route("*", PATH, answerer.handle)
        runner = PipeliningAppRunner(app, {PATH: answerer}, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        try:
            port = runner.addresses[0][1]
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            try:
                for part in parts:
                    if isinstance(part, float):
                        await asyncio.sleep(part)
                    else:
                        writer.write(part)
                        await writer.drain()
                responses = [await asyncio.wait_for(_read_response(reader), 5.0) for _ in range(answers)]
                try:
                    closed = await asyncio.wait_for(reader.read(1), 0.5) == b""
                except TimeoutError:
                    closed = False  # still open
                return responses, closed, answerer
            finally:
                writer.close()
        finally:
            await runner.cleanup()

    return asyncio.run(main())


ACCEPTED = b"HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\nServer: "


def test_answers_keep_request_order_across_early_and_regular_answers() -> None:
    requests = [post(b"ok 1"), post(b"no 2"), post(b"ok 3"), post(b"ok 4", path=PATH + "?q"), post(b"ok 5")]
    responses, closed, answerer = _exchange(
        [b"".join(requests), post(b"ok 6", headers="Connection: close\r\n")], 6
    )
    assert [r.split(b"\r\n", 1)[0] for r in responses] == [b"HTTP/1.1 202 Accepted"] * 1 + [
        b"HTTP/1.1 400 Bad Request"
    ] + [b"HTTP/1.1 202 Accepted"] * 4
    assert responses[1].endswith(b"regular answer to no 2")
    # Each call executed once, in order: early ones by the answerer, the others by the handler.
    assert answerer.executed == [b"ok 1", b"no 2", b"ok 3", b"ok 4", b"ok 5", b"ok 6"]
    assert closed


def test_early_202_is_what_aiohttp_writes() -> None:
    early, early_closed, _ = _exchange([post(b"ok")], 1)
    regular, regular_closed, _ = _exchange([post(b"ok", path=PATH + "?q")], 1)
    assert early == regular
    assert early[0].startswith(ACCEPTED)
    assert not early_closed
    assert not regular_closed


def test_a_call_failing_early_fails_like_a_failing_handler() -> None:
    early, early_closed, answerer = _exchange([post(b"ok 1") + post(b"boom") + post(b"ok 3")], 2)
    regular, regular_closed, _ = _exchange(
        [post(b"ok 1", path=PATH + "?q") + post(b"boom", path=PATH + "?q")], 2
    )
    assert early == regular
    assert early[1].startswith(b"HTTP/1.1 500 Internal Server Error")
    # aiohttp closes the connection after a 500: the third call is never executed, and the
    # failed one was executed once.
    assert early_closed
    assert regular_closed
    assert answerer.executed == [b"ok 1", b"boom"]


def test_a_body_arriving_in_pieces_is_answered_early_in_its_place() -> None:
    second = post(b"ok 2" * 50)
    parts: list[bytes | float] = [
        post(b"ok 1") + second[:-30],
        0.2,
        second[-30:] + post(b"no 3") + post(b"ok 4"),
    ]
    responses, _, answerer = _exchange(parts, 4)
    assert [r.split(b"\r\n", 1)[0][9:12] for r in responses] == [b"202", b"202", b"400", b"202"]
    assert answerer.executed == [b"ok 1", b"ok 2" * 50, b"no 3", b"ok 4"]


def test_many_pipelined_calls_all_answered() -> None:
    # Long runs of early answers, longer than aiohttp's queue of parsed requests (32).
    declined = {100, 101, 300}
    calls = [post(b"no %d" % n if n in declined else b"ok %d" % n) for n in range(500)]
    responses, _, answerer = _exchange([b"".join(calls)], 500)
    statuses = [r.split(b"\r\n", 1)[0][9:12] for r in responses]
    assert statuses == [b"400" if n in declined else b"202" for n in range(500)]
    assert len(answerer.executed) == 500


def test_large_and_empty_bodies_take_the_regular_path_in_their_place() -> None:
    large = b"ok" + b"x" * 300_000  # beyond what aiohttp buffers before pausing the connection
    parts: list[bytes | float] = [post(b"ok 1") + post(large)[:100_000], 0.1, post(large)[100_000:]]
    parts.append(post(b"") + post(b"ok 4"))
    responses, _, answerer = _exchange(parts, 4)
    assert [r.split(b"\r\n", 1)[0][9:12] for r in responses] == [b"202", b"202", b"400", b"202"]
    assert answerer.executed == [b"ok 1", large, b"", b"ok 4"]
