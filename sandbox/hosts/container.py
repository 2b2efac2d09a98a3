"""Sandbox hosts: containers of the local host image, reached over SSH with verified host keys.

A host is started with testcontainers from the image built by ``setup/bootstrap.sh host-image``
(never pulled: no registry is reachable). The client logs in as root with an ed25519 key made for
the session. The container's real host key is read out-of-band with ``docker exec``, written to a
known_hosts file, and the fabric connection refuses any server that does not present that key.
"""

from __future__ import annotations

import base64
import binascii
import os
import secrets
import socket
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import docker.errors
import paramiko
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from fabric import Config, Connection
from testcontainers.core.container import DockerContainer

from sandbox.hosts.image import image_tag

SSH_PORT = 22
HOST_KEY_PATH = "/etc/ssh/ssh_host_ed25519_key.pub"
HOST_LABEL = "org.alluxio-mesos.sandbox-host"
DEFAULT_STARTUP_TIMEOUT = 30.0
_LOG_TAIL_LINES = 30


class HostImageMissingError(RuntimeError):
    """The host image is not in the local Docker image store (and is never pulled)."""


class HostStartError(RuntimeError):
    """A host container did not come up with a working sshd."""


@dataclass(frozen=True)
class ClientKey:
    """An ed25519 key pair for logging in to sandbox hosts as root."""

    private_key_path: Path
    public_key: str  # one OpenSSH line: "ssh-ed25519 AAAA... comment"

    @classmethod
    def generate(cls, directory: Path, comment: str = "alluxio-mesos-sandbox") -> ClientKey:
        """Write a new key pair into ``directory`` (private key mode 0600) and return it."""
        key = Ed25519PrivateKey.generate()
        private_path = directory / "id_ed25519"
        private_bytes = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.OpenSSH, serialization.NoEncryption()
        )
        # Created 0600 from the start: the key never exists with wider permissions, even briefly.
        fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(private_bytes)
        public = key.public_key().public_bytes(
            serialization.Encoding.OpenSSH, serialization.PublicFormat.OpenSSH
        )
        public_line = f"{public.decode()} {comment}"
        (directory / "id_ed25519.pub").write_text(public_line + "\n")
        return cls(private_key_path=private_path, public_key=public_line)


def parse_public_key(line: str) -> paramiko.PKey:
    """Parse one OpenSSH public key line ("type base64 [comment]") into a paramiko key."""
    fields = line.split()
    if len(fields) < 2:
        raise ValueError(f"not an OpenSSH public key line: {line!r}")
    key_type, blob = fields[0], fields[1]
    try:
        data = base64.b64decode(blob, validate=True)
    except binascii.Error as error:
        raise ValueError(f"public key of type {key_type} is not valid base64: {error}") from None
    return paramiko.PKey.from_type_string(key_type, data)


def known_hosts_name(address: str, port: int) -> str:
    """The host name paramiko looks up in known_hosts for this address and port."""
    return address if port == SSH_PORT else f"[{address}]:{port}"


def write_known_hosts(path: Path, address: str, port: int, host_public_key: str) -> None:
    """Write a known_hosts file that trusts exactly ``host_public_key`` for ``address:port``."""
    key = parse_public_key(host_public_key)
    host_keys = paramiko.HostKeys()
    host_keys.add(known_hosts_name(address, port), key.get_name(), key)
    host_keys.save(str(path))


def verified_connection(
    address: str,
    port: int,
    known_hosts: Path,
    client_key: ClientKey,
    *,
    user: str = "root",
    connect_timeout: int = 10,
) -> Connection:
    """A fabric connection that only talks to a server presenting a key listed in ``known_hosts``.

    Fabric's default policy silently trusts unknown servers (AutoAddPolicy); here an unknown
    server fails with SSHException and a different key with BadHostKeyException. No ssh_config or
    user key, agent or known_hosts file of this machine is consulted.
    """
    if not known_hosts.is_file():
        raise FileNotFoundError(f"known_hosts file {known_hosts} does not exist")
    # An explicit empty SSHConfig and lazy=True keep ~/.ssh/config and fabric's config files out.
    # in_stream=False: commands never read this process's stdin (automation, not a terminal).
    config = Config(ssh_config=paramiko.SSHConfig(), lazy=True, overrides={"run": {"in_stream": False}})
    connection = Connection(
        host=address,
        port=port,
        user=user,
        config=config,
        connect_timeout=connect_timeout,
        connect_kwargs={
            "key_filename": [str(client_key.private_key_path)],
            "look_for_keys": False,
            "allow_agent": False,
        },
    )
    connection.client.set_missing_host_key_policy(paramiko.RejectPolicy())
    # get_host_keys().load (not load_host_keys) so paramiko never writes back to the file.
    connection.client.get_host_keys().load(str(known_hosts))
    return connection


@dataclass(frozen=True)
class SandboxHost:
    """A running host container and what is needed to reach it over SSH."""

    container_id: str
    name: str
    address: str
    port: int
    host_public_key: str  # "ssh-ed25519 AAAA...", as read from the container's file system
    known_hosts: Path
    client_key: ClientKey

    def connect(self, *, user: str = "root", connect_timeout: int = 10) -> Connection:
        return verified_connection(
            self.address,
            self.port,
            self.known_hosts,
            self.client_key,
            user=user,
            connect_timeout=connect_timeout,
        )


def _bridge_address(container: DockerContainer) -> str:
    wrapped = container.get_wrapped_container()
    wrapped.reload()
    networks: dict[str, dict[str, str]] = wrapped.attrs["NetworkSettings"].get("Networks") or {}
    for settings in networks.values():
        if settings.get("IPAddress"):
            return settings["IPAddress"]
    raise HostStartError(
        f"container {wrapped.name} has no IP address on any Docker network ({sorted(networks)})"
    )


def _log_tail(container: DockerContainer) -> str:
    try:
        logs: bytes = container.get_wrapped_container().logs(tail=_LOG_TAIL_LINES)
    except docker.errors.APIError as error:
        return f"(container log unavailable: {error})"
    return logs.decode(errors="replace").rstrip() or "(container log is empty)"


def _answers_ssh(address: str, port: int) -> bool:
    try:
        with socket.create_connection((address, port), timeout=1.0) as sock:
            sock.settimeout(2.0)
            return sock.recv(8).startswith(b"SSH-")
    except OSError:
        return False


def _wait_for_sshd(container: DockerContainer, address: str, port: int, timeout: float) -> None:
    """Wait until sshd sends its banner; fail early, with the container log, if the container exits."""
    wrapped = container.get_wrapped_container()
    deadline = time.monotonic() + timeout
    while True:
        wrapped.reload()
        if wrapped.status in ("exited", "dead"):
            code = wrapped.attrs["State"].get("ExitCode")
            raise HostStartError(
                f"container {wrapped.name} exited with status {code} before sshd answered; "
                f"its log:\n{_log_tail(container)}"
            )
        if _answers_ssh(address, port):
            return
        if time.monotonic() >= deadline:
            raise HostStartError(
                f"sshd in container {wrapped.name} did not answer on {address}:{port} within {timeout:.0f}s; "
                f"its log:\n{_log_tail(container)}"
            )
        time.sleep(0.2)


def _read_host_key(container: DockerContainer) -> str:
    result = container.get_wrapped_container().exec_run(["cat", HOST_KEY_PATH])
    output = result.output.decode(errors="replace").strip()
    if result.exit_code != 0:
        raise HostStartError(f"cannot read {HOST_KEY_PATH} in the container: {output}")
    key_type, blob = output.split()[:2]
    parse_public_key(output)  # rejects a malformed file before anything trusts it
    return f"{key_type} {blob}"


def _ensure_local_image(container: DockerContainer) -> None:
    # testcontainers pulls images it cannot find locally; with no registry that would hang or fail
    # obscurely, so a missing image is reported here, before anything is created.
    try:
        container.get_docker_client().client.images.get(container.image)
    except docker.errors.ImageNotFound:
        raise HostImageMissingError(
            f"the sandbox host image {container.image} is not in the local Docker image store; "
            "build it with 'setup/bootstrap.sh host-image' (images are never pulled)"
        ) from None


@contextmanager
def sandbox_host(
    *,
    client_key: ClientKey | None = None,
    image: str | None = None,
    name: str | None = None,
    cap_add: Sequence[str] = (),
    startup_timeout: float = DEFAULT_STARTUP_TIMEOUT,
) -> Iterator[SandboxHost]:
    """Start a host container and yield it once sshd answers; always remove the container after.

    ``client_key`` is the key authorized for root (a fresh one is made if omitted); ``cap_add``
    grants capabilities, e.g. ``["SYS_ADMIN"]`` to mount tmpfs inside the host.
    """
    image = image or image_tag()
    name = name or f"alluxio-mesos-host-{secrets.token_hex(4)}"
    with tempfile.TemporaryDirectory(prefix=f"{name}-ssh-") as work_dir:
        work = Path(work_dir)
        key = client_key or ClientKey.generate(work)
        try:
            container = (
                DockerContainer(image)
                .with_name(name)
                .with_env("AUTHORIZED_KEYS", key.public_key)
                .with_kwargs(hostname=name, labels={HOST_LABEL: "true"}, cap_add=list(cap_add))
            )
        except docker.errors.DockerException as error:
            raise HostStartError(
                f"cannot talk to the Docker engine ({error}); start it with 'setup/bootstrap.sh docker'"
            ) from None
        try:
            _ensure_local_image(container)
            container.start()
            address = _bridge_address(container)
            _wait_for_sshd(container, address, SSH_PORT, startup_timeout)
            host_public_key = _read_host_key(container)
            known_hosts = work / "known_hosts"
            write_known_hosts(known_hosts, address, SSH_PORT, host_public_key)
            yield SandboxHost(
                container_id=container.get_container_id(),
                name=name,
                address=address,
                port=SSH_PORT,
                host_public_key=host_public_key,
                known_hosts=known_hosts,
                client_key=key,
            )
        finally:
            container.stop(force=True, delete_volume=True)
