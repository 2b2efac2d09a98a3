"""Offer allocation: which framework is offered which agent's free resources, and when.

Modeled on Mesos' hierarchical allocator, simplified to what a single-cluster stand-in needs:

* batch allocation every ``--allocation_interval``, plus a prompt (batched) run when resources
  are freed or agents/frameworks appear;
* an agent's free resources go to one framework role per cycle, frameworks taking turns;
* a framework is only offered unreserved resources and those reserved for its role(s);
* refusal filters from DECLINE/ACCEPT (``refuse_seconds``, default 5) hide an agent's
  resources from that framework while they are a subset of what it refused;
* SUPPRESS stops offers for a role until REVIVE, which also clears the framework's filters;
* leftovers smaller than Mesos' ``--min_allocatable_resources`` (cpus:0.01 | mem:32) are not
  offered, so an agent whose cpus/mem are all used stops producing port-only offers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import defaultdict
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
        self._turn = 0
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
        while True:
            await asyncio.sleep(self._interval)
            try:
                self.allocate()
            except Exception:  # an allocation bug must not stop all future allocations
                log.exception("allocation cycle failed")

    def request(self) -> None:
        """Allocate soon; many requests in the same instant make one cycle."""
        if self._prompt is None:
            self._prompt = asyncio.get_running_loop().call_later(PROMPT_ALLOCATION_DELAY, self._run_prompt)

    def _run_prompt(self) -> None:
        self._prompt = None
        try:
            self.allocate()
        except Exception:
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

    def _filtered(self, framework: Framework, agent: Agent, resources: Resources, now: float) -> bool:
        entries = framework.filters.get(agent.agent_id)
        if not entries:
            return False
        live = [(refused, expiry) for refused, expiry in entries if expiry > now]
        if len(live) != len(entries):
            if live:
                framework.filters[agent.agent_id] = live
            else:
                del framework.filters[agent.agent_id]
        return any(refused.contains(resources) for refused, _ in live)

    def revive(self, framework: Framework, roles: list[str]) -> None:
        framework.filters.clear()
        if roles:
            framework.suppressed_roles.difference_update(roles)
        else:
            framework.suppressed_roles.clear()
        self.request()

    def suppress(self, framework: Framework, roles: list[str]) -> None:
        framework.suppressed_roles.update(roles if roles else framework.roles())

    # -- the allocation cycle -------------------------------------------------------------

    def allocate(self) -> int:
        """One allocation cycle; returns how many offers were made."""
        self.cycles += 1
        master = self._master
        candidates = [
            f for f in master.frameworks.values() if f.active and f.connected and f.offerable_roles()
        ]
        if not candidates or not master.agents:
            return 0
        now = asyncio.get_running_loop().time()
        made: dict[str, list[Offer]] = defaultdict(list)
        count = len(candidates)
        for agent in list(master.agents.values()):
            if not agent.active:
                continue
            available = agent.available()
            if not allocatable(available):
                continue
            for step in range(count):
                framework = candidates[(self._turn + step) % count]
                offered_here = False
                for role in framework.offerable_roles():
                    resources = available.allocatable_to([role])
                    if not allocatable(resources) or self._filtered(framework, agent, resources, now):
                        continue
                    made[framework.framework_id].append(master.add_offer(framework, agent, resources, role))
                    available = available - resources
                    offered_here = True
                if offered_here:
                    self._turn = (self._turn + step + 1) % count
                    break
        total = 0
        for framework_id, offers in made.items():
            master.send_offers(master.frameworks[framework_id], offers)
            total += len(offers)
        return total
