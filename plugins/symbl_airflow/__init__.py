"""Symbl.ai for Apache Airflow: append S3 videos to Symbl conversations, wait for jobs, store insights.

Public names are imported lazily so that the triggerer and DAG parsing, which import this package,
do not pay for requests, boto3 or the S3 hook until a name is used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from symbl_airflow.version import __version__

_LAZY = {
    "SymblHook": "symbl_airflow.hooks",
    "SymblAsyncHook": "symbl_airflow.hooks",
    "SymblJob": "symbl_airflow.hooks",
    "SymblSubmission": "symbl_airflow.hooks",
    "SymblOptions": "symbl_airflow.options",
    "SymblError": "symbl_airflow.errors",
    "SymblAppendVideoOperator": "symbl_airflow.operators.append",
    "SymblInsightsOperator": "symbl_airflow.operators.insights",
    "SymblJobSensor": "symbl_airflow.sensors.job",
    "SymblJobTrigger": "symbl_airflow.triggers.job",
}

__all__ = [
    "SymblAppendVideoOperator",
    "SymblAsyncHook",
    "SymblError",
    "SymblHook",
    "SymblInsightsOperator",
    "SymblJob",
    "SymblJobSensor",
    "SymblJobTrigger",
    "SymblOptions",
    "SymblSubmission",
    "__version__",
]

if TYPE_CHECKING:  # pragma: no cover
    from symbl_airflow.errors import SymblError
    from symbl_airflow.hooks import SymblAsyncHook, SymblHook, SymblJob, SymblSubmission
    from symbl_airflow.operators.append import SymblAppendVideoOperator
    from symbl_airflow.operators.insights import SymblInsightsOperator
    from symbl_airflow.options import SymblOptions
    from symbl_airflow.sensors.job import SymblJobSensor
    from symbl_airflow.triggers.job import SymblJobTrigger


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'symbl_airflow' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
