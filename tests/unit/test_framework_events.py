"""Builders of Mesos v1 scheduler events (offers, status updates) shaped exactly as the master
sends them (reference §1-2), shared by the framework's unit tests, plus checks that the shapes
are what the framework's parsers read."""

from __future__ import annotations

import base64
import itertools
import uuid
import zlib
from collections.abc import Mapping
from typing import Any

from framework.mesos_resources import Resources
from framework.offer_matching import OfferView
from framework.spec import ClusterSpec, Key, load_spec

EXECUTOR_SHA = "e" * 64
ALLUXIO_SHA = "a" * 64
FRAMEWORK_ID = "5b0e7f2c-1111-4c1a-9d0e-27b7c8b4f0a1-0000"
_offer_numbers = itertools.count(1)


def make_spec(**overrides: Any) -> ClusterSpec:
    """A valid spec with LOCAL Alluxio; keyword names use `_` for `.` after alluxio.integration."""
    data: dict[str, Any] = {
        Key.EXECUTOR_URL: "http://artifacts.example/alluxio-mesos-executor.pyz",
        Key.EXECUTOR_SHA256: EXECUTOR_SHA,
        Key.ALLUXIO_URL: "LOCAL",
    }
    data.update(overrides.pop("raw", {}))
    data.update(overrides)
    return load_spec(data)


def agent_id_for(hostname: str) -> str:
    return f"{FRAMEWORK_ID[:-5]}-S{zlib.crc32(hostname.encode()) % 1000}"


def offer(
    hostname: str,
    *,
    agent_id: str | None = None,
    cpus: float = 4.0,
    mem: float = 16384.0,
    disk: float = 10000.0,
    ports: tuple[tuple[int, int], ...] = ((19000, 19999), (29000, 30999), (31000, 32000)),
    role: str = "*",
    attributes: Mapping[str, str | float] | None = None,
    offer_id: str | None = None,
) -> dict[str, Any]:
    """One v1 Offer as in an OFFERS event."""
    agent = agent_id or agent_id_for(hostname)
    resources: list[dict[str, Any]] = [
        {"name": "cpus", "type": "SCALAR", "scalar": {"value": float(cpus)}, "role": role},
        {"name": "mem", "type": "SCALAR", "scalar": {"value": float(mem)}, "role": role},
        {"name": "disk", "type": "SCALAR", "scalar": {"value": float(disk)}, "role": role},
    ]
    if ports:
        resources.append(
            {
                "name": "ports",
                "type": "RANGES",
                "ranges": {"range": [{"begin": b, "end": e} for b, e in ports]},
                "role": role,
            }
        )
    encoded_attributes = []
    for name, value in (attributes or {}).items():
        if isinstance(value, str):
            encoded_attributes.append({"name": name, "type": "TEXT", "text": {"value": value}})
        else:
            encoded_attributes.append({"name": name, "type": "SCALAR", "scalar": {"value": float(value)}})
    result: dict[str, Any] = {
        "id": {"value": offer_id or f"{FRAMEWORK_ID[:-5]}-O{next(_offer_numbers)}"},
        "framework_id": {"value": FRAMEWORK_ID},
        "agent_id": {"value": agent},
        "hostname": hostname,
        "url": {
            "scheme": "http",
            "address": {"hostname": hostname, "ip": "10.0.0.1", "port": 5051},
            "path": "/slave(1)",
        },
        "resources": resources,
    }
    if encoded_attributes:
        result["attributes"] = encoded_attributes
    return result


def update(
    task_id: str,
    state: str,
    *,
    agent_id: str = "",
    message: str | None = None,
    reason: str | None = None,
    source: str = "SOURCE_EXECUTOR",
    with_uuid: bool = True,
) -> dict[str, Any]:
    """The `status` of an UPDATE event."""
    status: dict[str, Any] = {
        "task_id": {"value": task_id},
        "state": state,
        "source": source,
        "timestamp": 1700000000.0,
    }
    if agent_id:
        status["agent_id"] = {"value": agent_id}
    if message:
        status["message"] = message
    if reason:
        status["reason"] = reason
    if with_uuid:
        status["uuid"] = base64.b64encode(uuid.uuid4().bytes).decode("ascii")
    return status


def test_offer_builder_produces_offers_the_framework_parses() -> None:
    built = offer("host-1", cpus=2.5, mem=1024, attributes={"rack": "r1", "zone_size": 3})
    view = OfferView.from_json(built)
    assert view.hostname == "host-1"
    assert view.attributes == {"rack": "r1", "zone_size": "3"}
    assert view.resources.scalar("cpus") == 2.5
    assert view.resources.scalar("mem") == 1024.0
    assert view.resources.ranges("ports") == ((19000, 19999), (29000, 32000))
    assert Resources.from_json(built["resources"]).roles() == ["*"]


def test_update_builder_carries_a_16_byte_uuid_only_when_asked() -> None:
    with_ack = update("t1", "TASK_RUNNING", agent_id="a1")
    assert len(base64.b64decode(with_ack["uuid"])) == 16
    reconciled = update(
        "t1", "TASK_RUNNING", source="SOURCE_MASTER", reason="REASON_RECONCILIATION", with_uuid=False
    )
    assert "uuid" not in reconciled
    assert reconciled["reason"] == "REASON_RECONCILIATION"
