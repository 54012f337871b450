"""Fixtures for the trigger tests: a clean token cache and a helper that submits real MP4s to the sandbox."""

from __future__ import annotations

import io

import pytest

from symbl_airflow.tokens import TOKEN_CACHE


@pytest.fixture(autouse=True)
def fresh_token_cache():
    """The sandbox forgets its tokens on reset, so every test starts without a cached one."""
    TOKEN_CACHE.clear()
    yield
    TOKEN_CACHE.clear()


@pytest.fixture
def submit(clean_sandbox, mp4):
    """``submit(seconds=1.0, conversation_id=None) -> SymblSubmission``: POST/PUT a real small MP4."""
    from symbl_airflow.hooks import SymblHook

    hook = SymblHook()

    def _submit(seconds: float = 1.0, conversation_id: str | None = None):
        data = mp4.make([("Alice", "Hello there."), ("Bob", "Hi Alice.")], seconds_per_cue=seconds / 2)
        return hook.submit_video(lambda: io.BytesIO(data), len(data), conversation_id=conversation_id)

    yield _submit
    hook.close()
