"""The append engine, one table row per planned action: its side effects on the ledger, Symbl and the run.

A fake hook (scripted jobs and submissions), an in-memory ledger store with the S3 store's conditional
writes, and an in-memory S3 object: no network, so every branch of ``AppendRun.step`` is a row here,
in the style of ``test_plan.py`` (which covers *which* action comes next).
"""

from __future__ import annotations

import io
import json
import logging
from dataclasses import dataclass, field

import pytest
from airflow.sdk.exceptions import AirflowException, AirflowFailException

from symbl_airflow.appends import ledger as L
from symbl_airflow.appends import plan as P
from symbl_airflow.appends.run import RESUME_METHOD_NAME, AppendRun, Checked, Deferral, Settings
from symbl_airflow.appends.stores import LedgerConflict, LedgerStore
from symbl_airflow.errors import (
    SymblAmbiguousSubmissionError,
    SymblJobWaitTimeoutError,
    SymblNotFoundError,
    SymblServerError,
)
from symbl_airflow.hooks import SymblJob, SymblSubmission

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

    def submit_media(self, endpoint, open_body, length, *, conversation_id=None, content_type=None, **_):
        body = open_body().read()
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


def make_run(store, hook, *, n: int = 3, writer=ME, **settings) -> AppendRun:
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
