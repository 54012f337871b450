"""SymblJobTrigger.run() against the real Symbl sandbox over HTTP."""

from __future__ import annotations

import json
import time

import pytest

from symbl_airflow.tokens import TOKEN_CACHE
from symbl_airflow.triggers import SymblJobTrigger
from symbl_airflow.triggers import job as triggers

pytestmark = pytest.mark.integration

JOB_ROUTE = "GET /v1/job/{jobId}"


async def run_once(trigger: SymblJobTrigger) -> dict:
    events = [event async for event in trigger.run()]
    assert len(events) == 1, events
    return events[0].payload


def job_gets(sandbox) -> int:
    return sandbox.stats()["requests"].get(JOB_ROUTE, 0)


@pytest.fixture
def count_sleeps(monkeypatch):
    """Count the trigger's sleeps (one per interval) while still sleeping for real."""
    delays: list[float] = []
    real_sleep = triggers.asyncio.sleep

    async def counting_sleep(delay, *args, **kwargs):
        delays.append(delay)
        await real_sleep(delay, *args, **kwargs)

    monkeypatch.setattr(triggers.asyncio, "sleep", counting_sleep)
    return delays


async def test_success_for_jobs_of_two_conversations(clean_sandbox, submit):
    first = submit()
    second = submit(conversation_id=first.conversation_id)  # queued behind the first one
    other = submit()
    assert other.conversation_id != first.conversation_id
    job_ids = [first.job_id, second.job_id, other.job_id]

    trigger = SymblJobTrigger(job_ids=job_ids, poll_interval=0.1, end_time=time.time() + 60)
    event = await run_once(trigger)

    assert event["status"] == "success", event
    assert event["job_ids"] == job_ids
    assert event["statuses"] == dict.fromkeys(job_ids, "completed")
    for job_id in job_ids:
        assert clean_sandbox.request("GET", f"/v1/job/{job_id}", headers=_auth(clean_sandbox)).json() == {
            "id": job_id,
            "status": "completed",
        }
    # Data only, before and after a run: no token, no secret.
    classpath, kwargs = trigger.serialize()
    dumped = json.dumps(kwargs)
    token = TOKEN_CACHE.get_cached((clean_sandbox.url, clean_sandbox.app_id))
    assert token and token not in dumped
    assert clean_sandbox.app_secret not in dumped


async def test_failed_job(clean_sandbox, submit):
    good = submit()
    clean_sandbox.fault(match={"method": "PUT", "path": "/v1/process/video/*"}, action="fail_job")
    bad = submit(conversation_id=good.conversation_id)
    event = await run_once(
        SymblJobTrigger(
            job_ids=[good.job_id, bad.job_id],
            conversation_id=good.conversation_id,
            poll_interval=0.1,
            end_time=time.time() + 60,
        )
    )
    assert event["status"] == "failed", event
    assert event["failed_job_id"] == bad.job_id
    assert event["statuses"][bad.job_id] == "failed"
    assert bad.job_id in event["message"] and good.conversation_id in event["message"]
    assert event["conversation_id"] == good.conversation_id


async def test_timeout_and_request_count(clean_sandbox, submit, count_sleeps):
    """N long jobs pending for k polls cost N*k job GETs and a single token fetch."""
    subs = [submit(seconds=60.0) for _ in range(3)]  # ~3 s of simulated work each
    job_ids = [s.job_id for s in subs]
    TOKEN_CACHE.clear()
    before = clean_sandbox.stats()
    started = time.monotonic()

    event = await run_once(SymblJobTrigger(job_ids=job_ids, poll_interval=0.25, end_time=time.time() + 1.0))

    elapsed = time.monotonic() - started
    after = clean_sandbox.stats()
    assert event["status"] == "timeout", event
    assert set(event["statuses"].values()) <= {"scheduled", "in_progress"}
    for job_id in job_ids:
        assert job_id in event["message"]
    assert 0.9 <= elapsed < 2.5
    polls = len(count_sleeps) + 1
    assert 4 <= polls <= 6
    assert all(delay <= 0.25 + 1e-6 for delay in count_sleeps)
    gets = after["requests"][JOB_ROUTE] - before["requests"].get(JOB_ROUTE, 0)
    assert gets == len(job_ids) * polls
    assert after["token_requests"] - before["token_requests"] == 1
    print(f"\n[measure] {len(job_ids)} jobs x {polls} polls -> {gets} job GETs, 1 token fetch, {elapsed:.2f}s")


async def test_transient_503_then_success(clean_sandbox, submit):
    sub = submit()
    clean_sandbox.fault(match={"method": "GET", "path": "/v1/job/*"}, action="status", status=503, times=2)
    event = await run_once(SymblJobTrigger(job_ids=sub.job_id, poll_interval=0.1, end_time=time.time() + 60))
    assert event["status"] == "success", event
    assert job_gets(clean_sandbox) >= 3  # two refused, then real answers


async def test_rate_limited_with_retry_after_then_success(clean_sandbox, submit):
    sub = submit()
    clean_sandbox.fault(
        match={"method": "GET", "path": "/v1/job/*"},
        action="status",
        status=429,
        headers={"Retry-After": "1"},
        body={"message": "Too many requests"},
        times=1,
    )
    started = time.monotonic()
    event = await run_once(SymblJobTrigger(job_ids=sub.job_id, poll_interval=0.1, end_time=time.time() + 60))
    assert event["status"] == "success", event
    assert time.monotonic() - started >= 1.0  # Retry-After was honoured


async def test_persistent_errors_give_up_with_error(clean_sandbox, submit):
    sub = submit()
    clean_sandbox.fault(match={"method": "GET", "path": "/v1/job/*"}, action="status", status=503, times=None)
    event = await run_once(
        SymblJobTrigger(job_ids=sub.job_id, poll_interval=0.1, max_attempts=2, end_time=time.time() + 60)
    )
    assert event["status"] == "error", event
    assert "HTTP 503" in event["message"] and sub.job_id in event["message"]
    assert job_gets(clean_sandbox) == 4  # 2 polls x 2 attempts inside the hook


async def test_unknown_job_is_an_error(clean_sandbox, submit):
    sub = submit()
    missing = "00000000-0000-4000-8000-000000000000"
    event = await run_once(SymblJobTrigger(job_ids=[sub.job_id, missing], poll_interval=0.1, end_time=time.time() + 60))
    assert event["status"] == "error", event
    assert missing in event["message"]
    assert job_gets(clean_sandbox) == 2  # no retry of a 404, no second poll


def _auth(sandbox) -> dict[str, str]:
    return {"Authorization": f"Bearer {sandbox.token()}"}


async def test_missing_connection_is_an_error_event(sandbox):
    event = await run_once(SymblJobTrigger(job_ids="j1", symbl_conn_id="no_such_symbl_conn", conversation_id="c1"))
    assert event["status"] == "error"
    assert "no_such_symbl_conn" in event["message"] and "j1" in event["message"]
