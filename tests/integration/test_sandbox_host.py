"""The sandbox host image and its helper, against a real Docker engine and real sshd.

Needs `setup/bootstrap.sh docker host-image`. Every container started here is removed, also when a
test fails, and every key and known_hosts file lives in a temporary directory removed afterwards.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterator
from pathlib import Path

import docker
import docker.errors
import paramiko
import pytest

from sandbox.hosts.container import (
    HOST_LABEL,
    ClientKey,
    HostImageMissingError,
    SandboxHost,
    sandbox_host,
    verified_connection,
    write_known_hosts,
)
from sandbox.hosts.image import image_tag

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def docker_client() -> Iterator[docker.DockerClient]:
    client = docker.from_env()
    try:
        client.ping()
        yield client
    finally:
        client.close()


@pytest.fixture(scope="module")
def host_image(docker_client: docker.DockerClient) -> str:
    tag = image_tag()
    try:
        docker_client.images.get(tag)
    except docker.errors.ImageNotFound:
        pytest.fail(f"the host image {tag} is missing; build it with 'setup/bootstrap.sh host-image'")
    return tag


@pytest.fixture(scope="module")
def scratch_dir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="test-sandbox-host-") as path:
        yield Path(path)


@pytest.fixture(scope="module")
def client_key(scratch_dir: Path) -> ClientKey:
    key_dir = scratch_dir / "client"
    key_dir.mkdir()
    return ClientKey.generate(key_dir)


@pytest.fixture(scope="module")
def host(host_image: str, client_key: ClientKey) -> Iterator[SandboxHost]:
    with sandbox_host(image=host_image, client_key=client_key, cap_add=["SYS_ADMIN"]) as started:
        yield started


def other_ed25519_public_key(directory: Path) -> str:
    directory.mkdir()
    return ClientKey.generate(directory).public_key


def test_commands_run_over_ssh_as_root(host: SandboxHost) -> None:
    with host.connect() as connection:
        assert connection.run("id -un", hide=True).stdout.strip() == "root"

        python = connection.run("python3 -V", hide=True).stdout.strip()
        assert re.fullmatch(r"Python 3\.\d+\.\d+", python), python

        java = connection.run("java -version", hide=True)
        assert 'openjdk version "17.' in java.stderr, java.stderr

        ip = connection.run("ip -V", hide=True).stdout
        assert ip.startswith("ip utility, iproute2"), ip

        processes = connection.run("ps -eo pid=,comm=", hide=True).stdout
        by_pid = dict(line.split(None, 1) for line in processes.strip().splitlines())
        # tini is PID 1 and sshd runs under it in the foreground.
        assert by_pid["1"].strip() == "tini", processes
        assert "sshd" in {command.strip() for command in by_pid.values()}, processes

        curl = connection.run("curl --version", hide=True).stdout
        assert curl.startswith("curl "), curl

        failing = connection.run("exit 3", warn=True, hide=True)
        assert failing.exited == 3


def test_server_presents_the_key_read_out_of_band(host: SandboxHost) -> None:
    with host.connect() as connection:
        connection.run("true", hide=True)
        presented = connection.transport.get_remote_server_key()
    key_type, blob = host.host_public_key.split()
    assert (presented.get_name(), presented.get_base64()) == (key_type, blob)
    assert key_type == "ssh-ed25519"


def test_connection_with_a_different_known_key_is_refused(
    host: SandboxHost, client_key: ClientKey, scratch_dir: Path
) -> None:
    impostor_key = other_ed25519_public_key(scratch_dir / "impostor")
    known_hosts = scratch_dir / "known_hosts_wrong"
    write_known_hosts(known_hosts, host.address, host.port, impostor_key)
    before = known_hosts.read_text()

    connection = verified_connection(host.address, host.port, known_hosts, client_key)
    try:
        with pytest.raises(paramiko.BadHostKeyException) as refused:
            connection.run("touch /tmp/must-not-run", hide=True)
    finally:
        connection.close()
    assert refused.value.key.get_base64() == host.host_public_key.split()[1]
    assert known_hosts.read_text() == before, "the refused key must not be written to known_hosts"

    # The command really never ran on the host.
    with host.connect() as trusted:
        assert trusted.run("test -e /tmp/must-not-run", warn=True, hide=True).exited == 1


def test_connection_to_an_unknown_host_is_refused(
    host: SandboxHost, client_key: ClientKey, scratch_dir: Path
) -> None:
    empty_known_hosts = scratch_dir / "known_hosts_empty"
    empty_known_hosts.write_text("")
    connection = verified_connection(host.address, host.port, empty_known_hosts, client_key)
    try:
        with pytest.raises(paramiko.SSHException, match="not found in known_hosts"):
            connection.open()
    finally:
        connection.close()
    assert empty_known_hosts.read_text() == "", "an unknown host key must never be added"


def test_root_logs_in_by_public_key_only(host: SandboxHost, scratch_dir: Path) -> None:
    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    client.get_host_keys().load(str(host.known_hosts))
    try:
        with pytest.raises(paramiko.BadAuthenticationType) as refused:
            client.connect(
                host.address,
                host.port,
                username="root",
                password="root",
                look_for_keys=False,
                allow_agent=False,
                timeout=10,
            )
    finally:
        client.close()
    assert refused.value.allowed_types == ["publickey"]

    # A key that is not authorized is refused too.
    stranger_dir = scratch_dir / "stranger"
    stranger_dir.mkdir()
    stranger = ClientKey.generate(stranger_dir)
    connection = verified_connection(host.address, host.port, host.known_hosts, stranger)
    try:
        with pytest.raises(paramiko.AuthenticationException):
            connection.open()
    finally:
        connection.close()


def test_tmpfs_mounts_inside_a_host_with_sys_admin(host: SandboxHost) -> None:
    with host.connect() as connection:
        result = connection.run(
            "mkdir -p /mnt/ramdisk && mount -t tmpfs -o size=16m tmpfs /mnt/ramdisk"
            " && findmnt -bno FSTYPE,SIZE /mnt/ramdisk; umount /mnt/ramdisk",
            hide=True,
        )
    assert result.stdout.split() == ["tmpfs", str(16 * 1024 * 1024)]


def test_host_keys_are_unique_per_container_and_not_in_the_image(
    host: SandboxHost, host_image: str, client_key: ClientKey, docker_client: docker.DockerClient
) -> None:
    with sandbox_host(image=host_image, client_key=client_key) as second:
        assert second.host_public_key != host.host_public_key
        with second.connect() as connection:
            assert connection.run("hostname", hide=True).stdout.strip() == second.name

    # Without the entrypoint, the image's file system holds no host key at all.
    probe = docker_client.containers.create(
        host_image, entrypoint=["/bin/sh", "-c", "ls /etc/ssh"], labels={HOST_LABEL: "probe"}
    )
    try:
        probe.start()
        assert probe.wait(timeout=30)["StatusCode"] == 0
        listing = probe.logs().decode().split()
    finally:
        probe.remove(force=True)
    assert "sshd_config" in listing
    assert not [name for name in listing if name.startswith("ssh_host_")], listing


def test_container_and_keys_are_removed_afterwards(
    host_image: str, docker_client: docker.DockerClient
) -> None:
    with sandbox_host(image=host_image) as started:
        assert docker_client.containers.get(started.container_id).status == "running"
        key_dir = started.client_key.private_key_path.parent
        assert started.known_hosts.is_file()
        assert started.client_key.private_key_path.stat().st_mode & 0o777 == 0o600
    with pytest.raises(docker.errors.NotFound):
        docker_client.containers.get(started.container_id)
    assert not key_dir.exists()

    # Also when the body fails.
    started_ids: list[str] = []

    def failing_body() -> None:
        with sandbox_host(image=host_image) as failing:
            started_ids.append(failing.container_id)
            raise RuntimeError("body failed")

    with pytest.raises(RuntimeError, match="body failed"):
        failing_body()
    assert len(started_ids) == 1
    with pytest.raises(docker.errors.NotFound):
        docker_client.containers.get(started_ids[0])


def test_missing_image_is_reported_and_never_pulled(docker_client: docker.DockerClient) -> None:
    missing = "alluxio-mesos-host:000000000000"
    with (
        pytest.raises(HostImageMissingError, match=r"setup/bootstrap.sh host-image") as error,
        sandbox_host(image=missing),
    ):
        pass
    assert missing in str(error.value)
    with pytest.raises(docker.errors.ImageNotFound):
        docker_client.images.get(missing)


def test_entrypoint_refuses_to_start_without_an_authorized_key(
    host_image: str, docker_client: docker.DockerClient
) -> None:
    container = docker_client.containers.create(host_image, labels={HOST_LABEL: "probe"})
    try:
        container.start()
        assert container.wait(timeout=30)["StatusCode"] == 64
        log = container.logs().decode()
    finally:
        container.remove(force=True)
    assert "AUTHORIZED_KEYS" in log, log
