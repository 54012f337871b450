"""The tables' schemas: one per kind, stable column names and types (docs/tables.md is generated from here).

Types are the small SQL vocabulary every reader maps the same way: ``string``, ``bigint``, ``double``,
``boolean``, ``date``, ``timestamp`` (UTC, no zone in the value) and ``array<string>``. A nested Symbl
field that has no stable shape (entity values, metadata) is kept as JSON text in a ``*_json`` column.
"""

from __future__ import annotations

from dataclasses import dataclass

TYPES = ("string", "bigint", "double", "boolean", "date", "timestamp", "array<string>")


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    doc: str


def _c(name: str, type_: str, doc: str) -> Column:
    assert type_ in TYPES, type_
    return Column(name, type_, doc)


#: Columns every table starts with: who the row belongs to and when the meeting was.
COMMON: tuple[Column, ...] = (
    _c("conversation_id", "string", "Symbl conversation id"),
    _c("conversation_key", "string", "the conversation's folder name (or the operator's `conversation_key`)"),
    _c("meeting_date", "date", "the recording's date (see *Meeting date*); also the partition"),
    _c("source_uris", "array<string>", "the S3 videos in the conversation, in append order"),
    _c("processed_at", "timestamp", "when these rows were written"),
)

_SPEAKER = (
    _c("speaker_id", "string", "`from.id`"),
    _c("speaker_name", "string", "`from.name`"),
    _c("speaker_email", "string", "`from.email`, else `from.userId`"),
)
_ITEM = (
    _c("position", "bigint", "0-based order in Symbl's answer"),
    _c("text", "string", "the item's text"),
    _c("score", "double", "Symbl's confidence"),
    _c("message_ids", "array<string>", "the messages it comes from"),
)
_ACTIONABLE = (
    *_SPEAKER,
    _c("assignee_id", "string", "`assignee.id`"),
    _c("assignee_name", "string", "`assignee.name`"),
    _c("assignee_email", "string", "`assignee.email`, else `assignee.userId`"),
    _c("definitive", "boolean", "Symbl's `definitive`"),
    _c("due_by", "timestamp", "`dueBy`, when Symbl detected a date"),
    _c("phrases", "array<string>", "texts of `phrases`"),
    _c("entities_json", "string", "`entities` as JSON text (their `value` has no fixed shape)"),
)

#: table -> its own columns (after :data:`COMMON`), in file order.
TABLES: dict[str, tuple[Column, ...]] = {
    "conversations": (
        _c("name", "string", "conversation name"),
        _c("type", "string", "conversation type (`meeting`)"),
        _c("start_time", "timestamp", "`startTime` (Symbl's processing time, not the meeting's)"),
        _c("end_time", "timestamp", "`endTime`"),
        _c("member_count", "bigint", "number of `members`"),
        _c("member_names", "array<string>", "`members[].name`"),
        _c("metadata_json", "string", "`metadata` as JSON text"),
        _c("talk_time_seconds", "double", "analytics `total_talk_time` (null without analytics)"),
        _c("silence_seconds", "double", "analytics `total_silence`"),
        _c("overlap_seconds", "double", "analytics `total_overlap`"),
    ),
    "messages": (
        _c("message_id", "string", "`id`"),
        _c("position", "bigint", "0-based order in the transcript"),
        _c("text", "string", "the sentence"),
        *_SPEAKER,
        _c("start_time", "timestamp", "`startTime`"),
        _c("end_time", "timestamp", "`endTime`"),
        _c("time_offset", "double", "`timeOffset`, seconds"),
        _c("duration", "double", "`duration`, seconds"),
        _c("sentiment", "string", "`sentiment.suggested` (positive, negative, neutral)"),
        _c("sentiment_score", "double", "`sentiment.polarity.score`"),
        _c("phrases", "array<string>", "texts of `phrases`"),
    ),
    "topics": (
        _c("topic_id", "string", "`id`"),
        *_ITEM,
        _c("type", "string", "`type`"),
        _c("parent_topics", "array<string>", "texts of `parentRefs`"),
        _c("sentiment", "string", "`sentiment.suggested`"),
        _c("sentiment_score", "double", "`sentiment.polarity.score`"),
    ),
    "questions": (_c("question_id", "string", "`id`"), *_ITEM, *_SPEAKER),
    "action_items": (_c("action_item_id", "string", "`id`"), *_ITEM, *_ACTIONABLE),
    "follow_ups": (_c("follow_up_id", "string", "`id`"), *_ITEM, *_ACTIONABLE),
    "entities": (
        _c("entity_id", "string", "`id` (null in the legacy shape)"),
        _c("position", "bigint", "0-based order of the match in Symbl's answer"),
        _c("type", "string", "`type`"),
        _c("sub_type", "string", "`subType` (legacy: `customType`)"),
        _c("category", "string", "`category`: Managed or Custom (legacy: null)"),
        _c("value", "string", "`matches[].value` (legacy: `value`; an object as JSON text)"),
        _c("detected_value", "string", "`matches[].detectedValue` (legacy: `text`)"),
        _c("message_ids", "array<string>", "ids of `messageRefs`"),
    ),
    "trackers": (
        _c("tracker_id", "string", "`id`"),
        _c("position", "bigint", "0-based order of the match in Symbl's answer"),
        _c("tracker_name", "string", "`name`"),
        _c("match_type", "string", "`matches[].type` (vocabulary)"),
        _c("value", "string", "`matches[].value`: the tracker phrase matched"),
        _c("message_ids", "array<string>", "ids of `messageRefs`"),
        _c("insight_ids", "array<string>", "ids of `insightRefs`"),
    ),
    "analytics": (
        _c("member_id", "string", "`members[].id`"),
        _c("position", "bigint", "0-based order in Symbl's answer"),
        _c("member_name", "string", "`name`"),
        _c("member_email", "string", "`email`, else `userId`"),
        _c("pace_wpm", "double", "`pace.wpm`"),
        _c("talk_time_seconds", "double", "`talkTime.seconds`"),
        _c("talk_time_percent", "double", "`talkTime.percentage`"),
        _c("listen_time_seconds", "double", "`listenTime.seconds`"),
        _c("listen_time_percent", "double", "`listenTime.percentage`"),
        _c("overlap_seconds", "double", "`overlap.overlapDuration`"),
    ),
    "summary": (
        _c("summary_id", "string", "`id`"),
        _c("position", "bigint", "0-based order in Symbl's answer"),
        _c("text", "string", "the summary sentence"),
        _c("message_ids", "array<string>", "ids of `messageRefs`"),
    ),
}
TABLE_KINDS: tuple[str, ...] = tuple(TABLES)
#: table -> the insight kind its rows come from (the conversations table also reads analytics' metrics).
SOURCE_KIND: dict[str, str] = {"conversations": "conversation", **{k: k for k in TABLE_KINDS if k != "conversations"}}
#: What one row is, per table (docs and the Athena comments).
GRAIN: dict[str, str] = {
    "conversations": "one row per conversation",
    "messages": "one row per message (transcript sentence)",
    "topics": "one row per topic",
    "questions": "one row per question",
    "action_items": "one row per action item",
    "follow_ups": "one row per follow-up",
    "entities": "one row per entity match (an entity found three times is three rows)",
    "trackers": "one row per tracker match",
    "analytics": "one row per member (speaker)",
    "summary": "one row per summary sentence",
}


def columns(kind: str) -> tuple[Column, ...]:
    return COMMON + TABLES[kind]


def column_names(kind: str) -> tuple[str, ...]:
    return tuple(c.name for c in columns(kind))


def duckdb_columns(kind: str) -> dict[str, str]:
    """``read_json(..., columns=...)`` types: reading with them fails on any value not of its declared type."""
    mapping = {"array<string>": "VARCHAR[]", "string": "VARCHAR", "bigint": "BIGINT", "double": "DOUBLE",
               "boolean": "BOOLEAN", "date": "DATE", "timestamp": "TIMESTAMP"}  # fmt: skip
    return {c.name: mapping[c.type] for c in columns(kind)}


def athena_ddl(kind: str, location: str, *, table_format: str = "jsonl", table: str | None = None) -> str:
    """``CREATE EXTERNAL TABLE`` for one kind at ``location`` (``s3://bucket/tables/<kind>/``).

    ``meeting_date`` is the partition (partition projection: no ``MSCK REPAIR`` after each run); the
    rows also carry it, which Athena ignores because a partition column is not a data column. The Hive
    JSON SerDe reads the timestamps as written (``yyyy-MM-dd HH:mm:ss.SSS``, its default) and the
    ``.gz`` objects by their extension.
    """
    location = location if location.endswith("/") else location + "/"
    cols = ",\n".join(f"  `{c.name}` {c.type}" for c in columns(kind) if c.name != "meeting_date")
    serde = "ROW FORMAT SERDE 'org.apache.hive.hcatalog.data.JsonSerDe'"
    storage = "STORED AS PARQUET" if table_format == "parquet" else serde
    return (
        f"CREATE EXTERNAL TABLE IF NOT EXISTS {table or 'symbl_' + kind} (\n{cols}\n)\n"
        f"PARTITIONED BY (`meeting_date` date)\n{storage}\nLOCATION '{location}'\n"
        "TBLPROPERTIES (\n"
        "  'projection.enabled' = 'true',\n"
        "  'projection.meeting_date.type' = 'date',\n"
        "  'projection.meeting_date.format' = 'yyyy-MM-dd',\n"
        "  'projection.meeting_date.range' = '2000-01-01,NOW',\n"
        "  'projection.meeting_date.interval' = '1',\n"
        "  'projection.meeting_date.interval.unit' = 'DAYS',\n"
        f"  'storage.location.template' = '{location}meeting_date=${{meeting_date}}/'\n"
        ");"
    )


def markdown() -> str:
    """The schema section of docs/tables.md (a test keeps the file equal to this)."""
    out = ["| column | type | meaning |", "|---|---|---|"]
    out += [f"| `{c.name}` | `{c.type}` | {c.doc} |" for c in COMMON]
    for kind in TABLE_KINDS:
        out += ["", f"### `{kind}`", "", f"{GRAIN[kind]}; from Symbl's `{SOURCE_KIND[kind]}`.", ""]
        out += ["| column | type | meaning |", "|---|---|---|"]
        out += [f"| `{c.name}` | `{c.type}` | {c.doc} |" for c in TABLES[kind]]
    return "\n".join(out)
