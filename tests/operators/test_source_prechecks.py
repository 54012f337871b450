"""MP4 pre-checks on real files (ffmpeg-made) in a real local S3: truncated, unfinished, audio-only."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

CUES = [("Alice", "Welcome to the review."), ("Bob", "Thanks, let's start."), ("Alice", "First item.")]


@pytest.fixture
def s3_hook(s3):
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    return S3Hook(aws_conn_id="aws_default")


@pytest.fixture
def gets(s3_hook):
    """Every GetObject the hook's client sends: (range, bytes returned)."""
    client = s3_hook.get_conn()
    calls: list[str] = []
    client.meta.events.register(
        "provide-client-params.s3.GetObject", lambda params, **_: calls.append(params.get("Range"))
    )
    return calls


def _remux(data: bytes, tmp_path: Path, *args: str) -> bytes:
    import imageio_ffmpeg

    src, dst = tmp_path / "in.mp4", tmp_path / "out.mp4"
    src.write_bytes(data)
    cmd = [imageio_ffmpeg.get_ffmpeg_exe(), "-nostdin", "-loglevel", "error", "-y", "-i", str(src), *args, str(dst)]
    subprocess.run(cmd, check=True, capture_output=True)
    return dst.read_bytes()


def _put(s3, bucket: str, key: str, data: bytes) -> str:
    s3.client().put_object(Bucket=bucket, Key=key, Body=data)
    return f"s3://{bucket}/{key}"


def test_media_facts_of_a_real_mp4_from_a_few_small_reads(s3, bucket, mp4, s3_hook, gets):
    from symbl_airflow.sources import S3VideoSource, inspect_source

    data = mp4.make(CUES, seconds_per_cue=2.0) + bytes(4 << 20)  # trailing padding: still the same MP4
    source = inspect_source(s3_hook, _put(s3, bucket, "m/part-1.mp4", data))
    assert source.media is not None
    assert source.media.tracks == ("video", "audio", "text")
    assert source.duration_seconds == pytest.approx(6.0, abs=0.1)
    assert (source.size, source.key) == (len(data), "m/part-1.mp4")
    # Ranged GETs only, never the whole object: a few header reads plus one window inside moov.
    assert all(r and r.startswith("bytes=") for r in gets), gets
    fetched = sum(int(b) - int(a) + 1 for a, b in (r[6:].split("-") for r in gets))
    assert fetched < 16 * 1024 and len(gets) <= 8, gets
    # Sources rebuilt from stored state (no media facts) keep working.
    assert S3VideoSource(uri="s3://b/k", bucket="b", key="k", size=1, etag="e").duration_seconds is None


def test_faststart_mp4(s3, bucket, mp4, s3_hook, tmp_path):
    from symbl_airflow.sources import inspect_source

    data = _remux(mp4.make(CUES), tmp_path, "-map", "0", "-c", "copy", "-movflags", "+faststart")
    assert data.index(b"moov") < data.index(b"mdat")
    assert inspect_source(s3_hook, _put(s3, bucket, "fast.mp4", data)).media.has_video


@pytest.mark.parametrize(
    "make, expected",
    [
        (lambda good: good[:32], r"truncated or not a finished MP4 \(no 'moov' box; top-level boxes: ftyp\)"),
        (lambda good: good[: len(good) // 2], r"truncated or not a finished MP4 \(its 'mdat' box at byte \d+ needs"),
    ],
    ids=["ftyp_only", "first_half"],
)
def test_truncated_mp4(s3, bucket, mp4, s3_hook, make, expected):
    from symbl_airflow.sources import VideoSourceError, inspect_source

    uri = _put(s3, bucket, "cut.mp4", make(mp4.make(CUES)))
    with pytest.raises(VideoSourceError, match=expected) as err:
        inspect_source(s3_hook, uri)
    assert uri in str(err.value)


def test_audio_only_mp4_goes_to_the_audio_api(s3, bucket, mp4, s3_hook, tmp_path):
    """An M4A (AAC only) is one of the audio API's formats: sent as stored, without a Content-Type."""
    from symbl_airflow.sources import inspect_source

    audio = _remux(mp4.make(CUES), tmp_path, "-vn", "-sn", "-c", "copy")
    uri = _put(s3, bucket, "voice.mp4", audio)
    found = inspect_source(s3_hook, uri).inspection
    assert (found.kind, found.endpoint, found.content_type, found.member) == ("audio", "audio", "", "audio")
    assert not found.needs_conversion and found.tracks == ("audio",) and found.media_seconds > 0


def test_a_truncated_part_stops_the_conversation_after_the_parts_before_it(clean_sandbox, s3, bucket, mp4):
    """Media that cannot be decoded is no pre-check failure: it stops the conversation like a failed job."""
    from airflow.sdk.exceptions import AirflowFailException

    from symbl_airflow import SymblAppendVideoOperator

    good = mp4.make(CUES)
    uris = [_put(s3, bucket, f"c/part-{i}.mp4", data) for i, data in enumerate((good, good[:32], good), start=1)]
    op = SymblAppendVideoOperator(task_id="append", source=uris, strict_order=False)
    with pytest.raises(AirflowFailException, match="truncated or not a finished MP4") as err:
        op.execute({"task_state_store": None})
    message = str(err.value)
    assert f"{uris[1]} cannot be decoded" in message and "is stopped" in message
    assert [e["method"] for e in clean_sandbox.ledger()] == ["POST"]  # part 1 only; nothing after part 2
