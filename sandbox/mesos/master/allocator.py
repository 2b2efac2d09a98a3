"""Offer allocation: which framework is offered which agent's free resources, and when.

Modeled on Mesos' hierarchical allocator, simplified to what a single-cluster stand-in needs:

* a batch allocation over every agent each ``--allocation_interval``, plus a prompt (batched)
  allocation limited to the agents whose resources just changed (task ended, offer declined or
  rescinded, agent added) or to everything when a framework appears, revives or changes;
* an agent's free resources go to one framework role per cycle, frameworks taking turns;
* a framework is only offered unreserved resources and those reserved for its role(s);
* refusal filters from DECLINE/ACCEPT (``refuse_seconds``, default 5) hide an agent's
  resources from that framework while they are a subset of what it refused; the agent is
  looked at again when the filter expires;
* SUPPRESS stops offers for a role until REVIVE, which also clears the framework's filters;
* leftovers smaller than Mesos' ``--min_allocatable_resources`` (cpus:0.01 | mem:32) are not
  offered, so an agent whose cpus/mem are all used stops producing port-only offers.

Cost: a cycle touches each candidate agent once; unchanged agents cost a few dictionary
lookups (the agent's free resources and the filter verdicts are memoized by identity), so
thousands of agents stay cheap.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
from collections import defaultdict
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from framework.mesos_resources import Resources
from sandbox.mesos.master.model import Agent, Framework, Offer

if TYPE_CHECKING:
    from sandbox.mesos.master.master import Master

log = logging.getLogger(__name__)

DEFAULT_REFUSE_SECONDS = 5.0
MAX_REFUSE_SECONDS = 365 * 24 * 3600.0
MIN_ALLOCATABLE_CPUS = 0.01
MIN_ALLOCATABLE_MEM = 32.0
PROMPT_ALLOCATION_DELAY = 0.005


def allocatable(resources: Resources) -> bool:
    return resources.scalar("cpus") >= MIN_ALLOCATABLE_CPUS or resources.scalar("mem") >= MIN_ALLOCATABLE_MEM


class Allocator:
    def __init__(self, master: Master, interval: float) -> None:
        self._master = master
        self._interval = interval
        self._periodic: asyncio.Task[None] | None = None
        self._prompt: asyncio.TimerHandle | None = None
        self._dirty: set[str] = set()
        self._everything = False
        self._turn = 0
        # Memo of allocatable() per available-Resources object (they are immutable).
        self._allocatable_memo: dict[int, tuple[Resources, bool]] = {}
        # (expiry, agent_id) of refusal filters: the agent is looked at again once one expires.
        self._expiries: list[tuple[float, str]] = []
        self.cycles = 0

    def start(self) -> None:
        self._periodic = asyncio.get_running_loop().create_task(self._run_periodically(), name="allocator")

    async def stop(self) -> None:
        if self._prompt is not None:
            self._prompt.cancel()
        if self._periodic is not None:
            self._periodic.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._periodic

    async def _run_periodically(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self._interval)
            now = loop.time()
            while self._expiries and self._expiries[0][0] <= now:
                self._dirty.add(heapq.heappop(self._expiries)[1])
            # Only agents whose resources changed (or whose filters ran out) since the last
            # cycle, unless something asked for everything; unchanged agents cannot have a
            # different answer.
            self._run_cycle()

    def request(self, agent_id: str | None = None) -> None:
        """Allocate soon: for one agent whose resources changed, or (None) for all agents."""
        if agent_id is None:
            self._everything = True
        else:
            self._dirty.add(agent_id)
        if self._prompt is None:
            self._prompt = asyncio.get_running_loop().call_later(PROMPT_ALLOCATION_DELAY, self._run_prompt)

    def mark(self, agent_id: str) -> None:
        """The agent's free resources changed; look at it in the next batch allocation."""
        self._dirty.add(agent_id)

    def _run_prompt(self) -> None:
        self._prompt = None
        self._run_cycle()

    def _run_cycle(self) -> None:
        everything, dirty = self._everything, self._dirty
        self._everything, self._dirty = False, set()
        try:
            if everything:
                self.allocate()
            elif dirty:
                self.allocate(dirty)
        except Exception:  # an allocation bug must not stop all future allocations
            log.exception("allocation cycle failed")

    # -- filters, suppression -------------------------------------------------------------

    def refuse(self, framework: Framework, agent_id: str, resources: Resources, filters: Any) -> None:
        """Install the refusal filter of a DECLINE, or of the unused part of an ACCEPT."""
        if not resources:
            return
        refuse_seconds = DEFAULT_REFUSE_SECONDS
        if isinstance(filters, dict) and "refuse_seconds" in filters:
            refuse_seconds = float(filters["refuse_seconds"])
        if refuse_seconds < 0:
            log.warning(
                "framework %s: negative refuse_seconds %s, using the default %s",
                framework.framework_id,
                refuse_seconds,
                DEFAULT_REFUSE_SECONDS,
            )
            refuse_seconds = DEFAULT_REFUSE_SECONDS
        refuse_seconds = min(refuse_seconds, MAX_REFUSE_SECONDS)
        if refuse_seconds == 0:
            return
        expiry = asyncio.get_running_loop().time() + refuse_seconds
        framework.filters.setdefault(agent_id, []).append((resources, expiry))
        framework.filter_memo.pop(agent_id, None)
        heapq.heappush(self._expiries, (expiry, agent_id))

    def _filtered(
        self, framework: Framework, agent: Agent, available: Resources, resources: Resources, now: float
    ) -> bool:
        memo = framework.filter_memo.get(agent.agent_id)
        if memo is not None and memo[0] is available and now < memo[1]:
            return True
        entries = framework.filters.get(agent.agent_id)
        if not entries:
            return False
        live = [(refused, expiry) for refused, expiry in entries if expiry > now]
        if len(live) != len(entries):
            if live:
                framework.filters[agent.agent_id] = live
            else:
                del framework.filters[agent.agent_id]
                framework.filter_memo.pop(agent.agent_id, None)
        until = max((expiry for refused, expiry in live if refused.contains(resources)), default=None)
        if until is None:
            framework.filter_memo.pop(agent.agent_id, None)
            return False
        framework.filter_memo[agent.agent_id] = (available, until)
        return True

    def revive(self, framework: Framework, roles: list[str]) -> None:
        framework.filters.clear()
        framework.filter_memo.clear()
        if roles:
            framework.suppressed_roles.difference_update(roles)
        else:
            framework.suppressed_roles.clear()
        self.request()

    def suppress(self, framework: Framework, roles: list[str]) -> None:
        framework.suppressed_roles.update(roles if roles else framework.roles())

    # -- the allocation cycle -------------------------------------------------------------

    def _allocatable(self, available: Resources) -> bool:
        memo = self._allocatable_memo.get(id(available))
        if memo is not None and memo[0] is available:
            return memo[1]
        verdict = allocatable(available)
        if len(self._allocatable_memo) > 200_000:
            self._allocatable_memo.clear()
        self._allocatable_memo[id(available)] = (available, verdict)
        return verdict

    def allocate(self, agent_ids: Iterable[str] | None = None) -> int:
        """One allocation cycle over the given agents (default: all); returns the offers made."""
        self.cycles += 1
        master = self._master
        candidates = [
            (f, f.offerable_roles()) for f in master.frameworks.values() if f.active and f.connected
        ]
        candidates = [(f, roles) for f, roles in candidates if roles]
        if not candidates or not master.agents:
            return 0
        if agent_ids is None:
            agents: Iterable[Agent] = list(master.agents.values())
        else:
            agents = [master.agents[a] for a in agent_ids if a in master.agents]
        now = asyncio.get_running_loop().time()
        made: dict[str, list[Offer]] = defaultdict(list)
        count = len(candidates)
        for agent in agents:
            if not agent.active:
                continue
            available = agent.available()
            if not self._allocatable(available):
                continue
            for step in range(count):
                framework, roles = candidates[(self._turn + step) % count]
                offered_here = False
                for role in roles:
                    resources = available if agent.unreserved_only else available.allocatable_to([role])
                    if resources is not available and not allocatable(resources):
                        continue
                    if self._filtered(framework, agent, available, resources, now):
                        continue
                    made[framework.framework_id].append(master.add_offer(framework, agent, resources, role))
                    available = agent.available()
                    offered_here = True
                    if not self._allocatable(available):
                        break
                if offered_here:
                    self._turn = (self._turn + step + 1) % count
                    break
        total = 0
        for framework_id, offers in made.items():
            master.send_offers(master.frameworks[framework_id], offers)
            total += len(offers)
        return total
