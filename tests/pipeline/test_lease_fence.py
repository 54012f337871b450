"""The lease as a fence (issue 22): a paused writer, a vanished ledger, an accepted upload answered 5xx.

Every case is checked against the sandbox's submission log (``GET /sandbox/ledger``), the ground truth
of what reached Symbl. Where two deployments matter, writer A is a real ``airflow dags test`` process
with its own Airflow home (its own metadata DB and task state), sharing only S3 and the sandbox with
writer B, this test process; A is paused with SIGSTOP and resumed with SIGCONT.
"""

from __future__ import annotations

import hashlib
import os
import signal
import struct
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from tests.pipeline.test_ledger_cases import PREFIX, Folder

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
LEASE = 10


def _pad(data: bytes, size: int) -> bytes:
    """The MP4 with a trailing ``free`` box: still a valid MP4 of the same media, ``size`` bytes long."""
    extra = max(0, size - len(data) - 8)
    return data + struct.pack(">I4s", extra + 8, b"free") + bytes(extra)


class TaskState(dict):
    """A task instance's ``task_state_store`` (get/set), kept by the test across tries."""

    def set(self, key, value):
        self[key] = value


def _context(run_id: str, *, dag_id: str = "fence", try_number: int = 1, state: TaskState | None = None):
    """A task context for ``operator.execute`` outside Airflow: a TI identity and a task state store."""

    class TI:
        task_id, map_index = "append", -1

        def xcom_pull(self, *args, **kwargs):
            return None

        def xcom_push(self, *args, **kwargs):
            return None

    ti = TI()
    ti.dag_id, ti.run_id, ti.try_number = dag_id, run_id, try_number
    store = TaskState() if state is None else state
    return {"ti": ti, "task_state_store": store}


class OtherDeployment:
    """Writer A: ``airflow dags test`` in an Airflow home of its own (own metadata DB, own task state)."""

    def __init__(self, workdir: Path):
        self.home = workdir / "home-a"
        self.dags = workdir / "dags-a"
        self.home.mkdir(parents=True)
        self.dags.mkdir()
        self.env = {
            **os.environ,
            "AIRFLOW_HOME": str(self.home),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{self.home / 'airflow.db'}",
            "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "PYTHONPATH": os.pathsep.join([str(ROOT / "plugins"), str(ROOT)]),
        }
        self.proc: subprocess.Popen | None = None
        self.log = workdir / "dags-test-a.log"
        self._airflow("db", "migrate")

    def _airflow(self, *args: str, timeout: float = 300) -> None:
        proc = subprocess.run(
            [sys.executable, "-m", "airflow", *args], env=self.env, capture_output=True, text=True, timeout=timeout
        )
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    def start(self, dag_id: str, operator_kwargs: str) -> None:
        (self.dags / f"{dag_id}.py").write_text(
            textwrap.dedent(
                f"""
                from datetime import datetime
                from airflow.sdk import DAG
                from symbl_airflow import SymblAppendVideoOperator

                with DAG({dag_id!r}, schedule=None, start_date=datetime(2026, 1, 1), catchup=False):
                    SymblAppendVideoOperator(task_id="append", {operator_kwargs})
                """
            )
        )
        self._airflow("dags", "reserialize")
        out = self.log.open("w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "airflow", "dags", "test", dag_id],
            env=self.env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: SIGSTOP reaches every process of it
        )

    def signal(self, sig: int) -> None:
        os.killpg(self.proc.pid, sig)

    def wait(self, timeout: float = 180) -> str:
        try:
            self.proc.wait(timeout)
        finally:
            if self.proc.poll() is None:
                self.signal(signal.SIGCONT)
                self.signal(signal.SIGKILL)
                self.proc.wait(30)
        return self.log.read_text()


@pytest.fixture
def other_deployment(tmp_path):
    deployment = OtherDeployment(tmp_path)
    yield deployment
    if deployment.proc is not None and deployment.proc.poll() is None:
        deployment.signal(signal.SIGCONT)
        deployment.signal(signal.SIGKILL)
        deployment.proc.wait(30)


def _wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def _part_state(folder: Folder, n: int) -> str | None:
    try:
        ledger = folder.ledger()
    except Exception:
        return None
    part = next((p for p in ledger["parts"] if p["uri"] == folder.uri(n)), None)
    return part and part["state"]


def _operator(folder: Folder, uris: list[str], **kwargs):
    from symbl_airflow import SymblAppendVideoOperator

    kwargs = {"lease_seconds": LEASE, "poll_interval": 0.2, **kwargs}
    return SymblAppendVideoOperator(task_id="append", source=uris, ledger_uri=folder.ledger_uri, **kwargs)


def _a_kwargs(folder: Folder, uris: list[str]) -> str:
    return f"source={uris!r}, ledger_uri={folder.ledger_uri!r}, lease_seconds={LEASE}, poll_interval=0.2"


# ---------------------------------------------------------------------------------------------- case 1
def test_case1_a_writer_paused_mid_body_sends_no_further_byte(clean_sandbox, s3, bucket, mp4, other_deployment):
    """A is stopped mid-upload of part 2 for longer than its lease; B settles with resend and sends 2, 3;
    A resumes: its body is aborted before the next chunk. Symbl holds 1, 2, 3 once each, in order."""
    from airflow.sdk.exceptions import AirflowFailException

    folder = Folder(s3, bucket, mp4, "paused")
    folder.put(1)
    key2 = f"{PREFIX}paused/part-002.mp4"
    big = _pad(mp4.make([("Alice", "paused part 2 says something unique number 2.")]), 48 << 20)
    folder.client.put_object(Bucket=bucket, Key=key2, Body=big)
    folder.sha[2] = hashlib.sha256(big).hexdigest()
    folder.put(3)
    uris = [folder.uri(n) for n in (1, 2, 3)]
    # The sandbox reads part 2's body only after 6 s: A blocks mid-body once the socket buffers are full.
    clean_sandbox.fault(match={"method": "PUT", "path": "/v1/process/video/*"}, action="latency", delay=6, times=1)

    other_deployment.start("fence_writer_a", _a_kwargs(folder, uris))
    _wait_for(lambda: _part_state(folder, 2) == "sending", 180, "A's intent for part 2")
    time.sleep(1.0)  # A is inside the body now (blocked on the socket)
    other_deployment.signal(signal.SIGSTOP)
    try:
        time.sleep(LEASE + 3)  # A's lease runs out while it is stopped
        op = _operator(folder, uris)
        with pytest.raises(AirflowFailException) as err:
            op.execute(_context("run_b1", dag_id="fence_b"))
        message = str(err.value)
        assert "answer never arrived" in message and "may still be alive" in message
        assert "Check after" in message
        result = _operator(folder, uris, on_unconfirmed="resend").execute(_context("run_b2", dag_id="fence_b"))
        assert result["sources"] == uris[1:]
    finally:
        other_deployment.signal(signal.SIGCONT)
    out = other_deployment.wait()
    assert "lost the conversation's lease while uploading" in out, out[-4000:]
    time.sleep(1)
    assert folder.accepted(clean_sandbox) == [1, 2, 3]  # never 1, 2, 3, 2
    ledger = folder.ledger()
    assert [p["state"] for p in ledger["parts"]] == ["completed", "completed", "accepted"]
    assert not ledger.get("stopped") and not ledger.get("orphans")


def test_case1_paused_after_its_last_byte_the_duplicate_is_recorded_and_stops(
    clean_sandbox, s3, bucket, mp4, other_deployment
):
    """A's whole (small) body is out when it is stopped; B resends 2 and 3; Symbl then takes A's part 2 too.
    That duplicate cannot be unsent: A records it as an orphan, the conversation stops, the message says how on."""
    from airflow.sdk.exceptions import AirflowFailException

    folder = Folder(s3, bucket, mp4, "orphan")
    uris = [folder.put(n) for n in (1, 2, 3)]
    # Symbl answers A's part 2 only after B is done (the body sits in the socket buffers meanwhile).
    clean_sandbox.fault(match={"method": "PUT", "path": "/v1/process/video/*"}, action="latency", delay=35, times=1)
    other_deployment.start("fence_writer_orphan", _a_kwargs(folder, uris))
    _wait_for(lambda: _part_state(folder, 2) == "sending", 180, "A's intent for part 2")
    time.sleep(1.0)
    other_deployment.signal(signal.SIGSTOP)
    try:
        time.sleep(LEASE + 3)
        result = _operator(folder, uris, on_unconfirmed="resend").execute(_context("run_b", dag_id="fence_b"))
        assert result["sources"] == uris[1:]
        _wait_for(lambda: len(clean_sandbox.ledger()) == 4, 60, "Symbl to take A's part 2 as well")
    finally:
        other_deployment.signal(signal.SIGCONT)
    out = other_deployment.wait()
    assert "may now hold this part twice" in out and "accept-duplicate" in out, out[-4000:]
    assert folder.accepted(clean_sandbox) == [1, 2, 3, 2]  # what Symbl did; now it is on record
    ledger = folder.ledger()
    assert ledger["stopped"]["reason"] == "duplicate"
    (orphan,) = ledger["orphans"]
    assert orphan["part"] == folder.uri(2) and "fence_writer_orphan" in orphan["writer"]
    # every later run refuses until a person decides
    folder.put(4)
    with pytest.raises(AirflowFailException, match="accept-duplicate"):
        _operator(folder, [folder.uri(4)]).execute(_context("run_c", dag_id="fence_c"))
    assert len(clean_sandbox.ledger()) == 4


# ---------------------------------------------------------------------------------------------- case 2
def test_case2_a_ledger_deleted_while_the_task_waits_between_parts_stops_it(clean_sandbox, s3, bucket, mp4):
    from airflow.sdk.exceptions import AirflowFailException

    folder = Folder(s3, bucket, mp4, "vanish")
    uris = [folder.put(n) for n in (1, 2, 3)]
    # The first job poll hangs 3 s: the task is waiting between parts 1 and 2 when the ledger goes.
    clean_sandbox.fault(match={"method": "GET", "path": "/v1/job/*"}, action="latency", delay=3, times=1)
    errors: dict[str, BaseException] = {}
    state = TaskState()

    def run():
        try:
            _operator(folder, uris).execute(_context("run_v", state=state))
        except BaseException as exc:  # noqa: B036 - the test inspects it
            errors["a"] = exc

    thread = threading.Thread(target=run)
    thread.start()
    _wait_for(lambda: _part_state(folder, 1) == "accepted" or errors, 60, f"part 1 accepted ({errors})")
    assert not errors, errors
    folder.client.delete_object(Bucket=bucket, Key=f"{PREFIX}vanish/_symbl.json")
    thread.join(90)
    assert isinstance(errors.get("a"), AirflowFailException), errors
    assert "disappeared" in str(errors["a"]) and "NEW run" in str(errors["a"])
    entries = clean_sandbox.ledger()
    assert [e["method"] for e in entries] == ["POST"]  # no second conversation, nothing sent twice
    assert folder.client.list_objects_v2(Bucket=bucket, Prefix=f"{PREFIX}vanish/_symbl.json")["KeyCount"] == 0
    # its retry (same task instance: same task state) stops too; a new run starts a new conversation
    with pytest.raises(AirflowFailException, match="disappeared"):
        _operator(folder, uris).execute(_context("run_v", try_number=2, state=state))
    assert len(clean_sandbox.ledger()) == 1
    result = _operator(folder, uris).execute(_context("run_new"))
    assert result["sources"] == uris and len({e["conversationId"] for e in clean_sandbox.ledger()}) == 2


# ---------------------------------------------------------------------------------------------- case 3
@pytest.mark.parametrize("status", [500, 504])
def test_case3_accepted_then_5xx_stays_unconfirmed_and_is_never_resent_by_a_retry(
    clean_sandbox, s3, bucket, mp4, run_dag, status
):
    from tests.airflow_helpers import make_dag

    folder = Folder(s3, bucket, mp4, f"gateway{status}")
    uris = [folder.put(n) for n in (1, 2, 3)]
    clean_sandbox.fault(
        match={"method": "PUT", "path": "/v1/process/video/*"},
        action="status",
        status=status,
        phase="after_accept",
        times=1,
    )
    with make_dag(f"fence_gateway_{status}") as dag:
        _operator(folder, uris, retries=2, retry_delay=0)
    dr = run_dag(dag)
    assert dr.state == "failed"
    ti = next(t for t in dr.get_task_instances() if t.task_id == "append")
    assert ti.try_number == 1  # no retry: it could only resend blindly
    assert folder.accepted(clean_sandbox) == [1, 2]  # Symbl has part 2, once
    part2 = next(p for p in folder.ledger()["parts"] if p["uri"] == folder.uri(2))
    assert part2["state"] == "sending"  # the intent stays: the next run must settle it


# ---------------------------------------------------------------------------------------------- case 4
def test_case4_equal_task_names_in_another_deployment_do_not_inherit_a_live_lease(clean_sandbox, s3, bucket, mp4):
    """Two deployments, same DAG, same scheduled run id, same task id: the later try number proves nothing."""
    folder = Folder(s3, bucket, mp4, "twins")
    uris = [folder.put(n) for n in (1, 2)]
    clean_sandbox.fault(match={"path": "/v1/process/video*"}, action="latency", delay=2, times=2)
    run_id = "scheduled__2026-12-06T00:00:00+00:00"
    results: dict = {}

    def deployment(name: str, try_number: int):
        op = _operator(folder, uris, on_busy="fail" if name == "twin" else "wait")
        try:
            results[name] = op.execute(_context(run_id, try_number=try_number))
        except Exception as exc:
            results[name] = exc

    first = threading.Thread(target=deployment, args=("first", 1))
    first.start()
    _wait_for(lambda: _part_state(folder, 1) == "sending", 60, "the first deployment's intent")
    deployment("twin", 2)  # same names, try 2, its own (empty) task state: no proof of inheritance
    first.join(90)
    assert "is held by fence/" in str(results["twin"]), results
    assert results["first"]["sources"] == uris
    assert [e["method"] for e in clean_sandbox.ledger()] == ["POST", "PUT"]


# ---------------------------------------------------------------------------------------------- case 5
def test_case5_an_unknown_conversation_fails_once_naming_the_ledger(clean_sandbox, s3, bucket, mp4, run_dag):
    from tests.airflow_helpers import make_dag

    folder = Folder(s3, bucket, mp4, "deleted")
    uris = [folder.put(n) for n in (1, 2)]
    with make_dag("fence_deleted_first") as dag:
        _operator(folder, uris[:1], wait_for_completion=True)
    assert run_dag(dag).state == "success"
    conversation_id = folder.ledger()["conversation_id"]
    from symbl_airflow.hooks import SymblHook

    SymblHook().delete_conversation(conversation_id)
    with make_dag("fence_deleted_then") as dag:
        _operator(folder, uris, retries=2, retry_delay=0)
    dr = run_dag(dag)
    assert dr.state == "failed"
    ti = next(t for t in dr.get_task_instances() if t.task_id == "append")
    assert ti.try_number == 1
    assert len(clean_sandbox.ledger()) == 1


def test_case5_the_final_wait_records_completion_in_the_ledger(clean_sandbox, s3, bucket, mp4):
    folder = Folder(s3, bucket, mp4, "final")
    uris = [folder.put(n) for n in (1, 2)]
    result = _operator(folder, uris, wait_for_completion=True).execute(_context("run_f"))
    assert result["sources"] == uris
    assert [p["state"] for p in folder.ledger()["parts"]] == ["completed", "completed"]


def test_pipeline_params_carry_lease_seconds():
    from symbl_airflow.pipeline import PipelineSettings, pipeline_params

    assert pipeline_params(PipelineSettings())["lease_seconds"].value == 300
