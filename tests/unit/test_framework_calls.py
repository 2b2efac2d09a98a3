"""The pipelined call sender against a real HTTP/1.1 server: order, batching on one connection,
group commit before a batch, failures reported per call and never resent."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from framework.mesos_calls import MAX_BATCH_CALLS, Call, CallSender, Endpoint
from framework.mesos_http import basic_authorization
from tests.unit.recording_master import Answer, RecordingMaster, recording_master


@pytest.fixture
def master() -> Iterator[RecordingMaster]:
    with recording_master() as server:
        yield server


class Outcomes:
    def __init__(self) -> None:
        self.answered: list[int] = []
        self.failed: dict[int, str] = {}
        self._lock = threading.Lock()

    def call(self, number: int, kind: str = "DECLINE", needs_saved_state: bool = False) -> Call:
        def answered() -> None:
            with self._lock:
                self.answered.append(number)

        def failed(reason: str) -> None:
            with self._lock:
                self.failed[number] = reason

        return Call({"type": kind, "n": number}, needs_saved_state, failed, answered)


def sender_for(
    master: RecordingMaster, before_batch=lambda _batch: True, secret: str | None = None
) -> CallSender:  # type: ignore[no-untyped-def]
    sender = CallSender(
        lambda: Endpoint(master.address, "stream-1"), before_batch, basic_authorization("alluxio", secret)
    )
    sender.start()
    return sender


def test_calls_arrive_in_order_pipelined_on_one_connection_with_the_stream_header(
    master: RecordingMaster,
) -> None:
    outcomes = Outcomes()
    gate = threading.Event()
    sender = sender_for(master, before_batch=lambda _batch: gate.wait(10))
    try:
        for number in range(300):
            sender.submit(outcomes.call(number))
        gate.set()
        assert sender.wait_idle(10)
    finally:
        sender.stop()
    assert [call["n"] for call in master.calls()] == list(range(300))
    assert outcomes.answered == list(range(300))
    assert outcomes.failed == {}
    assert {r.connection for r in master.received} == {1}
    # 300 queued while the first batch waited: written in batches, not one call per round trip
    assert sender.batches <= 1 + -(-299 // MAX_BATCH_CALLS)
    headers = master.received[0].headers
    assert headers["mesos-stream-id"] == "stream-1"
    assert headers["content-type"] == "application/json"
    assert "authorization" not in headers


def test_basic_auth_header_when_a_secret_is_configured(master: RecordingMaster) -> None:
    sender = sender_for(master, secret="s3cret")
    try:
        sender.submit(Call({"type": "REVIVE"}))
        assert sender.wait_idle(10)
    finally:
        sender.stop()
    assert master.received[0].headers["authorization"] == "Basic YWxsdXhpbzpzM2NyZXQ="


def test_an_error_answer_fails_only_its_own_call_with_the_masters_text(master: RecordingMaster) -> None:
    master.answers["ACCEPT"] = Answer(
        400, b"Failed to validate scheduler::Call: Expecting 'accept' to be present\n"
    )
    outcomes = Outcomes()
    sender = sender_for(master)
    try:
        sender.submit(outcomes.call(1))
        sender.submit(outcomes.call(2, "ACCEPT"))
        sender.submit(outcomes.call(3))
        assert sender.wait_idle(10)
    finally:
        sender.stop()
    assert outcomes.answered == [1, 3]
    assert outcomes.failed == {
        2: "HTTP 400: Failed to validate scheduler::Call: Expecting 'accept' to be present"
    }


def test_chunked_and_connection_close_answers_are_read_and_the_next_call_reconnects(
    master: RecordingMaster,
) -> None:
    master.answers["RECONCILE"] = Answer(200, b'{"ok": true}', chunked=True)
    master.answers["SUPPRESS"] = Answer(202, b"", close=True)
    outcomes = Outcomes()
    sender = sender_for(master)
    try:
        sender.submit(outcomes.call(1, "RECONCILE"))
        sender.submit(outcomes.call(2, "SUPPRESS"))
        assert sender.wait_idle(10)
        sender.submit(outcomes.call(3))
        assert sender.wait_idle(10)
    finally:
        sender.stop()
    assert outcomes.answered == [1, 2, 3]
    assert [r.connection for r in master.received] == [1, 1, 2]


def test_unanswered_calls_fail_and_are_never_resent(master: RecordingMaster) -> None:
    master.close_after = 2  # the master takes call 2 and drops the connection without answering
    outcomes = Outcomes()
    gate = threading.Event()
    sender = sender_for(master, before_batch=lambda _batch: gate.wait(10))
    try:
        for number in range(1, 5):
            sender.submit(outcomes.call(number))
        gate.set()
        assert sender.wait_idle(10)
        sender.submit(outcomes.call(5))
        assert sender.wait_idle(10)
    finally:
        sender.stop()
    assert outcomes.answered == [1, 5]
    assert sorted(outcomes.failed) == [2, 3, 4]
    assert all("no answer from the Mesos master" in reason for reason in outcomes.failed.values())
    assert [call["n"] for call in master.calls()] == [1, 2, 5]  # 3 and 4 were never carried out twice


def test_calls_needing_saved_state_are_held_back_when_the_save_fails(master: RecordingMaster) -> None:
    outcomes = Outcomes()
    sender = sender_for(master, before_batch=lambda _batch: False)
    try:
        sender.submit(outcomes.call(1, "ACKNOWLEDGE", needs_saved_state=True))
        sender.submit(outcomes.call(2, "DECLINE"))
        assert sender.wait_idle(10)
    finally:
        sender.stop()
    assert [call["n"] for call in master.calls()] == [2]
    assert outcomes.failed == {1: "the framework state could not be saved"}


def one_call_through(sender: CallSender) -> Outcomes:
    """Start `sender`, send it one call, and say what became of it."""
    outcomes = Outcomes()
    sender.start()
    try:
        sender.submit(outcomes.call(1))
        assert sender.wait_idle(5)
    finally:
        sender.stop()
    return outcomes


def test_without_a_subscription_calls_fail_at_once() -> None:
    outcomes = one_call_through(CallSender(lambda: None, lambda _batch: True))
    assert outcomes.failed == {1: "not connected to a Mesos master"}


def test_an_unreachable_master_fails_the_batch_with_its_address() -> None:
    outcomes = one_call_through(
        CallSender(lambda: Endpoint("127.0.0.1:9", "s"), lambda _batch: True, timeout=2)
    )
    assert outcomes.failed[1].startswith("cannot reach the Mesos master at 127.0.0.1:9")


def test_a_connection_the_master_closed_while_idle_is_replaced_before_writing(
    master: RecordingMaster,
) -> None:
    master.answers["REVIVE"] = Answer(202, hang_up_after=True)
    outcomes = Outcomes()
    sender = sender_for(master)
    try:
        sender.submit(outcomes.call(1, "REVIVE"))
        assert sender.wait_idle(10)
        assert master.connections_closed.acquire(timeout=10)  # the master's side is gone
        sender.submit(outcomes.call(2))
        assert sender.wait_idle(10)
    finally:
        sender.stop()
    assert outcomes.answered == [1, 2]
    assert outcomes.failed == {}
    assert [r.connection for r in master.received] == [1, 2]


def test_stop_sends_what_is_queued_first(master: RecordingMaster) -> None:
    outcomes = Outcomes()
    sender = sender_for(master)
    for number in range(50):
        sender.submit(outcomes.call(number))
    sender.stop(drain_seconds=10)
    assert outcomes.answered == list(range(50))


def test_background_calls_wait_behind_every_other_queued_call(master: RecordingMaster) -> None:
    sender = CallSender(lambda: Endpoint(master.address, "stream-1"), lambda _batch: True)
    sender.submit(Call({"type": "ACKNOWLEDGE", "n": 1}, background=True))
    sender.submit(Call({"type": "ACCEPT", "n": 2}))
    sender.submit(Call({"type": "ACKNOWLEDGE", "n": 3}, background=True))
    sender.submit(Call({"type": "DECLINE", "n": 4}))
    sender.start()  # everything is queued before the first batch is taken
    try:
        assert sender.wait_idle(10)
    finally:
        sender.stop()
    assert [call["n"] for call in master.calls()] == [2, 4, 1, 3]


def test_deferred_background_calls_wait_for_the_release_or_the_deadline(master: RecordingMaster) -> None:
    sender = sender_for(master)
    try:
        sender.defer_background(30)
        sender.submit(Call({"type": "ACKNOWLEDGE", "n": 1}, background=True))
        sender.submit(Call({"type": "ACCEPT", "n": 2}))
        time.sleep(0.3)
        assert [call["n"] for call in master.calls()] == [2], "urgent calls pass, acknowledgements wait"
        sender.release_background()
        assert sender.wait_idle(10)
        assert [call["n"] for call in master.calls()] == [2, 1]

        sender.defer_background(0.5)  # never released: the deadline lets it go
        sender.submit(Call({"type": "ACKNOWLEDGE", "n": 3}, background=True))
        started = time.monotonic()
        assert sender.wait_idle(10)
        assert time.monotonic() - started >= 0.4
        assert [call["n"] for call in master.calls()] == [2, 1, 3]
    finally:
        sender.stop()


def test_the_next_batch_goes_out_before_the_answers_to_the_last(master: RecordingMaster) -> None:
    """The master holds its answer to the first call until the sender is preparing a second
    batch: a sender that waits for answers before writing more would never get there."""
    second_batch = threading.Event()
    batches: list[int] = []

    def before_batch(batch: object) -> bool:
        batches.append(len(batch))  # type: ignore[arg-type]
        if len(batches) == 2:
            second_batch.set()
        return True

    master.observe = lambda call: second_batch.wait(5) if call["n"] == 0 else None
    outcomes = Outcomes()
    sender = sender_for(master, before_batch=before_batch)
    try:
        for number in range(MAX_BATCH_CALLS + 10):
            sender.submit(outcomes.call(number))
        assert sender.wait_idle(10)
    finally:
        sender.stop()
    assert master.received[0].observed is True
    assert outcomes.answered == list(range(MAX_BATCH_CALLS + 10))
    assert {r.connection for r in master.received} == {1}


def test_a_failed_write_fails_the_calls_written_ahead_too(master: RecordingMaster) -> None:
    """The master drops the connection while a second batch is in flight: every unanswered call
    of both batches is reported failed, and none is sent again."""
    master.close_after = 3
    outcomes = Outcomes()
    gate = threading.Event()
    sender = sender_for(master, before_batch=lambda _batch: gate.wait(10))
    try:
        for number in range(MAX_BATCH_CALLS + 50):
            sender.submit(outcomes.call(number))
        gate.set()
        assert sender.wait_idle(10)
    finally:
        sender.stop()
    received = [call["n"] for call in master.calls()]
    assert received == list(range(len(received)))  # in order, none twice
    assert outcomes.answered == [0, 1]
    assert set(outcomes.failed) == set(range(2, MAX_BATCH_CALLS + 50))
    assert all("master" in reason for reason in outcomes.failed.values())
