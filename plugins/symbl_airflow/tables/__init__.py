"""Insights as tables: one row per item of each kind, partitioned by meeting date, beside the raw JSON.

``schema`` (columns and types per table), ``rows`` (Symbl payloads -> rows), ``writer`` (JSON Lines or
Parquet objects, replacement), ``meeting`` (conversation key, videos, meeting date). This module ties
them together for ``SymblInsightsOperator``: the config it validates before any request, the "nothing
new" check that spares Symbl calls, and the publishing of one conversation's tables. docs/tables.md
describes the layout and the schemas.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from symbl_airflow.s3 import split_s3_prefix
from symbl_airflow.tables.meeting import (
    MeetingFacts,
    conversation_key,
    conversation_sources,
    meeting_date,
    read_json_object,
)
from symbl_airflow.tables.rows import LIST_KEYS, Flattener, common_columns, table_rows
from symbl_airflow.tables.schema import SOURCE_KIND, TABLE_KINDS
from symbl_airflow.tables.writer import FORMATS, check_format, write_tables

__all__ = [
    "FORMATS",
    "LIST_KEYS",
    "TABLE_KINDS",
    "TablesConfig",
    "nothing_new",
    "publish",
    "read_json_object",
    "resolve_config",
]
DEFAULT_TABLES_PREFIX = "tables/"


@dataclass(frozen=True)
class TablesConfig:
    bucket: str
    prefix: str
    table_format: str
    meeting_date: date | None
    conversation_key: str | None

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"


def resolve_config(
    tables_prefix: object, table_format: object, output_bucket: str, given_date: object, given_key: object
) -> TablesConfig | None:
    """Validate the table params (raises ValueError naming the param); None when tables are switched off."""
    from symbl_airflow.tables.meeting import parse_meeting_date

    fmt = check_format(table_format)
    when = parse_meeting_date(given_date)
    if tables_prefix is None or (isinstance(tables_prefix, str) and tables_prefix.strip() in ("", "None")):
        return None
    if not isinstance(tables_prefix, str):
        raise ValueError(
            f"tables_prefix must be a key prefix like 'tables/' or 's3://bucket/tables/', got {tables_prefix!r}"
        )
    text = tables_prefix.strip()
    if not text.startswith("s3://"):  # a key prefix in the outputs' bucket
        text = f"s3://{output_bucket}/{text}"
    bucket, prefix = split_s3_prefix(text, what="tables_prefix", example="s3://bucket/tables/")
    key = given_key.strip() if isinstance(given_key, str) and given_key.strip() not in ("", "None", "null") else None
    return TablesConfig(bucket, prefix, fmt, when, key)


def tables_of(kinds: Sequence[str]) -> list[str]:
    """The tables the fetched insight kinds give (a kind no table reads, e.g. members, gives none)."""
    return [t for t in TABLE_KINDS if SOURCE_KIND[t] in kinds]


def nothing_new(
    client,
    append: Mapping[str, Any] | None,
    previous: Mapping[str, Any] | None,
    conversation_id: str,
    kinds: Sequence[str],
    config: TablesConfig | None,
) -> str | None:
    """Why this run needs no Symbl call, or None when it does.

    Only when the append task says it appended nothing (``job_ids`` empty), the earlier index is of
    this conversation with the same kinds, and (with tables) they were written in this format and place
    from every video the ledger now has: a run that failed after appending still fetches the next time.
    """
    if not isinstance(append, Mapping) or "job_ids" not in append or append.get("job_ids"):
        return None
    if not isinstance(previous, Mapping) or previous.get("conversation_id") != conversation_id:
        return None
    done = set(previous.get("insights") or {}) | set(previous.get("missing") or {})
    if not set(kinds) <= done:
        return None
    covered = list(previous.get("source_uris") or [])
    sources, from_ledger = conversation_sources(client, append, covered)
    if from_ledger and sources != covered:
        return None
    if config is not None:
        earlier = previous.get("tables")
        if not isinstance(earlier, Mapping) or not earlier.get("files"):
            return None
        if earlier.get("format") != config.table_format or earlier.get("prefix") != config.uri:
            return None
        if not set(tables_of(kinds)) <= set(earlier["files"]) | set(earlier.get("missing") or ()):
            return None
        if config.meeting_date is not None and earlier.get("meeting_date") != config.meeting_date.isoformat():
            return None
    return f"the append task appended no part and the outputs already cover its {len(covered)} video(s)"


def sources_for_index(client, append: Mapping[str, Any] | None, previous: Mapping[str, Any] | None) -> list[str]:
    covered = list((previous or {}).get("source_uris") or [])
    return conversation_sources(client, append if isinstance(append, Mapping) else None, covered)[0]


def publish(
    s3_hook,
    config: TablesConfig,
    *,
    conversation_id: str,
    payloads: Mapping[str, Any],
    missing: Sequence[str],
    append: Mapping[str, Any] | None,
    sources: Sequence[str],
    output_prefix: str,
    previous: Mapping[str, Any] | None,
    log,
) -> dict[str, Any]:
    """Write this conversation's tables, delete what an earlier write left elsewhere; the index entry."""
    key = conversation_key(config.conversation_key, append, sources, output_prefix, conversation_id)
    start = Flattener().timestamp((payloads.get("conversation") or {}).get("startTime"), "startTime")
    earlier = (previous or {}).get("tables")
    when, rule, first = meeting_date(
        s3_hook,
        sources[0] if sources else None,
        given=config.meeting_date,
        conversation_start=start,
        log=log,
        known=earlier if isinstance(earlier, Mapping) else None,
    )
    facts = MeetingFacts(key, when, rule, tuple(sources))
    now = datetime.now(UTC)
    processed_at = now.replace(microsecond=now.microsecond // 1000 * 1000)  # milliseconds, as written
    flattener = Flattener()
    rows = table_rows(payloads, common_columns(conversation_id, key, when, list(sources), processed_at), flattener)
    previous_uris = [f.get("uri") for f in (earlier or {}).get("files", {}).values() if isinstance(f, Mapping)]
    files, deleted = write_tables(
        s3_hook.get_conn(),
        config.bucket,
        config.prefix,
        rows,
        conversation_id=conversation_id,
        meeting_date=when,
        table_format=config.table_format,
        previous_uris=previous_uris,
    )
    log.info(
        "Tables of conversation %s (%s): meeting date %s (from %s), %s -> %s%s",
        conversation_id,
        key,
        when.isoformat(),
        rule,
        ", ".join(f"{t} {f['rows']}" for t, f in files.items()) or "no table",
        config.uri,
        f"; {len(deleted)} earlier object(s) replaced: {', '.join(deleted)}" if deleted else "",
    )
    if flattener.problems:
        log.warning(
            "Tables of conversation %s: values Symbl sent in an unexpected shape were written as null: %s",
            conversation_id,
            ", ".join(f"{what} x{n}" for what, n in sorted(flattener.problems.items())),
        )
    gone = [t for t in TABLE_KINDS if SOURCE_KIND[t] in missing]
    return {
        "format": config.table_format,
        "prefix": config.uri,
        "conversation_key": facts.conversation_key,
        "meeting_date": when.isoformat(),
        "meeting_date_from": facts.meeting_date_from,
        "first_source": first,
        "processed_at": processed_at.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "files": files,
        "missing": gone,
        "replaced": deleted,
    }
