"""Which agent info changes a restart may make (src/slave/compatibility.cpp semantics)."""

from __future__ import annotations

from typing import Any

import pytest

from framework.mesos_resources import Resources, attributes_to_json, parse_attributes
from sandbox.mesos.agent.compatibility import (
    Incompatible,
    agent_info_text,
    check_compatible,
    recovery_failure_message,
)


def info(resources: str, attributes: str = "", hostname: str = "h1", port: int = 5051) -> dict[str, Any]:
    out: dict[str, Any] = {
        "hostname": hostname,
        "port": port,
        "resources": Resources.parse(resources).to_json(),
        "id": {"value": "A-S0"},
    }
    if attributes:
        out["attributes"] = attributes_to_json(parse_attributes(attributes))
    return out


OLD = info("cpus:2;mem:1024;ports:[31000-32000];disks:{a,b}", "rack:r1;size:3")


def test_equal_accepts_only_identical_info() -> None:
    check_compatible("equal", OLD, info("cpus:2;mem:1024;ports:[31000-32000];disks:{a,b}", "size:3;rack:r1"))
    with pytest.raises(Incompatible) as raised:
        check_compatible(
            "equal", OLD, info("cpus:3;mem:1024;ports:[31000-32000];disks:{a,b}", "rack:r1;size:3")
        )
    text = str(raised.value)
    assert text.startswith("Incompatible agent info detected. \n\n------")
    old_cpus = 'resources {\n  name: "cpus"\n  type: SCALAR\n  scalar {\n    value: 2\n'
    assert 'Old agent info:\nhostname: "h1"\n' + old_cpus in text
    assert "New agent info:" in text
    assert "    value: 3\n" in text


@pytest.mark.parametrize(
    "new",
    [
        info("cpus:2;mem:1024;ports:[31000-32000];disks:{a,b}", "rack:r1;size:3"),
        info("cpus:4;mem:2048;ports:[31000-32000,40000-40010];disks:{a,b,c};gpus:1", "rack:r1;size:3;zone:z"),
    ],
)
def test_additive_accepts_growth(new: dict[str, Any]) -> None:
    check_compatible("additive", OLD, new)


@pytest.mark.parametrize(
    ("new", "message"),
    [
        (
            info("cpus:2;mem:1024;ports:[31000-32000];disks:{a,b}", "rack:r1;size:3", hostname="h2"),
            "Configuration change not permitted under `additive` policy: Hostname changed from h1 to h2",
        ),
        (
            info("cpus:2;mem:1024;ports:[31000-32000];disks:{a,b}", "rack:r1;size:3", port=5052),
            "Configuration change not permitted under `additive` policy: Port changed from 5051 to 5052",
        ),
        (
            info("cpus:1;mem:1024;ports:[31000-32000];disks:{a,b}", "rack:r1;size:3"),
            "Configuration change not permitted under 'additive' policy: "
            "Value of scalar resource 'cpus' decreased from 2 to 1",
        ),
        (
            info("cpus:2;ports:[31000-32000];disks:{a,b}", "rack:r1;size:3"),
            "Configuration change not permitted under 'additive' policy. Resource not found: mem:1024",
        ),
        (
            info("cpus:2;mem:1024;ports:[31000-31500];disks:{a,b}", "rack:r1;size:3"),
            "Configuration change not permitted under 'additive' policy: Previous value of range resource "
            "'ports' ([31000-32000]) not included in current [31000-31500]",
        ),
        (
            info("cpus:2;mem:1024;ports:[31000-32000];disks:{a}", "rack:r1;size:3"),
            "Previous value of set resource 'disks' ({a, b}) not included in current {a}",
        ),
        (
            info("cpus:2;mem:1024;ports:[31000-32000];disks:{a,b}", "rack:r2;size:3"),
            "Configuration change not permitted under 'additive' policy: "
            "Value of text attribute 'rack' changed from r1 to r2",
        ),
        (
            info("cpus:2;mem:1024;ports:[31000-32000];disks:{a,b}", "rack:r1"),
            "Configuration change not permitted under 'additive' policy: Couldn't find attribute size:3",
        ),
        (
            info("cpus:2;mem:1024;ports:[31000-32000];disks:{a,b}", "rack:r1;size:big"),
            "Type of attribute 'size' changed from SCALAR to TEXT",
        ),
    ],
)
def test_additive_refuses_shrinking_or_changing(new: dict[str, Any], message: str) -> None:
    with pytest.raises(Incompatible) as raised:
        check_compatible("additive", OLD, new)
    assert message in str(raised.value)


def test_recovery_failure_message_tells_the_operator_what_to_remove() -> None:
    text = recovery_failure_message("boom", "/var/lib/mesos/meta/slaves/latest")
    assert text.startswith(
        "Failed to perform recovery: boom\nIf recovery failed due to a change in configuration"
    )
    assert "rm -f /var/lib/mesos/meta/slaves/latest\nThis ensures that the agent does not recover" in text
    assert text.endswith("Finally, restart the agent.")


def test_agent_info_text_is_protobuf_text_format() -> None:
    text = agent_info_text(info("ports:[1-2,5-6]", "rack:r1"))
    assert text == (
        'hostname: "h1"\n'
        "resources {\n"
        '  name: "ports"\n'
        "  type: RANGES\n"
        "  ranges {\n"
        "    range {\n      begin: 1\n      end: 2\n    }\n"
        "    range {\n      begin: 5\n      end: 6\n    }\n"
        "  }\n"
        "}\n"
        "attributes {\n"
        '  name: "rack"\n'
        "  type: TEXT\n"
        "  text {\n"
        '    value: "r1"\n'
        "  }\n"
        "}\n"
        "id {\n"
        '  value: "A-S0"\n'
        "}\n"
        "port: 5051\n"
    )
