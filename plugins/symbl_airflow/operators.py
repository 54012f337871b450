"""SymblAppendVideoOperator: S3 videos -> one Symbl conversation, in order, exactly once.

The first video of a conversation is POSTed (Symbl creates the conversation), every further one is
PUT to ``/v1/process/video/{conversationId}``. Exactly-once across retries and worker crashes comes
from Airflow 3.3's ``task_state_store``: an *intent* is recorded before each send and the job id as
soon as Symbl accepts, so a retry reuses accepted parts and never silently resends an unconfirmed one.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator, conf
from airflow.sdk.exceptions import AirflowException, AirflowFailException

from symbl_airflow.options import OPTION_NAMES
from symbl_airflow.templating import parse_rendered

if TYPE_CHECKING:
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook
    from airflow.sdk import Context

    from symbl_airflow.hooks import SymblHook
    from symbl_airflow.options import SymblOptions
    from symbl_airflow.sources import S3VideoSource

#: Key of this operator's record in ``context["task_state_store"]``.
STATE_KEY = "symbl_append"
UPLOAD_MODES = ("stream", "url")
ON_UNCONFIRMED = ("fail", "resend", "skip")
DEFER_METHOD_NAME = "execute_complete"


class SymblAppendVideoOperator(BaseOperator):
    """
    Append one or more MP4 videos from S3 to a Symbl conversation, strictly in the given order.

    :param source: ``s3://bucket/key.mp4`` or a list of them, appended in list order. (templated)
    :param conversation_id: Symbl conversation to append to; None or empty creates a new conversation
        with the first video (POST). (templated)
    :param symbl_conn_id: Symbl connection (host = base URL, login = App ID, password = App Secret).
    :param aws_conn_id: AWS connection used by ``S3Hook`` to read the videos.
    :param upload_mode: ``"stream"`` sends the S3 bytes through the worker in chunks (memory stays flat);
        ``"url"`` sends a presigned S3 URL to Symbl's ``/url`` endpoints so the bytes skip the worker.
    :param presign_expires_in: lifetime in seconds of presigned URLs (``upload_mode="url"``).
    :param wait_for_completion: wait until every job of this task ends; a failed job fails the task.
    :param deferrable: wait in the triggerer instead of holding a worker slot.
    :param poll_interval: seconds between job status checks while waiting.
    :param timeout: seconds to wait for the jobs before failing.
    :param on_unconfirmed: what to do with a video an earlier attempt sent without learning whether
        Symbl accepted it (worker crash, lost response): ``"fail"`` (default) stops rather than risk a
        duplicate append; after checking the conversation in Symbl, ``"resend"`` sends it again (it is
        missing) and ``"skip"`` treats it as appended (it is there) and goes on with the later videos.
        (templated)
    :param resend_unconfirmed: shorthand for ``on_unconfirmed="resend"``.
    :param chunk_size: bytes per chunk when streaming.
    :param state_uri: optional ``s3://.../_symbl.json`` incremental state (see ``symbl_airflow.state``):
        parts recorded there with the same ETag are skipped, a part whose ETag changed is reported and
        not re-sent, the recorded conversation id is reused, and every accepted part is recorded at once.
        (templated)
    :param symbl_options: the same options as one dict (or a JSON string), e.g. from DAG params;
        keyword options win over it. (templated)
    :param options: Symbl processing options in snake_case (``name``, ``custom_vocabulary``,
        ``confidence_threshold``, ``enable_summary``, ...), given as keyword arguments. (templated)
    :return: ``{"conversation_id": str, "job_ids": [str, ...], "sources": [str, ...]}`` for the parts this
        task appended, plus ``skipped`` and ``changed`` (lists of URIs) when ``state_uri`` is used.
    """

    template_fields: Sequence[str] = (
        "source",
        "conversation_id",
        "state_uri",
        "upload_mode",
        "on_unconfirmed",
        "symbl_conn_id",
        "aws_conn_id",
        "symbl_options",
        "options",
    )
    template_fields_renderers = {"options": "json", "symbl_options": "json"}
    ui_color = "#e8f1fb"

    def __init__(
        self,
        *,
        source: str | list[str],
        conversation_id: str | None = None,
        symbl_conn_id: str = "symbl_default",
        aws_conn_id: str | None = "aws_default",
        upload_mode: str = "stream",
        presign_expires_in: int = 3600,
        wait_for_completion: bool = False,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        poll_interval: float = 10.0,
        timeout: float = 6 * 3600,
        on_unconfirmed: str = "fail",
        resend_unconfirmed: bool = False,
        chunk_size: int = 8 << 20,
        state_uri: str | None = None,
        symbl_options: dict | str | None = None,
        **kwargs: Any,
    ) -> None:
        options = {name: kwargs.pop(name) for name in list(kwargs) if name in OPTION_NAMES}
        super().__init__(**kwargs)
        self.source = source
        self.conversation_id = conversation_id
        self.symbl_conn_id = symbl_conn_id
        self.aws_conn_id = aws_conn_id
        self.upload_mode = upload_mode
        self.presign_expires_in = presign_expires_in
        self.wait_for_completion = wait_for_completion
        self.deferrable = deferrable
        self.poll_interval = poll_interval
        self.timeout = timeout
        self.on_unconfirmed = "resend" if resend_unconfirmed else on_unconfirmed
        self.chunk_size = chunk_size
        self.state_uri = state_uri
        self.symbl_options = symbl_options
        self.options = options

    @cached_property
    def hook(self) -> SymblHook:
        from symbl_airflow.hooks import SymblHook

        return SymblHook(symbl_conn_id=self.symbl_conn_id)

    @cached_property
    def s3_hook(self) -> S3Hook:
        from airflow.providers.amazon.aws.hooks.s3 import S3Hook

        return S3Hook(aws_conn_id=self.aws_conn_id)

    # ---------------------------------------------------------------- validation (before any send)
    def _validate(self) -> tuple[list[str], str | None, SymblOptions]:
        from symbl_airflow.options import SymblOptions

        sources = self.source
        if isinstance(sources, str):
            sources = [sources]
        if not isinstance(sources, (list, tuple)) or not sources:
            raise AirflowFailException(
                f"source must be an 's3://bucket/key.mp4' string or a non-empty list of them, got {sources!r}"
            )
        sources = [s.strip() if isinstance(s, str) else s for s in sources]
        dups = sorted({s for s in sources if sources.count(s) > 1})
        if dups:
            raise AirflowFailException(
                f"source lists {dups} more than once; each video can be appended to a conversation only once"
            )
        if self.upload_mode not in UPLOAD_MODES:
            raise AirflowFailException(f"upload_mode must be one of {UPLOAD_MODES}, got {self.upload_mode!r}")
        if self.on_unconfirmed not in ON_UNCONFIRMED:
            raise AirflowFailException(f"on_unconfirmed must be one of {ON_UNCONFIRMED}, got {self.on_unconfirmed!r}")
        if not (isinstance(self.poll_interval, (int, float)) and self.poll_interval > 0):
            raise AirflowFailException(f"poll_interval must be a positive number, got {self.poll_interval!r}")
        conversation_id = self.conversation_id
        if conversation_id is not None and not isinstance(conversation_id, (str, int)):
            raise AirflowFailException(
                f"conversation_id must be a Symbl conversation id string or None, got {conversation_id!r}"
            )
        conversation_id = str(conversation_id).strip() if conversation_id not in (None, "") else None
        if conversation_id in ("None", "null"):
            conversation_id = None
        merged = parse_rendered(self.symbl_options or {})
        if not isinstance(merged, dict):
            raise AirflowFailException(
                f"symbl_options must be a dict (or a JSON object string) of Symbl options, got {self.symbl_options!r}"
            )
        try:
            options = SymblOptions.from_kwargs(**{**merged, **(self.options or {})})
            options.validate()
        except ValueError as exc:
            raise AirflowFailException(f"invalid Symbl option: {exc}") from exc
        return sources, conversation_id, options

    def _inspect_all(self, uris: list[str]) -> list[S3VideoSource]:
        from symbl_airflow.sources import VideoSourceError, inspect_source, parse_s3_uri

        errors: list[str] = []
        for uri in uris:
            try:
                parse_s3_uri(uri)
            except VideoSourceError as exc:
                errors.append(str(exc))
        if errors:
            raise AirflowFailException("; ".join(errors))
        checked = []
        for uri in uris:
            try:
                checked.append(inspect_source(self.s3_hook, uri))
            except VideoSourceError as exc:
                errors.append(str(exc))
        if errors:
            raise AirflowFailException(
                f"{len(errors)} of {len(uris)} source(s) cannot be sent, nothing was sent to Symbl: "
                + "; ".join(errors)
            )
        return checked

    # ---------------------------------------------------------------- execution
    def execute(self, context: Context) -> dict:
        uris, conversation_id, options = self._validate()
        sources = self._inspect_all(uris)
        state = _TaskState(context.get("task_state_store"), self.log)
        record = state.load()
        conversation_id = self._reconcile(record, sources, conversation_id)
        history = self._load_history(conversation_id)
        if history is not None:
            conversation_id = history.conversation_id or conversation_id
        skipped: list[str] = []
        changed: list[str] = []

        job_ids: list[str] = []
        sent: list[str] = []
        for index, source in enumerate(sources):
            part = record["parts"].get(source.uri)
            earlier_run = history.appended(source.uri) if history is not None else None
            if earlier_run and not (part and (part.get("job_id") or part.get("assumed"))):
                if earlier_run.get("etag") == source.etag:
                    self.log.info(
                        "Part %d/%d %s is already in conversation %s (job %s, earlier run); skipping",
                        index + 1,
                        len(sources),
                        source.uri,
                        history.conversation_id,
                        earlier_run.get("job_id"),
                    )
                    skipped.append(source.uri)
                else:
                    self.log.warning(
                        "Part %d/%d %s changed since it was appended (ETag %s, now %s); it is NOT sent again. "
                        "Upload new content under a new key to append it.",
                        index + 1,
                        len(sources),
                        source.uri,
                        earlier_run.get("etag"),
                        source.etag,
                    )
                    changed.append(source.uri)
                continue
            if part and part.get("assumed"):
                conversation_id = part["conversation_id"]
                sent.append(source.uri)
                self._record_history(history, source, None, conversation_id)
                continue
            if part and part.get("job_id"):
                self.log.info(
                    "Part %d/%d %s was accepted by Symbl in an earlier attempt (job %s); not sending it again",
                    index + 1,
                    len(sources),
                    source.uri,
                    part["job_id"],
                )
                conversation_id = part["conversation_id"]
                job_ids.append(part["job_id"])
                sent.append(source.uri)
                self._record_history(history, source, part["job_id"], conversation_id)
                continue
            self._refuse_after_failed_job(record, history, sources[:index], conversation_id)
            record["conversation_id"] = conversation_id
            record["parts"][source.uri] = {
                "etag": source.etag,
                "size": source.size,
                "conversation_id": conversation_id,
                "job_id": None,
                "sent_at": time.time(),
            }
            state.save(record)  # the intent: durable before the first byte leaves
            created = conversation_id is None
            try:
                submission = self._submit(source, conversation_id, options, index, len(sources))
            except _Refused:
                record["parts"].pop(source.uri)  # Symbl answered no: nothing to reconcile on retry
                state.save(record)
                raise
            conversation_id = submission.conversation_id
            record["conversation_id"] = conversation_id
            record["parts"][source.uri].update(conversation_id=conversation_id, job_id=submission.job_id)
            state.save(record)
            self._record_history(history, source, submission.job_id, conversation_id)
            job_ids.append(submission.job_id)
            sent.append(source.uri)
            self.log.info(
                "Part %d/%d %s accepted: conversation %s, job %s (%s)",
                index + 1,
                len(sources),
                source.uri,
                conversation_id,
                submission.job_id,
                "new conversation" if created else "append",
            )

        result = {"conversation_id": conversation_id, "job_ids": job_ids, "sources": sent}
        if history is not None:
            result.update(skipped=skipped, changed=changed)
        if not self.wait_for_completion or not job_ids:
            return result
        return self._wait(context, result)

    def _load_history(self, conversation_id: str | None):
        if not self.state_uri:
            return None
        from symbl_airflow.state import load_state

        try:
            history = load_state(self.s3_hook, self.state_uri)
        except ValueError as exc:
            raise AirflowFailException(str(exc)) from exc
        if history.conversation_id and conversation_id and history.conversation_id != conversation_id:
            raise AirflowFailException(
                f"state file {self.state_uri} belongs to conversation {history.conversation_id} but "
                f"conversation_id is {conversation_id}; pass the same id, or a different state_uri"
            )
        return history

    def _record_history(self, history, source: S3VideoSource, job_id: str, conversation_id: str) -> None:
        if history is None:
            return
        from symbl_airflow.state import record_part, save_state

        known = history.appended(source.uri)
        if known and known.get("job_id") == job_id:
            return
        record_part(
            history,
            source.uri,
            etag=source.etag,
            size=source.size,
            job_id=job_id,
            conversation_id=conversation_id,
        )
        save_state(self.s3_hook, history)

    def _refuse_after_failed_job(self, record: dict, history, earlier: list, conversation_id: str | None) -> None:
        """Do not append to a conversation whose previous video's Symbl job failed.

        Symbl processes a conversation's jobs in order; a later part after a failed one would make a
        transcript with a hole. One GET per append; it catches failures from earlier runs and retries
        (a job still running when the next part goes out is caught by the sensor instead).
        """
        if not conversation_id:
            return
        previous = None
        for source in reversed(earlier):
            part = record["parts"].get(source.uri) or {}
            if part.get("job_id"):
                previous = (part["job_id"], source.uri)
                break
        if previous is None and history is not None and history.parts:
            uri, part = max(history.parts.items(), key=lambda kv: kv[1].get("seq", 0))
            if part.get("job_id"):
                previous = (part["job_id"], uri)
        if previous is None:
            return
        job = self.hook.get_job(previous[0])
        if job.is_failed:
            raise AirflowFailException(
                f"Symbl job {previous[0]} ({previous[1]}) of conversation {conversation_id} failed, so no "
                "later video is appended to it (its transcript would have a hole). Check the video, then "
                "start a new conversation for it (e.g. delete the state file, or pass another conversation_id)."
            )

    def _reconcile(self, record: dict, sources: list[S3VideoSource], conversation_id: str | None) -> str | None:
        """Check what an earlier attempt left behind against this attempt's inputs."""
        recorded = record["parts"]
        if record.get("conversation_id") and conversation_id and record["conversation_id"] != conversation_id:
            accepted = [uri for uri, p in recorded.items() if p.get("job_id")]
            if accepted:
                raise AirflowFailException(
                    f"an earlier attempt appended {accepted} to conversation {record['conversation_id']}, but "
                    f"conversation_id now renders to {conversation_id}; clear the task state (or the task) to "
                    "start over on purpose"
                )
        for source in sources:
            part = recorded.get(source.uri)
            if not part:
                continue
            if part.get("etag") != source.etag:
                if part.get("job_id"):
                    raise AirflowFailException(
                        f"source {source.uri} was already appended (job {part['job_id']}, ETag {part['etag']}) "
                        f"but S3 now holds a different version (ETag {source.etag}); refusing to append it "
                        "twice. Upload the new version under a new key to append it."
                    )
                recorded.pop(source.uri)  # never confirmed and now different: it is a fresh send decision
                continue
            if not part.get("job_id") and not part.get("assumed"):
                target = part.get("conversation_id") or conversation_id
                if self.on_unconfirmed == "fail":
                    raise AirflowFailException(
                        f"source {source.uri} was sent to Symbl by an earlier attempt (conversation "
                        f"{part.get('conversation_id') or 'new'}) but Symbl's answer never arrived, so it may or "
                        "may not have been appended. Check the conversation's messages in Symbl "
                        "(GET /v1/conversations/<id>/messages): if this video's transcript is missing, rerun "
                        "with on_unconfirmed='resend'; if it is there, rerun with on_unconfirmed='skip' "
                        "(plus conversation_id=<id> if it was the first video) to go on with the later videos. "
                        "Nothing was sent in this attempt."
                    )
                if self.on_unconfirmed == "skip":
                    if not target:
                        raise AirflowFailException(
                            f"on_unconfirmed='skip' for {source.uri}: it was the video that created the "
                            "conversation, whose id never arrived; pass conversation_id=<id shown in Symbl>"
                        )
                    self.log.warning(
                        "Treating %s as appended to conversation %s (on_unconfirmed='skip'); its job id is unknown",
                        source.uri,
                        target,
                    )
                    part.update(conversation_id=target, assumed=True)
                    continue
                self.log.warning(
                    "Resending %s whose earlier submission was never confirmed (on_unconfirmed='resend')",
                    source.uri,
                )
                recorded.pop(source.uri)
        first_accepted = next(
            (
                recorded[s.uri]
                for s in sources
                if recorded.get(s.uri, {}).get("job_id") or recorded.get(s.uri, {}).get("assumed")
            ),
            None,
        )
        if first_accepted:
            return first_accepted["conversation_id"]
        return conversation_id

    def _submit(self, source: S3VideoSource, conversation_id, options, index: int, total: int):
        from symbl_airflow.errors import SymblAmbiguousSubmissionError, SymblError
        from symbl_airflow.sources import ProgressLogger, VideoSourceError, body_opener, presigned_url

        action = f"appending to conversation {conversation_id}" if conversation_id else "creating a conversation"
        self.log.info(
            "Sending part %d/%d %s (%.1f MiB, %s, mode=%s)",
            index + 1,
            total,
            source.uri,
            source.size / 1048576,
            action,
            self.upload_mode,
        )
        try:
            if self.upload_mode == "url":
                return self.hook.submit_video_url(
                    presigned_url(self.s3_hook, source, self.presign_expires_in),
                    conversation_id=conversation_id,
                    options=options,
                )
            return self.hook.submit_video(
                body_opener(self.s3_hook, source),
                source.size,
                conversation_id=conversation_id,
                options=options,
                chunk_size=self.chunk_size,
                on_progress=ProgressLogger(self.log, source.uri, source.size),
            )
        except SymblAmbiguousSubmissionError as exc:
            raise AirflowException(
                f"part {index + 1}/{total} {source.uri}: {exc}. The task state records this send as "
                "unconfirmed; a retry will stop unless on_unconfirmed is 'resend' or 'skip'."
            ) from exc
        except (SymblError, VideoSourceError) as exc:
            raise _Refused(
                f"part {index + 1}/{total} {source.uri} was not accepted by Symbl: {exc}. Later parts were not sent."
            ) from exc

    # ---------------------------------------------------------------- waiting
    def _wait(self, context: Context, result: dict) -> dict:
        if self.deferrable:
            from symbl_airflow.triggers import SymblJobTrigger

            self.defer(
                trigger=SymblJobTrigger(
                    job_ids=result["job_ids"],
                    symbl_conn_id=self.symbl_conn_id,
                    poll_interval=self.poll_interval,
                    end_time=time.time() + self.timeout,
                    conversation_id=result["conversation_id"],
                ),
                method_name=DEFER_METHOD_NAME,
                kwargs={"result": result},
                timeout=timedelta(seconds=self.timeout),
            )
        deadline = time.monotonic() + self.timeout
        pending = list(result["job_ids"])
        while pending:
            for job_id in list(pending):
                job = self.hook.get_job(job_id)
                if job.is_failed:
                    raise AirflowException(f"Symbl job {job_id} of conversation {result['conversation_id']} failed")
                if job.is_completed:
                    pending.remove(job_id)
            if not pending:
                break
            if time.monotonic() >= deadline:
                raise AirflowException(
                    f"Symbl jobs {pending} of conversation {result['conversation_id']} did not finish within "
                    f"{self.timeout}s"
                )
            time.sleep(min(self.poll_interval, max(deadline - time.monotonic(), 0)))
        self.log.info("All %d job(s) of conversation %s completed", len(result["job_ids"]), result["conversation_id"])
        return result

    def execute_complete(self, context: Context, event: dict | None = None, result: dict | None = None) -> dict:
        if not event or "status" not in event:
            raise AirflowException(f"SymblJobTrigger returned an invalid event: {event!r}")
        if event["status"] != "success":
            raise AirflowException(
                f"waiting for Symbl conversation {event.get('conversation_id')} ended with "
                f"{event['status']}: {event.get('message')}"
            )
        self.log.info("%s", event.get("message") or "Symbl jobs completed")
        return result or {
            "conversation_id": event.get("conversation_id"),
            "job_ids": event.get("job_ids", []),
            "sources": [],
        }


class _Refused(AirflowException):
    """Symbl (or S3) definitely refused a part: it was not appended, so a retry may send it again."""


class _TaskState:
    """The operator's record in the task state store: ``{"conversation_id", "parts": {uri: part}}``."""

    _warned = False

    def __init__(self, store, log):
        self.store = store
        self.log = log
        if store is None and not _TaskState._warned:
            _TaskState._warned = True
            log.warning(
                "task_state_store is not available (Airflow < 3.3 or disabled): a retry after a crash may "
                "resend a video that Symbl already accepted"
            )

    def load(self) -> dict:
        record = self.store.get(STATE_KEY) if self.store is not None else None
        if not isinstance(record, dict):
            record = {}
        record.setdefault("conversation_id", None)
        record.setdefault("parts", {})
        return record

    def save(self, record: dict) -> None:
        if self.store is not None:
            self.store.set(STATE_KEY, record)
