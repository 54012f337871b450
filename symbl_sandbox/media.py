"""Media intake for the sandbox: streamed bodies, the MP4 check, decoding for duration and caption cues.

Bodies are never held whole in memory: :class:`Intake` hashes and counts each chunk as it arrives and spools
it to the data dir, because PyAV needs a seekable file to read the caption track (the ``moov`` box is
usually at the end). The spool file is deleted by the model once the job has processed it.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import re
import uuid
from collections.abc import AsyncIterable
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger(__name__)

#: Duration assumed for media PyAV cannot parse: 1 MiB of file per second of media (an HD-ish bitrate).
NOMINAL_BYTES_PER_SECOND = 1 << 20
#: Symbl's documented maximum duration per file (4 hours; FAQ 2022): the default of ``max_media_seconds``.
MAX_MEDIA_SECONDS = 4 * 3600.0
#: Captionless media with audio gets one filler line per this many seconds.
SECONDS_PER_SYNTHETIC_LINE = 5.0
#: The text of every filler line: plainly not speech, and no insight rule reads it.
FILLER_TEXT = "[sandbox filler: no captions in this media, so nothing to transcribe here]"
#: Raw audio streams with no index: FFmpeg only estimates their duration from the bitrate, so the
#: sandbox adds up their packets instead.
RAW_AUDIO_FORMATS = frozenset({"aac", "amr", "ac3"})
#: FFmpeg demuxers that turn any text file into a "video" (ANSI/binary text art): never a recording.
TEXT_ART_FORMATS = frozenset({"tty", "bin", "xbin", "adf", "idf"})
#: Audio packets decoded to prove the media decodes (a header alone proves nothing).
DECODE_CHECK_PACKETS = 8
CHUNK_SIZE = 1 << 16

_ASS_TAG = re.compile(r"\{[^}]*\}")
_SPEAKER = re.compile(r"^\s*([^:\n]{1,60}?)\s*:\s+(.+)$", re.S)


class MediaError(ValueError):
    """The body is not acceptable media; the message is safe to show to the client."""


@dataclass
class Cue:
    start: float
    end: float
    speaker: str | None
    text: str
    filler: bool = False


@dataclass
class MediaInfo:
    duration: float
    cues: list[Cue] = field(default_factory=list)
    parsed: bool = True  # False when PyAV could not read the file and the duration was estimated from size
    has_captions: bool = False
    has_audio: bool = False
    format_name: str | None = None
    problem: str | None = None  # why it did not decode, for the job's failure reason


def check_mp4_header(head: bytes) -> None:
    """Reject bodies whose first box is not ``ftyp`` (ISO BMFF files start with it, at offset 4)."""
    if len(head) < 8:
        raise MediaError("The request body is not a valid MP4 file: it is shorter than an MP4 box header.")
    if head[4:8] != b"ftyp":
        raise MediaError("The request body is not a valid MP4 file: no 'ftyp' box at offset 4.")
    size = int.from_bytes(head[0:4], "big")
    if size not in (0, 1) and size < 8:
        raise MediaError("The request body is not a valid MP4 file: the 'ftyp' box size is invalid.")


@dataclass
class IntakeResult:
    sha256: str
    size: int
    path: Path | None


class Intake:
    """Consume a byte stream chunk by chunk: sha256, byte count, optional MP4 check, spool file."""

    def __init__(self, spool_dir: Path | None, *, sniff_mp4: bool = False):
        self._hash = hashlib.sha256()
        self.size = 0
        self.sniff_mp4 = sniff_mp4
        self._head = b""
        self._checked = not sniff_mp4
        self.path: Path | None = None
        self._fh = None
        if spool_dir is not None:
            spool_dir.mkdir(parents=True, exist_ok=True)
            self.path = spool_dir / f"upload-{uuid.uuid4().hex}.bin"
            self._fh = open(self.path, "wb")

    def feed(self, chunk: bytes) -> None:
        if not chunk:
            return
        if not self._checked:
            self._head += chunk[: 8 - len(self._head)]
            if len(self._head) >= 8:
                check_mp4_header(self._head)
                self._checked = True
        self._hash.update(chunk)
        self.size += len(chunk)
        if self._fh is not None:
            self._fh.write(chunk)

    def finish(self) -> IntakeResult:
        if not self._checked:
            check_mp4_header(self._head)  # raises: the whole body was shorter than 8 bytes
        if self._fh is not None:
            self._fh.close()
            self._fh = None
        return IntakeResult(sha256=self._hash.hexdigest(), size=self.size, path=self.path)

    def discard(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None
        if self.path is not None:
            remove_quietly(self.path)

    async def consume(self, chunks: AsyncIterable[bytes]) -> IntakeResult:
        try:
            async for chunk in chunks:
                self.feed(chunk)
            return self.finish()
        except BaseException:
            self.discard()
            raise


def remove_quietly(path: Path | str | None) -> None:
    if path is None:
        return
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        log.warning("Could not delete spool file %s: %s", path, exc)


def clean_cue_text(raw: str) -> str:
    """Strip ASS override tags and line breaks that PyAV leaves in decoded mov_text cues."""
    text = _ASS_TAG.sub("", raw)
    text = text.replace("\\N", " ").replace("\\n", " ").replace("\\h", " ")
    return " ".join(text.split())


def split_speaker(text: str) -> tuple[str | None, str]:
    """``"Alice: Hello."`` -> ``("Alice", "Hello.")``; no prefix -> ``(None, text)``."""
    match = _SPEAKER.match(text)
    if match and not match.group(1).strip().startswith(("http", "https")):
        return match.group(1).strip(), match.group(2).strip()
    return None, text.strip()


def _ass_dialogue(sub) -> str:
    dialogue = getattr(sub, "dialogue", None)
    if dialogue:
        return dialogue.decode("utf-8", "replace") if isinstance(dialogue, bytes) else str(dialogue)
    ass = getattr(sub, "ass", b"")
    ass = ass.decode("utf-8", "replace") if isinstance(ass, bytes) else str(ass)
    # ASS event fields: ReadOrder, Layer, Style, Name, MarginL, MarginR, MarginV, Effect, Text
    parts = ass.split(",", 8)
    return parts[8] if len(parts) == 9 else ass


def probe(path: Path | str, size: int) -> MediaInfo:
    """Read duration, audio presence and caption cues with PyAV, decoding the first audio packets.

    Media PyAV cannot open, with no audio or video stream, or whose audio does not decode is not
    ``parsed`` (its duration is then estimated from ``size``). Blocking: call it in a worker thread.
    """
    try:
        import av

        with av.open(str(path)) as container:
            fmt = container.format.name if container.format else None
            kinds = [s.type for s in container.streams]
            if "audio" not in kinds and "video" not in kinds:
                return _unparsed(size, "it has no audio or video stream", fmt)
            if fmt in TEXT_ART_FORMATS:
                return _unparsed(size, f"it is text, not media (FFmpeg reads it as {fmt!r} text art)", fmt)
            has_audio = "audio" in kinds
            duration = (container.duration or 0) / 1_000_000
            if not duration:
                duration = max((float(s.duration * s.time_base) for s in container.streams if s.duration), default=0.0)
            has_captions = "subtitle" in kinds
            cues = _caption_cues(container)
        if has_audio:
            count_all = not duration or fmt in RAW_AUDIO_FORMATS
            counted = _decode_audio(path, count_all=count_all)
            duration = counted if count_all and counted else duration
        if cues:
            duration = max(duration, cues[-1].end)
        if duration <= 0:
            return _unparsed(size, "it has no duration", fmt)
        return MediaInfo(duration, cues, True, has_captions, has_audio, fmt)
    except Exception as exc:  # PyAV raises many error types for garbage input
        log.info("PyAV could not read %s (%s); estimating duration from its size", path, exc)
        return _unparsed(size, f"it could not be decoded ({exc.__class__.__name__})", None)


def _unparsed(size: int, problem: str, fmt: str | None) -> MediaInfo:
    return MediaInfo(duration=estimate_duration(size), parsed=False, format_name=fmt, problem=problem)


def _decode_audio(path: Path | str, *, count_all: bool) -> float:
    """Decode the first audio packets (raises when none decodes); with ``count_all``, also add up every
    audio packet's duration, for raw streams whose container states none."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        frames, total = 0, 0
        for i, packet in enumerate(container.demux(stream)):
            if frames == 0 or i < DECODE_CHECK_PACKETS:
                frames += len(packet.decode())
            if not frames and i >= DECODE_CHECK_PACKETS:
                break
            total += packet.duration or 0
            if frames and not count_all:
                break
        if not frames:
            raise ValueError("no audio frame decodes")
        return float(total * stream.time_base) if count_all else 0.0


def _caption_cues(container) -> list[Cue]:
    subs = [s for s in container.streams if s.type == "subtitle"]
    cues: list[Cue] = []
    if subs:
        stream = subs[0]
        for packet in container.demux(stream):
            if packet.pts is None:
                continue
            start = float(packet.pts * stream.time_base)
            end = start + float((packet.duration or 0) * stream.time_base)
            for sub in packet.decode():
                text = clean_cue_text(_ass_dialogue(sub))
                if not text:
                    continue
                speaker, body = split_speaker(text)
                cues.append(Cue(start, max(end, start), speaker, body))
    cues.sort(key=lambda c: c.start)
    return cues


def estimate_duration(size: int) -> float:
    return min(MAX_MEDIA_SECONDS, max(1.0, size / NOMINAL_BYTES_PER_SECOND))


def filler_cues(duration: float, speakers: list[str]) -> list[Cue]:
    """Filler for captionless media with audio: one marked line per 5 s, speakers taking turns, so the
    transcript's timing and members look like a conversation while its text is plainly not speech."""
    lines = max(1, math.ceil(duration / SECONDS_PER_SYNTHETIC_LINE - 1e-9))
    step = duration / lines
    names = speakers or ["Speaker 1", "Speaker 2"]
    return [
        Cue(start=i * step, end=(i + 1) * step, speaker=names[i % len(names)], text=FILLER_TEXT, filler=True)
        for i in range(lines)
    ]
