"""Task status updates as the runner produces them, and the ordering rules they must follow."""

from __future__ import annotations

import threading
from typing import Callable, Dict, List, NamedTuple, Optional

TASK_STARTING = "TASK_STARTING"
TASK_RUNNING = "TASK_RUNNING"
TASK_KILLING = "TASK_KILLING"
TASK_KILLED = "TASK_KILLED"
TASK_FAILED = "TASK_FAILED"
TASK_FINISHED = "TASK_FINISHED"
TERMINAL_STATES = (TASK_KILLED, TASK_FAILED, TASK_FINISHED)

REASON_TASK_INVALID = "REASON_TASK_INVALID"


class TaskUpdate(NamedTuple):
    state: str
    message: str = ""
    reason: Optional[str] = None
    # Structured facts for the framework (exit status, ports...), sent as JSON in TaskStatus.data.
    details: Optional[Dict[str, object]] = None


StatusSink = Callable[[TaskUpdate], None]


class StatusReporter:
    """Serialises updates from several threads and drops those that would break the protocol:
    nothing after a terminal state, no RUNNING once KILLING was sent, each of STARTING, RUNNING
    and KILLING at most once."""

    def __init__(self, sink: StatusSink) -> None:
        self._sink = sink
        self._lock = threading.Lock()
        self.sent: List[str] = []

    @property
    def terminal_sent(self) -> bool:
        return any(s in TERMINAL_STATES for s in self.sent)

    def report(self, update: TaskUpdate) -> bool:
        with self._lock:
            if self.terminal_sent:
                return False
            if update.state in (TASK_STARTING, TASK_RUNNING, TASK_KILLING) and update.state in self.sent:
                return False
            if update.state == TASK_RUNNING and TASK_KILLING in self.sent:
                return False
            # Recorded first: a sink that raises (agent unreachable) must not let a retry resend it.
            self.sent.append(update.state)
            self._sink(update)
            return True
