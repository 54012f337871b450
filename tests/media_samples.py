"""Real media files in every shape the media layer meets, generated with ffmpeg (fixture ``media_files`` in
tests/conftest.py: once per session)."""

from __future__ import annotations

import subprocess
from pathlib import Path

#: name -> ffmpeg arguments after the inputs (``{v}``: a small colour video, ``{a}``: a 440 Hz tone).
_SECONDS = 6
_V = ["-f", "lavfi", "-i", f"color=c=navy:s=64x48:r=5:d={_SECONDS}"]
_A = ["-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=16000:duration={_SECONDS}"]
_AV = _V + _A
_X264 = ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-g", "10"]

SHAPES: dict[str, tuple[list[str], list[str], str]] = {
    # name: (inputs, output args, suffix)
    "mp4_av": (_AV, [*_X264, "-c:a", "aac", "-b:a", "32k"], ".mp4"),
    "mp4_video_only": (_V, _X264, ".mp4"),
    "m4a": (_A, ["-c:a", "aac", "-b:a", "32k", "-f", "ipod"], ".m4a"),
    "wav": (_A, ["-c:a", "pcm_s16le"], ".wav"),
    "mp3": (_A, ["-c:a", "libmp3lame", "-b:a", "32k"], ".mp3"),
    "mp3_no_xing": (_A, ["-c:a", "libmp3lame", "-b:a", "32k", "-write_xing", "0", "-id3v2_version", "0"], ".mp3"),
    "flac": (_A, ["-c:a", "flac"], ".flac"),
    "ogg": (_A, ["-c:a", "libvorbis", "-q:a", "0"], ".ogg"),
    "opus": (_A, ["-c:a", "libopus", "-b:a", "16k"], ".opus"),
    "aac": (_A, ["-c:a", "aac", "-b:a", "32k", "-f", "adts"], ".aac"),
    "amr": (
        ["-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=8000:duration={_SECONDS}"],
        ["-c:a", "libopencore_amrnb", "-b:a", "12.2k", "-ar", "8000", "-ac", "1"],
        ".amr",
    ),
    "aiff": (_A, ["-c:a", "pcm_s16be"], ".aiff"),
    "ac3": (
        ["-f", "lavfi", "-i", f"sine=frequency=440:sample_rate=48000:duration={_SECONDS}"],
        ["-c:a", "ac3", "-b:a", "64k"],
        ".ac3",
    ),
    "wma": (_A, ["-c:a", "wmav2", "-b:a", "32k", "-f", "asf"], ".wma"),
    "webm": (_AV, ["-c:v", "libvpx", "-b:v", "50k", "-c:a", "libopus", "-b:a", "16k"], ".webm"),
    "webm_video_only": (_V, ["-c:v", "libvpx", "-b:v", "50k"], ".webm"),
    "webm_audio_only": (_A, ["-c:a", "libopus", "-b:a", "16k", "-f", "webm"], ".webm"),
    "mkv": (_AV, [*_X264, "-c:a", "aac", "-b:a", "32k"], ".mkv"),
    "mkv_opus": (_AV, [*_X264, "-c:a", "libopus", "-b:a", "16k"], ".mkv"),
    "avi": (_AV, ["-c:v", "mpeg4", "-q:v", "10", "-c:a", "libmp3lame", "-b:a", "32k"], ".avi"),
    "avi_mjpeg": (_AV, ["-c:v", "mjpeg", "-q:v", "10", "-c:a", "pcm_s16le"], ".avi"),
    "mov_h264": (_AV, [*_X264, "-c:a", "aac", "-b:a", "32k", "-f", "mov"], ".mov"),
    "mov_prores": (_AV, ["-c:v", "prores", "-profile:v", "0", "-c:a", "pcm_s16le", "-f", "mov"], ".mov"),
    "ts": (_AV, [*_X264, "-c:a", "aac", "-b:a", "32k", "-f", "mpegts"], ".ts"),
    "ogv": (_AV, ["-c:v", "libtheora", "-q:v", "1", "-c:a", "libvorbis", "-q:a", "0"], ".ogv"),
}


def ffmpeg_exe() -> str:
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def run_ffmpeg(args: list[str]) -> None:
    cmd = [ffmpeg_exe(), "-nostdin", "-loglevel", "error", "-y", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode:
        raise RuntimeError(f"ffmpeg failed: {' '.join(cmd)}\n{proc.stderr[-800:]}")


def make_shape(directory: Path, name: str) -> Path:
    inputs, out_args, suffix = SHAPES[name]
    path = directory / f"{name}{suffix}"
    if not path.exists():
        run_ffmpeg([*inputs, *out_args, "-t", str(_SECONDS), str(path)])
    return path


def make_long_silence(path: Path, seconds: float, fmt: str = "flac") -> Path:
    """Digital silence at 8 kHz mono: hours of it in a few hundred KB, written in seconds."""
    codec = {"flac": ["-c:a", "flac"], "wav": ["-c:a", "pcm_u8"], "mp3": ["-c:a", "libmp3lame", "-b:a", "8k"]}[fmt]
    run_ffmpeg(["-f", "lavfi", "-i", "anullsrc=channel_layout=mono:sample_rate=8000", "-t", str(seconds), *codec,
                str(path)])  # fmt: skip
    return path


def make_long_video(path: Path, seconds: float, gop_seconds: int = 10) -> Path:
    """A tiny 1 fps H.264 video with AAC silence: long, small, keyframes every ``gop_seconds``."""
    run_ffmpeg(
        ["-f", "lavfi", "-i", f"color=c=black:s=32x32:r=1:d={seconds}",
         "-f", "lavfi", "-i", f"anullsrc=channel_layout=mono:sample_rate=8000:d={seconds}",
         "-c:v", "libx264", "-preset", "ultrafast", "-g", str(gop_seconds), "-pix_fmt", "yuv420p",
         "-c:a", "aac", "-b:a", "8k", "-t", str(seconds), str(path)]
    )  # fmt: skip
    return path


class MediaFiles:
    def __init__(self, directory: Path):
        self.dir = directory
        directory.mkdir(parents=True, exist_ok=True)

    def __call__(self, name: str) -> Path:
        return make_shape(self.dir, name)

    def bytes(self, name: str) -> bytes:
        return self(name).read_bytes()
