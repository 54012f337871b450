"""Symbl sensors: ``SymblJobSensor`` (job.py) waits for Symbl jobs, poking or deferred."""

from __future__ import annotations

from symbl_airflow.sensors.job import (
    DEFAULT_DEFERRABLE_POKE_INTERVAL,
    DEFAULT_POKE_INTERVAL,
    SymblJobSensor,
    job_hints,
    job_sources,
    resolve_job_ids,
)

__all__ = [
    "DEFAULT_DEFERRABLE_POKE_INTERVAL",
    "DEFAULT_POKE_INTERVAL",
    "SymblJobSensor",
    "job_hints",
    "job_sources",
    "resolve_job_ids",
]
