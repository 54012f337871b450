"""One append execution: its state, and one small method per action the plan can ask for.

``AppendRun`` carries what every step needs (the writer, the ledger store, the Symbl identity, the
checked sources, the jobs seen running) so no step takes a long positional list. The operator's loop
is then the story of the design:

    while not isinstance(action := run.plan(), Done):
        outcome = run.step(action)
        if outcome.deferral:
            operator.defer(...)

A step does its I/O and its ledger write and returns an :class:`Outcome`; waits that hold no worker
slot come back as a :class:`Deferral` the operator raises. Nothing here knows about Airflow's task
instance beyond the writer's identity and the task state store.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from airflow.sdk.exceptions import AirflowException, AirflowFailException

from symbl_airflow.appends import ledger as L
from symbl_airflow.appends import messages
from symbl_airflow.appends import plan as P
from symbl_airflow.appends.lease import LeaseKeeper
from symbl_airflow.errors import (
    SymblAmbiguousSubmissionError,
    SymblError,
    SymblNotFoundError,
    SymblPartRefusedError,
    SymblPartUnconfirmedError,
    SymblUploadAbortedError,
)
from symbl_airflow.media import MediaSourceError, Segment, segment_uri
from symbl_airflow.media.errors import UndecodableMediaError
from symbl_airflow.media.ffmpeg import FfmpegError

#: Errors that mean the media itself cannot be read: the conversation stops there.
UNDECODABLE = (UndecodableMediaError, FfmpegError)

if TYPE_CHECKING:
    from symbl_airflow.appends.stores import LedgerStore
    from symbl_airflow.hooks import SymblHook

#: The operator method a deferral between parts (or for a busy conversation) resumes in.
RESUME_METHOD_NAME = "resume_append"
#: Longest single deferral while another writer holds the conversation (then the ledger is re-read).
LEASE_RECHECK_SECONDS = 30.0
#: Where a writer's lease token waits out a deferral (``dags test`` does not return defer kwargs), with the
#: tokens of this task instance's earlier tries (the proof that inherits their lease) and the conversation
#: it saw in the ledger.
TOKEN_KEY = "symbl_writer_token"
#: Task instance states in which a sender may still be uploading.
LIVE_TASK_STATES = ("running", "deferred", "queued", "scheduled", "restarting", "up_for_reschedule")


@dataclass(frozen=True)
class Settings:
    """The operator's validated parameters, as the engine needs them."""

    symbl_conn_id: str = "symbl_default"
    conversation_id: str | None = None
    on_unconfirmed: str = "fail"
    on_busy: str = "wait"
    part_order: str = "natural"
    strict_order: bool = True
    deferrable: bool = False
    poll_interval: float = 10.0
    timeout: float = 6 * 3600
    lease_seconds: float = L.DEFAULT_LEASE_SECONDS
    upload_mode: str = "stream"
    presign_expires_in: int = 3600
    chunk_size: int = 1 << 20
    options: Any = None
    #: Longer parts are cut into consecutive segments (``on_too_long="split"``) or refused (``"fail"``).
    max_part_seconds: float = 14_400
    on_too_long: str = "split"


@dataclass(frozen=True)
class Checked:
    """One source as ``execute`` checked it: small and JSON-safe, carried through deferrals."""

    uri: str
    etag: str
    size: int
    media_seconds: float | None = None
    kind: str = "video"
    endpoint: str = "video"
    content_type: str = "video/mp4"
    member: str = "mp4"
    needs_conversion: bool = False
    segments: tuple[Segment, ...] = ()
    #: Media that cannot be decoded (why): reached in order, it stops the conversation like a failed job.
    undecodable: str | None = None
    #: Not a recording (why): never a part, only named in the log and the XCom's ``ignored``.
    ignored: str | None = None

    @classmethod
    def of(cls, source) -> Checked:
        """From a checked ``S3VideoSource`` (``symbl_airflow.sources.inspect_source``)."""
        found = source.inspection
        if found is None:
            return cls(source.uri, source.etag, source.size, source.duration_seconds)
        return cls(
            source.uri,
            source.etag,
            source.size,
            found.media_seconds,
            found.kind,
            found.endpoint,
            found.content_type,
            found.member,
            found.needs_conversion,
            found.segments,
        )

    def to_dict(self) -> dict:
        data = {
            "uri": self.uri,
            "size": self.size,
            "etag": self.etag,
            "media_seconds": self.media_seconds,
            "kind": self.kind,
            "endpoint": self.endpoint,
            "content_type": self.content_type,
            "member": self.member,
        }
        if self.needs_conversion:
            data["needs_conversion"] = True
        if self.segments:
            data["segments"] = [[s.index, s.start_seconds, s.end_seconds] for s in self.segments]
        if self.undecodable:
            data["undecodable"] = self.undecodable
        if self.ignored:
            data["ignored"] = self.ignored
        return data

    @classmethod
    def from_dict(cls, data: dict) -> Checked:
        """Also what 0.2 deferrals carry (uri, size, etag, media_seconds: an MP4 video)."""
        return cls(
            uri=data["uri"],
            etag=data["etag"],
            size=int(data["size"]),
            media_seconds=data.get("media_seconds"),
            kind=data.get("kind", "video"),
            endpoint=data.get("endpoint", "video"),
            content_type=data.get("content_type", "video/mp4"),
            member=data.get("member", "mp4"),
            needs_conversion=bool(data.get("needs_conversion")),
            segments=tuple(Segment(int(i), float(a), float(b)) for i, a, b in data.get("segments") or ()),
            undecodable=data.get("undecodable"),
            ignored=data.get("ignored"),
        )

    def parts(self) -> list[tuple[str, Segment | None]]:
        """The ledger keys this object is sent as: itself, or one per segment (none: not a recording)."""
        if self.ignored:
            return []
        if not self.segments:
            return [(self.uri, None)]
        return [(segment_uri(self.uri, s.index), s) for s in self.segments]


@dataclass(frozen=True)
class Deferral:
    trigger: Any
    method_name: str
    kwargs: dict
    timeout: timedelta


@dataclass(frozen=True)
class Outcome:
    """What a step left for the operator: nothing, or a deferral to raise."""

    deferral: Deferral | None = None


CONTINUE = Outcome()


@dataclass
class AppendRun:
    """One execution's state; ``plan()`` then ``step(action)`` until ``Done``."""

    hook: SymblHook
    s3_hook: Any
    store: LedgerStore
    writer: L.Writer
    identity: dict
    checked: list[Checked]
    settings: Settings
    log: Any
    running: set[str] = field(default_factory=set)
    #: called with the conversation id once it exists (the operator stores its link)
    on_conversation: Callable[[str | None], None] = lambda conversation_id: None
    ledger: L.Ledger | None = None
    current: P.Plan | None = None
    #: parts sent by this execution, in order
    sent: list[str] = field(default_factory=list)
    #: the conversation this task instance saw in the ledger (None: none yet), and whether the ledger existed;
    #: a ledger that vanishes or changes conversation under it stops it (``L.expect_same``)
    seen_conversation: str | None = None
    seen_exists: bool = False
    #: the Airflow state of a sender's task instance (``part.sender``), where this deployment can tell
    sender_state: Callable[[dict], str | None] = lambda sender: None
    _warned_new_conversation: bool = False

    # ---------------------------------------------------------------- state
    def __post_init__(self) -> None:
        self.running = set(self.running)
        self._by_part = {uri: (c, seg) for c in self.checked for uri, seg in c.parts()}
        self.ignored = [{"uri": c.uri, "reason": c.ignored} for c in self.checked if c.ignored]
        self.sources = [P.Source(uri, c.etag, c.size if seg is None else 0) for uri, (c, seg) in self._by_part.items()]

    @property
    def uris(self) -> set[str]:
        return set(self._by_part)

    def load(self) -> L.Ledger:
        try:
            ledger = self.store.load()
            if self.store.shared:
                L.expect_same(self.seen_conversation, self.seen_exists)(ledger)
        except L.LedgerError as exc:
            raise AirflowFailException(str(exc)) from None
        self._saw(ledger)
        if self.ledger.upgraded_from:
            self.log.info(
                "Ledger %s is version %s; it is upgraded to version 2 on the next write",
                self.store.uri,
                self.ledger.upgraded_from,
            )
        return self.ledger

    def update(self, *mutations) -> L.Ledger:
        """Apply ``mutations`` (re-read and re-applied on a conflict), never over a replaced ledger."""
        if self.store.shared:
            mutations = (L.expect_same(self.seen_conversation, self.seen_exists), *mutations)
        try:
            ledger = self.store.update(*mutations, ledger=self.ledger)
        except L.LedgerReplaced as exc:
            raise AirflowFailException(str(exc)) from None
        self._saw(ledger)
        return ledger

    def _saw(self, ledger: L.Ledger) -> None:
        self.ledger = ledger
        self.seen_exists = self.seen_exists or ledger.exists
        self.seen_conversation = ledger.conversation_id or self.seen_conversation

    def job_done(self, uri: str | None, job_id: str, status: str) -> None:
        """Record a job's outcome that a wait (deferred or not) saw."""
        self.running.discard(job_id)
        uri = uri or next((p.uri for p in self.ledger.parts if p.job_id == job_id), None)
        self.update(L.job_finished(uri, job_id, status))

    # ---------------------------------------------------------------- the loop
    def plan(self) -> P.Action:
        self.current = P.plan_appends(
            self.ledger,
            self.sources,
            writer=self.writer,
            now=time.time(),
            symbl=self.identity,
            conversation_id=self.settings.conversation_id,
            on_unconfirmed=self.settings.on_unconfirmed,
            strict_order=self.settings.strict_order,
            key_order=self.store.shared,
            part_order=self.settings.part_order,
            running=self.running,
            how_to_resolve=messages.HOW_TO_RESOLVE,
        )
        return self.current.action

    def step(self, action: P.Action) -> Outcome:
        handler = {
            P.Refuse: self.refuse,
            P.WaitForLease: self.wait_for_lease,
            P.Settle: self.settle,
            P.CheckJobs: self.check_jobs,
            P.WaitForJob: self.wait_for_job,
            P.Send: self.send,
        }[type(action)]
        return handler(action)

    # ---------------------------------------------------------------- one method per action
    def refuse(self, action: P.Refuse) -> Outcome:
        raise AirflowFailException(action.message)

    def wait_for_lease(self, action: P.WaitForLease) -> Outcome:
        if self.settings.on_busy == "fail":
            raise AirflowFailException(messages.lease_busy(self.store.uri, action.owner, action.expires_at))
        wait = max(1.0, min(action.expires_at - time.time() + 1.0, LEASE_RECHECK_SECONDS))
        self.log.info(
            "Conversation ledger %s is held by %s until %s; waiting %.0fs before looking again",
            self.store.uri,
            action.owner,
            datetime.fromtimestamp(action.expires_at, tz=UTC).isoformat(),
            wait,
        )
        if self.settings.deferrable:
            from airflow.providers.standard.triggers.temporal import DateTimeTrigger

            return Outcome(
                Deferral(
                    DateTimeTrigger(moment=datetime.now(tz=UTC) + timedelta(seconds=wait)),
                    RESUME_METHOD_NAME,
                    self.resume_kwargs(),
                    timedelta(seconds=self.settings.timeout),
                )
            )
        time.sleep(wait)
        self.load()
        return CONTINUE

    def settle(self, action: P.Settle) -> Outcome:
        if action.resolution == "resend":
            part = self.ledger.part(action.uri)
            sender = part.sender if part else {}
            same_task = tuple(sender.get(k) for k in ("dag_id", "run_id", "task_id", "map_index")) == (
                self.writer.task_key
            )
            state = None if same_task else self.sender_state(sender)
            if state in LIVE_TASK_STATES:
                raise AirflowFailException(messages.resend_while_sender_runs(part, state))
        self.update(
            L.bind_symbl(self.identity),
            L.acquire(self.writer, self.settings.lease_seconds),
            L.resolve_unconfirmed(self.writer, action.uri, action.resolution),
        )
        self.log.warning("%s", messages.settled(action.uri, action.resolution))
        return CONTINUE

    def check_jobs(self, action: P.CheckJobs) -> Outcome:
        updates = []
        for uri, job_id in action.jobs:
            try:
                job = self.hook.get_job(job_id)
            except SymblNotFoundError:
                raise AirflowFailException(
                    messages.unknown_job(job_id, uri, self.ledger, self.store.uri, self.settings.symbl_conn_id)
                ) from None
            if job.is_terminal:
                updates.append(L.job_finished(uri, job_id, job.status))
                if job.is_failed:
                    self.log.error("Symbl job %s of %s failed", job_id, uri)
            else:
                self.running.add(job_id)
        if updates:
            self.update(*updates)
        return CONTINUE

    def wait_for_job(self, action: P.WaitForJob) -> Outcome:
        """Strict order: the previous part's job must complete first; deferred, or polled here."""
        try:  # hold the conversation while its previous job runs: the next send is ours
            self.update(L.acquire(self.writer, self.settings.lease_seconds + self.settings.poll_interval * 3))
        except L.LeaseBusy:
            self.load()
            return CONTINUE
        if self.settings.deferrable:
            from symbl_airflow.triggers.job import SymblJobTrigger

            self.log.info(
                "Waiting for Symbl job %s (%s) to complete before sending the next part (strict order)",
                action.job_id,
                action.uri,
            )
            trigger = SymblJobTrigger.for_jobs(
                [action.job_id],
                symbl_conn_id=self.settings.symbl_conn_id,
                poll_interval=self.settings.poll_interval,
                timeout=self.settings.timeout,
                media_seconds=[action.media_seconds],
                accepted_at=[action.accepted_at],
            )
            kwargs = {**self.resume_kwargs(), "waited_for": [action.uri, action.job_id]}
            return Outcome(Deferral(trigger, RESUME_METHOD_NAME, kwargs, timedelta(seconds=self.settings.timeout)))
        statuses = self.hook.wait_for_jobs(
            [action.job_id],
            timeout=self.settings.timeout,
            poll_interval=self.settings.poll_interval,
            describe_jobs=f"Symbl job {action.job_id} ({action.uri}, before the next part)",
        )
        self.job_done(action.uri, action.job_id, statuses[action.job_id])
        return CONTINUE

    def send(self, action: P.Send) -> Outcome:
        checked, segment = self._by_part[action.source.uri]
        try:
            self.update(
                L.bind_symbl(self.identity),
                L.acquire(self.writer, self.settings.lease_seconds),
                L.intent(
                    self.writer,
                    action.source.uri,
                    action.source.etag,
                    action.source.size,
                    media_seconds=segment.seconds if segment else checked.media_seconds,
                    part_order=self.settings.part_order,
                ),
            )
        except L.LeaseBusy:
            self.load()
            return CONTINUE
        if action.conversation_id is None and not self.store.shared and not self._warned_new_conversation:
            self._warned_new_conversation = True
            self.log.warning("%s", messages.NEW_CONVERSATION_WITHOUT_LEDGER)
        self._send(action, checked, segment)
        self.running.add(self.ledger.part(action.source.uri).job_id)
        self.sent.append(action.source.uri)
        self.on_conversation(self.ledger.conversation_id)
        return CONTINUE

    # ---------------------------------------------------------------- sending one part
    def _send(self, action: P.Send, checked: Checked, segment: Segment | None) -> None:
        """Send one part (its intent is already in the ledger) and record Symbl's answer."""
        uri = action.source.uri
        created = action.conversation_id is None
        if checked.undecodable:
            self._stop_undecodable(uri, checked.undecodable)
        try:
            # Only a shared ledger has a lease to keep (and task-state writes must stay on the task's thread).
            keeper = (
                LeaseKeeper(self.store, self.writer, self.settings.lease_seconds, self.log)
                if self.store.shared
                else nullcontext()
            )
            with keeper:
                submission = self._submit(action, checked, segment, guard=getattr(keeper, "check", None))
        except SymblUploadAbortedError as exc:
            # a body cut short is never accepted: the intent can go, whoever holds the lease now
            self.store.update(L.withdraw(self.writer, uri))
            lease = self.store.load().lease
            holder = lease.owner if lease and not lease.held_by(self.writer) else None
            raise AirflowException(messages.lease_lost_mid_upload(uri, exc.message, holder)) from None
        except SymblPartRefusedError as exc:
            if isinstance(exc.__cause__, UNDECODABLE):  # found while converting or cutting it
                self._stop_undecodable(uri, getattr(exc.__cause__, "reason", None) or str(exc.__cause__))
            self.store.update(L.withdraw(self.writer, uri), L.release(self.writer))
            if exc.fatal:
                raise AirflowFailException(str(exc)) from None
            # the message already carries the cause: one traceback in the task log, not two
            exc.__cause__, exc.__suppress_context__ = None, True
            raise exc
        except SymblPartUnconfirmedError as exc:
            cause = exc.__cause__
            status = getattr(cause, "status", None)
            what = f"HTTP {status} after the whole body was sent" if status else "no answer after the body was sent"
            detail = f" [{getattr(cause, 'method', '')} {getattr(cause, 'endpoint', '')}: {what}]"
            message = _unconfirmed_text(self.store.load(), uri, self.store, self.settings.symbl_conn_id) + detail
            if self.settings.on_unconfirmed == "fail":
                raise AirflowFailException(message) from None  # a retry could only stop the same way
            raise AirflowException(
                f"{message} A retry settles it as on_unconfirmed={self.settings.on_unconfirmed!r}."
            ) from None
        # Recorded however the ledger looks now (an acceptance is never dropped): on this writer's intent, or
        # as an orphan that stops the conversation (no lease needed: Symbl's answer is a fact)
        try:
            ledger = self.store.update(
                L.accepted_or_orphan(self.writer, uri, submission.conversation_id, submission.job_id)
            )
        except L.LedgerReplaced as exc:  # the ledger vanished under the upload: say what Symbl took
            raise AirflowFailException(str(exc)) from None
        orphan = next((o for o in ledger.orphans if o.get("job_id") == submission.job_id), None)
        if orphan is not None:
            self.ledger = ledger
            raise AirflowFailException(messages.duplicate(ledger, orphan))
        self._saw(ledger)
        self.log.info(
            "Part %d/%d %s accepted: conversation %s, job %s (%s)",
            action.index + 1,
            len(self.sources),
            uri,
            submission.conversation_id,
            submission.job_id,
            "new conversation" if created else "append",
        )

    def _stop_undecodable(self, uri: str, reason: str) -> None:
        """Media that cannot be decoded stops the conversation like a failed job, for every later run too."""
        self.ledger = self.store.update(L.undecodable(self.writer, uri, reason), L.release(self.writer))
        raise AirflowFailException(messages.stopped(self.ledger, []))

    def _submit(self, action: P.Send, checked: Checked, segment: Segment | None, guard=None):
        from symbl_airflow.media import load_members, member
        from symbl_airflow.sources import ProgressLogger, S3VideoSource, body_opener, parse_s3_uri, presigned_url

        settings = self.settings
        index, total = action.index, len(self.sources)
        uri = action.source.uri
        bucket, key = parse_s3_uri(checked.uri)
        source = S3VideoSource(uri=checked.uri, bucket=bucket, key=key, size=checked.size, etag=checked.etag)
        doing = (
            f"appending to conversation {action.conversation_id}"
            if action.conversation_id
            else "creating a conversation"
        )
        self.log.info(
            "Sending part %d/%d %s (%.1f MiB, %s, mode=%s)",
            index + 1,
            total,
            uri,
            checked.size / 1048576,
            doing,
            settings.upload_mode,
        )
        try:
            if settings.upload_mode == "url":
                return self.hook.submit_media_url(
                    checked.endpoint,
                    presigned_url(self.s3_hook, source, settings.presign_expires_in),
                    conversation_id=action.conversation_id,
                    options=settings.options,
                )
            load_members()
            media = member(checked.member)
            inspection = _inspection(checked)
            opener = body_opener(self.s3_hook, source)
            with media.payload(opener, checked.size, inspection, segment, uri=checked.uri) as payload:
                return self.hook.submit_media(
                    getattr(payload, "endpoint", None) or checked.endpoint,
                    payload.open,
                    payload.length,
                    conversation_id=action.conversation_id,
                    options=settings.options,
                    content_type=payload.content_type,
                    chunk_size=settings.chunk_size,
                    on_progress=ProgressLogger(self.log, uri, payload.length),
                    guard=guard,
                )
        except SymblAmbiguousSubmissionError as exc:
            raise SymblPartUnconfirmedError(f"part {index + 1}/{total} {uri}: {exc}") from exc
        except SymblUploadAbortedError:
            raise
        except SymblNotFoundError as exc:
            if action.conversation_id:  # the ledger's conversation is gone: no retry can change that
                raise SymblPartRefusedError(
                    messages.unknown_conversation(action.conversation_id, self.store.uri, settings.symbl_conn_id),
                    fatal=True,
                ) from exc
            raise SymblPartRefusedError(messages.not_accepted(index, total, uri, exc)) from exc
        except (SymblError, MediaSourceError) as exc:
            raise SymblPartRefusedError(
                messages.not_accepted(index, total, uri, exc), fatal=isinstance(exc, AirflowFailException)
            ) from exc

    # ---------------------------------------------------------------- the end
    def finish(self) -> L.Ledger:
        """Report what was not sent and why, record late parts, give the lease back."""
        plan, ledger = self.current, self.ledger
        mine = self.sent_by_this_task()
        for uri in plan.already:
            part = ledger.part(uri)
            if uri in mine:
                self.log.info("%s appended in this task (job %s)", uri, part.job_id)
            else:
                sender = (part.sender or {}).get("run_id") or "an earlier writer"
                self.log.info(
                    "%s was already in conversation %s (appended by %s); not sent again",
                    uri,
                    ledger.conversation_id,
                    sender,
                )
        for uri in plan.changed:
            self.log.warning("%s", messages.changed(uri, ledger.part(uri).etag))
        for uri in plan.late:
            self.log.warning("%s", messages.late(uri, ledger.conversation_id, self.store.uri))
        new_late = {uri: "" for uri in plan.late if uri not in ledger.late}
        mutations = []
        if new_late and self.store.shared:
            mutations.append(L.record_late(new_late))
        if ledger.lease and (ledger.lease.held_by(self.writer) or ledger.lease.inherited_by(self.writer)):
            mutations.append(L.release(self.writer))
        if mutations:
            self.update(*mutations)
        # No link here: a task that appended nothing makes no Symbl call (``send`` asks once a part is in).
        return self.ledger

    def release_quietly(self) -> None:
        try:
            self.store.update(L.release(self.writer))
        except Exception:  # the lease then simply expires
            self.log.warning("Could not release the lease on %s; it expires by itself", self.store.uri, exc_info=True)

    def sent_by_this_task(self) -> set[str]:
        """Parts this task instance sent (any try; outside a task instance: this execution)."""
        writer = self.writer

        def mine(part) -> bool:
            if not writer.run_id:
                return part.sender.get("token") == writer.token
            return tuple(part.sender.get(k) for k in ("dag_id", "run_id", "task_id", "map_index")) == writer.task_key

        return {p.uri for p in self.ledger.parts if p.job_id and p.uri in self._by_part and mine(p)}

    def result(self, ledger_uri: str | None) -> dict:
        """The task's XCom: the parts this task instance appended, aligned lists."""
        mine = self.sent_by_this_task()
        parts = [p for p in self.ledger.parts if p.uri in mine]
        result = {
            "conversation_id": self.ledger.conversation_id,
            "job_ids": [p.job_id for p in parts],
            "sources": [p.uri for p in parts],
            # when each job can be expected done: the sensor's trigger polls then, not blindly
            "media_seconds": [p.media_seconds for p in parts],
            "accepted_at": [p.accepted_at for p in parts],
            # sources that are not recordings (text, captions, images, ...): never parts
            "ignored": self.ignored,
        }
        if self.store.shared:
            plan = self.current
            result.update(
                ledger_uri=ledger_uri,
                skipped=[uri for uri in plan.already if uri not in result["sources"]],
                changed=plan.changed,
                late=plan.late,
            )
        return result

    def resume_kwargs(self) -> dict:
        return {
            "checked": [c.to_dict() for c in self.checked],
            "token": self.writer.token,
            "running": sorted(self.running),
        }

    def remember(self, context) -> None:
        """Keep the writer's token and what it saw in this task instance's state (across deferrals and tries)."""
        save_writer_state(context, self)


def _inspection(checked: Checked):
    from symbl_airflow.media import Inspection

    return Inspection(
        kind=checked.kind,
        endpoint=checked.endpoint,
        content_type=checked.content_type,
        media_seconds=checked.media_seconds,
        needs_conversion=checked.needs_conversion,
        segments=checked.segments,
        member=checked.member,
    )


def _unconfirmed_text(ledger: L.Ledger, uri: str, store, conn_id: str) -> str:
    from symbl_airflow.polling import rate_estimator

    part = ledger.part(uri)
    if part is None:
        return f"{uri}: Symbl's answer never arrived."
    rate = rate_estimator(conn_id).upper.rate
    return messages.unconfirmed(ledger, part, messages.HOW_TO_RESOLVE, cli=store.shared, rate=rate)


# ---------------------------------------------------------------- the writer across deferrals and tries
def saved_writer_state(context) -> dict:
    """``{"token", "inherits", "conversation_id"}`` from this task instance's task state store.

    The same try (back from a deferral) keeps its token; a new try gets a new token and inherits the
    earlier tries' ones: the proof that a lease they held may be taken over at once.
    """
    store, ti = context.get("task_state_store"), context.get("ti")
    if store is None or ti is None:
        return {}
    saved = store.get(TOKEN_KEY)
    if not isinstance(saved, dict):
        return {}
    earlier = [t for t in saved.get("earlier") or [] if isinstance(t, str)]
    state = {"conversation_id": saved.get("conversation_id"), "existed": bool(saved.get("existed"))}
    if saved.get("try_number") == getattr(ti, "try_number", None):
        return {**state, "token": saved.get("token"), "inherits": tuple(earlier)}
    return {**state, "token": None, "inherits": tuple([*earlier, saved.get("token")][-20:])}


def save_writer_state(context, run: AppendRun) -> None:
    store, ti = context.get("task_state_store"), context.get("ti")
    if store is None or ti is None:
        return
    store.set(
        TOKEN_KEY,
        {
            "token": run.writer.token,
            "try_number": run.writer.try_number,
            "earlier": list(run.writer.inherits),
            "conversation_id": run.seen_conversation,
            "existed": run.seen_exists,
        },
    )
