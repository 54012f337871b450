"""The README's "action items this week" DuckDB query, run on a local copy of a bucket's tables.

Shared by the demo (which prints its result) and the tests (which check it against Symbl's answers), so
the query in the README is the one that runs. DuckDB reads ``s3://`` paths only with its ``httpfs``
extension, downloaded on first use; here the tables are copied from the (local) S3 first instead.
"""

from __future__ import annotations

from pathlib import Path

#: Exactly the query in README.md (a test keeps them equal).
ACTION_ITEMS_THIS_WEEK = """\
SELECT meeting_date, conversation_key, text, assignee_name, due_by
FROM read_json('s3://symbl-demo/tables/action_items/*/*.jsonl.gz', hive_partitioning = true)
WHERE meeting_date >= date_trunc('week', current_date)
ORDER BY meeting_date DESC, conversation_key, position;"""
README_BUCKET_PREFIX = "s3://symbl-demo/"


def mirror(client, bucket: str, prefix: str, dest: Path) -> int:
    """Copy every object under ``prefix`` to ``dest`` (same relative keys); the number copied."""
    count = 0
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            target = dest / obj["Key"]
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(client.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read())
            count += 1
    return count


def action_items_this_week(local_root: Path, sql: str = ACTION_ITEMS_THIS_WEEK) -> tuple[list[str], list[tuple]]:
    """Run the query with ``s3://symbl-demo/`` read from ``local_root``: ``(column names, rows)``."""
    import duckdb

    local = sql.replace(README_BUCKET_PREFIX, local_root.as_posix().rstrip("/") + "/")
    with duckdb.connect() as con:
        cursor = con.execute(local)
        return [d[0] for d in cursor.description], cursor.fetchall()
