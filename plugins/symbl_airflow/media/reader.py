"""Random access to an object's header bytes: S3 ranged GETs, a local file, or bytes in memory.

The sniffers read a few bytes here and there (a box header, a chunk header, the last Ogg page); every
window fetched is kept (up to a bound), so walking the same headers twice costs no second request.
"""

from __future__ import annotations

import os
from collections.abc import Callable

#: Bytes fetched per request at least: one request covers the headers of most audio files.
WINDOW_BYTES = 4096
#: Windows kept per object (1 MiB): enough for the moov box of a long recording, never the media.
MAX_CACHED_BYTES = 1 << 20


class RangeReader:
    """``read(offset, length, ahead)``: at most ``length`` bytes at ``offset`` (fewer at the end).

    ``fetch(offset, n)`` gets ``n`` bytes from the source; ``ahead`` asks it for a larger window,
    because the next read is likely close by.
    """

    def __init__(
        self,
        fetch: Callable[[int, int], bytes],
        size: int,
        *,
        window: int = WINDOW_BYTES,
        max_cached: int = MAX_CACHED_BYTES,
    ):
        self._fetch = fetch
        self.size = size
        self.window = window
        self.max_cached = max_cached
        self.requests: list[tuple[int, int]] = []
        self._windows: list[tuple[int, bytes]] = []
        self._held = 0

    def seed(self, offset: int, data: bytes) -> None:
        """Remember bytes already fetched elsewhere (e.g. the first bytes of a sniff)."""
        self._remember(offset, data)

    def _remember(self, offset: int, data: bytes) -> None:
        if not data:
            return
        if self._held + len(data) > self.max_cached:
            self._windows.clear()
            self._held = 0
        self._windows.append((offset, data))
        self._held += len(data)

    def read(self, offset: int, length: int, ahead: int = 0) -> bytes:
        length = min(length, self.size - offset)
        if length <= 0 or offset < 0:
            return b""
        for start, data in reversed(self._windows):
            if start <= offset and offset + length <= start + len(data):
                return data[offset - start : offset - start + length]
        n = min(self.size - offset, max(length, ahead, self.window))
        self.requests.append((offset, n))
        data = self._fetch(offset, n)
        self._remember(offset, data)
        return data[:length]


def cached(reader) -> RangeReader:
    """Any reader with ``size`` and ``read(offset, n)`` behind the window cache (itself if it is one)."""
    if isinstance(reader, RangeReader):
        return reader
    return RangeReader(lambda offset, n: reader.read(offset, n), reader.size)


def bytes_reader(data: bytes, *, size: int | None = None) -> RangeReader:
    """``data`` as an object (``size`` larger than ``data``: the rest reads as missing, like a cut file)."""
    return RangeReader(lambda offset, n: data[offset : offset + n], len(data) if size is None else size)


def file_reader(path: str | os.PathLike[str]) -> RangeReader:
    path = os.fspath(path)

    def fetch(offset: int, n: int) -> bytes:
        with open(path, "rb") as fh:
            fh.seek(offset)
            return fh.read(n)

    return RangeReader(fetch, os.path.getsize(path))


def s3_reader(client, bucket: str, key: str, etag: str, size: int, uri: str) -> RangeReader:
    """Ranged GETs of exactly the version checked (``IfMatch``), through a boto3 S3 client."""

    def fetch(offset: int, n: int) -> bytes:
        from botocore.exceptions import ClientError

        from symbl_airflow.media.errors import MediaError

        end = offset + n - 1
        try:
            obj = client.get_object(Bucket=bucket, Key=key, Range=f"bytes={offset}-{end}", IfMatch=etag)
            return obj["Body"].read()
        except ClientError as exc:
            code = str((getattr(exc, "response", None) or {}).get("Error", {}).get("Code", ""))
            if code in ("412", "PreconditionFailed"):
                raise MediaError(
                    f"source {uri!r} changed while the task ran (ETag is no longer {etag}); rerun the task"
                ) from None
            raise MediaError(f"source {uri!r}: cannot read bytes {offset}-{end} ({code or exc})") from exc

    return RangeReader(fetch, size)
