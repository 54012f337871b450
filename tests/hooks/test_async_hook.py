"""SymblAsyncHook against the sandbox: one token fetch for many concurrent callers, 401 refresh, retries."""

from __future__ import annotations

import asyncio
import io
import json
import time

import pytest

from symbl_airflow.errors import SymblAuthError, SymblConnectionError, SymblNotFoundError, SymblServerError
from symbl_airflow.hooks import SymblAsyncHook, SymblHook, SymblJob
from symbl_airflow.tokens import TOKEN_CACHE
from tests.hooks.conftest import assert_no_secrets

pytestmark = pytest.mark.integration


@pytest.fixture
def job(clean_sandbox, mp4):
    """An accepted submission (made with the sync hook), then a cold token cache."""
    data = mp4.make([("Alice", "Hello everyone.")], seconds_per_cue=1.0)
    sync = SymblHook(backoff_base=0.01)
    sub = sync.submit_video(lambda: io.BytesIO(data), len(data))
    sync.close()
    TOKEN_CACHE.clear()
    return sub


async def test_50_concurrent_get_job_share_one_token(clean_sandbox, job):
    before = clean_sandbox.stats()["token_requests"]
    async with SymblAsyncHook(backoff_base=0.01) as hook:
        jobs = await asyncio.gather(*(hook.get_job(job.job_id) for _ in range(50)))
    assert all(isinstance(j, SymblJob) and j.id == job.job_id for j in jobs)
    assert clean_sandbox.stats()["token_requests"] - before == 1


async def test_concurrent_callers_across_hook_instances_share_one_token(clean_sandbox, job):
    before = clean_sandbox.stats()["token_requests"]

    async def one():
        async with SymblAsyncHook(backoff_base=0.01) as hook:
            return await hook.get_job(job.job_id)

    await asyncio.gather(*(one() for _ in range(20)))
    assert clean_sandbox.stats()["token_requests"] - before == 1


async def test_sync_and_async_share_the_token(clean_sandbox, job):
    before = clean_sandbox.stats()["token_requests"]
    await asyncio.to_thread(SymblHook(backoff_base=0.01).get_access_token)
    async with SymblAsyncHook() as hook:
        await hook.get_job(job.job_id)
    assert clean_sandbox.stats()["token_requests"] - before == 1


async def test_expired_token_refreshed_once_for_all_callers(clean_sandbox, job, logs, issued_tokens):
    async with SymblAsyncHook(backoff_base=0.01) as hook:
        await hook.get_job(job.job_id)
        before = clean_sandbox.stats()["token_requests"]
        clean_sandbox.expire_tokens()
        jobs = await asyncio.gather(*(hook.get_job(job.job_id) for _ in range(20)))
    assert {j.id for j in jobs} == {job.job_id}
    assert clean_sandbox.stats()["token_requests"] - before == 1
    assert_no_secrets([logs()], [clean_sandbox.app_secret, *issued_tokens])


async def test_5xx_retried_and_404_not(clean_sandbox, job):
    clean_sandbox.fault(match={"method": "GET", "path": "/v1/job/*"}, action="status", status=502, times=2)
    async with SymblAsyncHook(backoff_base=0.01) as hook:
        assert (await hook.get_job(job.job_id)).id == job.job_id
        before = clean_sandbox.stats()["requests"].get("GET /v1/job/{jobId}", 0)
        with pytest.raises(SymblNotFoundError) as info:
            await hook.get_job("missing-job")
    assert info.value.job_id == "missing-job" and info.value.status == 404
    assert clean_sandbox.stats()["requests"]["GET /v1/job/{jobId}"] - before == 1


async def test_5xx_exhausted(clean_sandbox, job):
    clean_sandbox.fault(
        match={"method": "GET", "path": "/v1/job/*"}, action="status", status=503, body={"message": "down"}, times=None
    )
    async with SymblAsyncHook(backoff_base=0.01, max_attempts=3) as hook:
        with pytest.raises(SymblServerError) as info:
            await hook.get_job(job.job_id)
    assert info.value.status == 503 and info.value.message == "down"
    assert clean_sandbox.stats()["requests"]["GET /v1/job/{jobId}"] == 3


async def test_429_retry_after(clean_sandbox, job, logs):
    clean_sandbox.fault(
        match={"method": "GET", "path": "/v1/job/*"},
        action="status",
        status=429,
        body={"message": "slow down"},
        headers={"Retry-After": "1"},
    )
    started = time.monotonic()
    async with SymblAsyncHook(backoff_base=0.01) as hook:
        await hook.get_job(job.job_id)
    assert time.monotonic() - started >= 1.0
    assert "[attempt 1/5] GET /v1/job/" in logs()


async def test_drop_retried_for_get(clean_sandbox, job):
    clean_sandbox.fault(match={"method": "GET", "path": "/v1/job/*"}, action="drop", phase="after_body")
    async with SymblAsyncHook(backoff_base=0.01) as hook:
        assert (await hook.get_job(job.job_id)).id == job.job_id


async def test_works_without_async_with(clean_sandbox, job):
    hook = SymblAsyncHook(backoff_base=0.01)
    assert (await hook.get_job(job.job_id)).id == job.job_id
    conversation = await hook.get_conversation(job.conversation_id)
    assert conversation["id"] == job.conversation_id


async def test_insights_async(clean_sandbox, job):
    async with SymblAsyncHook(backoff_base=0.01) as hook:
        deadline = time.monotonic() + 30
        while not (await hook.get_job(job.job_id)).is_terminal:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.1)
        messages = await hook.get_insight(job.conversation_id, "messages", verbose=True)
        trackers = await hook.get_insight(job.conversation_id, "trackers")
    assert "Hello everyone." in " ".join(m["text"] for m in messages["messages"])
    assert isinstance(trackers, list)


async def test_bad_credentials_async(clean_sandbox, monkeypatch, logs):
    secret = "wrong-async-secret-8812"
    monkeypatch.setenv(
        "AIRFLOW_CONN_SYMBL_AWRONG",
        json.dumps(
            {"conn_type": "symbl", "host": clean_sandbox.url, "login": clean_sandbox.app_id, "password": secret}
        ),
    )
    async with SymblAsyncHook("symbl_awrong", backoff_base=0.01) as hook:
        with pytest.raises(SymblAuthError) as info:
            await hook.get_job("x")
    assert "'symbl_awrong'" in str(info.value)
    assert_no_secrets([str(info.value), logs()], [secret])


async def test_connection_refused_async(monkeypatch):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv(
        "AIRFLOW_CONN_SYMBL_ADOWN",
        json.dumps({"conn_type": "symbl", "host": f"http://127.0.0.1:{port}", "login": "a", "password": "b" * 8}),
    )
    async with SymblAsyncHook("symbl_adown", backoff_base=0.01, max_attempts=2) as hook:
        with pytest.raises(SymblConnectionError, match="no response after 2 attempt"):
            await hook.get_job("x")


async def test_session_closed_after_async_with(clean_sandbox, job):
    hook = SymblAsyncHook()
    async with hook:
        session = hook._session
        await hook.get_job(job.job_id)
    assert session.closed and hook._session is None
