"""The master's event streams and the event encodings they write.

The master fails a framework over by queueing ERROR on the old stream and closing it at once;
the scheduler must see that ERROR even when the stream is in the middle of writing (or pacing
its writes) at that moment. The faster encoders of OFFERS and UPDATE events must write exactly
what the generic encode_event writes.
"""

from __future__ import annotations

import asyncio

import pytest

from sandbox.mesos.master.streams import (
    FLUSH_INTERVAL,
    EventStream,
    OffersEncoder,
    encode_event,
    encode_update_event,
)

UPDATE = {"type": "UPDATE", "update": {"status": {"task_id": {"value": "t"}, "state": "TASK_RUNNING"}}}
ERROR = {"type": "ERROR", "error": {"message": "Framework failed over"}}
END = b"<end of stream>"


class GatedResponse:
    """A streaming response whose writes complete only when the test lets them."""

    def __init__(self) -> None:
        self.written: list[bytes] = []
        self.gate = asyncio.Event()
        self.writing = asyncio.Event()

    async def write(self, data: bytes) -> None:
        self.written.append(data)
        self.writing.set()
        await self.gate.wait()

    async def write_eof(self) -> None:
        self.written.append(END)


def _run(scenario: object) -> list[bytes]:
    async def main() -> list[bytes]:
        response = GatedResponse()
        stream = EventStream(response, 60.0, {"type": "HEARTBEAT"})  # type: ignore[arg-type]
        writer = asyncio.get_running_loop().create_task(stream.run())
        try:
            await scenario(stream, response)  # type: ignore[operator]
            await asyncio.wait_for(writer, 5.0)
        finally:
            writer.cancel()
        return response.written

    return asyncio.run(main())


def test_event_queued_with_close_during_a_write_is_written() -> None:
    async def scenario(stream: EventStream, response: GatedResponse) -> None:
        stream.send(UPDATE)
        await asyncio.wait_for(response.writing.wait(), 5.0)
        stream.send(ERROR)
        stream.close()
        response.gate.set()

    assert _run(scenario) == [encode_event(UPDATE), encode_event(ERROR), END]


def test_event_queued_with_close_while_pacing_writes_is_written() -> None:
    async def scenario(stream: EventStream, response: GatedResponse) -> None:
        response.gate.set()
        stream.send(UPDATE)
        await asyncio.wait_for(response.writing.wait(), 5.0)
        # The stream now waits FLUSH_INTERVAL before its next write.
        await asyncio.sleep(FLUSH_INTERVAL / 4)
        stream.send(ERROR)
        stream.close()

    assert _run(scenario) == [encode_event(UPDATE), encode_event(ERROR), END]


def test_nothing_is_written_after_close() -> None:
    async def scenario(stream: EventStream, response: GatedResponse) -> None:
        response.gate.set()
        stream.send(UPDATE)
        stream.close()
        stream.send(ERROR)

    assert _run(scenario) == [encode_event(UPDATE), END]


def _offer(
    number: int, url: dict[str, object], resources: list[dict[str, object]], **extra: object
) -> dict[str, object]:
    offer: dict[str, object] = {
        "id": {"value": f"m-O{number}"},
        "framework_id": {"value": "m-0000"},
        "agent_id": {"value": f"m-S{number % 3}"},
        "hostname": f"hôte-{number % 3}",
        "url": url,
        "resources": resources,
    }
    offer.update(extra)
    return offer


def test_offers_encoder_writes_what_encode_event_writes() -> None:
    shared_resources = [
        {"name": "cpus", "type": "SCALAR", "scalar": {"value": 1.5}, "role": "*"},
        {
            "name": "ports",
            "type": "RANGES",
            "ranges": {"range": [{"begin": 31000, "end": 32000}]},
            "role": "*",
        },
        {"name": "zones", "type": "SET", "set": {"item": ['a"b', "ü"]}, "role": "*"},
    ]
    urls = [
        {
            "scheme": "http",
            "address": {"hostname": f"hôte-{n}", "ip": "10.0.0.1", "port": 5051},
            "path": "/slave(1)",
        }
        for n in range(3)
    ]
    attributes = [{"name": "rack", "type": "TEXT", "text": {"value": "r1"}}]
    encoder = OffersEncoder()
    encoder.remember(urls[0])
    batches = [
        [_offer(n, urls[n % 3], shared_resources) for n in range(6)],
        [
            _offer(6, urls[0], shared_resources, attributes=attributes, executor_ids=[{"value": "e1"}]),
            _offer(
                7,
                urls[1],
                [{**r, "allocation_info": {"role": "web"}} for r in shared_resources],
                allocation_info={"role": "web"},
                attributes=attributes,
            ),
            {"id": {"value": "odd"}, "weird": {"value": "x", "more": 1}, "n": None, "f": 0.1, "b": True},
            {"id": {"value": "odd keys"}, 7: "seven", None: [1.5, {"value": "v"}]},
            {},
        ],
        [],
    ]
    for offers in batches * 2:  # the second round runs with everything remembered
        assert encoder.encode(offers) == encode_event({"type": "OFFERS", "offers": {"offers": offers}})


def test_offers_encoder_forgets_beyond_its_bound() -> None:
    encoder = OffersEncoder(max_remembered=2)
    resources = [[{"name": f"r{n}", "type": "SCALAR", "scalar": {"value": float(n)}}] for n in range(5)]
    url = {"scheme": "http", "address": {"hostname": "h", "ip": "10.0.0.1", "port": 5051}, "path": "/"}
    offers = [_offer(n, url, resources[n]) for n in range(5)]
    for _ in range(2):
        assert encoder.encode(offers) == encode_event({"type": "OFFERS", "offers": {"offers": offers}})


EXECUTOR_STATUS = {
    "task_id": {"value": "t1"},
    "state": "TASK_RUNNING",
    "source": "SOURCE_EXECUTOR",
    "agent_id": {"value": "m-S1"},
    "executor_id": {"value": "t1"},
    "timestamp": 1764191234.123456,
    "uuid": "q83vEjRWeJq83vEjRWeJqw==",
}


@pytest.mark.parametrize(
    "status",
    [
        EXECUTOR_STATUS,
        {**EXECUTOR_STATUS, "task_id": {"value": 'tâche "1"\n'}},
        {**EXECUTOR_STATUS, "timestamp": 1.0},
        {**EXECUTOR_STATUS, "timestamp": 3},
        {**EXECUTOR_STATUS, "timestamp": float("nan")},
        {**EXECUTOR_STATUS, "timestamp": float("inf")},
        {**EXECUTOR_STATUS, "timestamp": -0.0},
        {**EXECUTOR_STATUS, "agent_id": {"value": "m-S1", "extra": 1}},
        {**EXECUTOR_STATUS, "executor_id": {"value": 5}},
        {**EXECUTOR_STATUS, "state": None},
        {**EXECUTOR_STATUS, "message": "Command exited with status 0"},
        {k: v for k, v in reversed(EXECUTOR_STATUS.items())},
        {"task_id": {"value": "t"}, "state": "TASK_LOST", "source": "SOURCE_MASTER", "reason": "REASON_X"},
    ],
)
def test_update_events_are_written_as_encode_event_writes_them(status: dict[str, object]) -> None:
    assert encode_update_event(status) == encode_event({"type": "UPDATE", "update": {"status": status}})
