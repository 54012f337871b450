"""Media over real S3 (moto server on loopback): a few ranged GETs per object, conversion from the S3 body."""

from __future__ import annotations

import pytest

from symbl_airflow.media.convert import PreparedMedia, probe_convert
from symbl_airflow.media.errors import MediaError
from symbl_airflow.media.formats import AUDIO, CONVERT, VIDEO, inspect
from symbl_airflow.media.reader import s3_reader

pytestmark = pytest.mark.integration


def put(s3, bucket: str, key: str, data: bytes) -> tuple:
    client = s3.client()
    client.put_object(Bucket=bucket, Key=key, Body=data)
    head = client.head_object(Bucket=bucket, Key=key)
    etag = head["ETag"].strip('"')
    return client, etag, head["ContentLength"]


@pytest.mark.parametrize(
    "name, route", [("mp4_av", VIDEO), ("wav", AUDIO), ("flac", AUDIO), ("opus", AUDIO), ("mkv", CONVERT)]
)
def test_sniffing_over_s3_costs_a_few_ranged_gets(s3, bucket, media_files, name, route):
    path = media_files(name)
    padding = bytes(8 << 20) if name == "wav" else b""  # a large object: still a few small reads
    data = path.read_bytes() + padding
    key = f"meeting/{path.name}"
    client, etag, size = put(s3, bucket, key, data)
    reader = s3_reader(client, bucket, key, etag, size, f"s3://{bucket}/{key}")
    facts = inspect(reader, key, f"s3://{bucket}/{key}")
    assert facts.route == route
    assert len(reader.requests) <= 3 and sum(n for _, n in reader.requests) <= 128 << 10


def test_conversion_streams_from_the_s3_body(s3, bucket, media_files, tmp_path):
    path = media_files("webm")
    key = "meeting/part-2.webm"
    uri = f"s3://{bucket}/{key}"
    client, etag, size = put(s3, bucket, key, path.read_bytes())
    reader = s3_reader(client, bucket, key, etag, size, uri)
    facts, plan = probe_convert(reader, inspect(reader, key, uri), uri)
    assert plan.endpoint == AUDIO and facts.seconds == pytest.approx(6.0, abs=0.05)

    def open_body():
        return client.get_object(Bucket=bucket, Key=key, IfMatch=etag)["Body"]

    with PreparedMedia(open_body, size, uri, facts, tmp_dir=tmp_path) as prepared:
        pieces = [(p.endpoint, p.size, p.path.read_bytes()[:4]) for p in prepared.pieces()]
    assert pieces == [(AUDIO, pieces[0][1], b"OggS")]
    assert not list(tmp_path.iterdir())


def test_an_object_replaced_after_the_check_is_refused(s3, bucket, media_files):
    key = "meeting/a.wav"
    client, etag, size = put(s3, bucket, key, media_files.bytes("wav"))
    client.put_object(Bucket=bucket, Key=key, Body=media_files.bytes("flac"))
    reader = s3_reader(client, bucket, key, etag, size, f"s3://{bucket}/{key}")
    with pytest.raises(MediaError, match="changed while the task ran"):
        inspect(reader, key, f"s3://{bucket}/{key}")
