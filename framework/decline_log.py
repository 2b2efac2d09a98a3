"""Why offers were not used: one line per agent and reason, logged once, shown in the status.

The old framework printed a bare "Declining offer" for every offer, so a missing port range took
hand debugging. Here every unusable offer gets a reason like
`agent a3 (host-3): AlluxioWorker: missing ports 29998-30000`; the first time an agent shows a
reason it is logged, repeats only bump a counter.
"""

from __future__ import annotations

import dataclasses
import logging
from collections import OrderedDict

LOG = logging.getLogger("framework.offers")


@dataclasses.dataclass
class DeclineEntry:
    agent_id: str
    hostname: str
    reason: str
    count: int
    first_seen: float
    last_seen: float

    def line(self) -> str:
        return f"agent {self.agent_id} ({self.hostname}): {self.reason}"


class DeclineLog:
    """The most recent distinct (agent, reason) pairs, oldest evicted first."""

    def __init__(self, capacity: int = 200) -> None:
        self._capacity = capacity
        self._entries: OrderedDict[tuple[str, str], DeclineEntry] = OrderedDict()

    def record(self, agent_id: str, hostname: str, reason: str, now: float) -> bool:
        """Count one occurrence; True (and one log line) when the pair is new."""
        key = (agent_id, reason)
        entry = self._entries.get(key)
        if entry is not None:
            entry.count += 1
            entry.last_seen = now
            self._entries.move_to_end(key)
            return False
        entry = DeclineEntry(agent_id, hostname, reason, 1, now, now)
        self._entries[key] = entry
        if len(self._entries) > self._capacity:
            self._entries.popitem(last=False)
        LOG.warning("offer not usable: %s", entry.line())
        return True

    def forget_agent(self, agent_id: str) -> None:
        """Drop an agent's reasons once it ran what we needed (they are history, not a problem)."""
        for key in [k for k in self._entries if k[0] == agent_id]:
            del self._entries[key]

    def clear(self) -> None:
        self._entries.clear()

    def entries(self) -> list[DeclineEntry]:
        """Newest first."""
        return list(reversed(self._entries.values()))
