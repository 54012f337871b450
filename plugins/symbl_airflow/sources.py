"""S3 sources: checked before anything is sent, then streamed (or presigned) to Symbl.

Every check here runs for every source of a task before the first byte reaches Symbl, so one bad
input fails the task with nothing appended. What the bytes are is the media registry's business
(:mod:`symbl_airflow.media`): this module HEADs the object, hands its first bytes to the registry and
the member's ranged reads to S3 (:class:`S3RangeReader`), and opens or presigns the checked version.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, BinaryIO

from symbl_airflow.media import SNIFF_BYTES, Inspection, MediaSourceError, detect, formats, load_members
from symbl_airflow.media.errors import NotMediaError, UndecodableMediaError
from symbl_airflow.media.mp4 import (  # noqa: F401 - the MP4 walk's names, importable here since 0.1
    BOX_HEADER_BYTES,
    EARLIEST_CREATION_TIME,
    MAX_TOP_LEVEL_BOXES,
    MOOV_WINDOW_BYTES,
    MP4_EPOCH,
    TOP_LEVEL_BOXES,
    TRACK_KINDS,
    MediaInfo,
    is_mp4_header,
    probe_mp4,
)
from symbl_airflow.media.reader import s3_reader
from symbl_airflow.s3 import split_s3_uri

if TYPE_CHECKING:
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

log = logging.getLogger(__name__)

#: A source that cannot be sent (the media registry's error; the 0.1 name).
VideoSourceError = MediaSourceError


@dataclass(frozen=True)
class S3VideoSource:
    """One checked S3 object: what we validated is what we send (the ETag pins the version)."""

    uri: str
    bucket: str
    key: str
    size: int
    etag: str
    #: Duration and tracks from the MP4 header (None for sources built from stored state or not MP4).
    media: MediaInfo | None = None
    #: What the media registry's member found (None for sources built from stored state).
    inspection: Inspection | None = None

    @property
    def duration_seconds(self) -> float | None:
        if self.inspection is not None:
            return self.inspection.media_seconds
        return self.media.duration_seconds if self.media else None

    def to_dict(self) -> dict:
        return {"uri": self.uri, "size": self.size, "etag": self.etag}


#: The same record under a media-neutral name.
S3MediaSource = S3VideoSource


def parse_s3_uri(uri: object) -> tuple[str, str]:
    """``(bucket, key)`` of a source URI; ``VideoSourceError`` naming it and the expected shape."""
    try:
        return split_s3_uri(uri, what="source", example="s3://bucket/path/video.mp4")
    except ValueError as exc:
        raise VideoSourceError(str(exc)) from None


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
        if formats.extension(key) not in formats.MEDIA_EXTENSIONS:
            raise NotMediaError(uri, "not audio or video (empty object)")
        exc = UndecodableMediaError(uri, "the object is empty (0 bytes); re-upload the recording")
        exc.etag, exc.size = etag, size
        raise exc
    try:
        first = client.get_object(Bucket=bucket, Key=key, Range=f"bytes=0-{SNIFF_BYTES - 1}", IfMatch=etag)
        sniff = first["Body"].read()
    except ClientError as exc:
        raise VideoSourceError(f"source {uri!r}: cannot read its first bytes ({_client_error_code(exc)})") from exc
    load_members()
    member = detect(sniff, key)
    reader = s3_reader(client, bucket, key, etag, size, uri)
    reader.seed(0, sniff)
    if member is None:
        # No member's signature in the first bytes: the one rule decides (not media, or a container
        # recognised further in / by its extension, or media that cannot be decoded).
        from symbl_airflow.media.container import inspection_of

        try:
            facts = formats.inspect(reader, key, uri)
        except UndecodableMediaError as exc:
            exc.etag, exc.size = etag, size
            raise
        if not facts.is_media:
            raise NotMediaError(uri, facts.reason)
        inspection = inspection_of(facts, reader, uri)
    else:
        try:
            inspection = member.inspect(reader, uri)
        except UndecodableMediaError as exc:
            exc.etag, exc.size = etag, size  # the engine records it as a part that stops the conversation
            raise
    media = MediaInfo(inspection.media_seconds, inspection.tracks, inspection.creation_time)
    return S3VideoSource(uri=uri, bucket=bucket, key=key, size=size, etag=etag, media=media, inspection=inspection)


class S3RangeReader:
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


#: The 0.1 name.
_RangeReader = S3RangeReader


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
