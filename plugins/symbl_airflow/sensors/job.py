"""``SymblJobSensor``: wait until Symbl jobs completed, on a worker (poke) or in the triggerer (deferrable)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseSensorOperator, conf
from airflow.sdk.exceptions import AirflowFailException, AirflowSensorTimeout

from symbl_airflow.errors import SymblJobIdsError, SymblNotFoundError
from symbl_airflow.jobs import decode_event, error_for_event, job_failed_error, normalize_job_ids
from symbl_airflow.links import SymblConversationLink, store_conversation_url
from symbl_airflow.templating import parse_rendered

if TYPE_CHECKING:
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook
    from airflow.sdk import Context

    from symbl_airflow.hooks import SymblHook

DEFAULT_DEFERRABLE_POKE_INTERVAL = 10.0
#: BaseSensorOperator's own default.
DEFAULT_POKE_INTERVAL = 60.0

_JOB_IDS_HELP = (
    "pass a Symbl job id (str), a list of job ids, or the XCom of SymblAppendVideoOperator "
    "(a dict like {'conversation_id': ..., 'job_ids': [...]}, e.g. append_task.output) or a list of those dicts"
)


def _items(job_ids: Any) -> Sequence[Any]:
    """``job_ids`` as a list of ids and/or append-result dicts (a rendered string is parsed first)."""
    if isinstance(job_ids, str) and job_ids.strip()[:1] in ("[", "{"):
        # A Jinja-rendered XCom (e.g. "{{ ti.xcom_pull('append') }}") arrives as the repr of a dict/list.
        parsed = parse_rendered(job_ids)
        if isinstance(parsed, str):
            raise SymblJobIdsError(
                f"job_ids {_preview(job_ids)} looks like a list or dict but cannot be parsed; {_JOB_IDS_HELP}"
            )
        job_ids = parsed
    items = [job_ids] if isinstance(job_ids, (str, Mapping)) else job_ids
    if not isinstance(items, Sequence) or isinstance(items, (bytes, bytearray)):
        raise SymblJobIdsError(f"job_ids has an unsupported type {type(job_ids).__name__}; {_JOB_IDS_HELP}")
    return items


def job_sources(job_ids: Any) -> dict[str, str]:
    """Job id -> S3 video, from append results whose ``sources`` are aligned with their ``job_ids``."""
    found: dict[str, str] = {}
    for item in _items(job_ids):
        if isinstance(item, Mapping):
            ids, sources = item.get("job_ids"), item.get("sources")
            if isinstance(ids, Sequence) and isinstance(sources, Sequence) and len(ids) == len(sources):
                found.update({str(j): str(s) for j, s in zip(ids, sources, strict=True) if j and s})
    return found


def job_ledgers(job_ids: Any) -> dict[str, list[str]]:
    """Conversation ledger URI -> its job ids, from append results that carry ``ledger_uri``."""
    found: dict[str, list[str]] = {}
    for item in _items(job_ids):
        uri, ids = (item.get("ledger_uri"), item.get("job_ids")) if isinstance(item, Mapping) else (None, None)
        if isinstance(uri, str) and uri and isinstance(ids, Sequence) and not isinstance(ids, str):
            listed = found.setdefault(uri, [])
            for job_id in map(str, filter(None, ids)):
                if job_id not in listed:
                    listed.append(job_id)
    return found


def job_hints(job_ids: Any) -> tuple[dict[str, float], dict[str, float]]:
    """``(media_seconds, accepted_at)`` by job id, from append results that carry them (polling hints)."""
    from symbl_airflow.polling import aligned_hints

    return aligned_hints(item for item in _items(job_ids) if isinstance(item, Mapping))


def resolve_job_ids(job_ids: Any, conversation_id: str | None = None) -> tuple[list[str], str | None]:
    """Turn what users pass as ``job_ids`` into ``(job ids, conversation id)``.

    Raises :class:`~symbl_airflow.errors.SymblJobIdsError` (a ``ValueError`` that fails the task
    without retries) when unusable. A conversation id given explicitly wins over the ones found in
    the append operator's dicts.
    """
    found_conversations: list[str] = []
    items = _items(job_ids)
    ids: list[Any] = []
    for item in items:
        if isinstance(item, Mapping):
            value = item.get("job_ids", item.get("job_id"))
            if value is None:
                raise SymblJobIdsError(
                    f"job_ids got a dict without a 'job_ids' key (keys: {sorted(map(str, item))}); {_JOB_IDS_HELP}"
                )
            ids.extend([value] if isinstance(value, str) else list(value) if isinstance(value, Sequence) else [value])
            conv = item.get("conversation_id")
            if isinstance(conv, str) and conv and conv not in found_conversations:
                found_conversations.append(conv)
        else:
            ids.append(item)
    if not ids and items and all(isinstance(item, Mapping) for item in items):
        # The append operator appended nothing (e.g. every part was already in Symbl): nothing to wait for.
        return [], conversation_id or (", ".join(found_conversations) or None)
    try:
        normalized = normalize_job_ids(ids)
    except ValueError as exc:
        raise SymblJobIdsError(f"job_ids {_preview(job_ids)} is not usable ({exc}); {_JOB_IDS_HELP}") from None
    if not conversation_id and found_conversations:
        conversation_id = ", ".join(found_conversations)
    return normalized, conversation_id or None


def _preview(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 200 else text[:200] + "..."


class SymblJobSensor(BaseSensorOperator):
    """
    Wait until Symbl jobs (e.g. the appends of a conversation) completed; fail as soon as one failed.

    :param job_ids: a job id, a list of job ids, or the XCom of ``SymblAppendVideoOperator``
        (``{"conversation_id", "job_ids", "sources"}``, e.g. ``append_task.output``) or a list of those.
        When the XCom also carries ``media_seconds`` and ``accepted_at`` (aligned with ``job_ids``), a
        deferred wait polls each job when it should be done instead of once per interval.
    :param symbl_conn_id: the Symbl Airflow connection.
    :param deferrable: wait in the triggerer instead of holding a worker slot (then ``poke_interval``
        defaults to 10 s).
    :param conversation_id: used in messages; taken from the XCom dict when not given.
    :param aws_conn_id: AWS connection for the conversation ledger: when the XCom carries ``ledger_uri``,
        the jobs' outcome (completed / failed) is written there as the wait sees it, so the ledger never
        says ``accepted`` after the final wait. A ledger that cannot be written is a warning, never a
        failure (the next append run checks those jobs in Symbl). Unused for bare job ids.

    Returns (XCom) the list of job ids once all completed. The "Symbl conversation" link is asked for
    only when there are jobs to wait for (a run with nothing new makes no Symbl call).
    """

    template_fields: Sequence[str] = ("job_ids", "conversation_id", "symbl_conn_id", "aws_conn_id")
    ui_color = "#dff0fb"
    operator_extra_links = (SymblConversationLink(),)

    def __init__(
        self,
        *,
        job_ids: Any,
        symbl_conn_id: str = "symbl_default",
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        conversation_id: str | None = None,
        aws_conn_id: str | None = "aws_default",
        poke_interval: timedelta | float | None = None,
        **kwargs: Any,
    ) -> None:
        if poke_interval is None:  # not set by the user nor default_args
            poke_interval = DEFAULT_DEFERRABLE_POKE_INTERVAL if deferrable else DEFAULT_POKE_INTERVAL
        super().__init__(poke_interval=poke_interval, **kwargs)
        self.job_ids = job_ids
        self.symbl_conn_id = symbl_conn_id
        self.deferrable = deferrable
        self.conversation_id = conversation_id
        self.aws_conn_id = aws_conn_id
        self._resolved: tuple[list[str], str | None] | None = None
        self._sources: dict[str, str] | None = None
        self._completed: set[str] = set()

    @cached_property
    def hook(self) -> SymblHook:
        from symbl_airflow.hooks import SymblHook

        return SymblHook(symbl_conn_id=self.symbl_conn_id)

    @cached_property
    def s3_hook(self) -> S3Hook:
        from airflow.providers.amazon.aws.hooks.s3 import S3Hook

        return S3Hook(aws_conn_id=self.aws_conn_id)

    def _resolve(self) -> tuple[list[str], str | None]:
        if self._resolved is None:
            self._resolved = resolve_job_ids(self.job_ids, self.conversation_id)
        return self._resolved

    def _source_of(self, job_id: str) -> str | None:
        if self._sources is None:
            self._sources = job_sources(self.job_ids)
        return self._sources.get(job_id)

    def _where(self, conversation_id: str | None) -> str:
        return f" (conversation_id={conversation_id})" if conversation_id else ""

    def poke(self, context: Context) -> bool:
        job_ids, conversation_id = self._resolve()
        pending = [job_id for job_id in job_ids if job_id not in self._completed]
        for job_id in pending:
            try:
                job = self.hook.get_job(job_id)
            except SymblNotFoundError as exc:
                # A wrong id stays wrong: fail now, like the trigger's fatal error event.
                video = f" (video {self._source_of(job_id)})" if self._source_of(job_id) else ""
                raise AirflowFailException(
                    f"Symbl job {job_id}{video} was not found{self._where(conversation_id)} (HTTP {exc.status}: "
                    f"{exc.message}): check the job id (it comes from the submission's jobId)"
                ) from None
            if job.is_failed:
                self._record({**dict.fromkeys(self._completed, "completed"), job_id: "failed"})
                raise job_failed_error(job_id, conversation_id, self._source_of(job_id))
            if job.is_completed:
                self._completed.add(job_id)
            else:
                self.log.info("Symbl job %s is %s", job_id, job.status)
        if len(self._completed) < len(job_ids):
            return False
        self._record(dict.fromkeys(job_ids, "completed"))
        return True

    def _record(self, statuses: dict[str, str]) -> None:
        """Write the jobs' outcome to the conversation ledgers the append results name (if any)."""
        ledgers = job_ledgers(self.job_ids)
        if not ledgers:
            return
        from symbl_airflow.appends.outcomes import TERMINAL, record_job_outcomes
        from symbl_airflow.appends.stores import S3LedgerStore

        for uri, ids in ledgers.items():
            seen = {j: statuses[j] for j in ids if statuses.get(j) in TERMINAL}
            if not seen:
                continue
            try:
                changed = record_job_outcomes(S3LedgerStore(self.s3_hook, uri), seen)
            except Exception as exc:  # the wait's result stands; the next append run asks Symbl instead
                self.log.warning(
                    "Could not write the outcome of Symbl job(s) %s to the conversation ledger %s (%s: %s); "
                    "it still says 'accepted' for them until the next append run checks them in Symbl",
                    ", ".join(seen),
                    uri,
                    type(exc).__name__,
                    exc,
                )
                continue
            for part, state in changed.items():
                self.log.info("Ledger %s: %s %s", uri, part, state)

    def execute(self, context: Context) -> list[str]:
        job_ids, conversation_id = self._resolve()
        if not job_ids:  # nothing new: no Symbl call at all (the append task's link stays the conversation's)
            self.log.info("No Symbl jobs to wait for%s: nothing was appended", self._where(conversation_id))
            return []
        if conversation_id and "," not in conversation_id:  # one conversation: link to it
            store_conversation_url(context, self.hook, conversation_id, self.log)
        if not self.deferrable:
            super().execute(context)
            return job_ids
        from symbl_airflow.polling import expected_unfinished, rate_estimator

        # With media lengths from the append results, a job that cannot be done yet is not polled
        # here: the trigger polls it when it should be done.
        media_seconds, accepted_at = job_hints(self.job_ids)
        estimator = rate_estimator(self.symbl_conn_id)
        if expected_unfinished(job_ids, estimator, media_seconds, accepted_at):
            self.log.info("Symbl job(s)%s still expected to run: deferring", self._where(conversation_id))
        elif self.poke(context):
            self.log.info("All %d Symbl job(s)%s completed", len(job_ids), self._where(conversation_id))
            return job_ids
        from symbl_airflow.triggers.job import SymblJobTrigger

        self.defer(
            trigger=SymblJobTrigger.for_jobs(
                job_ids,
                symbl_conn_id=self.symbl_conn_id,
                poll_interval=self.poke_interval,
                timeout=self.timeout,
                conversation_id=conversation_id,
                media_seconds=[media_seconds.get(j) for j in job_ids],
                accepted_at=[accepted_at.get(j) for j in job_ids],
            ),
            method_name="execute_complete",
            timeout=timedelta(seconds=self.timeout),
        )

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> list[str]:
        own_ids, own_conversation = self._resolve()
        event = decode_event(event, own_ids, own_conversation)
        status = event["status"]
        seen = dict(event.get("statuses") or {})
        if status == "success":
            seen = {**dict.fromkeys(event["job_ids"], "completed"), **seen}
        self._record(seen)
        if status == "success":
            self.log.info("%s", event.get("message") or "All Symbl jobs completed")
            return list(event["job_ids"])
        if status == "timeout":
            raise AirflowSensorTimeout(f"{event.get('message')} (sensor timeout: {self.timeout:g} s)")
        failed = event.get("failed_job_id")
        source = self._source_of(failed) if failed else None
        raise error_for_event(event, {failed: source} if source else None)
