"""The compose seed-samples service, run as compose runs it, against a real local S3 (no Docker needed)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlparse

import pytest
import yaml

from scripts.demo import CONVERSATIONS
from scripts.seed_samples import MARKER_KEY

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def _compose_argv(bucket: str, endpoint: str) -> list[str]:
    """seed-samples' entrypoint + command from docker-compose.yaml, with ${VAR:-default} and MinIO swapped."""
    service = yaml.safe_load((ROOT / "docker-compose.yaml").read_text())["services"]["seed-samples"]
    argv = [*service["entrypoint"], *service["command"]]
    argv = [re.sub(r"\$\{S3_BUCKET:-[^}]*\}", bucket, a).replace("http://minio:9000", endpoint) for a in argv]
    assert argv[:3] == ["python", "-m", "scripts.seed_samples"]
    return [sys.executable, *argv[1:]]


def _run(argv: list[str], s3) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "AWS_ACCESS_KEY_ID": "testing",  # what compose passes as MINIO_ROOT_USER / _PASSWORD
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "plugins")]),
    }
    return subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def test_first_up_seeds_the_demo_conversations_once(s3):
    from symbl_airflow.sources import inspect_source

    bucket = "seeded-from-dotenv"  # S3_BUCKET: the seeder creates it when minio-init has not
    argv = _compose_argv(bucket, s3.endpoint_url)
    first = _run(argv, s3)
    assert first.returncode == 0, first.stderr[-3000:]

    client = s3.client()
    objects = {o["Key"]: o["ETag"] for o in client.list_objects_v2(Bucket=bucket)["Contents"]}
    expected = {
        f"videos/{conversation}/part-{i:03d}.mp4"
        for conversation, parts in CONVERSATIONS.items()
        for i in range(1, len(parts) + 1)
    }
    assert set(objects) == expected | {MARKER_KEY}
    # Real, finished MP4s with video: what the pipeline's pre-checks accept.
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    os.environ["AIRFLOW_CONN_AWS_DEFAULT"] = s3.conn_json()
    source = inspect_source(S3Hook(aws_conn_id="aws_default"), f"s3://{bucket}/{sorted(expected)[0]}")
    assert source.media.has_video and source.media.tracks.count("text") == 1
    assert source.duration_seconds == pytest.approx(2.0 * len(CONVERSATIONS["customer-call-acme"][0]), abs=0.2)

    # The next `docker compose up` runs it again: nothing is re-uploaded (same ETags), even after a delete.
    client.delete_object(Bucket=bucket, Key=sorted(expected)[0])
    second = _run(argv, s3)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "nothing to do" in second.stdout
    after = {o["Key"]: o["ETag"] for o in client.list_objects_v2(Bucket=bucket)["Contents"]}
    assert after == {k: v for k, v in objects.items() if k != sorted(expected)[0]}
    assert urlparse(s3.endpoint_url).hostname in ("127.0.0.1", "localhost")
