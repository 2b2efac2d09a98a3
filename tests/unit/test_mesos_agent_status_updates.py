"""The agent's status update manager: ordering, acknowledgements, retries, journal replay."""

from __future__ import annotations

import asyncio
import base64
import itertools
import uuid
from pathlib import Path
from typing import Any

import pytest

from sandbox.mesos.agent.status_updates import StatusUpdate, StreamError, TaskStatusUpdateManager


def update(state: str, task: str = "t1") -> StatusUpdate:
    status: dict[str, Any] = {
        "task_id": {"value": task},
        "state": state,
        "uuid": base64.b64encode(uuid.uuid4().bytes).decode(),
    }
    return StatusUpdate(framework_id="F", status=status)


def test_only_the_head_is_sent_and_acks_release_the_next(tmp_path: Path) -> None:
    async def scenario() -> None:
        sent: list[str] = []
        manager = TaskStatusUpdateManager(lambda u: sent.append(u.state), retry_min=60)
        manager.resume()
        journal = str(tmp_path / "task.updates")
        starting, running, finished = update("TASK_STARTING"), update("TASK_RUNNING"), update("TASK_FINISHED")
        for u in (starting, running, finished):
            manager.update(u, journal)
        manager.update(running, journal)  # a duplicate (executor retry) changes nothing
        assert sent == ["TASK_STARTING"]
        with pytest.raises(StreamError, match="expecting"):
            manager.acknowledge("F", "t1", running.uuid)
        assert manager.acknowledge("F", "t1", starting.uuid) is False
        assert sent == ["TASK_STARTING", "TASK_RUNNING"]
        manager.acknowledge("F", "t1", running.uuid)
        assert manager.acknowledge("F", "t1", finished.uuid) is True, "terminal update acknowledged"
        assert manager.stream("F", "t1") is None
        with pytest.raises(StreamError, match="Cannot find the status update stream"):
            manager.acknowledge("F", "t1", finished.uuid)
        manager.close()

    asyncio.run(scenario())


def test_retries_back_off_and_pause_holds_them(tmp_path: Path) -> None:
    async def scenario() -> None:
        sent: list[float] = []
        loop = asyncio.get_running_loop()
        manager = TaskStatusUpdateManager(lambda u: sent.append(loop.time()), retry_min=0.1, retry_max=0.4)
        manager.update(update("TASK_RUNNING"), None)
        await asyncio.sleep(0.25)
        assert sent == [], "nothing is sent while disconnected"
        manager.resume()
        await asyncio.sleep(1.6)
        gaps = [b - a for a, b in itertools.pairwise(sent)]
        assert gaps[:3] == pytest.approx([0.1, 0.2, 0.4], abs=0.06)
        assert all(g == pytest.approx(0.4, abs=0.06) for g in gaps[3:]), "capped at retry_max"
        manager.close()

    asyncio.run(scenario())


def test_journal_replay_restores_pending_updates(tmp_path: Path) -> None:
    async def scenario() -> None:
        journal = str(tmp_path / "task.updates")
        first = TaskStatusUpdateManager(lambda u: None, retry_min=60)
        starting, running = update("TASK_STARTING"), update("TASK_RUNNING")
        first.update(starting, journal)
        first.update(running, journal)
        first.resume()
        first.acknowledge("F", "t1", starting.uuid)
        first.close()
        with open(journal, "a", encoding="utf-8") as handle:
            handle.write('{"type": "UPD')  # the agent died in the middle of an append

        sent: list[str] = []
        second = TaskStatusUpdateManager(lambda u: sent.append(u.uuid), retry_min=60)
        stream = second.recover("F", "t1", journal)
        assert [u.state for u in stream.pending] == ["TASK_RUNNING"]
        second.resume()
        assert sent == [running.uuid]
        second.update(running, journal)
        assert len(stream.pending) == 1, "a replayed update is recognised as a duplicate"
        second.close()

    asyncio.run(scenario())
