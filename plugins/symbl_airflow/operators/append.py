"""SymblAppendVideoOperator: S3 recordings -> one Symbl conversation, in order, exactly once.

The first part of a conversation is POSTed (Symbl creates the conversation), every further one is
PUT to ``/v1/process/{video|audio}/{conversationId}``: the API is chosen by the media's content
(:mod:`symbl_airflow.media`). What was sent where lives in a per-conversation
*ledger* (``symbl_airflow.ledger``): an S3 object shared by every run, task and deployment when
``ledger_uri`` is given, else the task instance's ``task_state_store`` (retries of one task only).
The operator holds parameters, validation, defer and resume; the work is the append engine's
(:mod:`symbl_airflow.appends`): load the ledger, plan the next step, do it, repeat.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator, conf
from airflow.sdk.exceptions import AirflowException, AirflowFailException

from symbl_airflow.hooks.upload import DEFAULT_CHUNK_SIZE
from symbl_airflow.links import SymblConversationLink
from symbl_airflow.options import OPTION_NAMES
from symbl_airflow.ordering import KEY, check_part_order, is_sorted, sorted_parts
from symbl_airflow.templating import parse_rendered

if TYPE_CHECKING:
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook
    from airflow.sdk import Context

    from symbl_airflow.appends.run import AppendRun, Checked, Settings
    from symbl_airflow.appends.stores import LedgerStore
    from symbl_airflow.hooks import SymblHook

UPLOAD_MODES = ("stream", "url")
#: ``mark_sent``: the part IS in Symbl; ``resend``: it is not. (``skip``, the 0.2 spelling of ``mark_sent``,
#: still works with a deprecation warning.)
ON_UNCONFIRMED = ("fail", "resend", "mark_sent")
ON_BUSY = ("wait", "fail")
ON_TOO_LONG = ("split", "fail")
#: Symbl's longest file: 4 hours.
DEFAULT_MAX_PART_SECONDS = 14_400
DEFER_METHOD_NAME = "execute_complete"
RESUME_METHOD_NAME = "resume_append"


class SymblAppendVideoOperator(BaseOperator):
    """
    Append recordings from S3 to a Symbl conversation, strictly in order, each exactly once.

    Each source is recognised by its content: MP4 video goes to the video API, the audio formats Symbl's
    audio API takes go there as they are, other containers are converted (``symbl-airflow[media]``),
    parts over ``max_part_seconds`` are cut into segments; objects that are not recordings are named in
    the log and the XCom's ``ignored``.

    :param source: ``s3://bucket/key.mp4`` (or ``.m4a``, ``.wav``, ``.webm`` ...) or a list of them, appended
        in list order (with a ``ledger_uri``: in ``part_order``, which the list must follow). (templated)
    :param conversation_id: Symbl conversation to append to; None or empty creates a new conversation
        with the first video (POST), or continues the ledger's. (templated)
    :param ledger_uri: ``s3://.../_symbl.json``: the conversation's ledger, shared by every run, task and
        deployment that appends to it. With it: parts already in the conversation are skipped, a part is
        recorded as *sending* before its first byte and as *accepted* right after, one writer at a time
        (a lease), no part after a failed job, ``part_order`` is append order (a late part is reported,
        never appended). Without it the same record lives in this task instance's ``task_state_store``, which
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
    :param wait_for_completion: also wait for the jobs of the parts this task sent; their outcome is
        written to the ledger, and a failed job fails the task.
    :param deferrable: wait (between parts, for a busy conversation, for completion) in the triggerer.
    :param poll_interval: seconds between job status checks while waiting.
    :param timeout: seconds to wait for jobs, or for another writer's lease, before failing.
    :param on_unconfirmed: a part some earlier attempt sent without learning whether Symbl accepted it
        (worker crash, lost response) blocks its conversation. ``"fail"`` (default) stops and says how
        to check; after checking the conversation in Symbl, ``"resend"`` sends it again (it is missing)
        and ``"mark_sent"`` records it as appended (it is there; ``"skip"`` is its deprecated spelling).
        (templated)
    :param resend_unconfirmed: shorthand for ``on_unconfirmed="resend"``.
    :param on_busy: another live writer holds the conversation: ``"wait"`` (deferred) or ``"fail"``.
    :param part_order: with ``ledger_uri``, the order of the conversation's parts: ``"natural"``
        (default: case-insensitive, digit runs as numbers, so ``Zoom Recording 2`` comes before
        ``Zoom Recording 10``) or ``"key"`` (S3 key order). The ledger records it with the first part
        and that order wins from then on; a ledger from before this parameter keeps key order.
        (templated)
    :param lease_seconds: lease length; renewed every third of it while sending. A crashed writer's
        lease is taken over once it expires; a writer whose lease ran out on its own clock (a pause)
        aborts its upload before the next chunk. (templated)
    :param chunk_size: bytes per chunk when streaming.
    :param max_part_seconds: a part longer than this (Symbl takes at most 4 hours per file) is cut into
        consecutive segments under it, each appended in order and recorded in the ledger as its own part
        (``<uri>#segment=<n>``). (templated)
    :param on_too_long: ``"split"`` (default) cuts such a part; ``"fail"`` refuses it before anything is sent.
        (templated)
    :param symbl_options: the same options as one dict (or a JSON string), e.g. from DAG params;
        keyword options win over it. (templated)
    :param options: Symbl processing options in snake_case (``name``, ``custom_vocabulary``,
        ``confidence_threshold``, ``enable_summary``, ...), given as keyword arguments. (templated)
    :return: ``{"conversation_id": str, "job_ids": [str, ...], "sources": [str, ...]}`` for the parts this
        task instance appended (``job_ids[i]`` belongs to ``sources[i]``; also aligned ``media_seconds``
        and ``accepted_at``, the sensor's polling hints); with a ledger also ``skipped``
        (already in the conversation), ``changed`` (appended before, S3 now holds other bytes: not
        re-sent) and ``late`` (landed after a later part was appended: never appended); ``ignored``
        (``[{"uri", "reason"}]``: sources that are not recordings, never sent).
    """

    template_fields: Sequence[str] = (
        "source",
        "conversation_id",
        "ledger_uri",
        "upload_mode",
        "on_unconfirmed",
        "part_order",
        "lease_seconds",
        "symbl_conn_id",
        "aws_conn_id",
        "symbl_options",
        "options",
        "max_part_seconds",
        "on_too_long",
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
        part_order: str = "natural",
        lease_seconds: float | None = None,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        symbl_options: dict | str | None = None,
        max_part_seconds: float | str = DEFAULT_MAX_PART_SECONDS,
        on_too_long: str = "split",
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
        self.part_order = part_order
        self.max_part_seconds = max_part_seconds
        self.on_too_long = on_too_long
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
    def _validate(self) -> tuple[list[str], Settings]:
        from symbl_airflow.appends.run import Settings
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
        on_unconfirmed = self.on_unconfirmed
        if on_unconfirmed == "skip":
            from symbl_airflow.appends.messages import ON_UNCONFIRMED_SKIP_DEPRECATED

            warnings.warn(ON_UNCONFIRMED_SKIP_DEPRECATED, DeprecationWarning, stacklevel=2)
            self.log.warning("%s", ON_UNCONFIRMED_SKIP_DEPRECATED)
            on_unconfirmed = "mark_sent"
        if on_unconfirmed not in ON_UNCONFIRMED:
            raise AirflowFailException(f"on_unconfirmed must be one of {ON_UNCONFIRMED}, got {self.on_unconfirmed!r}")
        if self.on_busy not in ON_BUSY:
            raise AirflowFailException(f"on_busy must be one of {ON_BUSY}, got {self.on_busy!r}")
        try:
            self.part_order = check_part_order(self.part_order)
        except ValueError as exc:
            raise AirflowFailException(str(exc)) from None
        if self.on_too_long not in ON_TOO_LONG:
            raise AirflowFailException(f"on_too_long must be one of {ON_TOO_LONG}, got {self.on_too_long!r}")
        try:
            max_part_seconds = float(parse_rendered(self.max_part_seconds))
        except (TypeError, ValueError):
            max_part_seconds = float("nan")
        if not max_part_seconds > 0 or isinstance(self.max_part_seconds, bool):
            raise AirflowFailException(
                f"max_part_seconds must be a positive number of seconds (Symbl takes at most "
                f"{DEFAULT_MAX_PART_SECONDS:,} s per file), got {self.max_part_seconds!r}"
            )
        lease_seconds = (
            parse_rendered(self.lease_seconds) if isinstance(self.lease_seconds, str) else self.lease_seconds
        )
        if lease_seconds in ("", "None"):
            lease_seconds = None
        if lease_seconds is not None and not (
            isinstance(lease_seconds, (int, float)) and not isinstance(lease_seconds, bool) and lease_seconds >= 10
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
            if not (is_sorted(keys, self.part_order) or is_sorted(keys, KEY)):  # key: a conversation from before
                raise AirflowFailException(
                    f"with ledger_uri, the list is the append order, but source lists {keys} in neither "
                    f"{self.part_order} nor key order; list them as {sorted_parts(keys, self.part_order)}"
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
        from symbl_airflow.appends.ledger import DEFAULT_LEASE_SECONDS

        settings = Settings(
            symbl_conn_id=self.symbl_conn_id,
            conversation_id=conversation_id,
            on_unconfirmed=on_unconfirmed,
            on_busy=self.on_busy,
            part_order=self.part_order,
            max_part_seconds=max_part_seconds,
            on_too_long=self.on_too_long,
            strict_order=self.strict_order,
            deferrable=self.deferrable,
            poll_interval=self.poll_interval,
            timeout=self.timeout,
            lease_seconds=float(lease_seconds or DEFAULT_LEASE_SECONDS),
            upload_mode=self.upload_mode,
            presign_expires_in=self.presign_expires_in,
            chunk_size=self.chunk_size,
            options=options,
        )
        return sources, settings

    def _inspect_all(self, uris: list[str], settings: Settings) -> list[Checked]:
        """Check every source before anything is sent: what it is (by content), where it goes, how long.

        Not a recording: named in the log and the XCom's ``ignored``, never blocking. Media that cannot be
        decoded: kept in order, it stops the conversation when reached (like a failed job). Anything else
        wrong fails the task with nothing sent.
        """
        from dataclasses import replace

        from symbl_airflow.appends.run import Checked
        from symbl_airflow.media.container import with_segments
        from symbl_airflow.media.errors import NotMediaError, UndecodableMediaError
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
                source = inspect_source(self.s3_hook, uri)
                inspection = with_segments(source.inspection, settings.max_part_seconds, settings.on_too_long, uri)
                checked.append(Checked.of(replace(source, inspection=inspection)))
            except NotMediaError as exc:
                self.log.info("%s is not a recording (%s): not appended", uri, exc.reason)
                checked.append(Checked(uri, "", 0, ignored=exc.reason))
                continue
            except UndecodableMediaError as exc:
                self.log.warning("%s", exc)
                checked.append(Checked(uri, exc.etag, exc.size, undecodable=exc.reason))
                continue
            except VideoSourceError as exc:
                errors.append(str(exc))
                continue
            if inspection.tracks and not inspection.has_audio:
                self.log.warning("%s has no audio track: Symbl will find no speech in it", uri)
        if errors:
            raise AirflowFailException(
                f"{len(errors)} of {len(uris)} source(s) cannot be sent, nothing was sent to Symbl: "
                + "; ".join(errors)
            )
        if self.upload_mode == "url":
            made = [c.uri for c in checked if c.needs_conversion or c.segments]
            if made:
                raise AirflowFailException(
                    f"upload_mode='url' lets Symbl fetch each stored object as it is, but {made} must be converted "
                    "or split before Symbl can take them; use upload_mode='stream'. Nothing was sent to Symbl."
                )
        return checked

    # ---------------------------------------------------------------- execution: plan -> step -> outcome
    def execute(self, context: Context) -> dict:
        uris, settings = self._validate()
        run = self._start(context, self._inspect_all(uris, settings), settings)
        return self._advance(context, run)

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
        from symbl_airflow.appends.run import Checked

        uris, settings = self._validate()
        sources = [Checked.from_dict(c) for c in checked] if checked is not None else self._inspect_all(uris, settings)
        run = self._start(context, sources, settings, token, running)
        if isinstance(event, dict) and "status" in event:  # a job wait (a lease wait's event has no status)
            from symbl_airflow.jobs import decode_event

            uri, job_id, status = _waited_job(decode_event(event), waited_for)
            run.job_done(uri, job_id, status)
        return self._advance(context, run)

    def _start(
        self,
        context: Context,
        checked: list[Checked],
        settings: Settings,
        token: str | None = None,
        running: list[str] | None = None,
    ) -> AppendRun:
        from symbl_airflow.appends.ledger import Writer
        from symbl_airflow.appends.run import AppendRun, save_writer_state, saved_writer_state

        saved = saved_writer_state(context)
        writer = Writer.from_context(context, token or saved.get("token"), inherits=saved.get("inherits", ()))
        run = AppendRun(
            hook=self.hook,
            s3_hook=self.s3_hook,
            store=self._ledger_store(context),
            writer=writer,
            identity={"host": self.hook.config.base_url, "app_id": self.hook.config.app_id},
            checked=checked,
            settings=settings,
            log=self.log,
            running=set(running or ()),
            on_conversation=lambda conversation_id: self._link(context, conversation_id),
            seen_conversation=saved.get("conversation_id"),
            seen_exists=bool(saved.get("existed")),
            sender_state=lambda sender: _task_state(context, sender),
        )
        run.load()
        save_writer_state(context, run)
        return run

    def _advance(self, context: Context, run: AppendRun) -> dict:
        from symbl_airflow.appends.plan import Done

        try:
            while not isinstance(action := run.plan(), Done):
                outcome = run.step(action)
                if outcome.deferral:
                    d = outcome.deferral
                    run.remember(context)
                    self.defer(trigger=d.trigger, method_name=d.method_name, kwargs=d.kwargs, timeout=d.timeout)
            run.finish()
        except BaseException as exc:
            if not _is_deferral(exc):
                run.remember(context)  # a retry must know which conversation this task instance saw
                run.release_quietly()
            raise
        result = run.result(self.ledger_uri)
        if self.wait_for_completion:
            return self._wait_for_completion(context, run, result)
        return result

    # ---------------------------------------------------------------- the final wait
    def _wait_for_completion(self, context: Context, run: AppendRun, result: dict) -> dict:
        """Wait for the jobs this task sent that are not known done; write their outcome to the ledger."""
        mine = set(result["sources"])
        pending = [p for p in run.ledger.parts if p.uri in mine and p.state == "accepted"]
        if not pending:
            return result
        job_ids = [p.job_id for p in pending]
        if self.deferrable:
            from symbl_airflow.triggers.job import SymblJobTrigger

            self.defer(
                trigger=SymblJobTrigger.for_jobs(
                    job_ids,
                    symbl_conn_id=self.symbl_conn_id,
                    poll_interval=self.poll_interval,
                    timeout=self.timeout,
                    conversation_id=result["conversation_id"],
                    media_seconds=[p.media_seconds for p in pending],
                    accepted_at=[p.accepted_at for p in pending],
                ),
                method_name=DEFER_METHOD_NAME,
                kwargs={"result": result},
                timeout=timedelta(seconds=self.timeout),
            )
        statuses = self.hook.wait_for_jobs(
            job_ids,
            timeout=self.timeout,
            poll_interval=self.poll_interval,
            describe_jobs=f"Symbl jobs {job_ids} of conversation {result['conversation_id']}",
        )
        self._record_outcomes(context, result, statuses)
        failed = next((j for j in job_ids if statuses.get(j) == "failed"), None)
        if failed:
            from symbl_airflow.jobs import job_failed_error

            sources = dict(zip(result["job_ids"], result["sources"], strict=False))
            raise job_failed_error(failed, result["conversation_id"], sources.get(failed))
        self.log.info("All %d job(s) of conversation %s completed", len(job_ids), result["conversation_id"])
        return result

    def execute_complete(self, context: Context, event: dict | None = None, result: dict | None = None) -> dict:
        from symbl_airflow.jobs import decode_event, error_for_event

        result = result or {}
        event = decode_event(event, result.get("job_ids"), result.get("conversation_id"))
        self._record_outcomes(context, result, event.get("statuses") or {})
        if event["status"] != "success":
            sources = dict(zip(result.get("job_ids", []), result.get("sources", []), strict=False))
            raise error_for_event(event, sources)  # the trigger's message, once; a failed job is final
        self.log.info("%s", event.get("message") or "Symbl jobs completed")
        return result or {"conversation_id": event.get("conversation_id"), "job_ids": event["job_ids"], "sources": []}

    def _record_outcomes(self, context: Context, result: dict, statuses: dict) -> None:
        """Write what the final wait saw (completed / failed) to the ledger, so it never says "accepted" after."""
        from symbl_airflow.appends.outcomes import record_job_outcomes

        mine = set(result.get("job_ids") or [])
        try:
            record_job_outcomes(self._ledger_store(context), {j: s for j, s in statuses.items() if j in mine})
        except Exception:  # the next run reads the outcome from Symbl instead
            self.log.warning("Could not record the jobs' outcome in the ledger", exc_info=True)

    # ---------------------------------------------------------------- plumbing
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
            from symbl_airflow.appends.messages import NO_TASK_STATE

            self.log.warning("%s", NO_TASK_STATE)
        return TaskStateLedgerStore(store)


def _waited_job(event: dict, waited_for: list[str] | None) -> tuple[str | None, str, str]:
    """``(uri, job id, completed | failed)`` of the job a between-parts deferral waited for."""
    job_ids = event.get("job_ids") or []
    uri, job_id = waited_for or (None, job_ids[0] if len(job_ids) == 1 else None)
    status = event.get("status")
    if job_id is None:
        raise AirflowException(f"resumed with an event for unknown jobs: {event!r}")
    if status == "success":
        return uri, job_id, "completed"
    if status == "failed" and event.get("failed_job_id", job_id) == job_id:
        return uri, job_id, "failed"
    raise AirflowException(
        f"waiting for Symbl job {job_id} ({uri or 'previous part'}) before the next part ended with "
        f"{status}: {event.get('message')}"
    )


def _task_state(context: Context, sender: dict) -> str | None:
    """The Airflow state of the task instance that wrote ``sender`` (a ledger part's), if this deployment knows it."""
    ti = context.get("ti")
    get_states = getattr(ti, "get_task_states", None)
    if not (sender and sender.get("dag_id") and sender.get("run_id") and callable(get_states)):
        return None
    try:
        map_index = sender.get("map_index")
        states = get_states(
            dag_id=sender["dag_id"],
            task_ids=[sender.get("task_id")],
            run_ids=[sender["run_id"]],
            map_index=None if map_index in (None, -1) else map_index,
        )
    except Exception:  # another deployment's DAG, or an API this Airflow lacks: Airflow cannot tell
        return None
    found = (states or {}).get(sender["run_id"]) or {}
    state = next(iter(found.values()), None) if found else None
    return str(state) if state else None


def _is_deferral(exc: BaseException) -> bool:
    from airflow.sdk.exceptions import TaskDeferred

    return isinstance(exc, TaskDeferred)
