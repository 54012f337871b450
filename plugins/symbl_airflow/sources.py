"""S3 video sources: checked before anything is sent, then streamed (or presigned) to Symbl.

Every check here runs for every source of a task before the first byte reaches Symbl, so one bad
input fails the task with nothing appended.
"""

from __future__ import annotations

import logging
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, BinaryIO

if TYPE_CHECKING:
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

log = logging.getLogger(__name__)

#: Bytes fetched to recognise an MP4 (the first box header is 8 bytes; ``ftyp`` must be its type).
SNIFF_BYTES = 64
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


class VideoSourceError(ValueError):
    """A source that cannot be sent; the message names the source and the fix."""


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


@dataclass(frozen=True)
class S3VideoSource:
    """One checked S3 object: what we validated is what we send (the ETag pins the version)."""

    uri: str
    bucket: str
    key: str
    size: int
    etag: str
    #: Duration and tracks from the MP4 header (None for sources built from stored state).
    media: MediaInfo | None = None

    @property
    def duration_seconds(self) -> float | None:
        return self.media.duration_seconds if self.media else None

    def to_dict(self) -> dict:
        return {"uri": self.uri, "size": self.size, "etag": self.etag}


def parse_s3_uri(uri: object) -> tuple[str, str]:
    if not isinstance(uri, str) or not uri.strip():
        raise VideoSourceError(
            f"source {uri!r} is not an S3 URI; pass a string like 's3://bucket/path/video.mp4' (or a list of them)"
        )
    uri = uri.strip()
    if not uri.startswith("s3://"):
        raise VideoSourceError(f"source {uri!r} must start with 's3://', e.g. 's3://bucket/path/video.mp4'")
    bucket, _, key = uri[5:].partition("/")
    if not bucket or not key or key.endswith("/"):
        raise VideoSourceError(
            f"source {uri!r} must name a bucket and an object key, e.g. 's3://bucket/path/video.mp4' "
            "(a prefix or a bare bucket is not a video)"
        )
    return bucket, key


def is_mp4_header(head: bytes) -> bool:
    """True when the first ISO-BMFF box is ``ftyp``: the check Symbl applies to video uploads."""
    return len(head) >= 8 and head[4:8] == b"ftyp"


def _client_error_code(exc: Exception) -> str:
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


def inspect_source(s3_hook: S3Hook, uri: str) -> S3VideoSource:
    """HEAD the object and sniff its first bytes; raise VideoSourceError naming the source and the fix."""
    from botocore.exceptions import BotoCoreError, ClientError

    bucket, key = parse_s3_uri(uri)
    client = s3_hook.get_conn()
    try:
        head = client.head_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        code = _client_error_code(exc)
        if code in ("404", "NoSuchKey", "NotFound"):
            if not s3_hook.check_for_bucket(bucket):
                raise VideoSourceError(
                    f"source {uri!r}: bucket {bucket!r} does not exist (or is not visible to the "
                    f"connection {s3_hook.aws_conn_id!r}); check the bucket name and the connection's endpoint"
                ) from None
            raise VideoSourceError(
                f"source {uri!r}: no such object in bucket {bucket!r}; check the key (keys are case-sensitive) "
                "or upload the video first"
            ) from None
        if code in ("403", "AccessDenied", "Forbidden"):
            raise VideoSourceError(
                f"source {uri!r}: access denied for connection {s3_hook.aws_conn_id!r}; grant s3:GetObject "
                f"(and s3:ListBucket) on {bucket}/{key}"
            ) from None
        raise VideoSourceError(f"source {uri!r}: S3 HEAD failed ({code or exc})") from exc
    except BotoCoreError as exc:
        raise VideoSourceError(f"source {uri!r}: cannot reach S3 ({exc}); check connection endpoint") from exc

    size = int(head.get("ContentLength") or 0)
    etag = str(head.get("ETag") or "").strip('"')
    if size == 0:
        raise VideoSourceError(f"source {uri!r} is empty (0 bytes); re-upload the video")
    try:
        first = client.get_object(Bucket=bucket, Key=key, Range=f"bytes=0-{SNIFF_BYTES - 1}", IfMatch=etag)
        sniff = first["Body"].read()
    except ClientError as exc:
        raise VideoSourceError(f"source {uri!r}: cannot read its first bytes ({_client_error_code(exc)})") from exc
    if not is_mp4_header(sniff):
        raise VideoSourceError(
            f"source {uri!r} is not an MP4 file (no 'ftyp' box at the start); Symbl's video API accepts "
            "MP4 only: convert it, e.g. 'ffmpeg -i input -c:v libx264 -c:a aac output.mp4'"
        )
    reader = _RangeReader(client, bucket, key, etag, size, uri)
    reader.seed(0, sniff)
    media = probe_mp4(reader, uri)
    if not media.has_video:
        kinds = ", ".join(media.tracks) or "none"
        raise VideoSourceError(
            f"source {uri!r} has no video track (tracks: {kinds}); Symbl's video API needs one. Send "
            "audio-only recordings to Symbl's audio API (POST /v1/process/audio), or add a video track"
        )
    return S3VideoSource(uri=uri, bucket=bucket, key=key, size=size, etag=etag, media=media)


class _RangeReader:
    """Ranged GETs of one object version, keeping the last window so adjacent small reads cost one request."""

    def __init__(self, client, bucket: str, key: str, etag: str, size: int, uri: str):
        self.client, self.bucket, self.key, self.etag, self.size, self.uri = client, bucket, key, etag, size, uri
        self._start = 0
        self._data = b""

    def seed(self, start: int, data: bytes) -> None:
        self._start, self._data = start, data

    def read(self, offset: int, length: int, ahead: int = 0) -> bytes:
        """Up to ``length`` bytes at ``offset`` (fewer at the end of the object)."""
        length = min(length, self.size - offset)
        if length <= 0:
            return b""
        if self._start <= offset and offset + length <= self._start + len(self._data):
            return self._data[offset - self._start : offset - self._start + length]
        from botocore.exceptions import ClientError

        end = min(self.size, offset + max(length, ahead)) - 1
        try:
            obj = self.client.get_object(
                Bucket=self.bucket, Key=self.key, Range=f"bytes={offset}-{end}", IfMatch=self.etag
            )
            data = obj["Body"].read()
        except ClientError as exc:
            raise VideoSourceError(
                f"source {self.uri!r}: cannot read bytes {offset}-{end} ({_client_error_code(exc)})"
            ) from exc
        self.seed(offset, data)
        return data[:length]


def _box_header(reader: _RangeReader, offset: int, end: int, ahead: int = 0) -> tuple[str, int, int] | None:
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


def _children(reader: _RangeReader, start: int, end: int):
    """Child boxes ``(type, body offset, box end)`` of a container box whose body is ``start``..``end``."""
    offset = start
    while offset + 8 <= end:
        parsed = _box_header(reader, offset, end, ahead=MOOV_WINDOW_BYTES)
        if parsed is None:
            return
        box_type, header, size = parsed
        yield box_type, offset + header, min(offset + size, end)
        offset += size


def _mvhd(reader: _RangeReader, body: int) -> tuple[float | None, datetime | None]:
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


def _track_kind(reader: _RangeReader, trak_body: int, trak_end: int) -> str | None:
    for box_type, body, end in _children(reader, trak_body, trak_end):
        if box_type != "mdia":
            continue
        for child, child_body, _ in _children(reader, body, end):
            if child == "hdlr":
                handler = reader.read(child_body + 8, 4, ahead=MOOV_WINDOW_BYTES).decode("latin-1")
                return TRACK_KINDS.get(handler, handler.strip() or None)
    return None


def probe_mp4(reader: _RangeReader, uri: str) -> MediaInfo:
    """Walk the top-level boxes by their headers (a few bytes each) and read duration, creation time and
    tracks from ``moov``.

    Raises VideoSourceError when the file ends inside a box or has no ``moov`` box: both mean a
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
            raise VideoSourceError(truncated.format(reason=f"no valid MP4 box at byte {offset}"))
        box_type, header, box_size = parsed
        if offset + box_size > size:
            raise VideoSourceError(
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
        raise VideoSourceError(truncated.format(reason=f"no 'moov' box; top-level boxes: {found}"))
    return media


def body_opener(s3_hook: S3Hook, source: S3VideoSource) -> Callable[[], BinaryIO]:
    """Return a callable that opens a fresh streaming body of exactly the checked version.

    ``IfMatch`` makes S3 refuse the read if the object changed after it was checked, so the bytes
    sent are the bytes recorded (by ETag) in the task state.
    """

    def open_body() -> BinaryIO:
        from botocore.exceptions import ClientError

        try:
            obj = s3_hook.get_conn().get_object(Bucket=source.bucket, Key=source.key, IfMatch=source.etag)
        except ClientError as exc:
            if _client_error_code(exc) in ("412", "PreconditionFailed"):
                raise VideoSourceError(
                    f"source {source.uri!r} changed while the task ran (ETag is no longer {source.etag}); "
                    "rerun the task to send the new version"
                ) from None
            raise
        return obj["Body"]

    return open_body


def presigned_url(s3_hook: S3Hook, source: S3VideoSource, expires_in: int) -> str:
    """A GET URL Symbl can fetch; the bytes skip the worker. Never log it: it is a bearer credential."""
    return s3_hook.generate_presigned_url(
        client_method="get_object",
        params={"Bucket": source.bucket, "Key": source.key},
        expires_in=expires_in,
    )


class ProgressLogger:
    """Log upload progress every ~10% or every few seconds, whichever comes first."""

    def __init__(self, logger, label: str, total: int, *, every_seconds: float = 5.0, clock=time.monotonic):
        self.log = logger
        self.label = label
        self.total = max(total, 1)
        self.every_seconds = every_seconds
        self.clock = clock
        self.start = clock()
        self._last_time = self.start
        self._last_decile = 0

    def __call__(self, sent: int) -> None:
        now = self.clock()
        decile = min(10, sent * 10 // self.total)
        if decile > self._last_decile or now - self._last_time >= self.every_seconds or sent >= self.total:
            if sent >= self.total and self._last_decile >= 10:
                return
            self._last_decile = decile
            self._last_time = now
            elapsed = max(now - self.start, 1e-6)
            self.log.info(
                "Uploading %s: %.1f of %.1f MiB (%d%%) at %.1f MiB/s",
                self.label,
                sent / 1048576,
                self.total / 1048576,
                sent * 100 // self.total,
                sent / 1048576 / elapsed,
            )
