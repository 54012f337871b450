"""Waiting for Symbl jobs, the parts the operator, the sensor and the trigger share.

One way to name the jobs (:func:`normalize_job_ids`), one set of polling hints (:func:`polling_hints`),
one reading of the trigger's event (:func:`decode_event`) and one mapping of a non-success event to
the exception a task raises (:func:`error_for_event`). The synchronous wait is the hook's
(``SymblHook.wait_for_jobs``); the deferred one is ``SymblJobTrigger.for_jobs``. Nothing here imports
the trigger module or an HTTP client.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from airflow.sdk.exceptions import AirflowException, AirflowFailException

from symbl_airflow.errors import SymblJobFailedError, SymblJobIdsError

EVENT_STATUSES = ("success", "failed", "timeout", "error")


def normalize_job_ids(job_ids: str | Iterable[str]) -> list[str]:
    """One job id or several -> a list, order kept, duplicates dropped; ``SymblJobIdsError`` when unusable."""
    values = [job_ids] if isinstance(job_ids, str) else job_ids
    try:
        items = list(values)
    except TypeError:
        raise SymblJobIdsError(
            f"job_ids must be a Symbl job id (str) or a list of job ids, got {type(job_ids).__name__}"
        ) from None
    result: list[str] = []
    for item in items:
        if not isinstance(item, str) or not item.strip():
            raise SymblJobIdsError(f"job_ids must contain non-empty strings only, got {str(item)[:100]!r}")
        item = item.strip()
        if item not in result:
            result.append(item)
    if not result:
        raise SymblJobIdsError("job_ids is empty: pass at least one Symbl job id")
    return result


def polling_hints(job_ids: list[str], media_seconds: Iterable | None, accepted_at: Iterable | None) -> dict:
    """``SymblJobTrigger``'s hints (job id -> media seconds / acceptance time) from aligned lists, where known.

    The caller has just looked at these jobs: no poll at once (``spread_first_poll``), and a job with both
    hints is first polled when it should be done, not blindly.
    """
    media = {j: m for j, m in zip(job_ids, media_seconds or [], strict=False) if m}
    accepted = {j: a for j, a in zip(job_ids, accepted_at or [], strict=False) if a}
    return {"media_seconds": media or None, "submitted_at": accepted or None, "spread_first_poll": True}


def decode_event(event: Any, job_ids: list[str] | None = None, conversation_id: str | None = None) -> dict:
    """The trigger's event, checked, with the waiter's own job ids / conversation where it has none."""
    if not isinstance(event, dict) or event.get("status") not in EVENT_STATUSES:
        text = repr(event)
        raise AirflowException(f"SymblJobTrigger sent an invalid event: {text[:200]}")
    defaults = {"job_ids": list(job_ids or []), "conversation_id": conversation_id}
    return {**defaults, **{k: v for k, v in event.items() if v not in (None, [], {})}}


def job_failed_error(job_id: str, conversation_id: str | None = None, source: str | None = None) -> SymblJobFailedError:
    """A failed Symbl job, naming the media it came from when known: a retry cannot change it."""
    video = f" (video {source})" if source else ""
    return SymblJobFailedError(
        f"Symbl job {job_id} failed{video}: Symbl could not process this media, and sending it again "
        "would fail the same way; check that the file plays and has a speech track",
        job_id=job_id,
        conversation_id=conversation_id,
    )


def error_for_event(event: dict[str, Any], sources: dict[str, str] | None = None) -> AirflowException:
    """The exception a task raises for a non-success event of ``SymblJobTrigger``.

    The trigger's message is used as is (never wrapped again). A failed job and a fatal error are
    ``AirflowFailException`` s; an error that may clear up (Symbl unreachable) stays retryable.
    """
    status = event.get("status")
    if status == "failed":
        job_id = str(event.get("failed_job_id") or ", ".join(event.get("job_ids") or []))
        return job_failed_error(job_id, event.get("conversation_id"), (sources or {}).get(job_id))
    message = str(event.get("message") or f"waiting for Symbl jobs ended with {status!r}")
    return AirflowFailException(message) if event.get("fatal") else AirflowException(message)
