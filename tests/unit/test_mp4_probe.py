"""The MP4 box walk of the source pre-checks, on hand-built box layouts (no servers)."""

from __future__ import annotations

import struct

import pytest

from symbl_airflow.sources import MOOV_WINDOW_BYTES, MediaInfo, VideoSourceError, _RangeReader, probe_mp4

pytestmark = pytest.mark.unit


def box(kind: str, body: bytes = b"", *, large: bool = False) -> bytes:
    if large:
        return struct.pack(">I4sQ", 1, kind.encode(), 16 + len(body)) + body
    return struct.pack(">I4s", 8 + len(body), kind.encode()) + body


def mvhd(timescale: int, duration: int, version: int = 0, created: int = 0) -> bytes:
    if version == 1:
        body = bytes([1, 0, 0, 0]) + struct.pack(">QQIQ", created, created, timescale, duration)
    else:
        body = bytes(4) + struct.pack(">IIII", created, created, timescale, duration)
    return box("mvhd", body + bytes(80))


def trak(handler: str) -> bytes:
    hdlr = box("hdlr", bytes(4) + bytes(4) + handler.encode() + bytes(12) + b"handler\0")
    mdia = box("mdia", box("mdhd", bytes(24)) + hdlr + box("minf", box("stbl", bytes(200))))
    return box("trak", box("tkhd", bytes(84)) + mdia)


FTYP = box("ftyp", b"isom" + bytes(4) + b"isomiso2avc1mp41")


def moov(*handlers: str, timescale: int = 1000, duration: int = 12_500, version: int = 0, created: int = 0) -> bytes:
    return box("moov", mvhd(timescale, duration, version, created) + b"".join(trak(h) for h in handlers))


class Client:
    """A fake S3 client serving one object by ranges, recording every request."""

    def __init__(self, data: bytes):
        self.data = data
        self.ranges: list[tuple[int, int]] = []

    def get_object(self, *, Bucket, Key, Range, IfMatch):  # boto3 names
        start, end = map(int, Range.removeprefix("bytes=").split("-"))
        self.ranges.append((start, end))

        class Body:
            @staticmethod
            def read(data=self.data[start : end + 1]):
                return data

        return {"Body": Body}


def probe(data: bytes) -> tuple[MediaInfo, Client]:
    client = Client(data)
    reader = _RangeReader(client, "b", "k.mp4", "etag", len(data), "s3://b/k.mp4")
    return probe_mp4(reader, "s3://b/k.mp4"), client


def test_moov_at_the_end_after_a_large_mdat_costs_a_few_small_reads():
    mdat = box("mdat", bytes(5_000_000))
    media, client = probe(FTYP + box("free") + mdat + moov("vide", "soun", "sbtl"))
    assert media == MediaInfo(duration_seconds=12.5, tracks=("video", "audio", "text"))
    assert media.has_video and media.has_audio
    # Header reads of 16 bytes on the top level, one read-ahead window inside moov: never the media.
    assert sum(end - start + 1 for start, end in client.ranges) <= 4 * 16 + MOOV_WINDOW_BYTES
    assert len(client.ranges) <= 6


def test_faststart_layout_and_64_bit_sizes():
    media, _ = probe(
        FTYP
        + moov("soun", "vide", duration=90_000 * 60, timescale=90_000, version=1)
        + box("mdat", bytes(1000), large=True)
    )
    assert media.duration_seconds == 60.0
    assert media.tracks == ("audio", "video")


def test_unknown_duration_is_none():
    media, _ = probe(FTYP + moov("vide", duration=0xFFFFFFFF) + box("mdat", bytes(10)))
    assert media.duration_seconds is None


@pytest.mark.parametrize(
    "data, reason",
    [
        (FTYP, "no 'moov' box; top-level boxes: ftyp"),  # an ftyp box and nothing else
        (FTYP + box("mdat", bytes(100)), "no 'moov' box; top-level boxes: ftyp, mdat"),
        # cut in the middle of mdat (moov never written or cut off)
        ((FTYP + box("mdat", bytes(1000)) + moov("vide"))[:600], "'mdat' box at byte 32 needs 1008 bytes"),
        # moov first, media cut short (a faststart upload that did not finish)
        ((FTYP + moov("vide") + box("mdat", bytes(1000)))[:-10], "'mdat' box"),
        (FTYP + b"\xff" * 40, "no valid MP4 box at byte 32"),
    ],
    ids=["ftyp_only", "no_moov", "cut_in_mdat", "cut_after_moov", "garbage"],
)
def test_truncated_or_unfinished(data, reason):
    with pytest.raises(VideoSourceError, match="truncated or not a finished MP4") as err:
        probe(data)
    assert reason in str(err.value)
    assert "s3://b/k.mp4" in str(err.value)


def test_trailing_bytes_after_a_complete_file_are_ignored():
    complete = FTYP + box("mdat", bytes(100)) + moov("vide", "soun")
    for tail in (bytes(3 << 10), b"symbl-airflow benchmark padding " * 64):
        media, _ = probe(complete + tail)
        assert media.tracks == ("video", "audio")


def test_fragmented_mp4_stops_after_a_bounded_walk():
    from symbl_airflow.sources import MAX_TOP_LEVEL_BOXES

    fragments = b"".join(box("moof", bytes(40)) + box("mdat", bytes(500)) for _ in range(500))
    media, client = probe(FTYP + moov("vide", "soun") + fragments)
    assert media.tracks == ("video", "audio")
    assert len(client.ranges) <= MAX_TOP_LEVEL_BOXES + 2


#: 2026-12-01T09:30:00Z in mvhd time (seconds since 1904-01-01 UTC).
CREATED = 3_878_962_200


@pytest.mark.parametrize("version", [0, 1])
def test_creation_time_from_mvhd(version):
    from datetime import UTC, datetime

    media, _ = probe(FTYP + moov("vide", version=version, created=CREATED) + box("mdat", bytes(10)))
    assert media.creation_time == datetime(2026, 12, 1, 9, 30, tzinfo=UTC)
    assert media.duration_seconds == 12.5


@pytest.mark.parametrize("created", [0, 2_114_380_800 - 86_400, 2**32 - 1], ids=["unset", "before_1971", "future"])
def test_unset_or_implausible_creation_time_is_none(created):
    media, _ = probe(FTYP + moov("vide", created=created) + box("mdat", bytes(10)))
    assert media.creation_time is None


def test_creation_time_of_a_file_written_by_ffmpeg(tmp_path):
    """The real muxer's field, not only our hand-built boxes: ``-metadata creation_time`` lands in ``mvhd``."""
    import subprocess
    from datetime import UTC, datetime

    import imageio_ffmpeg

    out = tmp_path / "dated.mp4"
    subprocess.run(
        [imageio_ffmpeg.get_ffmpeg_exe(), "-nostdin", "-v", "error", "-f", "lavfi", "-i", "color=c=black:s=64x64:d=1",
         "-c:v", "libx264", "-metadata", "creation_time=2026-12-01T09:30:00Z", str(out)],
        check=True, timeout=60,
    )  # fmt: skip
    media, _ = probe(out.read_bytes())
    assert media.creation_time == datetime(2026, 12, 1, 9, 30, tzinfo=UTC)
