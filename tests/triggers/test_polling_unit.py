"""The poll plan, the rate it learns, the shared session pool, and how trigger and sensor use them."""

from __future__ import annotations

import asyncio
import json
import random
import time

import pytest
from airflow.sdk.exceptions import TaskDeferred
from airflow.sdk.module_loading import import_string

from symbl_airflow import hooks, polling
from symbl_airflow.hooks import SymblJob
from symbl_airflow.polling import (
    PollPlan,
    QuantileTracker,
    RateEstimator,
    SessionPool,
    aligned_hints,
    clean_hints,
    expected_unfinished,
)
from symbl_airflow.sensors import SymblJobSensor, job_hints
from symbl_airflow.triggers import SymblJobTrigger
from symbl_airflow.triggers import job as triggers

pytestmark = pytest.mark.unit

T0 = 1_800_000_000.0


def estimator(rate: float, upper: float | None = None) -> RateEstimator:
    est = RateEstimator(rate)
    est.upper.rate = rate if upper is None else upper
    return est


def plan(est: RateEstimator, *, media=None, submitted=None, interval=10.0, spread=False, ids=("j",), seed=0):
    return PollPlan(
        list(ids),
        interval,
        est,
        media_seconds=media,
        submitted_at=submitted,
        spread_first_poll=spread,
        now=T0,
        rng=random.Random(seed),
    )


# ---------------------------------------------------------------------------------------------- the schedule
def test_first_poll_goes_out_when_the_job_should_be_done():
    p = plan(estimator(0.5), media={"j": 100.0}, submitted={"j": T0 - 5})
    assert p.due_at("j") == pytest.approx(T0 - 5 + 50)
    assert p.delay(["j"], T0) == pytest.approx(45)
    assert p.due(["j"], T0 + 44) == [] and p.due(["j"], T0 + 45) == ["j"]


def test_a_job_late_at_its_first_poll_is_polled_again_sooner_then_every_interval():
    p = plan(estimator(0.5), media={"j": 100.0}, submitted={"j": T0})
    t = T0 + 50
    gaps = []
    for _ in range(5):
        p.answered("j", "in_progress", t, t)
        gaps.append(p.due_at("j") - t)
        t = p.due_at("j")
    # interval/4, interval/2, then the interval: a late job is still seen within one interval.
    assert gaps == pytest.approx([2.5, 5.0, 10.0, 10.0, 10.0], abs=0.2)


def test_without_hints_the_cadence_is_the_interval_from_each_poll_start():
    p = plan(estimator(0.5))
    assert p.due_at("j") == T0  # at once, as before
    p.answered("j", "scheduled", T0, T0 + 0.3)
    assert p.due_at("j") == T0 + 10


def test_random_first_poll_phase_spreads_waits_started_together():
    ids = [f"j{i}" for i in range(200)]
    p = plan(estimator(0.5), ids=ids, spread=True, seed=7)
    offsets = [p.due_at(j) - T0 for j in ids]
    assert all(0 <= o < 10 for o in offsets)
    assert max(offsets) - min(offsets) > 8  # spread over the interval, not a burst
    buckets = [sum(1 for o in offsets if k <= o < k + 1) for k in range(10)]
    assert max(buckets) < 45  # no second of the interval gets a quarter of the polls


def test_a_hinted_job_already_due_at_the_start_is_polled_soon_at_a_random_phase():
    p = plan(estimator(0.5), media={"j": 10.0}, submitted={"j": T0 - 600}, spread=True, seed=3)
    assert T0 <= p.due_at("j") < T0 + 10
    assert plan(estimator(0.5), media={"j": 10.0}, submitted={"j": T0 - 600}).due_at("j") == T0


def test_only_jobs_with_both_hints_are_planned_on_their_length():
    p = plan(estimator(0.5), media={"a": 100.0}, submitted={"b": T0}, ids=("a", "b"))
    assert p.due_at("a") == T0 and p.due_at("b") == T0


def test_first_poll_follows_the_estimate_while_it_learns():
    est = estimator(0.5)
    p = plan(est, media={"j": 100.0}, submitted={"j": T0})
    assert p.due_at("j") == pytest.approx(T0 + 50)
    est.median.rate = est.upper.rate = 0.8
    assert p.due_at("j") == pytest.approx(T0 + 80)


def test_spread_rates_pull_the_first_poll_towards_the_fast_tail():
    steady = plan(estimator(1.0), media={"j": 1000.0}, submitted={"j": T0})
    assert steady.due_at("j") == pytest.approx(T0 + 1000)  # lower * m + interval = 960 is not sooner
    spread = plan(estimator(1.0, upper=1.2), media={"j": 1000.0}, submitted={"j": T0})
    lower = (1 / 1.2) ** polling.LOWER_STRETCH * (1 - polling.LOWER_MARGIN)
    assert spread.due_at("j") == pytest.approx(T0 + lower * 1000 + 10)
    assert spread.due_at("j") < T0 + 800


# ---------------------------------------------------------------------------------------------- learning
def test_quantile_tracker_moves_by_its_answers():
    tracker = QuantileTracker(0.5, rate=1.0)
    tracker.observe(False)
    assert tracker.rate > 1.0
    high = tracker.rate
    tracker.observe(True)
    assert tracker.rate < high


@pytest.mark.parametrize(
    ("elapsed", "done", "last_pending", "expected"),
    [
        (50, True, None, True),  # done at the estimate
        (50, False, None, False),  # running at the estimate
        (30, False, None, None),  # running before the estimate: says nothing
        (80, True, None, None),  # done long after it, never seen running before it: says nothing
        (56, True, 40, True),  # seen running before, done after: the midpoint (48) decides
        (70, True, 40, False),  # midpoint 55 is after the estimate
    ],
)
def test_what_a_poll_answer_says_about_a_quantile(elapsed, done, last_pending, expected):
    assert QuantileTracker(0.5, rate=0.5).answer(100.0, elapsed, done, last_pending) is expected


def _simulate(est: RateEstimator, rates: list[float], media: float = 100.0, interval: float = 10.0) -> int:
    """Jobs one after another, each answering its polls from its true rate; returns the GETs spent."""
    gets = 0
    start = T0
    for rate in rates:
        p = PollPlan(["j"], interval, est, media_seconds={"j": media}, submitted_at={"j": start}, now=start)
        done_at = start + rate * media
        while True:
            t = p.due_at("j")
            gets += 1
            done = t >= done_at
            p.answered("j", "completed" if done else "in_progress", t, t)
            if done:
                break
        start += 1.0
    return gets


def test_the_rate_is_learned_from_completed_jobs():
    est = RateEstimator()  # the conservative default: jobs assumed fast
    assert est.rate == polling.DEFAULT_SECONDS_PER_MEDIA_SECOND
    _simulate(est, [0.8] * 200)
    assert est.rate == pytest.approx(0.8, rel=0.1)
    # Once learned, a job of known length costs few GETs.
    gets = _simulate(est, [0.8] * 100)
    assert gets / 100 <= 2.0


def test_the_rate_follows_symbl_getting_faster():
    est = RateEstimator(1.0)
    _simulate(est, [1.0] * 100)
    _simulate(est, [0.5] * 200)
    assert est.rate == pytest.approx(0.5, rel=0.15)


def test_a_job_queued_behind_an_unfinished_one_teaches_nothing():
    est = estimator(0.5)
    p = PollPlan(["a", "b"], 10.0, est, media_seconds={"a": 100.0, "b": 100.0}, submitted_at={"a": T0, "b": T0}, now=T0)
    p.answered("b", "in_progress", T0 + 50, T0 + 50)  # b waits for a (one conversation): not Symbl being slow
    assert est.median.samples == 0 and est.upper.samples == 0
    p.answered("a", "in_progress", T0 + 50, T0 + 50)
    assert est.median.samples == 1


def test_rates_are_per_connection_and_resettable():
    polling.reset_rate_estimates()
    a, b = polling.rate_estimator("conn_a"), polling.rate_estimator("conn_b")
    assert a is polling.rate_estimator("conn_a") and a is not b
    a.median.observe(False)
    assert b.rate == polling.DEFAULT_SECONDS_PER_MEDIA_SECOND
    polling.reset_rate_estimates()
    assert polling.rate_estimator("conn_a").rate == polling.DEFAULT_SECONDS_PER_MEDIA_SECOND


# ---------------------------------------------------------------------------------------------- hints
def test_clean_hints():
    assert clean_hints(None, ["a"], "media_seconds") is None
    assert clean_hints({"a": 3, "zzz": 4, "b": None}, ["a", "b"], "media_seconds") == {"a": 3.0}
    assert clean_hints({"zzz": 4}, ["a"], "media_seconds") is None
    for bad in ({"a": -1}, {"a": "x"}, {"a": float("nan")}, [1, 2]):
        with pytest.raises(ValueError, match="media_seconds"):
            clean_hints(bad, ["a"], "media_seconds")


def test_trigger_hints_survive_serialize():
    trigger = SymblJobTrigger(
        job_ids=["j1", "j2"],
        poll_interval=10,
        media_seconds={"j1": 61.5, "j2": None},
        submitted_at={"j1": T0, "j2": T0 + 1},
        spread_first_poll=True,
    )
    classpath, kwargs = trigger.serialize()
    assert kwargs["media_seconds"] == {"j1": 61.5}
    assert kwargs["submitted_at"] == {"j1": T0, "j2": T0 + 1}
    assert kwargs["spread_first_poll"] is True
    assert json.loads(json.dumps(kwargs)) == kwargs
    assert import_string(classpath)(**kwargs).serialize() == (classpath, kwargs)
    # Without hints the kwargs are what they always were.
    assert set(SymblJobTrigger(job_ids="j").serialize()[1]) == {
        "job_ids",
        "symbl_conn_id",
        "poll_interval",
        "end_time",
        "conversation_id",
        "max_attempts",
    }


def test_aligned_hints_and_expected_unfinished():
    results = [
        {"job_ids": ["a", "b"], "media_seconds": [60.0, None], "accepted_at": [T0, T0 + 1]},
        {"job_ids": ["c"], "media_seconds": [1.0, 2.0], "accepted_at": "bad"},  # misaligned: ignored
    ]
    media, accepted = aligned_hints(results)
    assert media == {"a": 60.0} and accepted == {"a": T0, "b": T0 + 1}
    est = estimator(0.5)
    assert expected_unfinished(["a"], est, media, accepted, now=T0 + 29)
    assert not expected_unfinished(["a"], est, media, accepted, now=T0 + 31)
    assert not expected_unfinished(["b"], est, media, accepted, now=T0)  # no length: unknown


# ---------------------------------------------------------------------------------------------- the trigger
class Script:
    """A scripted SymblAsyncHook: each job answers from its list (the last entry repeats)."""

    answers: dict[str, list[str]] = {}
    calls: list[tuple[str, float]] = []
    kwargs: dict = {}

    def __init__(self, conn_id="symbl_default", **kwargs):
        Script.kwargs = kwargs

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc):
        return False

    async def get_job(self, job_id):
        Script.calls.append((job_id, time.time()))
        steps = self.answers[job_id]
        return SymblJob(id=job_id, status=steps.pop(0) if len(steps) > 1 else steps[0])


@pytest.fixture
def script(monkeypatch):
    Script.answers, Script.calls = {}, []
    monkeypatch.setattr(hooks, "SymblAsyncHook", Script)
    polling.reset_rate_estimates()
    yield Script
    polling.reset_rate_estimates()


async def test_trigger_first_poll_at_the_expected_time_and_one_get(script):
    est = polling.rate_estimator("symbl_default")
    est.median.rate = est.upper.rate = 0.01  # 0.5 s of work for 50 s of media
    script.answers = {"j": ["completed"]}
    start = time.time()
    trigger = SymblJobTrigger(job_ids="j", poll_interval=5, media_seconds={"j": 50}, submitted_at={"j": start})
    (event,) = [e async for e in trigger.run()]
    assert event.payload["status"] == "success"
    ((job_id, at),) = script.calls  # one GET
    assert at - start == pytest.approx(0.5, abs=0.2)
    assert script.kwargs["shared_session"] is True  # every trigger of the process shares one pool


async def test_trigger_without_spread_polls_at_once_and_with_spread_within_the_interval(script, monkeypatch):
    script.answers = {"j": ["completed"]}
    slept: list[float] = []
    real_sleep = asyncio.sleep

    async def fake_sleep(delay):
        slept.append(delay)
        await real_sleep(0)

    monkeypatch.setattr(triggers.asyncio, "sleep", fake_sleep)
    [e async for e in SymblJobTrigger(job_ids="j", poll_interval=30).run()]
    assert slept == []
    [e async for e in SymblJobTrigger(job_ids="j", poll_interval=30, spread_first_poll=True).run()]
    assert len(slept) == 1 and 0 <= slept[0] < 30


async def test_trigger_keeps_the_absolute_deadline_with_hints(script):
    script.answers = {"j": ["in_progress"]}
    start = time.time()
    trigger = SymblJobTrigger(
        job_ids="j", poll_interval=60, end_time=start + 0.3, media_seconds={"j": 3600}, submitted_at={"j": start}
    )
    (event,) = [e async for e in trigger.run()]
    assert event.payload["status"] == "timeout"
    assert time.time() - start < 5
    assert len(script.calls) == 1  # the last look at the deadline


# ---------------------------------------------------------------------------------------------- the pool
class FakeSession:
    made = 0

    def __init__(self):
        FakeSession.made += 1
        self.closed = False

    async def close(self):
        self.closed = True


async def _factory():
    await asyncio.sleep(0)
    return FakeSession()


async def test_session_pool_shares_one_session_per_loop_and_closes_after_the_last_user():
    pool = SessionPool()
    FakeSession.made = 0
    sessions = await asyncio.gather(*(pool.acquire("k", _factory) for _ in range(50)))
    assert FakeSession.made == 1 and len({id(s) for s in sessions}) == 1
    assert pool.users("k") == 50
    for session in sessions[:-1]:
        await pool.release("k", session)
    assert not sessions[0].closed
    await pool.release("k", sessions[-1])
    assert sessions[0].closed and pool.users("k") == 0
    again = await pool.acquire("k", _factory)
    assert again is not sessions[0] and FakeSession.made == 2
    await pool.release("k", again)


def test_session_pool_gives_each_event_loop_its_own_session():
    pool = SessionPool()

    async def get():
        return await pool.acquire("k", _factory)

    first, second = asyncio.run(get()), asyncio.run(get())
    assert first is not second


async def test_hook_shared_session_is_one_bounded_connector(monkeypatch):
    monkeypatch.setenv(
        "AIRFLOW_CONN_SYMBL_POOLTEST",
        json.dumps({"conn_type": "symbl", "host": "http://127.0.0.1:9", "login": "id", "password": "secret"}),
    )
    a = hooks.SymblAsyncHook("symbl_pooltest", shared_session=True)
    b = hooks.SymblAsyncHook("symbl_pooltest", shared_session=True)
    async with a, b:
        assert a._session is b._session
        assert a._session.connector.limit == polling.MAX_SOCKETS
    assert a._session is None
    own = hooks.SymblAsyncHook("symbl_pooltest")
    async with own, a:
        assert own._session is not a._session


# ---------------------------------------------------------------------------------------------- the sensor
def test_sensor_passes_the_append_hints_and_does_not_poke_a_job_that_cannot_be_done(monkeypatch):
    now = time.time()
    xcom = {"job_ids": ["j1", "j2"], "media_seconds": [600.0, 30.0], "accepted_at": [now, now]}
    sensor = SymblJobSensor(task_id="wait", job_ids=xcom, deferrable=True, timeout=3600)
    monkeypatch.setattr(sensor, "poke", lambda context: pytest.fail("polled a job that cannot be done yet"))
    with pytest.raises(TaskDeferred) as exc:
        sensor.execute({})
    kwargs = exc.value.trigger.serialize()[1]
    assert kwargs["media_seconds"] == {"j1": 600.0, "j2": 30.0}
    assert kwargs["submitted_at"] == {"j1": now, "j2": now}
    assert kwargs["spread_first_poll"] is True
    assert job_hints(xcom) == ({"j1": 600.0, "j2": 30.0}, {"j1": now, "j2": now})


def test_sensor_without_hints_pokes_first_and_spreads_the_triggers_first_poll(monkeypatch):
    sensor = SymblJobSensor(task_id="wait", job_ids=["j1"], deferrable=True, timeout=60)
    poked = []
    monkeypatch.setattr(sensor, "poke", lambda context: poked.append(1) or False)
    with pytest.raises(TaskDeferred) as exc:
        sensor.execute({})
    assert poked == [1]
    kwargs = exc.value.trigger.serialize()[1]
    assert "media_seconds" not in kwargs and kwargs["spread_first_poll"] is True
