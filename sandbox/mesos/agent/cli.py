"""``python -m sandbox.mesos agent --master=host:port --work_dir=DIR [flags]``: run an agent.

Exit status: 0 after SIGTERM/SIGINT (executors keep running, as with a real agent restart) or
after the master shut this agent down; 1 for bad flags (with usage, like mesos-agent), when
the HTTP port cannot be bound, or when recovery refuses the checkpointed state.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
import sys
import time

from aiohttp import web

from sandbox.mesos.agent.agent import Agent, RecoveryFailed
from sandbox.mesos.agent.agent_info import build_agent_info, resolve_address
from sandbox.mesos.agent.flags import AgentFlags, FlagError, load_flags, usage
from sandbox.mesos.agent.master_client import parse_master_address
from sandbox.mesos.agent.recovery import CorruptCheckpoint
from sandbox.mesos.agent.registration import Registrar
from sandbox.mesos.agent.server import build_app

log = logging.getLogger("mesos.agent")


class GlogFormatter(logging.Formatter):
    """``I1126 18:09:01.123456  4242 agent] message``, the line format of Mesos' logs."""

    def format(self, record: logging.LogRecord) -> str:
        level = record.levelname[0] if record.levelname[0] in "IWEF" else "I"
        stamp = time.strftime("%m%d %H:%M:%S", time.localtime(record.created))
        micros = int((record.created % 1) * 1_000_000)
        source = record.name.rsplit(".", 1)[-1]
        line = f"{level}{stamp}.{micros:06d} {record.process:>5} {source}] {record.getMessage()}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def _configure_logging() -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(GlogFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.INFO)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)


async def _run(flags: AgentFlags) -> int:
    parse_master_address(flags.master)
    try:
        os.makedirs(flags.work_dir, exist_ok=True)
    except OSError as error:
        log.error(
            "EXIT with status 1: Failed to create agent work directory '%s': %s",
            flags.work_dir,
            error.strerror,
        )
        return 1
    address = resolve_address(flags)
    info = build_agent_info(flags, address)
    # Mesos wipes the fetcher cache on start: it keeps no record of what the files are.
    shutil.rmtree(flags.fetcher_cache_dir, ignore_errors=True)

    agent = Agent(flags, address, info)
    registrar = Registrar(agent)
    runner = web.AppRunner(build_app(agent, registrar), handle_signals=False, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, address.bind_ip, address.port, reuse_address=True)
        await site.start()
    except OSError as error:
        await runner.cleanup()
        log.error(
            "EXIT with status 1: Failed to initialize: Failed to bind on %s:%d: %s",
            address.bind_ip,
            address.port,
            error.strerror,
        )
        return 1
    log.info("Agent started on %s with id %s", agent.pid, agent.agent_id or "(not registered)")
    if address.ip.startswith("127."):
        log.warning("Agent bound to loopback interface! Cannot communicate with remote master(s).")

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    exit_code = 0
    try:
        recovery = loop.create_task(agent.recover())
        stopper = loop.create_task(stop.wait())
        await asyncio.wait({recovery, stopper}, return_when=asyncio.FIRST_COMPLETED)
        if recovery.done():
            recovery.result()
            registration = loop.create_task(registrar.run())
            finished = loop.create_task(agent.terminated.wait())
            await asyncio.wait({stopper, finished, registration}, return_when=asyncio.FIRST_COMPLETED)
            registration.cancel()
            finished.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await registration
        recovery.cancel()
        stopper.cancel()
    except (RecoveryFailed, CorruptCheckpoint) as error:
        log.error("EXIT with status 1: %s", error)
        exit_code = 1
    finally:
        await agent.stop()
        await runner.cleanup()
    return exit_code


def main(argv: list[str] | None = None) -> int:
    arguments = sys.argv[1:] if argv is None else argv
    try:
        flags = load_flags(arguments)
    except FlagError as error:
        print(usage(str(error)), file=sys.stderr)
        return 1
    if flags.help:
        print(usage())
        return 0
    _configure_logging()
    try:
        return asyncio.run(_run(flags))
    except (FlagError, ValueError) as error:
        log.error("EXIT with status 1: %s", error)
        return 1
