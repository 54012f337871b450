"""Layouts as buckets really hold them: dated folders, a depth, files that are not parts, other containers."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime

import pytest

from tests.pipeline.test_video_pipeline import _json, _load_pipeline, _messages

pytestmark = pytest.mark.integration


def _put(client, bucket: str, keys: list[str], body: bytes = b"media") -> dict[str, str]:
    return {k: client.put_object(Bucket=bucket, Key=k, Body=body)["ETag"].strip('"') for k in keys}


def _rel(uri: str) -> str:
    return uri.split("/", 3)[-1]


def test_dated_layout_with_depth(s3, bucket):
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    from symbl_airflow.discovery import DISCOVERY_INDEX_FILE_NAME, scan

    client, hook = s3.client(), S3Hook(aws_conn_id="aws_default")
    _put(
        client,
        bucket,
        [
            "rec/2026/12/05/standup/part-1.mp4",
            "rec/2026/12/05/standup/part-2.wav",
            "rec/2026/12/05/standup/cam1/part-1.mp4",  # a subfolder: not merged into standup
            "rec/2026/12/05/retro/Zoom Recording 1.m4a",
            "rec/2026/12/06/standup/part-1.mp4",
            "rec/2026/12/05/agenda.txt",  # above the conversation folders
            "rec/2026/12/stray.mp4",  # media above them: a warning names the depth that would take it
            "rec/readme.md",
            "rec/2026/",  # a folder marker (the S3 console writes these)
        ],
    )
    found = scan(hook, bucket, "rec", "out/", limit=100, folder_depth=4)
    work = {w["conversation"]: w for w in found.work}
    assert sorted(work) == ["2026/12/05/retro", "2026/12/05/standup", "2026/12/06/standup"]
    standup = work["2026/12/05/standup"]
    assert standup["source"] == [
        f"s3://{bucket}/rec/2026/12/05/standup/part-1.mp4",
        f"s3://{bucket}/rec/2026/12/05/standup/part-2.wav",
    ]
    assert standup["ledger_uri"] == f"s3://{bucket}/rec/2026/12/05/standup/_symbl.json"
    assert standup["output_uri"] == f"s3://{bucket}/out/2026/12/05/standup/"
    reasons = {_rel(i["uri"]): i["reason"] for i in found.ignored}
    assert sorted(reasons) == [
        "rec/2026/12/05/agenda.txt",
        "rec/2026/12/05/standup/cam1/part-1.mp4",
        "rec/2026/12/stray.mp4",
        "rec/readme.md",
    ]
    assert "subfolder cam1/ of conversation 2026/12/05/standup" in reasons["rec/2026/12/05/standup/cam1/part-1.mp4"]
    assert (
        "folder_depth=5 would make 2026/12/05/standup/cam1 a conversation"
        in reasons["rec/2026/12/05/standup/cam1/part-1.mp4"]
    )
    assert "folder_depth=4" in reasons["rec/2026/12/05/agenda.txt"]
    assert "folder_depth=2 would make it a part" in reasons["rec/2026/12/stray.mp4"]
    assert found.ignored_count == 4 and found.folders == 3

    index = _json(client, bucket, f"rec/{DISCOVERY_INDEX_FILE_NAME}")
    assert index["folder_depth"] == 4 and index["version"] == 2

    # The same bucket read with the default depth: nothing is a part, and every media file says why.
    shallow = scan(hook, bucket, "rec/", "out/", limit=100)
    assert shallow.work == [] and shallow.folders == 0
    reason = next(i["reason"] for i in shallow.ignored if i["uri"].endswith("05/standup/part-1.mp4"))
    assert "subfolder 12/05/standup/ of conversation 2026" in reason
    assert "folder_depth=4 would make 2026/12/05/standup a conversation of its own" in reason

    # Back at depth 4: the index of depth 1 is not trusted, every folder is looked at again.
    again = scan(hook, bucket, "rec/", "out/", limit=100, folder_depth=4)
    assert len(again.work) == 3 and again.skipped_unchanged == 0


def test_non_media_objects_are_named_never_blocking(s3, bucket, caplog):
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    from symbl_airflow.discovery import scan

    client, hook = s3.client(), S3Hook(aws_conn_id="aws_default")
    parts = ["videos/m/part-1.mp4", "videos/m/part-2.wav", "videos/m/part-3.MOV", "videos/m/part-4.webm"]
    others = ["videos/m/captions.vtt", "videos/m/slides.jpg", "videos/m/meta.json", "videos/m/README"]
    own = ["videos/m/_symbl_lock.json"]  # the pipeline's own files: left out silently
    _put(client, bucket, parts + others + own)
    with caplog.at_level("INFO"):
        found = scan(hook, bucket, "videos/", "insights/", limit=10)
    assert [w["source"] for w in found.work] == [[f"s3://{bucket}/{k}" for k in parts]]
    reasons = {_rel(i["uri"]): i["reason"] for i in found.ignored}
    assert sorted(reasons) == sorted(others)
    assert reasons["videos/m/captions.vtt"] == "not audio or video: .vtt files are not appended"
    assert reasons["videos/m/README"] == "not audio or video: files without an extension are not appended"
    logged = caplog.text
    assert all(f"s3://{bucket}/{k}" in logged for k in others)
    assert "_symbl_lock" not in logged
    assert not [r for r in caplog.records if r.levelname in ("WARNING", "ERROR")]  # a notes file is not alarming

    # A new non-media object in a folder with nothing to do: named once, no ledger is read for it twice.
    body = json.dumps({"version": 2, "conversation_id": "c", "parts": []}).encode()
    client.put_object(Bucket=bucket, Key="videos/done/_symbl.json", Body=body)
    client.put_object(Bucket=bucket, Key="videos/done/chat.txt", Body=b"hi")
    first = scan(hook, bucket, "videos/", "insights/", limit=10)
    assert [_rel(i["uri"]) for i in first.ignored if "/done/" in i["uri"]] == ["videos/done/chat.txt"]
    second = scan(hook, bucket, "videos/", "insights/", limit=10)
    assert not [i for i in second.ignored if "/done/" in i["uri"]]


def test_natural_order_in_a_new_folder(s3, bucket):
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    from symbl_airflow.discovery import scan

    client, hook = s3.client(), S3Hook(aws_conn_id="aws_default")
    names = [f"Zoom Recording {i}.mp4" for i in range(1, 12)]
    _put(client, bucket, [f"videos/z/{n}" for n in reversed(names)])
    natural = scan(hook, bucket, "videos/", "insights/", limit=10, part_order="natural", use_index=False)
    assert [u.rsplit("/", 1)[-1] for u in natural.work[0]["source"]] == names
    key = scan(hook, bucket, "videos/", "insights/", limit=10, part_order="key", use_index=False)
    assert [u.rsplit("/", 1)[-1] for u in key.work[0]["source"]] == sorted(names)
    with pytest.raises(ValueError, match="part_order must be one of"):
        scan(hook, bucket, "videos/", "insights/", limit=10, part_order="alphabetical")
    with pytest.raises(ValueError, match="folder_depth must be a whole number >= 1"):
        scan(hook, bucket, "videos/", "insights/", limit=10, folder_depth=0)


def test_event_mode_with_a_wav_part_through_s3_notifications(s3, bucket):
    """The documented notification setup (one filter per media suffix) carries a .wav; depth 2 applies."""
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook
    from airflow.providers.amazon.aws.triggers.sqs import SqsSensorTrigger

    from symbl_airflow.discovery import from_events

    client = s3.client()
    queue = s3.notify_queue(bucket, f"media-{bucket}", prefix="rec/")
    _put(client, bucket, ["rec/2026-12-05/standup/part-1.mp4"])
    etag = client.head_object(Bucket=bucket, Key="rec/2026-12-05/standup/part-1.mp4")["ETag"].strip('"')
    ledger = {
        "version": 2,
        "conversation_id": "c-1",
        "parts": [
            {
                "uri": f"s3://{bucket}/rec/2026-12-05/standup/part-1.mp4",
                "seq": 1,
                "etag": etag,
                "size": 5,
                "state": "completed",
                "job_id": "j1",
            }
        ],
    }
    client.put_object(Bucket=bucket, Key="rec/2026-12-05/standup/_symbl.json", Body=json.dumps(ledger).encode())
    _put(client, bucket, ["rec/2026-12-05/standup/part-2.wav", "rec/2026-12-05/standup/notes.txt"])
    trigger = SqsSensorTrigger(sqs_queue=queue, aws_conn_id="aws_default", max_messages=10, waiter_delay=1)

    async def drain() -> list[dict]:
        payloads = []
        for _ in range(8):  # until the queue is empty
            gen = trigger.run()
            try:
                event = await asyncio.wait_for(gen.__anext__(), 10)
            except TimeoutError:
                break
            finally:
                await gen.aclose()
            payloads.append({"from_trigger": True, "payload": event.payload})
        return payloads

    extras = asyncio.run(drain())
    from symbl_airflow.discovery import s3_objects_in

    assert sorted(k for _, k in s3_objects_in(extras)) == [
        "rec/2026-12-05/standup/part-1.mp4",
        "rec/2026-12-05/standup/part-2.wav",
    ]  # no notification for the ledger or the notes: the suffix filters
    found, named = from_events(
        S3Hook(aws_conn_id="aws_default"), extras, bucket, "rec/", "out/", limit=10, folder_depth=2
    )
    assert named.conversations == ["2026-12-05/standup"]
    assert found.work == [
        {
            "source": [f"s3://{bucket}/rec/2026-12-05/standup/part-2.wav"],
            "ledger_uri": f"s3://{bucket}/rec/2026-12-05/standup/_symbl.json",
            "output_uri": f"s3://{bucket}/out/2026-12-05/standup/",
            "conversation": "2026-12-05/standup",
        }
    ]
    assert [_rel(i["uri"]) for i in found.ignored] == ["rec/2026-12-05/standup/notes.txt"]  # found by the listing
    assert found.requests == {"list": 1, "get": 1, "put": 0}


def test_templated_prefix_rendered_by_a_real_run(clean_sandbox, s3, bucket, mp4, run_dag, monkeypatch):
    """A daily layout: the run's date picks the folder; depth 2; the conversation is named by its key."""
    client = s3.client()
    today = [("Ann", "Standup part one."), ("Ben", "Standup part two.")]
    for i, cue in enumerate(today, start=1):
        client.put_object(
            Bucket=bucket, Key=f"rec/20261205/team-a/standup/Zoom Recording {i}.mp4", Body=mp4.make([cue])
        )
    client.put_object(Bucket=bucket, Key="rec/20261205/team-a/standup/chat.txt", Body=b"hello")
    client.put_object(Bucket=bucket, Key="rec/20261204/team-a/standup/part-1.mp4", Body=mp4.make([("Old", "Old.")]))
    conf = {
        "bucket": bucket,
        "input_prefix": "rec/{{ ds_nodash }}/",
        "output_prefix": "insights/{{ data_interval_start.strftime('%Y/%m/%d') }}/",
        "folder_depth": 2,
    }
    dag = _load_pipeline(monkeypatch)
    dr = run_dag(dag, run_conf=conf, logical_date=datetime(2026, 12, 5, 6, tzinfo=UTC))
    assert dr.state == "success", {ti.task_id: ti.state for ti in dr.get_task_instances()}

    submissions = clean_sandbox.ledger()
    assert [s["method"] for s in submissions] == ["POST", "PUT"]  # the day before is not touched
    ledger = _json(client, bucket, "rec/20261205/team-a/standup/_symbl.json")
    conversation_id = ledger["conversation_id"]
    assert _messages(clean_sandbox, conversation_id) == ["Standup part one.", "Standup part two."]
    token = clean_sandbox.token()
    conversation = clean_sandbox.request(
        "GET", f"/v1/conversations/{conversation_id}", headers={"Authorization": f"Bearer {token}"}
    ).json()
    assert conversation["name"] == "team-a/standup"  # the name defaults to the conversation key
    assert _json(client, bucket, "insights/2026/12/05/team-a/standup/index.json")["conversation_id"] == conversation_id

    tis = {(ti.task_id, ti.map_index): ti for ti in dr.get_task_instances()}
    assert tis[("conversation.append", 0)].rendered_map_index == "team-a/standup"
    assert tis[("conversation.insights", 0)].rendered_map_index == "team-a/standup"
    ignored = tis[("discover", -1)].xcom_pull(task_ids="discover", key="ignored")
    assert ignored == {
        "count": 1,
        "objects": [
            {
                "uri": f"s3://{bucket}/rec/20261205/team-a/standup/chat.txt",
                "reason": "not audio or video: .txt files are not appended",
            }
        ],
    }


def test_an_unrenderable_prefix_fails_naming_it(clean_sandbox, s3, bucket, run_dag, monkeypatch, capfd):
    dag = _load_pipeline(monkeypatch)
    dr = run_dag(dag, run_conf={"bucket": bucket, "input_prefix": "rec/{{ no_such_name }}/"})
    out, err = capfd.readouterr()
    assert dr.state == "failed"
    states = {ti.task_id: ti.state for ti in dr.get_task_instances()}
    assert states["discover"] == "failed" and not clean_sandbox.ledger()
    assert (
        "input_prefix 'rec/{{ no_such_name }}/' could not be rendered for this run: this run's context has no "
        "no_such_name" in out + err
    )


def test_zoom_recordings_in_natural_order_and_part_10_landing_later(
    clean_sandbox, s3, bucket, mp4, run_dag, monkeypatch
):
    """Zoom's names: part 10 lands after part 2 was appended and is appended after it, not called late."""
    client = s3.client()
    texts = {1: "Recording one.", 2: "Recording two.", 10: "Recording ten."}
    key = "videos/zoom/Zoom Recording {}.mp4".format
    for n in (1, 2):
        client.put_object(Bucket=bucket, Key=key(n), Body=mp4.make([("Ann", texts[n])]))
    conf = {"bucket": bucket, "input_prefix": "videos/"}
    dr = run_dag(_load_pipeline(monkeypatch), run_conf=conf)
    assert dr.state == "success", {ti.task_id: ti.state for ti in dr.get_task_instances()}
    client.put_object(Bucket=bucket, Key=key(10), Body=mp4.make([("Ann", texts[10])]))
    dr = run_dag(_load_pipeline(monkeypatch), run_conf=conf)
    assert dr.state == "success", {ti.task_id: ti.state for ti in dr.get_task_instances()}

    ledger = _json(client, bucket, "videos/zoom/_symbl.json")
    assert ledger["part_order"] == "natural" and ledger.get("late", []) == []
    assert [p["uri"].rsplit("/", 1)[-1] for p in ledger["parts"]] == [f"Zoom Recording {n}.mp4" for n in (1, 2, 10)]
    assert [s["method"] for s in clean_sandbox.ledger()] == ["POST", "PUT", "PUT"]
    assert _messages(clean_sandbox, ledger["conversation_id"]) == [texts[1], texts[2], texts[10]]
