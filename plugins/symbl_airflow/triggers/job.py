"""``SymblJobTrigger``: wait for Symbl jobs in the triggerer and fire one event.

Thousands of these may share one triggerer, so they all borrow one pooled aiohttp session per
event loop (at most :data:`~symbl_airflow.polling.MAX_SOCKETS` sockets), reuse the process-wide
token cache of :class:`~symbl_airflow.hooks.SymblAsyncHook`, and poll each job on its own plan
(:class:`~symbl_airflow.polling.PollPlan`): when it should be done if its media length is known, else
once per interval; they never block the event loop.

Event (exactly one): ``{"status": "success" | "failed" | "timeout" | "error", "message": str,
"job_ids": [...], "conversation_id": str | None, "statuses": {job_id: status}}`` plus
``"failed_job_id"`` when ``status == "failed"`` and ``"fatal": bool`` when ``status == "error"``
(``True`` when no retry can help: wrong credentials, an unknown job). The message is complete: the
task raises it as is (:func:`symbl_airflow.jobs.error_for_event`), it is not wrapped again.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowFailException
from airflow.triggers.base import BaseTrigger, TriggerEvent

from symbl_airflow.errors import (
    SymblConnectionError,
    SymblError,
    SymblNotFoundError,
    SymblRateLimitError,
    SymblServerError,
)
from symbl_airflow.jobs import normalize_job_ids, polling_hints
from symbl_airflow.polling import PollPlan, clean_hints, rate_estimator

if TYPE_CHECKING:
    from symbl_airflow.hooks import SymblAsyncHook, SymblJob

#: Errors that may clear up on the next interval (the hook already retried within one call).
TRANSIENT_ERRORS: tuple[type[SymblError], ...] = (SymblRateLimitError, SymblServerError, SymblConnectionError)
#: At most this many job GETs of one trigger run in flight at once.
MAX_CONCURRENT_REQUESTS = 8
#: Ceiling of the backoff between polls after failed polls (unless poll_interval is longer).
MAX_BACKOFF_SECONDS = 300.0
#: What deferred tasks in flight are rebuilt from: keep it, wherever the class lives.
TRIGGER_CLASSPATH = "symbl_airflow.triggers.SymblJobTrigger"


class SymblJobTrigger(BaseTrigger):
    """
    Poll Symbl jobs until all completed, one failed, ``end_time`` passed or polling keeps failing.

    :param job_ids: one Symbl job id or a list of them (e.g. every append of one conversation).
    :param symbl_conn_id: the Symbl Airflow connection.
    :param poll_interval: seconds between polls.
    :param end_time: absolute deadline in epoch seconds (survives a triggerer restart); ``None`` = none.
    :param conversation_id: only used in messages and the event.
    :param max_attempts: attempts per GET inside the hook, and consecutive failed polls before the
        trigger gives up with an ``error`` event.
    :param media_seconds: ``{job_id: seconds of media}`` (e.g. from the MP4's ``mvhd``); with
        ``submitted_at``, the job is first polled when it should be done, as learned from the jobs
        this triggerer saw complete.
    :param submitted_at: ``{job_id: epoch seconds}`` when Symbl accepted the job.
    :param spread_first_poll: poll jobs without both hints first at a random point of the first
        interval instead of at once (for a caller that just polled, and so that many waits started
        together do not poll in bursts).
    """

    def __init__(
        self,
        job_ids: str | list[str],
        symbl_conn_id: str = "symbl_default",
        poll_interval: float = 10.0,
        end_time: float | None = None,
        conversation_id: str | None = None,
        max_attempts: int = 5,
        media_seconds: dict[str, float] | None = None,
        submitted_at: dict[str, float] | None = None,
        spread_first_poll: bool = False,
    ) -> None:
        super().__init__()
        self.job_ids = normalize_job_ids(job_ids)
        self.symbl_conn_id = symbl_conn_id
        self.poll_interval = float(poll_interval)
        if self.poll_interval < 0:
            raise ValueError(f"poll_interval must be >= 0, got {poll_interval!r}")
        self.end_time = float(end_time) if end_time is not None else None
        self.conversation_id = conversation_id
        self.max_attempts = max(1, int(max_attempts))
        self.media_seconds = clean_hints(media_seconds, self.job_ids, "media_seconds")
        self.submitted_at = clean_hints(submitted_at, self.job_ids, "submitted_at")
        self.spread_first_poll = bool(spread_first_poll)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        kwargs: dict[str, Any] = {
            "job_ids": list(self.job_ids),
            "symbl_conn_id": self.symbl_conn_id,
            "poll_interval": self.poll_interval,
            "end_time": self.end_time,
            "conversation_id": self.conversation_id,
            "max_attempts": self.max_attempts,
        }
        # Polling hints only when given, so triggers serialized before they existed compare equal.
        if self.media_seconds:
            kwargs["media_seconds"] = dict(self.media_seconds)
        if self.submitted_at:
            kwargs["submitted_at"] = dict(self.submitted_at)
        if self.spread_first_poll:
            kwargs["spread_first_poll"] = True
        cls = type(self)
        classpath = TRIGGER_CLASSPATH if cls is SymblJobTrigger else f"{cls.__module__}.{cls.__qualname__}"
        return classpath, kwargs

    @classmethod
    def for_jobs(
        cls,
        job_ids: list[str],
        *,
        symbl_conn_id: str,
        poll_interval: float,
        timeout: float,
        conversation_id: str | None = None,
        media_seconds: list | None = None,
        accepted_at: list | None = None,
    ) -> SymblJobTrigger:
        """The one way tasks build this trigger: a deadline ``timeout`` from now, hints from aligned lists."""
        return cls(
            job_ids=job_ids,
            symbl_conn_id=symbl_conn_id,
            poll_interval=poll_interval,
            end_time=time.time() + timeout,
            conversation_id=conversation_id,
            **polling_hints(job_ids, media_seconds, accepted_at),
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        # The session is closed before the event goes out, so nothing is left open if the
        # triggerer drops the generator right after the yield.
        try:
            event = await self._wait()
        except Exception as exc:  # CancelledError is a BaseException and propagates
            event = self._error(f"Waiting for {self._describe_jobs()} failed: {_reason(exc)}", {}, exc)
        yield TriggerEvent(event)

    # ------------------------------------------------------------------ internals
    async def _wait(self) -> dict[str, Any]:
        # Imported here so that DAG files importing the sensor do not pay for the HTTP stack.
        from symbl_airflow.hooks import SymblAsyncHook, SymblJob

        statuses: dict[str, str] = {}
        pending = list(self.job_ids)
        failed_polls = 0
        plan = PollPlan(
            self.job_ids,
            self.poll_interval,
            rate_estimator(self.symbl_conn_id),
            media_seconds=self.media_seconds,
            submitted_at=self.submitted_at,
            spread_first_poll=self.spread_first_poll,
        )
        async with SymblAsyncHook(self.symbl_conn_id, max_attempts=self.max_attempts, shared_session=True) as hook:
            semaphore = asyncio.Semaphore(MAX_CONCURRENT_REQUESTS)
            # A sleep may end a hair before its time (timer resolution); the skew keeps what was
            # planned for its end due, and keeps the trigger's clock from going back.
            skew = 0.0
            now = time.time()
            delay = plan.delay(pending, now)
            while True:
                if self.end_time is not None:
                    delay = min(delay, max(0.0, self.end_time - now))
                if delay > 0:
                    await asyncio.sleep(delay)
                    skew = max(skew, now + delay - time.time())
                    now = time.time() + skew
                # At the deadline every pending job gets a last look, due or not.
                deadline_passed = self.end_time is not None and now >= self.end_time
                due = list(pending) if deadline_passed else plan.due(pending, now)
                results = await self._poll(hook, due, semaphore)
                answered_at = time.time() + skew
                transient: list[SymblError] = []
                for job_id, result in zip(due, results, strict=True):
                    if isinstance(result, SymblJob):
                        self._record(statuses, job_id, result.status)
                        plan.answered(job_id, result.status, now, answered_at)
                    elif isinstance(result, SymblNotFoundError):
                        return self._error(
                            f"Symbl job {job_id} was not found{self._in_conversation()} ({_reason(result)}): "
                            "check the job id (it comes from the submission's jobId)",
                            statuses,
                            result,
                        )
                    elif isinstance(result, TRANSIENT_ERRORS):
                        transient.append(result)
                    else:
                        return self._error(
                            f"Polling Symbl job {job_id}{self._in_conversation()} failed: {_reason(result)}",
                            statuses,
                            result,
                        )
                for job_id in self.job_ids:
                    if statuses.get(job_id) == "failed":
                        return {
                            **self._event("failed", f"Symbl job {job_id}{self._in_conversation()} failed", statuses),
                            "failed_job_id": job_id,
                        }
                pending = [job_id for job_id in pending if statuses.get(job_id) != "completed"]
                if not pending:
                    return self._event(
                        "success",
                        f"All {len(self.job_ids)} Symbl job(s){self._in_conversation()} completed",
                        statuses,
                    )
                if transient:
                    failed_polls += 1
                    if failed_polls >= self.max_attempts:
                        return self._error(
                            f"Polling {self._describe_jobs()} failed {failed_polls} time(s) in a row; "
                            f"last error: {_reason(transient[-1])}",
                            statuses,
                        )
                    # The whole trigger backs off (Symbl may be overloaded); the failed jobs stay due.
                    now, delay = answered_at, self._backoff(failed_polls, transient)
                    self.log.info(  # transient; max_attempts in a row end the wait with an error event
                        "Polling %d Symbl job(s) failed (%d/%d in a row): %s; next poll in %.1f s",
                        len(transient),
                        failed_polls,
                        self.max_attempts,
                        transient[-1],
                        delay,
                    )
                else:
                    if due:
                        failed_polls = 0
                    now = answered_at
                    delay = plan.delay(pending, now)
                if deadline_passed:
                    waiting = ", ".join(f"{j} ({statuses.get(j, 'unknown')})" for j in pending)
                    return self._event(
                        "timeout",
                        f"Symbl job(s){self._in_conversation()} not finished before the deadline: {waiting}",
                        statuses,
                    )

    async def _poll(
        self, hook: SymblAsyncHook, job_ids: list[str], semaphore: asyncio.Semaphore
    ) -> list[SymblJob | BaseException]:
        async def one(job_id: str) -> SymblJob:
            async with semaphore:
                return await hook.get_job(job_id)

        results = await asyncio.gather(*(one(job_id) for job_id in job_ids), return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException) and not isinstance(result, Exception):
                raise result  # a cancelled GET must not be mistaken for a failed poll
        return results

    def _record(self, statuses: dict[str, str], job_id: str, status: str) -> None:
        previous = statuses.get(job_id)
        if previous != status:
            statuses[job_id] = status
            self.log.info(
                "Symbl job %s%s: %s -> %s", job_id, self._in_conversation(), previous or "(first poll)", status
            )

    def _backoff(self, failed_polls: int, errors: list[SymblError]) -> float:
        """Exponential from ``poll_interval`` with jitter, so many triggers do not retry in lockstep."""
        ceiling = max(self.poll_interval, MAX_BACKOFF_SECONDS)
        delay = min(ceiling, max(self.poll_interval, 1.0) * 2 ** (failed_polls - 1))
        delay = delay / 2 + random.uniform(0, delay / 2)
        retry_after = max(
            (e.retry_after for e in errors if isinstance(e, SymblRateLimitError) and e.retry_after), default=0.0
        )
        return max(delay, min(retry_after, ceiling))

    def _in_conversation(self) -> str:
        return f" of conversation {self.conversation_id}" if self.conversation_id else ""

    def _describe_jobs(self) -> str:
        return f"Symbl job(s) {', '.join(self.job_ids)}{self._in_conversation()}"

    def _error(self, message: str, statuses: dict[str, str], exc: BaseException | None = None) -> dict[str, Any]:
        fatal = isinstance(exc, (AirflowFailException, SymblNotFoundError))
        return {**self._event("error", message, statuses), "fatal": fatal}

    def _event(self, status: str, message: str, statuses: dict[str, str]) -> dict[str, Any]:
        return {
            "status": status,
            "message": message,
            "job_ids": list(self.job_ids),
            "conversation_id": self.conversation_id,
            "statuses": {job_id: statuses[job_id] for job_id in self.job_ids if job_id in statuses},
        }


def _reason(exc: BaseException) -> str:
    """What went wrong, without the call details a message around it already gives."""
    if isinstance(exc, SymblError) and (exc.method or exc.endpoint):
        outcome = f"HTTP {exc.status}" if exc.status is not None else "no response"
        return f"{exc.method} {exc.endpoint}: {outcome}: {exc.message}" if exc.message else outcome
    return str(exc) or type(exc).__name__
