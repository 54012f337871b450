"""The append plan, table-driven: every guarantee of the conversation ledger as one row.

Each row is (ledger, sources, knobs) -> the one next action, plus how the sources were classified.
No I/O: the plan is a pure function, which is why these rows can say everything.
"""

from __future__ import annotations

import pytest

from symbl_airflow import ledger as L
from symbl_airflow import plan as P

pytestmark = pytest.mark.unit

NOW = 1_700_000_000.0
#: ``inherits``: the earlier try's token, as this task instance's task state keeps it (the proof of inheritance)
ME = L.Writer(
    dag_id="d", run_id="r2", task_id="append", map_index=0, try_number=1, hostname="w1", token="me", inherits=("dead",)
)
OTHER = L.Writer(dag_id="d", run_id="r1", task_id="append", map_index=0, try_number=1, hostname="w2", token="other")
MY_EARLIER_TRY = L.Writer(dag_id="d", run_id="r2", task_id="append", map_index=0, try_number=0, token="dead")
SYMBL = {"host": "https://api.symbl.ai", "app_id": "app"}
URI = "s3://b/videos/c/part-{:03d}.mp4".format


def src(n: int, etag: str | None = None) -> P.Source:
    return P.Source(URI(n), etag or f"e{n}", 100 + n)


def part(n: int, state: str, job: str | None = "auto", sender: L.Writer = OTHER, etag: str | None = None) -> L.Part:
    return L.Part(
        uri=URI(n),
        seq=n,
        etag=etag or f"e{n}",
        size=100 + n,
        state=state,
        job_id=(f"job{n}" if job == "auto" else job),
        sender=sender.to_dict(),
    )


def lease(writer: L.Writer, expires: float) -> L.Lease:
    return L.Lease(writer.label, writer.token, list(writer.task_key), writer.try_number, expires, NOW - 100)


def ledger(*parts: L.Part, **kwargs) -> L.Ledger:
    kwargs.setdefault("conversation_id", "conv" if parts else None)
    kwargs.setdefault("symbl", dict(SYMBL))
    return L.Ledger(uri="s3://b/videos/c/_symbl.json", parts=list(parts), exists=bool(parts), **kwargs)


C, A, S, F, K = L.COMPLETED, L.ACCEPTED, L.SENDING, L.FAILED, L.SKIPPED

# id: (ledger, sources, knobs, expected action, expected classification {already, changed, late, pending})
ROWS = {
    "new conversation: POST the first part": (
        ledger(),
        [src(1), src(2)],
        {},
        P.Send(src(1), None, 0),
        {"pending": [URI(1), URI(2)]},
    ),
    "given conversation id: first part is a PUT": (
        ledger(),
        [src(1)],
        {"conversation_id": "given"},
        P.Send(src(1), "given", 0),
        {},
    ),
    "earlier run appended part 1 (completed): PUT part 2": (
        ledger(part(1, C)),
        [src(1), src(2)],
        {},
        P.Send(src(2), "conv", 1),
        {"already": [URI(1)], "pending": [URI(2)]},
    ),
    "previous job outcome unknown: check it first": (
        ledger(part(1, C), part(2, A)),
        [src(3)],
        {},
        P.CheckJobs(((URI(2), "job2"),)),
        {},
    ),
    "every accepted part is checked, not only the last (case 3)": (
        ledger(part(1, A), part(2, A)),
        [src(3)],
        {},
        P.CheckJobs(((URI(1), "job1"), (URI(2), "job2"))),
        {},
    ),
    "strict order: previous job still running -> wait (case 2)": (
        ledger(part(1, C), part(2, A)),
        [src(3)],
        {"running": ["job2"]},
        P.WaitForJob(URI(2), "job2"),
        {},
    ),
    "not strict: previous job running -> send anyway": (
        ledger(part(1, C), part(2, A)),
        [src(3)],
        {"running": ["job2"], "strict_order": False},
        P.Send(src(3), "conv", 0),
        {},
    ),
    "failed job stops the conversation for later parts (case 3)": (
        ledger(part(1, C), part(2, F), stopped={"part": URI(2), "job_id": "job2"}),
        [src(1), src(2), src(3), src(4)],
        {},
        P.Refuse,
        {"already": [URI(1), URI(2)], "pending": [URI(3), URI(4)]},
    ),
    "failed job, nothing new: nothing to do": (
        ledger(part(1, C), part(2, F), stopped={"part": URI(2), "job_id": "job2"}),
        [src(1)],
        {},
        P.Done(),
        {"already": [URI(1)]},
    ),
    "failed part skipped on purpose: later parts follow": (
        ledger(part(1, C), part(2, K)),
        [src(3)],
        {},
        P.Send(src(3), "conv", 0),
        {},
    ),
    "late part is never appended (case 4)": (
        ledger(part(2, C), part(3, C)),
        [src(1), src(2), src(3)],
        {},
        P.Done(),
        {"already": [URI(2), URI(3)], "late": [URI(1)]},
    ),
    "late part beside a new one: only the new one is sent": (
        ledger(part(2, C)),
        [src(1), src(2), src(3)],
        {},
        P.Send(src(3), "conv", 2),
        {"late": [URI(1)], "pending": [URI(3)]},
    ),
    "a late part already reported stays late": (
        ledger(part(2, C), late={URI(1): ""}),
        [src(1)],
        {},
        P.Done(),
        {"late": [URI(1)]},
    ),
    "task-private ledger: list order, no late check": (
        ledger(part(2, C)),
        [src(2), src(1)],
        {"key_order": False},
        P.Send(src(1), "conv", 1),
        {"already": [URI(2)], "pending": [URI(1)]},
    ),
    "changed content is reported, not re-sent": (
        ledger(part(1, C)),
        [src(1, etag="new")],
        {},
        P.Done(),
        {"changed": [URI(1)]},
    ),
    "restarted ledger: parts before start_from are out of scope": (
        ledger(start_from=URI(3), conversation_id=None),
        [src(1), src(2), src(3)],
        {},
        P.Send(src(3), None, 2),
        {"pending": [URI(3)]},
    ),
    "unconfirmed part blocks every later run (case 1)": (
        ledger(part(1, C), part(2, S, job=None)),
        [src(1), src(2), src(3)],
        {},
        P.Refuse,
        {"already": [URI(1)], "pending": [URI(3)]},
    ),
    "unconfirmed + on_unconfirmed=resend from the new run": (
        ledger(part(1, C), part(2, S, job=None)),
        [src(2), src(3)],
        {"on_unconfirmed": "resend"},
        P.Settle(URI(2), "resend"),
        {},
    ),
    "resend of a part this task does not send: refuse (it would be overtaken)": (
        ledger(part(1, C), part(2, S, job=None)),
        [src(3)],
        {"on_unconfirmed": "resend", "conversation_id": None},
        P.Refuse,
        {},
    ),
    "unconfirmed + on_unconfirmed=skip": (
        ledger(part(1, C), part(2, S, job=None)),
        [src(2)],
        {"on_unconfirmed": "skip"},
        P.Settle(URI(2), "skip"),
        {},
    ),
    "unconfirmed POST + skip: conversation id unknown -> refuse": (
        ledger(part(1, S, job=None), conversation_id=None),
        [src(1)],
        {"on_unconfirmed": "skip"},
        P.Refuse,
        {},
    ),
    "unconfirmed while its sender still holds the lease: wait for it": (
        ledger(part(1, C), part(2, S, job=None), lease=lease(OTHER, NOW + 60)),
        [src(2)],
        {"on_unconfirmed": "resend"},
        P.WaitForLease(OTHER.label, NOW + 60),
        {},
    ),
    "second writer while the lease is live: wait (case 5)": (
        ledger(part(1, A), lease=lease(OTHER, NOW + 60)),
        [src(1), src(2)],
        {},
        P.WaitForLease(OTHER.label, NOW + 60),
        {"already": [URI(1)], "pending": [URI(2)]},
    ),
    "second writer claims nothing while the POST is being claimed (case 5)": (
        ledger(part(1, S, job=None), conversation_id=None, lease=lease(OTHER, NOW + 60)),
        [src(1), src(2)],
        {},
        P.WaitForLease(OTHER.label, NOW + 60),
        {"pending": [URI(2)]},
    ),
    "expired lease is taken over": (
        ledger(part(1, C), lease=lease(OTHER, NOW - 1)),
        [src(2)],
        {},
        P.Send(src(2), "conv", 0),
        {},
    ),
    "my own earlier try's lease is inherited at once": (
        ledger(part(1, C), lease=lease(MY_EARLIER_TRY, NOW + 300)),
        [src(2)],
        {},
        P.Send(src(2), "conv", 0),
        {},
    ),
    "same task names, no proof (another deployment's try, same run id): wait, never inherit": (
        ledger(part(1, C), lease=lease(L.Writer(**{**MY_EARLIER_TRY.to_dict(), "token": "twin"}), NOW + 300)),
        [src(2)],
        {},
        P.WaitForLease("d/r2/append[0] try 0 on ", NOW + 300),
        {},
    ),
    "live lease but nothing to send: done, no wait": (
        ledger(part(1, C), lease=lease(OTHER, NOW + 60)),
        [src(1)],
        {},
        P.Done(),
        {"already": [URI(1)]},
    ),
    "ledger of another Symbl account: refuse (case 6)": (
        ledger(part(1, C), symbl={"host": "http://127.0.0.1:8900", "app_id": "sandbox"}),
        [src(2)],
        {},
        P.Refuse,
        {},
    ),
    "conversation_id differs from the ledger's: refuse": (
        ledger(part(1, C)),
        [src(2)],
        {"conversation_id": "other"},
        P.Refuse,
        {},
    ),
    "v1 ledger (no symbl identity): adopted, parts checked": (
        ledger(part(1, A), symbl=None),
        [src(2)],
        {},
        P.CheckJobs(((URI(1), "job1"),)),
        {},
    ),
    "unconfirmed part resolved as sent without a job id: next part follows": (
        ledger(part(1, C), part(2, C, job=None)),
        [src(3)],
        {},
        P.Send(src(3), "conv", 0),
        {},
    ),
}


@pytest.mark.parametrize("row", list(ROWS), ids=list(ROWS))
def test_plan_table(row):
    book, sources, knobs, expected, classes = ROWS[row]
    kwargs = {"writer": ME, "now": NOW, "symbl": SYMBL, **knobs}
    plan = P.plan_appends(book, sources, **kwargs)
    if isinstance(expected, type):
        assert isinstance(plan.action, expected), plan.action
    else:
        assert plan.action == expected
    for name in ("already", "changed", "late"):
        if name in classes:
            assert getattr(plan, name) == classes[name], name
    if "pending" in classes:
        assert [s.uri for s in plan.pending] == classes["pending"]


def test_refusals_name_the_file_and_the_way_forward():
    stopped = ledger(part(1, C), part(2, F), stopped={"part": URI(2), "job_id": "job2"})
    message = P.plan_appends(stopped, [src(3)], writer=ME, now=NOW, symbl=SYMBL).action.message
    assert "job2" in message and URI(2) in message and "restart" in message and "leave-out" in message
    assert stopped.uri in message

    unconfirmed = ledger(part(1, C), part(2, S, job=None))
    message = P.plan_appends(unconfirmed, [src(3)], writer=ME, now=NOW, symbl=SYMBL).action.message
    assert "answer never arrived" in message and "on_unconfirmed='resend'" in message and URI(2) in message
    assert "python -m symbl_airflow.ledger resolve" in message and "r1" in message  # names the sender run

    foreign = ledger(part(1, C), symbl={"host": "http://127.0.0.1:8900", "app_id": "sandbox"})
    message = P.plan_appends(foreign, [src(2)], writer=ME, now=NOW, symbl=SYMBL).action.message
    assert foreign.uri in message and "127.0.0.1:8900" in message and "api.symbl.ai" in message


def test_new_parts_for_discovery():
    book = ledger(part(2, C), part(3, A), late={URI(1): ""}, stopped=None)
    listing = {URI(1): "e1", URI(2): "e2", URI(3): "changed", URI(4): "e4", URI(5): "e5"}
    assert P.new_parts(book, listing) == {
        "new": [URI(4), URI(5)],
        "late": [URI(1)],
        "changed": [URI(3)],
        "unconfirmed": [],
        "blocked": [],
    }
    found = P.new_parts(ledger(part(1, S, job=None)), {URI(1): "e1", URI(2): "e2"})
    assert found["blocked"] == ["unconfirmed"] and found["unconfirmed"] == [URI(1)] and found["new"] == [URI(2)]


# ------------------------------------------------------------------ ledger mutations (the other half of the story)
def test_lease_is_exclusive_until_it_expires():
    book = ledger()
    L.acquire(OTHER, 60, now=lambda: NOW)(book)
    with pytest.raises(L.LeaseBusy):
        L.acquire(ME, 60, now=lambda: NOW + 59)(book)
    L.acquire(ME, 60, now=lambda: NOW + 61)(book)
    assert book.lease.token == "me"
    assert book.history[-1]["event"] == "lease expired, taken over"


def test_intent_needs_the_lease_and_accepted_needs_the_intent():
    book = ledger()
    with pytest.raises(L.LeaseLost):
        L.intent(ME, URI(1), "e1", 101)(book)
    L.acquire(ME, 60)(book)
    L.intent(ME, URI(1), "e1", 101)(book)
    assert book.parts[0].state == L.SENDING and book.parts[0].sender["run_id"] == "r2"
    with pytest.raises(L.LedgerError):
        L.accepted(OTHER, URI(1), "conv", "job1")(book)
    L.accepted(ME, URI(1), "conv", "job1")(book)
    assert (book.conversation_id, book.parts[0].state, book.parts[0].job_id) == ("conv", L.ACCEPTED, "job1")
    with pytest.raises(L.LedgerError, match="already accepted"):
        L.intent(ME, URI(1), "e1", 101)(book)


def test_failed_job_stops_and_skip_reopens():
    book = ledger(part(1, A))
    L.job_finished(URI(1), "job1", "failed")(book)
    assert book.stopped["part"] == URI(1) and book.parts[0].state == L.FAILED
    L.skip_failed(None, URI(1))(book)
    assert book.stopped is None and book.parts[0].state == L.SKIPPED


def test_round_trip_and_v1_upgrade():
    book = ledger(part(1, C), part(2, S, job=None), lease=lease(ME, NOW + 10), late={URI(0): "x"})
    again = L.Ledger.parse(book.uri, book.to_json(), etag="e")
    assert [p.to_dict() for p in again.parts] == [p.to_dict() for p in book.parts]
    assert again.lease.token == "me" and again.late == {URI(0): "x"}
    v1 = (
        '{"version": 1, "conversation_id": "c1", "parts": [{"uri": "s3://b/k/p1.mp4", "seq": 1, "etag": "e",'
        ' "size": 5, "job_id": "j1", "appended_at": "2024-06-03T10:00:00Z"}]}'
    )
    old = L.Ledger.parse("s3://b/k/_symbl.json", v1)
    assert old.upgraded_from == 1 and old.parts[0].state == L.ACCEPTED and old.parts[0].job_id == "j1"
    with pytest.raises(L.LedgerError, match="newer"):
        L.Ledger.parse("s3://b/k/_symbl.json", '{"version": 99}')
    with pytest.raises(L.LedgerError, match="not valid"):
        L.Ledger.parse("s3://b/k/_symbl.json", "{not json")


def test_release_frees_a_dead_earlier_try_lease_but_not_a_stranger_one():
    book = ledger(lease=lease(MY_EARLIER_TRY, NOW + 300))
    L.release(ME)(book)
    assert book.lease is None
    book = ledger(lease=lease(OTHER, NOW + 300))
    L.release(ME)(book)
    assert book.lease.token == "other"
