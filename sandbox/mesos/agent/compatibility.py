"""May a restarted agent keep its id? Mesos' src/slave/compatibility.cpp, messages included.

``equal``: the new agent info must be identical to the checkpointed one.
``additive``: same hostname and port; every old resource still present and not smaller
(ranges and sets must be supersets); every old attribute unchanged; additions are fine.
"""

from __future__ import annotations

from typing import Any

from framework.mesos_resources import (
    Attribute,
    Resource,
    Resources,
    attributes_from_json,
    format_ranges,
    ranges_contain,
)

RECOVERY_HELP = (
    "If recovery failed due to a change in configuration and you want to\n"
    "keep the current agent id, you might want to change the\n"
    "`--reconfiguration_policy` flag to a more permissive value.\n"
    "\n"
    "To restart this agent with a new agent id instead, do as follows:\n"
    "rm -f {latest}\n"
    "This ensures that the agent does not recover old live executors.\n"
    "\n"
    "If you use the Docker containerizer and think that the Docker\n"
    "daemon state is broken, you can try to clear it. But be careful:\n"
    "these commands will erase all containers and images from this host,\n"
    "not just those started by Mesos!\n"
    "docker kill $(docker ps -q)\n"
    "docker rm $(docker ps -a -q)\n"
    "docker rmi $(docker images -q)\n"
    "\n"
    "Finally, restart the agent."
)


class Incompatible(Exception):
    """The new agent info may not replace the checkpointed one; ``str()`` is Mesos' reason."""


def recovery_failure_message(reason: str, latest_symlink: str) -> str:
    """What the agent prints before exiting (``Slave::__recover``)."""
    return f"Failed to perform recovery: {reason}\n" + RECOVERY_HELP.format(latest=latest_symlink)


# -- protobuf text format (what stringify(SlaveInfo) prints) ------------------------------------


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _text_number_value(kind: str, scalar: float, ranges: Any, inner: str) -> list[str]:
    """The `scalar {...}` or `ranges {...}` block, shared by resources and attributes."""
    if kind == "SCALAR":
        return [f"{inner}scalar {{", f"{inner}  value: {_number(scalar)}", f"{inner}}}"]
    lines = [f"{inner}ranges {{"]
    for begin, end in ranges:
        lines += [f"{inner}  range {{", f"{inner}    begin: {begin}"]
        lines += [f"{inner}    end: {end}", f"{inner}  }}"]
    lines.append(f"{inner}}}")
    return lines


def _text_resource(resource: Resource, indent: str) -> list[str]:
    inner = indent + "  "
    lines = [f"{indent}resources {{", f'{inner}name: "{resource.name}"', f"{inner}type: {resource.type}"]
    if resource.type in ("SCALAR", "RANGES"):
        lines += _text_number_value(resource.type, resource.scalar, resource.ranges, inner)
    else:
        lines.append(f"{inner}set {{")
        lines += [f'{inner}  item: "{item}"' for item in resource.items]
        lines.append(f"{inner}}}")
    if resource.role != "*":
        lines += [
            f"{inner}reservations {{",
            f"{inner}  type: STATIC",
            f'{inner}  role: "{resource.role}"',
            f"{inner}}}",
        ]
    lines.append(f"{indent}}}")
    return lines


def _text_attribute(attribute: Attribute, indent: str) -> list[str]:
    inner = indent + "  "
    lines = [f"{indent}attributes {{", f'{inner}name: "{attribute.name}"', f"{inner}type: {attribute.type}"]
    if attribute.type in ("SCALAR", "RANGES"):
        lines += _text_number_value(attribute.type, attribute.scalar, attribute.ranges, inner)
    else:
        lines += [f"{inner}text {{", f'{inner}  value: "{attribute.text}"', f"{inner}}}"]
    lines.append(f"{indent}}}")
    return lines


def agent_info_text(info: dict[str, Any]) -> str:
    """An AgentInfo in protobuf text format, fields in field-number order, like DebugString()."""
    lines = [f'hostname: "{info.get("hostname", "")}"']
    for resource in Resources.from_json(info.get("resources", [])):
        lines += _text_resource(resource, "")
    for attribute in attributes_from_json(info.get("attributes", [])):
        lines += _text_attribute(attribute, "")
    if "id" in info:
        lines += ["id {", f'  value: "{info["id"]["value"]}"', "}"]
    lines.append(f"port: {int(info.get('port', 5051))}")
    return "\n".join(lines) + "\n"


# -- the two policies ----------------------------------------------------------------------------


def _resource_text(resource: Resource) -> str:
    label = (
        resource.name
        if resource.role == "*"
        else f"{resource.name}(reservations: [(STATIC,{resource.role})])"
    )
    return f"{label}:{_value_text(resource)}"


def _value_text(resource: Resource) -> str:
    if resource.type == "SCALAR":
        return _number(resource.scalar)
    if resource.type == "RANGES":
        return format_ranges(resource.ranges, ", ")
    return "{" + ", ".join(resource.items) + "}"


def _attribute_value(attribute: Attribute) -> str:
    if attribute.type == "SCALAR":
        return _number(attribute.scalar)
    if attribute.type == "RANGES":
        return format_ranges(attribute.ranges, ", ")
    return attribute.text


def _comparable(info: dict[str, Any]) -> tuple[Any, ...]:
    return (
        info.get("hostname"),
        int(info.get("port", 5051)),
        Resources.from_json(info.get("resources", [])),
        tuple(sorted(attributes_from_json(info.get("attributes", [])), key=lambda a: a.name)),
        info.get("id", {}).get("value"),
        info.get("domain"),
    )


def check_equal(previous: dict[str, Any], current: dict[str, Any]) -> None:
    if _comparable(previous) == _comparable(current):
        return
    rule = "\n------------------------------------------------------------"
    raise Incompatible(
        "\n".join(
            [
                "Incompatible agent info detected. ",
                rule,
                "Old agent info:\n" + agent_info_text(previous),
                rule,
                "New agent info:\n" + agent_info_text(current),
                rule,
            ]
        )
    )


def _check_resources_additive(previous: Resources, current: Resources) -> None:
    for resource in previous:
        match = current.get(resource.name, resource.role)
        if match is None:
            raise Incompatible(
                "Configuration change not permitted under 'additive' policy. "
                f"Resource not found: {_resource_text(resource)}"
            )
        if match.type != resource.type:
            raise Incompatible(
                "Configuration change not permitted under 'additive' policy. "
                f"Resource not found: {_resource_text(resource)}"
            )
        if resource.type == "SCALAR" and not resource.millis <= match.millis:
            raise Incompatible(
                "Configuration change not permitted under 'additive' policy: "
                f"Value of scalar resource '{resource.name}' decreased from "
                f"{_number(resource.scalar)} to {_number(match.scalar)}"
            )
        if resource.type == "RANGES" and not ranges_contain(match.ranges, resource.ranges):
            raise Incompatible(
                "Configuration change not permitted under 'additive' policy: "
                f"Previous value of range resource '{resource.name}' ({_value_text(resource)}) "
                f"not included in current {_value_text(match)}"
            )
        if resource.type == "SET" and not set(resource.items) <= set(match.items):
            raise Incompatible(
                "Configuration change not permitted under 'additive' policy: "
                f"Previous value of set resource '{resource.name}' ({_value_text(resource)}) "
                f"not included in current {_value_text(match)}"
            )


def _check_attributes_additive(previous: list[Attribute], current: list[Attribute]) -> None:
    by_name = {a.name: a for a in current}
    for attribute in previous:
        match = by_name.get(attribute.name)
        if match is None:
            raise Incompatible(
                "Configuration change not permitted under 'additive' policy: "
                f"Couldn't find attribute {attribute.name}:{_attribute_value(attribute)}"
            )
        if match.type != attribute.type:
            raise Incompatible(
                "Configuration change not permitted under 'additive' policy: "
                f"Type of attribute '{attribute.name}' changed from {attribute.type} to {match.type}"
            )
        if attribute.type == "SCALAR" and attribute.millis != match.millis:
            raise Incompatible(
                "Configuration change not permitted under 'additive' policy: "
                f"Value of scalar attribute '{attribute.name}' changed from "
                f"{_attribute_value(attribute)} to {_attribute_value(match)}"
            )
        if attribute.type == "RANGES" and not ranges_contain(match.ranges, attribute.ranges):
            raise Incompatible(
                f"Previous value of ranges resource '{attribute.name}' ({_attribute_value(attribute)}) "
                f"not included in current {_attribute_value(match)}"
            )
        if attribute.type == "TEXT" and attribute.text != match.text:
            raise Incompatible(
                "Configuration change not permitted under 'additive' policy: "
                f"Value of text attribute '{attribute.name}' changed from "
                f"{attribute.text} to {match.text}"
            )


def check_additive(previous: dict[str, Any], current: dict[str, Any]) -> None:
    if previous.get("hostname") != current.get("hostname"):
        raise Incompatible(
            "Configuration change not permitted under `additive` policy: "
            f"Hostname changed from {previous.get('hostname')} to {current.get('hostname')}"
        )
    if int(previous.get("port", 5051)) != int(current.get("port", 5051)):
        raise Incompatible(
            "Configuration change not permitted under `additive` policy: "
            f"Port changed from {int(previous.get('port', 5051))} to {int(current.get('port', 5051))}"
        )
    if "domain" in previous and previous.get("domain") != current.get("domain"):
        raise Incompatible(
            "Configuration change not permitted under `additive` policy: "
            f"Domain changed from {previous.get('domain')} to {current.get('domain')}"
        )
    _check_resources_additive(
        Resources.from_json(previous.get("resources", [])), Resources.from_json(current.get("resources", []))
    )
    _check_attributes_additive(
        attributes_from_json(previous.get("attributes", [])),
        attributes_from_json(current.get("attributes", [])),
    )


def check_compatible(policy: str, previous: dict[str, Any], current: dict[str, Any]) -> None:
    """Raise Incompatible unless ``current`` may take over ``previous``'s agent id."""
    if policy == "additive":
        check_additive(previous, current)
    else:
        check_equal(previous, current)
