"""The media generators other suites build on: every audio format Symbl lists decodes to what was asked."""

from __future__ import annotations

import av
import pytest

from symbl_sandbox import samples

pytestmark = pytest.mark.unit

CODECS = {
    "wav": "pcm_s16le",
    "mp3": "mp3float",  # the decoder PyAV picks for MP3
    "flac": "flac",
    "ogg": "vorbis",
    "opus": "opus",
    "aac": "aac",
    "amr": "amrnb",
    "aiff": "pcm_s16be",
    "m4a": "aac",
    "ac3": "ac3",
    "wma": "wmav2",
}


@pytest.mark.parametrize("fmt", sorted(samples.AUDIO_FORMATS))
@pytest.mark.parametrize("tone", [True, False], ids=["tone", "silence"])
def test_make_audio_writes_each_format(tmp_path, fmt, tone):
    path = samples.make_audio(tmp_path / f"a.{samples.AUDIO_FORMATS[fmt][0]}", fmt, 3.0, tone=tone)
    with av.open(str(path)) as container:
        streams = [s.type for s in container.streams]
        audio = container.streams.audio[0]
        assert streams == ["audio"]
        assert audio.codec_context.codec.name == CODECS[fmt]
        assert container.duration / 1e6 == pytest.approx(3.0, abs=0.15)
        frames = [f for packet in container.demux(audio) for f in packet.decode()]
        assert frames, fmt
    assert path.suffix == "." + samples.AUDIO_FORMATS[fmt][0]


def test_make_audio_bytes_and_bad_arguments(tmp_path):
    assert samples.make_audio_bytes("wav", 1.0)[:4] == b"RIFF"
    with pytest.raises(ValueError, match="unknown audio format 'xyz'"):
        samples.make_audio(tmp_path / "x", "xyz")
    with pytest.raises(ValueError, match="seconds"):
        samples.make_audio(tmp_path / "x.wav", "wav", 0)


def test_video_only_mp4_has_no_audio_track(tmp_path):
    path = samples.make_mp4(tmp_path / "v.mp4", [("A", "hi")], captions=False, audio=False)
    with av.open(str(path)) as container:
        assert [s.type for s in container.streams] == ["video"]
    with av.open(str(samples.make_mp4(tmp_path / "va.mp4", [("A", "hi")]))) as container:
        assert sorted(s.type for s in container.streams) == ["audio", "subtitle", "video"]
