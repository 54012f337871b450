"""The example DAG end to end with dag.test(): sandbox + local S3, two runs (the second incremental)."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
CONVERSATIONS = {
    "alpha": [
        [("Alice", "Alpha part one begins."), ("Bob", "Can we review the budget?")],
        [("Alice", "Alpha part two continues."), ("Bob", "I will send the budget tomorrow.")],
    ],
    "beta": [
        [("Carol", "Beta kicks off here.")],
        [("Dan", "Beta second part."), ("Carol", "Let's schedule a follow up call.")],
    ],
}
EXTRA = [("Alice", "Alpha part three wraps up.")]


def _load_pipeline(monkeypatch):
    from airflow.dag_processing.dagbag import DagBag

    monkeypatch.setenv("SYMBL_PIPELINE_POLL_INTERVAL", "0.2")
    monkeypatch.delenv("SYMBL_PIPELINE_POOL", raising=False)
    bag = DagBag(dag_folder=str(ROOT / "dags" / "symbl_video_pipeline.py"))
    assert not bag.import_errors, bag.import_errors
    return bag.dags["symbl_video_pipeline"]


def _json(client, bucket, key):
    return json.loads(client.get_object(Bucket=bucket, Key=key)["Body"].read())


def _messages(sandbox, conversation_id):
    token = sandbox.token()
    resp = sandbox.request(
        "GET", f"/v1/conversations/{conversation_id}/messages", headers={"Authorization": f"Bearer {token}"}
    )
    resp.raise_for_status()
    return [m["text"] for m in resp.json()["messages"]]


def test_pipeline_two_runs(clean_sandbox, s3, bucket, mp4, run_dag, monkeypatch):
    client = s3.client()
    sha_by_key = {}
    for conv, parts in CONVERSATIONS.items():
        for i, cues in enumerate(parts, start=1):
            data = mp4.make(cues)
            key = f"videos/{conv}/part-{i:03d}.mp4"
            client.put_object(Bucket=bucket, Key=key, Body=data)
            sha_by_key[key] = hashlib.sha256(data).hexdigest()
    conf = {"bucket": bucket, "input_prefix": "videos/", "output_prefix": "insights/"}

    dag = _load_pipeline(monkeypatch)
    started = time.monotonic()
    dr = run_dag(dag, run_conf=conf)
    assert dr.state == "success", {ti.task_id: ti.state for ti in dr.get_task_instances()}
    first_run_seconds = time.monotonic() - started

    ledger = clean_sandbox.ledger()
    assert len(ledger) == 4
    assert len({e["sha256"] for e in ledger}) == 4  # no duplicate appends
    for conv, parts in CONVERSATIONS.items():
        state = _json(client, bucket, f"videos/{conv}/_symbl.json")
        conversation_id = state["conversation_id"]
        entries = [e for e in ledger if e["conversationId"] == conversation_id]
        assert [e["method"] for e in entries] == ["POST", "PUT"]
        assert [e["sha256"] for e in entries] == [sha_by_key[f"videos/{conv}/part-{i:03d}.mp4"] for i in (1, 2)]
        assert [p["job_id"] for p in state["parts"]] == [e["jobId"] for e in entries]
        assert _messages(clean_sandbox, conversation_id) == [text for cues in parts for _, text in cues]
        index = _json(client, bucket, f"insights/{conv}/index.json")
        assert index["conversation_id"] == conversation_id
        messages_file = _json(client, bucket, f"insights/{conv}/messages.json")
        assert [m["text"] for m in messages_file["messages"]] == [t for cues in parts for _, t in cues]

    # Run 2: one new part for alpha; beta has nothing new.
    data = mp4.make(EXTRA)
    client.put_object(Bucket=bucket, Key="videos/alpha/part-003.mp4", Body=data)
    dag = _load_pipeline(monkeypatch)
    dr = run_dag(dag, run_conf=conf)
    assert dr.state == "success", {ti.task_id: ti.state for ti in dr.get_task_instances()}
    ledger = clean_sandbox.ledger()
    assert len(ledger) == 5
    alpha = _json(client, bucket, "videos/alpha/_symbl.json")
    assert ledger[4]["method"] == "PUT" and ledger[4]["conversationId"] == alpha["conversation_id"]
    assert ledger[4]["sha256"] == hashlib.sha256(data).hexdigest()
    expected = [t for cues in [*CONVERSATIONS["alpha"], EXTRA] for _, t in cues]
    assert _messages(clean_sandbox, alpha["conversation_id"]) == expected
    messages_file = _json(client, bucket, "insights/alpha/messages.json")
    assert [m["text"] for m in messages_file["messages"]] == expected
    print(f"first run took {first_run_seconds:.1f}s")


def test_example_dags_parse_without_network():
    """Parsing the DAG files must not touch the network (the DAG processor parses them often)."""
    import subprocess
    import sys

    code = f"""
import socket
def _no_network(*args, **kwargs):
    raise RuntimeError("network access during DAG parsing")
socket.socket.connect = _no_network
socket.getaddrinfo = _no_network
socket.create_connection = _no_network
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(dag_folder={str(ROOT / "dags")!r})
assert not bag.import_errors, bag.import_errors
print(sorted(bag.dags))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "symbl_video_pipeline" in out.stdout and "symbl_append_chain" in out.stdout


def test_pool_is_used_only_when_named(monkeypatch):
    """A pool that does not exist hangs a run silently, so the example DAG uses one only when named."""
    dag = _load_pipeline(monkeypatch)
    assert {t.pool for t in dag.tasks} == {"default_pool"}
    monkeypatch.setenv("SYMBL_PIPELINE_POOL", "symbl")
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(ROOT / "dags" / "symbl_video_pipeline.py"))
    pools = {t.task_id: t.pool for t in bag.dags["symbl_video_pipeline"].tasks}
    assert pools["discover"] == "default_pool"
    assert {pools[t] for t in ("conversation.append", "conversation.wait")} == {"symbl"}
