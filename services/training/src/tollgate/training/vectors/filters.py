"""Metadata filters of a vector search (SloughGPT's `filters`), parsed into conditions that every
result must meet (the repository turns them into SQL over the points' JSONB metadata):

- `"category": "technology"`: equality (a string, number or boolean);
- `"category": ["news", "technology"]`: any of these values;
- `"date_range": "2024-01-01:2024-02-01"`: SloughGPT's range, on the field without `_range`
  (`date`), both ends inclusive, either end may be left out (`"2024-01-01:"`); numbers when both
  ends are numbers, else strings (ISO dates and times compare in order);
- `"price": {"gte": 10, "lt": 20}`: a range with `gt`, `gte`, `lt`, `lte` (numbers or strings).

A range only matches values of its own JSON type (a string never satisfies a numeric bound).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from tollgate.common.errors import InvalidRequest

MAX_CONDITIONS = 16
MAX_VALUES = 100
_FIELD = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")
_NUMBER = re.compile(r"^-?\d+(\.\d+)?([eE][-+]?\d+)?$")
BOUNDS = ("gt", "gte", "lt", "lte")

Scalar = str | int | float | bool


@dataclass(frozen=True, slots=True)
class AnyOf:
    """The field equals one of `values` (one value: plain equality)."""

    field: str
    values: tuple[Scalar, ...]


@dataclass(frozen=True, slots=True)
class Range:
    field: str
    kind: str  # "number" | "string": the JSON type the field's value must have
    bounds: tuple[tuple[str, Scalar], ...]  # (operator, value), operator in BOUNDS


Condition = AnyOf | Range


def _bad(message: str, value: Any = None) -> InvalidRequest:
    err = InvalidRequest(message, param="filters")
    err.details = {"value": value} if value is not None else {}  # type: ignore[attr-defined]
    return err


def _scalar(value: Any) -> bool:
    return isinstance(value, str | int | float | bool)


def _seed_range(field: str, text: str) -> Range:
    """`lo:hi`, `lo:` or `:hi`; an ISO time's own colons are kept (the middle colon splits)."""
    if text.startswith(":"):
        low, high = "", text[1:]
    elif text.endswith(":"):
        low, high = text[:-1], ""
    else:
        colons = [i for i, ch in enumerate(text) if ch == ":"]
        if len(colons) % 2 == 0:
            raise _bad(f"Filter '{field}_range' must be 'from:to' (either end may be empty).", text)
        middle = colons[len(colons) // 2]
        low, high = text[:middle], text[middle + 1 :]
    if not low and not high:
        raise _bad(f"Filter '{field}_range' needs at least one end.", text)
    ends = [end for end in (low, high) if end]
    numeric = all(_NUMBER.match(end) for end in ends)
    bounds: list[tuple[str, Scalar]] = []
    for operator, end in (("gte", low), ("lte", high)):
        if end:
            bounds.append((operator, float(end) if numeric else end))
    return Range(field, "number" if numeric else "string", tuple(bounds))


def _object_range(field: str, spec: dict[str, Any]) -> Range:
    unknown = set(spec) - set(BOUNDS)
    if not spec or unknown:
        raise _bad(f"Filter '{field}' takes the operators {', '.join(BOUNDS)}.", sorted(unknown) or None)
    kinds = set()
    for value in spec.values():
        if isinstance(value, bool) or not isinstance(value, int | float | str):
            raise _bad(f"Filter '{field}' bounds must be numbers or strings.", value)
        kinds.add("string" if isinstance(value, str) else "number")
    if len(kinds) != 1:
        raise _bad(f"Filter '{field}' mixes numeric and string bounds.")
    return Range(field, kinds.pop(), tuple((op, spec[op]) for op in BOUNDS if op in spec))


def parse_filters(raw: Any) -> list[Condition]:
    if raw is None:
        return []
    if not isinstance(raw, dict):
        raise _bad("'filters' must be an object of metadata conditions.")
    if len(raw) > MAX_CONDITIONS:
        raise _bad(f"'filters' takes at most {MAX_CONDITIONS} conditions.")
    conditions: list[Condition] = []
    for name, value in raw.items():
        if not _FIELD.match(name):
            raise _bad("Filter names are 1-64 letters, digits, '_', '.' or '-'.", name)
        if name.endswith("_range") and isinstance(value, str) and len(name) > len("_range"):
            conditions.append(_seed_range(name[: -len("_range")], value))
        elif isinstance(value, dict):
            conditions.append(_object_range(name, value))
        elif isinstance(value, list):
            if not value or len(value) > MAX_VALUES or not all(_scalar(v) for v in value):
                raise _bad(f"Filter '{name}' takes 1-{MAX_VALUES} strings, numbers or booleans.")
            conditions.append(AnyOf(name, tuple(value)))
        elif _scalar(value):
            conditions.append(AnyOf(name, (value,)))
        else:
            raise _bad(f"Filter '{name}' must be a value, a list of values or a range.", value)
    return conditions
