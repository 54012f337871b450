"""Insights as tables against the real sandbox and a real local S3 (moto server), via dag.test().

Schemas per kind on the sandbox's answers (both formats), the meeting-date partition, replacement
(re-runs never duplicate, a moved meeting date leaves nothing behind), the tables asset event, and a
re-run with nothing appended that makes no Symbl call.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime

import pytest

from symbl_airflow.tables import TABLE_KINDS
from symbl_airflow.tables.rows import items_of
from symbl_airflow.tables.schema import column_names, columns, duckdb_columns
from tests.airflow_helpers import RESULTS, collector, make_dag, ti_states
from tests.insights.tables_helpers import CUES, dated, keys, process, read_rows

pytestmark = pytest.mark.integration

CREATED = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)
#: insight kind -> (path suffix, params the operator sends)
API = {
    "conversations": ("", {}),
    "messages": ("messages", {"sentiment": "true"}),
    "topics": ("topics", {"sentiment": "true"}),
    "questions": ("questions", {}),
    "action_items": ("action-items", {}),
    "follow_ups": ("follow-ups", {}),
    "entities": ("entities", {}),
    "trackers": ("trackers-detected", {}),
    "analytics": ("analytics", {}),
    "summary": ("summary", {}),
}
PY_TYPES = {"string": str, "bigint": int, "double": float, "boolean": bool, "array<string>": list}


def _expected_rows(table: str, payload) -> int:
    if table == "conversations":
        return 1
    if table == "analytics":
        return len(payload["members"])
    items = items_of(table, payload)
    if table in ("entities", "trackers"):
        return sum(len(i["matches"]) for i in items)
    return len(items)


def _check_json_value(table: str, name: str, type_: str, value) -> None:
    if value is None:
        return
    where = f"{table}.{name}={value!r}"
    if type_ == "date":
        assert isinstance(value, str) and date.fromisoformat(value), where
    elif type_ == "timestamp":
        assert isinstance(value, str) and len(value) == 23 and datetime.strptime(value, "%Y-%m-%d %H:%M:%S.%f"), where
    elif type_ == "double":
        assert isinstance(value, (int, float)) and not isinstance(value, bool), where
    elif type_ == "array<string>":
        assert isinstance(value, list) and all(isinstance(v, str) for v in value), where
    else:
        assert type(value) is PY_TYPES[type_], where


def _upload(client, bucket: str, key: str, data: bytes) -> str:
    client.put_object(Bucket=bucket, Key=key, Body=data)
    return f"s3://{bucket}/{key}"


def _run_insights(run_dag, append: dict, bucket: str, **kwargs) -> tuple[object, dict]:
    from symbl_airflow import SymblInsightsOperator

    with make_dag("test_tables") as dag:
        op = SymblInsightsOperator(
            task_id="insights", conversation_id=append, output_uri=f"s3://{bucket}/insights/launch/", **kwargs
        )
        op >> collector("tables")(op.output)
    RESULTS.pop("tables", None)
    dr = run_dag(dag)
    assert dr.state == "success", ti_states(dr)
    return dag, RESULTS["tables"]


@pytest.mark.parametrize("table_format", ["jsonl", "parquet"])
def test_every_table_has_its_schema_and_symbl_items(run_dag, api, mp4, s3, bucket, table_format, tmp_path):
    import duckdb
    from airflow.sdk import Asset

    data = dated(mp4.make(CUES, seconds_per_cue=1.0), CREATED, tmp_path)
    conversation = process(api, data)
    client = s3.client()
    source = _upload(client, bucket, "videos/launch/part-001.mp4", data)
    asset = Asset(name=f"tables_{uuid.uuid4().hex[:8]}")
    append = {"conversation_id": conversation, "job_ids": ["j1"], "sources": [source]}
    dag, result = _run_insights(run_dag, append, bucket, table_format=table_format, tables_asset=asset)

    ext = ".jsonl.gz" if table_format == "jsonl" else ".parquet"
    expected_keys = [f"tables/{t}/meeting_date=2026-11-20/{conversation}{ext}" for t in sorted(TABLE_KINDS)]
    assert keys(client, bucket, "tables/") == expected_keys
    assert result["tables"] == {
        "meeting_date": "2026-11-20",
        "uris": {t: f"s3://{bucket}/tables/{t}/meeting_date=2026-11-20/{conversation}{ext}" for t in TABLE_KINDS},
    }
    for table in TABLE_KINDS:
        suffix, params = API[table]
        payload = api.insight(conversation, suffix, **params)
        key = f"tables/{table}/meeting_date=2026-11-20/{conversation}{ext}"
        rows = read_rows(client, bucket, key)
        assert len(rows) == _expected_rows(table, payload) > 0, table
        for row in rows:
            assert tuple(row) == column_names(table), table
            assert row["conversation_id"] == conversation and row["conversation_key"] == "launch"
            assert row["source_uris"] == [source]
            if table_format == "jsonl":
                assert row["meeting_date"] == "2026-11-20"
                for column in columns(table):
                    _check_json_value(table, column.name, column.type, row[column.name])
            else:
                assert row["meeting_date"] == date(2026, 11, 20)
        # Every value reads as its declared type (a wrong one fails the read): the schema Athena gets.
        local = tmp_path / key
        local.parent.mkdir(parents=True, exist_ok=True)
        local.write_bytes(client.get_object(Bucket=bucket, Key=key)["Body"].read())
        if table_format == "jsonl":
            read = f"read_json('{local}', columns = {duckdb_columns(table)}, format = 'newline_delimited')"
        else:
            import pyarrow.parquet as pq

            from symbl_airflow.tables.writer import arrow_schema

            assert pq.read_schema(local) == arrow_schema(table)
            read = f"read_parquet('{local}')"
        assert duckdb.sql(f"SELECT count(*) FROM {read}").fetchall() == [(len(rows),)]

    # The kinds' own fields, flattened under their documented names.
    actions = read_rows(client, bucket, f"tables/action_items/meeting_date=2026-11-20/{conversation}{ext}")
    symbl_actions = api.insight(conversation, "action-items")["actionItems"]
    assert [a["text"] for a in actions] == [a["text"] for a in symbl_actions]
    assert [a["assignee_name"] for a in actions] == [a["assignee"]["name"] for a in symbl_actions]
    assert [a["action_item_id"] for a in actions] == [a["id"] for a in symbl_actions]
    due = [a["due_by"] for a in actions]
    symbl_due = [datetime.fromisoformat(a["dueBy"].replace("Z", "+00:00")) for a in symbl_actions]
    if table_format == "jsonl":
        assert due == [d.strftime("%Y-%m-%d %H:%M:%S.000") for d in symbl_due]
    else:
        assert due == [d.replace(tzinfo=None) for d in symbl_due]
    messages = read_rows(client, bucket, f"tables/messages/meeting_date=2026-11-20/{conversation}{ext}")
    assert [(m["speaker_name"], m["text"]) for m in messages] == CUES
    conv = read_rows(client, bucket, f"tables/conversations/meeting_date=2026-11-20/{conversation}{ext}")[0]
    assert conv["member_names"] == ["Alice", "Bob"] and conv["talk_time_seconds"] == 4.0

    index = __import__("json").loads(client.get_object(Bucket=bucket, Key="insights/launch/index.json")["Body"].read())
    assert index["source_uris"] == [source]
    assert index["tables"]["meeting_date_from"] == "mp4_creation_time"
    assert index["tables"]["format"] == table_format
    events = _asset_events(dag.dag_id, asset.name)
    assert len(events) == 1
    extra = events[0]
    assert extra["conversation_id"] == conversation and extra["conversation_key"] == "launch"
    assert extra["meeting_date"] == "2026-11-20" and extra["table_format"] == table_format
    assert extra["tables_uri"] == f"s3://{bucket}/tables/"
    assert extra["kinds"] == list(TABLE_KINDS)
    assert extra["uris"] == result["tables"]["uris"]
    assert extra["rows"]["messages"] == 4


def _asset_events(dag_id: str, name: str) -> list[dict]:
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.execute(
            select(AssetEvent.extra)
            .join(AssetModel, AssetModel.id == AssetEvent.asset_id)
            .where(AssetEvent.source_dag_id == dag_id, AssetModel.name == name)
        ).all()
    return [extra for (extra,) in rows]


def test_meeting_date_rule(s3, bucket, mp4, tmp_path):
    """MP4 creation time, else S3 LastModified, else a date in the key, else Symbl's startTime."""
    import logging

    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    from symbl_airflow.tables.meeting import meeting_date

    client, hook, log = s3.client(), S3Hook(aws_conn_id="aws_default"), logging.getLogger("test")
    plain = mp4.make(CUES[:1])
    with_date = _upload(client, bucket, "v/a/part-001.mp4", dated(plain, CREATED, tmp_path))
    without = _upload(client, bucket, "v/b/part-001.mp4", plain)
    not_mp4 = _upload(client, bucket, "v/2025-01-02/part-001.mp4", b"not a video at all")
    today = datetime.now(UTC).date()
    start = datetime(2026, 9, 9, 23, 30, tzinfo=UTC)
    cases = {
        with_date: (date(2026, 11, 20), "mp4_creation_time"),
        without: (today, "s3_last_modified"),
        not_mp4: (today, "s3_last_modified"),  # no header date: the upload time, not the key's date
        f"s3://{bucket}/gone/2026/03/04/part-001.mp4": (date(2026, 3, 4), "key_date"),
        f"s3://{bucket}/gone/standup-2026-02-28/p.mp4": (date(2026, 2, 28), "key_date"),
        f"s3://{bucket}/gone/no-date/p.mp4": (date(2026, 9, 9), "conversation_start"),
        None: (date(2026, 9, 9), "conversation_start"),
    }
    for source, expected in cases.items():
        assert meeting_date(hook, source, given=None, conversation_start=start, log=log)[:2] == expected, source
    assert meeting_date(hook, with_date, given=date(2026, 1, 5), conversation_start=None, log=log)[:2] == (
        date(2026, 1, 5),
        "param",
    )
    # The same first video (URI and ETag) as the earlier write: its date is reused, the header not read again.
    _, _, video = meeting_date(hook, without, given=None, conversation_start=None, log=log)
    assert video == {
        "uri": without,
        "etag": client.head_object(Bucket=bucket, Key="v/b/part-001.mp4")["ETag"].strip('"'),
    }
    known = {"first_source": video, "meeting_date": "2026-01-02", "meeting_date_from": "s3_last_modified"}
    assert meeting_date(hook, without, given=None, conversation_start=None, log=log, known=known)[:2] == (
        date(2026, 1, 2),
        "s3_last_modified",
    )
    client.put_object(Bucket=bucket, Key="v/b/part-001.mp4", Body=dated(plain, CREATED, tmp_path))  # re-uploaded
    assert meeting_date(hook, without, given=None, conversation_start=None, log=log, known=known)[:2] == (
        date(2026, 11, 20),
        "mp4_creation_time",
    )


def test_reruns_replace_and_a_moved_meeting_date_leaves_nothing_behind(run_dag, api, mp4, s3, bucket, tmp_path):
    import duckdb

    data = mp4.make(CUES, seconds_per_cue=1.0)
    conversation = process(api, data)
    client = s3.client()
    source = _upload(client, bucket, "videos/launch/part-001.mp4", data)
    append = {"conversation_id": conversation, "job_ids": ["j1"], "sources": [source]}
    today = datetime.now(UTC).date().isoformat()

    _run_insights(run_dag, append, bucket)
    first = keys(client, bucket, "tables/")
    assert len(first) == len(TABLE_KINDS) and all(f"/meeting_date={today}/" in k for k in first)
    bodies = {k: client.get_object(Bucket=bucket, Key=k)["Body"].read() for k in first}

    _run_insights(run_dag, append, bucket)  # the same again: the same objects, replaced
    assert keys(client, bucket, "tables/") == first
    assert {k: len(read_rows(client, bucket, k)) for k in first} == {
        k: len(__import__("gzip").decompress(b).splitlines()) for k, b in bodies.items()
    }

    _, result = _run_insights(run_dag, append, bucket, meeting_date="2026-10-01")
    moved = keys(client, bucket, "tables/")
    assert moved == sorted(k.replace(f"meeting_date={today}", "meeting_date=2026-10-01") for k in first)
    assert result["tables"]["meeting_date"] == "2026-10-01"
    index = __import__("json").loads(client.get_object(Bucket=bucket, Key="insights/launch/index.json")["Body"].read())
    assert sorted(index["tables"]["replaced"]) == sorted(f"s3://{bucket}/{k}" for k in first)

    root = tmp_path / "mirror"
    from scripts.tables_query import mirror

    mirror(client, bucket, "tables/", root)
    count = duckdb.sql(
        f"SELECT count(*), count(DISTINCT action_item_id) FROM read_json('{root}/tables/action_items/*/*.jsonl.gz', "
        "hive_partitioning = true)"
    ).fetchall()
    assert count == [(2, 2)]  # no duplicate rows after three writes and a moved partition


def test_rerun_with_nothing_appended_calls_symbl_for_nothing(run_dag, clean_sandbox, mp4, s3, bucket):
    """append (ledger) >> wait >> insights, twice: the second run appends nothing, no task makes a Symbl
    call (no insight GET, no Experience link, no job poll) and the tables stay as they are."""
    from airflow.sdk import Asset

    from symbl_airflow import SymblAppendVideoOperator, SymblInsightsOperator, SymblJobSensor

    client = s3.client()
    sources = [_upload(client, bucket, f"videos/sync/part-{i:03d}.mp4", mp4.make(CUES[i - 1 : i + 1])) for i in (1, 2)]
    asset = Asset(name=f"tables_{uuid.uuid4().hex[:8]}")

    def build():
        with make_dag("test_tables_rerun") as dag:
            append = SymblAppendVideoOperator(
                task_id="append", source=sources, ledger_uri=f"s3://{bucket}/videos/sync/_symbl.json",
                poll_interval=0.2, deferrable=False,
            )  # fmt: skip
            wait = SymblJobSensor(task_id="wait", job_ids=append.output, poke_interval=0.2, deferrable=False)
            insights = SymblInsightsOperator(
                task_id="insights",
                conversation_id=append.output,
                output_uri=f"s3://{bucket}/insights/sync/",
                tables_asset=asset,
            )
            append >> wait >> insights
        return dag

    dag = build()
    dr = run_dag(dag)
    assert dr.state == "success", ti_states(dr)
    tables = {k: client.head_object(Bucket=bucket, Key=k)["ETag"] for k in keys(client, bucket, "tables/")}
    assert len(tables) == len(TABLE_KINDS)
    assert len(_asset_events(dag.dag_id, asset.name)) == 1

    before = clean_sandbox.stats()["requests"]
    dag = build()
    dr = run_dag(dag)
    states = {ti.task_id: str(ti.state) for ti in dr.get_task_instances()}
    assert states["insights"] == "skipped", states
    after = clean_sandbox.stats()["requests"]
    calls = {k: after.get(k, 0) - before.get(k, 0) for k in after if after.get(k, 0) != before.get(k, 0)}
    insight_calls = {k: n for k, n in calls.items() if k.startswith("GET /v1/conversations")}
    experiences = {k: n for k, n in calls.items() if "experiences" in k}
    assert insight_calls == {}, calls
    assert not any(k.startswith("POST /v1/process") or k.startswith("PUT /v1/process") for k in calls), calls
    assert {k: client.head_object(Bucket=bucket, Key=k)["ETag"] for k in keys(client, bucket, "tables/")} == tables
    assert _asset_events(dag.dag_id, asset.name) == []  # nothing new: downstream DAGs are not woken
    # No task asked for an Experience link again: nothing new, no Symbl call (issue 21).
    from symbl_airflow.links import SYMBL_CONVERSATION_URL_XCOM_KEY
    from tests.airflow_helpers import task_xcoms

    for task_id in ("append", "wait", "insights"):
        assert SYMBL_CONVERSATION_URL_XCOM_KEY not in task_xcoms(dag.dag_id, task_id), task_id
    assert experiences == {}, experiences
    assert calls == {}, calls  # not even a token: the second run made no Symbl request at all


def test_bad_table_params_fail_before_any_symbl_call(run_dag, clean_sandbox, s3, bucket, monkeypatch):
    from symbl_airflow import SymblInsightsOperator

    cases = {
        "table_format": {"table_format": "csv"},
        "meeting_date": {"meeting_date": "05/12/2026"},
        "tables_prefix": {"tables_prefix": "s3:///tables/"},
    }
    for name, kwargs in cases.items():
        before = clean_sandbox.stats()["requests"]
        op = SymblInsightsOperator(task_id="insights", conversation_id="123", output_uri=f"s3://{bucket}/o/", **kwargs)
        from airflow.sdk.exceptions import AirflowFailException

        with pytest.raises(AirflowFailException, match=name):
            op.execute({})
        assert clean_sandbox.stats()["requests"] == before, name
    # Parquet without pyarrow: the error names the extra to install.
    import builtins

    real_import = builtins.__import__

    def no_pyarrow(name, *args, **kwargs):
        if name.startswith("pyarrow"):
            raise ImportError("No module named 'pyarrow'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_pyarrow)
    op = SymblInsightsOperator(
        task_id="i", conversation_id="123", output_uri=f"s3://{bucket}/o/", table_format="parquet"
    )
    from airflow.sdk.exceptions import AirflowFailException

    with pytest.raises(AirflowFailException, match=r"symbl-airflow\[parquet\]"):
        op.execute({})
