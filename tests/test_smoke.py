"""The harness itself: both servers start and answer real requests; Airflow's DB is usable."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.integration


def test_sandbox_answers_real_requests(clean_sandbox):
    assert clean_sandbox.request("GET", "/sandbox/health").json()["status"] == "ok"
    token = clean_sandbox.token()
    resp = clean_sandbox.request("GET", "/v1/job/does-not-exist", headers={"Authorization": f"Bearer {token}"})
    assert resp.status_code == 404
    assert clean_sandbox.ledger() == []


def test_local_s3_round_trip(s3, bucket):
    client = s3.client()
    client.put_object(Bucket=bucket, Key="a/b.txt", Body=b"hello")
    assert client.get_object(Bucket=bucket, Key="a/b.txt")["Body"].read() == b"hello"


def test_mp4_factory_makes_real_mp4(mp4):
    data = mp4.make([("Alice", "Hi there."), ("Bob", "Hello Alice.")])
    assert data[4:8] == b"ftyp"
    assert len(data) > 1000


def test_airflow_metadata_db_is_migrated():
    from airflow.utils.db import check_migrations

    check_migrations(timeout=5)
