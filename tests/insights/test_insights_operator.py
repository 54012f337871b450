"""SymblInsightsOperator against the real sandbox and a real local S3 (moto server), via dag.test()."""

from __future__ import annotations

import json
import uuid
from datetime import datetime

import pytest

from symbl_airflow.insights import INSIGHT_KINDS
from symbl_airflow.tables import TABLE_KINDS
from tests.airflow_helpers import RESULTS, collector, make_dag, ti_states

pytestmark = pytest.mark.integration

#: kind -> (path suffix, query params the operator sends by default)
API = {
    "conversation": ("", {}),
    "messages": ("messages", {"sentiment": "true"}),
    "topics": ("topics", {"sentiment": "true"}),
    "questions": ("questions", {}),
    "action_items": ("action-items", {}),
    "follow_ups": ("follow-ups", {}),
    "entities": ("entities", {}),
    "trackers": ("trackers-detected", {}),
    "analytics": ("analytics", {}),
    "summary": ("summary", {}),
    "members": ("members", {}),
}
SUMMARY_404 = {"message": "The summary is not available for this conversation."}


def _objects(s3, bucket: str, prefix: str) -> dict[str, dict]:
    resp = s3.client().list_objects_v2(Bucket=bucket, Prefix=prefix)
    return {o["Key"]: o for o in resp.get("Contents", [])}


def _read(s3, bucket: str, key: str) -> tuple[object, str, bytes]:
    obj = s3.client().get_object(Bucket=bucket, Key=key)
    raw = obj["Body"].read()
    return json.loads(raw.decode("utf-8")), obj["ContentType"], raw


def _requests(sandbox) -> dict[str, int]:
    stats = sandbox.stats()
    return {"token": stats["token_requests"], **stats["requests"]}


def _asset_events(dag_id: str) -> list[dict]:
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.execute(
            select(AssetModel.uri, AssetEvent.extra, AssetEvent.source_task_id)
            .join(AssetModel, AssetModel.id == AssetEvent.asset_id)
            .where(AssetEvent.source_dag_id == dag_id)
        ).all()
    return [{"uri": uri, "extra": extra, "task_id": task_id} for uri, extra, task_id in rows]


def test_all_kinds_stored_with_index_return_value_and_asset_extra(run_dag, api, conversation, s3, bucket):
    from airflow.sdk import Asset

    from symbl_airflow import SymblInsightsOperator

    asset = Asset(name=f"insights_{uuid.uuid4().hex[:8]}", uri=f"s3://{bucket}/insights/")
    with make_dag("test_insights") as dag:
        op = SymblInsightsOperator(
            task_id="insights",
            conversation_id="{{ params.cid }}",
            output_uri="s3://{{ params.bucket }}/insights/{{ params.cid }}/",
            outlets=[asset],
            params={"cid": conversation, "bucket": bucket},
        )
        op >> collector("all")(op.output)
    dr = run_dag(dag)
    assert dr.state == "success", ti_states(dr)

    prefix = f"insights/{conversation}/"
    keys = _objects(s3, bucket, prefix)
    assert set(keys) == {f"{prefix}{kind}.json" for kind in INSIGHT_KINDS} | {f"{prefix}index.json"}
    # The index is written last: a consumer polling for it sees every file it lists.
    assert keys[f"{prefix}index.json"]["LastModified"] >= max(o["LastModified"] for o in keys.values())

    index, content_type, _ = _read(s3, bucket, f"{prefix}index.json")
    assert content_type == "application/json"
    assert index["conversation_id"] == conversation
    assert index["missing"] == {}
    assert datetime.fromisoformat(index["generated_at"].replace("Z", "+00:00")).tzinfo is not None
    assert list(index["insights"]) == list(INSIGHT_KINDS)
    for kind in INSIGHT_KINDS:
        suffix, params = API[kind]
        stored, content_type, raw = _read(s3, bucket, f"{prefix}{kind}.json")
        assert content_type == "application/json", kind
        assert stored == api.insight(conversation, suffix, **params), kind
        entry = index["insights"][kind]
        assert entry["uri"] == f"s3://{bucket}/{prefix}{kind}.json"
        assert entry["bytes"] == len(raw) == keys[f"{prefix}{kind}.json"]["Size"]
        if kind == "trackers":
            assert entry["count"] == len(stored)
        elif kind in ("conversation", "analytics"):
            assert entry["count"] is None
        else:
            (items,) = stored.values()
            assert entry["count"] == len(items), kind
    # The default params reached Symbl: messages and topics carry sentiment, messages no word timings.
    messages = json.loads(s3.client().get_object(Bucket=bucket, Key=f"{prefix}messages.json")["Body"].read())
    assert len(messages["messages"]) == 4
    assert all("sentiment" in m and "words" not in m for m in messages["messages"])
    assert index["insights"]["messages"]["count"] == 4
    assert index["insights"]["questions"]["count"] >= 1

    tables = RESULTS["all"].pop("tables")  # the tables themselves: tests/insights/test_tables.py
    assert set(tables["uris"]) == set(TABLE_KINDS)
    assert RESULTS["all"] == {
        "conversation_id": conversation,
        "index_uri": f"s3://{bucket}/{prefix}index.json",
        "uris": {kind: f"s3://{bucket}/{prefix}{kind}.json" for kind in INSIGHT_KINDS},
        "missing": [],
    }
    events = _asset_events(dag.dag_id)
    assert events == [
        {
            "uri": f"s3://{bucket}/insights",  # Airflow normalizes S3 asset URIs (no trailing slash)
            "extra": {"conversation_id": conversation, "index_uri": f"s3://{bucket}/{prefix}index.json"},
            "task_id": "insights",
        }
    ]


def test_append_xcom_dict_custom_params_and_prefix_without_slash(run_dag, api, conversation, s3, bucket):
    from airflow.sdk import task

    from symbl_airflow import SymblInsightsOperator

    @task
    def appended():  # the shape SymblAppendVideoOperator returns
        return {"conversation_id": conversation, "job_ids": ["1"], "sources": ["s3://b/k.mp4"]}

    with make_dag("test_insights") as dag:
        op = SymblInsightsOperator(
            task_id="insights",
            conversation_id=appended(),
            output_uri=f"s3://{bucket}/out/run-1",
            insights=["messages", "topics", "action-items"],
            insight_params={"messages": {"verbose": True}, "topics": {"parentRefs": True}},
        )
        op >> collector("custom")(op.output)
    dr = run_dag(dag)
    assert dr.state == "success", ti_states(dr)

    keys = _objects(s3, bucket, "out/")
    assert set(keys) == {f"out/run-1/{k}.json" for k in ("messages", "topics", "action_items", "index")}
    messages, _, _ = _read(s3, bucket, "out/run-1/messages.json")
    assert messages == api.insight(conversation, "messages", sentiment="true", verbose="true")
    assert all(m["words"] and "sentiment" in m for m in messages["messages"])
    topics, _, _ = _read(s3, bucket, "out/run-1/topics.json")
    assert topics == api.insight(conversation, "topics", parentRefs="true")
    assert all("sentiment" not in t for t in topics["topics"])
    result = RESULTS["custom"]
    assert result["conversation_id"] == conversation
    assert list(result["uris"]) == ["messages", "topics", "action_items"]
    assert result["index_uri"] == f"s3://{bucket}/out/run-1/index.json"


def test_missing_summary_is_recorded_not_fatal(run_dag, clean_sandbox, api, conversation, s3, bucket):
    from symbl_airflow import SymblInsightsOperator

    clean_sandbox.fault(
        match={"method": "GET", "path": "/v1/conversations/*/summary"}, action="status", status=404, body=SUMMARY_404
    )
    with make_dag("test_insights") as dag:
        op = SymblInsightsOperator(
            task_id="insights",
            conversation_id=conversation,
            output_uri=f"s3://{bucket}/i/",
            insights=["summary", "questions"],
        )
        op >> collector("missing")(op.output)
    dr = run_dag(dag)
    assert dr.state == "success", ti_states(dr)

    assert set(_objects(s3, bucket, "i/")) == {"i/questions.json", "i/index.json"}
    index, _, _ = _read(s3, bucket, "i/index.json")
    assert list(index["insights"]) == ["questions"]
    # Symbl's message as the error carries it (without its final period, see errors.clean_message)
    assert index["missing"] == {"summary": SUMMARY_404["message"].rstrip(".")}
    assert RESULTS["missing"]["missing"] == ["summary"]
    assert list(RESULTS["missing"]["uris"]) == ["questions"]


def test_fail_on_missing_summary_fails_without_index(run_dag, clean_sandbox, conversation, s3, bucket):
    from symbl_airflow import SymblInsightsOperator

    clean_sandbox.fault(
        match={"method": "GET", "path": "/v1/conversations/*/summary"}, action="status", status=404, body=SUMMARY_404
    )
    with make_dag("test_insights") as dag:
        SymblInsightsOperator(
            task_id="insights",
            conversation_id=conversation,
            output_uri=f"s3://{bucket}/i/",
            insights=["questions", "summary", "members"],
            fail_on_missing=["summary"],
        )
    dr = run_dag(dag)
    assert dr.state == "failed"
    assert ti_states(dr) == {"insights": "failed"}
    assert "i/index.json" not in _objects(s3, bucket, "i/")
    assert _requests(clean_sandbox).get("GET /v1/conversations/{conversationId}/members", 0) == 0


def test_unknown_conversation_fails(run_dag, clean_sandbox, s3, bucket):
    """Every kind 404s and so does the conversation: an error, not an index full of 'missing'."""
    from symbl_airflow import SymblInsightsOperator

    with make_dag("test_insights") as dag:
        SymblInsightsOperator(
            task_id="insights", conversation_id="1234567890", output_uri=f"s3://{bucket}/x/", insights=["summary"]
        )
    dr = run_dag(dag)
    assert ti_states(dr) == {"insights": "failed"}
    assert _objects(s3, bucket, "x/") == {}
    assert _requests(clean_sandbox)["GET /v1/conversations/{conversationId}"] == 1


def test_bad_kind_fails_before_any_request(run_dag, clean_sandbox, s3, bucket):
    from symbl_airflow import SymblInsightsOperator

    before = _requests(clean_sandbox)
    with make_dag("test_insights") as dag:
        SymblInsightsOperator(
            task_id="insights",
            conversation_id="1234567890",
            output_uri=f"s3://{bucket}/x/",
            insights=["messages", "transcript"],
        )
    dr = run_dag(dag)
    assert ti_states(dr) == {"insights": "failed"}
    after = _requests(clean_sandbox)
    assert after == before
    assert after["token"] == 0
    assert _objects(s3, bucket, "x/") == {}
