"""Keeping the agent registered with the master (Slave::doReliableRegistration and pings).

Registration is retried with Mesos' backoff: a random delay up to
``registration_backoff_factor``, doubling per attempt, capped at one minute. Once
registered, the master pings the agent; if pings stop for 5 ping intervals (Mesos'
agent_ping_timeout x max_agent_ping_timeouts) the agent considers the master lost and
re-registers. A 409 from the master (agent marked gone) makes the agent shut down.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from urllib.parse import urlsplit

from sandbox.mesos.agent.agent import Agent, AgentState
from sandbox.mesos.agent.master_client import MasterRejected, MasterUnreachable

log = logging.getLogger("mesos.agent.registration")

REGISTER_RETRY_INTERVAL_MAX = 60.0
MAX_PING_TIMEOUTS = 5


class Registrar:
    def __init__(self, agent: Agent) -> None:
        self._agent = agent
        self._need_registration = asyncio.Event()
        self._ping_interval = 15.0
        self._last_ping = time.monotonic()
        agent.on_disconnected = self._need_registration.set

    def pinged(self) -> None:
        self._last_ping = time.monotonic()

    async def run(self) -> None:
        """Register (or re-register) whenever needed, until cancelled or the master says go."""
        self._need_registration.set()
        watchdog = asyncio.get_running_loop().create_task(self._watch_pings())
        try:
            while True:
                await self._need_registration.wait()
                if await self._register_until_done():
                    self._need_registration.clear()
                else:
                    return
        finally:
            watchdog.cancel()

    async def _register_until_done(self) -> bool:
        agent = self._agent
        attempt = 0
        factor = agent.flags.registration_backoff_factor
        while True:
            await asyncio.sleep(random.uniform(0, min(factor * (2**attempt), REGISTER_RETRY_INTERVAL_MAX)))
            attempt += 1
            try:
                if agent.agent_id:
                    frameworks, executors, tasks = agent.reregistration_report()
                    _, self._ping_interval = await agent.master.reregister(
                        agent.info, agent.url, frameworks, executors, tasks
                    )
                    agent.master_hostname = urlsplit(agent.master.base_url).hostname
                    self._last_ping = time.monotonic()
                    agent.reregistered()
                else:
                    agent_id, self._ping_interval = await agent.master.register(agent.info, agent.url)
                    agent.master_hostname = urlsplit(agent.master.base_url).hostname
                    self._last_ping = time.monotonic()
                    agent.registered(agent_id)
                return True
            except MasterRejected as error:
                if error.status == 409:
                    await agent.shutdown_by_master(str(error))
                    return False
                log.warning("The master refused the (re-)registration: %s", error)
            except MasterUnreachable as error:
                log.info("Master not reachable yet: %s", error)

    async def _watch_pings(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            if self._agent.state != AgentState.RUNNING:
                continue
            silence = time.monotonic() - self._last_ping
            if silence > self._ping_interval * MAX_PING_TIMEOUTS:
                log.warning("No pings from master received within %.0f seconds", silence)
                self._agent.disconnected()
