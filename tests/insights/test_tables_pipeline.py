"""The example pipeline's tables with DuckDB: the README's query on a multi-conversation run returns
exactly the action items Symbl returned for this week's meetings, and a new part rewrites a conversation's
rows without duplicates."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from scripts.tables_query import ACTION_ITEMS_THIS_WEEK, action_items_this_week, mirror
from tests.insights.tables_helpers import dated

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
CONVERSATIONS = {
    "alpha": [
        [("Alice", "Alpha begins now."), ("Bob", "I will send the budget tomorrow.")],
        [("Alice", "Can we review the plan?"), ("Bob", "Please update the roadmap by Friday.")],
    ],
    "beta": [[("Carol", "Beta kicks off here."), ("Dan", "We need to call the vendor next week.")]],
    # recorded 40 days ago (MP4 creation time): not this week's meeting
    "gamma": [[("Erin", "Old meeting notes."), ("Finn", "I will archive the old files.")]],
}
EXTRA = [("Alice", "Alpha part three."), ("Bob", "Let's schedule the launch review.")]


def _load_pipeline(monkeypatch):
    from airflow.dag_processing.dagbag import DagBag

    monkeypatch.setenv("SYMBL_PIPELINE_POLL_INTERVAL", "0.2")
    monkeypatch.delenv("SYMBL_PIPELINE_POOL", raising=False)
    bag = DagBag(dag_folder=str(ROOT / "dags" / "symbl_video_pipeline.py"))
    assert not bag.import_errors, bag.import_errors
    return bag.dags["symbl_video_pipeline"]


def _symbl_action_items(sandbox, conversation_id: str) -> list[dict]:
    resp = sandbox.request(
        "GET",
        f"/v1/conversations/{conversation_id}/action-items",
        headers={"Authorization": f"Bearer {sandbox.token()}"},
    )
    resp.raise_for_status()
    return resp.json()["actionItems"]


def _expected(client, bucket, sandbox, names, meeting_date) -> list[tuple]:
    rows = []
    for name in names:
        ledger = json.loads(client.get_object(Bucket=bucket, Key=f"videos/{name}/_symbl.json")["Body"].read())
        for item in _symbl_action_items(sandbox, ledger["conversation_id"]):
            due = item.get("dueBy")
            rows.append(
                (
                    meeting_date,
                    name,
                    item["text"],
                    (item.get("assignee") or {}).get("name"),
                    datetime.fromisoformat(due.replace("Z", "+00:00")).replace(tzinfo=None) if due else None,
                )
            )
    return rows


def test_readme_duckdb_query_on_a_pipeline_run(clean_sandbox, s3, bucket, mp4, run_dag, monkeypatch, tmp_path):
    client = s3.client()
    old = datetime.now(UTC) - timedelta(days=40)
    for name, parts in CONVERSATIONS.items():
        for i, cues in enumerate(parts, start=1):
            data = mp4.make(cues)
            if name == "gamma":
                data = dated(data, old, tmp_path)
            client.put_object(Bucket=bucket, Key=f"videos/{name}/part-{i:03d}.mp4", Body=data)
    conf = {"bucket": bucket, "input_prefix": "videos/", "output_prefix": "insights/"}
    dr = run_dag(_load_pipeline(monkeypatch), run_conf=conf)
    assert dr.state == "success", {ti.task_id: ti.state for ti in dr.get_task_instances()}

    today = datetime.now(UTC).date()
    mirror(client, bucket, "tables/", tmp_path / "run1")
    names, rows = action_items_this_week(tmp_path / "run1")
    assert names == ["meeting_date", "conversation_key", "text", "assignee_name", "due_by"]
    expected = _expected(client, bucket, clean_sandbox, ["alpha", "beta"], today)  # uploaded now: this week
    assert len(expected) == 3
    assert sorted(rows, key=str) == sorted(expected, key=str)
    # gamma is in the tables, under its recording date, and the week's filter is what leaves it out
    everything = ACTION_ITEMS_THIS_WEEK.replace("WHERE meeting_date >= date_trunc('week', current_date)\n", "")
    _, all_rows = action_items_this_week(tmp_path / "run1", everything)
    assert sorted(all_rows, key=str) == sorted(
        expected + _expected(client, bucket, clean_sandbox, ["gamma"], old.date()), key=str
    )

    # Run 2: a new part for alpha rewrites alpha's rows (now from three parts), nothing is duplicated.
    client.put_object(Bucket=bucket, Key="videos/alpha/part-003.mp4", Body=mp4.make(EXTRA))
    dr = run_dag(_load_pipeline(monkeypatch), run_conf=conf)
    assert dr.state == "success", {ti.task_id: ti.state for ti in dr.get_task_instances()}
    mirror(client, bucket, "tables/", tmp_path / "run2")
    _, rows = action_items_this_week(tmp_path / "run2")
    expected = _expected(client, bucket, clean_sandbox, ["alpha", "beta"], today)
    assert len(expected) == 4 and sorted(rows, key=str) == sorted(expected, key=str)
    import duckdb

    messages = duckdb.sql(
        f"SELECT conversation_key, count(*), count(DISTINCT message_id), max(len(source_uris)) FROM read_json("
        f"'{tmp_path / 'run2'}/tables/messages/*/*.jsonl.gz', hive_partitioning = true) GROUP BY 1 ORDER BY 1"
    ).fetchall()
    assert messages == [("alpha", 6, 6, 3), ("beta", 2, 2, 1), ("gamma", 2, 2, 1)]


def test_readme_has_the_query_the_demo_and_tests_run_and_the_generated_athena_ddl():
    from symbl_airflow.tables.schema import athena_ddl

    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```sql\n(.*?)\n```", readme, re.S)
    assert ACTION_ITEMS_THIS_WEEK in blocks
    athena = next(b for b in blocks if "CREATE EXTERNAL TABLE" in b)
    assert athena.startswith(athena_ddl("action_items", "s3://symbl-demo/tables/action_items/"))
    # The Athena query selects the columns DuckDB's does, from the table the DDL creates.
    select = athena.split(";", 1)[1]
    assert "FROM symbl_action_items" in select and "meeting_date >= date_trunc('week', current_date)" in select


def test_docs_tables_md_has_every_schema():
    from symbl_airflow.tables.schema import markdown

    text = (ROOT / "docs" / "tables.md").read_text()
    section = text.split("<!-- tables.schema: start -->\n", 1)[1].split("<!-- tables.schema: end -->", 1)[0]
    assert section.strip() == markdown().strip(), "regenerate: python -m symbl_airflow.tables.cli schema"
