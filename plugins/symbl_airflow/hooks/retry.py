"""The retry policy of both hooks, stated once and run by tenacity (``Retrying`` / ``AsyncRetrying``).

A call is repeated only when repeating it cannot do harm:

* every call is retried on 429 (after ``Retry-After`` when Symbl sends one) and on 502/503/504 (an
  upload only while its body was cut short, see below);
  idempotent calls (GET, DELETE, the token, the experience URL) on 500 and transport errors too;
* an upload is resent only when Symbl certainly did not take it: a connection that never opened, or
  a body cut short (Symbl needs all ``Content-Length`` bytes, so a partial body cannot have been
  accepted), or 429. Once the whole body went out and no answer came back, or the answer was
  500/502/503/504 (:data:`AMBIGUOUS_UPLOAD_STATUSES`: a gateway timing out on a backend that still
  works), the upload is *ambiguous*: never resent
  (:class:`~symbl_airflow.errors.SymblAmbiguousSubmissionError`), the operator decides;
* waits: ``Retry-After`` when given, else exponential backoff with full jitter;
* bounds: ``max_attempts`` attempts and ``max_retry_seconds`` of total time. A ``Retry-After``
  longer than what is left of that budget fails at once, saying so
  (:class:`~symbl_airflow.errors.SymblRetryBudgetError`, an ``AirflowFailException``).

A 401 is not a retry: the attempt refreshes the token once and resends (see the hooks).

Tenacity runs the policy from the first failure on: the hooks make the first attempt as a plain call
and hand its failure to :meth:`RetryPolicy.retry` / :meth:`RetryPolicy.aretry` (``Retrying`` /
``AsyncRetrying``), where it counts as attempt 1. Setting tenacity up costs about 35 us of
CPU per call, a third of a whole job poll's client CPU (measured: 0.29 vs 0.44 ms per GET, see
"The trigger path against the previous hook" in docs/benchmarks.md), so the common case, a first
attempt that succeeds, does not pay it. ``max_retry_seconds`` counts from that failure.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from tenacity import (
    AsyncRetrying,
    AttemptManager,
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_random_exponential,
)
from tenacity.stop import stop_base
from tenacity.wait import wait_base

from symbl_airflow.errors import (
    SymblAmbiguousSubmissionError,
    SymblConnectionError,
    SymblError,
    SymblRateLimitError,
    SymblRetryBudgetError,
)
from symbl_airflow.hooks.wire import Call

T = TypeVar("T")

DEFAULT_MAX_ATTEMPTS = 5
DEFAULT_MAX_RETRY_SECONDS = 300.0
DEFAULT_BACKOFF_BASE = 1.0
DEFAULT_BACKOFF_MAX = 30.0

#: Statuses that mean "not processed, try again later" for every request, uploads included.
REFUSED_STATUSES = frozenset({429, 502, 503, 504})
#: Statuses retried for idempotent calls only (a 500 on an upload may have half-happened).
IDEMPOTENT_RETRY_STATUSES = REFUSED_STATUSES | {500}
#: Answers to an upload whose whole body was sent that leave it *ambiguous*: a server error, or a gateway
#: that gave up (502/504) or shed it (503) while the backend may still process what it received. Never
#: resent, by the hook or by a task retry (the part stays *sending* in the ledger until settled).
AMBIGUOUS_UPLOAD_STATUSES = frozenset({500, 502, 503, 504})


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP-date); ``None`` if unusable."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when is None:
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    if seconds != seconds or seconds == float("inf"):  # NaN / inf
        return None
    return max(0.0, seconds)


def may_resend_upload(*, connection_opened: bool, body_started: bool, body_complete: bool) -> bool:
    """After a transport error: can Symbl have accepted the upload? If not, resending is safe."""
    return not body_complete or (not connection_opened and not body_started)


def is_retryable(exc: BaseException, call: Call) -> bool:
    """Which failures of one attempt of ``call`` are worth another.

    Only the call's own failures: a failed token request inside it was already retried as a call of
    its own, so it is not multiplied by this call's attempts.
    """
    if isinstance(exc, SymblAmbiguousSubmissionError) or not isinstance(exc, SymblError):
        return False
    if exc.endpoint != call.path:
        return False
    if isinstance(exc, SymblConnectionError):
        return True  # the hook already turned unsafe upload failures into ambiguous ones
    return exc.status in (REFUSED_STATUSES if call.upload else IDEMPOTENT_RETRY_STATUSES)


class _wait_retry_after_or_jitter(wait_base):
    """Symbl's ``Retry-After`` when it sent one, else full-jitter exponential backoff."""

    def __init__(self, base: float, ceiling: float) -> None:
        self.jitter = wait_random_exponential(multiplier=base, max=ceiling)

    def __call__(self, retry_state: RetryCallState) -> float:
        exc = retry_state.outcome.exception() if retry_state.outcome else None
        retry_after = getattr(exc, "retry_after", None)
        return retry_after if retry_after is not None else self.jitter(retry_state)


class _stop_past_budget(stop_base):
    """Stop when the next wait would end after the total time budget."""

    def __init__(self, budget: float) -> None:
        self.budget = budget

    def __call__(self, retry_state: RetryCallState) -> bool:
        return retry_state.seconds_since_start + (retry_state.upcoming_sleep or 0.0) > self.budget


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded attempts and total time; exponential backoff with full jitter unless Retry-After says."""

    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    max_retry_seconds: float = DEFAULT_MAX_RETRY_SECONDS
    backoff_base: float = DEFAULT_BACKOFF_BASE
    backoff_max: float = DEFAULT_BACKOFF_MAX

    @classmethod
    def resolve(cls, config: Any, max_attempts=None, max_retry_seconds=None, backoff_base=None) -> RetryPolicy:
        """Constructor arguments win over connection extras, which win over defaults."""

        def first(*values: Any) -> Any:
            return next(v for v in values if v is not None)

        return cls(
            max_attempts=max(1, int(first(max_attempts, config.max_attempts, DEFAULT_MAX_ATTEMPTS))),
            max_retry_seconds=float(first(max_retry_seconds, config.max_retry_seconds, DEFAULT_MAX_RETRY_SECONDS)),
            backoff_base=float(first(backoff_base, config.backoff_base, DEFAULT_BACKOFF_BASE)),
        )

    def tenacity_kwargs(self, call: Call, *, log: Any, sleep: Callable[[float], Any]) -> dict[str, Any]:
        """Arguments for ``tenacity.Retrying`` (sync hook) or ``tenacity.AsyncRetrying`` (async hook).

        ``log`` is the hook (anything with ``.log``): its logger is built on first use, only to
        report a retry (building it per hook costs more than a poll).
        """
        return {
            "retry": retry_if_exception(lambda exc: is_retryable(exc, call)),
            "wait": _wait_retry_after_or_jitter(self.backoff_base, self.backoff_max),
            "stop": stop_after_attempt(self.max_attempts) | _stop_past_budget(self.max_retry_seconds),
            "before_sleep": lambda state: self._log_retry(log, state),
            "retry_error_callback": self._give_up,
            "sleep": sleep,
        }

    def retry(self, call: Call, first: Exception, attempt: Callable[[int], T], *, log: Any, sleep: Any) -> T:
        """After attempt 1 of ``call`` failed with ``first``: ``attempt(number)`` under the policy (sync)."""
        try:
            for state in Retrying(**self.tenacity_kwargs(call, log=log, sleep=sleep)):
                with state:
                    return _replay(state, first, attempt)
        except SymblError as exc:
            raise _short(exc) from None
        raise AssertionError("unreachable: the policy raises when it gives up")  # pragma: no cover

    async def aretry(self, call: Call, first: Exception, attempt: Callable[[int], Awaitable[T]], *, log, sleep) -> T:
        """After attempt 1 of ``call`` failed with ``first``: ``await attempt(number)`` under the policy."""
        try:
            async for state in AsyncRetrying(**self.tenacity_kwargs(call, log=log, sleep=sleep)):
                with state:
                    return await _replay(state, first, attempt)
        except SymblError as exc:
            raise _short(exc) from None
        raise AssertionError("unreachable: the policy raises when it gives up")  # pragma: no cover

    def _log_retry(self, owner: Any, state: RetryCallState) -> None:
        exc = state.outcome.exception()
        reason = f"HTTP {exc.status}: {exc.message}" if exc.status is not None else exc.message
        # info: a retry that then succeeds needs nobody; one that does not ends in the call's error
        owner.log.info(
            "[attempt %d/%d] %s %s failed (%s); retrying in %.2f s",
            state.attempt_number,
            self.max_attempts,
            exc.method,
            exc.endpoint,
            reason,
            state.upcoming_sleep,
        )

    def _give_up(self, state: RetryCallState) -> Any:
        exc = state.outcome.exception()
        retry_after = exc.retry_after if isinstance(exc, SymblRateLimitError) else None
        if retry_after is not None and state.attempt_number < self.max_attempts:
            left = max(0.0, self.max_retry_seconds - state.seconds_since_start)
            raise SymblRetryBudgetError(
                f"{exc.message}; Symbl asks to retry after {retry_after:g} s, more than the {left:.0f} s left "
                f"of the retry budget (max_retry_seconds={self.max_retry_seconds:g}), so this call failed "
                "without waiting. Raise max_retry_seconds (connection extra or hook argument) or run "
                "fewer jobs at once",
                retry_after=retry_after,
                status=exc.status,
                method=exc.method,
                endpoint=exc.endpoint,
                conversation_id=exc.conversation_id,
                job_id=exc.job_id,
            ) from None
        raise exc


def _short(exc: SymblError) -> SymblError:
    """The error without the frames it crossed in tenacity and our request plumbing.

    Its message already names the call, Symbl's answer and the ids; the ~40 frames of retry machinery
    (twice when the token request inside a call failed) said nothing more in a task log. The traceback
    restarts here, so it still shows which task code made the call.
    """
    return exc.with_traceback(None)


def _replay(state: AttemptManager, first: Exception, attempt: Callable[[int], Any]) -> Any:
    """Attempt 1 already ran outside tenacity: replay its failure, then call the next attempts."""
    number = state.retry_state.attempt_number
    if number == 1:
        raise first
    return attempt(number)
