"""Tables without servers: flattening edge cases of Symbl's shapes, encoding, keys, params, the key date."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, date, datetime

import pytest

from symbl_airflow.tables import TABLE_KINDS, nothing_new, resolve_config
from symbl_airflow.tables.meeting import conversation_key, key_date, parse_meeting_date
from symbl_airflow.tables.rows import Flattener, common_columns, table_rows
from symbl_airflow.tables.schema import TABLES, athena_ddl, column_names
from symbl_airflow.tables.writer import TableFormatError, check_format, encode_jsonl, table_key

pytestmark = pytest.mark.unit

COMMON = common_columns("c1", "standup", date(2026, 12, 5), ["s3://b/v/p1.mp4"], datetime(2026, 12, 6, 8, tzinfo=UTC))


def test_legacy_entities_and_empty_people_flatten_without_loss():
    payloads = {
        "entities": {
            "entities": [
                {"type": "custom", "customType": "Company Executives", "value": "marketing director",
                 "text": "marketing director", "messageRefs": [{"id": "m1", "text": "…", "offset": 4}]},
                {"type": "person", "value": {"name": "Vikram", "assignee": True}, "text": "Vikram",
                 "messageRefs": [{"id": "m2"}]},
            ]
        },
        "follow_ups": {"followUps": [{"id": "f1", "text": "Meet today.", "score": 0.87, "messageIds": ["m3"],
                                      "from": {}, "assignee": {}, "definitive": False, "phrases": [],
                                      "entities": [{"type": "date", "text": "today", "value": "2020-06-22"}]}]},
    }  # fmt: skip
    rows = table_rows(payloads, COMMON)
    assert list(rows) == ["follow_ups", "entities"]  # schema order; only the kinds given
    legacy = rows["entities"]
    fields = ("type", "sub_type", "category", "value", "detected_value", "message_ids")
    assert [tuple(r[f] for f in fields) for r in legacy] == [
        ("custom", "Company Executives", None, "marketing director", "marketing director", ["m1"]),
        ("person", None, None, '{"assignee": true, "name": "Vikram"}', "Vikram", ["m2"]),
    ]  # fmt: skip
    follow = rows["follow_ups"][0]
    assert follow["speaker_name"] is None and follow["assignee_email"] is None and follow["due_by"] is None
    assert json.loads(follow["entities_json"]) == payloads["follow_ups"]["followUps"][0]["entities"]
    assert tuple(follow) == column_names("follow_ups")


def test_values_in_an_unexpected_shape_become_null_and_are_counted():
    flat = Flattener()
    payloads = {
        "messages": {"messages": [{"id": "m1", "text": "Hi", "startTime": "yesterday", "timeOffset": "1.5",
                                   "from": {"userId": "a@example.com"}}]},
    }  # fmt: skip
    (row,) = table_rows(payloads, COMMON, flat)["messages"]
    assert row["start_time"] is None and row["time_offset"] is None and row["speaker_email"] == "a@example.com"
    assert flat.problems == {"message startTime": 1, "message timeOffset": 1}


def test_trackers_and_analytics_rows():
    payloads = {
        "trackers": [{"id": "t1", "name": "Pricing", "matches": [
            {"type": "vocabulary", "value": "price", "messageRefs": [{"id": "m1"}], "insightRefs": [{"id": "q1"}]},
            {"type": "vocabulary", "value": "cost", "messageRefs": [{"id": "m2"}], "insightRefs": []}]}],
        "analytics": {"metrics": [{"type": "total_talk_time", "seconds": 57.2}], "members": [
            {"id": "u1", "name": "Speaker 1", "userId": "a@example.com", "pace": {"wpm": 68},
             "talkTime": {"percentage": 40.9, "seconds": 23.4}, "listenTime": {"percentage": 59.1, "seconds": 33.8},
             "overlap": {"overlapDuration": 31.5}}]},
        "conversation": {"id": "c1", "name": "Sync", "startTime": "2026-12-06T20:05:26.641Z", "members": []},
    }  # fmt: skip
    rows = table_rows(payloads, COMMON)
    assert [(r["position"], r["value"], r["insight_ids"]) for r in rows["trackers"]] == [
        (0, "price", ["q1"]),
        (1, "cost", []),
    ]
    (member,) = rows["analytics"]
    assert (member["member_email"], member["pace_wpm"], member["overlap_seconds"]) == ("a@example.com", 68.0, 31.5)
    (conv,) = rows["conversations"]
    assert conv["talk_time_seconds"] == 57.2 and conv["silence_seconds"] is None
    assert conv["start_time"] == datetime(2026, 12, 6, 20, 5, 26, 641000, tzinfo=UTC)


def test_jsonl_is_deterministic_and_typed_as_documented():
    rows = table_rows({"summary": {"summary": [{"id": "s1", "text": "Done.", "messageRefs": [{"id": "m1"}]}]}}, COMMON)
    one, two = encode_jsonl(rows["summary"]), encode_jsonl(rows["summary"])
    assert one == two  # no gzip timestamp: the same rows are the same bytes
    (line,) = gzip.decompress(one).decode().splitlines()
    assert json.loads(line) == {
        "conversation_id": "c1", "conversation_key": "standup", "meeting_date": "2026-12-05",
        "source_uris": ["s3://b/v/p1.mp4"], "processed_at": "2026-12-06 08:00:00.000",
        "summary_id": "s1", "position": 0, "text": "Done.", "message_ids": ["m1"],
    }  # fmt: skip


def test_keys_formats_and_params():
    assert table_key("tables/", "action_items", date(2026, 12, 5), "58/15", "jsonl") == (
        "tables/action_items/meeting_date=2026-12-05/58_15.jsonl.gz"
    )
    with pytest.raises(TableFormatError, match="table_format must be one of 'jsonl', 'parquet', got 'csv'"):
        check_format("csv")
    cfg = resolve_config("s3://other/t", "jsonl", "out", "2026-12-05", " standup ")
    assert (cfg.bucket, cfg.prefix, cfg.uri, cfg.meeting_date, cfg.conversation_key) == (
        "other", "t/", "s3://other/t/", date(2026, 12, 5), "standup"
    )  # fmt: skip
    assert resolve_config("tables/", "jsonl", "out", None, None).uri == "s3://out/tables/"
    assert resolve_config(None, "jsonl", "out", None, None) is None
    for bad in ("2026-13-01", "05/12/2026", "yesterday"):
        with pytest.raises(ValueError, match="meeting_date must be a date like '2026-12-05'"):
            parse_meeting_date(bad)
    assert set(TABLES) == set(TABLE_KINDS)
    ddl = athena_ddl("summary", "s3://b/tables/summary")
    assert "LOCATION 's3://b/tables/summary/'" in ddl and "`meeting_date`" not in ddl.split("PARTITIONED")[0]


@pytest.mark.parametrize(
    "key, expected",
    [
        ("videos/2026/12/05/part-001.mp4", date(2026, 12, 5)),
        ("videos/standup-2026-12-05/part-001.mp4", date(2026, 12, 5)),
        ("videos/2025-01-01/2026/12/05/p.mp4", date(2026, 12, 5)),  # the most specific (last) one
        ("videos/2026/13/05/p.mp4", None),  # not a date
        ("videos/20261205/p.mp4", None),
        ("videos/standup/part-001.mp4", None),
    ],
)
def test_key_date(key, expected):
    assert key_date(key) == expected


def test_conversation_key_default():
    assert conversation_key(None, {"ledger_uri": "s3://b/videos/team/standup/_symbl.json"}, [], "o/", "c") == "standup"
    assert conversation_key(None, None, ["s3://b/videos/acme/part-1.mp4"], "o/", "c") == "acme"
    assert conversation_key(None, None, [], "insights/beta/", "c") == "beta"
    assert conversation_key("given", None, ["s3://b/x/y.mp4"], "o/", "c") == "given"


def test_nothing_new_only_when_the_append_appended_nothing_and_outputs_cover_it():
    cfg = resolve_config("tables/", "jsonl", "b", None, None)
    previous = {
        "conversation_id": "c1",
        "insights": {"messages": {}},
        "missing": {},
        "source_uris": ["s3://b/v/p1.mp4"],
        "tables": {"format": "jsonl", "prefix": "s3://b/tables/", "files": {"messages": {}}, "missing": []},
    }
    nothing = {"conversation_id": "c1", "job_ids": [], "sources": []}
    assert nothing_new(None, nothing, previous, "c1", ["messages"], cfg)
    assert not nothing_new(None, {**nothing, "job_ids": ["j"]}, previous, "c1", ["messages"], cfg)  # appended
    assert not nothing_new(None, None, previous, "c1", ["messages"], cfg)  # a plain id says nothing
    assert not nothing_new(None, nothing, None, "c1", ["messages"], cfg)  # never written
    assert not nothing_new(None, nothing, previous, "c2", ["messages"], cfg)  # another conversation
    assert not nothing_new(None, nothing, previous, "c1", ["messages", "topics"], cfg)  # a kind not fetched yet
    parquet = resolve_config("tables/", "jsonl", "b", None, None).__class__("b", "tables/", "parquet", None, None)
    assert not nothing_new(None, nothing, previous, "c1", ["messages"], parquet)  # another format
    assert not nothing_new(None, nothing, {**previous, "tables": None}, "c1", ["messages"], cfg)
    assert nothing_new(None, nothing, {**previous, "tables": None}, "c1", ["messages"], None)  # tables off
