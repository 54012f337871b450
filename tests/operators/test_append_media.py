"""Real recordings through SymblAppendVideoOperator (real sandbox, moto S3, dag.test()): every format,
conversion, non-media sources, undecodable media mid-folder, and long parts cut into segments, including
the cross-run cases (lost answer, failed job, a refused segment) on a split part."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys

import pytest

from tests.airflow_helpers import RESULTS, collector, make_dag, ti_states

pytestmark = pytest.mark.integration

# shape (tests/media/conftest.py) -> (endpoint, Content-Type the sandbox saw, sent as stored)
FORMATS = {
    "wav": ("audio", "audio/wav", True),
    "mp3": ("audio", "audio/mpeg", True),
    "flac": ("audio", None, True),
    "ogg": ("audio", None, True),
    "opus": ("audio", None, True),
    "aac": ("audio", None, True),
    "amr": ("audio", None, True),
    "aiff": ("audio", None, True),
    "m4a": ("audio", None, True),
    "ac3": ("audio", None, True),
    "wma": ("audio", None, True),
    "mp4_video_only": ("video", "video/mp4", True),
    "mov_h264": ("video", "video/mp4", True),
    "webm": ("audio", None, False),
    "webm_video_only": ("video", "video/mp4", False),
    "mkv": ("video", "video/mp4", False),
    "avi": ("video", "video/mp4", False),
    "mov_prores": ("audio", "audio/wav", False),
    "ts": ("video", "video/mp4", False),
    "ogv": ("audio", None, False),
}


def _put(s3, bucket: str, key: str, data: bytes) -> str:
    s3.client().put_object(Bucket=bucket, Key=key, Body=data)
    return f"s3://{bucket}/{key}"


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _ledger(s3, ledger_uri: str) -> dict:
    bucket, key = ledger_uri[5:].split("/", 1)
    return json.loads(s3.client().get_object(Bucket=bucket, Key=key)["Body"].read())


def _run(run_dag, sources, key, **kwargs):
    from symbl_airflow import SymblAppendVideoOperator

    RESULTS.pop(key, None)
    with make_dag("test_media") as dag:
        op = SymblAppendVideoOperator(task_id="append", source=sources, deferrable=False, poll_interval=0.2, **kwargs)
        op >> collector(key)(op.output)
    return run_dag(dag)


@pytest.mark.parametrize("shape", sorted(FORMATS))
def test_each_format_is_appended_in_order_after_an_mp4(clean_sandbox, run_dag, s3, bucket, mp4, media_files, shape):
    first = _put(s3, bucket, "meeting/part-1.mp4", mp4.make([("Alice", "Part one.")]))
    path = media_files(shape)
    second = _put(s3, bucket, f"meeting/part-2{path.suffix}", path.read_bytes())
    dr = _run(run_dag, [first, second], shape, ledger_uri=f"s3://{bucket}/meeting/_symbl.json")
    assert dr.state == "success", ti_states(dr)
    log = clean_sandbox.ledger()
    endpoint, content_type, as_stored = FORMATS[shape]
    assert [(e["method"], e["endpoint"]) for e in log] == [("POST", "video"), ("PUT", endpoint)]
    assert log[1].get("contentType") == content_type
    assert len({e["conversationId"] for e in log}) == 1
    assert (log[1]["sha256"] == _sha(path.read_bytes())) is as_stored
    assert RESULTS[shape]["sources"] == [first, second] and RESULTS[shape]["ignored"] == []


def test_a_video_without_audio_is_sent_with_a_warning(clean_sandbox, run_dag, s3, bucket, media_files, capfd):
    uri = _put(s3, bucket, "silent/part-1.webm", media_files.bytes("webm_video_only"))
    dr = _run(run_dag, [uri], "no_audio")
    assert dr.state == "success", ti_states(dr)
    assert f"{uri} has no audio track: Symbl will find no speech in it" in capfd.readouterr().out


def test_non_media_sources_are_named_never_parts(clean_sandbox, run_dag, s3, bucket, mp4, media_files):
    uris = [
        _put(s3, bucket, "m/a-part-1.mp4", mp4.make([("Alice", "One.")])),
        _put(s3, bucket, "m/b-notes.txt", b"agenda: budget, hiring\n"),
        _put(s3, bucket, "m/c-captions.vtt", b"WEBVTT\n\n00:00.000 --> 00:01.000\nOne.\n"),
        _put(s3, bucket, "m/d-part-2.wav", media_files.bytes("wav")),
        _put(s3, bucket, "m/e-thumb.jpg", b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(200)),
    ]
    dr = _run(run_dag, uris, "ignored", ledger_uri=f"s3://{bucket}/m/_symbl.json")
    assert dr.state == "success", ti_states(dr)
    assert [e["endpoint"] for e in clean_sandbox.ledger()] == ["video", "audio"]
    result = RESULTS["ignored"]
    assert result["sources"] == [uris[0], uris[3]]
    assert [(i["uri"], i["reason"]) for i in result["ignored"]] == [
        (uris[1], "not audio or video (text)"),
        (uris[2], "not audio or video (captions)"),
        (uris[4], "not audio or video (JPEG image)"),
    ]


def test_undecodable_media_mid_folder_stops_the_conversation_across_runs(
    clean_sandbox, run_dag, s3, bucket, mp4, media_files
):
    ledger_uri = f"s3://{bucket}/cut/_symbl.json"
    uris = [
        _put(s3, bucket, "cut/part-1.mp4", mp4.make([("Alice", "One.")])),
        _put(s3, bucket, "cut/part-2.wav", media_files.bytes("wav")[:5000]),  # the upload was cut short
        _put(s3, bucket, "cut/part-3.mp4", mp4.make([("Bob", "Three.")])),
    ]
    dr = _run(run_dag, uris, "cut1", ledger_uri=ledger_uri)
    assert dr.state == "failed"
    assert [e["method"] for e in clean_sandbox.ledger()] == ["POST"]  # part 1; nothing after part 2
    ledger = _ledger(s3, ledger_uri)
    assert ledger["stopped"]["reason"] == "undecodable" and ledger["stopped"]["part"] == uris[1]
    assert "truncated WAV" in ledger["stopped"]["message"]

    dr = _run(run_dag, uris, "cut2", ledger_uri=ledger_uri)  # a later run keeps it stopped
    assert dr.state == "failed"
    assert len(clean_sandbox.ledger()) == 1

    # the way forward the message names: accept the hole, then part 3 follows
    cli = [sys.executable, "-m", "symbl_airflow.ledger", "leave-out", ledger_uri, "--part", uris[1]]
    proc = subprocess.run(cli, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    dr = _run(run_dag, uris, "cut3", ledger_uri=ledger_uri)
    assert dr.state == "success", ti_states(dr)
    assert [e["method"] for e in clean_sandbox.ledger()] == ["POST", "PUT"]
    assert RESULTS["cut3"]["sources"] == [uris[2]]


def _segments(uri: str, n: int) -> list[str]:
    return [f"{uri}#segment={i}" for i in range(1, n + 1)]


def test_a_long_part_is_sent_as_consecutive_segments(clean_sandbox, run_dag, s3, bucket, media_files):
    ledger_uri = f"s3://{bucket}/long/_symbl.json"
    uri = _put(s3, bucket, "long/workshop.wav", media_files.bytes("wav"))  # 6 s, limit 2.5 s
    dr = _run(run_dag, [uri], "split", ledger_uri=ledger_uri, max_part_seconds=2.5)
    assert dr.state == "success", ti_states(dr)
    log = clean_sandbox.ledger()
    assert [(e["method"], e["endpoint"], e.get("contentType")) for e in log] == [
        ("POST", "audio", "audio/wav"),
        ("PUT", "audio", "audio/wav"),
        ("PUT", "audio", "audio/wav"),
    ]
    assert RESULTS["split"]["sources"] == _segments(uri, 3)
    parts = _ledger(s3, ledger_uri)["parts"]
    assert [p["uri"] for p in parts] == _segments(uri, 3)
    assert all(0 < p["media_seconds"] <= 2.5 for p in parts)


def test_on_too_long_fail_refuses_before_anything_is_sent(clean_sandbox, run_dag, s3, bucket, mp4, media_files):
    uris = [
        _put(s3, bucket, "strict/part-1.mp4", mp4.make([("Alice", "One.")])),
        _put(s3, bucket, "strict/part-2.wav", media_files.bytes("wav")),
    ]
    dr = _run(run_dag, uris, "too_long", max_part_seconds="2.5", on_too_long="fail")
    assert dr.state == "failed"
    assert clean_sandbox.ledger() == []


def test_split_part_lost_answer_on_segment_two(clean_sandbox, run_dag, s3, bucket, media_files):
    ledger_uri = f"s3://{bucket}/lost/_symbl.json"
    uri = _put(s3, bucket, "lost/workshop.wav", media_files.bytes("wav"))
    clean_sandbox.fault(match={"method": "PUT", "path": "/v1/process/audio/*"}, action="drop", phase="after_accept",
                        times=1)  # fmt: skip
    assert _run(run_dag, [uri], "lost1", ledger_uri=ledger_uri, max_part_seconds=2.5).state == "failed"
    states = [(p["uri"], p["state"]) for p in _ledger(s3, ledger_uri)["parts"]]
    assert states[1] == (_segments(uri, 3)[1], "sending") and len(clean_sandbox.ledger()) == 2

    assert _run(run_dag, [uri], "lost2", ledger_uri=ledger_uri, max_part_seconds=2.5).state == "failed"
    assert len(clean_sandbox.ledger()) == 2  # blocked: nothing guessed

    dr = _run(run_dag, [uri], "lost3", ledger_uri=ledger_uri, max_part_seconds=2.5, on_unconfirmed="mark_sent")
    assert dr.state == "success", ti_states(dr)
    assert len(clean_sandbox.ledger()) == 3  # segment 3 only: segment 2 is in Symbl
    assert RESULTS["lost3"]["sources"] == _segments(uri, 3)[2:]


def test_split_part_failed_job_on_segment_two_stops_it(clean_sandbox, run_dag, s3, bucket, media_files):
    ledger_uri = f"s3://{bucket}/failed/_symbl.json"
    uri = _put(s3, bucket, "failed/workshop.wav", media_files.bytes("wav"))
    clean_sandbox.fault(match={"method": "PUT", "path": "/v1/process/audio/*"}, action="fail_job", times=1)
    assert _run(run_dag, [uri], "failed1", ledger_uri=ledger_uri, max_part_seconds=2.5).state == "failed"
    ledger = _ledger(s3, ledger_uri)
    assert ledger["stopped"]["part"] == _segments(uri, 3)[1]
    assert len(clean_sandbox.ledger()) == 2  # segment 3 never followed the failed segment 2
    assert _run(run_dag, [uri], "failed2", ledger_uri=ledger_uri, max_part_seconds=2.5).state == "failed"
    assert len(clean_sandbox.ledger()) == 2


def test_split_part_resumes_at_the_segment_a_run_could_not_send(clean_sandbox, run_dag, s3, bucket, media_files):
    """A run that ends between segments (here: segment 2 refused): the next run sends segments 2 and 3 only,
    cut exactly as before."""
    ledger_uri = f"s3://{bucket}/resume/_symbl.json"
    data = media_files.bytes("mp4_av")
    uri = _put(s3, bucket, "resume/all-hands.mp4", data)
    clean_sandbox.fault(match={"method": "PUT", "path": "/v1/process/video/*"}, action="status", status=400, times=1)
    assert _run(run_dag, [uri], "resume1", ledger_uri=ledger_uri, max_part_seconds=2.5).state == "failed"
    first = clean_sandbox.ledger()
    assert [e["method"] for e in first] == ["POST"]
    dr = _run(run_dag, [uri], "resume2", ledger_uri=ledger_uri, max_part_seconds=2.5)
    assert dr.state == "success", ti_states(dr)
    log = clean_sandbox.ledger()
    assert [(e["method"], e["endpoint"]) for e in log] == [("POST", "video"), ("PUT", "video"), ("PUT", "video")]
    assert RESULTS["resume2"]["sources"] == _segments(uri, 3)[1:]
    assert [p["state"] for p in _ledger(s3, ledger_uri)["parts"]][:2] == ["completed", "completed"]
