"""The append operator with a conversation ledger (``ledger_uri``): later runs append only new parts."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.integration


def _run(uris, ledger_uri, **kwargs):
    from symbl_airflow import SymblAppendVideoOperator

    op = SymblAppendVideoOperator(task_id="inc", source=uris, ledger_uri=ledger_uri, **kwargs)
    return op.execute({"task_state_store": None})


def test_second_run_appends_only_new_parts(clean_sandbox, s3, bucket, mp4):
    client = s3.client()
    keys = [f"videos/c1/part-{i:03d}.mp4" for i in (1, 2, 3)]
    datas = [mp4.make([("Alice", f"Part {i} says hello.")]) for i in (1, 2, 3)]
    for key, data in zip(keys[:2], datas[:2], strict=True):
        client.put_object(Bucket=bucket, Key=key, Body=data)
    uris = [f"s3://{bucket}/{k}" for k in keys]
    ledger_uri = f"s3://{bucket}/videos/c1/_symbl.json"

    first = _run(uris[:2], ledger_uri)
    assert [e["method"] for e in clean_sandbox.ledger()] == ["POST", "PUT"]
    state = json.loads(client.get_object(Bucket=bucket, Key="videos/c1/_symbl.json")["Body"].read())
    assert state["conversation_id"] == first["conversation_id"]
    assert [p["uri"] for p in state["parts"]] == uris[:2]
    assert [p["job_id"] for p in state["parts"]] == first["job_ids"]

    client.put_object(Bucket=bucket, Key=keys[2], Body=datas[2])
    second = _run(uris, ledger_uri)
    ledger = clean_sandbox.ledger()
    assert [e["method"] for e in ledger] == ["POST", "PUT", "PUT"]
    assert {e["conversationId"] for e in ledger} == {first["conversation_id"]}
    assert second["conversation_id"] == first["conversation_id"]
    assert second["sources"] == uris[2:]
    assert second["skipped"] == uris[:2]
    assert second["job_ids"] == [ledger[2]["jobId"]]

    third = _run(uris, ledger_uri)  # nothing new: nothing sent
    assert len(clean_sandbox.ledger()) == 3
    assert third["job_ids"] == [] and third["skipped"] == uris


def test_changed_part_is_reported_not_resent(clean_sandbox, s3, bucket, mp4):
    client = s3.client()
    key = "videos/c2/part-001.mp4"
    client.put_object(Bucket=bucket, Key=key, Body=mp4.make([("Bob", "Original take.")]))
    uri, ledger_uri = f"s3://{bucket}/{key}", f"s3://{bucket}/videos/c2/_symbl.json"
    _run([uri], ledger_uri)
    client.put_object(Bucket=bucket, Key=key, Body=mp4.make([("Bob", "Edited take.")]))
    result = _run([uri], ledger_uri)
    assert result["changed"] == [uri] and result["job_ids"] == []
    assert len(clean_sandbox.ledger()) == 1


def test_state_of_another_conversation_is_refused(clean_sandbox, s3, bucket, mp4):
    from airflow.sdk.exceptions import AirflowFailException

    client = s3.client()
    key = "videos/c3/part-001.mp4"
    client.put_object(Bucket=bucket, Key=key, Body=mp4.make([("Bob", "Hi.")]))
    uri, ledger_uri = f"s3://{bucket}/{key}", f"s3://{bucket}/videos/c3/_symbl.json"
    _run([uri], ledger_uri)
    with pytest.raises(AirflowFailException, match="belongs to conversation"):
        _run([uri], ledger_uri, conversation_id="999")
    assert len(clean_sandbox.ledger()) == 1


def test_concurrent_ledger_writers_never_overwrite_each_other(s3, bucket):
    """Two writers read the same ledger; the second write is refused (412) and its update is re-applied."""
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    from symbl_airflow import ledger as L

    hook = S3Hook(aws_conn_id="aws_default")
    uri = f"s3://{bucket}/videos/c4/_symbl.json"
    a, b = L.S3LedgerStore(hook, uri), L.S3LedgerStore(hook, uri)
    stale = b.load()  # read before anyone wrote: b would create the file
    a.update(L.record_late({"s3://x/1.mp4": "e1"}))
    with pytest.raises(L.LedgerConflict):
        b._write(stale)  # a blind conditional write loses
    b.update(L.record_late({"s3://x/2.mp4": "e2"}), ledger=stale)  # update() re-reads and re-applies
    assert a.load().late == {"s3://x/1.mp4": "e1", "s3://x/2.mp4": "e2"}


def test_no_append_after_a_failed_job(clean_sandbox, s3, bucket, mp4):
    """The previous part's Symbl job failed: later parts are not appended to that conversation."""
    import time

    from airflow.sdk.exceptions import AirflowFailException

    from symbl_airflow import SymblHook

    client = s3.client()
    keys = ["videos/c5/part-001.mp4", "videos/c5/part-002.mp4"]
    for i, key in enumerate(keys):
        client.put_object(Bucket=bucket, Key=key, Body=mp4.make([("Eve", f"Take {i}.")]))
    uris = [f"s3://{bucket}/{k}" for k in keys]
    ledger_uri = f"s3://{bucket}/videos/c5/_symbl.json"
    clean_sandbox.fault(match={"path": "/v1/process/video"}, action="fail_job", times=1)
    first = _run(uris[:1], ledger_uri)
    hook, deadline = SymblHook(), time.monotonic() + 30
    while not hook.get_job(first["job_ids"][0]).is_terminal:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    with pytest.raises(AirflowFailException, match="is stopped: no later part is appended"):
        _run(uris, ledger_uri)
    assert len(clean_sandbox.ledger()) == 1


def test_wrong_credentials_fail_once_and_leave_no_intent(clean_sandbox, s3, bucket, mp4, monkeypatch):
    """A refusal no retry can fix fails the task at once; the ledger shows nothing in flight."""
    from airflow.sdk.exceptions import AirflowFailException

    conn = json.loads(clean_sandbox.conn_json())
    monkeypatch.setenv("AIRFLOW_CONN_SYMBL_DEFAULT", json.dumps({**conn, "password": "not-the-secret"}))
    client = s3.client()
    key = "videos/c9/part-001.mp4"
    client.put_object(Bucket=bucket, Key=key, Body=mp4.make([("Ann", "Hello.")]))
    ledger_uri = f"s3://{bucket}/videos/c9/_symbl.json"
    with pytest.raises(AirflowFailException, match="(?i)credential|app secret|401"):
        _run([f"s3://{bucket}/{key}"], ledger_uri)
    state = json.loads(client.get_object(Bucket=bucket, Key="videos/c9/_symbl.json")["Body"].read())
    assert state["parts"] == [] and state["lease"] is None
    assert clean_sandbox.ledger() == []
