"""Mesos resources and attributes: parsing, arithmetic and the JSON shapes Mesos uses.

This is the single place that understands the agent ``--resources`` / ``--attributes`` grammar
and Mesos' Resource arithmetic. The framework (offer matching), the Pulumi agent-port
provisioning (rewriting an agent's ``--resources`` while keeping its ports) and the sandbox
master/agent all use it, so their notion of "what an agent offers" cannot drift apart.

Behaviour follows Mesos 1.11 (src/common/resources.cpp, src/common/values.cpp,
src/common/attributes.cpp, src/slave/containerizer/containerizer.cpp):

* scalars use 3-decimal fixed point (``llround(v * 1000)``), so arithmetic is exact here and
  ``0.1 + 0.2 == 0.3``;
* ranges are kept coalesced (sorted, overlapping and adjacent ranges merged);
* subtraction drops a resource once it is empty or would go negative;
* identity of a resource is (name, role, type); unreserved resources have role ``"*"``.

Only the standard library is used: the executor side never imports this module, but the
framework and the Pulumi dynamic providers do, and both must stay light.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

__all__ = [
    "DEFAULT_PORTS",
    "Attribute",
    "AttributeParseError",
    "Resource",
    "ResourceError",
    "Resources",
    "agent_resources",
    "attributes_from_json",
    "attributes_summary",
    "attributes_to_json",
    "format_attributes",
    "format_ranges",
    "parse_attributes",
    "parse_ranges",
    "ranges_contain",
    "ranges_subtract",
    "ranges_union",
    "validate_role",
]

ResourceType = Literal["SCALAR", "RANGES", "SET"]
Range = tuple[int, int]
Ranges = tuple[Range, ...]

DEFAULT_PORTS: Ranges = ((31000, 32000),)
"""The port range an agent offers when ``--resources`` does not mention ports."""

_GB = 1024 * 1024 * 1024
_MB = 1024 * 1024
_NUMBER = re.compile(r"^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$")


class ResourceError(ValueError):
    """A resource string, JSON document or operation is invalid; the message says why."""


class AttributeParseError(ValueError):
    """An ``--attributes`` string or Attribute JSON is invalid; the message says why."""


# ---------------------------------------------------------------------------------------------
# Scalars: 3-decimal fixed point, exactly like Mesos' Value::Scalar operators.
# ---------------------------------------------------------------------------------------------


def _to_millis(value: float) -> int:
    # Mesos uses llround (round half away from zero); Python's round() is banker's rounding.
    scaled = value * 1000.0
    return math.floor(scaled + 0.5) if scaled >= 0 else -math.floor(-scaled + 0.5)


def _from_millis(millis: int) -> float:
    # Integer quotient + small remainder, as Mesos does, so 1234.5 stays exactly 1234.5.
    sign = -1 if millis < 0 else 1
    quotient, remainder = divmod(abs(millis), 1000)
    return sign * (float(quotient) + remainder / 1000.0)


# ---------------------------------------------------------------------------------------------
# Ranges: tuples of inclusive (begin, end) pairs, always coalesced.
# ---------------------------------------------------------------------------------------------


def _coalesce(ranges: Iterable[Range]) -> Ranges:
    ordered = sorted(ranges)
    merged: list[list[int]] = []
    for begin, end in ordered:
        if merged and begin <= merged[-1][1] + 1:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([begin, end])
    return tuple((b, e) for b, e in merged)


def ranges_union(left: Iterable[Range], right: Iterable[Range]) -> Ranges:
    """All values in either ranges, coalesced."""
    return _coalesce([*left, *right])


def ranges_subtract(left: Iterable[Range], right: Iterable[Range]) -> Ranges:
    """Values of ``left`` that are not in ``right`` (interval-set difference)."""
    result: list[Range] = []
    remove = _coalesce(right)
    for begin, end in _coalesce(left):
        cursor = begin
        for r_begin, r_end in remove:
            if r_end < cursor or r_begin > end:
                continue
            if r_begin > cursor:
                result.append((cursor, r_begin - 1))
            cursor = max(cursor, r_end + 1)
            if cursor > end:
                break
        if cursor <= end:
            result.append((cursor, end))
    return tuple(result)


def ranges_contain(outer: Iterable[Range], inner: Iterable[Range]) -> bool:
    """True when every value of ``inner`` is in ``outer``."""
    return not ranges_subtract(inner, outer)


def ranges_size(ranges: Iterable[Range]) -> int:
    """How many individual values (e.g. ports) the ranges hold."""
    return sum(end - begin + 1 for begin, end in ranges)


def format_ranges(ranges: Iterable[Range], separator: str = ",") -> str:
    """``[31000-32000,33000-33010]``; Mesos' own stringify uses ``", "`` (pass it for /state)."""
    return "[" + separator.join(f"{b}-{e}" for b, e in ranges) + "]"


def parse_ranges(text: str, what: str = "ranges") -> Ranges:
    """Parse ``[a-b,c-d]`` (spaces ignored) into coalesced ranges."""
    compact = text.replace(" ", "")
    if not (compact.startswith("[") and compact.endswith("]")):
        raise ResourceError(f"{what}: expected ranges like [31000-32000], got {text!r}")
    body = compact[1:-1].strip("\n")
    if not body:
        return ()
    parsed: list[Range] = []
    for element in body.split(","):
        parts = element.strip("\n").split("-")
        if len(parts) != 2 or not parts[0].isdigit() or not parts[1].isdigit():
            raise ResourceError(
                f"{what}: expecting one or more ranges of non-negative integers 'begin-end', "
                f"got {element!r} in {text!r}"
            )
        begin, end = int(parts[0]), int(parts[1])
        if begin > end:
            raise ResourceError(f"{what}: invalid range {begin}-{end} (begin > end)")
        parsed.append((begin, end))
    return _coalesce(parsed)


# ---------------------------------------------------------------------------------------------
# Roles
# ---------------------------------------------------------------------------------------------


def validate_role(role: str) -> str | None:
    """Return why ``role`` is not a valid Mesos role name, or None if it is valid."""
    if role == "*":
        return None
    if not role:
        return "Empty role name is invalid"
    for component in role.split("/"):
        if component in ("", ".", ".."):
            return f"Role '{role}' cannot have empty, '.' or '..' path components"
        if component.startswith("-"):
            return f"Role '{role}' cannot start with '-'"
        if component == "*":
            return f"Role '{role}' cannot contain '*' as a path component"
    if any(ch.isspace() or ord(ch) < 0x20 or ch == "\x7f" for ch in role):
        return f"Role '{role}' cannot contain whitespace or control characters"
    return None


# ---------------------------------------------------------------------------------------------
# Resource and Resources
# ---------------------------------------------------------------------------------------------


class Resource(NamedTuple):
    """One Mesos Resource. ``millis`` holds a scalar in thousandths; exactly one value is set.

    A NamedTuple rather than a frozen dataclass: the master creates and compares these in its
    hottest paths, and tuples are several times cheaper to build.
    """

    name: str
    type: ResourceType
    role: str = "*"
    millis: int = 0
    ranges: Ranges = ()
    items: tuple[str, ...] = ()

    @property
    def key(self) -> tuple[str, str, str]:
        """(name, role, type): the identity under which Resources adds and subtracts."""
        return (self.name, self.role, self.type)

    @staticmethod
    def scalar_of(name: str, value: float, role: str = "*") -> Resource:
        if not math.isfinite(value):
            raise ResourceError(f"resource {name!r}: scalar value must be finite, got {value}")
        return Resource(name=name, type="SCALAR", role=role, millis=_to_millis(value))

    @staticmethod
    def ranges_of(name: str, ranges: Iterable[Range], role: str = "*") -> Resource:
        return Resource(name=name, type="RANGES", role=role, ranges=_coalesce(ranges))

    @staticmethod
    def set_of(name: str, items: Iterable[str], role: str = "*") -> Resource:
        # Kept sorted: Mesos compares sets by membership, so order must not affect equality.
        return Resource(name=name, type="SET", role=role, items=tuple(sorted(set(items))))

    @property
    def scalar(self) -> float:
        return _from_millis(self.millis)

    def is_empty(self) -> bool:
        if self.type == "SCALAR":
            return self.millis == 0
        if self.type == "RANGES":
            return not self.ranges
        return not self.items

    def value_text(self) -> str:
        """The value in the ``--resources`` grammar: ``4``, ``[1-2,5-6]`` or ``{a,b}``."""
        if self.type == "SCALAR":
            return _format_number(self.scalar)
        if self.type == "RANGES":
            return format_ranges(self.ranges)
        return "{" + ",".join(self.items) + "}"

    def summary_value(self) -> float | str:
        """The value as /master/state prints it (Mesos' stringify uses ``", "``)."""
        if self.type == "SCALAR":
            return self.scalar
        if self.type == "RANGES":
            return format_ranges(self.ranges, ", ")
        return "{" + ", ".join(self.items) + "}"

    def to_json(self, *, reservation_refinement: bool = False) -> dict[str, Any]:
        """The v1 JSON of this resource.

        Without RESERVATION_REFINEMENT Mesos sends the "pre-refinement" format, where
        unreserved resources carry ``"role": "*"``; with it, reservations are a stack and
        unreserved resources carry no role at all.
        """
        out: dict[str, Any] = {"name": self.name, "type": self.type}
        if self.type == "SCALAR":
            out["scalar"] = {"value": self.scalar}
        elif self.type == "RANGES":
            out["ranges"] = {"range": [{"begin": b, "end": e} for b, e in self.ranges]}
        else:
            out["set"] = {"item": list(self.items)}
        if reservation_refinement:
            if self.role != "*":
                out["reservations"] = [{"type": "STATIC", "role": self.role}]
        else:
            out["role"] = self.role
        return out

    def _combine(self, other: Resource, sign: int) -> Resource:
        if self.type == "SCALAR":
            return Resource(self.name, "SCALAR", self.role, millis=self.millis + sign * other.millis)
        if self.type == "RANGES":
            merged = (
                ranges_union(self.ranges, other.ranges)
                if sign > 0
                else ranges_subtract(self.ranges, other.ranges)
            )
            return Resource(self.name, "RANGES", self.role, ranges=merged)
        if sign > 0:
            return Resource.set_of(self.name, [*self.items, *other.items], self.role)
        removed = set(other.items)
        return Resource.set_of(self.name, [i for i in self.items if i not in removed], self.role)

    def contains(self, other: Resource) -> bool:
        if self.key != other.key:
            return False
        if self.type == "SCALAR":
            return other.millis <= self.millis
        if self.type == "RANGES":
            return ranges_contain(self.ranges, other.ranges)
        return set(other.items) <= set(self.items)


_new_tuple = tuple.__new__


def _scalar_resource(name: str, role: str, millis: int) -> Resource:
    """``Resource(name, "SCALAR", role, millis)``, built without NamedTuple's keyword handling."""
    return _new_tuple(Resource, (name, "SCALAR", role, millis, (), ()))


def _format_number(value: float) -> str:
    return str(int(value)) if value == int(value) else repr(value)


class Resources:
    """An immutable bag of Resource, one entry per (name, role, type), in insertion order.

    Immutable, so derived values (scalar totals) are memoized per object; the master's
    allocator does this arithmetic for every agent and every offer.
    """

    __slots__ = ("_by_key", "_json", "_scalars")

    def __init__(self, resources: Iterable[Resource] = ()) -> None:
        by_key: dict[tuple[str, str, str], Resource] = {}
        for resource in resources:
            # Resource.key, inline: this runs for every resource the master parses.
            key = (resource.name, resource.role, resource.type)
            existing = by_key.get(key)
            by_key[key] = existing._combine(resource, +1) if existing is not None else resource
        self._by_key = {
            k: r for k, r in by_key.items() if (r.millis != 0 if r.type == "SCALAR" else not r.is_empty())
        }
        self._scalars: dict[str, float] | None = None
        self._json: dict[bool, list[dict[str, Any]]] | None = None

    @classmethod
    def _wrap(cls, by_key: dict[tuple[str, str, str], Resource]) -> Resources:
        result = cls.__new__(cls)
        result._by_key = by_key
        result._scalars = None
        result._json = None
        return result

    # -- construction ------------------------------------------------------------------------

    @classmethod
    def parse(cls, text: str, default_role: str = "*") -> Resources:
        """Parse the ``--resources`` value: a JSON array of Resource, or ``name(role):value;...``.

        Like Mesos, a text that parses as a JSON array is treated as JSON; anything else is the
        semicolon grammar. Mixed types for one name are rejected (Mesos refuses them on the
        command line).
        """
        stripped = text.strip()
        if stripped.startswith("["):
            try:
                document = json.loads(stripped)
            except ValueError:
                document = None
            if isinstance(document, list):
                result = cls.from_json(document, default_role=default_role, command_line=True)
                _check_uniform_types(result)
                return result
        result = cls(_parse_simple(text, default_role))
        _check_uniform_types(result)
        return result

    @classmethod
    def from_json(cls, document: Any, default_role: str = "*", *, command_line: bool = False) -> Resources:
        """Build from a v1 JSON array of Resource (pre- or post-refinement format).

        ``command_line=True`` additionally refuses what Mesos refuses in ``--resources``:
        revocable resources, persistent volumes and dynamic reservations.
        """
        if not isinstance(document, list):
            raise ResourceError(
                f"resources: expected a JSON array of Resource, got {type(document).__name__}"
            )
        return cls(
            [
                resource_from_json(item, default_role=default_role, index=i, command_line=command_line)
                for i, item in enumerate(document)
            ]
        )

    @classmethod
    def of(cls, **values: float | str | Sequence[Range]) -> Resources:
        """Convenience for tests and code: ``Resources.of(cpus=1, mem=128, ports=[(1, 2)])``."""
        built: list[Resource] = []
        for name, value in values.items():
            if isinstance(value, int | float):
                built.append(Resource.scalar_of(name, float(value)))
            elif isinstance(value, str):
                built.append(_parse_value(name, value, "*"))
            else:
                built.append(Resource.ranges_of(name, value))
        return cls(built)

    # -- queries -----------------------------------------------------------------------------

    def __iter__(self) -> Iterator[Resource]:
        return iter(self._by_key.values())

    def __len__(self) -> int:
        return len(self._by_key)

    def __bool__(self) -> bool:
        return bool(self._by_key)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Resources):
            return NotImplemented
        return self._by_key == other._by_key

    def __hash__(self) -> int:
        return hash(frozenset(self._by_key.items()))

    def __repr__(self) -> str:
        return f"Resources({self.format()!r})"

    def is_empty(self) -> bool:
        return not self._by_key

    def names(self) -> list[str]:
        return list(dict.fromkeys(r.name for r in self))

    def roles(self) -> list[str]:
        return list(dict.fromkeys(r.role for r in self))

    def get(self, name: str, role: str = "*", type_: ResourceType | None = None) -> Resource | None:
        for candidate_type in (type_,) if type_ else ("SCALAR", "RANGES", "SET"):
            found = self._by_key.get((name, role, candidate_type))
            if found is not None:
                return found
        return None

    def scalar(self, name: str) -> float:
        """Total of a scalar over all roles (0.0 when absent)."""
        if self._scalars is None:
            totals: dict[str, int] = {}
            for r in self._by_key.values():
                if r.type == "SCALAR":
                    totals[r.name] = totals.get(r.name, 0) + r.millis
            self._scalars = {n: _from_millis(m) for n, m in totals.items()}
        return self._scalars.get(name, 0.0)

    def ranges(self, name: str) -> Ranges:
        """Union of a ranges resource over all roles (empty when absent)."""
        merged: Ranges = ()
        for r in self:
            if r.name == name and r.type == "RANGES":
                merged = ranges_union(merged, r.ranges)
        return merged

    def set_items(self, name: str) -> tuple[str, ...]:
        return tuple(sorted({i for r in self if r.name == name and r.type == "SET" for i in r.items}))

    def filter(self, predicate: Any) -> Resources:
        return Resources(r for r in self if predicate(r))

    def unreserved(self) -> Resources:
        return self.filter(lambda r: r.role == "*")

    def reserved(self, role: str | None = None) -> Resources:
        return self.filter(lambda r: r.role != "*" and (role is None or r.role == role))

    def allocatable_to(self, roles: Iterable[str]) -> Resources:
        """What a framework subscribed with ``roles`` may be offered: unreserved + its reservations."""
        allowed = set(roles) | {"*"}
        return self.filter(lambda r: r.role in allowed)

    def with_role(self, role: str) -> Resources:
        return Resources(Resource(r.name, r.type, role, r.millis, r.ranges, r.items) for r in self)

    # -- arithmetic --------------------------------------------------------------------------

    def __add__(self, other: Resources | Resource) -> Resources:
        # Immutable values: adding to nothing can share the other operand.
        if not isinstance(other, Resource):
            if not self._by_key:
                return other
            if not other._by_key:
                return self
        extra = (other,) if isinstance(other, Resource) else other._by_key.values()
        by_key = dict(self._by_key)
        for resource in extra:
            key = (resource.name, resource.role, resource.type)
            existing = by_key.get(key)
            if existing is not None and resource.type == "SCALAR":
                # _combine for scalars, inline (the allocator adds scalars all the time).
                millis = existing.millis + resource.millis
                if millis == 0:
                    del by_key[key]
                else:
                    by_key[key] = _scalar_resource(existing.name, existing.role, millis)
                continue
            combined = existing._combine(resource, +1) if existing is not None else resource
            if combined.is_empty():
                by_key.pop(key, None)
            else:
                by_key[key] = combined
        return Resources._wrap(by_key)

    def __sub__(self, other: Resources | Resource) -> Resources:
        if other is self:
            return _EMPTY
        if not isinstance(other, Resource) and not other._by_key:
            return self
        remove = (other,) if isinstance(other, Resource) else other._by_key.values()
        by_key = dict(self._by_key)
        for resource in remove:
            key = (resource.name, resource.role, resource.type)
            existing = by_key.get(key)
            if existing is None:
                continue
            # Mesos drops a resource once it is empty or negative rather than keeping a debt.
            if resource.type == "SCALAR":
                millis = existing.millis - resource.millis
                if millis <= 0:
                    del by_key[key]
                else:
                    by_key[key] = _scalar_resource(existing.name, existing.role, millis)
                continue
            remaining = existing._combine(resource, -1)
            if remaining.is_empty():
                del by_key[key]
            else:
                by_key[key] = remaining
        return Resources._wrap(by_key)

    def contains(self, other: Resources | Resource) -> bool:
        """True when every resource in ``other`` fits in ``self`` (same name, role and type)."""
        needed = (other,) if isinstance(other, Resource) else other._by_key.values()
        by_key = self._by_key
        for resource in needed:
            # Found under the same (name, role, type) key, so only the values need comparing.
            have = by_key.get((resource.name, resource.role, resource.type))
            if have is None:
                return False
            if resource.type == "SCALAR":
                if resource.millis > have.millis:
                    return False
            elif have != resource and not have.contains(resource):
                # (An equal resource is contained without comparing ranges or sets item by item.)
                return False
        return True

    def __contains__(self, other: object) -> bool:
        if isinstance(other, Resources | Resource):
            return self.contains(other)
        return False

    # -- output ------------------------------------------------------------------------------

    def to_json(self, *, reservation_refinement: bool = False) -> list[dict[str, Any]]:
        """The v1 JSON array. Memoized: treat the result as read-only (copy before changing)."""
        if self._json is None:
            self._json = {}
        cached = self._json.get(reservation_refinement)
        if cached is None:
            cached = [r.to_json(reservation_refinement=reservation_refinement) for r in self]
            self._json[reservation_refinement] = cached
        return cached

    def summary(self) -> dict[str, float | str]:
        """The /master/state form: ``{"cpus": 4.0, "gpus": 0.0, "mem": .., "disk": .., "ports": "[..]"}``.

        Mesos always prints cpus, gpus, mem and disk (0.0 when absent) and sums over roles.
        """
        scalars: dict[str, int] = {"cpus": 0, "gpus": 0, "mem": 0, "disk": 0}
        ranges: dict[str, Ranges] = {}
        sets: dict[str, tuple[str, ...]] = {}
        for r in self:
            if r.type == "SCALAR":
                scalars[r.name] = scalars.get(r.name, 0) + r.millis
            elif r.type == "RANGES":
                ranges[r.name] = ranges_union(ranges.get(r.name, ()), r.ranges)
            else:
                sets[r.name] = tuple(sorted({*sets.get(r.name, ()), *r.items}))
        out: dict[str, float | str] = {name: _from_millis(m) for name, m in scalars.items()}
        out.update({name: format_ranges(value, ", ") for name, value in ranges.items()})
        out.update({name: "{" + ", ".join(value) + "}" for name, value in sets.items()})
        return out

    def describe(self, allocation_role: str | None = None) -> str:
        """Mesos' own rendering (stringify), as used in its error messages.

        ``cpus(allocated: *):1; ports(allocated: *):[31000-31000, 31005-31010]``; reserved
        resources show ``(reservations: [(STATIC,role)])``.
        """
        parts = []
        for r in self:
            text = r.name
            if allocation_role is not None:
                text += f"(allocated: {allocation_role})"
            if r.role != "*":
                text += f"(reservations: [(STATIC,{r.role})])"
            parts.append(f"{text}:{r.summary_value() if r.type != 'SCALAR' else _format_number(r.scalar)}")
        return "; ".join(parts)

    def format(self) -> str:
        """Back to the ``--resources`` grammar; ``Resources.parse(r.format()) == r``."""
        parts = []
        for r in self:
            label = r.name if r.role == "*" else f"{r.name}({r.role})"
            parts.append(f"{label}:{r.value_text()}")
        return ";".join(parts)


_EMPTY = Resources()


def _check_uniform_types(resources: Resources) -> None:
    seen: dict[str, str] = {}
    for r in resources:
        if seen.setdefault(r.name, r.type) != r.type:
            raise ResourceError(
                f"resources: resources with the same name ('{r.name}') but different types are not allowed"
            )


def _parse_simple(text: str, default_role: str) -> list[Resource]:
    parsed: list[Resource] = []
    for token in (t for t in text.split(";") if t):
        pair = [p for p in token.split(":") if p]
        if len(pair) != 2:
            raise ResourceError(f"Bad value for resources, missing or extra ':' in {token!r}")
        label, value = pair
        open_paren = label.find("(")
        if open_paren < 0:
            name, role = label.strip(), default_role
        else:
            close_paren = label.find(")")
            if close_paren < 0 or close_paren < open_paren:
                raise ResourceError(f"Bad value for resources, mismatched parentheses in {token!r}")
            name = label[:open_paren].strip()
            role = label[open_paren + 1 : close_paren].strip()
        parsed.append(_parse_value(name, value, role))
    return parsed


def _parse_value(name: str, value: str, role: str) -> Resource:
    if not name:
        raise ResourceError("resources: empty resource name")
    problem = validate_role(role)
    if problem:
        raise ResourceError(f"resource {name!r}: {problem}")
    compact = value.replace(" ", "")
    if not compact:
        raise ResourceError(f"resource {name!r}: expecting a non-empty value")
    if compact.startswith("["):
        return Resource.ranges_of(name, parse_ranges(compact, f"resource {name!r}"), role)
    if compact.startswith("{"):
        if not compact.endswith("}") or "[" in compact:
            raise ResourceError(f"resource {name!r}: mismatched braces in set {value!r}")
        items = [i for i in re.split(r"[{},\n]", compact) if i]
        if len(set(items)) != len(items):
            raise ResourceError(f"resource {name!r}: invalid set resource: duplicated elements")
        return Resource.set_of(name, items, role)
    if _NUMBER.match(compact):
        number = float(compact)
        if not math.isfinite(number):
            raise ResourceError(f"resource {name!r}: scalar value must be finite, got {value!r}")
        if number < 0 or (number != 0 and _to_millis(number) <= 0):
            raise ResourceError(f"resource {name!r}: invalid scalar resource: value <= 0 ({value!r})")
        return Resource.scalar_of(name, number, role)
    raise ResourceError(
        f"Bad type for resource {name} value {value} type TEXT "
        "(expected a number, [begin-end,...] ranges or a {a,b} set)"
    )


def resource_from_json(
    item: Any, *, default_role: str = "*", index: int = 0, command_line: bool = False
) -> Resource:
    """One v1 Resource JSON object -> Resource, with errors naming the offending field."""
    where = f"resources[{index}]"
    # type() first: isinstance() against the Mapping ABC is slow, and JSON objects are dicts.
    if type(item) is not dict and not isinstance(item, Mapping):
        raise ResourceError(f"{where}: expected an object, got {type(item).__name__}")
    name = item.get("name")
    rtype = item.get("type")
    if not isinstance(name, str) or not name:
        raise ResourceError(f"{where}.name: required non-empty string")
    if rtype not in ("SCALAR", "RANGES", "SET"):
        if rtype == "TEXT":
            raise ResourceError(f"{where} ({name}): unsupported resource type TEXT")
        raise ResourceError(f"{where}.type: must be SCALAR, RANGES or SET, got {rtype!r}")
    if command_line:
        if "revocable" in item:
            raise ResourceError(
                "Revocable resources cannot be specified at the command line; do not include a "
                "'revocable' key in the resources JSON"
            )
        disk = item.get("disk")
        if isinstance(disk, Mapping) and "persistence" in disk:
            raise ResourceError("Persistent volumes cannot be specified at the command line")
        if "reservation" in item or any(
            isinstance(r, Mapping) and r.get("type") == "DYNAMIC" for r in item.get("reservations") or []
        ):
            raise ResourceError(
                "Dynamic reservations cannot be specified at the command line; do not include a "
                "reservation with DYNAMIC type in the resources JSON"
            )
    role = _json_role(item, default_role, where)
    if rtype == "SCALAR":
        scalar = item.get("scalar")
        value = scalar.get("value") if type(scalar) is dict or isinstance(scalar, Mapping) else None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ResourceError(f"{where}.scalar.value: required number for SCALAR resource {name!r}")
        if not math.isfinite(value) or value < 0:
            raise ResourceError(f"{where} ({name}): invalid scalar resource: value <= 0 or not finite")
        millis = _to_millis(value)
        if value != 0 and millis <= 0:
            raise ResourceError(f"{where} ({name}): invalid scalar resource: value <= 0 or not finite")
        # Resource.scalar_of without its finiteness check, done just above.
        return _scalar_resource(name, role, millis)
    if rtype == "RANGES":
        ranges = item.get("ranges")
        raw = ranges.get("range", []) if isinstance(ranges, Mapping) else None
        if not isinstance(raw, list):
            raise ResourceError(f"{where}.ranges.range: required array for RANGES resource {name!r}")
        parsed: list[Range] = []
        for j, rng in enumerate(raw):
            begin = rng.get("begin") if isinstance(rng, Mapping) else None
            end = rng.get("end") if isinstance(rng, Mapping) else None
            if (
                not isinstance(begin, int)
                or not isinstance(end, int)
                or not _is_uint(begin)
                or not _is_uint(end)
            ):
                raise ResourceError(f"{where}.ranges.range[{j}]: begin and end must be non-negative integers")
            if begin > end:
                raise ResourceError(f"{where} ({name}): invalid ranges resource: begin > end")
            parsed.append((begin, end))
        return Resource.ranges_of(name, parsed, role)
    set_value = item.get("set")
    items = set_value.get("item", []) if isinstance(set_value, Mapping) else None
    if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
        raise ResourceError(f"{where}.set.item: required array of strings for SET resource {name!r}")
    if len(set(items)) != len(items):
        raise ResourceError(f"{where} ({name}): invalid set resource: duplicated elements")
    return Resource.set_of(name, items, role)


def _is_uint(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _json_role(item: Mapping[str, Any], default_role: str, where: str) -> str:
    reservations = item.get("reservations")
    role: Any
    if reservations is None:
        # The common pre-refinement resource; "*" is always valid.
        role = item.get("role", default_role)
        if role == "*" and type(role) is str:
            return role
    if isinstance(reservations, list) and reservations:
        # Post-refinement format: the last (most refined) reservation is the effective role.
        last = reservations[-1]
        role = last.get("role") if isinstance(last, Mapping) else None
        if not isinstance(role, str):
            raise ResourceError(f"{where}.reservations[-1].role: required string")
    else:
        role = item.get("role", default_role)
        if not isinstance(role, str):
            raise ResourceError(f"{where}.role: must be a string")
    problem = validate_role(role)
    if problem:
        raise ResourceError(f"{where}.role: {problem}")
    return role


# ---------------------------------------------------------------------------------------------
# Agent defaults
# ---------------------------------------------------------------------------------------------


def _stringify_double(value: float) -> str:
    # Mesos feeds detected mem/disk through stringify(double), i.e. an ostream with the default
    # 6 significant digits, before parsing them back: 23123.457 MB becomes 23123.5 MB.
    return f"{value:g}"


def _detect_cpus() -> float:
    return float(os.cpu_count() or 1)


def _detect_memory_bytes() -> int:
    return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def _detect_disk_bytes(path: str) -> int:
    stat = os.statvfs(path)
    return stat.f_blocks * stat.f_frsize


def agent_resources(
    flag: str | None,
    work_dir: str,
    default_role: str = "*",
    *,
    cpus: float | None = None,
    memory_bytes: int | None = None,
    disk_bytes: int | None = None,
) -> Resources:
    """What an agent started with ``--resources=flag --work_dir=work_dir`` offers.

    ``flag`` may be the grammar, a JSON array, or ``file:///path`` holding either. Whatever the
    flag does not mention is detected as Mesos does: cpus = cores; mem = total - 1 GB (half if
    under 2 GB); disk = size of work_dir's filesystem - 5 GB (half if under 10 GB); ports
    [31000-32000]. As in Mesos, "mention" is a substring test on the raw flag text.
    ``cpus``/``memory_bytes``/``disk_bytes`` override detection (tests).
    """
    text = load_flag_value(flag) if flag else ""
    resources = Resources.parse(text, default_role) if text.strip() else Resources()
    extra: list[Resource] = []
    if "cpus" not in text:
        extra.append(Resource.scalar_of("cpus", cpus if cpus is not None else _detect_cpus(), default_role))
    if "mem" not in text:
        total = memory_bytes if memory_bytes is not None else _detect_memory_bytes()
        mem = total - _GB if total >= 2 * _GB else total // 2
        extra.append(_parse_value("mem", _stringify_double(mem / _MB), default_role))
    if "disk" not in text:
        total = disk_bytes if disk_bytes is not None else _detect_disk_bytes(work_dir)
        disk = total - 5 * _GB if total >= 10 * _GB else total // 2
        extra.append(_parse_value("disk", _stringify_double(disk / _MB), default_role))
    if "ports" not in text:
        extra.append(Resource.ranges_of("ports", DEFAULT_PORTS, default_role))
    return resources + Resources(extra)


def load_flag_value(value: str) -> str:
    """Mesos flags accept ``file:///path``: the value is then the file's content."""
    if value.startswith("file://"):
        path = value[len("file://") :]
        try:
            with open(path, encoding="utf-8") as handle:
                return handle.read().strip()
        except OSError as error:
            raise ResourceError(f"cannot read flag value from {value!r}: {error.strerror}") from error
    return value


# ---------------------------------------------------------------------------------------------
# Attributes
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Attribute:
    """An agent attribute: TEXT (``text``), SCALAR (``millis``) or RANGES (``ranges``)."""

    name: str
    type: Literal["TEXT", "SCALAR", "RANGES"]
    text: str = ""
    millis: int = 0
    ranges: Ranges = ()

    @property
    def scalar(self) -> float:
        return _from_millis(self.millis)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "type": self.type}
        if self.type == "TEXT":
            out["text"] = {"value": self.text}
        elif self.type == "SCALAR":
            out["scalar"] = {"value": self.scalar}
        else:
            out["ranges"] = {"range": [{"begin": b, "end": e} for b, e in self.ranges]}
        return out

    def summary_value(self) -> float | str:
        if self.type == "TEXT":
            return self.text
        if self.type == "SCALAR":
            return self.scalar
        return format_ranges(self.ranges, ", ")

    def value_text(self) -> str:
        if self.type == "TEXT":
            return self.text
        if self.type == "SCALAR":
            return _format_number(self.scalar)
        return format_ranges(self.ranges)


def parse_attributes(text: str | None) -> list[Attribute]:
    """Parse ``--attributes``: ``k:v;k2:v2`` (also newline-separated, or ``file://``).

    A numeric value is SCALAR, ``[a-b,..]`` is RANGES, anything else TEXT. Spaces inside values
    are removed, as Mesos does. Sets are not valid attributes.
    """
    if not text:
        return []
    text = load_flag_value(text)
    attributes: list[Attribute] = []
    for token in (t for t in re.split(r"[;\n]", text) if t):
        name, sep, value = token.partition(":")
        if not sep or not name or not value:
            raise AttributeParseError(f"attributes: invalid attribute key:value pair {token!r}")
        compact = value.replace(" ", "")
        if not compact:
            raise AttributeParseError(f"attributes: attribute {name!r} has an empty value")
        if compact.startswith("["):
            try:
                ranges = parse_ranges(compact, f"attribute {name!r}")
            except ResourceError as error:
                raise AttributeParseError(str(error)) from error
            attributes.append(Attribute(name=name, type="RANGES", ranges=ranges))
        elif compact.startswith("{"):
            raise AttributeParseError(f"attributes: bad type for attribute {name!r}: sets are not allowed")
        elif _NUMBER.match(compact) and math.isfinite(float(compact)):
            attributes.append(Attribute(name=name, type="SCALAR", millis=_to_millis(float(compact))))
        else:
            attributes.append(Attribute(name=name, type="TEXT", text=compact))
    return attributes


def attributes_from_json(document: Any) -> list[Attribute]:
    """A v1 JSON array of Attribute -> Attributes, with errors naming the field."""
    if not isinstance(document, list):
        raise AttributeParseError(f"attributes: expected a JSON array, got {type(document).__name__}")
    result: list[Attribute] = []
    for i, item in enumerate(document):
        where = f"attributes[{i}]"
        if not isinstance(item, Mapping):
            raise AttributeParseError(f"{where}: expected an object")
        name, atype = item.get("name"), item.get("type")
        if not isinstance(name, str) or not name:
            raise AttributeParseError(f"{where}.name: required non-empty string")
        if atype == "TEXT":
            value = item.get("text", {}).get("value") if isinstance(item.get("text"), Mapping) else None
            if not isinstance(value, str):
                raise AttributeParseError(f"{where}.text.value: required string")
            result.append(Attribute(name=name, type="TEXT", text=value))
        elif atype == "SCALAR":
            scalar = item.get("scalar")
            number = scalar.get("value") if isinstance(scalar, Mapping) else None
            if isinstance(number, bool) or not isinstance(number, int | float) or not math.isfinite(number):
                raise AttributeParseError(f"{where}.scalar.value: required finite number")
            result.append(Attribute(name=name, type="SCALAR", millis=_to_millis(float(number))))
        elif atype == "RANGES":
            try:
                resource = resource_from_json({**item, "role": "*"}, index=i)
            except ResourceError as error:
                raise AttributeParseError(str(error).replace("resources[", "attributes[")) from error
            result.append(Attribute(name=name, type="RANGES", ranges=resource.ranges))
        else:
            raise AttributeParseError(f"{where}.type: must be TEXT, SCALAR or RANGES, got {atype!r}")
    return result


def attributes_to_json(attributes: Iterable[Attribute]) -> list[dict[str, Any]]:
    return [a.to_json() for a in attributes]


def attributes_summary(attributes: Iterable[Attribute]) -> dict[str, float | str]:
    """The /master/state form: ``{"rack": "r1", "zone_size": 3.0}``."""
    return {a.name: a.summary_value() for a in attributes}


def format_attributes(attributes: Iterable[Attribute]) -> str:
    """Back to the ``--attributes`` grammar."""
    return ";".join(f"{a.name}:{a.value_text()}" for a in attributes)
