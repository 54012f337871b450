"""Small real media for tests, the demo and DAG authors, made with imageio-ffmpeg's ffmpeg binary.

A file made with ``captions=True`` carries a mov_text subtitle track whose cues (``Speaker: text``) the
sandbox turns into the transcript, so a test can tell exactly what Symbl "heard". :func:`make_audio` writes
each audio format Symbl's FAQ lists for the audio API (a tone or digital silence, no captions), and
``make_mp4(..., audio=False)`` a video-only MP4.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path

FPS = 5


def _srt_time(seconds: float) -> str:
    ms = round(seconds * 1000)
    h, ms = divmod(ms, 3_600_000)
    m, ms = divmod(ms, 60_000)
    s, ms = divmod(ms, 1000)
    return f"{h:02d}:{m:02d}:{s:02d},{ms:03d}"


def _srt(cues: Sequence[tuple[str, str]], seconds_per_cue: float) -> str:
    blocks = []
    for i, (speaker, text) in enumerate(cues):
        line = " ".join(f"{speaker}: {text}".split())
        start, end = i * seconds_per_cue, (i + 1) * seconds_per_cue
        blocks.append(f"{i + 1}\n{_srt_time(start)} --> {_srt_time(end)}\n{line}\n")
    return "\n".join(blocks) + "\n"


def make_mp4(
    path: str | os.PathLike[str],
    cues: Sequence[tuple[str, str]],
    *,
    seconds_per_cue: float = 1.0,
    captions: bool = True,
    width: int = 64,
    height: int = 48,
    audio: bool = True,
) -> Path:
    """Write an MP4 (H.264 color video [+ AAC sine audio] [+ mov_text captions]) lasting one cue per slot.

    Cue ``i`` spans ``[i*seconds_per_cue, (i+1)*seconds_per_cue)``; no cues -> one slot, no captions.
    ``audio=False`` leaves the audio track out (a screen recording without sound).
    """
    import imageio_ffmpeg

    if seconds_per_cue <= 0:
        raise ValueError("seconds_per_cue must be > 0")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    duration = max(1, len(cues)) * seconds_per_cue
    with_captions = captions and bool(cues)
    with tempfile.TemporaryDirectory(prefix="symbl-mp4-") as tmp:
        cmd = [
            imageio_ffmpeg.get_ffmpeg_exe(),
            "-nostdin",
            "-loglevel",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            f"color=c=navy:s={width}x{height}:r={FPS}:d={duration}",
            "-f",
            "lavfi",
            "-i",
            f"sine=frequency=440:sample_rate=16000:duration={duration}",
        ]
        if with_captions:
            srt = Path(tmp) / "cues.srt"
            srt.write_text(_srt(cues, seconds_per_cue), encoding="utf-8")
            cmd += ["-i", str(srt)]
        cmd += ["-map", "0:v"] + (["-map", "1:a"] if audio else [])
        if with_captions:
            cmd += ["-map", "2:s", "-c:s", "mov_text"]
        cmd += [
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
            "-b:a",
            "32k",
            "-t",
            str(duration),
            str(path),
        ]
        _run_ffmpeg(cmd)
    return path


def _run_ffmpeg(cmd: list[str]) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"ffmpeg failed ({proc.returncode}): {proc.stderr.strip()[-500:]}")


#: ``fmt`` of :func:`make_audio` -> (file extension, ffmpeg output arguments, sample rate). One entry per
#: format of Symbl's FAQ list for the audio API (mp3, wav, amr, aac, ac3, aiff, flac, ogg, opus, wma, m4a).
AUDIO_FORMATS: dict[str, tuple[str, tuple[str, ...], int]] = {
    "wav": ("wav", ("-c:a", "pcm_s16le", "-f", "wav"), 16000),
    "mp3": ("mp3", ("-c:a", "libmp3lame", "-b:a", "32k", "-f", "mp3"), 16000),
    "flac": ("flac", ("-c:a", "flac", "-f", "flac"), 16000),
    "ogg": ("ogg", ("-c:a", "libvorbis", "-q:a", "0", "-f", "ogg"), 16000),
    "opus": ("opus", ("-c:a", "libopus", "-b:a", "16k", "-f", "opus"), 16000),
    "aac": ("aac", ("-c:a", "aac", "-b:a", "32k", "-f", "adts"), 16000),
    "amr": ("amr", ("-c:a", "libopencore_amrnb", "-b:a", "12.2k", "-f", "amr"), 8000),
    "aiff": ("aiff", ("-c:a", "pcm_s16be", "-f", "aiff"), 16000),
    "m4a": ("m4a", ("-c:a", "aac", "-b:a", "32k", "-f", "ipod"), 16000),
    "ac3": ("ac3", ("-c:a", "ac3", "-b:a", "64k", "-f", "ac3"), 48000),
    "wma": ("wma", ("-c:a", "wmav2", "-b:a", "32k", "-f", "asf"), 16000),
}


def make_audio(
    path: str | os.PathLike[str],
    fmt: str,
    seconds: float = 2.0,
    *,
    tone: bool = True,
    channels: int = 1,
) -> Path:
    """Write ``seconds`` of audio in ``fmt`` (a key of :data:`AUDIO_FORMATS`): a 440 Hz tone, or digital
    silence with ``tone=False`` (compresses to almost nothing, so long files stay small)."""
    import imageio_ffmpeg

    if fmt not in AUDIO_FORMATS:
        raise ValueError(f"unknown audio format {fmt!r}; use one of {', '.join(AUDIO_FORMATS)}")
    if seconds <= 0:
        raise ValueError("seconds must be > 0")
    _, args, rate = AUDIO_FORMATS[fmt]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    layout = "mono" if channels == 1 else "stereo"
    source = (
        f"sine=frequency=440:sample_rate={rate}:duration={seconds}"
        if tone
        else f"anullsrc=channel_layout={layout}:sample_rate={rate}"
    )
    cmd = [imageio_ffmpeg.get_ffmpeg_exe(), "-nostdin", "-loglevel", "error", "-y", "-f", "lavfi", "-i", source]
    cmd += ["-t", str(seconds), "-ac", str(channels), "-ar", str(rate), *args, str(path)]
    _run_ffmpeg(cmd)
    return path


def make_audio_bytes(fmt: str, seconds: float = 2.0, **kwargs) -> bytes:
    with tempfile.TemporaryDirectory(prefix="symbl-audio-") as tmp:
        ext = AUDIO_FORMATS[fmt][0] if fmt in AUDIO_FORMATS else "bin"
        return make_audio(Path(tmp) / f"sample.{ext}", fmt, seconds, **kwargs).read_bytes()


def make_mp4_bytes(cues: Sequence[tuple[str, str]], **kwargs) -> bytes:
    with tempfile.TemporaryDirectory(prefix="symbl-mp4-") as tmp:
        return make_mp4(Path(tmp) / "sample.mp4", cues, **kwargs).read_bytes()


def not_mp4_bytes() -> bytes:
    """A body that is clearly not MP4 (a WAV-like RIFF header)."""
    return b"RIFF\x24\x00\x00\x00WAVEfmt " + b"\x00" * 64


def truncated_mp4_bytes(good: bytes) -> bytes:
    """The first half of a good MP4: the ``ftyp`` box survives but ``moov`` is gone, so PyAV can't read it."""
    return good[: max(32, len(good) // 2)]


def mp4_header() -> bytes:
    """A valid-looking ``ftyp`` box (32 bytes): enough to pass the upload check."""
    return (32).to_bytes(4, "big") + b"ftypisom" + (512).to_bytes(4, "big") + b"isomiso2avc1mp41"


def padded_mp4_chunks(total_bytes: int, chunk_size: int = 1 << 20) -> Iterator[bytes]:
    """Yield ``total_bytes`` of an MP4 header followed by zero padding, for streaming-upload tests."""
    header = mp4_header()
    if total_bytes < len(header):
        raise ValueError("total_bytes must be at least the header size")
    yield header
    remaining = total_bytes - len(header)
    zeros = bytes(chunk_size)
    while remaining > 0:
        n = min(remaining, chunk_size)
        yield zeros if n == chunk_size else bytes(n)
        remaining -= n
