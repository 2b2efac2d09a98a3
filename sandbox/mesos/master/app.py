"""Wiring: the aiohttp application, its routes and the master's background tasks."""

from __future__ import annotations

import asyncio
import gc
import logging
import signal

from aiohttp import web

from sandbox.mesos.master.auth import BasicAuthenticator
from sandbox.mesos.master.config import MasterConfig
from sandbox.mesos.master.endpoints import ReadOnlyEndpoints
from sandbox.mesos.master.internal_http import InternalEndpoints
from sandbox.mesos.master.master import Master
from sandbox.mesos.master.operator_http import OperatorEndpoint
from sandbox.mesos.master.pipelining import PipeliningAppRunner
from sandbox.mesos.master.scheduler_http import SchedulerEndpoint
from sandbox.mesos.master.simulated import register_simulated_agents

log = logging.getLogger(__name__)

MAX_REQUEST_BYTES = 256 * 1024 * 1024
IDLE_CONNECTION_SECONDS = 24 * 3600.0


SCHEDULER_PATHS = ("/api/v1/scheduler", "/master/api/v1/scheduler")


def build_app(master: Master) -> tuple[web.Application, SchedulerEndpoint]:
    config = master.config
    credentials = BasicAuthenticator(config.credentials) if config.credentials else None
    scheduler = SchedulerEndpoint(master, credentials if config.authenticate_http_frameworks else None)
    operator = OperatorEndpoint(master, credentials if config.authenticate_http_readwrite else None)
    readonly = ReadOnlyEndpoints(
        master,
        credentials if config.authenticate_http_readonly else None,
        credentials if config.authenticate_http_readwrite else None,
    )
    app = web.Application(client_max_size=MAX_REQUEST_BYTES)
    app.add_routes(
        [
            *(web.route("*", path, scheduler.handle) for path in SCHEDULER_PATHS),
            web.route("*", "/api/v1", operator.handle),
            web.route("*", "/master/api/v1", operator.handle),
            *readonly.routes(),
            *InternalEndpoints(master).routes(),
        ]
    )
    return app, scheduler


async def serve(config: MasterConfig, stop: asyncio.Event | None = None) -> None:
    """Run the master until SIGTERM/SIGINT (or until ``stop`` is set)."""
    master = Master(config)
    # Cancel stream handlers when their client disconnects, so the master learns at once.
    # Keep idle connections open much longer than aiohttp's default hour, like libprocess:
    # pymesos reuses one connection for all its calls and fails a call if the server closed
    # it in the meantime (a quiet framework can easily make no call for an hour).
    # Responses to pipelined calls leave in one write per burst (see coalescing.py), and plain
    # pipelined scheduler calls are answered as soon as they are parsed (see pipelining.py).
    app, scheduler = build_app(master)
    runner = PipeliningAppRunner(
        app,
        dict.fromkeys(SCHEDULER_PATHS, scheduler),
        handler_cancellation=True,
        access_log=None,
        keepalive_timeout=IDLE_CONNECTION_SECONDS,
    )
    await runner.setup()
    await master.start()
    if config.simulated_agents:
        # Registered before the port opens: once /master/health answers, they are all there.
        register_simulated_agents(
            master,
            config.simulated_agents,
            config.simulated_agent_resources,
            config.simulated_agent_attributes,
            config.simulated_agent_hostname,
            config.simulated_task_delay,
        )
    # The master holds many long-lived objects (agents, tasks, offers); the default collector
    # thresholds make the cyclic GC rescan them constantly. Freeze what exists at start-up and
    # collect young objects less often.
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)
    try:
        await web.TCPSite(runner, config.ip, config.port, backlog=1024).start()
    except OSError:
        await master.stop()
        await runner.cleanup()
        raise
    log.info(
        "Master %s (%s) started on %s:%d (advertised %s:%d)",
        master.master_id,
        config.hostname,
        config.ip,
        config.port,
        config.advertise_ip,
        config.advertise_port,
    )
    done = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, done.set)
    try:
        await done.wait()
    finally:
        log.info("master shutting down")
        await master.stop()
        await runner.cleanup()
