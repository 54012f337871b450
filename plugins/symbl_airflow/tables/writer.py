"""Rows -> one object per conversation and table, at ``<prefix><table>/meeting_date=YYYY-MM-DD/<id><ext>``.

gzip JSON Lines by default (standard library only; Athena, BigQuery, Snowflake, DuckDB and Spark read
it), Parquet through pyarrow (``pip install "symbl-airflow[parquet]"``). Encoding is deterministic (gzip
without a timestamp, columns in schema order), so the same rows give the same bytes.

Replacement: a conversation's object of a table always has the same key for the same meeting date, so
writing it again replaces its rows. Whatever an earlier write left under another key (another meeting
date, another format, a conversation id the folder no longer has) is deleted after the new objects are
written; the keys of the earlier write come from the index of the raw outputs.
"""

from __future__ import annotations

import gzip
import io
import json
from collections.abc import Iterable, Mapping
from datetime import date, datetime
from typing import Any

from symbl_airflow.s3 import split_s3_uri
from symbl_airflow.tables.schema import columns

#: table_format -> (file extension, Content-Type)
FORMATS: dict[str, tuple[str, str]] = {
    "jsonl": (".jsonl.gz", "application/x-ndjson"),
    "parquet": (".parquet", "application/vnd.apache.parquet"),
}
PARQUET_EXTRA = "symbl-airflow[parquet]"


class TableFormatError(ValueError):
    """A table format that cannot be written here; the message says what to install or pass."""


def check_format(table_format: object) -> str:
    """Validate ``table_format`` (and that pyarrow is importable for Parquet) before anything is fetched."""
    if table_format not in FORMATS:
        raise TableFormatError(f"table_format must be one of {', '.join(map(repr, FORMATS))}, got {table_format!r}")
    if table_format == "parquet":
        _pyarrow()
    return str(table_format)


def _pyarrow():
    try:
        import pyarrow
        import pyarrow.parquet
    except ImportError as exc:
        raise TableFormatError(
            f'table_format="parquet" needs pyarrow, which is not installed ({exc}); install the extra: '
            f'pip install "{PARQUET_EXTRA}", or use the default table_format="jsonl"'
        ) from None
    return pyarrow


def table_key(prefix: str, table: str, meeting_date: date, conversation_id: str, table_format: str) -> str:
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in conversation_id)
    return f"{prefix}{table}/meeting_date={meeting_date.isoformat()}/{safe}{FORMATS[table_format][0]}"


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime):  # UTC, Hive's timestamp text: every engine's default parse
        return value.strftime("%Y-%m-%d %H:%M:%S.") + f"{value.microsecond // 1000:03d}"
    if isinstance(value, date):
        return value.isoformat()
    return value


def encode_jsonl(rows: Iterable[Mapping[str, Any]]) -> bytes:
    text = "".join(
        json.dumps({k: _json_value(v) for k, v in row.items()}, ensure_ascii=False, separators=(",", ":")) + "\n"
        for row in rows
    )
    return gzip.compress(text.encode("utf-8"), compresslevel=6, mtime=0)


def arrow_schema(table: str):
    pa = _pyarrow()
    types = {
        "string": pa.string(),
        "bigint": pa.int64(),
        "double": pa.float64(),
        "boolean": pa.bool_(),
        "date": pa.date32(),
        "timestamp": pa.timestamp("ms"),  # UTC, without a zone (as in the JSON Lines files and Athena)
        "array<string>": pa.list_(pa.string()),
    }
    return pa.schema([pa.field(c.name, types[c.type]) for c in columns(table)])


def encode_parquet(table: str, rows: list[Mapping[str, Any]]) -> bytes:
    import pyarrow.parquet as pq

    pa = _pyarrow()
    naive = [{k: v.replace(tzinfo=None) if isinstance(v, datetime) else v for k, v in r.items()} for r in rows]
    data = pa.Table.from_pylist(naive, schema=arrow_schema(table))
    out = io.BytesIO()
    pq.write_table(data, out, compression="snappy")
    return out.getvalue()


def encode(table: str, rows: list[Mapping[str, Any]], table_format: str) -> bytes:
    return encode_parquet(table, rows) if table_format == "parquet" else encode_jsonl(rows)


def write_tables(
    client,
    bucket: str,
    prefix: str,
    rows_by_table: Mapping[str, list[Mapping[str, Any]]],
    *,
    conversation_id: str,
    meeting_date: date,
    table_format: str,
    previous_uris: Iterable[str] = (),
) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """Write each table's object, then delete the objects of an earlier write that were not written now.

    Returns ``({table: {"uri", "rows", "bytes"}}, deleted URIs)``. New objects go first: a reader may
    briefly see a conversation twice when its meeting date moved, never lose it.
    """
    ext, content_type = FORMATS[table_format]
    written: dict[str, dict[str, Any]] = {}
    for table, rows in rows_by_table.items():
        key = table_key(prefix, table, meeting_date, conversation_id, table_format)
        body = encode(table, list(rows), table_format)
        client.put_object(Bucket=bucket, Key=key, Body=body, ContentType=content_type)
        written[table] = {"uri": f"s3://{bucket}/{key}", "rows": len(rows), "bytes": len(body)}
    keep = {entry["uri"] for entry in written.values()}
    stale = sorted({u for u in previous_uris if isinstance(u, str) and u.startswith("s3://") and u not in keep})
    by_bucket: dict[str, list[str]] = {}
    for uri in stale:
        other, key = split_s3_uri(uri)
        by_bucket.setdefault(other, []).append(key)
    for other, keys in by_bucket.items():
        for start in range(0, len(keys), 1000):  # DeleteObjects takes at most 1,000 keys
            objects = [{"Key": k} for k in keys[start : start + 1000]]
            client.delete_objects(Bucket=other, Delete={"Objects": objects, "Quiet": True})
    return written, stale
