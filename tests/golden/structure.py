"""Structural comparison of a sandbox response with a golden example from Symbl's reference.

Checked: keys (exact spelling, so casing too), nesting, JSON types (int and float are one "number", as in
JSON), value formats recognised in the golden value (ISO-8601 UTC with milliseconds, dates, numeric ids,
UUIDs, URLs, e-mails, JWTs) and, where an example says so, exact values or a set of allowed values.

A list in a golden example holds *alternatives* for its items: each item of the actual list must match one
of them (the one with the same ``type`` when there is one), so one example can cover e.g. person and date
entities. Paths are written ``actionItems[].entities[].value``; ``[]`` stands for "any item".
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

FORMATS: dict[str, re.Pattern[str]] = {
    "iso-8601 UTC with milliseconds": re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$"),
    "date YYYY-MM-DD": re.compile(r"^\d{4}-\d{2}-\d{2}$"),
    "numeric id": re.compile(r"^\d{12,19}$"),
    "uuid": re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"),
    "http(s) URL": re.compile(r"^https?://[^\s/]+(/\S*)?$"),
    "e-mail": re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$"),
    "JWT": re.compile(r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$"),
}


@dataclass
class Rules:
    """What an example allows beyond its literal shape; every entry names its source in the examples."""

    optional: set[str] = field(default_factory=set)  # paths the sandbox may leave out
    extra: set[str] = field(default_factory=set)  # paths the sandbox may add
    exact: set[str] = field(default_factory=set)  # paths whose value must equal the example's
    values: dict[str, set[Any]] = field(default_factory=dict)  # path -> allowed values
    formats: dict[str, set[str]] = field(default_factory=dict)  # path -> allowed format names (overrides)
    non_empty: set[str] = field(default_factory=set)  # list paths of which at least one must have items
    decimals: dict[str, int] = field(default_factory=dict)  # number path -> most decimal places allowed


def json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, Mapping):
        return "object"
    return type(value).__name__


def format_of(text: str) -> str | None:
    for name, pattern in FORMATS.items():
        if pattern.match(text):
            return name
    return None


def compare(golden: Any, actual: Any, rules: Rules | None = None, path: str = "") -> list[str]:
    """Every difference, as ``"<path>: <what>"``; an empty list means the shapes agree."""
    rules = rules or Rules()
    where = path or "<root>"
    if json_type(golden) != json_type(actual):
        return [f"{where}: expected {json_type(golden)}, got {json_type(actual)} ({actual!r:.80})"]
    errors: list[str] = []
    if isinstance(golden, Mapping):
        for key in golden:
            sub = f"{path}.{key}" if path else key
            if key not in actual:
                if sub not in rules.optional:
                    errors.append(f"{sub}: missing")
                continue
            errors += compare(golden[key], actual[key], rules, sub)
        for key in actual:
            sub = f"{path}.{key}" if path else key
            if key not in golden and sub not in rules.extra:
                errors.append(f"{sub}: not in the reference example ({actual[key]!r:.60})")
        return errors
    if isinstance(golden, list):
        item_path = f"{path}[]"
        if not actual or not golden:
            return errors
        for i, item in enumerate(actual):
            best = _best_alternative(golden, item, rules, item_path)
            errors += [e.replace(item_path, f"{path}[{i}]", 1) for e in best]
        return errors
    if path in rules.exact and golden != actual:
        errors.append(f"{where}: expected exactly {golden!r}, got {actual!r}")
    if path in rules.values and actual not in rules.values[path]:
        errors.append(f"{where}: {actual!r} is not one of {sorted(map(str, rules.values[path]))}")
    if path in rules.decimals and isinstance(actual, int | float) and round(actual, rules.decimals[path]) != actual:
        errors.append(f"{where}: {actual!r} has more than {rules.decimals[path]} decimal places")
    if isinstance(golden, str):
        allowed = rules.formats.get(path)
        if allowed is None:
            expected = format_of(golden)
            allowed = {expected} if expected else set()
        if allowed and not any(FORMATS[name].match(actual) for name in allowed):
            errors.append(f"{where}: {actual!r} does not have the format {' or '.join(sorted(allowed))}")
    return errors


def _best_alternative(alternatives: list[Any], item: Any, rules: Rules, path: str) -> list[str]:
    candidates = alternatives
    if isinstance(item, Mapping) and "type" in item:
        same = [a for a in alternatives if isinstance(a, Mapping) and a.get("type") == item["type"]]
        candidates = same or alternatives
    results = [compare(alt, item, rules, path) for alt in candidates]
    return min(results, key=len)


def values_at(node: Any, path: str) -> list[Any]:
    """Every value at ``path`` (``a[].b``; ``""`` is the root, ``[]`` alone its items)."""
    nodes = [node]
    for part in [p for p in path.replace("[]", ".[]").split(".") if p]:
        nxt = []
        for n in nodes:
            if part == "[]" and isinstance(n, list):
                nxt.extend(n)
            elif isinstance(n, Mapping) and part in n:
                nxt.append(n[part])
        nodes = nxt
    return nodes


def check(golden: Any, actual: Any, rules: Rules | None = None) -> list[str]:
    """:func:`compare`, plus: each ``non_empty`` list path has items somewhere, so the comparison saw them."""
    rules = rules or Rules()
    errors = compare(golden, actual, rules)
    for path in sorted(rules.non_empty):
        if not any(isinstance(v, list) and v for v in values_at(actual, path)):
            errors.append(f"{path or '<root>'}: never has items, so they were not compared (enrich the conversation)")
    return errors
