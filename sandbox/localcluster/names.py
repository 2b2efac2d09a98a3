"""Every name a cluster gives to kernel objects and files, derived from one short random tag.

All names start with a recognizable prefix so a crashed run's leftovers can be found and removed
(`stale.py`). Interface names must fit IFNAMSIZ (15 characters).
"""

from __future__ import annotations

import dataclasses
import ipaddress
import pathlib
import re
import secrets

PREFIX = "amc"  # alluxio-mesos cluster
TAG_LENGTH = 6
REGISTRY_DIR = pathlib.Path("/run/alluxio-mesos-localcluster")
BASE_DIR_ROOT = pathlib.Path("/tmp")
BASE_DIR_PREFIX = "alluxio-mesos-localcluster-"
# 10.213.<n>.0/24, n chosen per cluster so parallel clusters never share a subnet.
SUBNET_TEMPLATE = "10.213.{index}.0/24"
SUBNET_INDEXES = range(1, 255)
HOST_ADDRESS_OFFSET = 10  # host-N gets .(10+N); the bridge (root namespace) gets .1
MAX_HOSTS = 200
IFNAMSIZ = 15
TAG_PATTERN = re.compile(rf"^{PREFIX}([0-9a-f]{{{TAG_LENGTH}}})")


def new_tag() -> str:
    return secrets.token_hex(TAG_LENGTH // 2)


@dataclasses.dataclass(frozen=True)
class ClusterNames:
    tag: str
    subnet_index: int

    @property
    def cluster(self) -> str:
        """The cluster's name; also the DNS suffix of its hosts (host-0.amc1a2b3c)."""
        return f"{PREFIX}{self.tag}"

    @property
    def bridge(self) -> str:
        return f"{PREFIX}{self.tag}br"

    def netns(self, index: int) -> str:
        return f"{PREFIX}{self.tag}-host-{index}"

    def veth_root(self, index: int) -> str:
        """The root-namespace end of host `index`'s veth pair (enslaved to the bridge)."""
        return f"{PREFIX}{self.tag}v{index}"

    def veth_peer(self, index: int) -> str:
        """The host end before it moves into the namespace (renamed eth0 there)."""
        return f"{PREFIX}{self.tag}p{index}"

    def hostname(self, index: int) -> str:
        return f"host-{index}.{self.cluster}"

    @property
    def network(self) -> ipaddress.IPv4Network:
        return ipaddress.IPv4Network(SUBNET_TEMPLATE.format(index=self.subnet_index))

    @property
    def bridge_ip(self) -> str:
        return str(self.network.network_address + 1)

    def host_ip(self, index: int) -> str:
        if not 0 <= index < MAX_HOSTS:
            raise ValueError(f"host index {index} is outside 0-{MAX_HOSTS - 1}")
        return str(self.network.network_address + HOST_ADDRESS_OFFSET + index)

    @property
    def prefix_length(self) -> int:
        return self.network.prefixlen

    @property
    def firewall_comment(self) -> str:
        return f"alluxio-mesos-localcluster {self.cluster}"

    @property
    def base_dir(self) -> pathlib.Path:
        """Everything on disk: agents' work dirs, logs, served files (0755: JVMs run as nobody)."""
        return BASE_DIR_ROOT / f"{BASE_DIR_PREFIX}{self.cluster}"

    @property
    def registry_file(self) -> pathlib.Path:
        return REGISTRY_DIR / f"{self.cluster}.json"

    def check(self) -> None:
        for name in (self.bridge, self.veth_root(MAX_HOSTS - 1), self.veth_peer(MAX_HOSTS - 1)):
            if len(name) > IFNAMSIZ:
                raise ValueError(f"interface name {name!r} is longer than {IFNAMSIZ} characters")


def tag_of(name: str) -> str | None:
    """The cluster tag in one of our names (netns, interface, cluster), or None if not ours."""
    match = TAG_PATTERN.match(name)
    return match.group(1) if match else None
