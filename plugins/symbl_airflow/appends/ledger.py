"""The per-conversation ledger: the single record of which video went where, shared by every writer.

One JSON object per conversation (the pipeline keeps it at ``<conversation folder>/_symbl.json``), read
and written by every run, task and deployment that appends to that conversation. Every change is a
*mutation* applied to a freshly read copy and written back with a conditional PUT (``If-Match`` on the
ledger's ETag, ``If-None-Match: *`` to create it), so concurrent writers never overwrite each other:
the loser re-reads and re-applies, or learns that it must not go on.

What the ledger holds (version 2):

- ``symbl``: the Symbl host and App ID it was written for (a job id means nothing elsewhere);
- ``conversation_id`` and ``parts`` in append order, each with its S3 ETag/size and a ``state``:
  ``sending`` (intent: bytes may be on their way; written before the first byte), ``accepted`` (Symbl
  answered with a job id), ``completed`` / ``failed`` (the job's outcome), ``skipped`` (on purpose);
- ``lease``: the one writer allowed to send (owner identity, random token, expiry), renewed while it
  sends and taken over only after it expires;
- ``stopped``: set when a part's job failed; nothing is appended until a person decides (see the CLI);
- ``late``: parts that landed after a later part was appended (never appended, reported);
- ``start_from``: parts whose key sorts before it belong to an earlier conversation (``restart``).

Version 1 files (written by symbl-airflow 0.1: parts appended, no states) are read and upgraded on the
next write. Where it is stored: :mod:`symbl_airflow.appends.stores`. ``python -m symbl_airflow.ledger``
shows a ledger and settles what needs a person (:mod:`symbl_airflow.appends.cli`).
"""

from __future__ import annotations

import json
import secrets
import socket
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from symbl_airflow.appends import messages
from symbl_airflow.ordering import LEGACY_PART_ORDER, check_part_order, conversation_order, sort_key

LEDGER_FILE_NAME = "_symbl.json"
LEDGER_VERSION = 2
#: Part states. ``sending`` blocks the conversation until its outcome is known.
SENDING, ACCEPTED, COMPLETED, FAILED, SKIPPED = "sending", "accepted", "completed", "failed", "skipped"
PART_STATES = (SENDING, ACCEPTED, COMPLETED, FAILED, SKIPPED)
DEFAULT_LEASE_SECONDS = 300.0
#: Resolutions meaning "the part IS in Symbl" (``sent`` and ``skip``: earlier spellings).
MARK_SENT = ("mark_sent", "sent", "skip")


class LedgerError(ValueError):
    """The ledger cannot be read or does not fit this writer; the message names the file and the fix."""


class LedgerConflict(RuntimeError):
    """Another writer changed the ledger since it was read (the conditional write was refused)."""


class LeaseBusy(RuntimeError):
    """Another live writer holds the conversation's lease."""

    def __init__(self, lease: Lease, uri: str) -> None:
        self.lease = lease
        super().__init__(
            f"conversation ledger {uri} is held by {lease.owner} until {_iso(lease.expires_at)} "
            f"(another run or deployment is appending to this conversation)"
        )


class LeaseLost(RuntimeError):
    """This writer's lease was taken over (it expired): it must stop sending."""


class LedgerReplaced(LedgerError):
    """The ledger this writer had read vanished or now names another conversation: it must stop."""


def _iso(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def _epoch(value: Any) -> float | None:
    if value in (None, ""):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    import calendar

    return float(calendar.timegm(time.strptime(str(value), "%Y-%m-%dT%H:%M:%SZ")))


# ---------------------------------------------------------------------------------------------- identity
@dataclass(frozen=True)
class Writer:
    """Who is writing: the task instance (and try) plus a random token per try.

    The token tells two deployments with identical DAG/run/task ids apart. ``inherits``: the tokens of
    this task instance's earlier tries, as kept in its own ``task_state_store``; a lease held under one
    of them is taken over at once (Airflow runs one try at a time). Equal names prove nothing: two
    deployments running the same DAG share ``scheduled__...`` run ids, never a task state store.
    """

    dag_id: str = ""
    run_id: str = ""
    task_id: str = ""
    map_index: int = -1
    try_number: int = 0
    hostname: str = ""
    token: str = field(default_factory=lambda: secrets.token_hex(8))
    inherits: tuple[str, ...] = field(default=(), compare=False)

    @classmethod
    def from_context(cls, context: Any, token: str | None = None, inherits: tuple[str, ...] = ()) -> Writer:
        ti = context.get("ti") if hasattr(context, "get") else None
        kwargs = {
            "dag_id": str(getattr(ti, "dag_id", "") or ""),
            "run_id": str(getattr(ti, "run_id", "") or ""),
            "task_id": str(getattr(ti, "task_id", "") or ""),
            "map_index": int(getattr(ti, "map_index", -1) if getattr(ti, "map_index", None) is not None else -1),
            "try_number": int(getattr(ti, "try_number", 0) or 0),
            "hostname": socket.gethostname(),
        }
        if token:
            kwargs["token"] = token
        return cls(**kwargs, inherits=tuple(inherits))

    @property
    def task_key(self) -> tuple:
        return (self.dag_id, self.run_id, self.task_id, self.map_index)

    @property
    def label(self) -> str:
        index = f"[{self.map_index}]" if self.map_index >= 0 else ""
        return f"{self.dag_id}/{self.run_id}/{self.task_id}{index} try {self.try_number} on {self.hostname}"

    def to_dict(self) -> dict:
        """What the ledger records of a sender (the inherited tokens stay in the task state)."""
        data = asdict(self)
        data.pop("inherits")
        return data

    @classmethod
    def from_dict(cls, data: dict | None) -> Writer:
        data = dict(data or {})
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})


# ---------------------------------------------------------------------------------------------- records
@dataclass
class Lease:
    owner: str
    token: str
    task: list
    try_number: int
    expires_at: float
    acquired_at: float

    def held_by(self, writer: Writer) -> bool:
        return self.token == writer.token

    def inherited_by(self, writer: Writer) -> bool:
        """Held by an earlier try of ``writer``'s task instance, proven by its token (see ``Writer``)."""
        return bool(self.token) and self.token in writer.inherits

    def to_dict(self) -> dict:
        return {
            "owner": self.owner,
            "token": self.token,
            "task": list(self.task),
            "try_number": self.try_number,
            "expires_at": _iso(self.expires_at),
            "acquired_at": _iso(self.acquired_at),
        }

    @classmethod
    def from_dict(cls, data: dict) -> Lease:
        return cls(
            owner=str(data.get("owner", "")),
            token=str(data.get("token", "")),
            task=list(data.get("task") or []),
            try_number=int(data.get("try_number") or 0),
            expires_at=_epoch(data.get("expires_at")) or 0.0,
            acquired_at=_epoch(data.get("acquired_at")) or 0.0,
        )


@dataclass
class Part:
    uri: str
    seq: int
    etag: str
    size: int
    state: str
    job_id: str | None = None
    sender: dict = field(default_factory=dict)
    sent_at: float | None = None
    accepted_at: float | None = None
    finished_at: float | None = None
    note: str | None = None
    media_seconds: float | None = None  # from the MP4 header: when its job can be expected to finish

    def to_dict(self) -> dict:
        data = {
            "uri": self.uri,
            "seq": self.seq,
            "etag": self.etag,
            "size": self.size,
            "state": self.state,
            "job_id": self.job_id,
            "sender": self.sender,
            "sent_at": _iso(self.sent_at),
            "accepted_at": _iso(self.accepted_at),
            "finished_at": _iso(self.finished_at),
        }
        if self.note:
            data["note"] = self.note
        if self.media_seconds is not None:
            data["media_seconds"] = self.media_seconds
        return data

    @classmethod
    def from_dict(cls, data: dict) -> Part:
        state = data.get("state", ACCEPTED)
        if state not in PART_STATES:
            raise ValueError(f"unknown part state {state!r}")
        return cls(
            uri=str(data["uri"]),
            seq=int(data.get("seq") or 0),
            etag=str(data.get("etag") or ""),
            size=int(data.get("size") or 0),
            state=state,
            job_id=data.get("job_id"),
            sender=dict(data.get("sender") or {}),
            sent_at=_epoch(data.get("sent_at")),
            accepted_at=_epoch(data.get("accepted_at") or data.get("appended_at")),
            finished_at=_epoch(data.get("finished_at")),
            note=data.get("note"),
            media_seconds=data.get("media_seconds"),
        )


@dataclass
class Ledger:
    """One conversation's ledger. ``etag`` is the stored object's, for the next conditional write."""

    uri: str
    conversation_id: str | None = None
    symbl: dict | None = None
    parts: list[Part] = field(default_factory=list)
    lease: Lease | None = None
    stopped: dict | None = None
    late: dict[str, str] = field(default_factory=dict)
    start_from: str | None = None
    #: The order of this conversation's parts (``ordering.PART_ORDERS``), recorded with its first part;
    #: None in ledgers from before it existed, whose conversations were built in key order.
    part_order: str | None = None
    history: list[dict] = field(default_factory=list)
    #: acceptances Symbl gave to a writer that no longer owned the part's intent: duplicates in Symbl
    orphans: list[dict] = field(default_factory=list)
    etag: str | None = None
    exists: bool = False
    upgraded_from: int | None = None

    # -- reading
    def part(self, uri: str) -> Part | None:
        return next((p for p in self.parts if p.uri == uri), None)

    @property
    def last(self) -> Part | None:
        return self.parts[-1] if self.parts else None

    @property
    def order(self) -> str:
        """The order this conversation's parts follow (``part_order``; key order if none was recorded)."""
        return self.part_order or LEGACY_PART_ORDER

    @property
    def last_key(self) -> str | None:
        """The appended part that sorts last in the conversation's order."""
        keys = [p.uri for p in self.parts]
        return max(keys, key=sort_key(self.order)) if keys else None

    def in_scope(self, uri: str, order: str | None = None) -> bool:
        if self.start_from is None:
            return True
        key = sort_key(order or self.order)
        return key(uri) >= key(self.start_from)

    # -- serialising
    def content(self) -> dict:
        """What is stored, but the write time: equal contents need no write."""
        return {
            "version": LEDGER_VERSION,
            "symbl": self.symbl,
            "conversation_id": self.conversation_id,
            "lease": self.lease.to_dict() if self.lease else None,
            "stopped": self.stopped,
            "start_from": self.start_from,
            **({"part_order": self.part_order} if self.part_order else {}),
            "parts": [p.to_dict() for p in self.parts],
            "late": [{"uri": uri, "etag": etag} for uri, etag in sorted(self.late.items())],
            "history": self.history[-50:],
            **({"orphans": self.orphans} if self.orphans else {}),
        }

    def to_json(self) -> str:
        content = self.content()
        return json.dumps(
            {**dict(list(content.items())[:3]), "updated_at": _iso(time.time()), **dict(list(content.items())[3:])},
            indent=2,
        )

    @classmethod
    def parse(cls, uri: str, raw: bytes | str, etag: str | None = None) -> Ledger:
        try:
            data = json.loads(raw)
            if not isinstance(data, dict):
                raise ValueError("not a JSON object")
            version = int(data.get("version") or 1)
            if version > LEDGER_VERSION:
                raise LedgerError(
                    f"conversation ledger {uri} has version {version}, newer than this symbl-airflow understands "
                    f"({LEDGER_VERSION}); upgrade symbl-airflow on every deployment that writes it"
                )
            parts = [Part.from_dict(p) for p in data.get("parts") or []]
            parts.sort(key=lambda p: p.seq)
            lease = Lease.from_dict(data["lease"]) if data.get("lease") else None
            late = {str(item["uri"]): str(item.get("etag") or "") for item in data.get("late") or []}
            part_order = data.get("part_order")
            if part_order is not None:
                part_order = check_part_order(part_order, name=f"conversation ledger {uri}: part_order")
        except LedgerError:
            raise
        except (ValueError, KeyError, TypeError) as exc:
            raise LedgerError(
                f"conversation ledger {uri} is not valid symbl-airflow JSON ({exc}); fix it, or move it aside to make "
                "the next run start a new Symbl conversation for this folder"
            ) from exc
        return cls(
            uri=uri,
            conversation_id=data.get("conversation_id"),
            symbl=data.get("symbl"),
            parts=parts,
            lease=lease,
            stopped=data.get("stopped"),
            late=late,
            start_from=data.get("start_from"),
            part_order=part_order,
            history=list(data.get("history") or []),
            orphans=list(data.get("orphans") or []),
            etag=etag,
            exists=True,
            upgraded_from=version if version < LEDGER_VERSION else None,
        )

    def note(self, event: str, writer: Writer | None = None, **details: Any) -> None:
        self.history.append(
            {"at": _iso(time.time()), "event": event, **({"by": writer.label} if writer else {}), **details}
        )


# ---------------------------------------------------------------------------------------------- mutations
# Each returns a function ``Ledger -> None`` for ``LedgerStore.update``: applied to a fresh copy after a
# conflict, so a mutation must decide from the ledger it is given, never from what was read earlier.


def acquire(writer: Writer, seconds: float, now: Callable[[], float] = time.time) -> Callable[[Ledger], None]:
    def apply(ledger: Ledger) -> None:
        lease, t = ledger.lease, now()
        if lease and not lease.held_by(writer) and not lease.inherited_by(writer) and lease.expires_at > t:
            raise LeaseBusy(lease, ledger.uri)
        if lease is None or not lease.held_by(writer):
            if lease and lease.expires_at <= t:
                ledger.note("lease expired, taken over", writer, previous=lease.owner)
            acquired = t
        else:
            acquired = lease.acquired_at
        ledger.lease = Lease(
            owner=writer.label,
            token=writer.token,
            task=list(writer.task_key),
            try_number=writer.try_number,
            expires_at=t + seconds,
            acquired_at=acquired,
        )

    return apply


def renew(writer: Writer, seconds: float, now: Callable[[], float] = time.time) -> Callable[[Ledger], None]:
    def apply(ledger: Ledger) -> None:
        if not ledger.lease or not ledger.lease.held_by(writer):
            raise LeaseLost(f"the lease on {ledger.uri} is no longer held by {writer.label}")
        ledger.lease.expires_at = now() + seconds

    return apply


def release(writer: Writer) -> Callable[[Ledger], None]:
    """Give the lease back; a dead predecessor's (an earlier try of this task instance) goes too."""

    def apply(ledger: Ledger) -> None:
        if ledger.lease and (ledger.lease.held_by(writer) or ledger.lease.inherited_by(writer)):
            ledger.lease = None

    return apply


def _require_lease(ledger: Ledger, writer: Writer) -> None:
    if not ledger.lease or not ledger.lease.held_by(writer):
        raise LeaseLost(f"the lease on {ledger.uri} is no longer held by {writer.label}")


def bind_symbl(identity: dict) -> Callable[[Ledger], None]:
    def apply(ledger: Ledger) -> None:
        if not ledger.symbl:
            ledger.symbl = dict(identity)

    return apply


def intent(
    writer: Writer,
    uri: str,
    etag: str,
    size: int,
    now=time.time,
    media_seconds: float | None = None,
    part_order: str | None = None,
) -> Callable[[Ledger], None]:
    """Record a part as *sending* before its first byte leaves (the conversation's POST claim included)."""

    def apply(ledger: Ledger) -> None:
        _require_lease(ledger, writer)
        existing = ledger.part(uri)
        if existing and existing.state != SENDING:
            raise LedgerError(f"{uri} is already {existing.state} in {ledger.uri}; refusing to send it again")
        if ledger.part_order is None and part_order:  # written down once: existing conversations keep key order
            ledger.part_order = conversation_order(None, bool(ledger.parts), part_order)
        record = Part(
            uri=uri,
            seq=existing.seq if existing else len(ledger.parts) + 1,
            etag=etag,
            size=size,
            state=SENDING,
            sender=writer.to_dict(),
            sent_at=now(),
            media_seconds=media_seconds,
        )
        if existing:
            ledger.parts[ledger.parts.index(existing)] = record
        else:
            ledger.parts.append(record)

    return apply


def accepted(writer: Writer, uri: str, conversation_id: str, job_id: str, now=time.time) -> Callable[[Ledger], None]:
    def apply(ledger: Ledger) -> None:
        part = ledger.part(uri)
        if part is None or part.state != SENDING or part.sender.get("token") != writer.token:
            raise LedgerError(f"{uri} is not being sent by {writer.label} in {ledger.uri}; cannot record its job")
        if ledger.conversation_id and ledger.conversation_id != conversation_id:
            raise LedgerError(
                f"Symbl put {uri} in conversation {conversation_id}, but {ledger.uri} belongs to "
                f"{ledger.conversation_id}"
            )
        ledger.conversation_id = conversation_id
        part.state, part.job_id, part.accepted_at = ACCEPTED, job_id, now()

    return apply


def withdraw(writer: Writer, uri: str) -> Callable[[Ledger], None]:
    """Remove an intent Symbl definitely refused: nothing was appended, so a later send is safe."""

    def apply(ledger: Ledger) -> None:
        part = ledger.part(uri)
        if part and part.state == SENDING and part.sender.get("token") == writer.token:
            ledger.parts.remove(part)
            for seq, p in enumerate(ledger.parts, start=1):
                p.seq = seq

    return apply


def job_finished(uri: str, job_id: str, status: str, now=time.time) -> Callable[[Ledger], None]:
    def apply(ledger: Ledger) -> None:
        part = ledger.part(uri)
        if part is None or part.job_id != job_id or part.state not in (ACCEPTED, COMPLETED, FAILED):
            return
        part.state = COMPLETED if status == "completed" else FAILED
        part.finished_at = part.finished_at or now()
        if part.state == FAILED and not ledger.stopped:
            ledger.stopped = {"reason": "job_failed", "part": uri, "job_id": job_id, "at": _iso(now())}
            ledger.note("stopped: job failed", part=uri, job_id=job_id)

    return apply


def undecodable(writer: Writer, uri: str, reason: str, now=time.time) -> Callable[[Ledger], None]:
    """Media that cannot be decoded: the part fails without a job and stops the conversation, like a failed
    job (``leave-out`` accepts the hole, ``restart`` begins again from a given part)."""

    def apply(ledger: Ledger) -> None:
        part = ledger.part(uri)
        if part is None or part.state != SENDING or part.sender.get("token") != writer.token:
            raise LedgerError(f"{uri} is not being sent by {writer.label} in {ledger.uri}; cannot record it")
        part.state, part.finished_at, part.note = FAILED, now(), f"cannot be decoded: {reason}"
        if not ledger.stopped:
            ledger.stopped = {"reason": "undecodable", "part": uri, "message": reason, "at": _iso(now())}
        ledger.note("stopped: media cannot be decoded", writer, part=uri)

    return apply


def resolve_unconfirmed(
    writer: Writer, uri: str, action: str, *, job_id: str | None = None, conversation_id: str | None = None
) -> Callable[[Ledger], None]:
    """``resend``: drop the intent so the part is sent again; ``mark_sent`` (or ``sent``/``skip``): Symbl has it."""

    def apply(ledger: Ledger) -> None:
        part = ledger.part(uri)
        if part is None or part.state != SENDING:
            raise LedgerError(f"{uri} is not an unconfirmed part of {ledger.uri}")
        previous = part.sender.get("dag_id"), part.sender.get("run_id"), part.sender.get("task_id")
        if action == "resend":
            ledger.parts.remove(part)
            for seq, p in enumerate(ledger.parts, start=1):
                p.seq = seq
        elif action in MARK_SENT:
            if part.seq == 1 and not (ledger.conversation_id or conversation_id):
                raise LedgerError(messages.conversation_id_unknown(ledger.uri, uri))
            ledger.conversation_id = ledger.conversation_id or conversation_id
            part.state = ACCEPTED if job_id else COMPLETED
            part.job_id = job_id
            part.note = "unconfirmed send confirmed present in Symbl" + ("" if job_id else " (job id unknown)")
        else:
            raise ValueError(f"unknown resolution {action!r}")
        ledger.note(f"unconfirmed part resolved: {action}", writer, part=uri, sender=list(previous))

    return apply


def skip_failed(writer: Writer | None, uri: str) -> Callable[[Ledger], None]:
    """Accept the hole on purpose: the failed part stays out and later parts may follow."""

    def apply(ledger: Ledger) -> None:
        part = ledger.part(uri)
        if part is None or part.state not in (FAILED, SENDING):
            raise LedgerError(f"{uri} is not a failed or unconfirmed part of {ledger.uri}")
        part.state = SKIPPED
        part.note = "skipped on purpose after its job failed" if part.job_id else "skipped on purpose"
        if ledger.stopped and ledger.stopped.get("part") == uri:
            ledger.stopped = None
        ledger.note("part skipped on purpose", writer, part=uri)

    return apply


def expect_same(conversation_id: str | None, existed: bool) -> Callable[[Ledger], None]:
    """Refuse to write over a ledger that vanished, or that now names another conversation, since it was read.

    A writer that had seen conversation C must never go on under a ledger that was deleted, moved
    aside or restarted meanwhile: it would open a second conversation, or append to one it never
    checked. Only a new run starts over (it has seen nothing).
    """

    def apply(ledger: Ledger) -> None:
        if existed and not ledger.exists:
            raise LedgerReplaced(messages.ledger_vanished(ledger.uri, conversation_id))
        if conversation_id and ledger.conversation_id != conversation_id:
            raise LedgerReplaced(messages.ledger_replaced(ledger.uri, conversation_id, ledger.conversation_id))

    return apply


def accepted_or_orphan(
    writer: Writer, uri: str, conversation_id: str, job_id: str, now=time.time
) -> Callable[[Ledger], None]:
    """Symbl's acceptance, recorded either way: on this writer's intent, or as an *orphan* that stops the
    conversation (a duplicate in Symbl: the intent had been taken over, settled or withdrawn meanwhile)."""
    regular = accepted(writer, uri, conversation_id, job_id, now)

    def apply(ledger: Ledger) -> None:
        part = ledger.part(uri)
        ours = part is not None and part.state == SENDING and part.sender.get("token") == writer.token
        if ours and (not ledger.conversation_id or ledger.conversation_id == conversation_id):
            regular(ledger)
            return
        orphan = {
            "part": uri,
            "job_id": job_id,
            "conversation_id": conversation_id,
            "writer": writer.label,
            "at": _iso(now()),
            "ledger_part_state": part.state if part else None,
        }
        if not ledger.exists:
            raise LedgerReplaced(messages.ledger_vanished(ledger.uri, conversation_id, orphan=orphan))
        ledger.orphans.append(orphan)
        elsewhere = ledger.conversation_id and ledger.conversation_id != conversation_id
        if not ledger.stopped and not elsewhere:  # in another conversation it is no duplicate of this one
            ledger.stopped = {"reason": "duplicate", "part": uri, "job_id": job_id, "at": orphan["at"]}
        ledger.note(
            "stopped: an acceptance arrived for an intent this writer no longer owned",
            writer,
            part=uri,
            job_id=job_id,
            conversation_id=conversation_id,
        )

    return apply


def accept_duplicate(writer: Writer | None, job_id: str) -> Callable[[Ledger], None]:
    """A person keeps the conversation with its duplicate: the stop it caused is lifted (the record stays)."""

    def apply(ledger: Ledger) -> None:
        orphan = next((o for o in ledger.orphans if o.get("job_id") == job_id), None)
        if orphan is None:
            raise LedgerError(f"{ledger.uri} records no duplicate acceptance with job {job_id}")
        orphan["accepted"] = True
        if ledger.stopped and ledger.stopped.get("reason") == "duplicate" and ledger.stopped.get("job_id") == job_id:
            ledger.stopped = None
        ledger.note("duplicate accepted on purpose", writer, job_id=job_id, part=orphan.get("part"))

    return apply


def record_late(items: dict[str, str]) -> Callable[[Ledger], None]:
    def apply(ledger: Ledger) -> None:
        ledger.late.update(items)

    return apply
