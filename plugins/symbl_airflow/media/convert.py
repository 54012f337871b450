"""Making media Symbl takes out of what it does not: other containers converted, long recordings cut.

What a container becomes (``plan_output``; the README says why):

* its video is H.264/HEVC/MPEG-4/AV1 (MKV and MOV from OBS, Zoom, phones; MPEG-TS; most AVI): **remuxed**
  to MP4, video copied, audio copied when MP4 carries it (AAC, MP3, AC-3) or else encoded to AAC, text
  subtitles kept as ``mov_text``: the video API, at the cost of a file copy;
* any other video (VP8/VP9 WebM, Theora, Motion JPEG, ProRes, WMV): its **audio is extracted** and sent to
  the audio API, copied when Symbl's audio API takes the codec (Opus/Vorbis in Ogg, MP3, AAC, FLAC, PCM in
  WAV/AIFF, AMR, AC-3, WMA), else encoded to FLAC (lossless): Symbl analyses speech, and re-encoding the
  picture would cost a worker hours of CPU per hour of 1080p for pixels Symbl does not use;
* video without any audio: encoded to H.264 MP4 (nothing else can carry it; Symbl will hear nothing).

Everything goes through one work directory per object (``ffmpeg.workdir``): the S3 body is copied to
disk in chunks, ffmpeg writes one output (one segment) at a time, each output is removed once sent.
"""

from __future__ import annotations

import io
import logging
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import BinaryIO

from symbl_airflow.media import ffmpeg
from symbl_airflow.media.errors import MediaError, TooLongError, UndecodableMediaError
from symbl_airflow.media.formats import AUDIO, CONVERT, VIDEO, MediaFacts
from symbl_airflow.media.reader import RangeReader
from symbl_airflow.media.segments import (
    DEFAULT_MAX_PART_SECONDS,
    ON_TOO_LONG,
    Segment,
    UncuttableError,
    clock,
    plan_segments,
    snap_to_keyframes,
)

log = logging.getLogger(__name__)

#: Video codecs MP4 carries (copied into an MP4 as they are).
VIDEO_COPY_CODECS = frozenset({"h264", "hevc", "mpeg4", "av1"})
#: Audio codecs copied into that MP4; others are encoded to AAC.
MP4_AUDIO_COPY_CODECS = frozenset({"aac", "mp3", "ac3", "eac3", "alac"})
#: Subtitle codecs that become ``mov_text`` (text); bitmap subtitles cannot.
TEXT_SUBTITLE_CODECS = frozenset({"subrip", "ass", "ssa", "webvtt", "mov_text", "text"})
#: Audio codec -> (muxer, suffix, Content-Type) for audio sent to the audio API as it is coded.
AUDIO_COPY_OUTPUTS: dict[str, tuple[str, str, str | None]] = {
    "mp3": ("mp3", ".mp3", "audio/mpeg"),
    "opus": ("ogg", ".opus", None),
    "vorbis": ("ogg", ".ogg", None),
    "flac": ("flac", ".flac", None),
    "aac": ("adts", ".aac", None),
    "amr_nb": ("amr", ".amr", None),
    "amr_wb": ("amr", ".amr", None),
    "ac3": ("ac3", ".ac3", None),
    "wmav1": ("asf", ".wma", None),
    "wmav2": ("asf", ".wma", None),
    **{codec: ("wav", ".wav", "audio/wav") for codec in ("pcm_s16le", "pcm_s24le", "pcm_s32le", "pcm_u8",
                                                           "pcm_f32le", "pcm_mulaw", "pcm_alaw")},
    **{codec: ("aiff", ".aiff", None) for codec in ("pcm_s16be", "pcm_s24be", "pcm_s32be")},
}  # fmt: skip
#: FLAC_NOTE: FLAC is re-encoded (losslessly, fast), never copied: with a copy ffmpeg keeps the source's
#: STREAMINFO, so a segment's header would state the whole recording's length.
#: Audio the audio API does not list is encoded to FLAC (lossless: no second lossy generation).
AUDIO_FALLBACK = ("flac", ".flac", None, ("-c:a", "flac"))
#: Bytes PyAV may read over S3 to learn a converted container's streams and length.
REMOTE_PROBE_BYTES = 16 << 20
#: Segments are planned this much (at most 2%) under ``max_part_seconds``.
CUT_SAFETY_SECONDS = 30.0
#: Disk asked for beyond twice the object (input copy + output of about the same size).
DISK_MARGIN = 64 << 20


@dataclass(frozen=True)
class StreamInfo:
    index: int
    kind: str  # video, audio, subtitle, data, attachment
    codec: str
    default: bool = False
    attached_pic: bool = False

    def describe(self) -> str:
        return f"{self.kind} stream #{self.index} ({self.codec})"


@dataclass(frozen=True)
class FileProbe:
    container: str
    seconds: float | None
    streams: tuple[StreamInfo, ...]

    def of(self, kind: str) -> list[StreamInfo]:
        chosen = [s for s in self.streams if s.kind == kind and not s.attached_pic]
        return sorted(chosen, key=lambda s: (not s.default, s.index))


@dataclass(frozen=True)
class OutputPlan:
    """One ffmpeg output: where it goes in Symbl and how it is made."""

    endpoint: str  # video | audio
    action: str  # copy | remux | remux+aac | extract-audio | encode-audio | encode-video
    muxer: str
    suffix: str
    content_type: str | None
    args: tuple[str, ...]  # -map/-c options (no input, no output, no cut)
    copies_video: bool
    has_audio: bool
    reason: str
    dropped: tuple[str, ...] = ()


def _stream_info(stream) -> StreamInfo:
    from av.stream import Disposition

    disposition = stream.disposition
    name = getattr(stream.codec_context, "name", None) or "unknown"
    return StreamInfo(
        stream.index,
        stream.type,
        name,
        default=bool(disposition & Disposition.default),
        attached_pic=bool(disposition & Disposition.attached_pic),
    )


def _probe_container(container) -> FileProbe:
    seconds = container.duration / 1_000_000 if container.duration else None
    return FileProbe(container.format.name, seconds, tuple(_stream_info(s) for s in container.streams))


def probe_file(path: str | os.PathLike[str], uri: str) -> FileProbe:
    av = ffmpeg.require_av(uri, "reading its streams")
    try:
        with av.open(os.fspath(path)) as container:
            return _probe_container(container)
    except av.FFmpegError as exc:
        raise UndecodableMediaError(uri, f"ffmpeg cannot read it: {exc}") from None


class _RangeFile(io.RawIOBase):
    """A read-only, seekable file over ranged reads, with a byte budget (for PyAV's probe over S3)."""

    def __init__(self, reader: RangeReader, budget: int):
        self.reader, self.budget, self.pos, self.fetched = reader, budget, 0, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.pos, io.SEEK_END: self.reader.size}[whence]
        self.pos = max(0, base + offset)
        return self.pos

    def tell(self) -> int:
        return self.pos

    def readinto(self, buffer) -> int:
        want = min(len(buffer), self.reader.size - self.pos)
        if want <= 0:
            return 0
        self.fetched += want
        if self.fetched > self.budget:
            raise OSError(f"probe budget of {self.budget} bytes spent")
        data = self.reader.read(self.pos, want, ahead=256 << 10)
        buffer[: len(data)] = data
        self.pos += len(data)
        return len(data)


def probe_remote(reader: RangeReader, uri: str, budget: int = REMOTE_PROBE_BYTES) -> FileProbe | None:
    """Streams and length of a container read over ranged GETs (at most ``budget`` bytes); None if it
    needs more (e.g. an index at the end of a huge file): the conversion finds out on the local copy."""
    av = ffmpeg.require_av(uri, "reading its streams")
    raw = _RangeFile(reader, budget)
    try:
        with av.open(io.BufferedReader(raw, 64 << 10), mode="r") as container:
            return _probe_container(container)
    except OSError:
        if raw.fetched > budget:
            return None
        raise
    except av.FFmpegError as exc:
        if raw.fetched > budget:
            return None
        raise UndecodableMediaError(uri, f"ffmpeg cannot read it: {exc}") from None


def plan_output(probe: FileProbe, facts: MediaFacts, uri: str) -> OutputPlan:
    """What to send for one object (pure: from its streams)."""
    videos, audios = probe.of("video"), probe.of("audio")
    subtitles = probe.of("subtitle")
    others = [s for s in probe.streams if s.kind not in ("video", "audio", "subtitle") or s.attached_pic]
    if facts.route in (VIDEO, AUDIO):  # as it is: only cut, never re-coded
        if facts.route == AUDIO:
            if not audios:
                raise UndecodableMediaError(uri, "ffmpeg finds no audio stream in it")
            muxer, suffix, ctype = SOURCE_MUXERS.get(facts.format) or AUDIO_COPY_OUTPUTS.get(
                audios[0].codec, AUDIO_FALLBACK[:3]
            )
            codec = ("-c:a", "flac") if muxer == "flac" else ("-c:a", "copy")  # see FLAC_NOTE
            return OutputPlan(
                AUDIO,
                "copy",
                muxer,
                suffix,
                facts.content_type,
                ("-map", f"0:{audios[0].index}", *codec),
                False,
                True,
                facts.reason,
            )
        args = ("-map", "0:v", "-map", "0:a?", "-map", "0:s?", "-c", "copy")
        return OutputPlan(VIDEO, "copy", "mp4", ".mp4", "video/mp4", args, True, bool(audios), facts.reason)
    dropped: list[str] = [s.describe() for s in others]
    if videos and videos[0].codec in VIDEO_COPY_CODECS:
        video = videos[0]
        args = ["-map", f"0:{video.index}", "-c:v", "copy"]
        action = "remux"
        dropped += [s.describe() for s in videos[1:]]
        if audios:
            args += ["-map", f"0:{audios[0].index}"]
            if audios[0].codec in MP4_AUDIO_COPY_CODECS:
                args += ["-c:a", "copy"]
            else:
                args += ["-c:a", "aac", "-b:a", "128k"]
                action = "remux+aac"
            dropped += [s.describe() for s in audios[1:]]
        text = [s for s in subtitles if s.codec in TEXT_SUBTITLE_CODECS]
        if text:
            args += ["-map", f"0:{text[0].index}", "-c:s", "mov_text"]
        dropped += [s.describe() for s in subtitles if not text or s is not text[0]]
        args += ["-tag:v", "hvc1"] if video.codec == "hevc" else []
        return OutputPlan(
            VIDEO,
            action,
            "mp4",
            ".mp4",
            "video/mp4",
            tuple(args),
            True,
            bool(audios),
            f"{facts.reason}: {video.codec} video remuxed to MP4",
            tuple(dropped),
        )
    if audios:
        sound = audios[0]
        dropped += [s.describe() + ": Symbl analyses the sound only" for s in videos]
        dropped += [s.describe() for s in audios[1:] + subtitles]
        copy = AUDIO_COPY_OUTPUTS.get(sound.codec)
        if copy:
            muxer, suffix, ctype = copy
            args = ("-map", f"0:{sound.index}", "-c:a", "flac" if muxer == "flac" else "copy")
            action = "extract-audio"
        else:
            muxer, suffix, ctype, codec_args = AUDIO_FALLBACK
            args = ("-map", f"0:{sound.index}", *codec_args)
            action = "encode-audio"
        why = f"{videos[0].codec} video is not MP4's, audio sent" if videos else "audio"
        return OutputPlan(
            AUDIO,
            action,
            muxer,
            suffix,
            ctype,
            args,
            False,
            True,
            f"{facts.reason}: {why} ({sound.codec} -> {muxer})",
            tuple(dropped),
        )
    if videos:
        video = videos[0]
        args = (
            "-map",
            f"0:{video.index}",
            "-c:v",
            "libx264",
            "-preset",
            "veryfast",
            "-crf",
            "28",
            "-pix_fmt",
            "yuv420p",
        )
        dropped += [s.describe() for s in videos[1:] + subtitles]
        return OutputPlan(
            VIDEO,
            "encode-video",
            "mp4",
            ".mp4",
            "video/mp4",
            args,
            False,
            False,
            f"{facts.reason}: {video.codec} video without audio encoded to H.264",
            tuple(dropped),
        )
    raise UndecodableMediaError(uri, f"no audio or video stream ffmpeg can read ({probe.container})")


#: As-is audio formats cut into segments keep their container.
SOURCE_MUXERS: dict[str, tuple[str, str, str | None]] = {
    "wav": ("wav", ".wav", "audio/wav"),
    "mp3": ("mp3", ".mp3", "audio/mpeg"),
    "flac": ("flac", ".flac", None),
    "ogg": ("ogg", ".ogg", None),
    "opus": ("ogg", ".opus", None),
    "aac": ("adts", ".aac", None),
    "amr": ("amr", ".amr", None),
    "aiff": ("aiff", ".aiff", None),
    "ac3": ("ac3", ".ac3", None),
    "wma": ("asf", ".wma", None),
    "m4a": ("ipod", ".m4a", None),
}


def keyframe_times(path: str | os.PathLike[str], stream_index: int, uri: str) -> list[float]:
    """Seconds (from the media's start) of every keyframe of one video stream: reads packets, decodes nothing."""
    av = ffmpeg.require_av(uri, "finding where it can be cut")
    times: list[float] = []
    try:
        with av.open(os.fspath(path)) as container:
            stream = container.streams[stream_index]
            start = container.start_time / 1_000_000 if container.start_time else 0.0
            for packet in container.demux(stream):
                if packet.is_keyframe and packet.pts is not None:
                    times.append(float(packet.pts * packet.time_base) - start)
    except av.FFmpegError as exc:
        raise UndecodableMediaError(uri, f"ffmpeg cannot read its packets: {exc}") from None
    return sorted(times)


def cut_limit(max_part_seconds: float) -> float:
    """The length segments are planned for: cuts fall on whole packets (an audio frame, up to a few tenths
    of a second), so a little under the limit keeps each segment within it."""
    return max_part_seconds - min(CUT_SAFETY_SECONDS, max_part_seconds * 0.02)


def probe_convert(reader: RangeReader, facts: MediaFacts, uri: str) -> tuple[MediaFacts, OutputPlan | None]:
    """For a ``convert`` object: its length, tracks and what it will become, read over ranged GETs
    before anything is sent; ``(facts, None)`` when that needs more than a bounded read."""
    if facts.route != CONVERT:
        return facts, None
    probe = probe_remote(reader, uri)
    if probe is None:
        return facts, None
    plan = plan_output(probe, facts, uri)
    kinds = tuple(s.kind for s in probe.streams if s.kind in ("video", "audio", "subtitle") and not s.attached_pic)
    codecs = tuple(s.codec for s in probe.streams if s.kind in ("video", "audio"))
    updated = replace(
        facts, seconds=probe.seconds, seconds_exact=probe.seconds is not None, tracks=kinds, codecs=codecs
    )
    return updated, plan


def check_length(seconds: float | None, max_part_seconds: float, on_too_long: str, uri: str) -> None:
    """Refuse a too-long part before anything is sent when ``on_too_long="fail"``."""
    if on_too_long not in ON_TOO_LONG:
        raise ValueError(f"on_too_long must be one of {ON_TOO_LONG}, got {on_too_long!r}")
    if on_too_long == "fail" and seconds is not None and seconds > max_part_seconds:
        raise TooLongError(
            f"source {uri!r} lasts {clock(seconds)} ({seconds:,.0f} s), longer than max_part_seconds="
            f"{max_part_seconds:g} (Symbl takes at most 4 hours per file); cut it, or set "
            "on_too_long='split' to send it as consecutive segments"
        )


@dataclass
class Piece:
    """One upload: a whole converted object or one segment of it, on local disk until sent."""

    segment: Segment
    path: Path
    size: int
    endpoint: str
    content_type: str | None

    def opener(self) -> Callable[[], BinaryIO]:
        return lambda: open(self.path, "rb")


@dataclass
class PreparedMedia:
    """One object made ready for Symbl through bounded local disk, one piece at a time.

    ``with PreparedMedia(...) as prepared: for piece in prepared.pieces(): send(piece)``: entering
    copies the object to a work directory, reads its streams and plans output and segments; each piece
    is written by ffmpeg when asked for and removed when the next is asked for; leaving removes all.

    ``facts``: what the headers said (None: sniffed again from the local copy). ``planned``: segments
    planned before the media was read (the ledger's); copied video moves their cuts to keyframes.
    """

    open_body: Callable[[], BinaryIO]
    size: int
    uri: str
    facts: MediaFacts | None = None
    max_part_seconds: float = DEFAULT_MAX_PART_SECONDS
    on_too_long: str = "split"
    tmp_dir: str | os.PathLike[str] | None = None
    planned: list[Segment] | None = None
    plan: OutputPlan | None = field(default=None, init=False)
    segments: list[Segment] = field(default_factory=list, init=False)
    seconds: float | None = field(default=None, init=False)
    _dir_cm: object = field(default=None, init=False, repr=False)
    _dir: Path | None = field(default=None, init=False, repr=False)
    _input: Path | None = field(default=None, init=False, repr=False)

    def __enter__(self) -> PreparedMedia:
        if self.facts is not None and self.facts.route not in (VIDEO, AUDIO, CONVERT):
            raise MediaError(f"source {self.uri!r} is not media ({self.facts.reason}); it is not a part")
        self._dir_cm = ffmpeg.workdir(self.tmp_dir, need_bytes=2 * self.size + DISK_MARGIN, uri=self.uri)
        self._dir = self._dir_cm.__enter__()
        try:
            self._prepare()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        for line in self.plan.dropped:
            log.info("%s: %s left out", self.uri, line)
        return self

    def _prepare(self) -> None:
        suffix = Path(self.uri).suffix[:8]
        self._input = ffmpeg.spool(self.open_body, self._dir / f"input{suffix}", self.size, self.uri)
        if self.facts is None:
            from symbl_airflow.media.formats import inspect
            from symbl_airflow.media.reader import file_reader

            self.facts = inspect(file_reader(self._input), Path(self.uri).name, self.uri)
            if not self.facts.is_media:
                raise MediaError(f"source {self.uri!r} is not media ({self.facts.reason}); it is not a part")
        probe = probe_file(self._input, self.uri)
        self.plan = plan_output(probe, self.facts, self.uri)
        self.seconds = probe.seconds if probe.seconds else self.facts.seconds
        if not self.seconds:
            raise UndecodableMediaError(self.uri, "ffmpeg finds no duration in it")
        check_length(self.seconds, self.max_part_seconds, self.on_too_long, self.uri)
        planned = self.planned
        if planned is None and self.seconds <= self.max_part_seconds:
            self.segments = [Segment(0, 1, 0.0, self.seconds)]
            return
        keyframes = None
        if self.plan.copies_video:
            keyframes = keyframe_times(self._input, probe.of("video")[0].index, self.uri)
        try:
            if planned is None:
                self.segments = plan_segments(self.seconds, cut_limit(self.max_part_seconds), keyframes)
            elif keyframes is not None and len(planned) > 1:
                self.segments = snap_to_keyframes(planned, keyframes, self.seconds, self.max_part_seconds)
            else:
                self.segments = list(planned)
        except UncuttableError as exc:
            raise MediaError(
                f"source {self.uri!r}: {exc}; re-encode it with keyframes at least every few minutes "
                "(e.g. 'ffmpeg -i in.mp4 -c:v libx264 -g 300 -c:a copy out.mp4') or cut it yourself"
            ) from None

    def __exit__(self, *exc) -> None:
        if self._dir_cm is not None:
            cm, self._dir_cm = self._dir_cm, None
            cm.__exit__(None, None, None)

    def pieces(self, only: int | None = None) -> Iterator[Piece]:
        """Each segment in order (or just segment ``only``), made when asked for; each removed after."""
        assert self.plan is not None and self._dir is not None and self._input is not None, "use in a with block"
        for segment in self.segments:
            if only is not None and segment.index != only:
                continue
            piece = self._make(segment)
            try:
                yield piece
            finally:
                piece.path.unlink(missing_ok=True)

    def _make(self, segment: Segment) -> Piece:
        plan = self.plan
        out = self._dir / f"piece-{segment.index:03d}{plan.suffix}"
        args: list[str] = ["-i", str(self._input)]
        if segment.count > 1:
            # Output-side cuts drop whole packets before ``start``: with copied video the cut is a
            # keyframe (planned so), and consecutive segments neither overlap nor leave a gap.
            args += ["-ss", f"{segment.start:.6f}"]
            if not segment.is_last:
                args += ["-t", f"{segment.seconds:.6f}"]
            args += ["-avoid_negative_ts", "make_zero"]
        args += [*plan.args, "-f", plan.muxer, str(out)]
        what = f"{plan.action} ({segment.label()})" if segment.count > 1 else plan.action
        ffmpeg.run(args, uri=self.uri, what=what, log_dir=self._dir)
        return Piece(segment, out, out.stat().st_size, plan.endpoint, plan.content_type)
