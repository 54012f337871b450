"""MP4 video: the first member of the media registry, and the fast path (the stored bytes are sent as is).

The MP4 is recognised by its first box (``ftyp``) and checked by walking the top-level box headers
with a few ranged reads (never the media): a truncated or unfinished file, one without a video
track, and its duration (``mvhd``: when its Symbl job can be expected done) are known before
anything is sent.
"""

from __future__ import annotations

import contextlib
import logging
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import BinaryIO

from symbl_airflow.media import mp4compat
from symbl_airflow.media.base import (
    Inspection,
    MediaSourceError,
    Payload,
    RangeReader,
    Segment,
    member,
    register,
    stored,
)

log = logging.getLogger(__name__)

CONTENT_TYPE = "video/mp4"

#: Bytes fetched per top-level box header (8, or 16 with a 64-bit size).
BOX_HEADER_BYTES = 16
#: Read-ahead inside ``moov``: its small boxes (mvhd, tkhd, mdhd, hdlr) sit close together.
MOOV_WINDOW_BYTES = 4096
#: Top-level boxes walked at most (a fragmented MP4 has one moof/mdat pair per fragment; the facts
#: needed are in the first few).
MAX_TOP_LEVEL_BOXES = 64
#: Box types that may appear at the top level of an ISO-BMFF/MP4 file (ISO/IEC 14496-12 and common extensions).
TOP_LEVEL_BOXES = frozenset(
    {"ftyp", "styp", "moov", "mdat", "free", "skip", "wide", "udta", "uuid", "meta", "moof", "mfra", "pdin",
     "sidx", "ssix", "emsg", "prft", "meco", "pnot", "junk", "beam", "Xtra"}
)  # fmt: skip
#: ``mvhd`` times count seconds from 1904-01-01 UTC (ISO/IEC 14496-12).
MP4_EPOCH = datetime(1904, 1, 1, tzinfo=UTC)
#: A creation time before this is a recorder that never set its clock (0 = unset is the common case).
EARLIEST_CREATION_TIME = datetime(1971, 1, 1, tzinfo=UTC)
#: ``hdlr`` handler types -> track kinds.
TRACK_KINDS = {"vide": "video", "soun": "audio", "sbtl": "text", "text": "text", "subt": "text", "clcp": "text"}


@dataclass(frozen=True)
class MediaInfo:
    """What the MP4's ``moov`` box says, read without downloading the media."""

    #: ``mvhd`` duration in seconds; None when the file does not state one.
    duration_seconds: float | None
    #: One kind per track, in file order: ``video``, ``audio``, ``text`` or the raw handler type.
    tracks: tuple[str, ...]
    #: ``mvhd`` creation time (UTC) when the recorder set one; None for 0, implausible or absent values.
    creation_time: datetime | None = None

    @property
    def has_video(self) -> bool:
        return "video" in self.tracks

    @property
    def has_audio(self) -> bool:
        return "audio" in self.tracks


def is_mp4_header(head: bytes) -> bool:
    """True when the first ISO-BMFF box is ``ftyp``: the check Symbl applies to video uploads."""
    return len(head) >= 8 and head[4:8] == b"ftyp"


def _box_header(reader: RangeReader, offset: int, end: int, ahead: int = 0) -> tuple[str, int, int] | None:
    """``(type, header size, box size)`` of the box at ``offset``; None when no valid header is there."""
    head = reader.read(offset, BOX_HEADER_BYTES, ahead)
    if len(head) < 8:
        return None
    size, raw_type = struct.unpack(">I4s", head[:8])
    box_type = raw_type.decode("latin-1")
    header = 8
    if size == 1:
        if len(head) < 16:
            return None
        size, header = struct.unpack(">Q", head[8:16])[0], 16
    elif size == 0:  # the box runs to the end of its parent
        size = end - offset
    if size < header:
        return None
    return box_type, header, size


def _children(reader: RangeReader, start: int, end: int):
    """Child boxes ``(type, body offset, box end)`` of a container box whose body is ``start``..``end``."""
    offset = start
    while offset + 8 <= end:
        parsed = _box_header(reader, offset, end, ahead=MOOV_WINDOW_BYTES)
        if parsed is None:
            return
        box_type, header, size = parsed
        yield box_type, offset + header, min(offset + size, end)
        offset += size


def _mvhd(reader: RangeReader, body: int) -> tuple[float | None, datetime | None]:
    """``(duration seconds, creation time)`` of an ``mvhd`` box; each None when the file does not state it."""
    data = reader.read(body, 32, ahead=MOOV_WINDOW_BYTES)
    if len(data) < 20:
        return None, None
    if data[0] == 1:
        if len(data) < 32:
            return None, None
        created = struct.unpack(">Q", data[4:12])[0]
        timescale, duration = struct.unpack(">IQ", data[20:32])
        unknown = duration == 0xFFFFFFFFFFFFFFFF
    else:
        created = struct.unpack(">I", data[4:8])[0]
        timescale, duration = struct.unpack(">II", data[12:20])
        unknown = duration == 0xFFFFFFFF
    return (None if not timescale or unknown else duration / timescale), _mp4_time(created)


def _mp4_time(seconds: int) -> datetime | None:
    """An ``mvhd`` timestamp as UTC; None when unset or implausible (before 1971 or more than a day ahead)."""
    try:
        when = MP4_EPOCH + timedelta(seconds=seconds)
    except OverflowError:
        return None
    if when < EARLIEST_CREATION_TIME or when > datetime.now(UTC) + timedelta(days=1):
        return None
    return when


def _track_kind(reader: RangeReader, trak_body: int, trak_end: int) -> str | None:
    for box_type, body, end in _children(reader, trak_body, trak_end):
        if box_type != "mdia":
            continue
        for child, child_body, _ in _children(reader, body, end):
            if child == "hdlr":
                handler = reader.read(child_body + 8, 4, ahead=MOOV_WINDOW_BYTES).decode("latin-1")
                return TRACK_KINDS.get(handler, handler.strip() or None)
    return None


def probe_mp4(reader: RangeReader, uri: str) -> MediaInfo:
    """Walk the top-level boxes by their headers (a few bytes each) and read duration, creation time and
    tracks from ``moov``.

    Raises MediaSourceError when the file ends inside a box or has no ``moov`` box: both mean a
    truncated upload or a recording that was never finalized, which Symbl would accept and then fail.
    """
    size = reader.size
    offset = 0
    seen: list[str] = []
    media: MediaInfo | None = None
    truncated = (
        f"source {uri!r} is truncated or not a finished MP4 ({{reason}}); re-upload the complete file. A recorder "
        "that stopped before finishing writes no 'moov' box: remux what is there, e.g. "
        "'ffmpeg -i input.mp4 -c copy -movflags +faststart output.mp4', if the file can still be read"
    )
    while offset < size and len(seen) < MAX_TOP_LEVEL_BOXES:
        parsed = _box_header(reader, offset, size)
        known = parsed is not None and parsed[0] in TOP_LEVEL_BOXES
        if not known:
            if media is not None and "mdat" in seen:
                log.debug("%s: %d trailing bytes after the last MP4 box ignored", uri, size - offset)
                break
            raise MediaSourceError(truncated.format(reason=f"no valid MP4 box at byte {offset}"))
        box_type, header, box_size = parsed
        if offset + box_size > size:
            raise MediaSourceError(
                truncated.format(
                    reason=f"its '{box_type}' box at byte {offset} needs {box_size} bytes, the object ends after "
                    f"{size - offset}"
                )
            )
        seen.append(box_type)
        if box_type == "moov" and media is None:
            duration = created = None
            tracks: list[str] = []
            for child, body, end in _children(reader, offset + header, offset + box_size):
                if child == "mvhd":
                    duration, created = _mvhd(reader, body)
                elif child == "trak":
                    kind = _track_kind(reader, body, end)
                    if kind:
                        tracks.append(kind)
            media = MediaInfo(duration_seconds=duration, tracks=tuple(tracks), creation_time=created)
        offset += box_size
    if media is None:
        found = ", ".join(dict.fromkeys(seen)) or "none"
        raise MediaSourceError(truncated.format(reason=f"no 'moov' box; top-level boxes: {found}"))
    return media


def _sample_entry(reader: RangeReader, minf_body: int, minf_end: int) -> str | None:
    for box, body, end in _children(reader, minf_body, minf_end):
        if box != "stbl":
            continue
        for child, child_body, _ in _children(reader, body, end):
            if child == "stsd":
                entry = reader.read(child_body + 8, 8, ahead=MOOV_WINDOW_BYTES)
                return entry[4:8].decode("latin-1") if len(entry) == 8 else None
    return None


def tracks(reader: RangeReader) -> tuple[mp4compat.Track, ...]:
    """Kind and codec of every track; reads the same headers as the MP4 probe (cached, no new request)."""
    found: list[mp4compat.Track] = []
    offset = 0
    for _ in range(64):
        parsed = _box_header(reader, offset, reader.size)
        if parsed is None:
            break
        box, header, size = parsed
        if box == "moov":
            for child, body, end in _children(reader, offset + header, offset + size):
                if child != "trak":
                    continue
                kind, codec = None, None
                for sub, sub_body, sub_end in _children(reader, body, end):
                    if sub != "mdia":
                        continue
                    for part, part_body, part_end in _children(reader, sub_body, sub_end):
                        if part == "hdlr":
                            handler = reader.read(part_body + 8, 4, ahead=MOOV_WINDOW_BYTES).decode("latin-1")
                            kind = TRACK_KINDS.get(handler, handler.strip() or None)
                        elif part == "minf":
                            codec = _sample_entry(reader, part_body, part_end)
                if kind:
                    found.append(mp4compat.Track(kind, codec))
            break
        offset += size
    return tuple(found)


class Mp4Video:
    """``MediaSource`` for MP4 video: to Symbl's video API, bytes as stored."""

    name = "mp4"
    extensions = (".mp4", ".m4v", ".mov")

    def sniff(self, head: bytes) -> bool:
        return is_mp4_header(head)

    def inspect(self, reader: RangeReader, uri: str) -> Inspection:
        """The fast path: a video whose codecs MP4 carries goes as stored. Anything else in an ISO-BMFF
        box (audio-only M4A, QuickTime-only codecs, no audio/video track) is decided by the one rule of
        :mod:`symbl_airflow.media.formats` and may be handed to another member (``Inspection.member``)."""
        from symbl_airflow.media.errors import UndecodableMediaError
        from symbl_airflow.media.reader import cached

        reader = cached(reader)  # the second walk (codecs) reads what the first one fetched
        try:
            media = probe_mp4(reader, uri)
        except MediaSourceError as exc:
            raise UndecodableMediaError(uri, str(exc).removeprefix(f"source {uri!r} ")) from None
        if media.has_video and not mp4compat.incompatible(tracks(reader)):
            return Inspection(
                kind="video",
                endpoint="video",
                content_type=CONTENT_TYPE,
                media_seconds=media.duration_seconds,
                tracks=media.tracks,
                creation_time=media.creation_time,
                member=self.name,
            )
        # Audio-only, QuickTime-only codecs, no audio/video track: the one rule of media.formats decides
        # (through the registry: the ``convert`` member inspects any recording).
        return member("convert").inspect(reader, uri)

    @contextlib.contextmanager
    def payload(
        self,
        open_object: Callable[[], BinaryIO],
        size: int,
        inspection: Inspection,
        segment: Segment | None = None,
        uri: str = "",
    ) -> Iterator[Payload]:
        if segment is not None:  # a recording longer than Symbl takes: cut through a work directory
            with member("convert").payload(open_object, size, inspection, segment, uri=uri) as body:
                yield body
            return
        with stored(open_object, size, inspection.content_type or CONTENT_TYPE) as body:
            yield body


MP4 = register(Mp4Video())
