"""Fixtures for the hook tests: a clean token cache per test and a leak check for secrets."""

from __future__ import annotations

import logging

import pytest

from symbl_airflow.tokens import TOKEN_CACHE


@pytest.fixture
def issued_tokens():
    """Collect every token the cache stores during the test (to check they never leak)."""
    seen: list[str] = []
    original = TOKEN_CACHE.store

    def spy(key, value, expires_in, margin):
        seen.append(value)
        return original(key, value, expires_in, margin)

    TOKEN_CACHE.store = spy  # type: ignore[method-assign]
    try:
        yield seen
    finally:
        del TOKEN_CACHE.store


@pytest.fixture
def logs(caplog, capsys):
    """All log output of the test so far: stdlib records (caplog) plus what structlog printed.

    Airflow's ``LoggingMixin.log`` is a structlog logger that renders to stdout outside a task, so
    caplog alone would miss the hooks' own messages.
    """
    caplog.set_level(logging.DEBUG)
    chunks: list[str] = []

    def read() -> str:
        out, err = capsys.readouterr()
        chunks.extend([out, err])
        return caplog.text + "".join(chunks)

    return read


def assert_no_secrets(texts, secrets):
    """Fail if any secret appears in any of ``texts``."""
    blob = "\n".join(str(t) for t in texts)
    for secret in secrets:
        assert secret, "empty secret in the leak check"
        assert secret not in blob, "a secret leaked into logs or an exception message"
