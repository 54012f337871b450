"""How ``SymblJobTrigger`` s share one triggerer: one connection pool, polls when jobs should be done.

Thousands of waits in one triggerer cost CPU and sockets per request, so this module keeps both low:

* :class:`SessionPool`: one aiohttp session per event loop (and TLS setting) for every Symbl trigger,
  at most :data:`MAX_SOCKETS` sockets, closed when the last trigger using it leaves;
* :class:`RateEstimator`: Symbl's processing rate (seconds of work per second of media) per Airflow
  connection, learned in this process from the polls of jobs whose media length is known;
* :class:`PollPlan`: when each job of one trigger is polled. A job with a known media length and
  submission time is first polled when it should be done, then after ``poll_interval``/4, /2 and
  every ``poll_interval`` (so a late job is still seen within one interval). Other jobs are polled
  every ``poll_interval``, starting at once or at a random phase so waits started together spread out.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
import weakref
from collections.abc import Awaitable, Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

#: Sockets one triggerer process opens to Symbl at most (one pool shared by every trigger).
MAX_SOCKETS = 100
#: Seconds of processing per second of media assumed before any job completed in this process.
#: Low on purpose: an early poll costs one GET, a late one costs latency.
DEFAULT_SECONDS_PER_MEDIA_SECOND = 0.1
#: Quantiles of the rate tracked: the median (when a job "should be done") and an upper one, whose
#: distance from the median, mirrored below it, says how early the fastest jobs end.
MEDIAN_QUANTILE = 0.5
UPPER_QUANTILE = 0.9
#: How far below the median the fastest jobs are assumed to end, in units of the median-to-upper
#: distance (log space): 1.8 = z(0.99) / z(0.9) for a log-normal spread, so about 99% of the jobs end
#: after the ``lower`` estimate.
LOWER_STRETCH = 1.8
#: ``lower`` also sits this share under that, for the estimates' own wobble (a learning step or two).
LOWER_MARGIN = 0.05
#: Learning steps (in log space): large while few jobs were seen, then a floor that keeps tracking.
FIRST_STEP = 0.6
MIN_STEP = 0.02
#: Bounds of a believable rate (seconds of work per media second).
MIN_RATE, MAX_RATE = 0.005, 20.0
#: An answer counts as "at" an estimate within this share of the expected time (at least 1 s).
PROBE_TOLERANCE = 0.05


# ---------------------------------------------------------------------------------------------- sessions
@dataclass
class _Lease:
    session: Any
    users: int = 0


class SessionPool:
    """One shared client session per event loop and key, closed when its last user releases it.

    A session is bound to the loop that created it (aiohttp), so the triggerer's loop gets one and a
    test's loop another. The key separates TLS settings (``verify``), which live on the connector.
    """

    def __init__(self) -> None:
        self._leases: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[Hashable, _Lease]]
        self._leases = weakref.WeakKeyDictionary()
        self._creating: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[Hashable, asyncio.Future]]
        self._creating = weakref.WeakKeyDictionary()

    async def acquire(self, key: Hashable, factory: Callable[[], Awaitable[Any]]) -> Any:
        loop = asyncio.get_running_loop()
        leases = self._leases.setdefault(loop, {})
        lease = leases.get(key)
        if lease is None or lease.session.closed:
            creating = self._creating.setdefault(loop, {})
            pending = creating.get(key)
            if pending is None:  # the first of many triggers starting together creates it, the rest wait
                pending = creating[key] = loop.create_future()
                try:
                    session = await factory()
                except BaseException as exc:
                    pending.set_exception(exc)
                    pending.exception()  # retrieved: no "exception never retrieved" warning
                    raise
                finally:
                    creating.pop(key, None)
                lease = leases[key] = _Lease(session)
                pending.set_result(lease)
            else:
                lease = await asyncio.shield(pending)
        lease.users += 1
        return lease.session

    async def release(self, key: Hashable, session: Any) -> None:
        leases = self._leases.get(asyncio.get_running_loop(), {})
        lease = leases.get(key)
        if lease is None or lease.session is not session:
            await session.close()  # not pooled (any more): nobody else holds it
            return
        lease.users -= 1
        if lease.users <= 0:
            del leases[key]
            await session.close()

    def users(self, key: Hashable) -> int:
        """Triggers holding the current loop's session for ``key`` (for tests and diagnostics)."""
        lease = self._leases.get(asyncio.get_running_loop(), {}).get(key)
        return lease.users if lease is not None else 0


#: The process-wide pool every ``SymblAsyncHook(shared_session=True)`` borrows from.
SESSION_POOL = SessionPool()


# ---------------------------------------------------------------------------------------------- learning
class QuantileTracker:
    """One quantile of the rate, moved by yes/no answers to "was this job's rate at most the estimate?".

    A stochastic-approximation step (Robbins-Monro quantile tracking) in log space: a "no" raises the
    estimate by ``step * q``, a "yes" lowers it by ``step * (1 - q)``, so it settles where a share
    ``q`` of the answers are "yes".
    """

    def __init__(self, quantile: float, rate: float = DEFAULT_SECONDS_PER_MEDIA_SECOND) -> None:
        self.quantile = float(quantile)
        self.rate = float(rate)
        self.samples = 0

    def observe(self, at_most: bool) -> None:
        self.samples += 1
        step = max(MIN_STEP, FIRST_STEP / math.sqrt(self.samples))
        log_rate = math.log(self.rate) + step * (self.quantile - (1.0 if at_most else 0.0))
        self.rate = min(MAX_RATE, max(MIN_RATE, math.exp(log_rate)))

    def answer(self, media_seconds: float, elapsed: float, done: bool, last_pending: float | None) -> bool | None:
        """What a poll ``elapsed`` s after submission says about this quantile, or ``None`` if nothing.

        Done at or before the estimate: yes. Still running at or after it: no. Done after it, having
        been seen running before it: the midpoint of the two polls decides. Otherwise nothing is known.
        """
        expected = self.rate * media_seconds
        slack = max(1.0, PROBE_TOLERANCE * expected)
        if done:
            if elapsed <= expected + slack:
                return True
            if last_pending is not None and last_pending < expected:
                return (last_pending + elapsed) / 2 <= expected
            return None
        return False if elapsed >= expected - slack else None


class RateEstimator:
    """Symbl's seconds of work per media second for one connection, learned from this process's jobs.

    The first poll of a job of ``m`` media seconds goes out ``median * m`` after submission, but no
    later than ``lower * m + poll_interval``, where ``lower`` mirrors the upper quantile below the
    median (stretched by :data:`LOWER_STRETCH`): when Symbl's speed varies, the fastest jobs are
    then still seen within about one interval. Each job answers each quantile at most once (see
    :meth:`QuantileTracker.answer`), and only jobs whose submission started their processing count.
    """

    def __init__(self, rate: float = DEFAULT_SECONDS_PER_MEDIA_SECOND) -> None:
        self.median = QuantileTracker(MEDIAN_QUANTILE, rate)
        self.upper = QuantileTracker(UPPER_QUANTILE, rate)

    @property
    def rate(self) -> float:
        return self.median.rate

    @property
    def lower(self) -> float:
        ratio = self.median.rate / max(self.median.rate, self.upper.rate)
        return self.median.rate * ratio**LOWER_STRETCH * (1 - LOWER_MARGIN)

    def expected_seconds(self, media_seconds: float) -> float:
        """When a job of this length should be done (the median)."""
        return self.median.rate * media_seconds

    def first_poll_seconds(self, media_seconds: float, poll_interval: float) -> float:
        return min(self.median.rate * media_seconds, self.lower * media_seconds + poll_interval)


_ESTIMATORS: dict[str, RateEstimator] = {}


def rate_estimator(conn_id: str) -> RateEstimator:
    """The process-wide estimate for one Airflow connection (one Symbl account and region)."""
    estimator = _ESTIMATORS.get(conn_id)
    if estimator is None:
        estimator = _ESTIMATORS[conn_id] = RateEstimator()
    return estimator


def reset_rate_estimates() -> None:
    """Forget what was learned (tests, benchmarks)."""
    _ESTIMATORS.clear()


# ---------------------------------------------------------------------------------------------- the plan
def clean_hints(values: Mapping[str, Any] | None, job_ids: Iterable[str], what: str) -> dict[str, float] | None:
    """``{job_id: number}`` for the trigger's jobs; unknown ids and empty values dropped, bad numbers refused."""
    if values is None:
        return None
    if not isinstance(values, Mapping):
        raise ValueError(f"{what} must be a dict of job id -> number (or None), got {type(values).__name__}")
    wanted = set(job_ids)
    cleaned: dict[str, float] = {}
    for job_id, value in values.items():
        if job_id not in wanted or value is None:
            continue
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ValueError(f"{what}[{job_id!r}] must be a number, got {value!r}") from None
        if not math.isfinite(number) or number < 0:
            raise ValueError(f"{what}[{job_id!r}] must be a finite number >= 0, got {value!r}")
        cleaned[job_id] = number
    return cleaned or None


@dataclass
class _Job:
    media_seconds: float | None
    submitted_at: float | None
    next_at: float
    answers: int = 0
    pending_answers: int = 0
    #: Seconds after submission of the last poll that found it running.
    last_pending: float | None = None
    #: Quantiles this job already answered (each job counts once per quantile).
    taught: int = 0

    @property
    def hinted(self) -> bool:
        return bool(self.media_seconds) and self.submitted_at is not None


class PollPlan:
    """When each job of one trigger is polled next (epoch seconds); see the module docstring.

    Jobs are learned from only when their submission time is their start of processing as far as
    this trigger knows: the first job, or one submitted after the job before it was seen completed
    (Symbl runs the jobs of one conversation one at a time, so a queued job says nothing about speed).
    """

    def __init__(
        self,
        job_ids: list[str],
        poll_interval: float,
        estimator: RateEstimator,
        *,
        media_seconds: Mapping[str, float] | None = None,
        submitted_at: Mapping[str, float] | None = None,
        spread_first_poll: bool = False,
        now: float | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.poll_interval = poll_interval
        self.estimator = estimator
        self.order = list(job_ids)
        now = time.time() if now is None else now
        rng = rng or random
        media_seconds, submitted_at = media_seconds or {}, submitted_at or {}
        self.jobs: dict[str, _Job] = {}
        for job_id in job_ids:
            job = _Job(media_seconds.get(job_id), submitted_at.get(job_id), next_at=now)
            if not job.hinted or self._expected(job) <= now:
                # Unknown length, or it should be done already (the trigger started late): poll soon,
                # at a random phase of the first interval when many waits may start together.
                job.next_at = now + (rng.uniform(0, poll_interval) if spread_first_poll else 0.0)
            self.jobs[job_id] = job
        self._completed_at: dict[str, float] = {}

    def _expected(self, job: _Job) -> float:
        assert job.submitted_at is not None and job.media_seconds is not None
        return job.submitted_at + self.estimator.first_poll_seconds(job.media_seconds, self.poll_interval)

    def due_at(self, job_id: str) -> float:
        """When the job is polled next. A hinted job not yet polled follows the estimate as it learns."""
        job = self.jobs[job_id]
        if job.hinted and job.answers == 0:
            return max(job.next_at, self._expected(job))
        return job.next_at

    def due(self, pending: Iterable[str], now: float) -> list[str]:
        return [job_id for job_id in pending if self.due_at(job_id) <= now]

    def delay(self, pending: Iterable[str], now: float) -> float:
        """Seconds until the next job is due (0 when one is due already)."""
        return max(0.0, min((self.due_at(job_id) for job_id in pending), default=now) - now)

    def answered(self, job_id: str, status: str, sent_at: float, now: float) -> None:
        """Record one poll's answer (sent at ``sent_at``) and plan the job's next poll."""
        job = self.jobs[job_id]
        done = status in ("completed", "failed")
        if job.hinted and self._learnable(job_id):
            elapsed = sent_at - job.submitted_at  # type: ignore[operator]
            for bit, tracker in enumerate((self.estimator.median, self.estimator.upper)):
                if not job.taught & (1 << bit):
                    answer = tracker.answer(job.media_seconds, elapsed, done, job.last_pending)  # type: ignore[arg-type]
                    if answer is not None:
                        tracker.observe(answer)
                        job.taught |= 1 << bit
            if not done:
                job.last_pending = elapsed
        job.answers += 1
        if done:
            self._completed_at[job_id] = now
            return
        job.pending_answers += 1
        if job.hinted:
            # Just late: look again soon, then settle on the interval so lag stays within one interval.
            gap = min(self.poll_interval, self.poll_interval * 2 ** (job.pending_answers - 3))
            job.next_at = max(now + gap, self._expected(job))
        else:
            # A fixed cadence from the poll's start: a slow poll does not stretch the interval.
            job.next_at = sent_at + self.poll_interval

    def _learnable(self, job_id: str) -> bool:
        index = self.order.index(job_id)
        if index == 0:
            return True
        before = self._completed_at.get(self.order[index - 1])
        submitted = self.jobs[job_id].submitted_at
        return before is not None and submitted is not None and before <= submitted


def expected_unfinished(
    job_ids: Iterable[str],
    estimator: RateEstimator,
    media_seconds: Mapping[str, float] | None,
    submitted_at: Mapping[str, float] | None,
    now: float | None = None,
) -> bool:
    """Whether some job should still be running (so checking now would most likely cost a GET for nothing)."""
    now = time.time() if now is None else now
    media_seconds, submitted_at = media_seconds or {}, submitted_at or {}
    return any(
        media_seconds.get(job_id)
        and job_id in submitted_at
        and submitted_at[job_id] + estimator.expected_seconds(media_seconds[job_id]) > now
        for job_id in job_ids
    )


def aligned_hints(results: Iterable[Mapping[str, Any]]) -> tuple[dict[str, float], dict[str, float]]:
    """``(media_seconds, submitted_at)`` by job id from append results carrying ``media_seconds`` and
    ``accepted_at`` lists aligned with their ``job_ids``; misaligned or non-numeric values are skipped."""
    media: dict[str, float] = {}
    accepted: dict[str, float] = {}
    for result in results:
        ids = result.get("job_ids")
        if not isinstance(ids, (list, tuple)):
            continue
        for key, found in (("media_seconds", media), ("accepted_at", accepted)):
            values = result.get(key)
            if not isinstance(values, (list, tuple)) or len(values) != len(ids):
                continue
            for job_id, value in zip(ids, values, strict=True):
                if (
                    isinstance(value, (int, float))
                    and not isinstance(value, bool)
                    and math.isfinite(value)
                    and value >= 0
                ):
                    found[str(job_id)] = float(value)
    return media, accepted
