"""Every text the append engine shows a person who must act: what happened, and what to do next.

Kept in one place so that the words stay one vocabulary: *mark sent* (a part IS in Symbl), *resend*
(it is not), *leave out* (a failed part stays out on purpose: a hole accepted), *restart* (a new
conversation from a given part). Functions take what they name and return the whole sentence.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from symbl_airflow.appends.ledger import Lease, Ledger, Part

LEDGER_CLI = "python -m symbl_airflow.ledger"

#: How a run settles a part whose answer never arrived (the operator's ``on_unconfirmed``).
HOW_TO_RESOLVE = (
    "rerun with on_unconfirmed='resend' if the video is missing in Symbl, or on_unconfirmed='mark_sent' if it is "
    "there (where the DAG takes it from params, as symbl_video_pipeline does, trigger a new run with conf "
    '{"on_unconfirmed": "resend"} or {"on_unconfirmed": "mark_sent"})'
)


def _iso(epoch: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(epoch)) if epoch else "-"


# ---------------------------------------------------------------------------------------------- plan refusals
def foreign_ledger(ledger: Ledger, symbl: dict) -> str:
    return (
        f"conversation ledger {ledger.uri} was written for Symbl at {ledger.symbl.get('host')} "
        f"(App ID {ledger.symbl.get('app_id')}), but this task's connection points at {symbl.get('host')} "
        f"(App ID {symbl.get('app_id')}), where its conversation {ledger.conversation_id} and jobs do not "
        "exist. Use the connection the ledger was written with, or move the ledger aside (rename it) to "
        "start a new Symbl conversation for these videos."
    )


def other_conversation(ledger: Ledger, conversation_id: str) -> str:
    return (
        f"conversation_id is {conversation_id}, but the ledger {ledger.uri} belongs to conversation "
        f"{ledger.conversation_id}; pass the same id (or none), or another ledger location"
    )


def resend_not_a_source(ledger: Ledger, part: Part) -> str:
    return (
        f"on_unconfirmed='resend' cannot resend {part.uri} from this task: it is not one of its sources, "
        "and the parts after it would then overtake it. Rerun the task that sends it, or settle it in the "
        f"ledger: {LEDGER_CLI} resolve {ledger.uri} --part {part.uri} --resend | --mark-sent."
    )


def mark_sent_needs_conversation(ledger: Ledger, part: Part, option: str = "mark_sent") -> str:
    return (
        f"on_unconfirmed={option!r} for {part.uri}: it was the video that created the conversation and its "
        "id never arrived, so this run cannot know which conversation to continue. Look it up in Symbl "
        f"and record it: {LEDGER_CLI} resolve {ledger.uri} --part {part.uri} --mark-sent "
        "--conversation-id <id> (or pass conversation_id=<id> to the operator)."
    )


def conversation_id_unknown(ledger_uri: str, uri: str) -> str:
    return (
        f"{uri} created the conversation and its id never arrived; give the conversation id Symbl "
        f"shows for it: {LEDGER_CLI} resolve {ledger_uri} --part {uri} --mark-sent --conversation-id <id>"
    )


def unconfirmed(
    ledger: Ledger, part: Part, how_to_resolve: str = "", *, cli: bool = True, rate: float | None = None
) -> str:
    sender = part.sender or {}
    who = (
        f"{sender.get('dag_id')}/{sender.get('run_id')}/{sender.get('task_id')} try {sender.get('try_number')} "
        f"on {sender.get('hostname')}"
        if sender
        else "an earlier writer"
    )
    conversation = ledger.conversation_id or "(the one it was creating)"
    how = how_to_resolve or (
        "start a new run with on_unconfirmed='resend' (the video is missing) or on_unconfirmed='mark_sent' "
        "(it is there)"
    )
    text = (
        f"{part.uri} was sent to Symbl by {who} but Symbl's answer never arrived, so it may or may not have been "
        f"appended to conversation {conversation}. Nothing more is sent to this conversation until that is "
        f"settled. {when_to_check(part, rate)}{writer_may_be_alive(ledger, part)}Check the conversation's "
        f"messages in Symbl (GET /v1/conversations/<id>/messages); then {how}"
    )
    if not cli:
        return text + "."
    return (
        f"{text}; or settle it in the ledger: {LEDGER_CLI} resolve {ledger.uri} --part {part.uri} --resend | "
        "--mark-sent [--job-id <id>]."
    )


#: Seconds of Symbl work per media second assumed for "when to check" when nothing was learned (generous:
#: checking too early is what leads to a wrong ``resend``).
CHECK_RATE_FLOOR = 0.5
#: Added to every "check after" time: queueing in Symbl, clocks.
CHECK_MARGIN_SECONDS = 120.0


def check_after(part: Part, rate: float | None = None) -> float | None:
    """When the part's job, had Symbl accepted it, would surely be done (epoch seconds), if it can be said."""
    if not part.sent_at:
        return None
    seconds = part.media_seconds or 0.0
    return part.sent_at + seconds * max(rate or 0.0, CHECK_RATE_FLOOR) + CHECK_MARGIN_SECONDS


def when_to_check(part: Part, rate: float | None = None) -> str:
    at = check_after(part, rate)
    if at is None:
        return ""
    length = f"{part.media_seconds:.0f} s of media" if part.media_seconds else "unknown media length"
    return (
        f"Check after {_iso(at)} ({length}): a part whose Symbl job still runs is not in the conversation's "
        "messages yet, so an earlier look would wrongly say it is missing. "
    )


def writer_may_be_alive(ledger: Ledger, part: Part) -> str:
    sender = part.sender or {}
    lease = ledger.lease
    if lease is not None and lease.token == sender.get("token"):
        held = "still held" if lease.expires_at > time.time() else "expired"
        lease_text = f"its lease {held} until {_iso(lease.expires_at)}"
    else:
        lease_text = "its lease already released or taken over"
    return (
        f"The writer that sent it may still be alive (host {sender.get('hostname') or '?'}, try "
        f"{sender.get('try_number', '?')}, {lease_text}): a paused worker can still deliver it; if that task is "
        "still running, wait for it to end first. "
    )


def resend_while_sender_runs(part: Part, state: str) -> str:
    sender = part.sender or {}
    return (
        f"on_unconfirmed='resend' refused for {part.uri}: the task instance that sent it "
        f"({sender.get('dag_id')}/{sender.get('run_id')}/{sender.get('task_id')}, try {sender.get('try_number')} "
        f"on {sender.get('hostname')}) is still {state} in Airflow, so its upload may still be delivered and a "
        "resend would append the part twice. Wait until that task instance has ended (or mark it failed), then "
        "run again."
    )


def duplicate(ledger: Ledger, orphan: dict) -> str:
    return (
        f"Symbl accepted {orphan.get('part')} (job {orphan.get('job_id')}, conversation "
        f"{orphan.get('conversation_id')}) from {orphan.get('writer')}, a writer that no longer owned that part's "
        "send (its lease had run out and the part was settled or sent by another run): the conversation may "
        f"now hold this part twice. Conversation {ledger.conversation_id} is stopped; nothing more is appended to "
        f"it. Either start a clean conversation ({LEDGER_CLI} restart {ledger.uri} --from <s3 uri of its first "
        f"part>), or keep it as it is, duplicate included ({LEDGER_CLI} accept-duplicate {ledger.uri} --job-id "
        f"{orphan.get('job_id')})."
    )


def ledger_vanished(ledger_uri: str, conversation_id: str | None, orphan: dict | None = None) -> str:
    accepted = (
        f" Symbl had just accepted {orphan['part']} (job {orphan['job_id']}) into conversation "
        f"{orphan['conversation_id']}; no ledger records it."
        if orphan
        else ""
    )
    return (
        f"the conversation ledger {ledger_uri} disappeared while this task was appending to conversation "
        f"{conversation_id or '(being created)'}: this task stops rather than start a second conversation for "
        f"the same videos.{accepted} If the ledger was moved aside on purpose, trigger a NEW run (it starts a new "
        "conversation); otherwise restore the ledger (S3 versioning keeps the old one) and clear this task."
    )


def ledger_replaced(ledger_uri: str, seen: str | None, now: str | None) -> str:
    return (
        f"the conversation ledger {ledger_uri} belonged to conversation {seen} when this task read it, and now "
        f"belongs to {now or 'no conversation yet (restarted)'}: it was replaced or restarted while this task ran. "
        "This task stops; a NEW run follows the new ledger."
    )


def lease_lost_mid_upload(uri: str, reason: str, holder: str | None) -> str:
    return (
        f"{uri}: this writer lost the conversation's lease while uploading ({reason}); the upload was aborted "
        "before its last byte, and Symbl never accepts a body cut short, so the part was not appended here"
        + (f". {holder} holds the conversation now." if holder else ".")
    )


def unknown_conversation(conversation_id: str, ledger_uri: str, conn_id: str) -> str:
    return (
        f"Symbl does not know conversation {conversation_id}, which the conversation ledger {ledger_uri} names "
        f"(HTTP 404 on appending): it was deleted, or the ledger was written for another Symbl account than "
        f"{conn_id!r}'s. Nothing was appended; a retry cannot change it. Point {conn_id!r} at the account that "
        f"wrote the ledger, or start a new conversation for these videos: {LEDGER_CLI} restart {ledger_uri} "
        "--from <s3 uri of the first part to send> (or move the ledger aside)."
    )


def stopped(ledger: Ledger, pending_uris: list[str]) -> str:
    info = ledger.stopped or {}
    if info.get("reason") == "duplicate":
        return duplicate(ledger, next((o for o in ledger.orphans if o.get("job_id") == info.get("job_id")), info))
    waiting = f" ({len(pending_uris)} later part(s) not sent: {', '.join(pending_uris[:3])}" + (
        ", ...)" if len(pending_uris) > 3 else ")"
    )
    if info.get("reason") == "undecodable":
        return (
            f"{info.get('part')} cannot be decoded ({info.get('message')}), so conversation "
            f"{ledger.conversation_id or '(not created yet)'} is stopped: no later part is appended to it in this "
            f"or any later run{waiting if pending_uris else ''}. Either accept the hole on purpose "
            f"({LEDGER_CLI} leave-out {ledger.uri} --part {info.get('part')}), or put a readable recording in its "
            f"place and start a new conversation from a given part ({LEDGER_CLI} restart {ledger.uri} --from "
            "<s3 uri of the first part to send>)."
        )
    return (
        f"Symbl job {info.get('job_id')} for {info.get('part')} failed, so conversation "
        f"{ledger.conversation_id} is stopped: no later part is appended to it in this or any later run "
        f"(its transcript would have a hole){waiting if pending_uris else ''}. Either start a new conversation from "
        f"a given part ({LEDGER_CLI} restart {ledger.uri} --from <s3 uri of the first part to send>), or accept "
        f"the hole on purpose ({LEDGER_CLI} leave-out {ledger.uri} --part {info.get('part')}); see README "
        "'When a Symbl job fails'."
    )


# ---------------------------------------------------------------------------------------------- the run
def not_accepted(index: int, total: int, uri: str, cause: BaseException) -> str:
    return f"part {index + 1}/{total} {uri} was not accepted by Symbl: {cause}. Later parts were not sent."


def lease_busy(ledger_uri: str, owner: str, expires_at: float) -> str:
    return (
        f"conversation ledger {ledger_uri} is held by {owner} until {_iso(expires_at)}: another run or "
        "deployment is appending to this conversation. Nothing was sent. Run again later, or use on_busy='wait'."
    )


def unknown_job(job_id: str, uri: str, ledger: Ledger, ledger_uri: str, conn_id: str) -> str:
    return (
        f"Symbl does not know job {job_id} of {uri}, recorded in the conversation ledger {ledger_uri} "
        f"(conversation {ledger.conversation_id}): the ledger was written for another Symbl account or "
        f"endpoint, or the conversation was deleted. Point {conn_id!r} at the account that wrote it, or move "
        "the ledger aside (rename it) to start a new conversation for these videos."
    )


def changed(uri: str, etag: str | None) -> str:
    return (
        f"{uri} changed since it was appended (the ledger has ETag {etag}); it is NOT sent again. Upload new "
        "content under a new key to append it."
    )


def late(uri: str, conversation_id: str | None, ledger_uri: str) -> str:
    return (
        f"{uri} is LATE: a part that sorts after it is already in conversation {conversation_id}, so appending "
        "it would put the transcript out of order. It is not appended; start a new conversation from it if it "
        f"matters ({LEDGER_CLI} restart {ledger_uri} --from <uri>)."
    )


NO_TASK_STATE = (
    "No ledger_uri and no task_state_store (Airflow < 3.3 or disabled): nothing records what was sent, so a "
    "retry after a crash may resend a video that Symbl already accepted"
)

NEW_CONVERSATION_WITHOUT_LEDGER = (
    "No ledger_uri: this task creates a new Symbl conversation and only this task instance's retries know "
    "about it. A new run (or a cleared task) creates ANOTHER conversation for the same videos. To append to "
    "one conversation across runs, give ledger_uri='s3://<bucket>/<conversation prefix>/_symbl.json' (or pass "
    "the conversation_id to continue)."
)

ON_UNCONFIRMED_SKIP_DEPRECATED = (
    "on_unconfirmed='skip' is deprecated: it means the part IS in Symbl, so it is now spelled 'mark_sent' "
    "(treated as 'mark_sent' here)"
)


def settled(uri: str, resolution: str) -> str:
    what = "it will be sent again" if resolution == "resend" else "recorded as in Symbl (mark_sent)"
    return f"{uri} was sent earlier without a confirmation from Symbl; on_unconfirmed={resolution!r}: {what}"


def lease_held_for_edit(ledger_uri: str, lease: Lease) -> str:
    return (
        f"{ledger_uri} is held by {lease.owner} until {_iso(lease.expires_at)}: a writer may be sending right "
        "now. Wait until it is done (or add --force if you know it is dead)."
    )


def out_of_order(ledger: Ledger, uris: list[str], order_name: str) -> str:
    from symbl_airflow.ordering import NATURAL, sorted_parts

    expected = sorted_parts(uris, order_name)
    how = (
        "case-insensitive, numbers by value: 'Recording 2' before 'Recording 10'"
        if order_name == NATURAL
        else "plain S3 key order, the order this conversation was built in before part_order existed"
    )
    return (
        f"with ledger_uri, the parts of conversation ledger {ledger.uri} go in {order_name} order ({how}), but "
        f"source lists them as {uris}; list them as {expected} (the example pipeline's discovery does)"
    )
