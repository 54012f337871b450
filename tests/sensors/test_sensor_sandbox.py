"""SymblJobSensor against the real sandbox: poke, deferral, and whole DAG runs with dag.test()."""

from __future__ import annotations

import io
import time
import uuid
from datetime import datetime, timedelta

import pytest
from airflow.sdk.exceptions import AirflowException, TaskDeferred

from symbl_airflow.sensors import SymblJobSensor
from symbl_airflow.triggers import SymblJobTrigger

pytestmark = pytest.mark.integration

RESULTS: dict[str, object] = {}


def wait_until_terminal(sandbox, job_ids, timeout=30.0):
    headers = {"Authorization": f"Bearer {sandbox.token()}"}
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        statuses = [sandbox.request("GET", f"/v1/job/{j}", headers=headers).json()["status"] for j in job_ids]
        if all(s in ("completed", "failed") for s in statuses):
            return statuses
        time.sleep(0.05)
    raise AssertionError(f"jobs {job_ids} not terminal after {timeout}s")


# ---------------------------------------------------------------------------------------------- poke
def test_poke_false_then_true(clean_sandbox, submit):
    short = submit()
    wait_until_terminal(clean_sandbox, [short.job_id])
    long = submit(seconds=60.0)  # ~3 s of simulated work
    sensor = SymblJobSensor(task_id="wait", job_ids=[short.job_id, long.job_id])
    assert sensor.poke({}) is False
    wait_until_terminal(clean_sandbox, [long.job_id])
    gets_before = clean_sandbox.stats()["requests"]["GET /v1/job/{jobId}"]
    assert sensor.poke({}) is True
    # A job seen completed is not polled again: only the one that was still pending.
    assert clean_sandbox.stats()["requests"]["GET /v1/job/{jobId}"] - gets_before == 1


def test_poke_raises_on_failed_job(clean_sandbox, submit):
    clean_sandbox.fault(match={"method": "POST", "path": "/v1/process/video"}, action="fail_job")
    sub = submit()
    wait_until_terminal(clean_sandbox, [sub.job_id])
    sensor = SymblJobSensor(task_id="wait", job_ids={"conversation_id": sub.conversation_id, "job_ids": [sub.job_id]})
    with pytest.raises(AirflowException) as exc:
        sensor.poke({})
    assert sub.job_id in str(exc.value) and sub.conversation_id in str(exc.value)


def test_non_deferrable_execute_pokes_until_done(clean_sandbox, submit):
    sub = submit()
    sensor = SymblJobSensor(task_id="wait", job_ids=sub.job_id, poke_interval=0.1, timeout=30)
    assert sensor.execute({}) == [sub.job_id]


# ---------------------------------------------------------------------------------------------- deferral
def test_deferrable_execute_defers_with_trigger_and_timeout(clean_sandbox, submit):
    sub = submit(seconds=60.0)
    sensor = SymblJobSensor(
        task_id="wait",
        job_ids=[{"conversation_id": sub.conversation_id, "job_ids": [sub.job_id], "sources": ["s3://b/k.mp4"]}],
        deferrable=True,
        poke_interval=0.5,
        timeout=90,
    )
    before = time.time()
    with pytest.raises(TaskDeferred) as exc:
        sensor.execute({})
    deferred = exc.value
    assert deferred.method_name == "execute_complete"
    assert deferred.timeout == timedelta(seconds=90)
    trigger = deferred.trigger
    assert isinstance(trigger, SymblJobTrigger)
    classpath, kwargs = trigger.serialize()
    assert classpath == "symbl_airflow.triggers.SymblJobTrigger"
    assert kwargs["job_ids"] == [sub.job_id]
    assert kwargs["conversation_id"] == sub.conversation_id
    assert kwargs["poll_interval"] == 0.5
    assert kwargs["symbl_conn_id"] == "symbl_default"
    assert before + 90 <= kwargs["end_time"] <= time.time() + 90


def test_deferrable_execute_returns_at_once_when_done(clean_sandbox, submit, monkeypatch):
    sub = submit()
    wait_until_terminal(clean_sandbox, [sub.job_id])
    sensor = SymblJobSensor(task_id="wait", job_ids=sub.job_id, deferrable=True)

    def no_defer(**kwargs):
        raise AssertionError("must not defer a finished job")

    monkeypatch.setattr(sensor, "defer", no_defer)
    assert sensor.execute({}) == [sub.job_id]


# ---------------------------------------------------------------------------------------------- dag.test()
def _dag(name: str, submit_video, **sensor_kwargs):
    from airflow.sdk import DAG, task

    key = f"{name}_{uuid.uuid4().hex[:8]}"
    with DAG(
        dag_id=f"test_symbl_sensor_{key}",
        schedule=None,
        start_date=datetime(2024, 1, 1),
        catchup=False,
        default_args={"retries": 0},
    ) as dag:

        @task
        def append():
            first = submit_video()
            second = submit_video(conversation_id=first.conversation_id)
            return {
                "conversation_id": first.conversation_id,
                "job_ids": [first.job_id, second.job_id],
                "sources": ["s3://bucket/a.mp4", "s3://bucket/b.mp4"],
            }

        @task
        def downstream(job_ids):
            RESULTS[key] = job_ids

        appended = append()
        waited = SymblJobSensor(
            task_id="wait", job_ids=appended, deferrable=True, poke_interval=0.2, timeout=60, **sensor_kwargs
        )
        appended >> waited >> downstream(waited.output)
    return dag, key


def _states(dr) -> dict[str, str]:
    return {ti.task_id: str(ti.state) for ti in dr.get_task_instances()}


@pytest.fixture
def submit_video(clean_sandbox, mp4):
    """Submits inside the DAG's task (a fresh SymblHook each call, as a worker would)."""

    def _submit(conversation_id=None):
        from symbl_airflow.hooks import SymblHook

        # 30 s of media: ~1.5 s of simulated work per job, so the sensor's first poke sees it pending.
        data = mp4.make([("Alice", "Hello there."), ("Bob", "Hi Alice.")], seconds_per_cue=15.0)
        return SymblHook().submit_video(lambda: io.BytesIO(data), len(data), conversation_id=conversation_id)

    return _submit


def test_dag_waits_in_trigger_then_runs_downstream(clean_sandbox, submit_video, run_dag, capsys, caplog):
    dag, key = _dag("ok", submit_video)
    dr = run_dag(dag)
    output = capsys.readouterr().out + caplog.text
    assert "running trigger in line" in output  # the sensor deferred and the trigger fired
    assert str(dr.state) == "success", _states(dr)
    assert _states(dr) == {"append": "success", "wait": "success", "downstream": "success"}
    job_ids = [e["jobId"] for e in clean_sandbox.ledger()]
    assert len(job_ids) == 2
    assert RESULTS[key] == job_ids  # the sensor's XCom: the job ids, in order


def test_dag_fails_when_job_fails(clean_sandbox, submit_video, run_dag, capsys, caplog):
    clean_sandbox.fault(match={"method": "PUT", "path": "/v1/process/video/*"}, action="fail_job")
    dag, key = _dag("fail", submit_video)
    dr = run_dag(dag)
    assert str(dr.state) == "failed"
    states = _states(dr)
    assert states["append"] == "success"
    assert states["wait"] == "failed"
    assert states["downstream"] == "upstream_failed", states
    assert key not in RESULTS
    ledger = clean_sandbox.ledger()
    failed_job = ledger[1]["jobId"]
    out = capsys.readouterr()
    logs = out.out + out.err + caplog.text
    assert "running trigger in line" in logs  # failed while deferred: the trigger's "failed" event
    assert f"Symbl job {failed_job} failed (video s3://bucket/b.mp4)" in logs  # names the S3 video
    assert "AirflowFailException" in logs or "SymblJobFailedError" in logs
    assert "ended with" not in logs  # the trigger's message, not wrapped again


@pytest.fixture
def db_connection(clean_sandbox):
    """The sandbox's connection stored in the metadata DB only (no AIRFLOW_CONN_* variable)."""
    from airflow.models import Connection
    from airflow.utils.session import create_session

    conn_id = f"symbl_db_{uuid.uuid4().hex[:8]}"
    conn = Connection(
        conn_id=conn_id,
        conn_type="symbl",
        host=clean_sandbox.url,
        login=clean_sandbox.app_id,
        password=clean_sandbox.app_secret,
    )
    with create_session() as session:
        session.add(conn)
    yield conn_id
    with create_session() as session:
        session.query(Connection).filter(Connection.conn_id == conn_id).delete()


def test_dag_test_with_a_metadata_db_connection(clean_sandbox, submit_video, db_connection, run_dag, capsys, caplog):
    """``airflow dags test`` runs the trigger in-process: its async lookup must find a DB connection."""
    dag, key = _dag("dbconn", submit_video, symbl_conn_id=db_connection)
    dr = run_dag(dag)
    out = capsys.readouterr()
    logs = out.out + out.err + caplog.text
    assert "running trigger in line" in logs
    assert "isn't defined" not in logs
    assert _states(dr) == {"append": "success", "wait": "success", "downstream": "success"}
    assert RESULTS[key] == [e["jobId"] for e in clean_sandbox.ledger()]
