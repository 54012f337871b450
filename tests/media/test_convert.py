"""Conversion and cutting on real files through ffmpeg: what comes out, in order, and nothing left on disk."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from symbl_airflow.media import ffmpeg
from symbl_airflow.media.convert import (
    FileProbe,
    PreparedMedia,
    StreamInfo,
    cut_limit,
    plan_output,
    probe_convert,
    probe_file,
)
from symbl_airflow.media.errors import MediaError, MediaExtraMissing, TooLongError, UndecodableMediaError
from symbl_airflow.media.formats import AUDIO, VIDEO, inspect
from symbl_airflow.media.reader import bytes_reader, file_reader
from tests.media_samples import make_long_silence, make_long_video

pytestmark = pytest.mark.unit


def decoded(path: Path) -> dict:
    """Streams and the seconds of audio actually decoded (not what a header claims)."""
    import av

    with av.open(str(path)) as container:
        kinds = [(s.type, s.codec_context.name) for s in container.streams]
        audio = container.streams.audio
        seconds = None
        if audio:
            samples = sum(frame.samples for frame in container.decode(audio=0))
            seconds = samples / audio[0].codec_context.sample_rate
    return {"streams": kinds, "audio_seconds": seconds}


def prepare(path: Path, tmp_path: Path, **kwargs) -> PreparedMedia:
    uri = f"s3://bucket/meeting/{path.name}"
    facts = inspect(file_reader(path), path.name, uri)
    return PreparedMedia(lambda: open(path, "rb"), path.stat().st_size, uri, facts, tmp_dir=tmp_path / "work", **kwargs)


# name -> (action, endpoint, muxer, Content-Type, streams in the output)
CONVERSIONS = {
    "webm": ("extract-audio", AUDIO, "ogg", None, [("audio", "opus")]),
    "webm_audio_only": ("extract-audio", AUDIO, "ogg", None, [("audio", "opus")]),
    "webm_video_only": ("encode-video", VIDEO, "mp4", "video/mp4", [("video", "h264")]),
    "mkv": ("remux", VIDEO, "mp4", "video/mp4", [("video", "h264"), ("audio", "aac")]),
    "mkv_opus": ("remux+aac", VIDEO, "mp4", "video/mp4", [("video", "h264"), ("audio", "aac")]),
    "avi": ("remux+aac", VIDEO, "mp4", "video/mp4", [("video", "mpeg4"), ("audio", "aac")]),
    "avi_mjpeg": ("extract-audio", AUDIO, "wav", "audio/wav", [("audio", "pcm_s16le")]),
    "mov_prores": ("extract-audio", AUDIO, "wav", "audio/wav", [("audio", "pcm_s16le")]),
    "ts": ("remux", VIDEO, "mp4", "video/mp4", [("video", "h264"), ("audio", "aac")]),
    "ogv": ("extract-audio", AUDIO, "ogg", None, [("audio", "vorbis")]),
}


@pytest.mark.parametrize("name", sorted(CONVERSIONS))
def test_containers_are_converted(media_files, tmp_path, name):
    action, endpoint, muxer, content_type, streams = CONVERSIONS[name]
    with prepare(media_files(name), tmp_path) as prepared:
        assert (prepared.plan.action, prepared.plan.endpoint, prepared.plan.muxer) == (action, endpoint, muxer)
        pieces = list(prepared.pieces())
        # (each piece is removed once the next is asked for; read it while it exists)
    assert len(pieces) == 1
    piece = pieces[0]
    assert (piece.endpoint, piece.content_type) == (endpoint, content_type)
    assert not piece.path.exists()
    assert not list((tmp_path / "work").iterdir())


@pytest.mark.parametrize("name", sorted(CONVERSIONS))
def test_converted_output_decodes_to_the_whole_recording(media_files, tmp_path, name):
    *_, streams = CONVERSIONS[name]
    with prepare(media_files(name), tmp_path) as prepared:
        for piece in prepared.pieces():
            out = decoded(piece.path)
            assert out["streams"] == streams
            if out["audio_seconds"] is not None:
                assert out["audio_seconds"] == pytest.approx(6.0, abs=0.15)
            if piece.endpoint == VIDEO:
                assert piece.path.read_bytes()[4:8] == b"ftyp"  # what Symbl's video API checks


def test_the_converted_endpoint_is_known_before_anything_is_sent(media_files):
    """A bounded probe over ranged reads tells length and destination without downloading."""
    path = media_files("webm")
    reader = file_reader(path)
    facts = inspect(reader, path.name, "s3://b/x.webm")
    updated, plan = probe_convert(reader, facts, "s3://b/x.webm")
    assert plan is not None and plan.endpoint == AUDIO
    assert updated.seconds == pytest.approx(6.0, abs=0.05)
    assert updated.tracks == ("video", "audio") and updated.has_audio


def test_video_only_is_flagged(media_files, tmp_path):
    with prepare(media_files("webm_video_only"), tmp_path) as prepared:
        assert prepared.plan.has_audio is False


def plan_for(streams, route="convert"):
    from symbl_airflow.media.formats import MediaFacts

    probe = FileProbe(
        "matroska,webm", 10.0, tuple(StreamInfo(i, k, c, default=d) for i, (k, c, d) in enumerate(streams))
    )
    return plan_output(probe, MediaFacts("mkv", route, "Matroska container"), "s3://b/x.mkv")


def test_plan_names_every_stream_left_out():
    plan = plan_for(
        [("video", "vp9", True), ("audio", "opus", False), ("audio", "vorbis", True), ("subtitle", "webvtt", False)]
    )
    assert plan.action == "extract-audio" and plan.args[:2] == ("-map", "0:2")  # the default audio stream
    assert plan.dropped == (
        "video stream #0 (vp9): Symbl analyses the sound only",
        "audio stream #1 (opus)",
        "subtitle stream #3 (webvtt)",
    )


def test_plan_keeps_text_subtitles_when_remuxing():
    plan = plan_for([("video", "h264", True), ("audio", "aac", True), ("subtitle", "subrip", False)])
    assert plan.action == "remux" and "mov_text" in plan.args and plan.dropped == ()


def test_plan_encodes_audio_symbl_does_not_list_to_flac():
    plan = plan_for([("video", "vp8", True), ("audio", "pcm_f64le", True)])
    assert (plan.action, plan.muxer, plan.args[-2:]) == ("encode-audio", "flac", ("-c:a", "flac"))


def test_no_audio_or_video_is_undecodable():
    with pytest.raises(UndecodableMediaError, match="no audio or video stream"):
        plan_for([("subtitle", "subrip", True)])


@pytest.mark.parametrize(
    "name, limit, count, endpoint",
    [
        ("mp4_av", 2.5, 3, VIDEO),  # copied video: cuts at keyframes (every 2 s here)
        ("mkv", 4.5, 2, VIDEO),  # remuxed and cut in one pass
        ("webm", 2.5, 3, AUDIO),  # extracted audio, cut anywhere
        ("wav", 2.5, 3, AUDIO),
        ("mp3", 2.5, 3, AUDIO),
        ("flac", 2.5, 3, AUDIO),
        ("ogg", 2.5, 3, AUDIO),
        ("opus", 2.5, 3, AUDIO),
        ("aac", 2.5, 3, AUDIO),
        ("m4a", 2.5, 3, AUDIO),
        ("aiff", 2.5, 3, AUDIO),
    ],
)
def test_long_parts_are_cut_into_consecutive_segments(media_files, tmp_path, name, limit, count, endpoint):
    with prepare(media_files(name), tmp_path, max_part_seconds=limit) as prepared:
        segments = prepared.segments
        assert len(segments) == count
        seen, previous = [], None
        for piece in prepared.pieces():
            if previous is not None:
                assert not previous.exists()  # one piece on disk at a time
            out = decoded(piece.path)
            seen.append((piece.segment.index, piece.endpoint, out["audio_seconds"]))
            previous = piece.path
    assert [i for i, _, _ in seen] == list(range(count))
    assert {e for _, e, _ in seen} == {endpoint}
    # every segment within the limit (a packet of slack), together the whole recording
    assert all(s <= limit + 0.1 for _, _, s in seen)
    assert sum(s for _, _, s in seen) == pytest.approx(6.0, abs=0.25)
    assert not list((tmp_path / "work").iterdir())


def test_four_hours_and_more_of_silence_with_the_default_limit(tmp_path):
    path = make_long_silence(tmp_path / "workshop.flac", 4 * 3600 + 600)
    with prepare(path, tmp_path) as prepared:
        assert prepared.facts.seconds == pytest.approx(4 * 3600 + 600)
        assert [round(s.seconds) for s in prepared.segments] == [7500, 7500]
        lengths = [decoded(piece.path)["audio_seconds"] for piece in prepared.pieces()]
    assert all(length <= 14_400 for length in lengths)
    assert sum(lengths) == pytest.approx(4 * 3600 + 600, abs=1)


def test_long_video_cut_at_keyframes(tmp_path):
    path = make_long_video(tmp_path / "long.mp4", 300, gop_seconds=7)
    with prepare(path, tmp_path, max_part_seconds=120) as prepared:
        starts = [s.start for s in prepared.segments]
        assert all(start % 7 == pytest.approx(0, abs=1e-3) for start in starts)  # keyframes only
        assert all(s.seconds <= cut_limit(120) for s in prepared.segments)
        durations = [probe_file(piece.path, "x").seconds for piece in prepared.pieces()]
    assert len(durations) == 3 and sum(durations) == pytest.approx(300, abs=1)


def test_on_too_long_fail_refuses_before_any_work(media_files, tmp_path):
    path = make_long_silence(tmp_path / "long.flac", 30)
    prepared = prepare(path, tmp_path, max_part_seconds=20, on_too_long="fail")
    with pytest.raises(TooLongError) as err:
        prepared.__enter__()
    assert "lasts 0:00:30" in str(err.value) and "on_too_long='split'" in str(err.value)
    assert str(path.name) in str(err.value)
    assert not list((tmp_path / "work").iterdir())


def test_truncated_container_is_undecodable_and_cleaned_up(media_files, tmp_path):
    data = media_files.bytes("webm")[:300]
    path = tmp_path / "cut.webm"
    path.write_bytes(data)
    with pytest.raises(UndecodableMediaError) as err, prepare(path, tmp_path):
        pass
    assert "s3://bucket/meeting/cut.webm" in str(err.value) and "ledger leave-out" in str(err.value)
    assert not list((tmp_path / "work").iterdir())


def test_work_files_are_removed_when_the_upload_fails_midway(media_files, tmp_path):
    with (
        pytest.raises(RuntimeError, match="upload failed"),
        prepare(media_files("wav"), tmp_path, max_part_seconds=2.5) as p,
    ):
        for _piece in p.pieces():
            raise RuntimeError("upload failed")
    assert not list((tmp_path / "work").iterdir())


def test_stale_work_directories_of_dead_processes_are_swept(tmp_path):
    import subprocess

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    stale = tmp_path / f"{ffmpeg.WORKDIR_PREFIX}{dead.pid}-abc"
    stale.mkdir()
    (stale / "input.webm").write_bytes(b"x" * 100)
    os.utime(stale, (0, 0))
    mine = tmp_path / f"{ffmpeg.WORKDIR_PREFIX}{os.getpid()}-def"
    mine.mkdir()
    os.utime(mine, (0, 0))
    assert ffmpeg.sweep_stale(tmp_path) == [stale]
    assert not stale.exists() and mine.exists()


def test_not_enough_disk_is_a_clear_error(media_files, tmp_path, monkeypatch):
    import shutil

    monkeypatch.setattr(shutil, "disk_usage", lambda path: shutil._ntuple_diskusage(100, 100, 10))
    with (
        pytest.raises(MediaError, match=f"point {ffmpeg.TMPDIR_ENV} at a larger disk"),
        prepare(media_files("webm"), tmp_path),
    ):
        pass


def test_a_missing_media_extra_is_named(media_files, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "av", None)
    with pytest.raises(MediaExtraMissing) as err, prepare(media_files("webm"), tmp_path):
        pass
    assert 'pip install "symbl-airflow[media]"' in str(err.value) and "PyAV" in str(err.value)
    monkeypatch.setitem(sys.modules, "imageio_ffmpeg", None)
    with pytest.raises(MediaExtraMissing, match="imageio-ffmpeg"):
        ffmpeg.ffmpeg_exe("s3://b/x.webm", "converting it")


def test_ffmpeg_failure_names_the_object(tmp_path):
    with pytest.raises(ffmpeg.FfmpegError) as err:
        ffmpeg.run(["-i", str(tmp_path / "missing.webm"), "-f", "null", "-"], uri="s3://b/x.webm", what="remux",
                   log_dir=tmp_path)  # fmt: skip
    assert "s3://b/x.webm" in str(err.value) and "remux failed" in str(err.value)


def test_not_media_is_never_prepared(tmp_path):
    facts = inspect(bytes_reader(b"hello"), "notes.txt", "s3://b/notes.txt")
    with pytest.raises(MediaError, match="is not media"), PreparedMedia(lambda: None, 5, "s3://b/notes.txt", facts):
        pass


def test_one_segment_of_a_plan_made_at_inspection(media_files, tmp_path):
    """What a task sending segment 2 of 3 does: same cuts as the task that sent segment 1, no facts needed."""
    from symbl_airflow.media.segments import plan_segments

    path = media_files("mp4_av")
    planned = plan_segments(6.0, cut_limit(2.5))
    uri = f"s3://bucket/meeting/{path.name}"
    outputs = []
    for index in range(len(planned)):
        with PreparedMedia(lambda: open(path, "rb"), path.stat().st_size, uri, None, max_part_seconds=2.5,
                           tmp_dir=tmp_path / "work", planned=planned) as prepared:  # fmt: skip
            assert [s.start for s in prepared.segments] == [0.0, 2.0, 4.0]  # moved back to keyframes
            for piece in prepared.pieces(only=index):
                outputs.append((piece.segment.index, piece.endpoint, probe_file(piece.path, uri).seconds))
    assert [i for i, _, _ in outputs] == [0, 1, 2] and {e for _, e, _ in outputs} == {VIDEO}
    assert sum(s for _, _, s in outputs) == pytest.approx(6.0, abs=0.2)
