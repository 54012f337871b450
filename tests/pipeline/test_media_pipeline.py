"""The shipped pipeline on a folder of real recordings: MP4, WAV, WebM, a notes file (dag.test(), sandbox,
moto S3): each recording reaches the API its content says, in folder order; the notes file is no part."""

from __future__ import annotations

import pytest

from tests.pipeline.test_ledger_cases import PREFIX, _states
from tests.pipeline.test_video_pipeline import _load_pipeline

pytestmark = pytest.mark.integration


def test_a_folder_of_mixed_recordings(clean_sandbox, run_dag, monkeypatch, s3, bucket, mp4, media_files):
    client = s3.client()
    folder = f"{PREFIX}workshop/"
    client.put_object(Bucket=bucket, Key=f"{folder}part-1.mp4", Body=mp4.make([("Alice", "One.")]))
    client.put_object(Bucket=bucket, Key=f"{folder}part-2.wav", Body=media_files.bytes("wav"))
    client.put_object(Bucket=bucket, Key=f"{folder}part-3.webm", Body=media_files.bytes("webm"))
    client.put_object(Bucket=bucket, Key=f"{folder}notes.txt", Body=b"agenda\n")
    dag = _load_pipeline(monkeypatch)
    dr = run_dag(dag, run_conf={"bucket": bucket, "input_prefix": PREFIX})
    assert dr.state == "success", _states(dr)
    log = clean_sandbox.ledger()
    assert [(e["method"], e["endpoint"], e.get("contentType")) for e in log] == [
        ("POST", "video", "video/mp4"),
        ("PUT", "audio", "audio/wav"),
        ("PUT", "audio", None),  # the WebM's Opus audio, extracted to Ogg
    ]
    assert len({e["conversationId"] for e in log}) == 1
