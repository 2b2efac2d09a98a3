"""Placement constraints on agent hostnames and attributes.

Syntax (one property value, entries separated by `;` or newlines; the JSON spec may also give a
list of entries):

    field:value            the field equals value exactly            rack:r1
    field:EQ:value         same, spelled out                         zone:EQ:us-east-1a
    field:LIKE:regex       the whole field matches the regex         hostname:LIKE:worker-[0-9]+
    field:UNLIKE:regex     the field does not match (or is absent)   hostname:UNLIKE:gpu-.*

`field` is `hostname` (the offer's hostname) or the name of an agent attribute (`--attributes` on
the agent). Operators are case-insensitive; regexes use Python syntax and must match the whole value,
like Marathon's LIKE/UNLIKE. Scalar attributes compare as written by Mesos (`2`, `2.5`), ranges as
`[1-5,8-9]`, sets as `{a,b}`. An absent attribute fails EQ and LIKE and satisfies UNLIKE.
"""

from __future__ import annotations

import dataclasses
import enum
import re
from collections.abc import Iterable, Mapping
from typing import Any

from framework.mesos_resources import attributes_from_json

HOSTNAME_FIELD = "hostname"


class Operator(enum.StrEnum):
    EQ = "EQ"
    LIKE = "LIKE"
    UNLIKE = "UNLIKE"


@dataclasses.dataclass(frozen=True)
class Constraint:
    field: str
    operator: Operator
    value: str
    _pattern: re.Pattern[str] | None = dataclasses.field(default=None, compare=False, repr=False)

    @classmethod
    def create(cls, field_name: str, operator: Operator, value: str) -> Constraint:
        pattern = None
        if operator is not Operator.EQ:
            try:
                pattern = re.compile(value)
            except re.error as error:
                raise ValueError(f"{field_name}:{operator}:{value}: invalid regex ({error})") from error
        return cls(field_name, operator, value, pattern)

    def __str__(self) -> str:
        return f"{self.field}:{self.operator}:{self.value}"

    def violation(self, hostname: str, attributes: Mapping[str, str]) -> str | None:
        """None when satisfied, else a short reason naming the constraint and the actual value."""
        actual = hostname if self.field == HOSTNAME_FIELD else attributes.get(self.field)
        if self.operator is Operator.EQ:
            satisfied = actual == self.value
        elif self.operator is Operator.LIKE:
            satisfied = actual is not None and self._matches(actual)
        else:
            satisfied = actual is None or not self._matches(actual)
        if satisfied:
            return None
        shown = "absent" if actual is None else repr(actual)
        return f"constraint {self} not met ({self.field} is {shown})"

    def _matches(self, actual: str) -> bool:
        assert self._pattern is not None
        return self._pattern.fullmatch(actual) is not None


def parse_constraint(text: str) -> Constraint:
    entry = text.strip()
    parts = entry.split(":", 2)
    if len(parts) < 2 or not parts[0].strip():
        raise ValueError(f"{entry!r}: expected field:value or field:OPERATOR:value")
    field_name = parts[0].strip()
    if len(parts) == 3 and parts[1].strip().upper() in Operator.__members__:
        return Constraint.create(field_name, Operator(parts[1].strip().upper()), parts[2])
    return Constraint.create(field_name, Operator.EQ, entry.split(":", 1)[1])


def parse_constraints(value: str | Iterable[str]) -> tuple[Constraint, ...]:
    """Parse a property value or a list of entries; raise ValueError naming the bad entry."""
    entries = re.split(r"[;\n]", value) if isinstance(value, str) else list(value)
    return tuple(parse_constraint(entry) for entry in entries if entry.strip())


def offer_attributes(offer: Mapping[str, Any]) -> dict[str, str]:
    """Attributes of a v1 Offer as name -> text, in the agent's `--attributes` spelling."""
    return {a.name: a.value_text() for a in attributes_from_json(offer.get("attributes") or [])}


def violations(constraints: Iterable[Constraint], hostname: str, attributes: Mapping[str, str]) -> list[str]:
    return [reason for c in constraints if (reason := c.violation(hostname, attributes)) is not None]
