"""`alluxio-mesos`: start, stop and inspect the Alluxio Mesos framework.

Like the old `alluxio-mesos-start.sh <mesos-master:5050> [alluxio-master-host]`, `framework start`
reads `conf/alluxio-site.properties` under the home directory and logs to `logs/framework.out`.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import pathlib
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from typing import Any, NoReturn, TextIO

from framework.log_output import LogOutput
from framework.mesos_http import (
    MesosHttpError,
    agent_address,
    agent_runs_framework,
    framework_tasks,
    get_json,
    teardown_framework,
)
from framework.runner import (
    FrameworkProcess,
    RunOptions,
    StartupError,
    install_signal_handlers,
    load_configuration,
)
from framework.scheduler_core import ReloadRefused
from framework.spec import ClusterSpec, SpecError, describe_keys, load_spec_file
from framework.state_store import (
    PersistedState,
    StateError,
    StateStore,
    read_runtime,
    read_state,
)

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

DESCRIPTION = """\
Run Alluxio on Apache Mesos: a Mesos framework that launches the Alluxio master(s), waits until a
master answers, then runs one Alluxio worker per Mesos agent, and keeps them running across task
failures, agent restarts and framework restarts."""

START_EPILOG = """\
The configuration is a java properties file with the old framework's keys (see framework/spec.py):
alluxio.integration.* configure the framework, every other key is an Alluxio property passed to
every master and worker. A .json file with the same flat keys is accepted too.

The framework keeps its id and task records in the state dir and re-subscribes on restart within
alluxio.integration.mesos.failover.timeout (default 1 week): restarting it does not kill Alluxio.
While it runs: SIGHUP reloads the configuration (changed tasks are replaced one at a time),
SIGTERM stops it and leaves Alluxio running, `alluxio-mesos framework stop` tears everything down.

examples:
  alluxio-mesos framework start mesos-master:5050
  alluxio-mesos framework start mesos-master:5050 alluxio-master-host --home /opt/alluxio
  alluxio-mesos framework start 10.0.0.5:5050 --conf /etc/alluxio/alluxio-site.properties --foreground"""


def _default_home() -> pathlib.Path:
    for variable in ("ALLUXIO_MESOS_HOME", "ALLUXIO_HOME"):
        value = os.environ.get(variable)
        if value:
            return pathlib.Path(value)
    return pathlib.Path.cwd()


def _mesos_address(text: str) -> str:
    """host:port of a Mesos master (`:5050` is added when missing)."""
    value = text.strip()
    if not value or "/" in value or " " in value:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a Mesos master address (host:port, e.g. mesos-master:5050)"
        )
    host, _, port = value.rpartition(":")
    if not host:
        return f"{value}:5050"
    if not port.isdigit() or not 1 <= int(port) <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r}: the port must be a number 1-65535")
    return value


def _port(text: str) -> int:
    if not text.isdigit() or not 0 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number (0-65535, 0 picks a free one)")
    return int(text)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r}: must not be negative")
    return value


def _add_location_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--home",
        type=pathlib.Path,
        default=None,
        help="base directory for conf/, logs/ and state/ (default: $ALLUXIO_MESOS_HOME, else $ALLUXIO_HOME, "
        "else the current directory)",
    )
    parser.add_argument(
        "--conf",
        type=pathlib.Path,
        default=None,
        help="the configuration file (default: HOME/conf/alluxio-site.properties)",
    )
    parser.add_argument(
        "--state-dir",
        type=pathlib.Path,
        default=None,
        help="where the framework keeps its id, task records and lock; one per cluster (default: HOME/state)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="alluxio-mesos", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    framework = commands.add_parser(
        "framework",
        help="start, stop or inspect the framework",
        description="Start, stop or inspect the framework.",
    )
    actions = framework.add_subparsers(dest="action", required=True, metavar="ACTION")

    start = actions.add_parser(
        "start",
        help="start the framework (in the background unless --foreground)",
        description="Start the framework and wait until it is registered with Mesos.",
        epilog=START_EPILOG + "\n\nconfiguration keys (= default):\n" + describe_keys(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    start.add_argument(
        "mesos_master", type=_mesos_address, help="the Mesos master, host:port (e.g. mesos-master:5050)"
    )
    start.add_argument(
        "alluxio_master_host",
        nargs="?",
        default=None,
        help="run the Alluxio master on the agent with this hostname (sets alluxio.master.hostname)",
    )
    _add_location_options(start)
    start.add_argument(
        "--log-file",
        type=pathlib.Path,
        default=None,
        help="the framework's log (default: HOME/logs/framework.out)",
    )
    start.add_argument(
        "--foreground",
        action="store_true",
        help="run in this process (for systemd and the like) instead of starting a background process",
    )
    start.add_argument(
        "--wait",
        type=_seconds,
        default=120.0,
        metavar="SECONDS",
        help="without --foreground, how long to wait for the registration (default 120; 0: no wait)",
    )
    start.add_argument(
        "--status-bind",
        default="0.0.0.0",
        metavar="HOST",
        help="address the status endpoint listens on (default 0.0.0.0)",
    )
    start.add_argument(
        "--status-port",
        type=_port,
        default=None,
        metavar="PORT",
        help="status endpoint port (default: alluxio.integration.mesos.status.port, 19990; 0: any free)",
    )
    start.add_argument(
        "--advertise-host",
        default=None,
        metavar="HOST",
        help="hostname Mesos users reach the status endpoint at (default: this machine's FQDN); "
        "registered as the framework's webui_url",
    )
    start.add_argument("--log-to-stderr-only", action="store_true", help=argparse.SUPPRESS)

    stop = actions.add_parser(
        "stop",
        help="tear the framework down: Mesos kills every Alluxio task; waits until none is left",
        description="Tear the framework down (Mesos TEARDOWN) and wait until no Alluxio task is left.",
    )
    _add_location_options(stop)
    stop.add_argument(
        "--mesos-master",
        type=_mesos_address,
        default=None,
        help="the Mesos master (default: the one the framework was started with)",
    )
    stop.add_argument(
        "--timeout",
        type=_seconds,
        default=300.0,
        metavar="SECONDS",
        help="give up after this long (default 300)",
    )

    status = actions.add_parser(
        "status",
        help="show the framework's phase, tasks and why offers were declined",
        description="Read the running framework's status endpoint.",
    )
    _add_location_options(status)
    status.add_argument("--url", default=None, help="the status endpoint (default: the running framework's)")
    status.add_argument("--json", action="store_true", help="print the raw status document")
    return parser


# ---- helpers ---------------------------------------------------------------------------------
def _paths(args: argparse.Namespace) -> tuple[pathlib.Path, pathlib.Path, pathlib.Path]:
    home = (args.home or _default_home()).resolve()
    conf = (args.conf or home / "conf" / "alluxio-site.properties").resolve()
    state_dir = (args.state_dir or home / "state").resolve()
    return home, conf, state_dir


def _fail(message: str, code: int = EXIT_FAILED) -> NoReturn:
    print(f"alluxio-mesos: {message}", file=sys.stderr)
    raise SystemExit(code)


def _say(message: str) -> None:
    print(message, flush=True)


def _configure_logging(log_file: pathlib.Path | None, to_stderr: bool) -> None:
    outputs: list[TextIO] = []
    owned: list[TextIO] = []
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        owned.append(open(log_file, "a", encoding="utf-8"))  # noqa: SIM115 - the handler closes it
        outputs.extend(owned)
    if to_stderr:
        # Python's own stderr writes every line through at once; LogOutput decides when to flush.
        try:
            stderr: TextIO = open(sys.stderr.fileno(), "w", encoding="utf-8", errors="replace", closefd=False)  # noqa: SIM115
            owned.append(stderr)
        except (OSError, ValueError):  # a stderr without a file descriptor (embedded, tests)
            stderr = sys.stderr
        outputs.append(stderr)
    # Neither the caller's file and line nor thread or process names are in LOG_FORMAT; looking
    # them up for every record costs more than the rest of a record (the logging HOWTO's
    # "Optimization" section names these switches).
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    handler = LogOutput(outputs, owned)
    handler.setFormatter(logging.Formatter(LOG_FORMAT))
    logging.basicConfig(level=logging.INFO, handlers=[handler], force=True)


def _load_spec(conf: pathlib.Path, args: argparse.Namespace) -> ClusterSpec:
    options = RunOptions(
        mesos_master=args.mesos_master,
        conf_path=conf,
        state_dir=pathlib.Path("/"),
        master_host=args.alluxio_master_host,
        status_port=args.status_port,
    )
    try:
        return load_configuration(options)
    except SpecError as error:
        _fail(f"{conf}: {error}", EXIT_USAGE)


# ---- start -----------------------------------------------------------------------------------
def cmd_start(args: argparse.Namespace) -> int:
    home, conf, state_dir = _paths(args)
    log_file = (args.log_file or home / "logs" / "framework.out").resolve()
    spec = _load_spec(conf, args)
    holder = StateStore(state_dir).holder_pid()
    if holder is not None:
        _fail(
            f"a framework (pid {holder}) already runs for {state_dir}; `alluxio-mesos framework stop` first"
        )
    if args.foreground:
        return _run_foreground(args, conf, state_dir, log_file, spec)
    return _start_background(args, conf, state_dir, log_file)


def _run_foreground(
    args: argparse.Namespace,
    conf: pathlib.Path,
    state_dir: pathlib.Path,
    log_file: pathlib.Path,
    spec: ClusterSpec,
) -> int:
    _configure_logging(None if args.log_to_stderr_only else log_file, to_stderr=True)
    options = RunOptions(
        mesos_master=args.mesos_master,
        conf_path=conf,
        state_dir=state_dir,
        master_host=args.alluxio_master_host,
        status_bind=args.status_bind,
        status_port=args.status_port,
        advertise_host=args.advertise_host,
    )
    process = FrameworkProcess(options, spec)
    install_signal_handlers(process)
    try:
        return process.run()
    except (StateError, ReloadRefused, StartupError) as error:
        logging.getLogger("framework").error("%s", error)
        return EXIT_USAGE


def _start_background(
    args: argparse.Namespace, conf: pathlib.Path, state_dir: pathlib.Path, log_file: pathlib.Path
) -> int:
    command = [sys.executable, "-m", "framework.cli", "framework", "start", args.mesos_master]
    if args.alluxio_master_host:
        command.append(args.alluxio_master_host)
    command += ["--foreground", "--log-to-stderr-only", "--conf", str(conf), "--state-dir", str(state_dir)]
    command += ["--status-bind", args.status_bind]
    if args.status_port is not None:
        command += ["--status-port", str(args.status_port)]
    if args.advertise_host:
        command += ["--advertise-host", args.advertise_host]
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with open(log_file, "ab") as log:
        child = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            cwd=pathlib.Path(__file__).resolve().parent.parent,
        )
    _say(f"framework started (pid {child.pid}); log: {log_file}")
    if args.wait == 0:
        return EXIT_OK
    return _wait_registered(child, state_dir, log_file, args.wait)


def _wait_registered(
    child: subprocess.Popen[bytes], state_dir: pathlib.Path, log_file: pathlib.Path, wait: float
) -> int:
    deadline = time.monotonic() + wait
    next_report = time.monotonic() + 5
    last: dict[str, Any] | None = None
    while time.monotonic() < deadline:
        code = child.poll()
        if code is not None:
            _say(f"the framework exited with status {code}; last lines of {log_file}:")
            _say(_tail(log_file, 15))
            return EXIT_FAILED
        runtime = read_runtime(state_dir)
        if runtime and runtime.get("pid") == child.pid:
            try:
                last = get_json(str(runtime["status_url"]), "", timeout=2.0)
            except MesosHttpError:
                last = None
            if last and last["framework"]["connected"] and last["framework"]["id"]:
                _say(f"registered with Mesos as framework {last['framework']['id']}; phase {last['phase']}")
                _say(f"status: {runtime['webui_url']} (alluxio-mesos framework status)")
                return EXIT_OK
        if time.monotonic() >= next_report:
            phase = last["phase"] if last else "starting"
            _say(f"... waiting for the registration with Mesos ({phase})")
            next_report = time.monotonic() + 5
        time.sleep(0.25)
    _say(f"not registered after {wait:g}s; the framework keeps trying (see {log_file})")
    return EXIT_FAILED


def _tail(path: pathlib.Path, lines: int) -> str:
    try:
        return "\n".join(path.read_text(encoding="utf-8", errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


# ---- stop ------------------------------------------------------------------------------------
def cmd_stop(args: argparse.Namespace) -> int:
    _, conf, state_dir = _paths(args)
    store = StateStore(state_dir)
    try:
        state = read_state(state_dir)
    except StateError as error:
        _fail(str(error))
    pid = store.holder_pid()
    recorded_id = state.framework_id if state else None
    if pid is None and recorded_id is None:
        _say(f"no framework recorded in {state_dir}; nothing to stop")
        return EXIT_OK
    master = args.mesos_master or (state.mesos_master if state else None)
    deadline = time.monotonic() + args.timeout
    if pid is not None:
        _say(f"asking the framework (pid {pid}) to tear down")
        os.kill(pid, signal.SIGUSR1)
        while store.holder_pid() is not None:
            if time.monotonic() >= deadline:
                _fail(f"the framework (pid {pid}) did not exit within {args.timeout:g}s")
            time.sleep(0.25)
        state = read_state(state_dir)
    remaining_id = state.framework_id if state else None
    if remaining_id is not None:
        # The framework process was not running, or its own teardown did not go through.
        if master is None:
            _fail("the Mesos master is unknown; pass --mesos-master")
        principal, secret = _credentials(conf)
        _say(f"tearing down framework {remaining_id} at {master}")
        try:
            teardown_framework(master, remaining_id, principal, secret)
        except MesosHttpError as error:
            _fail(str(error))
    framework_id = recorded_id or remaining_id
    if framework_id is not None and master is not None:
        _wait_tasks_gone(master, framework_id, deadline)
    if remaining_id is not None:
        _forget(store)
    _say("stopped: no Alluxio task is left")
    return EXIT_OK


def _credentials(conf: pathlib.Path) -> tuple[str | None, str | None]:
    try:
        spec = load_spec_file(conf)
    except SpecError:
        return None, None
    try:
        return spec.principal, spec.mesos_secret()
    except OSError:
        return spec.principal, None


def _wait_tasks_gone(master: str, framework_id: str, deadline: float) -> None:
    next_report = 0.0
    while True:
        try:
            state = get_json(master, "/master/state")
        except MesosHttpError as error:
            _fail(f"cannot confirm the teardown: {error}")
        present, tasks = framework_tasks(state, framework_id)
        busy_agents = [] if present else _agents_still_running(state, framework_id)
        if not present and not tasks and not busy_agents:
            return
        now = time.monotonic()
        if now >= deadline:
            _fail(
                f"framework {framework_id} still has {len(tasks)} task(s) and executors on "
                f"{len(busy_agents)} agent(s) after the timeout"
            )
        if now >= next_report:
            what = f"{len(tasks)} task(s)" if present else f"executors on {', '.join(busy_agents)}"
            _say(f"... waiting: {what} left")
            next_report = now + 5
        time.sleep(0.5)


def _agents_still_running(master_state: dict[str, Any], framework_id: str) -> list[str]:
    busy = []
    for agent in master_state.get("slaves", []):
        address = agent_address(agent)
        if address is None:
            continue
        try:
            agent_state = get_json(address, "/state", timeout=3.0)
        except MesosHttpError:
            continue  # an unreachable agent cannot be checked; the master already removed the tasks
        if agent_runs_framework(agent_state, framework_id):
            busy.append(str(agent.get("hostname", address)))
    return busy


def _forget(store: StateStore) -> None:
    try:
        store.lock()
    except StateError as error:
        _fail(str(error))
    try:
        old = store.load()
        store.save(PersistedState(salt=old.salt, mesos_master=old.mesos_master))
    finally:
        store.unlock()


# ---- status ----------------------------------------------------------------------------------
def cmd_status(args: argparse.Namespace) -> int:
    _, _, state_dir = _paths(args)
    url = args.url
    if url is None:
        runtime = read_runtime(state_dir)
        if runtime is None or StateStore(state_dir).holder_pid() is None:
            _fail(f"no running framework for {state_dir} (start it with `alluxio-mesos framework start`)")
        url = str(runtime["status_url"])
    try:
        document = get_json(url, "")
    except MesosHttpError as error:
        _fail(str(error))
    if args.json:
        print(json.dumps(document, indent=1, sort_keys=True))
        return EXIT_OK
    print(format_status(document))
    return EXIT_OK


def format_status(doc: dict[str, Any]) -> str:
    framework = doc["framework"]
    lines = [
        f"framework {framework['name']} ({framework['id'] or 'not registered'}), phase {doc['phase']}",
        f"mesos master {framework['mesos_master']}, connected: {framework['connected']}",
        f"spec {doc['spec_hash']}",
    ]
    for url in doc["alluxio"]["master_web_urls"]:
        lines.append(f"alluxio master web UI: {url}")
    lines.append("tasks:" if doc["tasks"] else "tasks: none")
    for task in doc["tasks"]:
        current = "" if task["config_current"] else " (old config)"
        lines.append(f"  {task['role']:<6} {task['host']:<24} {task['state']:<14} {task['task_id']}{current}")
    for slot in doc["waiting"]:
        lines.append(
            f"  waiting: {slot['slot']} relaunch in {slot['relaunch_in']:.0f}s"
            f" after {slot['failures']} failure(s)"
        )
    if doc["declines"]:
        lines.append("offers not used:")
        lines.extend(f"  {d['line']} (x{d['count']})" for d in doc["declines"][:20])
    if doc.get("reload_error"):
        lines.append(doc["reload_error"])
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handlers = {"start": cmd_start, "stop": cmd_stop, "status": cmd_status}
    return handlers[args.action](args)


if __name__ == "__main__":
    sys.exit(main())
