"""Fixtures of the multi-process end-to-end suite (marker ``e2e``)."""

from __future__ import annotations

import os
import shutil
import tempfile
import time
import uuid
from pathlib import Path

import pytest

from tests.e2e.cluster import AirflowCluster, services_reachable

MP4_DIR = Path(tempfile.gettempdir())


@pytest.fixture(scope="session")
def airflow_cluster():
    """PostgreSQL + Redis + api-server, scheduler, dag-processor, triggerer and two Celery workers."""
    reason = services_reachable()
    if reason:
        pytest.skip(reason)
    workdir = Path(tempfile.mkdtemp(prefix="symbl-e2e-"))
    cluster = AirflowCluster(workdir)
    started = time.monotonic()
    try:
        cluster.start()
        cluster.startup_seconds = time.monotonic() - started
        # Warm-up run: the first deferral after a cold start can hit a scheduler race (apache/airflow#72716).
        warm = Scenario(cluster, workdir)
        warm.add("warmup", 1)
        run_id = cluster.trigger(warm.conf)
        cluster.warmup_state = cluster.wait_run(run_id, timeout=300)
        cluster.warmup_seconds = time.monotonic() - started - cluster.startup_seconds
        yield cluster
    finally:
        cluster.stop()
        if not os.environ.get("SYMBL_E2E_KEEP"):  # keep logs for debugging
            shutil.rmtree(workdir, ignore_errors=True)


class Scenario:
    """One test's input: a fresh bucket, conversations of captioned parts, and the checks on the outcome."""

    def __init__(self, cluster: AirflowCluster, mp4_dir: Path, bucket: str | None = None):
        self.cluster = cluster
        self.bucket = bucket or f"e2e-{uuid.uuid4().hex[:10]}"
        self.mp4_dir = mp4_dir
        self.parts: dict[str, list[dict]] = {}
        self.s3 = cluster.s3.client()
        if bucket is None or bucket not in {b["Name"] for b in self.s3.list_buckets()["Buckets"]}:
            self.s3.create_bucket(Bucket=self.bucket)

    def add(self, key: str, n_parts: int, *, pad_mib: float = 0, cues_per_part: int = 2, seconds: float = 1.0):
        """Upload ``n_parts`` captioned MP4s as videos/<key>/part-NNN.mp4; every part has unique text."""
        import hashlib

        from symbl_sandbox.samples import make_mp4

        start = len(self.parts.get(key, []))
        for i in range(start + 1, start + n_parts + 1):
            cues = [
                ("Alice" if c % 2 == 0 else "Bob", f"{key.replace('-', ' ')} part {i} sentence {c + 1}.")
                for c in range(cues_per_part)
            ]
            path = self.mp4_dir / f"{self.bucket}-{key}-{i}.mp4"
            make_mp4(path, cues, seconds_per_cue=seconds)
            data = path.read_bytes()
            path.unlink()
            if pad_mib:
                data += b"\0" * int(pad_mib * 1048576)  # trailing bytes: a big upload, same captions
            object_key = f"videos/{key}/part-{i:03d}.mp4"
            self.s3.put_object(Bucket=self.bucket, Key=object_key, Body=data)
            self.parts.setdefault(key, []).append(
                {"key": object_key, "sha256": hashlib.sha256(data).hexdigest(), "texts": [t for _, t in cues]}
            )

    @property
    def conf(self) -> dict:
        return {"bucket": self.bucket, "input_prefix": "videos/", "output_prefix": "insights/"}

    def map_index(self, key: str) -> int:
        return sorted(self.parts).index(key)

    def state_file(self, key: str) -> dict | None:
        import json

        try:
            obj = self.s3.get_object(Bucket=self.bucket, Key=f"videos/{key}/_symbl.json")
        except self.s3.exceptions.NoSuchKey:
            return None
        return json.loads(obj["Body"].read())

    def figures(self, key: str) -> dict:
        """duplicates / order violations / lost for one conversation, from the sandbox ledger and transcript."""
        cluster = self.cluster
        expected = self.parts[key]
        shas = [p["sha256"] for p in expected]
        ledger = [e for e in cluster.sandbox.ledger() if e["sha256"] in shas]
        conversations = {e["conversationId"] for e in ledger}
        seen = [shas.index(e["sha256"]) for e in ledger]
        duplicates = len(seen) - len(set(seen))
        lost = len(set(range(len(shas))) - set(seen))
        order_violations = sum(1 for a, b in zip(seen, seen[1:], strict=False) if b <= a)
        methods = [e["method"] for e in ledger]
        if methods and (methods[0] != "POST" or any(m != "PUT" for m in methods[1:])):
            order_violations += 1
        transcript: list[str] = []
        if len(conversations) == 1:
            token = cluster.sandbox.token()
            resp = cluster.sandbox.request(
                "GET",
                f"/v1/conversations/{next(iter(conversations))}/messages",
                headers={"Authorization": f"Bearer {token}"},
            )
            resp.raise_for_status()
            transcript = [m["text"] for m in resp.json().get("messages", [])]
        want = [t for p in expected if shas.index(p["sha256"]) in seen for t in p["texts"]]
        if transcript != want:
            order_violations += 1
        return {
            "duplicates": duplicates,
            "order_violations": order_violations,
            "lost": lost,
            "conversations": len(conversations),
            "transcript_ok": transcript == want,
            "transcript": transcript,
        }

    def insights_index(self, key: str) -> dict | None:
        import json

        try:
            obj = self.s3.get_object(Bucket=self.bucket, Key=f"insights/{key}/index.json")
        except self.s3.exceptions.NoSuchKey:
            return None
        return json.loads(obj["Body"].read())


@pytest.fixture
def scenario(airflow_cluster, tmp_path):
    return Scenario(airflow_cluster, tmp_path)
