"""Pure JSON-body assertions: `path` is dotted, numeric parts index lists, `*` maps over lists."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from mytrader_ops.config import JsonAssertion

JsonValue = None | bool | int | float | str | list["JsonValue"] | dict[str, "JsonValue"]
_MISSING = object()


@dataclass(frozen=True, slots=True)
class AssertionResult:
    ok: bool
    detail: str


def select(doc: JsonValue, path: str) -> object:
    """Resolve `path`; returns `_MISSING` when absent. `*` yields a list of the mapped values."""
    current: object = doc
    parts = [p for p in path.split(".") if p] if path else []
    for i, part in enumerate(parts):
        if part == "*":
            if not isinstance(current, list):
                return _MISSING
            rest = ".".join(parts[i + 1 :])
            mapped = [select(item, rest) for item in current]
            return [m for m in mapped if m is not _MISSING]
        if isinstance(current, list) and part.lstrip("-").isdigit():
            index = int(part)
            if not -len(current) <= index < len(current):
                return _MISSING
            current = current[index]
        elif isinstance(current, dict) and part in current:
            current = current[part]
        else:
            return _MISSING
    return current


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def check(doc: JsonValue, a: JsonAssertion) -> AssertionResult:
    """Evaluate one assertion, describing what was found either way."""
    where = a.path or "$"
    value = select(doc, a.path)
    if a.exists is not None:
        present = value is not _MISSING and value is not None
        found = None if value is _MISSING else value
        if present != a.exists:
            return AssertionResult(
                False,
                f"{where}: expected exists={a.exists}, found {_short(found)}",
            )
    if value is _MISSING:
        if a.exists is False:
            return AssertionResult(True, f"{where}: absent as expected")
        return AssertionResult(False, f"{where}: missing")
    if a.equals is not None and value != a.equals:
        return AssertionResult(False, f"{where}: expected {a.equals!r}, found {_short(value)}")
    if a.min_length is not None or a.max_length is not None:
        if not isinstance(value, list | dict | str):
            return AssertionResult(False, f"{where}: expected a list, found {_short(value)}")
        n = len(value)
        if a.min_length is not None and n < a.min_length:
            return AssertionResult(False, f"{where}: length {n} < minimum {a.min_length}")
        if a.max_length is not None and n > a.max_length:
            return AssertionResult(False, f"{where}: length {n} > maximum {a.max_length}")
    if a.contains is not None:
        if not isinstance(value, list):
            return AssertionResult(False, f"{where}: expected a list, found {_short(value)}")
        missing = [c for c in a.contains if c not in value]
        if missing:
            return AssertionResult(False, f"{where}: missing {missing}")
    if a.sorted_desc:
        if not isinstance(value, list):
            return AssertionResult(False, f"{where}: expected a list, found {_short(value)}")
        try:
            numbers = [float(v) for v in value]
        except (TypeError, ValueError):
            return AssertionResult(False, f"{where}: not all numeric: {_short(value)}")
        if any(b > a_ for a_, b in itertools.pairwise(numbers)):
            return AssertionResult(False, f"{where}: not in descending order: {_short(value)}")
    return AssertionResult(True, f"{where}: ok ({_short(value)})")
