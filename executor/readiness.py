"""Is the Alluxio server answering on its RPC port? A gRPC (HTTP/2) handshake, not a bare connect.

A TCP connect alone is not proof: a connect to a local port in the ephemeral range with nobody
listening can connect the socket to itself (TCP simultaneous open), and a socket that is bound
but not yet served accepts into its backlog. A gRPC server answers the HTTP/2 client preface with
its own SETTINGS frame, which neither of those can fake.

Two numbers describe how quickly readiness is seen: how soon after the port opened the probe
connected (bounded by the poll interval), and how long the server then took to send its first
answer (the JVM's own warm-up, typically a few hundred ms for the first connection).
"""

from __future__ import annotations

import socket
import time
from typing import Callable, NamedTuple, Optional

POLL_INTERVAL_SECS = 0.05
CONNECT_TIMEOUT_SECS = 0.25
# Once connected, wait this long for SETTINGS: a starting JVM may take a while on its first
# connection, and giving up early would only start the same wait again on a new connection.
ANSWER_TIMEOUT_SECS = 2.0
_CLIENT_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
_EMPTY_SETTINGS_FRAME = b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"
_FRAME_HEADER_BYTES = 9
_SETTINGS = 0x4


class Probe(NamedTuple):
    connected: bool  # something accepted the TCP connection (not the socket itself)
    answered: bool  # and answered the HTTP/2 preface with SETTINGS
    connected_at: float  # time.monotonic() when the connection was established (0.0 if never)
    answer_secs: float  # from connected to the answer (or to giving up)


class NotReady(Exception):
    """Waiting stopped: the deadline passed, or ``abort`` gave a reason (carried in the message)."""

    def __init__(self, message: str, aborted: bool) -> None:
        super().__init__(message)
        self.aborted = aborted


class Ready(NamedTuple):
    waited_secs: float
    # Upper bound of the time between the port opening and the probe connecting to it.
    open_detected_within_secs: float
    first_answer_secs: float


def probe(
    host: str,
    port: int,
    connect_timeout: float = CONNECT_TIMEOUT_SECS,
    answer_timeout: float = ANSWER_TIMEOUT_SECS,
) -> Probe:
    try:
        sock = socket.create_connection((host, port), timeout=connect_timeout)
    except OSError:
        return Probe(False, False, 0.0, 0.0)
    connected_at = time.monotonic()
    with sock:
        if is_self_connected(sock):
            return Probe(False, False, 0.0, 0.0)  # nothing listens there
        answered = answers_http2(sock, answer_timeout)
    return Probe(True, answered, connected_at, time.monotonic() - connected_at)


def is_self_connected(sock: socket.socket) -> bool:
    """True for a socket connected to itself (TCP simultaneous open on an unused local port)."""
    try:
        return bool(sock.getsockname() == sock.getpeername())
    except OSError:
        return False


def answers_http2(sock: socket.socket, answer_timeout: float = ANSWER_TIMEOUT_SECS) -> bool:
    """Send the HTTP/2 client preface on a connected socket; True if the peer answers SETTINGS.

    A socket connected to itself reads its own preface back, which is not a SETTINGS frame.
    """
    header = b""
    try:
        sock.settimeout(answer_timeout)
        sock.sendall(_CLIENT_PREFACE + _EMPTY_SETTINGS_FRAME)
        while len(header) < _FRAME_HEADER_BYTES:
            chunk = sock.recv(_FRAME_HEADER_BYTES - len(header))
            if not chunk:
                break
            header += chunk
    except OSError:
        return False
    return len(header) == _FRAME_HEADER_BYTES and header[3] == _SETTINGS


def rpc_answers(host: str, port: int, timeout: float = CONNECT_TIMEOUT_SECS) -> bool:
    """True if an HTTP/2 server on host:port answers the client preface with SETTINGS."""
    return probe(host, port, timeout, timeout).answered


def wait_until_answering(
    host: str,
    port: int,
    timeout: float,
    abort: Optional[Callable[[], Optional[str]]] = None,
    poll_interval: float = POLL_INTERVAL_SECS,
) -> Ready:
    """Probe every ``poll_interval`` (50 ms) until the server on host:port answers.

    Raises NotReady after ``timeout`` seconds, or as soon as ``abort`` (called before every probe)
    returns a reason such as "the JVM exited with status 1"; ``NotReady.aborted`` tells which.
    Raises ValueError for a port outside 1-65535 or a timeout or interval that is not positive.
    """
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        raise ValueError("port must be an integer between 1 and 65535, got %r" % (port,))
    if not timeout > 0:
        raise ValueError("timeout must be a positive number of seconds, got %r" % (timeout,))
    if not poll_interval > 0:
        raise ValueError("poll_interval must be a positive number of seconds, got %r" % (poll_interval,))
    start = time.monotonic()
    deadline = start + timeout
    last_closed = start
    while True:
        reason = abort() if abort is not None else None
        if reason:
            raise NotReady("stopped waiting for %s:%d: %s" % (host, port, reason), aborted=True)
        probe_start = time.monotonic()
        remaining = max(0.01, deadline - probe_start)
        result = probe(host, port, min(CONNECT_TIMEOUT_SECS, remaining), min(ANSWER_TIMEOUT_SECS, remaining))
        if result.answered:
            return Ready(
                waited_secs=time.monotonic() - start,
                open_detected_within_secs=result.connected_at - last_closed,
                first_answer_secs=result.answer_secs,
            )
        if not result.connected:
            last_closed = probe_start
        now = time.monotonic()
        if now >= deadline:
            raise NotReady("%s:%d did not answer within %gs" % (host, port, timeout), aborted=False)
        time.sleep(min(poll_interval, deadline - now))
