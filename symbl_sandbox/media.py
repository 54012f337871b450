"""Media intake for the sandbox: streamed bodies, the MP4 check and caption cues.

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
#: Symbl's documented maximum duration per file (4 hours).
MAX_MEDIA_SECONDS = 4 * 3600.0
#: The deterministic transcript of captionless media has one line per this many seconds.
SECONDS_PER_SYNTHETIC_LINE = 5.0
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


@dataclass
class MediaInfo:
    duration: float
    cues: list[Cue] = field(default_factory=list)
    parsed: bool = True  # False when PyAV could not read the file and the duration was estimated from size
    has_captions: bool = False


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
    """Read duration and caption cues with PyAV; estimate the duration from ``size`` when that fails.

    Blocking: call it in a worker thread.
    """
    try:
        import av

        with av.open(str(path)) as container:
            duration = (container.duration or 0) / 1_000_000
            subs = [s for s in container.streams if s.type == "subtitle"]
            if not duration:
                duration = max((float(s.duration * s.time_base) for s in container.streams if s.duration), default=0.0)
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
            if cues:
                duration = max(duration, cues[-1].end)
            return MediaInfo(duration=duration, cues=cues, parsed=True, has_captions=bool(subs))
    except Exception as exc:  # PyAV raises many error types for garbage input
        log.info("PyAV could not read %s (%s); estimating duration from its size", path, exc)
        return MediaInfo(duration=estimate_duration(size), parsed=False)


def estimate_duration(size: int) -> float:
    return min(MAX_MEDIA_SECONDS, max(1.0, size / NOMINAL_BYTES_PER_SECOND))


_SYNTHETIC_LINES = (
    "Thanks everyone for joining the project review today.",
    "Can you share the latest numbers on the rollout?",
    "I will send the updated report by Friday.",
    "The customer feedback on the pricing page was positive.",
    "We need to schedule a call with the design team.",
    "What is blocking the migration right now?",
    "Let's review the budget plan next week.",
    "The integration tests are passing on the staging cluster.",
    "Please follow up with the vendor about the contract.",
    "We agreed to ship the pricing page update first.",
    "Does the new dashboard cover the rollout metrics?",
    "I'll meet the support team tomorrow to go over the backlog.",
)


def synthetic_cues(duration: float, seed: str, speakers: list[str]) -> list[Cue]:
    """A deterministic transcript for media without captions: one line per 5 s, speakers alternating."""
    lines = max(1, math.ceil(duration / SECONDS_PER_SYNTHETIC_LINE - 1e-9))
    start_at = int(hashlib.sha256(seed.encode()).hexdigest()[:8], 16) % len(_SYNTHETIC_LINES)
    step = duration / lines
    names = speakers or ["Speaker 1", "Speaker 2"]
    return [
        Cue(
            start=i * step,
            end=(i + 1) * step,
            speaker=names[i % len(names)],
            text=_SYNTHETIC_LINES[(start_at + i) % len(_SYNTHETIC_LINES)],
        )
        for i in range(lines)
    ]
