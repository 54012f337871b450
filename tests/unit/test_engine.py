"""The append engine, one table row per planned action: its side effects on the ledger, Symbl and the run.

A fake hook (scripted jobs and submissions), an in-memory ledger store with the S3 store's conditional
writes, and an in-memory S3 object: no network, so every branch of ``AppendRun.step`` is a row here,
in the style of ``test_plan.py`` (which covers *which* action comes next).
"""

from __future__ import annotations

import io
import json
import logging
import time
from dataclasses import dataclass, field

import pytest
from airflow.sdk.exceptions import AirflowException, AirflowFailException

from symbl_airflow.appends import ledger as L
from symbl_airflow.appends import plan as P
from symbl_airflow.appends.lease import LeaseKeeper
from symbl_airflow.appends.run import RESUME_METHOD_NAME, AppendRun, Checked, Deferral, Settings
from symbl_airflow.appends.stores import LedgerConflict, LedgerStore
from symbl_airflow.errors import (
    SymblAmbiguousSubmissionError,
    SymblJobWaitTimeoutError,
    SymblNotFoundError,
    SymblServerError,
    SymblUploadAbortedError,
)
from symbl_airflow.hooks import SymblJob, SymblSubmission
from symbl_airflow.hooks.upload import UploadAborted, UploadBody

pytestmark = pytest.mark.unit

LOG = logging.getLogger("test_engine")
SYMBL = {"host": "https://api.symbl.ai", "app_id": "app"}
URI = "s3://b/c/part-{:03d}.mp4".format
ME = L.Writer(dag_id="d", run_id="r2", task_id="append", try_number=1, hostname="w1", token="me")
OTHER = L.Writer(dag_id="d", run_id="r1", task_id="append", try_number=1, hostname="w2", token="other")


# ---------------------------------------------------------------------------------------------- fakes
class MemoryStore(LedgerStore):
    """The S3 store's semantics (ETag-conditional writes, shared) without S3."""

    def __init__(self, shared: bool = True) -> None:
        super().__init__()
        self.uri = "s3://b/c/_symbl.json"
        self.shared = shared
        self.raw: str | None = None
        self.version = 0
        self.writes = 0

    def load(self) -> L.Ledger:
        if self.raw is None:
            return L.Ledger(uri=self.uri)
        return L.Ledger.parse(self.uri, self.raw, etag=str(self.version))

    def _write(self, ledger: L.Ledger) -> None:
        if (ledger.etag or None) != (str(self.version) if self.raw is not None else None):
            raise LedgerConflict(f"{self.uri} changed since it was read")
        self.raw, self.version, self.writes = ledger.to_json(), self.version + 1, self.writes + 1
        ledger.etag = str(self.version)

    def seed(self, *mutations) -> None:
        self.update(L.bind_symbl(SYMBL), *mutations)

    def states(self) -> dict[str, str]:
        return {p.uri: p.state for p in self.load().parts}


@dataclass
class FakeHook:
    jobs: dict[str, str] = field(default_factory=dict)  # job id -> status (missing: 404)
    answers: list = field(default_factory=list)  # per submission: "ok" or an exception
    calls: list = field(default_factory=list)
    waited: list = field(default_factory=list)

    def get_job(self, job_id: str) -> SymblJob:
        self.calls.append(("GET", job_id))
        if job_id not in self.jobs:
            raise SymblNotFoundError("no such job", status=404)
        return SymblJob(job_id, self.jobs[job_id])

    def wait_for_jobs(self, job_ids, *, timeout, poll_interval, describe_jobs=None, **_):
        self.waited.append(list(job_ids))
        if any(self.jobs.get(j) not in ("completed", "failed") for j in job_ids):
            raise SymblJobWaitTimeoutError(f"{describe_jobs} did not finish within {timeout:g}s", pending=job_ids)
        return {j: self.jobs[j] for j in job_ids}

    during: object = None  # called while the body is on its way (another writer acts meanwhile)

    def submit_media(self, endpoint, open_body, length, *, conversation_id=None, content_type=None, guard=None, **_):
        if self.during is not None:
            self.during()
        try:  # the real body, in 4-byte chunks: the guard runs before each, as on the wire
            body = b"".join(UploadBody(open_body, length, chunk_size=4, guard=guard))
        except UploadAborted as exc:
            raise SymblUploadAbortedError(
                f"upload aborted: {exc}", method="PUT", endpoint="/v1/process/video"
            ) from None
        assert len(body) == length
        self.calls.append(("PUT" if conversation_id else "POST", endpoint, content_type, body))
        answer = self.answers.pop(0) if self.answers else "ok"
        if isinstance(answer, Exception):
            raise answer
        job = f"job{sum(1 for c in self.calls if c[0] in ('POST', 'PUT'))}"
        self.jobs[job] = "in_progress"
        return SymblSubmission(conversation_id or "conv", job)

    def sent(self) -> list[bytes]:
        return [c[3] for c in self.calls if c[0] in ("POST", "PUT")]


class FakeS3:
    def __init__(self, objects: dict[str, bytes]) -> None:
        self.objects = objects

    def get_conn(self):
        return self

    def get_object(self, Bucket, Key, IfMatch=None, **_):
        return {"Body": io.BytesIO(self.objects[f"s3://{Bucket}/{Key}"])}


def checked(n: int) -> Checked:
    return Checked(URI(n), f"e{n}", 10 + n, media_seconds=30.0)


def make_run(store, hook, *, n: int = 3, writer=ME, sender_state=None, **settings) -> AppendRun:
    objects = {URI(i): bytes([i]) * (10 + i) for i in range(1, n + 1)}
    run = AppendRun(
        hook=hook,
        s3_hook=FakeS3(objects),
        store=store,
        writer=writer,
        identity=SYMBL,
        checked=[checked(i) for i in range(1, n + 1)],
        settings=Settings(**{"lease_seconds": 60.0, **settings}),
        log=LOG,
        sender_state=sender_state or (lambda sender: None),
    )
    run.load()
    return run


def intent(n: int, writer=OTHER):
    return [L.acquire(writer, 60), L.intent(writer, URI(n), f"e{n}", 10 + n)]


def appended(n: int, state: str = "completed", writer=OTHER):
    def apply(ledger):
        for m in intent(n, writer):
            m(ledger)
        L.accepted(writer, URI(n), "conv", f"job{n}")(ledger)
        if state != "accepted":
            L.job_finished(URI(n), f"job{n}", state)(ledger)
        L.release(writer)(ledger)

    return apply


# ---------------------------------------------------------------------------------------------- the table
# id: (ledger mutations, hook jobs, settings, action, expect)
# expect: "states" (ledger part states after), "sent" (bytes Symbl got), "raises", "deferral" (method name),
# "running" (job ids the run knows running), "lease" (who holds it after: "me", None)
ROWS = {
    "Send POST: intent before the body, accepted after": (
        [],
        {},
        {},
        "plan",
        {"states": {URI(1): "accepted"}, "sent": [b"\x01" * 11], "running": {"job1"}, "lease": "me"},
    ),
    "Send PUT after a completed part": (
        [appended(1)],
        {"job1": "completed"},
        {},
        "plan",
        {"states": {URI(1): "completed", URI(2): "accepted"}, "sent": [b"\x02" * 12], "lease": "me"},
    ),
    "Send refused (HTTP 400): intent withdrawn, lease released, retryable": (
        [],
        {},
        {"answers": [SymblServerError("bad", status=400)]},
        "plan",
        {"states": {}, "raises": AirflowException, "lease": None},
    ),
    "Send unanswered after the body: intent stays sending, fails (on_unconfirmed=fail)": (
        [],
        {},
        {"answers": [SymblAmbiguousSubmissionError("no answer", method="POST", endpoint="/v1/process/video")]},
        "plan",
        {"states": {URI(1): "sending"}, "raises": AirflowFailException, "message": "answer never arrived"},
    ),
    "Send while another live writer holds the lease: nothing sent": (
        [L.acquire(OTHER, 60)],
        {},
        {},
        P.Send(P.Source(URI(1), "e1", 11), None, 0),
        {"states": {}, "sent": [], "lease": "other"},
    ),
    "CheckJobs: completed and failed recorded, running remembered": (
        [appended(1, "accepted"), appended(2, "accepted")],
        {"job1": "completed", "job2": "in_progress"},
        {},
        "plan",
        {"states": {URI(1): "completed", URI(2): "accepted"}, "running": {"job2"}, "sent": []},
    ),
    "CheckJobs: a failed job stops the conversation": (
        [appended(1, "accepted")],
        {"job1": "failed"},
        {},
        "plan",
        {"states": {URI(1): "failed"}, "stopped": True, "sent": []},
    ),
    "CheckJobs: a job Symbl does not know fails once, naming the ledger": (
        [appended(1, "accepted")],
        {},
        {},
        "plan",
        {"raises": AirflowFailException, "message": "s3://b/c/_symbl.json"},
    ),
    "WaitForJob deferrable: holds the lease, defers to resume_append with the awaited job": (
        [appended(1, "accepted")],
        {"job1": "in_progress"},
        {"deferrable": True},
        P.WaitForJob(URI(1), "job1", 30.0, 1.0),
        {"deferral": RESUME_METHOD_NAME, "waited_for": [URI(1), "job1"], "lease": "me"},
    ),
    "WaitForJob polled here: the outcome is written": (
        [appended(1, "accepted")],
        {"job1": "completed"},
        {},
        P.WaitForJob(URI(1), "job1"),
        {"states": {URI(1): "completed"}, "lease": "me"},
    ),
    "WaitForLease, on_busy=fail: refuses naming the holder": (
        [L.acquire(OTHER, 60)],
        {},
        {"on_busy": "fail"},
        P.WaitForLease(OTHER.label, 2e9),
        {"raises": AirflowFailException, "message": OTHER.label},
    ),
    "WaitForLease deferrable: a timed deferral back to resume_append": (
        [L.acquire(OTHER, 60)],
        {},
        {"deferrable": True},
        P.WaitForLease(OTHER.label, 2e9),
        {"deferral": RESUME_METHOD_NAME, "lease": "other"},
    ),
    "Settle resend: the intent goes, the part is planned again": (
        [appended(1), *intent(2), L.release(OTHER)],
        {"job1": "completed"},
        {"on_unconfirmed": "resend"},
        P.Settle(URI(2), "resend"),
        {"states": {URI(1): "completed"}, "lease": "me"},
    ),
    "Settle mark_sent: the part is recorded as in Symbl": (
        [appended(1), *intent(2), L.release(OTHER)],
        {"job1": "completed"},
        {"on_unconfirmed": "mark_sent"},
        P.Settle(URI(2), "mark_sent"),
        {"states": {URI(1): "completed", URI(2): "completed"}, "lease": "me"},
    ),
    "Refuse: fails without a retry, nothing written": (
        [],
        {},
        {},
        P.Refuse("no"),
        {"raises": AirflowFailException, "message": "no", "writes": 1},
    ),
}


@pytest.mark.parametrize(("mutations", "jobs", "knobs", "action", "expect"), ROWS.values(), ids=ROWS.keys())
def test_step(mutations, jobs, knobs, action, expect):
    store = MemoryStore()
    store.seed(*mutations)
    knobs = dict(knobs)
    hook = FakeHook(jobs=dict(jobs), answers=knobs.pop("answers", []))
    run = make_run(store, hook, **knobs)
    if action == "plan":
        action = run.plan()
    if "raises" in expect:
        with pytest.raises(expect["raises"]) as err:
            run.step(action)
        assert expect.get("message", "") in str(err.value)
    else:
        outcome = run.step(action)
        if "deferral" in expect:
            assert isinstance(outcome.deferral, Deferral)
            assert outcome.deferral.method_name == expect["deferral"]
            kwargs = outcome.deferral.kwargs
            assert kwargs["token"] == "me" and [c["uri"] for c in kwargs["checked"]] == [URI(1), URI(2), URI(3)]
            assert json.loads(json.dumps(kwargs)) == kwargs  # data only
            if "waited_for" in expect:
                assert kwargs["waited_for"] == expect["waited_for"]
        else:
            assert outcome.deferral is None
    if "states" in expect:
        assert store.states() == expect["states"]
    if "sent" in expect:
        assert hook.sent() == expect["sent"]
    if "running" in expect:
        assert run.running == expect["running"]
    if "stopped" in expect:
        assert bool(store.load().stopped) is expect["stopped"]
    if "writes" in expect:
        assert store.writes == expect["writes"]
    if "lease" in expect:
        lease = store.load().lease
        assert (lease.token if lease else None) == expect["lease"]


def test_every_action_has_a_row_and_a_step():
    covered = {type(action) for _, _, _, action, _ in ROWS.values() if action != "plan"} | {P.Send, P.CheckJobs}
    assert covered == {P.Refuse, P.WaitForLease, P.Settle, P.CheckJobs, P.WaitForJob, P.Send}
    with pytest.raises(KeyError):
        make_run(MemoryStore(), FakeHook()).step(P.Done())


# ---------------------------------------------------------------------------------------------- whole loops
def drive(run: AppendRun, hook: FakeHook, finish_jobs: bool = True) -> None:
    """The operator's loop; a (synchronous) job wait completes the job first."""
    while not isinstance(action := run.plan(), P.Done):
        if finish_jobs and isinstance(action, P.WaitForJob):
            hook.jobs[action.job_id] = "completed"
        outcome = run.step(action)
        assert outcome.deferral is None
    run.finish()


def test_three_parts_in_strict_order_then_the_result():
    store, hook = MemoryStore(), FakeHook()
    run = make_run(store, hook)
    drive(run, hook)
    assert [c[0] for c in hook.calls if c[0] in ("POST", "PUT")] == ["POST", "PUT", "PUT"]
    assert hook.waited == [["job1"], ["job2"]]  # each part after the previous job completed
    assert store.states() == {URI(1): "completed", URI(2): "completed", URI(3): "accepted"}
    assert store.load().lease is None  # given back
    result = run.result("s3://b/c/_symbl.json")
    assert result["job_ids"] == ["job1", "job2", "job3"]
    assert result["sources"] == [URI(1), URI(2), URI(3)] and result["skipped"] == []


def test_a_rerun_sends_nothing_and_logs_parts_of_this_task_as_appended_here(caplog):
    store, hook = MemoryStore(), FakeHook()
    drive(make_run(store, hook), hook)
    again = FakeHook(jobs=dict(hook.jobs))
    caplog.set_level(logging.INFO, logger="test_engine")
    run = make_run(store, again, writer=L.Writer(**{**ME.to_dict(), "try_number": 2, "token": "me2"}))
    drive(run, again)
    assert again.sent() == []
    assert "appended in this task" in caplog.text and "not sent again" not in caplog.text
    other = FakeHook(jobs=dict(hook.jobs))
    caplog.clear()
    drive(make_run(store, other, writer=OTHER), other)
    assert "already in conversation conv (appended by r2); not sent again" in caplog.text


def test_a_conversation_created_without_a_ledger_warns_once(caplog):
    store, hook = MemoryStore(shared=False), FakeHook()
    caplog.set_level(logging.WARNING, logger="test_engine")
    drive(make_run(store, hook, strict_order=False), hook)
    assert caplog.text.count("creates ANOTHER conversation") == 1 and "ledger_uri=" in caplog.text


def test_checked_sources_survive_a_deferral_and_read_0_2_kwargs():
    c = Checked(URI(1), "e1", 11, 30.0)
    assert Checked.from_dict(json.loads(json.dumps(c.to_dict()))) == c
    assert Checked.from_dict({"uri": URI(1), "etag": "e1", "size": 11, "media_seconds": 30.0}) == c


# ---------------------------------------------------------------------------------------------- the lease as a fence
def later(seconds: float):
    return lambda: time.time() + seconds


def test_the_keeper_fences_on_its_own_clock():
    store = MemoryStore()
    store.seed(L.acquire(ME, 60))
    now = [1000.0]
    keeper = LeaseKeeper(store, ME, 60, LOG, clock=lambda: now[0])
    keeper.check()  # fresh
    now[0] += 55  # a pause longer than the lease minus its safety margin (6 s): no renewal landed
    with pytest.raises(L.LeaseLost, match="ran out on this writer's clock"):
        keeper.check()
    keeper.renew_once()  # a renewal under this writer's token proves nobody took over
    keeper.check()
    store.update(L.acquire(OTHER, 60, now=later(120)))  # expired for the other writer's clock: taken over
    keeper.renew_once()
    with pytest.raises(L.LeaseLost, match="no longer held"):
        keeper.check()


def test_a_writer_that_lost_its_lease_sends_no_further_byte():
    store, hook = MemoryStore(), FakeHook()
    run = make_run(store, hook)

    def taken_over():  # this writer paused past its lease; another writer took the conversation
        store.update(L.acquire(OTHER, 60, now=later(120)))

    hook.during = taken_over
    action = run.plan()
    keeper_check = []
    real = LeaseKeeper.check

    def check(self):  # the renewal thread has not run in this short test: renew now, as it would
        self.renew_once()
        keeper_check.append(1)
        real(self)

    LeaseKeeper.check = check
    try:
        with pytest.raises(AirflowException, match="lost the conversation's lease while uploading") as err:
            run.step(action)
    finally:
        LeaseKeeper.check = real
    assert not isinstance(err.value, AirflowFailException)  # a retry waits for the lease
    assert hook.sent() == [] and keeper_check == [1]  # aborted before the first chunk
    assert store.states() == {}  # the intent went: the body was cut short, Symbl has nothing
    assert store.load().lease.token == "other"


def test_an_acceptance_for_an_intent_no_longer_owned_is_an_orphan_that_stops():
    store, hook = MemoryStore(), FakeHook()
    store.seed(appended(1))
    hook.jobs["job1"] = "completed"
    run = make_run(store, hook)

    def settled_meanwhile():  # the other writer took over and resent part 2 while ours was in flight
        store.update(
            L.acquire(OTHER, 60, now=later(120)),
            L.resolve_unconfirmed(OTHER, URI(2), "resend"),
            L.intent(OTHER, URI(2), "e2", 12),
            L.accepted(OTHER, URI(2), "conv", "theirs"),
        )

    hook.during = settled_meanwhile
    with pytest.raises(AirflowFailException) as err:
        run.step(run.plan())
    message = str(err.value)
    assert URI(2) in message and "twice" in message and "accept-duplicate" in message and "restart" in message
    book = store.load()
    assert book.stopped["reason"] == "duplicate" and book.stopped["job_id"] == "job1"
    assert [(o["part"], o["job_id"], o["writer"]) for o in book.orphans] == [(URI(2), "job1", ME.label)]
    assert book.part(URI(2)).job_id == "theirs"  # the other writer's record stands
    # every later run is stopped with the same words, until a person decides
    plan = P.plan_appends(book, [P.Source(URI(3), "e3", 13)], writer=OTHER, now=time.time(), symbl=SYMBL)
    assert isinstance(plan.action, P.Refuse) and "accept-duplicate" in plan.action.message
    store.update(L.accept_duplicate(None, "job1"))
    assert store.load().stopped is None and store.load().orphans[0]["accepted"] is True


@pytest.mark.parametrize("how", ["deleted", "restarted"])
def test_a_ledger_that_vanishes_or_changes_conversation_stops_the_writer_that_read_it(how):
    store, hook = MemoryStore(), FakeHook()
    run = make_run(store, hook, strict_order=False)
    run.step(run.plan())  # part 1 sent: conversation "conv"
    if how == "deleted":
        store.raw = None
    else:

        def restart(book):  # what the CLI's restart writes
            book.conversation_id, book.parts, book.lease, book.start_from = None, [], None, URI(1)

        store.update(restart)
    with pytest.raises(AirflowFailException, match="disappeared|was replaced or restarted"):
        run.load()
    with pytest.raises(AirflowFailException):
        run.step(P.Send(P.Source(URI(2), "e2", 12), "conv", 1))
    assert len(hook.sent()) == 1  # part 1 only; no second conversation, no resend
    # a new run (nothing seen) starts over from the ledger as it is now
    fresh = make_run(store, FakeHook(), writer=OTHER, strict_order=False)
    assert isinstance(fresh.plan(), P.Send)


def test_resend_refuses_while_the_first_writer_still_runs():
    store, hook = MemoryStore(), FakeHook()
    store.seed(*intent(1), L.release(OTHER))
    run = make_run(store, hook, on_unconfirmed="resend", sender_state=lambda sender: "running")
    with pytest.raises(AirflowFailException, match="still running in Airflow"):
        run.step(run.plan())
    assert store.states() == {URI(1): "sending"}
    ended = make_run(store, hook, on_unconfirmed="resend", sender_state=lambda sender: "failed")
    ended.step(ended.plan())
    assert store.states() == {}


def test_an_unknown_conversation_fails_once_naming_the_ledger_and_the_fix():
    store = MemoryStore()
    store.seed(appended(1))
    hook = FakeHook(jobs={"job1": "completed"}, answers=[SymblNotFoundError("no such conversation", status=404)])
    run = make_run(store, hook)
    with pytest.raises(AirflowFailException) as err:
        run.step(run.plan())
    assert "Symbl does not know conversation conv" in str(err.value) and store.uri in str(err.value)
    assert "restart" in str(err.value) and store.states() == {URI(1): "completed"}


def test_the_unconfirmed_message_says_when_to_check_and_who_may_still_be_alive():
    store, hook = MemoryStore(), FakeHook()
    run = make_run(store, hook)
    hook.answers = [SymblAmbiguousSubmissionError("HTTP 504 after the whole body", status=504)]
    with pytest.raises(AirflowFailException) as err:
        run.step(run.plan())
    message = str(err.value)
    assert "Check after" in message and "30 s of media" in message and "still runs is not in" in message
    assert "may still be alive (host w1, try 1" in message
    assert store.states() == {URI(1): "sending"}  # never withdrawn, never resent blindly
