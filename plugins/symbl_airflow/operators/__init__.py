"""Symbl operators: ``SymblAppendVideoOperator`` (append.py) and ``SymblInsightsOperator`` (insights.py).

Names load lazily, so a DAG that uses one operator does not import the other's module.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_WHERE = {
    "SymblAppendVideoOperator": "symbl_airflow.operators.append",
    "SymblInsightsOperator": "symbl_airflow.operators.insights",
}

__all__ = ["SymblAppendVideoOperator", "SymblInsightsOperator"]

if TYPE_CHECKING:  # pragma: no cover
    from symbl_airflow.operators.append import SymblAppendVideoOperator
    from symbl_airflow.operators.insights import SymblInsightsOperator


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'symbl_airflow.operators' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
