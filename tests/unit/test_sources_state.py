"""Unit tests for the S3 source checks and progress logging (the ledger format: test_plan.py)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from symbl_airflow.sources import ProgressLogger, VideoSourceError, is_mp4_header, parse_s3_uri

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("uri", "expected"),
    [("s3://b/k.mp4", ("b", "k.mp4")), (" s3://b/a/b/c.mp4 ", ("b", "a/b/c.mp4"))],
)
def test_parse_s3_uri(uri, expected):
    assert parse_s3_uri(uri) == expected


@pytest.mark.parametrize("uri", ["", None, 3, "b/k.mp4", "s3://", "s3://b", "s3://b/", "s3://b/dir/", "s3:///k"])
def test_parse_s3_uri_rejects(uri):
    with pytest.raises(VideoSourceError, match="source"):
        parse_s3_uri(uri)


def test_mp4_header_detection():
    assert is_mp4_header(b"\x00\x00\x00\x18ftypmp42" + b"\0" * 8)
    assert not is_mp4_header(b"\x1aE\xdf\xa3" + b"\0" * 20)  # Matroska/WebM
    assert not is_mp4_header(b"ftyp")


class _Log:
    def __init__(self):
        self.lines = []

    def info(self, msg, *args):
        self.lines.append(msg % args)


def test_progress_logs_each_tenth_and_the_end():
    log, now = _Log(), [0.0]
    progress = ProgressLogger(log, "s3://b/k.mp4", 100 << 20, every_seconds=1000, clock=lambda: now[0])
    for sent in range(1 << 20, (100 << 20) + 1, 1 << 20):
        now[0] += 0.01
        progress(sent)
    assert len(log.lines) == 10
    assert log.lines[-1].startswith("Uploading s3://b/k.mp4: 100.0 of 100.0 MiB (100%)")


def test_progress_logs_on_time_when_slow():
    log, now = _Log(), [0.0]
    progress = ProgressLogger(log, "x", 1000, every_seconds=5, clock=lambda: now[0])
    for sent in range(1, 50):  # < 5%: no decile crossed
        now[0] += 1
        progress(sent)
    assert len(log.lines) == 9  # one line per 5 s


def test_importing_the_package_is_cheap():
    """The triggerer and DAG parsing import symbl_airflow: no requests, boto3 or aiohttp at import."""
    code = (
        "import sys, symbl_airflow; "
        "heavy = [m for m in ('requests', 'boto3', 'botocore', 'aiohttp', 'av') if m in sys.modules]; "
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""
