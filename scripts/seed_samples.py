"""Upload the demo's captioned sample conversations to S3, once: docker compose's ``seed-samples`` service.

The same conversations ``make demo`` uses (``scripts/demo.py``), laid out as the example DAG reads
them: ``s3://<bucket>/<prefix><conversation>/part-NNN.mp4``. A marker object at the bucket root makes
later runs (every ``docker compose up``) do nothing, so videos you delete or replace stay that way.

    python -m scripts.seed_samples --bucket symbl-demo [--endpoint-url http://minio:9000]

Credentials come from the usual AWS variables (``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

#: Written last: its presence means the samples were uploaded once (delete it to seed again).
MARKER_KEY = ".symbl-samples-seeded.json"


def _exists(client, bucket: str, key: str) -> bool:
    from botocore.exceptions import ClientError

    try:
        client.head_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
            return False
        raise
    return True


def _ensure_bucket(client, bucket: str) -> None:
    from botocore.exceptions import ClientError

    try:
        client.head_bucket(Bucket=bucket)
    except ClientError:
        client.create_bucket(Bucket=bucket)


def seed(client, bucket: str, prefix: str = "videos/", *, log=print) -> list[str]:
    """Upload every sample part not there yet; return the keys uploaded (none once the marker exists)."""
    from scripts.demo import CONVERSATIONS
    from symbl_sandbox.samples import make_mp4

    _ensure_bucket(client, bucket)
    if _exists(client, bucket, MARKER_KEY):
        log(f"seed-samples: s3://{bucket}/{MARKER_KEY} exists, samples were seeded before: nothing to do")
        return []
    uploaded = []
    with tempfile.TemporaryDirectory(prefix="symbl-seed-") as tmp:
        for conversation, parts in CONVERSATIONS.items():
            for index, cues in enumerate(parts, start=1):
                key = f"{prefix}{conversation}/part-{index:03d}.mp4"
                if _exists(client, bucket, key):
                    continue
                path = make_mp4(Path(tmp) / f"{conversation}-{index}.mp4", cues, seconds_per_cue=2.0)
                client.upload_file(str(path), bucket, key, ExtraArgs={"ContentType": "video/mp4"})
                uploaded.append(key)
                log(f"seed-samples: s3://{bucket}/{key} ({len(cues)} captions)")
    marker = {"seeded_at": datetime.now(UTC).isoformat(timespec="seconds"), "keys": uploaded, "prefix": prefix}
    client.put_object(Bucket=bucket, Key=MARKER_KEY, Body=json.dumps(marker).encode(), ContentType="application/json")
    log(f"seed-samples: {len(uploaded)} sample part(s) in s3://{bucket}/{prefix}; unpause symbl_video_pipeline to run")
    return uploaded


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m scripts.seed_samples", description=__doc__.splitlines()[0])
    parser.add_argument("--bucket", default=os.environ.get("S3_BUCKET", "symbl-demo"))
    parser.add_argument("--prefix", default=os.environ.get("SYMBL_PIPELINE_INPUT_PREFIX", "videos/"))
    parser.add_argument("--endpoint-url", default=os.environ.get("S3_ENDPOINT_URL") or None)
    parser.add_argument("--region", default=os.environ.get("AWS_DEFAULT_REGION", "us-east-1"))
    args = parser.parse_args(argv)
    import boto3

    client = boto3.client("s3", endpoint_url=args.endpoint_url, region_name=args.region)
    prefix = args.prefix if args.prefix.endswith("/") else args.prefix + "/"
    seed(client, args.bucket, prefix)
    return 0


if __name__ == "__main__":
    sys.exit(main())
