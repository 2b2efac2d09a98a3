"""Does an offer fit a task, and if not, why: one short line a human can act on.

All resource arithmetic goes through framework.mesos_resources (the one parser of the Mesos
resource model); this module only decides what to take and how to explain a shortfall.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Iterable, Mapping
from typing import Any

from framework.constraints import Constraint, offer_attributes, violations
from framework.mesos_resources import Resource, Resources, ranges_subtract


@dataclasses.dataclass(frozen=True)
class ResourceNeeds:
    """What one task asks for. Ports are exact: Alluxio binds fixed ports."""

    cpus: float
    mem_mb: float
    ports: tuple[int, ...]

    def port_ranges(self) -> tuple[tuple[int, int], ...]:
        return tuple((port, port) for port in sorted(self.ports))


@dataclasses.dataclass(frozen=True)
class OfferView:
    """The parts of a v1 Offer the scheduler reasons about."""

    offer_id: str
    agent_id: str
    hostname: str
    attributes: dict[str, str]
    resources: Resources

    @classmethod
    def from_json(cls, offer: Mapping[str, Any]) -> OfferView:
        return cls(
            offer_id=str(offer["id"]["value"]),
            agent_id=str(offer["agent_id"]["value"]),
            hostname=str(offer.get("hostname", "")),
            attributes=offer_attributes(offer),
            resources=Resources.from_json(list(offer.get("resources") or [])),
        )

    def describe(self) -> str:
        return f"agent {self.agent_id} ({self.hostname})"

    def taking(self, used: Resources) -> OfferView:
        return dataclasses.replace(self, resources=self.resources - used)


def _number(value: float) -> str:
    return f"{value:g}"


def _port_list(ranges: Iterable[tuple[int, int]]) -> str:
    """`29998-30000` for a run of ports, `19998,19200` for single ones."""
    return ",".join(str(b) if b == e else f"{b}-{e}" for b, e in ranges)


# Agents built alike offer equal resources, and a task's needs rarely change: both answers below
# are pure functions of (resources, needs), so one computation serves every such offer.
_MEMO_SIZE = 4096


def shortfalls(available: Resources, needs: ResourceNeeds) -> list[str]:
    """Each missing resource as `cpus 0.5 < 1`, `mem 512MB < 2048MB`, `missing ports 29998-30000`."""
    return list(_shortfalls(available, needs))


@functools.lru_cache(maxsize=_MEMO_SIZE)
def _shortfalls(available: Resources, needs: ResourceNeeds) -> tuple[str, ...]:
    problems: list[str] = []
    cpus = available.scalar("cpus")
    if cpus < needs.cpus:
        problems.append(f"cpus {_number(cpus)} < {_number(needs.cpus)}")
    mem = available.scalar("mem")
    if mem < needs.mem_mb:
        problems.append(f"mem {_number(mem)}MB < {_number(needs.mem_mb)}MB")
    missing = ranges_subtract(needs.port_ranges(), available.ranges("ports"))
    if missing:
        problems.append(f"missing ports {_port_list(missing)}")
    return tuple(problems)


def unmet(offer: OfferView, needs: ResourceNeeds, constraints: Iterable[Constraint]) -> list[str]:
    """Everything that stops `offer` from running the task (empty when it fits)."""
    return violations(constraints, offer.hostname, offer.attributes) + shortfalls(offer.resources, needs)


def _role_order(resources: Iterable[Resource]) -> list[Resource]:
    # Spend reservations for our role before shared unreserved resources.
    return sorted(resources, key=lambda r: r.role == "*")


@functools.lru_cache(maxsize=_MEMO_SIZE)
def allocate(available: Resources, needs: ResourceNeeds) -> Resources:
    """The exact resources (with their roles) a task takes from an offer that fits it."""
    taken: list[Resource] = []
    for name, amount in (("cpus", needs.cpus), ("mem", needs.mem_mb)):
        remaining = Resource.scalar_of(name, amount).millis
        for resource in _role_order(r for r in available if r.name == name and r.type == "SCALAR"):
            if remaining <= 0:
                break
            portion = min(remaining, resource.millis)
            taken.append(Resource(name, "SCALAR", resource.role, millis=portion))
            remaining -= portion
        if remaining > 0:
            raise ValueError(f"offer lacks {name} for the task (call shortfalls first)")
    wanted = needs.port_ranges()
    for resource in _role_order(r for r in available if r.name == "ports" and r.type == "RANGES"):
        if not wanted:
            break
        inside = ranges_subtract(wanted, ranges_subtract(wanted, resource.ranges))
        if inside:
            taken.append(Resource.ranges_of("ports", inside, resource.role))
            wanted = ranges_subtract(wanted, inside)
    if wanted:
        raise ValueError(f"offer lacks ports {_port_list(wanted)} for the task (call shortfalls first)")
    return Resources(taken)
