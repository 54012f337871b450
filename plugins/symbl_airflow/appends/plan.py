"""What to do next for one conversation: a pure function of the ledger and the videos at hand.

``plan_appends`` never does I/O. The append operator loads the ledger, asks for a plan, carries out
its one ``action`` (check jobs, wait, settle an unconfirmed part, send the next part, or refuse), and
asks again, so every decision the guarantees rest on is a row of a unit-test table
(``tests/unit/test_plan.py``) rather than a branch buried in network code.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from symbl_airflow.appends import messages
from symbl_airflow.appends.ledger import ACCEPTED, SENDING, Ledger, Writer
from symbl_airflow.appends.messages import LEDGER_CLI  # noqa: F401 - importable here since 0.2
from symbl_airflow.ordering import (
    LEGACY_PART_ORDER,
    conversation_order,
    is_sorted,
    sort_key,
)

#: The ways a run may settle a part whose answer never arrived (``skip``: the 0.2 spelling of ``mark_sent``).
ON_UNCONFIRMED = ("fail", "resend", "mark_sent", "skip")


@dataclass(frozen=True)
class Source:
    """A checked video: what was validated is what is sent (the ETag pins the version)."""

    uri: str
    etag: str
    size: int


# ---------------------------------------------------------------------------------------------- actions
@dataclass(frozen=True)
class Refuse:
    """Stop without sending; nothing a retry could change (raised as a non-retryable failure)."""

    message: str


@dataclass(frozen=True)
class WaitForLease:
    owner: str
    expires_at: float


@dataclass(frozen=True)
class Settle:
    """Resolve an unconfirmed part as this run's ``on_unconfirmed`` says (``resend`` or ``mark_sent``)."""

    uri: str
    resolution: str


@dataclass(frozen=True)
class CheckJobs:
    """Ask Symbl for the outcome of these ``(uri, job_id)`` before anything else is sent."""

    jobs: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class WaitForJob:
    """Strict order: the previous part's job must complete before the next part is sent."""

    uri: str
    job_id: str
    media_seconds: float | None = None  # when the job can be expected done (polling hints)
    accepted_at: float | None = None


@dataclass(frozen=True)
class Send:
    source: Source
    conversation_id: str | None  # None: POST, creating the conversation
    index: int  # position among this task's sources (for log lines)


@dataclass(frozen=True)
class Done:
    pass


Action = Refuse | WaitForLease | Settle | CheckJobs | WaitForJob | Send | Done


@dataclass
class Plan:
    action: Action
    already: list[str] = field(default_factory=list)  # in the ledger with the same content
    changed: list[str] = field(default_factory=list)  # in the ledger, but S3 now holds other bytes
    late: list[str] = field(default_factory=list)  # sorts before a part already appended: never sent
    out_of_scope: list[str] = field(default_factory=list)  # before the ledger's start_from
    pending: list[Source] = field(default_factory=list)  # still to send, in order


# ---------------------------------------------------------------------------------------------- planning
def plan_appends(
    ledger: Ledger,
    sources: list[Source],
    *,
    writer: Writer,
    now: float,
    symbl: dict | None = None,
    conversation_id: str | None = None,
    on_unconfirmed: str = "fail",
    strict_order: bool = True,
    key_order: bool = True,
    part_order: str = LEGACY_PART_ORDER,
    running: Iterable[str] = (),
    how_to_resolve: str = "",
) -> Plan:
    """Decide the next step. ``running``: job ids seen still running since the ledger was read.

    ``key_order``: the ledger is shared, so the part order is append order and a new video that sorts
    before an appended one is *late*. The order is the ledger's (``ordering.conversation_order``):
    recorded with its first part, key order for a ledger from before that, else ``part_order``.
    Without it (a task-private ledger) the sources' list order
    is the order.
    """
    running = set(running)
    plan = Plan(action=Done())

    # 1. A ledger from another Symbl account or host: its ids mean nothing here.
    if symbl and ledger.symbl and _identity(ledger.symbl) != _identity(symbl):
        plan.action = Refuse(messages.foreign_ledger(ledger, symbl))
        return plan
    if conversation_id and ledger.conversation_id and conversation_id != ledger.conversation_id:
        plan.action = Refuse(messages.other_conversation(ledger, conversation_id))
        return plan

    # 2. Sort the sources: already there, changed, late, out of scope, or still to send.
    order_name = conversation_order(ledger.part_order, bool(ledger.parts), part_order)
    order = _order(ledger, sources, key_order, order_name)
    if key_order and not is_sorted([s.uri for s in sources], order_name):
        plan.action = Refuse(messages.out_of_order(ledger, [s.uri for s in sources], order_name))
        return plan
    last = max((order(p.uri) for p in ledger.parts), default=None)
    for source in sources:
        part = ledger.part(source.uri)
        if part is not None:
            if part.etag and source.etag and part.etag != source.etag:
                plan.changed.append(source.uri)
            elif part.state != SENDING:
                plan.already.append(source.uri)
            continue
        if not ledger.in_scope(source.uri, order_name):
            plan.out_of_scope.append(source.uri)
        elif source.uri in ledger.late or (last is not None and order(source.uri) < last):
            plan.late.append(source.uri)
        else:
            plan.pending.append(source)
    if key_order:
        plan.pending.sort(key=lambda s: order(s.uri))
    positions = {s.uri: i for i, s in enumerate(sources)}

    # 3. A failed job stops the conversation.
    if ledger.stopped:
        failed_uri = ledger.stopped.get("part")
        if plan.pending or failed_uri in positions:
            plan.action = Refuse(messages.stopped(ledger, [s.uri for s in plan.pending]))
        return plan

    lease = ledger.lease
    other_writer = (
        lease is not None and not lease.held_by(writer) and not lease.inherited_by(writer) and lease.expires_at > now
    )

    # 4. A part whose answer never arrived blocks everything after it, in every run, until settled.
    unconfirmed = [p for p in ledger.parts if p.state == SENDING]
    if unconfirmed:
        if other_writer:  # probably being sent right now: wait for that writer
            plan.action = WaitForLease(lease.owner, lease.expires_at)
            return plan
        part = unconfirmed[0]
        if part.sender.get("token") == writer.token:
            # Our own send in this very execution failed ambiguously: the executor raises before re-planning.
            plan.action = Refuse(unconfirmed_message(ledger, part, how_to_resolve, cli=key_order))
            return plan
        if on_unconfirmed == "resend" and part.uri not in positions:
            plan.action = Refuse(messages.resend_not_a_source(ledger, part))
        elif on_unconfirmed == "resend":
            plan.action = Settle(part.uri, "resend")
        elif on_unconfirmed in ("mark_sent", "skip"):
            if part.seq == 1 and not (ledger.conversation_id or conversation_id):
                plan.action = Refuse(messages.mark_sent_needs_conversation(ledger, part, on_unconfirmed))
            else:
                plan.action = Settle(part.uri, on_unconfirmed)
        else:
            plan.action = Refuse(unconfirmed_message(ledger, part, how_to_resolve, cli=key_order))
        return plan

    if not plan.pending:
        return plan  # nothing to send: no lease, no checks

    # 5. One writer at a time.
    if other_writer:
        plan.action = WaitForLease(lease.owner, lease.expires_at)
        return plan

    # 6. No hole: every earlier job must be known not to have failed (strict: to have completed).
    unknown = tuple((p.uri, p.job_id) for p in ledger.parts if p.state == ACCEPTED and p.job_id not in running)
    if unknown:
        plan.action = CheckJobs(unknown)
        return plan
    previous = ledger.last
    if strict_order and previous is not None and previous.state == ACCEPTED and previous.job_id in running:
        plan.action = WaitForJob(previous.uri, previous.job_id, previous.media_seconds, previous.accepted_at)
        return plan

    # 7. Send the next part: a POST creates the conversation, every other part is a PUT.
    source = plan.pending[0]
    plan.action = Send(source, ledger.conversation_id or conversation_id, positions[source.uri])
    return plan


def new_parts(ledger: Ledger, listing: dict[str, str], part_order: str = LEGACY_PART_ORDER) -> dict[str, list[str]]:
    """Classify a folder listing (``{uri: etag}``) for discovery, without any Symbl call.

    Returns ``{"new", "late", "changed", "unconfirmed", "blocked"}``: ``blocked`` names why nothing can go
    now (``stopped``/``unconfirmed``), so discovery can still map the conversation and let its task say so.
    """
    out: dict[str, list[str]] = {"new": [], "late": [], "changed": [], "unconfirmed": [], "blocked": []}
    order_name = conversation_order(ledger.part_order, bool(ledger.parts), part_order)
    key = sort_key(order_name)
    last = max((p.uri for p in ledger.parts), key=key, default=None)
    for uri in sorted(listing, key=key):
        part = ledger.part(uri)
        if part is not None:
            if part.etag and listing[uri] and part.etag != listing[uri]:
                out["changed"].append(uri)
            elif part.state == SENDING:
                out["unconfirmed"].append(uri)
        elif not ledger.in_scope(uri, order_name):
            continue
        elif uri in ledger.late or (last is not None and key(uri) < key(last)):
            out["late"].append(uri)
        else:
            out["new"].append(uri)
    if ledger.stopped:
        out["blocked"].append("stopped")
    if any(p.state == SENDING for p in ledger.parts):
        out["blocked"].append("unconfirmed")
    return out


# ---------------------------------------------------------------------------------------------- helpers
def _identity(symbl: dict) -> tuple:
    return (str(symbl.get("host") or "").rstrip("/").lower(), str(symbl.get("app_id") or ""))


def _order(ledger: Ledger, sources: list[Source], key_order: bool, order_name: str = LEGACY_PART_ORDER):
    if key_order:
        return sort_key(order_name)
    rank = {p.uri: i for i, p in enumerate(ledger.parts)}
    rank.update({s.uri: len(ledger.parts) + i for i, s in enumerate(sources) if s.uri not in rank})
    return lambda uri: rank.get(uri, -1)


def unconfirmed_message(ledger: Ledger, part, how_to_resolve: str = "", *, cli: bool = True) -> str:
    return messages.unconfirmed(ledger, part, how_to_resolve, cli=cli)


__all__ = [
    "Action",
    "CheckJobs",
    "Done",
    "Plan",
    "Refuse",
    "Send",
    "Settle",
    "Source",
    "WaitForJob",
    "WaitForLease",
    "new_parts",
    "plan_appends",
]
