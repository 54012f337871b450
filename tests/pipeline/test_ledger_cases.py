"""The conversation ledger's six cases (issue: ordered, exactly-once appends per conversation).

Each runs the shipped ``symbl_video_pipeline`` with ``dag.test()`` against the real sandbox and a
real local S3, and checks the outcome against the sandbox's own ledger of accepted submissions,
which is the ground truth of what reached Symbl.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time

import pytest

from tests.pipeline.test_video_pipeline import _load_pipeline, _messages

pytestmark = pytest.mark.integration

PREFIX = "videos/"


def _states(dr) -> dict[str, str]:
    return {f"{ti.task_id}[{ti.map_index}]": str(ti.state) for ti in dr.get_task_instances()}


class Folder:
    """One conversation folder in S3 and what to expect of it in Symbl."""

    def __init__(self, s3, bucket: str, mp4, name: str = "conv"):
        self.client, self.bucket, self.mp4, self.name = s3.client(), bucket, mp4, name
        self.sha: dict[int, str] = {}
        self.text: dict[int, str] = {}

    def put(self, n: int) -> str:
        text = f"{self.name} part {n} says something unique number {n}."
        data = self.mp4.make([("Alice", text)])
        key = f"{PREFIX}{self.name}/part-{n:03d}.mp4"
        self.client.put_object(Bucket=self.bucket, Key=key, Body=data)
        self.sha[n], self.text[n] = hashlib.sha256(data).hexdigest(), text
        return f"s3://{self.bucket}/{key}"

    def uri(self, n: int) -> str:
        return f"s3://{self.bucket}/{PREFIX}{self.name}/part-{n:03d}.mp4"

    @property
    def ledger_uri(self) -> str:
        return f"s3://{self.bucket}/{PREFIX}{self.name}/_symbl.json"

    def ledger(self) -> dict:
        obj = self.client.get_object(Bucket=self.bucket, Key=f"{PREFIX}{self.name}/_symbl.json")
        return json.loads(obj["Body"].read())

    def accepted(self, sandbox) -> list[int]:
        """Part numbers Symbl accepted, in arrival order (duplicates show twice)."""
        by_sha = {sha: n for n, sha in self.sha.items()}
        return [by_sha[e["sha256"]] for e in sandbox.ledger() if e["sha256"] in by_sha]

    def transcript(self, sandbox, conversation_id: str) -> list[int]:
        by_text = {t: n for n, t in self.text.items()}
        return [by_text[t] for t in _messages(sandbox, conversation_id) if t in by_text]


@pytest.fixture
def pipeline(monkeypatch, run_dag, bucket):
    dag = _load_pipeline(monkeypatch)

    def run(**conf):
        return run_dag(dag, run_conf={"bucket": bucket, "input_prefix": PREFIX, **conf})

    return run


def _wait_jobs(sandbox, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while sandbox.stats().get("active_jobs", 0) and time.monotonic() < deadline:
        time.sleep(0.1)


def test_case1_lost_answer_blocks_every_run_until_settled(clean_sandbox, s3, bucket, mp4, pipeline, capfd):
    """Part 2 accepted, answer lost: later runs send nothing until a run settles it with on_unconfirmed."""
    folder = Folder(s3, bucket, mp4)
    for n in (1, 2, 3):
        folder.put(n)
    clean_sandbox.fault(
        match={"method": "PUT", "path": "/v1/process/video/*"}, action="drop", phase="after_accept", times=1
    )
    dr = pipeline()
    assert dr.state == "failed", _states(dr)
    assert folder.accepted(clean_sandbox) == [1, 2]
    part2 = next(p for p in folder.ledger()["parts"] if p["uri"] == folder.uri(2))
    assert part2["state"] == "sending" and part2["sender"]["run_id"] == dr.run_id
    out = capfd.readouterr().out
    assert "answer never arrived" in out and '{"on_unconfirmed": "mark_sent"}' in out

    dr = pipeline()  # the next run, default conf: blocked, sends nothing
    assert dr.state == "failed", _states(dr)
    assert folder.accepted(clean_sandbox) == [1, 2]
    assert "answer never arrived" in capfd.readouterr().out

    dr = pipeline(on_unconfirmed="skip")  # a new run settles it as Symbl has it
    assert dr.state == "success", _states(dr)
    assert folder.accepted(clean_sandbox) == [1, 2, 3]
    ledger = folder.ledger()
    # part 2 settled as present (job id unknown); part 3's outcome is the final wait's (the sensor)
    assert [p["state"] for p in ledger["parts"]] == ["completed", "completed", "completed"]
    assert folder.transcript(clean_sandbox, ledger["conversation_id"]) == [1, 2, 3]


def test_case1b_lost_body_resent_from_a_new_run(clean_sandbox, s3, bucket, mp4, pipeline):
    """The connection dies after the body, before Symbl accepts: a new run with resend sends it once."""
    folder = Folder(s3, bucket, mp4)
    for n in (1, 2):
        folder.put(n)
    clean_sandbox.fault(
        match={"method": "PUT", "path": "/v1/process/video/*"}, action="drop", phase="after_body", times=1
    )
    assert pipeline().state == "failed"
    assert folder.accepted(clean_sandbox) == [1]
    dr = pipeline(on_unconfirmed="resend")
    assert dr.state == "success", _states(dr)
    assert folder.accepted(clean_sandbox) == [1, 2]
    assert folder.transcript(clean_sandbox, folder.ledger()["conversation_id"]) == [1, 2]


def test_case2_and_3_failed_job_leaves_no_hole_in_this_or_later_runs(clean_sandbox, s3, bucket, mp4, pipeline, capfd):
    folder = Folder(s3, bucket, mp4)
    for n in (1, 2, 3):
        folder.put(n)
    clean_sandbox.fault(match={"method": "PUT", "path": "/v1/process/video/*"}, action="fail_job", times=1)
    dr = pipeline()
    assert dr.state == "failed", _states(dr)
    assert folder.accepted(clean_sandbox) == [1, 2]  # case 2: part 3 never followed the failed part 2
    ledger = folder.ledger()
    failed_job = ledger["parts"][1]["job_id"]
    assert ledger["stopped"]["part"] == folder.uri(2) and ledger["stopped"]["job_id"] == failed_job
    out = capfd.readouterr().out
    assert failed_job in out and folder.uri(2) in out

    folder.put(4)  # case 3: the next run finds a new part and must still refuse
    dr = pipeline()
    assert dr.state == "failed", _states(dr)
    assert folder.accepted(clean_sandbox) == [1, 2]
    out = capfd.readouterr().out
    assert "is stopped" in out and failed_job in out and "symbl_airflow.ledger leave-out" in out

    # The way forward, chosen by a person: accept the hole on purpose; then 3 and 4 follow.
    from symbl_airflow.ledger_cli import main as ledger_cli

    assert ledger_cli(["skip", folder.ledger_uri, "--part", folder.uri(2)]) == 0
    dr = pipeline()
    assert dr.state == "success", _states(dr)
    assert folder.accepted(clean_sandbox) == [1, 2, 3, 4]
    assert [p["state"] for p in folder.ledger()["parts"]] == ["completed", "skipped", "completed", "completed"]


def test_case3_restart_from_a_part_makes_a_new_conversation(clean_sandbox, s3, bucket, mp4, pipeline):
    folder = Folder(s3, bucket, mp4)
    for n in (1, 2, 3):
        folder.put(n)
    clean_sandbox.fault(match={"method": "PUT", "path": "/v1/process/video/*"}, action="fail_job", times=1)
    assert pipeline().state == "failed"
    old = folder.ledger()["conversation_id"]
    from symbl_airflow.ledger_cli import main as ledger_cli

    assert ledger_cli(["restart", folder.ledger_uri, "--from", folder.uri(3)]) == 0
    dr = pipeline()
    assert dr.state == "success", _states(dr)
    ledger = folder.ledger()
    assert ledger["conversation_id"] != old and ledger["start_from"] == folder.uri(3)
    assert [p["uri"] for p in ledger["parts"]] == [folder.uri(3)]
    entries = [e for e in clean_sandbox.ledger() if e["sha256"] == folder.sha[3]]
    assert [e["method"] for e in entries] == ["POST"]
    archive = folder.client.get_object(Bucket=bucket, Key=f"{PREFIX}conv/_symbl.{old}.json")
    assert json.loads(archive["Body"].read())["conversation_id"] == old


def test_case4_late_part_is_reported_never_appended(clean_sandbox, s3, bucket, mp4, pipeline, capfd):
    folder = Folder(s3, bucket, mp4)
    folder.put(2)
    folder.put(3)
    assert pipeline().state == "success"
    folder.put(1)  # lands after 2 and 3 were appended
    dr = pipeline()
    assert dr.state == "success", _states(dr)
    assert folder.accepted(clean_sandbox) == [2, 3]
    assert folder.ledger()["late"] == [{"uri": folder.uri(1), "etag": ""}]
    out = capfd.readouterr().out
    assert f"{folder.uri(1)} is LATE" in out
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session

    with create_session() as session:
        row = (
            session.query(XComModel)
            .filter_by(dag_id=dr.dag_id, run_id=dr.run_id, task_id="conversation.append", key="return_value")
            .one()
        )
        value = row.value if isinstance(row.value, dict) else json.loads(row.value)
    assert value["late"] == [folder.uri(1)] and value["job_ids"] == []
    dr = pipeline()  # reported once: the next run does not even map the conversation
    assert dr.state == "success"
    assert not [ti for ti in dr.get_task_instances() if ti.task_id == "conversation.append" and ti.map_index >= 0]
    assert folder.transcript(clean_sandbox, folder.ledger()["conversation_id"]) == [2, 3]


def _writer_context(run_id: str):
    class TI:
        dag_id, task_id, map_index, try_number = "two_writers", "append", -1, 1

        def xcom_pull(self, *args, **kwargs):
            return None

        def xcom_push(self, *args, **kwargs):
            return None

    ti = TI()
    ti.run_id = run_id
    return {"ti": ti, "task_state_store": None}


def test_case5_two_writers_one_conversation(clean_sandbox, s3, bucket, mp4):
    """Two writers start on one new folder at once: one conversation, every part once, in order."""
    from airflow.sdk.exceptions import AirflowFailException

    from symbl_airflow import SymblAppendVideoOperator

    folder = Folder(s3, bucket, mp4)
    uris = [folder.put(n) for n in (1, 2, 3)]
    # Slow Symbl down so both writers are alive at the same time.
    clean_sandbox.fault(match={"path": "/v1/process/video*"}, action="latency", delay=1.0, times=2)

    results, errors = {}, {}

    def writer(name: str, **kwargs):
        op = SymblAppendVideoOperator(
            task_id=f"append_{name}", source=uris, ledger_uri=folder.ledger_uri, poll_interval=0.2, **kwargs
        )
        try:
            results[name] = op.execute(_writer_context(f"run_{name}"))
        except Exception as exc:
            errors[name] = exc

    first = threading.Thread(target=writer, args=("a",), kwargs={"lease_seconds": 10})
    first.start()
    deadline = time.monotonic() + 20
    while not folder.client.list_objects_v2(Bucket=bucket, Prefix=f"{PREFIX}conv/_symbl.json").get("KeyCount"):
        assert time.monotonic() < deadline
        time.sleep(0.02)
    # A second writer that must not wait: it fails clearly and sends nothing.
    writer("b", on_busy="fail")
    assert isinstance(errors.get("b"), AirflowFailException), errors
    assert "is held by two_writers/run_a/append" in str(errors["b"])
    # A third that waits for the lease, then finds everything done.
    third = threading.Thread(target=writer, args=("c",), kwargs={"lease_seconds": 10})
    third.start()
    first.join(60)
    third.join(60)
    assert not first.is_alive() and not third.is_alive()
    assert "a" in results and "c" in results, errors
    assert results["a"]["sources"] == uris
    assert results["c"]["job_ids"] == [] and results["c"]["skipped"] == uris
    entries = clean_sandbox.ledger()
    assert [e["method"] for e in entries] == ["POST", "PUT", "PUT"]
    assert len({e["conversationId"] for e in entries}) == 1
    assert folder.accepted(clean_sandbox) == [1, 2, 3]


def test_case5_plain_operator_interleaving_is_refused(clean_sandbox, s3, bucket, mp4):
    """Two tasks given one conversation_id and one ledger: the second waits its turn, nothing interleaves."""
    from symbl_airflow import SymblAppendVideoOperator

    folder = Folder(s3, bucket, mp4)
    uris = [folder.put(n) for n in (1, 2, 3, 4)]
    first = SymblAppendVideoOperator(task_id="a", source=uris[:2], ledger_uri=folder.ledger_uri, poll_interval=0.2)
    conversation_id = first.execute(_writer_context("r1"))["conversation_id"]
    results = {}

    def run(name, sources):
        op = SymblAppendVideoOperator(
            task_id=name,
            source=sources,
            conversation_id=conversation_id,
            ledger_uri=folder.ledger_uri,
            poll_interval=0.2,
            lease_seconds=10,
        )
        results[name] = op.execute(_writer_context(f"run_{name}"))

    threads = [threading.Thread(target=run, args=(n, uris[2:])) for n in ("x", "y")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(90)
    assert folder.accepted(clean_sandbox) == [1, 2, 3, 4]
    sent = sorted(len(r["job_ids"]) for r in results.values())
    assert sent == [0, 2], results


def test_case6_stale_ledger_fails_once_naming_the_file(clean_sandbox, s3, bucket, mp4, pipeline, capfd):
    folder = Folder(s3, bucket, mp4)
    folder.put(1)
    folder.put(2)
    # A version-1 state file from another Symbl account: its job id means nothing here.
    stale = {
        "version": 1,
        "conversation_id": "1234567890",
        "parts": [{"uri": folder.uri(1), "seq": 1, "etag": "x", "size": 1, "job_id": "no-such-job"}],
    }
    folder.client.put_object(Bucket=bucket, Key=f"{PREFIX}conv/_symbl.json", Body=json.dumps(stale).encode())
    dr = pipeline()
    assert dr.state == "failed", _states(dr)
    append = next(ti for ti in dr.get_task_instances() if ti.task_id == "conversation.append")
    assert append.try_number == 1  # not retried: a retry cannot change it
    out = capfd.readouterr().out
    assert "does not know job no-such-job" in out and folder.ledger_uri in out and "move the ledger aside" in out
    assert clean_sandbox.ledger() == []


def test_case6_ledger_of_another_endpoint_is_refused(clean_sandbox, s3, bucket, mp4, pipeline, capfd):
    folder = Folder(s3, bucket, mp4)
    folder.put(1)
    foreign = {
        "version": 2,
        "symbl": {"host": "https://api.symbl.ai", "app_id": "production-app"},
        "conversation_id": "42",
        "parts": [],
    }
    folder.client.put_object(Bucket=bucket, Key=f"{PREFIX}conv/_symbl.json", Body=json.dumps(foreign).encode())
    dr = pipeline()
    assert dr.state == "failed"
    out = capfd.readouterr().out
    assert "was written for Symbl at https://api.symbl.ai" in out and folder.ledger_uri in out
    assert clean_sandbox.ledger() == []


def test_version1_state_is_upgraded_and_continued(clean_sandbox, s3, bucket, mp4, pipeline):
    """A 0.1 ``_symbl.json`` keeps its conversation: the next part is a PUT to it, the file becomes v2."""
    folder = Folder(s3, bucket, mp4)
    folder.put(1)
    assert pipeline().state == "success"
    v2 = folder.ledger()
    v1 = {
        "version": 1,
        "conversation_id": v2["conversation_id"],
        "parts": [
            {"uri": p["uri"], "seq": p["seq"], "etag": p["etag"], "size": p["size"], "job_id": p["job_id"]}
            for p in v2["parts"]
        ],
    }
    folder.client.put_object(Bucket=bucket, Key=f"{PREFIX}conv/_symbl.json", Body=json.dumps(v1).encode())
    folder.put(2)
    dr = pipeline()
    assert dr.state == "success", _states(dr)
    upgraded = folder.ledger()
    assert upgraded["version"] == 2 and upgraded["conversation_id"] == v2["conversation_id"]
    assert [e["method"] for e in clean_sandbox.ledger()] == ["POST", "PUT"]
    assert folder.transcript(clean_sandbox, upgraded["conversation_id"]) == [1, 2]
