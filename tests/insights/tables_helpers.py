"""Helpers for the tables tests: dated MP4s, completed sandbox conversations, reading table objects."""

from __future__ import annotations

import gzip
import io
import json
import subprocess
import time
import uuid
from datetime import UTC, datetime

import requests

CUES = [
    ("Alice", "Welcome to the weekly sync about the product launch on December 5."),
    ("Bob", "Can we ship the release on Friday?"),
    ("Alice", "I will send the launch notes to the team tomorrow."),
    ("Bob", "We need to follow up with the customer next week."),
]
TRACKERS = [{"name": "Release", "vocabulary": ["release", "ship"]}]


def dated(data: bytes, when: datetime, workdir) -> bytes:
    """The same MP4 with ``creation_time`` set in its ``mvhd`` (stream copy: captions kept)."""
    import imageio_ffmpeg

    src, out = workdir / f"{uuid.uuid4().hex}.mp4", workdir / f"{uuid.uuid4().hex}.mp4"
    src.write_bytes(data)
    stamp = when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    subprocess.run(
        [imageio_ffmpeg.get_ffmpeg_exe(), "-nostdin", "-v", "error", "-i", str(src), "-map", "0", "-c", "copy",
         "-metadata", f"creation_time={stamp}", str(out)],
        check=True, timeout=60,
    )  # fmt: skip
    return out.read_bytes()


def process(api, data: bytes, **params) -> str:
    """POST one MP4 to the sandbox, wait for its job; the conversation id."""
    query = {"enableSummary": "true", "detectEntities": "true", "trackers": json.dumps(TRACKERS), **params}
    resp = requests.post(
        api.url + "/v1/process/video",
        params=query,
        data=data,
        headers={"Authorization": f"Bearer {api.token}", "Content-Type": "video/mp4"},
        timeout=30,
    )
    assert resp.status_code == 201, resp.text
    body = resp.json()
    deadline = time.monotonic() + 30
    while (status := api.get(f"/v1/job/{body['jobId']}").json()["status"]) not in ("completed", "failed"):
        assert time.monotonic() < deadline, "sandbox job did not finish"
        time.sleep(0.05)
    assert status == "completed"
    return body["conversationId"]


def read_rows(client, bucket: str, key: str) -> list[dict]:
    raw = client.get_object(Bucket=bucket, Key=key)["Body"].read()
    if key.endswith(".parquet"):
        import pyarrow.parquet as pq

        return pq.read_table(io.BytesIO(raw)).to_pylist()
    return [json.loads(line) for line in gzip.decompress(raw).decode("utf-8").splitlines()]


def keys(client, bucket: str, prefix: str) -> list[str]:
    resp = client.list_objects_v2(Bucket=bucket, Prefix=prefix)
    return sorted(o["Key"] for o in resp.get("Contents", []))
