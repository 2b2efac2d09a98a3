"""executor/alluxio_process.py (sizes, java discovery, command lines, log tails) and executor/readiness.py.

The JVMs themselves run in tests/integration/test_alluxio_distribution.py; here the commands are
checked for what they must contain, against small real directory layouts.
"""

from __future__ import annotations

import itertools
import socket
import stat
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from executor import alluxio_process as ap
from executor import readiness

MiB = 1024 * 1024


# Every value here was cross-checked against Alluxio 2.9.6's FormatUtils.parseSpaceSize (see
# test_parse_bytes_matches_alluxio_format_utils in the integration tests).
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0", 0),
        ("1", 1),
        ("1B", 1),
        ("64MB", 64 * MiB),
        ("64mb", 64 * MiB),
        ("64m", 64 * MiB),
        ("64MiB", 64 * MiB),
        ("1.5KB", 1536),
        ("0.5B", 0),
        ("1e3", 1000),
        ("1GB", 1024 * MiB),
        ("8Ti", 8 * 1024**4),
        ("2PB", 2 * 1024**5),
        ("1.1PB", 1238489897526886),
        ("0.3GB", 322122547),
        (" 7MB", 7 * MiB),
        (".5k", 512),
        ("+2G", 2 * 1024**3),
    ],
)
def test_parse_bytes_follows_alluxio(text: str, expected: int) -> None:
    assert ap.parse_bytes(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "cannot parse ''"),
        ("MB", "expected a number"),
        ("64 MB", "'64 MB' as a size: no space is allowed between the number and the unit 'MB'"),
        ("4 kib", "no space is allowed between the number and the unit 'kib'"),
        ("64MB ", "trailing whitespace is not allowed"),
        ("1XB", "unknown size unit 'XB'"),
        ("1 potato", "unknown size unit 'potato'"),
        ("1.", "unknown size unit '.'"),
        ("-1MB", "is negative"),
        ("9000PB", "larger than Alluxio can represent"),
        ("1e400", "larger than Alluxio can represent"),
        ("1e300TB", "larger than Alluxio can represent"),
        ("0x10", "expected a number"),
        (64, "must be a string"),
    ],
)
def test_parse_bytes_rejects_with_the_input_named(text: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ap.parse_bytes(text)  # type: ignore[arg-type]


def test_heap_flag_is_whole_mebibytes() -> None:
    assert ap.heap_flag("1GB") == "-Xmx1024m"
    assert ap.heap_flag("1.5GB") == "-Xmx1536m"
    assert ap.heap_flag("100000000") == "-Xmx95m"
    with pytest.raises(ap.AlluxioProcessError, match="heap_size '8MB' is below"):
        ap.heap_flag("8MB")
    with pytest.raises(ap.AlluxioProcessError, match="heap_size: cannot parse 'lots'"):
        ap.heap_flag("lots")


# --- java -------------------------------------------------------------------------------------


def _fake_jdk(root: Path, release_version: str | None, reported_version: str) -> Path:
    """A JDK home whose bin/java is a script reporting ``reported_version`` like `java -version`."""
    java = root / "bin" / "java"
    java.parent.mkdir(parents=True)
    java.write_text(f"#!/bin/sh\necho 'openjdk version \"{reported_version}\" 2020-01-01' >&2\n")
    java.chmod(java.stat().st_mode | stat.S_IXUSR)
    if release_version is not None:
        (root / "release").write_text(f'IMPLEMENTOR="x"\nJAVA_VERSION="{release_version}"\n')
    return root


def test_resolve_java_prefers_the_argument_then_java_home_then_path(tmp_path: Path) -> None:
    jdk = _fake_jdk(tmp_path / "jdk", "17.0.1", "17.0.1")
    other = _fake_jdk(tmp_path / "other", "11.0.2", "11.0.2")
    java = str(jdk / "bin" / "java")

    assert ap.resolve_java(str(jdk), env={}) == java
    assert ap.resolve_java(java, env={"JAVA_HOME": str(other)}) == java
    assert ap.resolve_java(None, env={"JAVA_HOME": str(jdk)}) == java
    assert ap.resolve_java(None, env={"PATH": f"/nonexistent:{jdk / 'bin'}"}) == java


def test_resolve_java_says_what_was_tried(tmp_path: Path) -> None:
    with pytest.raises(ap.AlluxioProcessError, match="neither an executable nor a JDK home"):
        ap.resolve_java(str(tmp_path / "nope"), env={})
    with pytest.raises(ap.AlluxioProcessError, match=f"JAVA_HOME={tmp_path} has no executable bin/java"):
        ap.resolve_java(None, env={"JAVA_HOME": str(tmp_path)})
    with pytest.raises(ap.AlluxioProcessError, match="JAVA_HOME is unset and 'java' is not on PATH"):
        ap.resolve_java(None, env={"PATH": str(tmp_path)})


@pytest.mark.parametrize(
    ("release", "reported", "major"),
    [("1.8.0_392", "9.9.9", 8), ("17.0.15", "9.9.9", 17), (None, "11.0.2", 11), (None, "1.8.0_292", 8)],
)
def test_java_major_version_reads_release_file_or_asks_java(
    tmp_path: Path, release: str | None, reported: str, major: int
) -> None:
    jdk = _fake_jdk(tmp_path / "jdk", release, reported)
    assert ap.java_major_version(str(jdk / "bin" / "java")) == major


def test_module_flags_only_from_java_9(tmp_path: Path) -> None:
    java8 = _fake_jdk(tmp_path / "j8", "1.8.0_392", "1.8.0_392") / "bin" / "java"
    java17 = _fake_jdk(tmp_path / "j17", "17.0.15", "17.0.15") / "bin" / "java"
    assert ap.jvm_module_flags(str(java8)) == []
    assert ap.jvm_module_flags(str(java17)) == list(ap.JDK9_MODULE_FLAGS)
    assert "--add-opens=java.base/java.nio=ALL-UNNAMED" in ap.JDK9_MODULE_FLAGS


# --- commands ---------------------------------------------------------------------------------


@pytest.fixture
def layout(tmp_path: Path) -> dict[str, Path]:
    """A distribution in this project's layout (jar contents do not matter for argv building)."""
    home = tmp_path / "alluxio-2.9.6"
    jars = home / "assembly" / "server"
    jars.mkdir(parents=True)
    for name in ("b-server.jar", "a-shell.jar"):
        (jars / name).write_bytes(b"PK")
    (home / "assembly" / "server.classpath").write_text("b-server.jar\na-shell.jar\n")
    conf = tmp_path / "conf"
    conf.mkdir()
    jdk = _fake_jdk(tmp_path / "jdk", "17.0.15", "17.0.15")
    tmp = tmp_path / "jvm-tmp"
    tmp.mkdir()
    return {"home": home, "conf": conf, "logs": tmp_path / "logs", "tmp": tmp, "jdk": jdk}


def _cfg(layout: dict[str, Path], **kwargs: object) -> ap.AlluxioJvmConfig:
    kwargs.setdefault("tmp_dir", str(layout["tmp"]))
    return ap.AlluxioJvmConfig(
        alluxio_home=str(layout["home"]),
        conf_dir=str(layout["conf"]),
        logs_dir=str(layout["logs"]),
        java=str(layout["jdk"]),
        **kwargs,  # type: ignore[arg-type]
    )


def _props(argv: list[str]) -> dict[str, str]:
    return dict(a[2:].split("=", 1) for a in argv if a.startswith("-D"))


def test_master_command(layout: dict[str, Path]) -> None:
    cfg = _cfg(layout, heap_size="2GB", base_env={"PATH": "/usr/bin", "KEEP": "1"})
    cmd = ap.master_command(cfg)

    java = str(layout["jdk"] / "bin" / "java")
    jars = layout["home"] / "assembly" / "server"
    assert cmd.argv[:2] == [java, "-Xmx2048m"]
    assert cmd.argv[-3:] == [
        "-cp",
        f"{jars / 'b-server.jar'}:{jars / 'a-shell.jar'}:{layout['conf']}",
        ap.MASTER_MAIN_CLASS,
    ]
    for flag in ap.JDK9_MODULE_FLAGS:
        assert flag in cmd.argv
    props = _props(cmd.argv)
    assert props["alluxio.home"] == str(layout["home"])
    assert props["alluxio.conf.dir"] == str(layout["conf"])
    assert props["alluxio.logs.dir"] == str(layout["logs"])
    assert props["alluxio.user.logs.dir"] == str(layout["logs"] / "user")
    assert props["log4j.configuration"] == f"file:{layout['conf']}/log4j.properties"
    assert props["alluxio.logger.type"] == "MASTER_LOGGER"
    assert props["alluxio.master.audit.logger.type"] == "MASTER_AUDIT_LOGGER"
    assert props["io.netty.tryReflectionSetAccessible"] == "true"
    assert props["java.io.tmpdir"] == str(layout["tmp"])
    assert cmd.env == {
        "PATH": "/usr/bin",
        "KEEP": "1",
        "ALLUXIO_HOME": str(layout["home"]),
        "ALLUXIO_CONF_DIR": str(layout["conf"]),
        "ALLUXIO_LOGS_DIR": str(layout["logs"]),
        "JAVA_HOME": str(layout["jdk"]),
    }


def test_worker_and_shell_commands(layout: dict[str, Path]) -> None:
    cfg = _cfg(layout, properties={"alluxio.worker.rpc.port": "4321", "alluxio.x": "a b=c"})

    worker = ap.worker_command(cfg)
    assert worker.argv[1] == "-Xmx1024m"  # DEFAULT_SERVER_HEAP
    assert worker.argv[-1] == ap.WORKER_MAIN_CLASS
    props = _props(worker.argv)
    assert props["alluxio.logger.type"] == "WORKER_LOGGER"
    assert props["alluxio.master.audit.logger.type"] == "NULL_LOGGER"
    assert props["alluxio.worker.rpc.port"] == "4321"
    assert "-Dalluxio.x=a b=c" in worker.argv  # one argv element: no shell quoting involved
    assert not set(ap.SHELL_JVM_FLAGS) & set(worker.argv)

    fs = ap.fs_shell_command(cfg, ["copyFromLocal", "/tmp/a b", "/a"])
    assert fs.argv[-4:] == [ap.FS_SHELL_MAIN_CLASS, "copyFromLocal", "/tmp/a b", "/a"]
    assert fs.argv[1] == "-Xmx256m"
    assert _props(fs.argv)["alluxio.logger.type"] == "USER_LOGGER"
    for flag in ap.SHELL_JVM_FLAGS:
        assert flag in fs.argv

    assert ap.fsadmin_command(cfg, ["report"]).argv[-2:] == [ap.FSADMIN_MAIN_CLASS, "report"]
    assert ap.format_command(cfg).argv[-2:] == [ap.FORMAT_MAIN_CLASS, "master"]
    for command in (worker, fs, ap.format_command(cfg)):
        assert _props(command.argv)["java.io.tmpdir"] == str(layout["tmp"])


def test_every_jvm_needs_its_own_tmp_dir(tmp_path: Path, layout: dict[str, Path]) -> None:
    # The host's /tmp would collect the native libraries (RocksDB's: 12 MB) a killed JVM leaves.
    with pytest.raises(ap.AlluxioProcessError, match="tmp_dir must be set"):
        ap.worker_command(_cfg(layout, tmp_dir=None))
    with pytest.raises(ap.AlluxioProcessError, match=r"tmp_dir .*/missing is not a directory"):
        ap.fs_shell_command(_cfg(layout, tmp_dir=str(tmp_path / "missing")), ["ls", "/"])


def test_official_tarball_layout_is_accepted(tmp_path: Path, layout: dict[str, Path]) -> None:
    home = tmp_path / "official"
    (home / "assembly").mkdir(parents=True)
    (home / "assembly" / "alluxio-server-2.9.6.jar").write_bytes(b"PK")
    cp = ap.server_classpath(str(home), str(layout["conf"]))
    assert cp == f"{home / 'assembly' / 'alluxio-server-2.9.6.jar'}:{layout['conf']}"


def test_bad_layouts_and_properties_are_named(tmp_path: Path, layout: dict[str, Path]) -> None:
    (layout["home"] / "assembly" / "server" / "a-shell.jar").unlink()
    with pytest.raises(ap.AlluxioProcessError, match=r"incomplete: 1 jar\(s\) listed .* missing"):
        ap.master_command(_cfg(layout))

    with pytest.raises(ap.AlluxioProcessError, match="is not an Alluxio distribution"):
        ap.server_classpath(str(tmp_path), str(layout["conf"]))
    with pytest.raises(ap.AlluxioProcessError, match=r"alluxio_home .* is not a directory"):
        ap.master_command(ap.AlluxioJvmConfig(str(tmp_path / "x"), "c", "l"))
    with pytest.raises(ap.AlluxioProcessError, match="conf_dir must be set"):
        ap.master_command(ap.AlluxioJvmConfig(str(tmp_path), "", "l"))

    (layout["home"] / "assembly" / "server" / "a-shell.jar").write_bytes(b"PK")
    with pytest.raises(ap.AlluxioProcessError, match="properties: 'bad key' is not a valid property name"):
        ap.master_command(_cfg(layout, properties={"bad key": "1"}))
    with pytest.raises(ap.AlluxioProcessError, match=r"properties\['k'\]: value must be a single line"):
        ap.master_command(_cfg(layout, properties={"k": "a\nb"}))
    with pytest.raises(ap.AlluxioProcessError, match=r"properties\['k'\]: value must be a string"):
        ap.master_command(_cfg(layout, properties={"k": 1}))


# --- readiness (executor/readiness.py, the one readiness API) -------------------------------

_SETTINGS_FRAME = b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"
_CLIENT_HELLO_BYTES = 24 + 9  # the HTTP/2 client preface and the probe's empty SETTINGS frame


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Http2Listener:
    """A real listening socket on 127.0.0.1 that answers every HTTP/2 client preface with SETTINGS,
    like a gRPC server; ``answer=False`` accepts connections but never answers (a JVM that bound
    its port before serving it). ``open()`` may be called later than construction."""

    def __init__(self, port: int, answer: bool = True) -> None:
        self.port = port
        self.answer = answer
        self.opened_at = 0.0
        self._server = socket.socket()
        self._server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def open(self) -> None:
        self._server.bind(("127.0.0.1", self.port))
        self._server.listen(16)
        self._server.settimeout(0.05)
        self.opened_at = time.monotonic()
        self._thread.start()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._server.accept()
            except OSError:
                continue
            with conn:
                conn.settimeout(2)
                try:
                    received = b""
                    while len(received) < _CLIENT_HELLO_BYTES:
                        chunk = conn.recv(_CLIENT_HELLO_BYTES - len(received))
                        if not chunk:
                            break
                        received += chunk
                    if self.answer and received.startswith(b"PRI * HTTP/2.0"):
                        conn.sendall(_SETTINGS_FRAME)
                    while conn.recv(64):  # let the client close first, so no reset loses the answer
                        pass
                except OSError:
                    pass

    def close(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        self._server.close()


@pytest.fixture
def listener() -> Iterator[Http2Listener]:
    server = Http2Listener(_free_port())
    try:
        yield server
    finally:
        server.close()


def test_readiness_sees_an_answering_port_within_250ms_of_it_opening(listener: Http2Listener) -> None:
    opener = threading.Timer(0.6, listener.open)
    try:
        opener.start()
        ready = readiness.wait_until_answering("127.0.0.1", listener.port, timeout=10)
        seen_at = time.monotonic()
    finally:
        opener.cancel()
        opener.join()
    assert listener.opened_at > 0
    assert 0 <= seen_at - listener.opened_at < 0.25
    assert 0.5 < ready.waited_secs < 1.0
    assert 0 <= ready.open_detected_within_secs < 0.25


def test_a_port_that_accepts_but_never_answers_is_not_ready() -> None:
    silent = Http2Listener(_free_port(), answer=False)
    try:
        silent.open()
        started = time.monotonic()
        expected = f"127.0.0.1:{silent.port} did not answer within 1s"
        with pytest.raises(readiness.NotReady, match=expected) as e:
            readiness.wait_until_answering("127.0.0.1", silent.port, timeout=1)
        assert e.value.aborted is False
        assert 1.0 <= time.monotonic() - started < 2.0
    finally:
        silent.close()


def test_readiness_times_out_on_a_closed_port() -> None:
    port = _free_port()
    started = time.monotonic()
    with pytest.raises(readiness.NotReady, match=f"127.0.0.1:{port} did not answer within 0.5s") as e:
        readiness.wait_until_answering("127.0.0.1", port, timeout=0.5)
    assert e.value.aborted is False
    assert 0.5 <= time.monotonic() - started < 1.5


def test_readiness_stops_when_abort_gives_a_reason() -> None:
    port = _free_port()
    calls: list[float] = []

    def abort() -> str | None:
        calls.append(time.monotonic())
        return "the JVM exited with status 1" if len(calls) >= 3 else None

    with pytest.raises(readiness.NotReady, match="the JVM exited with status 1") as e:
        readiness.wait_until_answering("127.0.0.1", port, timeout=30, abort=abort)
    assert e.value.aborted is True
    assert len(calls) == 3
    # Polled about every 50 ms: quick enough to see a port open, slow enough not to spin.
    gaps = [b - a for a, b in itertools.pairwise(calls)]
    assert all(0.04 <= gap < 0.2 for gap in gaps), gaps


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"port": 0}, "port must be an integer between 1 and 65535, got 0"),
        ({"port": 65536}, "port must be an integer between 1 and 65535, got 65536"),
        ({"port": "19998"}, "port must be an integer between 1 and 65535, got '19998'"),
        ({"timeout": 0}, "timeout must be a positive number of seconds, got 0"),
        ({"poll_interval": -1}, "poll_interval must be a positive number of seconds, got -1"),
    ],
)
def test_readiness_rejects_bad_arguments_by_name(kwargs: dict[str, object], message: str) -> None:
    args: dict[str, object] = {"host": "127.0.0.1", "port": 19998, "timeout": 1.0, **kwargs}
    with pytest.raises(ValueError, match=message):
        readiness.wait_until_answering(**args)  # type: ignore[arg-type]


def test_a_socket_connected_to_itself_is_not_a_server() -> None:
    # What a bare connect can hit on an unused port in the ephemeral range: TCP simultaneous open
    # connects the socket to itself, and it then reads its own preface back.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(2)
        sock.connect(sock.getsockname())
        assert readiness.is_self_connected(sock) is True
        assert readiness.answers_http2(sock, answer_timeout=0.5) is False


def test_probe_tells_connected_from_answered(listener: Http2Listener) -> None:
    listener.open()
    answered = readiness.probe("127.0.0.1", listener.port)
    assert answered.connected
    assert answered.answered
    assert readiness.rpc_answers("127.0.0.1", listener.port) is True
    listener.close()
    assert readiness.probe("127.0.0.1", listener.port) == readiness.Probe(False, False, 0.0, 0.0)


# --- logs -------------------------------------------------------------------------------------


def test_tail_file(tmp_path: Path) -> None:
    log = tmp_path / "master.log"
    assert ap.tail_file(str(log)) == ""
    log.write_bytes(b"".join(b"line %d\n" % i for i in range(100)) + b"bad \xff byte\n")
    assert ap.tail_file(str(log), max_lines=3) == "line 98\nline 99\nbad \ufffd byte"
    # Only whole lines: a line cut by the byte limit is dropped, one that fits exactly is kept.
    last_two = len(b"line 99\n") + len(b"bad \xff byte\n")
    assert ap.tail_file(str(log), max_lines=50, max_bytes=last_two - 1) == "bad \ufffd byte"
    assert ap.tail_file(str(log), max_lines=50, max_bytes=last_two) == "line 99\nbad \ufffd byte"
    assert ap.tail_file(str(log), max_lines=50, max_bytes=4) == ""
    assert ap.tail_file(str(log), max_lines=0) == ""
