"""SymblJobTrigger edge cases with a scripted hook: serialization, error counting, backoff, cancellation."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from airflow.sdk.exceptions import AirflowException, AirflowFailException
from airflow.sdk.module_loading import import_string
from airflow.triggers.base import TriggerEvent

from symbl_airflow import hooks, jobs
from symbl_airflow.errors import (
    SymblAuthError,
    SymblConnectionError,
    SymblJobFailedError,
    SymblJobIdsError,
    SymblNotFoundError,
    SymblRateLimitError,
    SymblServerError,
)
from symbl_airflow.hooks import SymblJob
from symbl_airflow.triggers import SymblJobTrigger, normalize_job_ids
from symbl_airflow.triggers import job as triggers

pytestmark = pytest.mark.unit


class ScriptedHook:
    """Stands in for SymblAsyncHook: each job id answers from its script (the last entry repeats)."""

    script: dict[str, list] = {}
    instances: list[ScriptedHook] = []

    def __init__(self, symbl_conn_id="symbl_default", *, max_attempts=None, **kwargs):
        self.symbl_conn_id = symbl_conn_id
        self.max_attempts = max_attempts
        self.calls: list[str] = []
        self.entered = 0
        self.exited = 0
        ScriptedHook.instances.append(self)

    async def __aenter__(self):
        self.entered += 1
        return self

    async def __aexit__(self, *exc):
        self.exited += 1

    async def get_job(self, job_id: str) -> SymblJob:
        self.calls.append(job_id)
        steps = self.script[job_id]
        step = steps.pop(0) if len(steps) > 1 else steps[0]
        if isinstance(step, BaseException):
            raise step
        if isinstance(step, type) and issubclass(step, BaseException):
            raise step()
        return SymblJob(id=job_id, status=step)


@pytest.fixture
def hook(monkeypatch):
    ScriptedHook.script = {}
    ScriptedHook.instances = []
    monkeypatch.setattr(hooks, "SymblAsyncHook", ScriptedHook)
    return ScriptedHook


@pytest.fixture
def sleeps(monkeypatch):
    """Record the trigger's sleeps and skip them (asyncio.sleep as the trigger module sees it)."""
    recorded: list[float] = []
    real_sleep = asyncio.sleep

    async def fake_sleep(delay, *args, **kwargs):
        recorded.append(delay)
        await real_sleep(0)

    monkeypatch.setattr(triggers.asyncio, "sleep", fake_sleep)
    return recorded


async def events(trigger: SymblJobTrigger) -> list[TriggerEvent]:
    return [event async for event in trigger.run()]


def server_error(job_id="a"):
    return SymblServerError("boom", status=503, method="GET", endpoint=f"/v1/job/{job_id}", job_id=job_id)


# ---------------------------------------------------------------------------------------------- construction
def test_serialize_round_trip_is_plain_json():
    trigger = SymblJobTrigger(
        job_ids=["j1", "j2", "j1"],
        symbl_conn_id="my_symbl",
        poll_interval=2,
        end_time=1_700_000_000.5,
        conversation_id="c1",
        max_attempts=3,
    )
    classpath, kwargs = trigger.serialize()
    assert classpath == "symbl_airflow.triggers.SymblJobTrigger"
    assert kwargs == {
        "job_ids": ["j1", "j2"],
        "symbl_conn_id": "my_symbl",
        "poll_interval": 2.0,
        "end_time": 1_700_000_000.5,
        "conversation_id": "c1",
        "max_attempts": 3,
    }
    assert json.loads(json.dumps(kwargs)) == kwargs
    rebuilt = import_string(classpath)(**kwargs)
    assert isinstance(rebuilt, SymblJobTrigger)
    assert rebuilt.serialize() == (classpath, kwargs)


def test_classpath_follows_subclass():
    class Custom(SymblJobTrigger):
        pass

    assert Custom(job_ids="j").serialize()[0] == f"{__name__}.test_classpath_follows_subclass.<locals>.Custom"


@pytest.mark.parametrize(
    ("value", "expected"),
    [("j1", ["j1"]), (["b", "a", "b"], ["b", "a"]), (("x", " y "), ["x", "y"])],
)
def test_normalize_job_ids(value, expected):
    assert normalize_job_ids(value) == expected
    assert SymblJobTrigger(job_ids=value).job_ids == expected


@pytest.mark.parametrize("value", ["", "  ", [], [""], [1], None, 5, ["a", None]])
def test_normalize_job_ids_rejects(value):
    with pytest.raises(ValueError, match="job_ids"):
        SymblJobTrigger(job_ids=value)


# ---------------------------------------------------------------------------------------------- outcomes
async def test_success_polls_only_pending_jobs(hook, sleeps):
    hook.script = {"a": ["completed"], "b": ["scheduled", "in_progress", "completed"]}
    result = await events(SymblJobTrigger(job_ids=["a", "b"], poll_interval=3, conversation_id="c1"))
    assert result == [
        TriggerEvent(
            {
                "status": "success",
                "message": "All 2 Symbl job(s) of conversation c1 completed",
                "job_ids": ["a", "b"],
                "conversation_id": "c1",
                "statuses": {"a": "completed", "b": "completed"},
            }
        )
    ]
    (instance,) = hook.instances
    assert instance.calls.count("a") == 1
    assert instance.calls.count("b") == 3
    assert sleeps == [pytest.approx(3.0, abs=0.05)] * 2  # the interval minus the (tiny) poll time
    assert (instance.entered, instance.exited) == (1, 1)
    assert instance.max_attempts == 5


async def test_failed_as_soon_as_one_job_failed(hook, sleeps):
    hook.script = {"a": ["in_progress"], "b": ["in_progress", "failed"]}
    (event,) = await events(SymblJobTrigger(job_ids=["a", "b"], poll_interval=1, conversation_id="c9"))
    assert event.payload["status"] == "failed"
    assert event.payload["failed_job_id"] == "b"
    assert event.payload["statuses"] == {"a": "in_progress", "b": "failed"}
    assert "b" in event.payload["message"] and "c9" in event.payload["message"]
    assert len(sleeps) == 1


async def test_not_found_is_an_error_at_once(hook, sleeps):
    hook.script = {
        "a": ["in_progress"],
        "ghost": [SymblNotFoundError("Job not found", status=404, method="GET", endpoint="/v1/job/ghost")],
    }
    (event,) = await events(SymblJobTrigger(job_ids=["a", "ghost"], poll_interval=1))
    assert event.payload["status"] == "error"
    assert "ghost" in event.payload["message"]
    assert sleeps == []


async def test_non_transient_error_is_an_error_at_once(hook, sleeps):
    hook.script = {"a": [SymblAuthError("bad secret", status=401, method="GET", endpoint="/v1/job/a")]}
    (event,) = await events(SymblJobTrigger(job_ids="a", poll_interval=1))
    assert event.payload["status"] == "error"
    assert "HTTP 401" in event.payload["message"]
    assert event.payload["fatal"] is True  # the task fails without retries
    assert event.payload["message"].count("failed") == 1  # wrapped once
    assert sleeps == []


async def test_unknown_job_is_fatal_and_transient_exhaustion_is_not(hook, sleeps):
    hook.script = {"a": [SymblNotFoundError("no such job", status=404, method="GET", endpoint="/v1/job/a")]}
    (event,) = await events(SymblJobTrigger(job_ids="a", poll_interval=1))
    assert event.payload["status"] == "error" and event.payload["fatal"] is True
    hook.script = {"b": [server_error()]}
    (event,) = await events(SymblJobTrigger(job_ids="b", poll_interval=1, max_attempts=2))
    assert event.payload["status"] == "error" and event.payload["fatal"] is False


@pytest.mark.parametrize(
    ("event", "cls", "text"),
    [
        (
            {"status": "failed", "failed_job_id": "j2", "job_ids": ["j1", "j2"], "conversation_id": "c1"},
            SymblJobFailedError,
            "Symbl job j2 failed (video s3://b/2.mp4)",
        ),
        (
            {"status": "error", "message": "Polling Symbl job j1 failed: HTTP 503", "fatal": False},
            AirflowException,
            None,
        ),
        ({"status": "error", "message": "Symbl job j1 was not found", "fatal": True}, AirflowFailException, None),
    ],
)
def test_error_for_event(event, cls, text):
    exc = jobs.error_for_event(event, {"j2": "s3://b/2.mp4"})
    assert type(exc) is cls
    assert str(exc).startswith(text or event["message"])
    assert isinstance(exc, AirflowFailException) is (cls is not AirflowException)


@pytest.mark.parametrize("bad", ["", [], [""], [3]])
def test_bad_job_ids_fail_without_retry(bad):
    with pytest.raises(SymblJobIdsError) as exc:
        SymblJobTrigger(job_ids=bad)
    assert isinstance(exc.value, ValueError) and isinstance(exc.value, AirflowFailException)


async def test_consecutive_transient_failures_end_in_error(hook, sleeps):
    hook.script = {"a": [server_error()]}
    (event,) = await events(SymblJobTrigger(job_ids="a", poll_interval=2, max_attempts=4))
    assert event.payload["status"] == "error"
    assert "4 time(s) in a row" in event.payload["message"]
    assert "HTTP 503" in event.payload["message"]
    assert hook.instances[0].calls == ["a"] * 4
    assert len(sleeps) == 3
    # Exponential backoff with jitter: attempt n sleeps within [base*2**(n-1)/2, base*2**(n-1)].
    for n, delay in enumerate(sleeps, start=1):
        ceiling = 2.0 * 2 ** (n - 1)
        assert ceiling / 2 <= delay <= ceiling


async def test_failure_counter_resets_after_a_good_poll(hook, sleeps):
    conn_error = SymblConnectionError("refused", method="GET", endpoint="/v1/job/a")
    hook.script = {"a": [server_error(), server_error(), "in_progress", conn_error, server_error(), "completed"]}
    (event,) = await events(SymblJobTrigger(job_ids="a", poll_interval=1, max_attempts=3))
    assert event.payload["status"] == "success"
    assert len(hook.instances[0].calls) == 6


async def test_retry_after_is_respected(hook, sleeps):
    limited = SymblRateLimitError("slow down", status=429, method="GET", endpoint="/v1/job/a", retry_after=7.0)
    hook.script = {"a": [limited, "completed"]}
    (event,) = await events(SymblJobTrigger(job_ids="a", poll_interval=1))
    assert event.payload["status"] == "success"
    assert sleeps[0] >= 7.0


async def test_timeout_sleeps_at_most_until_end_time(hook):
    hook.script = {"a": ["in_progress"]}
    started = time.monotonic()
    (event,) = await events(SymblJobTrigger(job_ids="a", poll_interval=30, end_time=time.time() + 0.3))
    assert time.monotonic() - started < 5
    assert event.payload["status"] == "timeout"
    assert event.payload["statuses"] == {"a": "in_progress"}
    assert "a (in_progress)" in event.payload["message"]


async def test_deadline_already_passed_still_reports_a_finished_job(hook, sleeps):
    hook.script = {"a": ["completed"]}
    (event,) = await events(SymblJobTrigger(job_ids="a", end_time=time.time() - 60))
    assert event.payload["status"] == "success"


async def test_hook_setup_failure_becomes_error_event(monkeypatch):
    class Broken(ScriptedHook):
        async def __aenter__(self):
            raise RuntimeError("no such connection")

    monkeypatch.setattr(hooks, "SymblAsyncHook", Broken)
    (event,) = await events(SymblJobTrigger(job_ids=["a", "b"], conversation_id="c1"))
    assert event.payload["status"] == "error"
    assert "no such connection" in event.payload["message"]
    assert "a, b" in event.payload["message"] and "c1" in event.payload["message"]


# ---------------------------------------------------------------------------------------------- cancellation
async def test_cancelled_error_from_hook_propagates(hook, sleeps):
    hook.script = {"a": [asyncio.CancelledError]}
    with pytest.raises(asyncio.CancelledError):
        await events(SymblJobTrigger(job_ids="a"))
    assert hook.instances[0].exited == 1


async def test_cancelling_a_waiting_trigger_propagates_and_closes_the_session(hook):
    hook.script = {"a": ["in_progress"]}
    task = asyncio.create_task(SymblJobTrigger(job_ids="a", poll_interval=30).run().__anext__())
    await asyncio.sleep(0.2)
    assert not task.done()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert hook.instances[0].exited == 1


async def test_concurrency_is_bounded(hook, sleeps, monkeypatch):
    monkeypatch.setattr(triggers, "MAX_CONCURRENT_REQUESTS", 3)
    in_flight = 0
    peak = 0

    class Slow(ScriptedHook):
        async def get_job(self, job_id):
            nonlocal in_flight, peak
            in_flight += 1
            peak = max(peak, in_flight)
            for _ in range(3):
                await asyncio.sleep(0)
            in_flight -= 1
            return SymblJob(id=job_id, status="completed")

    monkeypatch.setattr(hooks, "SymblAsyncHook", Slow)
    ids = [f"j{i}" for i in range(10)]
    (event,) = await events(SymblJobTrigger(job_ids=ids))
    assert event.payload["status"] == "success"
    assert 1 < peak <= 3


async def test_poll_time_is_not_added_to_the_interval(monkeypatch):
    """A slow poll shortens the following sleep, so the cadence stays one poll_interval."""
    import asyncio

    from symbl_airflow.hooks import SymblJob
    from symbl_airflow.triggers import job as triggers_module

    calls = {"n": 0}

    class SlowHook:
        def __init__(self, *args, **kwargs):
            pass

        async def __aenter__(self):
            return self

        async def __aexit__(self, *exc):
            return False

        async def get_job(self, job_id):
            calls["n"] += 1
            await real_sleep(0.3)
            return SymblJob(id=job_id, status="completed" if calls["n"] >= 3 else "in_progress")

    real_sleep = asyncio.sleep
    sleeps = []

    async def fake_sleep(delay):
        sleeps.append(delay)

    monkeypatch.setattr("symbl_airflow.hooks.SymblAsyncHook", SlowHook)
    monkeypatch.setattr(triggers_module.asyncio, "sleep", fake_sleep)
    trigger = triggers_module.SymblJobTrigger(job_ids="j1", poll_interval=1.0)
    events = [e async for e in trigger.run()]
    assert events[0].payload["status"] == "success"
    assert len(sleeps) == 2 and all(0.6 < s < 0.75 for s in sleeps), sleeps
