"""SymblAppendVideoOperator: S3 videos -> one Symbl conversation, in order, exactly once.

The first video of a conversation is POSTed (Symbl creates the conversation), every further one is
PUT to ``/v1/process/video/{conversationId}``. What was sent where lives in a per-conversation
*ledger* (``symbl_airflow.ledger``): an S3 object shared by every run, task and deployment when
``ledger_uri`` is given, else the task instance's ``task_state_store`` (retries of one task only).
The operator is a loop: load the ledger, ask ``symbl_airflow.plan`` for the next step, do it, repeat.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from contextlib import nullcontext
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator, conf
from airflow.sdk.exceptions import AirflowException, AirflowFailException

from symbl_airflow.hooks.upload import DEFAULT_CHUNK_SIZE
from symbl_airflow.links import SymblConversationLink
from symbl_airflow.options import OPTION_NAMES
from symbl_airflow.templating import parse_rendered

if TYPE_CHECKING:
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook
    from airflow.sdk import Context

    from symbl_airflow.appends.ledger import Ledger, Writer
    from symbl_airflow.appends.stores import LedgerStore
    from symbl_airflow.hooks import SymblHook
    from symbl_airflow.options import SymblOptions
    from symbl_airflow.sources import S3VideoSource

UPLOAD_MODES = ("stream", "url")
ON_UNCONFIRMED = ("fail", "resend", "skip")
ON_BUSY = ("wait", "fail")
DEFER_METHOD_NAME = "execute_complete"
RESUME_METHOD_NAME = "resume_append"
#: Longest single deferral while another writer holds the conversation (then the ledger is re-read).
LEASE_RECHECK_SECONDS = 30.0
HOW_TO_RESOLVE = (
    "rerun with on_unconfirmed='resend' if the video is missing in Symbl, or on_unconfirmed='skip' if it is "
    "there (where the DAG takes it from params, as symbl_video_pipeline does, trigger a new run with conf "
    '{"on_unconfirmed": "resend"} or {"on_unconfirmed": "skip"})'
)


class SymblAppendVideoOperator(BaseOperator):
    """
    Append one or more MP4 videos from S3 to a Symbl conversation, strictly in order, each exactly once.

    :param source: ``s3://bucket/key.mp4`` or a list of them, appended in list order (with a
        ``ledger_uri``: in key order, which the list must follow). (templated)
    :param conversation_id: Symbl conversation to append to; None or empty creates a new conversation
        with the first video (POST), or continues the ledger's. (templated)
    :param ledger_uri: ``s3://.../_symbl.json``: the conversation's ledger, shared by every run, task and
        deployment that appends to it. With it: parts already in the conversation are skipped, a part is
        recorded as *sending* before its first byte and as *accepted* right after, one writer at a time
        (a lease), no part after a failed job, key order is append order (a late part is reported, never
        appended). Without it the same record lives in this task instance's ``task_state_store``, which
        only its retries see. (templated)
    :param state_uri: the 0.1 name of ``ledger_uri`` (deprecated; the old file is upgraded in place).
    :param symbl_conn_id: Symbl connection (host = base URL, login = App ID, password = App Secret).
    :param aws_conn_id: AWS connection used by ``S3Hook`` to read the videos and the ledger.
    :param upload_mode: ``"stream"`` sends the S3 bytes through the worker in chunks (memory stays flat);
        ``"url"`` sends a presigned S3 URL to Symbl's ``/url`` endpoints so the bytes skip the worker.
    :param presign_expires_in: lifetime in seconds of presigned URLs (``upload_mode="url"``).
    :param strict_order: send a part only after the previous part's Symbl job *completed*, so a failed
        job can never leave a hole (Symbl runs a conversation's jobs one after another anyway). With
        ``deferrable`` the wait between parts happens in the triggerer, holding no worker slot.
    :param wait_for_completion: also wait for the last part's job; a failed job fails the task.
    :param deferrable: wait (between parts, for a busy conversation, for completion) in the triggerer.
    :param poll_interval: seconds between job status checks while waiting.
    :param timeout: seconds to wait for jobs, or for another writer's lease, before failing.
    :param on_unconfirmed: a part some earlier attempt sent without learning whether Symbl accepted it
        (worker crash, lost response) blocks its conversation. ``"fail"`` (default) stops and says how
        to check; after checking the conversation in Symbl, ``"resend"`` sends it again (it is missing)
        and ``"skip"`` records it as appended (it is there). (templated)
    :param resend_unconfirmed: shorthand for ``on_unconfirmed="resend"``.
    :param on_busy: another live writer holds the conversation: ``"wait"`` (deferred) or ``"fail"``.
    :param lease_seconds: lease length; renewed every third of it while sending. A crashed writer's
        lease is taken over once it expires.
    :param chunk_size: bytes per chunk when streaming.
    :param symbl_options: the same options as one dict (or a JSON string), e.g. from DAG params;
        keyword options win over it. (templated)
    :param options: Symbl processing options in snake_case (``name``, ``custom_vocabulary``,
        ``confidence_threshold``, ``enable_summary``, ...), given as keyword arguments. (templated)
    :return: ``{"conversation_id": str, "job_ids": [str, ...], "sources": [str, ...]}`` for the parts this
        task instance appended (``job_ids[i]`` belongs to ``sources[i]``); with a ledger also ``skipped``
        (already in the conversation), ``changed`` (appended before, S3 now holds other bytes: not
        re-sent) and ``late`` (landed after a later part was appended: never appended).
    """

    template_fields: Sequence[str] = (
        "source",
        "conversation_id",
        "ledger_uri",
        "upload_mode",
        "on_unconfirmed",
        "symbl_conn_id",
        "aws_conn_id",
        "symbl_options",
        "options",
    )
    template_fields_renderers = {"options": "json", "symbl_options": "json"}
    ui_color = "#e8f1fb"
    operator_extra_links = (SymblConversationLink(),)

    def __init__(
        self,
        *,
        source: str | list[str],
        conversation_id: str | None = None,
        ledger_uri: str | None = None,
        state_uri: str | None = None,
        symbl_conn_id: str = "symbl_default",
        aws_conn_id: str | None = "aws_default",
        upload_mode: str = "stream",
        presign_expires_in: int = 3600,
        strict_order: bool = True,
        wait_for_completion: bool = False,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        poll_interval: float = 10.0,
        timeout: float = 6 * 3600,
        on_unconfirmed: str = "fail",
        resend_unconfirmed: bool = False,
        on_busy: str = "wait",
        lease_seconds: float | None = None,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        symbl_options: dict | str | None = None,
        **kwargs: Any,
    ) -> None:
        options = {name: kwargs.pop(name) for name in list(kwargs) if name in OPTION_NAMES}
        super().__init__(**kwargs)
        self.source = source
        self.conversation_id = conversation_id
        self.ledger_uri = ledger_uri or state_uri
        self.symbl_conn_id = symbl_conn_id
        self.aws_conn_id = aws_conn_id
        self.upload_mode = upload_mode
        self.presign_expires_in = presign_expires_in
        self.strict_order = strict_order
        self.wait_for_completion = wait_for_completion
        self.deferrable = deferrable
        self.poll_interval = poll_interval
        self.timeout = timeout
        self.on_unconfirmed = "resend" if resend_unconfirmed else on_unconfirmed
        self.on_busy = on_busy
        self.lease_seconds = lease_seconds
        self.chunk_size = chunk_size
        self.symbl_options = symbl_options
        self.options = options

    @property
    def state_uri(self) -> str | None:
        """The 0.1 name of ``ledger_uri``."""
        return self.ledger_uri

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
            parsed = parse_rendered(sources)  # a list rendered without native rendering: "['s3://…', …]"
            sources = parsed if isinstance(parsed, (list, tuple)) else [sources]
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
        if self.on_busy not in ON_BUSY:
            raise AirflowFailException(f"on_busy must be one of {ON_BUSY}, got {self.on_busy!r}")
        if self.lease_seconds is not None and not (
            isinstance(self.lease_seconds, (int, float)) and self.lease_seconds >= 10
        ):
            raise AirflowFailException(f"lease_seconds must be a number >= 10, got {self.lease_seconds!r}")
        if self.ledger_uri:
            from symbl_airflow.appends.ledger import LedgerError
            from symbl_airflow.appends.stores import split_s3_uri

            try:
                split_s3_uri(self.ledger_uri)
            except LedgerError as exc:
                raise AirflowFailException(str(exc)) from None
            keys = [s for s in sources if isinstance(s, str)]
            if keys != sorted(keys):
                raise AirflowFailException(
                    f"with ledger_uri, S3 key order is append order, but source lists {keys} out of key order; "
                    "name the parts so that they sort (part-001.mp4, part-002.mp4, ...) and list them sorted"
                )
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
            if self.upload_mode == "stream":  # file uploads carry the options in the request URL
                options.check_request_line()
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

    # ---------------------------------------------------------------- execution: plan -> apply
    def execute(self, context: Context) -> dict:
        uris, conversation_id, options = self._validate()
        sources = self._inspect_all(uris)
        return self._advance(context, [_checked(s) for s in sources], conversation_id, options)

    def resume_append(
        self,
        context: Context,
        event: dict | None = None,
        checked: list[dict] | None = None,
        token: str | None = None,
        running: list[str] | None = None,
        waited_for: list[str] | None = None,
    ) -> dict:
        """Back from a deferral (between parts, or while another writer held the lease): plan again.

        ``airflow dags test`` hands back the trigger's event but drops these kwargs, so each one can also
        be recovered: the checked sources by checking again, the writer token from the task state store,
        the awaited job from the event.
        """
        uris, conversation_id, options = self._validate()
        if checked is None:
            checked = [_checked(s) for s in self._inspect_all(uris)]
        running = set(running or ())
        finished = None
        if isinstance(event, dict) and "status" in event:
            job_ids = event.get("job_ids") or []
            uri, job_id = waited_for or (None, job_ids[0] if len(job_ids) == 1 else None)
            status = event.get("status")
            if job_id is None:
                raise AirflowException(f"resumed with an event for unknown jobs: {event!r}")
            running.discard(job_id)
            if status == "success":
                finished = (uri, job_id, "completed")
            elif status == "failed" and event.get("failed_job_id", job_id) == job_id:
                finished = (uri, job_id, "failed")
            else:
                raise AirflowException(
                    f"waiting for Symbl job {job_id} ({uri or 'previous part'}) before the next part ended with "
                    f"{status}: {event.get('message')}"
                )
        return self._advance(context, checked, conversation_id, options, token, running, finished)

    def _advance(
        self,
        context: Context,
        checked: list[dict],
        conversation_id: str | None,
        options: SymblOptions,
        token: str | None = None,
        running: set[str] | None = None,
        finished: tuple[str, str, str] | None = None,
    ) -> dict:
        from symbl_airflow.appends import ledger as L
        from symbl_airflow.appends import plan as P
        from symbl_airflow.errors import SymblNotFoundError

        sources = [P.Source(c["uri"], c["etag"], c["size"]) for c in checked]
        by_uri = {c["uri"]: c for c in checked}
        writer = L.Writer.from_context(context, token or _saved_token(context))
        _save_token(context, writer)
        store = self._ledger_store(context)
        identity = {"host": self.hook.config.base_url, "app_id": self.hook.config.app_id}
        lease_seconds = float(self.lease_seconds or L.DEFAULT_LEASE_SECONDS)
        running = set(running or ())
        ledger = self._load(store)
        if finished:
            uri, job_id, status = finished
            uri = uri or next((p.uri for p in ledger.parts if p.job_id == job_id), None)
            ledger = store.update(L.job_finished(uri, job_id, status), ledger=ledger)
        try:
            while True:
                plan = P.plan_appends(
                    ledger,
                    sources,
                    writer=writer,
                    now=time.time(),
                    symbl=identity,
                    conversation_id=conversation_id,
                    on_unconfirmed=self.on_unconfirmed,
                    strict_order=self.strict_order,
                    key_order=store.shared,
                    running=running,
                    how_to_resolve=HOW_TO_RESOLVE,
                )
                action = plan.action
                if isinstance(action, P.Refuse):
                    raise AirflowFailException(action.message)
                if isinstance(action, P.WaitForLease):
                    self._wait_for_lease(context, action, store, checked, writer, running)
                    ledger = store.load()
                elif isinstance(action, P.Settle):
                    ledger = store.update(
                        L.bind_symbl(identity),
                        L.acquire(writer, lease_seconds),
                        L.resolve_unconfirmed(writer, action.uri, action.resolution),
                        ledger=ledger,
                    )
                    self.log.warning(
                        "%s was sent earlier without a confirmation from Symbl; on_unconfirmed=%r: %s",
                        action.uri,
                        self.on_unconfirmed,
                        "it will be sent again" if action.resolution == "resend" else "recorded as appended",
                    )
                elif isinstance(action, P.CheckJobs):
                    updates = []
                    for uri, job_id in action.jobs:
                        try:
                            job = self.hook.get_job(job_id)
                        except SymblNotFoundError:
                            raise AirflowFailException(
                                f"Symbl does not know job {job_id} of {uri}, recorded in the conversation ledger "
                                f"{store.uri} (conversation {ledger.conversation_id}): the ledger was written for "
                                "another Symbl account or endpoint, or the conversation was deleted. Point "
                                f"{self.symbl_conn_id!r} at the account that wrote it, or move the ledger aside "
                                "(rename it) to start a new conversation for these videos."
                            ) from None
                        if job.is_terminal:
                            updates.append(L.job_finished(uri, job_id, job.status))
                            if job.is_failed:
                                self.log.error("Symbl job %s of %s failed", job_id, uri)
                        else:
                            running.add(job_id)
                    if updates:
                        ledger = store.update(*updates, ledger=ledger)
                elif isinstance(action, P.WaitForJob):
                    try:  # hold the conversation while its previous job runs: the next send is ours
                        ledger = store.update(L.acquire(writer, lease_seconds + self.poll_interval * 3), ledger=ledger)
                    except L.LeaseBusy:
                        ledger = store.load()
                        continue
                    status = self._wait_between_parts(context, action, checked, writer, running)
                    running.discard(action.job_id)
                    ledger = store.update(L.job_finished(action.uri, action.job_id, status), ledger=ledger)
                elif isinstance(action, P.Send):
                    try:
                        ledger = store.update(
                            L.bind_symbl(identity),
                            L.acquire(writer, lease_seconds),
                            L.intent(
                                writer,
                                action.source.uri,
                                action.source.etag,
                                action.source.size,
                                media_seconds=by_uri[action.source.uri].get("media_seconds"),
                            ),
                            ledger=ledger,
                        )
                    except L.LeaseBusy:
                        ledger = store.load()
                        continue
                    ledger = self._send(store, ledger, writer, action, by_uri, options, len(sources), lease_seconds)
                    running.add(ledger.part(action.source.uri).job_id)
                    self._link(context, ledger.conversation_id)
                else:
                    break
            ledger = self._finish(store, ledger, writer, plan)
            self._link(context, ledger.conversation_id)
        except BaseException as exc:
            if not _is_deferral(exc):
                self._release_quietly(store, writer)
            raise
        return self._result(ledger, writer, plan, store.shared, context, set(by_uri))

    def _link(self, context: Context, conversation_id: str | None) -> None:
        """The "Symbl conversation" link, stored as soon as the conversation exists (once per try)."""
        from symbl_airflow.links import store_conversation_url

        store_conversation_url(context, self.hook, conversation_id, self.log)

    def get_openlineage_facets_on_complete(self, task_instance: Any):
        """OpenLineage: the S3 videos this task sent -> the Symbl conversation."""
        from symbl_airflow.lineage import append_lineage

        return append_lineage(self.hook, task_instance)

    def _ledger_store(self, context: Context) -> LedgerStore:
        from symbl_airflow.appends.stores import S3LedgerStore, TaskStateLedgerStore

        if self.ledger_uri:
            return S3LedgerStore(self.s3_hook, self.ledger_uri)
        store = context.get("task_state_store")
        if store is None:
            self.log.warning(
                "No ledger_uri and no task_state_store (Airflow < 3.3 or disabled): nothing records what was "
                "sent, so a retry after a crash may resend a video that Symbl already accepted"
            )
        return TaskStateLedgerStore(store)

    def _load(self, store: LedgerStore) -> Ledger:
        from symbl_airflow.appends.ledger import LedgerError

        try:
            ledger = store.load()
        except LedgerError as exc:
            raise AirflowFailException(str(exc)) from None
        if ledger.upgraded_from:
            self.log.info(
                "Ledger %s is version %s; it is upgraded to version 2 on the next write",
                store.uri,
                ledger.upgraded_from,
            )
        return ledger

    def _send(self, store, ledger, writer, action, by_uri, options, total, lease_seconds) -> Ledger:
        """Send one part (its intent is already in the ledger) and record Symbl's answer."""
        from symbl_airflow.appends import ledger as L
        from symbl_airflow.sources import S3VideoSource, parse_s3_uri

        bucket, key = parse_s3_uri(action.source.uri)
        checked = by_uri[action.source.uri]
        source = S3VideoSource(uri=checked["uri"], bucket=bucket, key=key, size=checked["size"], etag=checked["etag"])
        created = action.conversation_id is None
        try:
            # Only a shared ledger has a lease to keep (and task-state writes must stay on the task's thread).
            keeper = _LeaseKeeper(store, writer, lease_seconds, self.log) if store.shared else nullcontext()
            with keeper:
                submission = self._submit(source, action.conversation_id, options, action.index, total)
        except _Refused as exc:
            store.update(L.withdraw(writer, source.uri), L.release(writer))
            if exc.fatal:
                raise AirflowFailException(str(exc)) from exc.__cause__
            raise
        except _Unconfirmed as exc:
            cause = exc.__cause__
            detail = (
                f" [{getattr(cause, 'method', '')} {getattr(cause, 'endpoint', '')}: no answer after the body was sent]"
            )
            message = _unconfirmed_text(store.load(), source.uri, store) + detail
            if self.on_unconfirmed == "fail":
                raise AirflowFailException(message) from cause  # a retry could only stop the same way
            raise AirflowException(
                f"{message} A retry settles it as on_unconfirmed={self.on_unconfirmed!r}."
            ) from cause
        ledger = store.update(L.accepted(writer, source.uri, submission.conversation_id, submission.job_id))
        self.log.info(
            "Part %d/%d %s accepted: conversation %s, job %s (%s)",
            action.index + 1,
            total,
            source.uri,
            submission.conversation_id,
            submission.job_id,
            "new conversation" if created else "append",
        )
        return ledger

    def _finish(self, store, ledger, writer, plan) -> Ledger:
        from symbl_airflow.appends import ledger as L

        for uri in plan.already:
            self.log.info("%s is already in conversation %s; skipping", uri, ledger.conversation_id)
        for uri in plan.changed:
            self.log.warning(
                "%s changed since it was appended (the ledger has ETag %s); it is NOT sent again. Upload new "
                "content under a new key to append it.",
                uri,
                ledger.part(uri).etag,
            )
        for uri in plan.late:
            self.log.warning(
                "%s is LATE: a part that sorts after it is already in conversation %s, so appending it would put "
                "the transcript out of order. It is not appended; start a new conversation from it if it matters "
                "(python -m symbl_airflow.ledger restart %s --from <uri>).",
                uri,
                ledger.conversation_id,
                store.uri,
            )
        new_late = {uri: "" for uri in plan.late if uri not in ledger.late}
        mutations = []
        if new_late and store.shared:
            mutations.append(L.record_late(new_late))
        if ledger.lease and (ledger.lease.held_by(writer) or ledger.lease.inherited_by(writer)):
            mutations.append(L.release(writer))
        if mutations:
            ledger = store.update(*mutations, ledger=ledger)
        return ledger

    def _release_quietly(self, store, writer) -> None:
        from symbl_airflow.appends import ledger as L

        try:
            store.update(L.release(writer))
        except Exception:  # the lease then simply expires
            self.log.warning("Could not release the lease on %s; it expires by itself", store.uri, exc_info=True)

    def _result(self, ledger: Ledger, writer: Writer, plan, shared: bool, context: Context, listed: set) -> dict:
        def sent_by_this_task(part) -> bool:
            if not writer.run_id:  # executed outside a task instance: only this execution's sends are its own
                return part.sender.get("token") == writer.token
            return tuple(part.sender.get(k) for k in ("dag_id", "run_id", "task_id", "map_index")) == writer.task_key

        mine = [p for p in ledger.parts if p.job_id and p.uri in listed and sent_by_this_task(p)]
        result = {
            "conversation_id": ledger.conversation_id,
            "job_ids": [p.job_id for p in mine],
            "sources": [p.uri for p in mine],
            # when each job can be expected done: the sensor's trigger polls then, not blindly
            "media_seconds": [p.media_seconds for p in mine],
            "accepted_at": [p.accepted_at for p in mine],
        }
        if shared:
            result.update(
                ledger_uri=self.ledger_uri,
                skipped=[uri for uri in plan.already if uri not in result["sources"]],
                changed=plan.changed,
                late=plan.late,
            )
        if not self.wait_for_completion or not result["job_ids"]:
            return result
        pending = [p for p in mine if p.state == "accepted"]
        if not pending:
            return result
        waiting = {
            **result,
            "job_ids": [p.job_id for p in pending],
            "media_seconds": [p.media_seconds for p in pending],
            "accepted_at": [p.accepted_at for p in pending],
        }
        return self._wait(context, waiting, full=result)

    # ---------------------------------------------------------------- waiting between parts
    def _wait_between_parts(self, context, action, checked, writer, running) -> str:
        """Wait for the previous part's job: deferred (no slot held) or, if not deferrable, polled here."""
        if self.deferrable:
            from symbl_airflow.triggers.job import SymblJobTrigger

            self.log.info(
                "Waiting for Symbl job %s (%s) to complete before sending the next part (strict order)",
                action.job_id,
                action.uri,
            )
            self.defer(
                trigger=SymblJobTrigger(
                    job_ids=[action.job_id],
                    symbl_conn_id=self.symbl_conn_id,
                    poll_interval=self.poll_interval,
                    end_time=time.time() + self.timeout,
                    # the first poll goes out when the job should be done, not blindly
                    **_hints([action.job_id], [action.media_seconds], [action.accepted_at]),
                ),
                method_name=RESUME_METHOD_NAME,
                kwargs={
                    "checked": checked,
                    "token": writer.token,
                    "running": sorted(running),
                    "waited_for": [action.uri, action.job_id],
                },
                timeout=timedelta(seconds=self.timeout),
            )
        deadline = time.monotonic() + self.timeout
        delay = min(1.0, self.poll_interval)
        while True:
            job = self.hook.get_job(action.job_id)
            if job.is_terminal:
                return job.status
            if time.monotonic() >= deadline:
                raise AirflowException(
                    f"Symbl job {action.job_id} ({action.uri}) did not finish within {self.timeout}s; the next "
                    "part was not sent"
                )
            time.sleep(delay)
            delay = min(delay * 2, self.poll_interval)

    def _wait_for_lease(self, context, action, store, checked, writer, running) -> None:
        if self.on_busy == "fail":
            raise AirflowFailException(
                f"conversation ledger {store.uri} is held by {action.owner} until "
                f"{datetime.fromtimestamp(action.expires_at, tz=UTC):%Y-%m-%d %H:%M:%S} UTC: another run or "
                "deployment is appending to this conversation. Nothing was sent. Run again later, or use "
                "on_busy='wait'."
            )
        wait = max(1.0, min(action.expires_at - time.time() + 1.0, LEASE_RECHECK_SECONDS))
        self.log.info(
            "Conversation ledger %s is held by %s until %s; waiting %.0fs before looking again",
            store.uri,
            action.owner,
            datetime.fromtimestamp(action.expires_at, tz=UTC).isoformat(),
            wait,
        )
        if self.deferrable:
            from airflow.providers.standard.triggers.temporal import DateTimeTrigger

            self.defer(
                trigger=DateTimeTrigger(moment=datetime.now(tz=UTC) + timedelta(seconds=wait)),
                method_name=RESUME_METHOD_NAME,
                kwargs={"checked": checked, "token": writer.token, "running": sorted(running)},
                timeout=timedelta(seconds=self.timeout),
            )
        time.sleep(wait)

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
            raise _Unconfirmed(f"part {index + 1}/{total} {source.uri}: {exc}") from exc
        except (SymblError, VideoSourceError) as exc:
            raise _Refused(
                f"part {index + 1}/{total} {source.uri} was not accepted by Symbl: {exc}. Later parts were not sent.",
                fatal=isinstance(exc, AirflowFailException),
            ) from exc

    # ---------------------------------------------------------------- waiting
    def _wait(self, context: Context, result: dict, full: dict | None = None) -> dict:
        """Wait for ``result["job_ids"]``; return ``full`` (the task's whole result) when given."""
        full = full or result
        if self.deferrable:
            from symbl_airflow.triggers.job import SymblJobTrigger

            self.defer(
                trigger=SymblJobTrigger(
                    job_ids=result["job_ids"],
                    symbl_conn_id=self.symbl_conn_id,
                    poll_interval=self.poll_interval,
                    end_time=time.time() + self.timeout,
                    conversation_id=result["conversation_id"],
                    **_hints(result["job_ids"], result.get("media_seconds"), result.get("accepted_at")),
                ),
                method_name=DEFER_METHOD_NAME,
                kwargs={"result": full},
                timeout=timedelta(seconds=self.timeout),
            )
        deadline = time.monotonic() + self.timeout
        pending = list(result["job_ids"])
        while pending:
            for job_id in list(pending):
                job = self.hook.get_job(job_id)
                if job.is_failed:
                    raise AirflowFailException(f"Symbl job {job_id} of conversation {result['conversation_id']} failed")
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
        return full

    def execute_complete(self, context: Context, event: dict | None = None, result: dict | None = None) -> dict:
        if not event or "status" not in event:
            raise AirflowException(f"SymblJobTrigger returned an invalid event: {event!r}")
        if event["status"] != "success":
            from symbl_airflow.jobs import error_for_event

            sources = dict(zip((result or {}).get("job_ids", []), (result or {}).get("sources", []), strict=False))
            raise error_for_event(event, sources)  # the trigger's message, once; a failed job is final
        self.log.info("%s", event.get("message") or "Symbl jobs completed")
        return result or {
            "conversation_id": event.get("conversation_id"),
            "job_ids": event.get("job_ids", []),
            "sources": [],
        }


class _Refused(AirflowException):
    """Symbl (or S3) definitely refused a part: it was not appended, so a retry may send it again.

    ``fatal``: a retry cannot help (wrong credentials, a Retry-After beyond the budget): fail at once.
    """

    def __init__(self, message: str, *, fatal: bool = False) -> None:
        super().__init__(message)
        self.fatal = fatal


class _Unconfirmed(AirflowException):
    """The whole body may have reached Symbl and no answer came: it may or may not be appended."""


#: Where a writer's lease token waits out a deferral (``dags test`` does not return defer kwargs).
TOKEN_KEY = "symbl_writer_token"


def _saved_token(context) -> str | None:
    store, ti = context.get("task_state_store"), context.get("ti")
    if store is None or ti is None:
        return None
    saved = store.get(TOKEN_KEY)
    if isinstance(saved, dict) and saved.get("try_number") == getattr(ti, "try_number", None):
        return saved.get("token")  # same try, back from a deferral; a new try is a new writer
    return None


def _save_token(context, writer) -> None:
    store, ti = context.get("task_state_store"), context.get("ti")
    if store is not None and ti is not None:
        store.set(TOKEN_KEY, {"token": writer.token, "try_number": writer.try_number})


def _hints(job_ids: list, media_seconds: list | None, accepted_at: list | None) -> dict:
    """``SymblJobTrigger``'s polling hints (job id -> media seconds / acceptance time), where known."""
    media = {j: m for j, m in zip(job_ids, media_seconds or [], strict=False) if m}
    accepted = {j: a for j, a in zip(job_ids, accepted_at or [], strict=False) if a}
    # the task has just looked at these jobs: no poll at once, and without hints a random first phase
    return {"media_seconds": media or None, "submitted_at": accepted or None, "spread_first_poll": True}


def _checked(source) -> dict:
    """What execute() learned of a source, small enough for defer kwargs."""
    return {**source.to_dict(), "media_seconds": getattr(source, "duration_seconds", None)}


def _is_deferral(exc: BaseException) -> bool:
    from airflow.sdk.exceptions import TaskDeferred

    return isinstance(exc, TaskDeferred)


def _unconfirmed_text(ledger, uri: str, store) -> str:
    from symbl_airflow.appends.plan import unconfirmed_message

    part = ledger.part(uri)
    if part is None:
        return f"{uri}: Symbl's answer never arrived."
    return unconfirmed_message(ledger, part, HOW_TO_RESOLVE, cli=store.shared)


class _LeaseKeeper:
    """Renew the writer's lease every third of its length while a (long) upload runs."""

    def __init__(self, store, writer, seconds: float, log) -> None:
        self.store, self.writer, self.seconds, self.log = store, writer, seconds, log
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="symbl-lease-keeper", daemon=True)

    def __enter__(self) -> _LeaseKeeper:
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        from symbl_airflow.appends import ledger as L

        while not self._stop.wait(self.seconds / 3):
            try:
                self.store.update(L.renew(self.writer, self.seconds))
            except Exception:
                self.log.warning("Could not renew the lease on %s", self.store.uri, exc_info=True)
