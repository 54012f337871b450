"""SymblJobSensor writes what it saw to the conversation ledger the append XCom names (real sandbox, moto S3).

The final wait of the example pipeline is the sensor: without this the ledger says ``accepted`` for the
last part forever after a green run. Recording an outcome needs no lease (another writer may hold it),
a ledger that cannot be written only warns, and bare job ids never touch S3.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time

import pytest
from airflow.sdk.exceptions import TaskDeferred

from symbl_airflow.appends import ledger as L
from symbl_airflow.errors import SymblJobFailedError
from symbl_airflow.sensors import SymblJobSensor

pytestmark = pytest.mark.integration

OTHER = L.Writer(dag_id="d", run_id="next", task_id="append", try_number=1, hostname="w2", token="other")


def _ledger_with(s3, bucket: str, sub, *, lease_seconds: float = 600) -> tuple[str, str]:
    """A ledger whose one part holds ``sub``'s job as *accepted*, its lease held by another live writer."""
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    from symbl_airflow.appends.stores import S3LedgerStore

    uri, part = f"s3://{bucket}/meeting/_symbl.json", f"s3://{bucket}/meeting/part-001.mp4"
    S3LedgerStore(S3Hook(), uri).update(
        L.bind_symbl({"host": "sandbox", "app_id": "app"}),
        L.acquire(OTHER, lease_seconds),
        L.intent(OTHER, part, "etag", 10),
        L.accepted(OTHER, part, sub.conversation_id, sub.job_id),
    )
    return uri, part


def _stored(s3, bucket: str) -> dict:
    return json.loads(s3.client().get_object(Bucket=bucket, Key="meeting/_symbl.json")["Body"].read())


def _xcom(sub, ledger_uri: str, part: str) -> dict:
    return {
        "conversation_id": sub.conversation_id,
        "job_ids": [sub.job_id],
        "sources": [part],
        "ledger_uri": ledger_uri,
    }


def _wait_terminal(sandbox, job_id: str, timeout: float = 30.0) -> None:
    headers = {"Authorization": f"Bearer {sandbox.token()}"}
    deadline = time.monotonic() + timeout
    while sandbox.request("GET", f"/v1/job/{job_id}", headers=headers).json()["status"] not in ("completed", "failed"):
        assert time.monotonic() < deadline, f"job {job_id} not terminal"
        time.sleep(0.05)


def test_poke_mode_records_completed_without_the_lease(clean_sandbox, submit, s3, bucket):
    sub = submit()
    ledger_uri, part = _ledger_with(s3, bucket, sub)
    sensor = SymblJobSensor(task_id="wait", job_ids=_xcom(sub, ledger_uri, part), poke_interval=0.1, timeout=30)
    assert sensor.execute({}) == [sub.job_id]
    stored = _stored(s3, bucket)
    assert [(p["uri"], p["state"]) for p in stored["parts"]] == [(part, "completed")]
    assert stored["parts"][0]["finished_at"]
    assert stored["lease"]["token"] == "other"  # the writer's lease is left alone
    assert not stored["stopped"]


def test_deferred_wait_records_completed_in_execute_complete(clean_sandbox, submit, s3, bucket):
    sub = submit(seconds=30.0)  # still running when the sensor first looks: it defers
    ledger_uri, part = _ledger_with(s3, bucket, sub)
    sensor = SymblJobSensor(
        task_id="wait", job_ids=[_xcom(sub, ledger_uri, part)], deferrable=True, poke_interval=0.2, timeout=60
    )
    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute({})
    assert _stored(s3, bucket)["parts"][0]["state"] == "accepted"  # nothing recorded before the outcome

    async def first_event():
        async for event in deferred.value.trigger.run():
            return event.payload

    event = asyncio.run(first_event())
    assert event["status"] == "success", event
    resumed = SymblJobSensor(
        task_id="wait", job_ids=[_xcom(sub, ledger_uri, part)], deferrable=True, poke_interval=0.2, timeout=60
    )
    assert resumed.execute_complete({}, event) == [sub.job_id]
    assert [p["state"] for p in _stored(s3, bucket)["parts"]] == ["completed"]


def test_failed_job_is_recorded_and_stops_the_conversation(clean_sandbox, submit, s3, bucket):
    clean_sandbox.fault(match={"method": "POST", "path": "/v1/process/video"}, action="fail_job")
    sub = submit()
    _wait_terminal(clean_sandbox, sub.job_id)
    ledger_uri, part = _ledger_with(s3, bucket, sub)
    sensor = SymblJobSensor(task_id="wait", job_ids=_xcom(sub, ledger_uri, part), poke_interval=0.1, timeout=30)
    with pytest.raises(SymblJobFailedError, match=sub.job_id):
        sensor.execute({})
    stored = _stored(s3, bucket)
    assert stored["parts"][0]["state"] == "failed"
    assert stored["stopped"]["job_id"] == sub.job_id and stored["stopped"]["part"] == part


def test_deferred_failure_event_is_recorded(clean_sandbox, submit, s3, bucket):
    clean_sandbox.fault(match={"method": "POST", "path": "/v1/process/video"}, action="fail_job")
    sub = submit()
    ledger_uri, part = _ledger_with(s3, bucket, sub)
    sensor = SymblJobSensor(task_id="wait", job_ids=_xcom(sub, ledger_uri, part), deferrable=True)
    event = {"status": "failed", "failed_job_id": sub.job_id, "statuses": {sub.job_id: "failed"}, "message": "m"}
    with pytest.raises(SymblJobFailedError):
        sensor.execute_complete({}, event)
    assert _stored(s3, bucket)["stopped"]["job_id"] == sub.job_id


def test_a_ledger_that_cannot_be_written_only_warns(clean_sandbox, submit, s3, bucket, caplog, capfd):
    sub = submit()
    _wait_terminal(clean_sandbox, sub.job_id)
    missing = f"s3://{bucket}-gone/meeting/_symbl.json"  # no such bucket
    sensor = SymblJobSensor(task_id="wait", job_ids=_xcom(sub, missing, "s3://x/p.mp4"), poke_interval=0.1)
    with caplog.at_level(logging.WARNING):
        assert sensor.execute({}) == [sub.job_id]
    logs = caplog.text + capfd.readouterr().out
    assert f"conversation ledger {missing}" in logs and sub.job_id in logs


def test_bare_job_ids_never_touch_s3(clean_sandbox, submit, caplog):
    class NoS3:
        def __getattr__(self, name):
            raise AssertionError(f"S3 used for bare job ids ({name})")

    sub = submit()
    for deferrable in (False, True):
        sensor = SymblJobSensor(
            task_id="wait", job_ids=[sub.job_id], aws_conn_id="no_such_conn", deferrable=deferrable, poke_interval=0.1
        )
        sensor.__dict__["s3_hook"] = NoS3()
        with caplog.at_level(logging.WARNING):
            if deferrable:
                event = {"status": "success", "job_ids": [sub.job_id], "statuses": {sub.job_id: "completed"}}
                assert sensor.execute_complete({}, event) == [sub.job_id]
            else:
                assert sensor.execute({}) == [sub.job_id]
    assert "ledger" not in caplog.text


def test_job_ledgers_reads_each_append_result():
    from symbl_airflow.sensors.job import job_ledgers

    a = {"conversation_id": "c1", "job_ids": ["j1", "j2"], "ledger_uri": "s3://b/a/_symbl.json"}
    b = {"conversation_id": "c2", "job_ids": ["j3"], "ledger_uri": "s3://b/b/_symbl.json"}
    plain = {"conversation_id": "c3", "job_ids": ["j4"]}
    assert job_ledgers([a, b, plain, "j5"]) == {"s3://b/a/_symbl.json": ["j1", "j2"], "s3://b/b/_symbl.json": ["j3"]}
    assert job_ledgers(repr([a])) == {"s3://b/a/_symbl.json": ["j1", "j2"]}  # a Jinja-rendered XCom
    assert job_ledgers(["j1"]) == {}
