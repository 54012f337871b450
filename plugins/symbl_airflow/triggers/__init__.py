"""Symbl triggers: ``SymblJobTrigger`` (job.py) polls Symbl jobs in the triggerer.

Deferred tasks in flight are rebuilt from the classpath ``symbl_airflow.triggers.SymblJobTrigger``,
which the trigger serializes as whatever module it lives in.
"""

from __future__ import annotations

from symbl_airflow.jobs import error_for_event, job_failed_error, normalize_job_ids
from symbl_airflow.triggers.job import (
    MAX_BACKOFF_SECONDS,
    MAX_CONCURRENT_REQUESTS,
    TRANSIENT_ERRORS,
    TRIGGER_CLASSPATH,
    SymblJobTrigger,
)

__all__ = [
    "MAX_BACKOFF_SECONDS",
    "MAX_CONCURRENT_REQUESTS",
    "TRANSIENT_ERRORS",
    "TRIGGER_CLASSPATH",
    "SymblJobTrigger",
    "error_for_event",
    "job_failed_error",
    "normalize_job_ids",
]
