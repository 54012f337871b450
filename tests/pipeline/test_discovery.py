"""Discovery at scale and from events: the cost follows what changed; events only point at folders."""

from __future__ import annotations

import asyncio
import json
from unittest.mock import ANY

import pytest

from tests.pipeline.test_video_pipeline import _load_pipeline

PREFIX = "videos/"


def _ledger_body(bucket: str, conversation: str, parts: list[str], etags: dict[str, str]) -> bytes:
    return json.dumps(
        {
            "version": 2,
            "conversation_id": f"c-{conversation}",
            "parts": [
                {
                    "uri": f"s3://{bucket}/{PREFIX}{conversation}/{p}",
                    "seq": i + 1,
                    "etag": etags[p],
                    "size": 1,
                    "state": "completed",
                    "job_id": f"j-{conversation}-{i}",
                }
                for i, p in enumerate(parts)
            ],
        }
    ).encode()


def _folder(client, bucket: str, conversation: str, parts: list[str], appended: int) -> None:
    etags = {}
    for name in parts:
        etags[name] = client.put_object(Bucket=bucket, Key=f"{PREFIX}{conversation}/{name}", Body=b"mp4")["ETag"].strip(
            '"'
        )
    if appended:
        body = _ledger_body(bucket, conversation, parts[:appended], etags)
        client.put_object(Bucket=bucket, Key=f"{PREFIX}{conversation}/_symbl.json", Body=body)


@pytest.mark.integration
def test_scan_reads_only_the_ledgers_of_changed_folders(s3, bucket):
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    from symbl_airflow.discovery import scan

    client, hook = s3.client(), S3Hook(aws_conn_id="aws_default")
    for i in range(30):
        _folder(client, bucket, f"done-{i:02d}", ["part-001.mp4", "part-002.mp4"], appended=2)
    _folder(client, bucket, "new-a", ["part-001.mp4"], appended=0)
    _folder(client, bucket, "grown", ["part-001.mp4", "part-002.mp4"], appended=1)
    client.put_object(Bucket=bucket, Key=f"{PREFIX}done-00/notes.txt", Body=b"not a part")
    client.put_object(Bucket=bucket, Key=f"{PREFIX}deeper/x/part-001.mp4", Body=b"not a folder part")

    first = scan(hook, bucket, PREFIX, "insights/", limit=100)
    assert sorted(w["ledger_uri"].split("/")[-2] for w in first.work) == ["grown", "new-a"]
    assert {i["uri"].split("/", 3)[-1] for i in first.ignored} == {
        f"{PREFIX}done-00/notes.txt",
        f"{PREFIX}deeper/x/part-001.mp4",
    }
    grown = next(w for w in first.work if "grown" in w["ledger_uri"])
    assert grown["source"] == [f"s3://{bucket}/{PREFIX}grown/part-002.mp4"]
    assert first.requests["get"] == 1 + 31  # the (absent) index, then every folder's ledger
    assert first.requests["put"] == 1  # the index

    second = scan(hook, bucket, PREFIX, "insights/", limit=100)
    assert second.skipped_unchanged == 30
    assert second.ignored == []  # named once, when first seen
    assert second.requests["get"] == 1 + 1  # the index, and only grown's ledger (new-a has none)
    assert second.requests["put"] == 0

    client.put_object(Bucket=bucket, Key=f"{PREFIX}done-07/part-003.mp4", Body=b"mp4")  # one folder changes
    third = scan(hook, bucket, PREFIX, "insights/", limit=100)
    assert sorted(w["ledger_uri"].split("/")[-2] for w in third.work) == ["done-07", "grown", "new-a"]
    assert third.requests["get"] == 1 + 2

    full = scan(hook, bucket, PREFIX, "insights/", limit=100, use_index=False)
    assert full.requests["get"] == 31 and len(full.work) == 3  # the same answer, at the full price


@pytest.mark.integration
def test_scan_caps_the_run_and_leaves_the_rest(s3, bucket):
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    from symbl_airflow.discovery import scan

    client, hook = s3.client(), S3Hook(aws_conn_id="aws_default")
    for i in range(5):
        _folder(client, bucket, f"c{i}", ["part-001.mp4"], appended=0)
    found = scan(hook, bucket, PREFIX, "insights/", limit=2)
    assert len(found.work) == 2 and found.deferred == ["c2", "c3", "c4"]


@pytest.mark.integration
def test_events_from_real_s3_notifications_through_sqs(s3, bucket):
    """moto's S3 notifies its SQS; the Amazon provider's own SQS trigger reads them, as the AssetWatcher does."""
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook
    from airflow.providers.amazon.aws.triggers.sqs import SqsSensorTrigger

    from symbl_airflow.discovery import from_events

    client = s3.client()
    queue = s3.notify_queue(bucket, f"uploads-{bucket}", prefix=None, media_only=False)  # unfiltered: must cope
    _folder(client, bucket, "standup", ["part-001.mp4"], appended=1)  # already in Symbl
    client.put_object(Bucket=bucket, Key=f"{PREFIX}standup/part-002.mp4", Body=b"mp4")  # new
    client.put_object(Bucket=bucket, Key=f"{PREFIX}standup/part-002.mp4", Body=b"mp4")  # duplicate notification
    client.put_object(Bucket=bucket, Key=f"{PREFIX}call/part 001.mp4", Body=b"mp4")  # URL-encoded key
    client.put_object(Bucket=bucket, Key="insights/standup/index.json", Body=b"{}")  # not a part
    client.put_object(Bucket=bucket, Key=f"{PREFIX}call/notes.txt", Body=b"x")  # other suffix

    trigger = SqsSensorTrigger(sqs_queue=queue, aws_conn_id="aws_default", max_messages=10, waiter_delay=1)

    async def drain() -> list[dict]:
        payloads = []
        for _ in range(8):  # a batch per event; read until the queue is empty (batches are small under load)
            gen = trigger.run()
            try:
                event = await asyncio.wait_for(gen.__anext__(), 10)
            except TimeoutError:
                break
            finally:
                await gen.aclose()
            payloads.append({"from_trigger": True, "payload": event.payload})  # the asset event's extra
        return payloads

    extras = asyncio.run(drain())
    assert extras, "no notification reached the queue"
    found, named = from_events(S3Hook(aws_conn_id="aws_default"), extras, bucket, PREFIX, "insights/", limit=10)
    by_folder = {w["ledger_uri"].split("/")[-2]: w["source"] for w in found.work}
    assert by_folder == {
        "standup": [f"s3://{bucket}/{PREFIX}standup/part-002.mp4"],
        "call": [f"s3://{bucket}/{PREFIX}call/part 001.mp4"],
    }
    assert (bucket, "insights/standup/index.json") in named.elsewhere
    assert named.own_writes >= 1  # the ledger written by _folder
    assert found.ignored == [{"uri": f"s3://{bucket}/{PREFIX}call/notes.txt", "reason": ANY}]
    assert found.requests["list"] == 2  # one folder listing each, never the prefix


@pytest.mark.unit
def test_s3_objects_in_every_notification_shape():
    from symbl_airflow.discovery import s3_objects_in

    record = {"eventName": "ObjectCreated:Put", "s3": {"bucket": {"name": "b"}, "object": {"key": "v/c/p+1.mp4"}}}
    sqs_body = {"Body": json.dumps({"Records": [record]})}
    sns = {"Body": json.dumps({"Type": "Notification", "Message": json.dumps({"Records": [record]})})}
    bridge = {"detail-type": "Object Created", "detail": {"bucket": {"name": "b"}, "object": {"key": "v/c/q.mp4"}}}
    removed = {"eventName": "ObjectRemoved:Delete", "s3": {"bucket": {"name": "b"}, "object": {"key": "v/c/x.mp4"}}}
    test_event = {"Body": json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": "b"})}
    extra = {"payload": {"message_batch": [sqs_body, sns, test_event, {"Body": json.dumps({"Records": [removed]})}]}}
    assert s3_objects_in(extra) == [("b", "v/c/p 1.mp4"), ("b", "v/c/p 1.mp4")]
    assert s3_objects_in(bridge) == [("b", "v/c/q.mp4")]
    assert s3_objects_in({"payload": "not json"}) == []


@pytest.mark.integration
def test_capped_pipeline_run_finishes_the_rest_in_the_next_run(clean_sandbox, s3, bucket, mp4, run_dag, monkeypatch):
    dag = _load_pipeline(monkeypatch)
    client = s3.client()
    for name in ("c1", "c2", "c3"):
        client.put_object(Bucket=bucket, Key=f"{PREFIX}{name}/part-001.mp4", Body=mp4.make([("Ann", f"{name}.")]))
    conf = {"bucket": bucket, "input_prefix": PREFIX, "max_conversations": 2}
    first = run_dag(dag, run_conf=conf)
    assert first.state == "success"
    mapped = [ti for ti in first.get_task_instances() if ti.task_id == "conversation.append" and ti.map_index >= 0]
    assert len(mapped) == 2 and len(clean_sandbox.ledger()) == 2
    second = run_dag(dag, run_conf=conf)
    assert second.state == "success"
    assert len(clean_sandbox.ledger()) == 3
    assert {e["method"] for e in clean_sandbox.ledger()} == {"POST"}
    third = run_dag(dag, run_conf=conf)  # nothing left: nothing mapped, nothing sent
    assert not [ti for ti in third.get_task_instances() if ti.task_id == "conversation.append" and ti.map_index >= 0]
    assert len(clean_sandbox.ledger()) == 3


@pytest.mark.integration
def test_filtered_notifications_carry_media_only(s3, bucket):
    """The documented setup: media of any container starts a run; the pipeline's own writes do not."""
    client, sqs = s3.client(), s3.sqs_client()
    queue = s3.notify_queue(bucket, f"parts-{bucket}")
    parts = [f"{PREFIX}c/part-001.mp4", f"{PREFIX}c/part-002.wav", f"{PREFIX}c/CLIP 3.MOV", f"{PREFIX}d/take.webm"]
    for key in parts:
        client.put_object(Bucket=bucket, Key=key, Body=b"media")
    client.put_object(Bucket=bucket, Key=f"{PREFIX}c/_symbl.json", Body=b"{}")
    client.put_object(Bucket=bucket, Key=f"{PREFIX}_symbl_index.json", Body=b"{}")
    client.put_object(Bucket=bucket, Key=f"{PREFIX}c/notes.txt", Body=b"x")
    client.put_object(Bucket=bucket, Key="insights/c/index.json", Body=b"{}")
    client.put_object(Bucket=bucket, Key="elsewhere/x.mp4", Body=b"media")
    bodies = []
    for _ in range(4):
        bodies += [m["Body"] for m in sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", [])]
    from urllib.parse import unquote_plus

    keys = [unquote_plus(r["s3"]["object"]["key"]) for b in bodies for r in json.loads(b).get("Records", [])]
    assert sorted(keys) == sorted(parts)
