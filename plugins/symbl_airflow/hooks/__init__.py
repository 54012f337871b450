"""Hooks for the Symbl.ai REST API: ``SymblHook`` (requests, workers) and ``SymblAsyncHook`` (aiohttp, triggers).

The package's parts, one concern each:

* :mod:`~symbl_airflow.hooks.config`: the Airflow connection, parsed and checked once;
* :mod:`~symbl_airflow.hooks.connection`: looking the connection up from the triggerer's loop;
* :mod:`~symbl_airflow.hooks.wire`: paths, parameters, and Symbl's answers turned into values or errors;
* :mod:`~symbl_airflow.hooks.retry`: the one retry policy of both hooks (tenacity);
* :mod:`~symbl_airflow.hooks.upload`: the streamed upload body;
* :mod:`~symbl_airflow.hooks.sync_hook` and :mod:`~symbl_airflow.hooks.async_hook`: the two clients.

Import from ``symbl_airflow.hooks``: the names below are the public API; the modules may move.
Names load lazily, so ``symbl_airflow.hooks.DEFAULT_CHUNK_SIZE`` (e.g. an operator's default at DAG
parse time) does not import requests, aiohttp or the HTTP provider.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

_MODULES = {
    "async_hook": ["SymblAsyncHook"],
    "config": [
        "DEFAULT_BASE_URL",
        "DEFAULT_CONNECT_TIMEOUT",
        "DEFAULT_READ_TIMEOUT",
        "DEFAULT_UPLOAD_READ_TIMEOUT",
        "USER_AGENT",
        "SymblConnectionConfig",
        "normalize_base_url",
        "parse_connection",
    ],
    "connection": ["aget_connection"],
    "retry": [
        "AMBIGUOUS_UPLOAD_STATUSES",
        "DEFAULT_BACKOFF_BASE",
        "DEFAULT_BACKOFF_MAX",
        "DEFAULT_MAX_ATTEMPTS",
        "DEFAULT_MAX_RETRY_SECONDS",
        "IDEMPOTENT_RETRY_STATUSES",
        "REFUSED_STATUSES",
        "RetryPolicy",
        "parse_retry_after",
    ],
    "sync_hook": ["SymblHook", "is_connect_failure"],
    "upload": ["DEFAULT_CHUNK_SIZE", "UploadBody"],
    "wire": [
        "EXPERIENCE_UNAVAILABLE_STATUSES",
        "INSIGHT_ENDPOINTS",
        "JOB_STATUSES",
        "JOB_TERMINAL_STATUSES",
        "MEDIA_ENDPOINTS",
        "TOKEN_PATH",
        "SymblJob",
        "SymblSubmission",
    ],
}
_WHERE = {name: module for module, names in _MODULES.items() for name in names}
# Names of the single-module hooks.py of 0.x, kept for code that imported them.
_ALIASES = {"_UploadBody": ("upload", "UploadBody"), "_is_connect_failure": ("sync_hook", "is_connect_failure")}

__all__ = [
    "AMBIGUOUS_UPLOAD_STATUSES",
    "DEFAULT_BACKOFF_BASE",
    "DEFAULT_BACKOFF_MAX",
    "DEFAULT_BASE_URL",
    "DEFAULT_CHUNK_SIZE",
    "DEFAULT_CONNECT_TIMEOUT",
    "DEFAULT_MAX_ATTEMPTS",
    "DEFAULT_MAX_RETRY_SECONDS",
    "DEFAULT_READ_TIMEOUT",
    "DEFAULT_UPLOAD_READ_TIMEOUT",
    "EXPERIENCE_UNAVAILABLE_STATUSES",
    "IDEMPOTENT_RETRY_STATUSES",
    "INSIGHT_ENDPOINTS",
    "JOB_STATUSES",
    "JOB_TERMINAL_STATUSES",
    "MEDIA_ENDPOINTS",
    "REFUSED_STATUSES",
    "RetryPolicy",
    "SymblAsyncHook",
    "SymblConnectionConfig",
    "SymblHook",
    "SymblJob",
    "SymblSubmission",
    "TOKEN_PATH",
    "UploadBody",
    "USER_AGENT",
    "aget_connection",
    "is_connect_failure",
    "normalize_base_url",
    "parse_connection",
    "parse_retry_after",
]

if TYPE_CHECKING:  # pragma: no cover
    from symbl_airflow.hooks.async_hook import SymblAsyncHook
    from symbl_airflow.hooks.config import (
        DEFAULT_BASE_URL,
        DEFAULT_CONNECT_TIMEOUT,
        DEFAULT_READ_TIMEOUT,
        DEFAULT_UPLOAD_READ_TIMEOUT,
        USER_AGENT,
        SymblConnectionConfig,
        normalize_base_url,
        parse_connection,
    )
    from symbl_airflow.hooks.connection import aget_connection
    from symbl_airflow.hooks.retry import (
        AMBIGUOUS_UPLOAD_STATUSES,
        DEFAULT_BACKOFF_BASE,
        DEFAULT_BACKOFF_MAX,
        DEFAULT_MAX_ATTEMPTS,
        DEFAULT_MAX_RETRY_SECONDS,
        IDEMPOTENT_RETRY_STATUSES,
        REFUSED_STATUSES,
        RetryPolicy,
        parse_retry_after,
    )
    from symbl_airflow.hooks.sync_hook import SymblHook, is_connect_failure
    from symbl_airflow.hooks.upload import DEFAULT_CHUNK_SIZE, UploadBody
    from symbl_airflow.hooks.wire import (
        EXPERIENCE_UNAVAILABLE_STATUSES,
        INSIGHT_ENDPOINTS,
        JOB_STATUSES,
        JOB_TERMINAL_STATUSES,
        MEDIA_ENDPOINTS,
        TOKEN_PATH,
        SymblJob,
        SymblSubmission,
    )


def __getattr__(name: str) -> Any:
    module, attr = _ALIASES.get(name) or (_WHERE.get(name), name)
    if module is None:
        raise AttributeError(f"module 'symbl_airflow.hooks' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"symbl_airflow.hooks.{module}"), attr)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*__all__, *_ALIASES])
