"""S3 video sources: checked before anything is sent, then streamed (or presigned) to Symbl.

Every check here runs for every source of a task before the first byte reaches Symbl, so one bad
input fails the task with nothing appended.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, BinaryIO

if TYPE_CHECKING:
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

log = logging.getLogger(__name__)

#: Bytes fetched to recognise an MP4 (the first box header is 8 bytes; ``ftyp`` must be its type).
SNIFF_BYTES = 64


class VideoSourceError(ValueError):
    """A source that cannot be sent; the message names the source and the fix."""


@dataclass(frozen=True)
class S3VideoSource:
    """One checked S3 object: what we validated is what we send (the ETag pins the version)."""

    uri: str
    bucket: str
    key: str
    size: int
    etag: str

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
    return S3VideoSource(uri=uri, bucket=bucket, key=key, size=size, etag=etag)


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
