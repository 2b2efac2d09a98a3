"""Reliable task status updates: Mesos' TaskStatusUpdateManager.

One stream per task. Only the first unacknowledged update of a stream is sent to the master;
later ones queue behind it. The head is resent every ``retry_min`` seconds, doubling up to
``retry_max``, until the master relays the scheduler's acknowledgement. Streams of
checkpointing frameworks are journaled to ``task.updates`` (UPDATE and ACK records), so a
restarted agent resumes exactly where it stopped.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sandbox.mesos.agent import checkpoint
from sandbox.mesos.agent.model import is_terminal

log = logging.getLogger("mesos.agent.status_updates")

RETRY_INTERVAL_MAX = 600.0


class StreamError(ValueError):
    """An update or acknowledgement the stream refuses (duplicate terminal, wrong uuid...)."""


@dataclass
class StatusUpdate:
    """Mesos' StatusUpdate: a TaskStatus plus whom it belongs to."""

    framework_id: str
    status: dict[str, Any]
    latest_state: str | None = None

    @property
    def uuid(self) -> str:
        return str(self.status["uuid"])

    @property
    def task_id(self) -> str:
        return str(self.status["task_id"]["value"])

    @property
    def state(self) -> str:
        return str(self.status["state"])

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"framework_id": {"value": self.framework_id}, "status": self.status}
        if self.latest_state is not None:
            out["latest_state"] = self.latest_state
        return out

    @staticmethod
    def from_json(document: dict[str, Any]) -> StatusUpdate:
        return StatusUpdate(
            framework_id=str(document["framework_id"]["value"]),
            status=document["status"],
            latest_state=document.get("latest_state"),
        )


class UpdateStream:
    """The updates of one task."""

    def __init__(self, framework_id: str, task_id: str, journal: str | None) -> None:
        self.framework_id = framework_id
        self.task_id = task_id
        self.journal = journal
        self.pending: deque[StatusUpdate] = deque()
        self.received: set[str] = set()
        self.acknowledged: set[str] = set()
        self.terminated = False
        self.timer: asyncio.TimerHandle | None = None
        self.interval = 0.0

    def replay(self) -> None:
        """Rebuild the stream from its journal after an agent restart."""
        if self.journal is None:
            return
        for record in checkpoint.read_records(self.journal):
            if record.get("type") == "UPDATE":
                update = StatusUpdate.from_json(record["update"])
                self._add(update)
            elif record.get("type") == "ACK":
                self._ack(str(record["uuid"]))

    def update(self, update: StatusUpdate) -> bool:
        """Add an update; False if it is a duplicate (already received), which is harmless."""
        if update.uuid in self.received:
            return False
        if self.terminated:
            raise StreamError(
                f"Unexpected status update {update.state} for task {self.task_id}: stream is terminated"
            )
        if self.journal is not None:
            checkpoint.append_record(self.journal, {"type": "UPDATE", "update": update.to_json()})
        self._add(update)
        return True

    def _add(self, update: StatusUpdate) -> None:
        self.received.add(update.uuid)
        self.pending.append(update)

    def acknowledge(self, uuid: str) -> StatusUpdate:
        """Acknowledge the head update; returns it. Raises StreamError if it is not the head."""
        if uuid in self.acknowledged:
            raise StreamError(f"Duplicate acknowledgement for status update {uuid} of task {self.task_id}")
        if not self.pending:
            raise StreamError(
                f"Unexpected acknowledgement (UUID: {uuid}) for task {self.task_id}: no pending update"
            )
        head = self.pending[0]
        if head.uuid != uuid:
            raise StreamError(
                f"Unexpected status update acknowledgement (received {uuid}, expecting {head.uuid}) "
                f"for task {self.task_id}"
            )
        if self.journal is not None:
            checkpoint.append_record(self.journal, {"type": "ACK", "uuid": uuid})
        self._ack(uuid)
        return head

    def _ack(self, uuid: str) -> None:
        self.acknowledged.add(uuid)
        if self.pending and self.pending[0].uuid == uuid:
            acked = self.pending.popleft()
            if is_terminal(acked.state):
                self.terminated = True

    def cancel_timer(self) -> None:
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None


class TaskStatusUpdateManager:
    """All streams of the agent, with the retry timers."""

    def __init__(
        self,
        forward: Callable[[StatusUpdate], None],
        retry_min: float,
        retry_max: float = RETRY_INTERVAL_MAX,
    ) -> None:
        self._forward = forward
        self._retry_min = retry_min
        self._retry_max = max(retry_max, retry_min)
        self._streams: dict[tuple[str, str], UpdateStream] = {}
        self._paused = True

    def stream(self, framework_id: str, task_id: str) -> UpdateStream | None:
        return self._streams.get((framework_id, task_id))

    def pending_heads(self) -> list[StatusUpdate]:
        return [s.pending[0] for s in self._streams.values() if s.pending]

    def recover(self, framework_id: str, task_id: str, journal: str) -> UpdateStream:
        stream = UpdateStream(framework_id, task_id, journal)
        stream.replay()
        if stream.terminated and not stream.pending:
            return stream
        self._streams[(framework_id, task_id)] = stream
        return stream

    def update(self, update: StatusUpdate, journal: str | None) -> None:
        key = (update.framework_id, update.task_id)
        stream = self._streams.get(key)
        if stream is None:
            stream = UpdateStream(update.framework_id, update.task_id, journal)
            self._streams[key] = stream
        if stream.update(update) and len(stream.pending) == 1:
            self._send_head(stream, reset=True)

    def acknowledge(self, framework_id: str, task_id: str, uuid: str) -> bool:
        """Process the scheduler's acknowledgement; True when the stream is now finished."""
        stream = self._streams.get((framework_id, task_id))
        if stream is None:
            raise StreamError(
                f"Cannot find the status update stream for task {task_id} of framework {framework_id}"
            )
        stream.acknowledge(uuid)
        stream.cancel_timer()
        if stream.pending:
            self._send_head(stream, reset=True)
            return False
        if stream.terminated:
            del self._streams[(framework_id, task_id)]
            return True
        return False

    def pause(self) -> None:
        """Stop forwarding (agent disconnected); retries continue once resumed."""
        self._paused = True

    def resume(self) -> None:
        """Forward every stream's head now (after (re-)registration)."""
        self._paused = False
        for stream in list(self._streams.values()):
            if stream.pending:
                self._send_head(stream, reset=True)

    def cleanup(self, framework_id: str) -> None:
        for key in [k for k in self._streams if k[0] == framework_id]:
            self._streams.pop(key).cancel_timer()

    def close(self) -> None:
        for stream in self._streams.values():
            stream.cancel_timer()

    def _send_head(self, stream: UpdateStream, *, reset: bool) -> None:
        stream.cancel_timer()
        if reset:
            stream.interval = self._retry_min
        if not self._paused:
            self._forward(stream.pending[0])
        loop = asyncio.get_running_loop()
        stream.timer = loop.call_later(stream.interval, self._retry, stream)

    def _retry(self, stream: UpdateStream) -> None:
        stream.timer = None
        if not stream.pending or self._streams.get((stream.framework_id, stream.task_id)) is not stream:
            return
        log.info(
            "Resending status update %s for task %s of framework %s",
            stream.pending[0].state,
            stream.task_id,
            stream.framework_id,
        )
        stream.interval = min(stream.interval * 2, self._retry_max)
        self._send_head(stream, reset=False)
