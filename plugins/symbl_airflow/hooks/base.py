"""What both hooks share: the connection id, the per-hook overrides and the retry policy they give."""

from __future__ import annotations

from typing import Any

from symbl_airflow.hooks.config import DEFAULT_CONN_ID, SymblConnectionConfig
from symbl_airflow.hooks.retry import RetryPolicy


class SymblHookMixin:
    """Constructor arguments of both hooks (they win over the connection's extras).

    :param symbl_conn_id: Airflow connection: host = base URL (default ``https://api.symbl.ai``),
        login = App ID, password = App Secret; extras ``timeout``, ``connect_timeout``,
        ``token_refresh_margin``, ``max_attempts``, ``max_retry_seconds``, ``backoff_base``.
    :param max_attempts: attempts per call including the first (default: extra, else 5).
    :param max_retry_seconds: total time budget for retries of one call (default: extra, else 300).
    :param timeout: read timeout in seconds for every call (default: extra ``timeout``, else 300 s for
        uploads and 60 s for other calls).
    :param backoff_base: first backoff ceiling in seconds (doubles per attempt, full jitter).
    """

    conn_name_attr = "symbl_conn_id"
    default_conn_name = DEFAULT_CONN_ID
    conn_type = "symbl"
    hook_name = "Symbl.ai"

    def __init__(
        self,
        symbl_conn_id: str = DEFAULT_CONN_ID,
        *,
        max_attempts: int | None = None,
        max_retry_seconds: float | None = None,
        timeout: float | None = None,
        backoff_base: float | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.symbl_conn_id = symbl_conn_id
        self._max_attempts = max_attempts
        self._max_retry_seconds = max_retry_seconds
        self._timeout = timeout
        self._backoff_base = backoff_base
        self._config: SymblConnectionConfig | None = None
        self._policy: RetryPolicy | None = None

    def _retry_policy(self, config: SymblConnectionConfig) -> RetryPolicy:
        if self._policy is None:
            self._policy = RetryPolicy.resolve(config, self._max_attempts, self._max_retry_seconds, self._backoff_base)
        return self._policy
