"""Symbl's answers -> rows: one flat dict per item of each table, columns as in :mod:`.schema`.

Pure functions over the payloads exactly as Symbl returned them (also the raw JSON files), so the same
rows come from a re-read of those files. Values are Python values of the column types (``datetime`` in
UTC for timestamps); the writer encodes them. A value Symbl sent in a shape the column cannot hold (a
timestamp that does not parse, a number as text) becomes null and is counted in ``Flattener.problems``
so the task can say so instead of dropping it silently.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime
from typing import Any

from symbl_airflow.tables.schema import SOURCE_KIND, TABLE_KINDS, column_names

#: Key of the item list in each list-shaped insight (trackers are a top-level array).
LIST_KEYS = {
    "messages": "messages",
    "topics": "topics",
    "questions": "questions",
    "action_items": "actionItems",
    "follow_ups": "followUps",
    "entities": "entities",
    "summary": "summary",
}


class Flattener:
    """Flattens one conversation's payloads; ``problems`` counts values that could not be typed."""

    def __init__(self) -> None:
        self.problems: dict[str, int] = {}

    # ------------------------------------------------------------ typed values
    def _problem(self, what: str) -> None:
        self.problems[what] = self.problems.get(what, 0) + 1

    def text(self, value: Any) -> str | None:
        if value is None:
            return None
        return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, sort_keys=True)

    def number(self, value: Any, what: str) -> float | None:
        if value is None:
            return None
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        self._problem(what)
        return None

    def timestamp(self, value: Any, what: str) -> datetime | None:
        if value in (None, ""):
            return None
        try:
            parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        except ValueError:
            self._problem(what)
            return None
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)

    def texts(self, items: Any, field: str = "text") -> list[str]:
        if not isinstance(items, list):
            return []
        return [str(i[field]) for i in items if isinstance(i, Mapping) and i.get(field) is not None]

    @staticmethod
    def ids(items: Any) -> list[str]:
        if not isinstance(items, list):
            return []
        return [str(i) if not isinstance(i, Mapping) else str(i.get("id")) for i in items if i is not None]

    def person(self, value: Any, prefix: str) -> dict[str, Any]:
        who = value if isinstance(value, Mapping) else {}
        return {
            f"{prefix}_id": self.text(who.get("id")),
            f"{prefix}_name": self.text(who.get("name")),
            f"{prefix}_email": self.text(who.get("email") or who.get("userId")),
        }

    def sentiment(self, value: Any) -> dict[str, Any]:
        found = value if isinstance(value, Mapping) else {}
        polarity = found.get("polarity") if isinstance(found.get("polarity"), Mapping) else {}
        return {
            "sentiment": self.text(found.get("suggested")),
            "sentiment_score": self.number(polarity.get("score"), "sentiment score"),
        }

    # ------------------------------------------------------------ one function per table
    def conversations(self, payload: Any, payloads: Mapping[str, Any]) -> list[dict]:
        conv = payload if isinstance(payload, Mapping) else {}
        members = conv.get("members") if isinstance(conv.get("members"), list) else []
        metrics = {}
        analytics = payloads.get("analytics")
        if isinstance(analytics, Mapping) and isinstance(analytics.get("metrics"), list):
            metrics = {m.get("type"): m.get("seconds") for m in analytics["metrics"] if isinstance(m, Mapping)}
        metadata = conv.get("metadata")
        return [
            {
                "name": self.text(conv.get("name")),
                "type": self.text(conv.get("type")),
                "start_time": self.timestamp(conv.get("startTime"), "conversation startTime"),
                "end_time": self.timestamp(conv.get("endTime"), "conversation endTime"),
                "member_count": len(members),
                "member_names": self.texts(members, "name"),
                "metadata_json": None if metadata is None else json.dumps(metadata, ensure_ascii=False, sort_keys=True),
                "talk_time_seconds": self.number(metrics.get("total_talk_time"), "analytics metric"),
                "silence_seconds": self.number(metrics.get("total_silence"), "analytics metric"),
                "overlap_seconds": self.number(metrics.get("total_overlap"), "analytics metric"),
            }
        ]

    def messages(self, items: list) -> list[dict]:
        return [
            {
                "message_id": self.text(m.get("id")),
                "position": i,
                "text": self.text(m.get("text")),
                **self.person(m.get("from"), "speaker"),
                "start_time": self.timestamp(m.get("startTime"), "message startTime"),
                "end_time": self.timestamp(m.get("endTime"), "message endTime"),
                "time_offset": self.number(m.get("timeOffset"), "message timeOffset"),
                "duration": self.number(m.get("duration"), "message duration"),
                **self.sentiment(m.get("sentiment")),
                "phrases": self.texts(m.get("phrases")),
            }
            for i, m in enumerate(items)
        ]

    def _item(self, id_column: str, i: int, item: Mapping) -> dict:
        return {
            id_column: self.text(item.get("id")),
            "position": i,
            "text": self.text(item.get("text")),
            "score": self.number(item.get("score"), "score"),
            "message_ids": self.ids(item.get("messageIds")),
        }

    def topics(self, items: list) -> list[dict]:
        return [
            {
                **self._item("topic_id", i, t),
                "type": self.text(t.get("type")),
                "parent_topics": self.texts(t.get("parentRefs")),
                **self.sentiment(t.get("sentiment")),
            }
            for i, t in enumerate(items)
        ]

    def questions(self, items: list) -> list[dict]:
        return [
            {**self._item("question_id", i, q), **self.person(q.get("from"), "speaker")} for i, q in enumerate(items)
        ]

    def _actionable(self, id_column: str, items: list) -> list[dict]:
        rows = []
        for i, a in enumerate(items):
            definitive = a.get("definitive")
            entities = a.get("entities")
            rows.append(
                {
                    **self._item(id_column, i, a),
                    **self.person(a.get("from"), "speaker"),
                    **self.person(a.get("assignee"), "assignee"),
                    "definitive": definitive if isinstance(definitive, bool) else None,
                    "due_by": self.timestamp(a.get("dueBy"), "dueBy"),
                    "phrases": self.texts(a.get("phrases")),
                    "entities_json": None
                    if entities is None
                    else json.dumps(entities, ensure_ascii=False, sort_keys=True),
                }
            )
        return rows

    def action_items(self, items: list) -> list[dict]:
        return self._actionable("action_item_id", items)

    def follow_ups(self, items: list) -> list[dict]:
        return self._actionable("follow_up_id", items)

    def entities(self, items: list) -> list[dict]:
        rows: list[dict] = []
        for entity in items:
            if "matches" in entity:  # current shape: one row per match
                for match in entity.get("matches") or []:
                    if not isinstance(match, Mapping):
                        continue
                    rows.append(
                        {
                            "entity_id": self.text(entity.get("id")),
                            "position": len(rows),
                            "type": self.text(entity.get("type")),
                            "sub_type": self.text(entity.get("subType")),
                            "category": self.text(entity.get("category")),
                            "value": self.text(match.get("value", match.get("detectedValue"))),
                            "detected_value": self.text(match.get("detectedValue")),
                            "message_ids": self.ids(match.get("messageRefs")),
                        }
                    )
            else:  # legacy shape: the entity is its own match
                rows.append(
                    {
                        "entity_id": self.text(entity.get("id")),
                        "position": len(rows),
                        "type": self.text(entity.get("type")),
                        "sub_type": self.text(entity.get("customType")),
                        "category": None,
                        "value": self.text(entity.get("value")),
                        "detected_value": self.text(entity.get("text")),
                        "message_ids": self.ids(entity.get("messageRefs")),
                    }
                )
        return rows

    def trackers(self, items: list) -> list[dict]:
        rows: list[dict] = []
        for tracker in items:
            for match in tracker.get("matches") or []:
                if not isinstance(match, Mapping):
                    continue
                rows.append(
                    {
                        "tracker_id": self.text(tracker.get("id")),
                        "position": len(rows),
                        "tracker_name": self.text(tracker.get("name")),
                        "match_type": self.text(match.get("type")),
                        "value": self.text(match.get("value")),
                        "message_ids": self.ids(match.get("messageRefs")),
                        "insight_ids": self.ids(match.get("insightRefs")),
                    }
                )
        return rows

    def analytics(self, payload: Any) -> list[dict]:
        members = payload.get("members") if isinstance(payload, Mapping) else None
        rows = []
        for i, m in enumerate(members if isinstance(members, list) else []):
            if not isinstance(m, Mapping):
                continue

            def part(field: str, key: str, m=m) -> float | None:
                value = m.get(field)
                return self.number(value.get(key), f"analytics {field}") if isinstance(value, Mapping) else None

            person = self.person(m, "member")
            rows.append(
                {
                    "member_id": person["member_id"],
                    "position": i,
                    "member_name": person["member_name"],
                    "member_email": person["member_email"],
                    "pace_wpm": part("pace", "wpm"),
                    "talk_time_seconds": part("talkTime", "seconds"),
                    "talk_time_percent": part("talkTime", "percentage"),
                    "listen_time_seconds": part("listenTime", "seconds"),
                    "listen_time_percent": part("listenTime", "percentage"),
                    "overlap_seconds": part("overlap", "overlapDuration"),
                }
            )
        return rows

    def summary(self, items: list) -> list[dict]:
        return [
            {
                "summary_id": self.text(s.get("id")),
                "position": i,
                "text": self.text(s.get("text")),
                "message_ids": self.ids(s.get("messageRefs")),
            }
            for i, s in enumerate(items)
        ]


def items_of(kind: str, payload: Any) -> list[Mapping]:
    """The list of item objects in a list-shaped payload (empty for anything else)."""
    if kind == "trackers":
        found = payload
    else:
        found = payload.get(LIST_KEYS[kind]) if isinstance(payload, Mapping) else None
    return [item for item in found if isinstance(item, Mapping)] if isinstance(found, list) else []


def table_rows(
    payloads: Mapping[str, Any], common: Mapping[str, Any], flattener: Flattener | None = None
) -> dict[str, list[dict]]:
    """``{table: rows}`` for every table whose insight kind is in ``payloads``; each row starts with ``common``."""
    flat = flattener or Flattener()
    builders: dict[str, Callable[[Any], list[dict]]] = {
        "conversations": lambda p: flat.conversations(p, payloads),
        "analytics": flat.analytics,
        **{k: (lambda p, k=k: getattr(flat, k)(items_of(k, p))) for k in LIST_KEYS | {"trackers": ""}},
    }
    out: dict[str, list[dict]] = {}
    for table in TABLE_KINDS:
        kind = SOURCE_KIND[table]
        if kind not in payloads:
            continue
        names = column_names(table)
        rows = []
        for own in builders[table](payloads[kind]):
            row = {**common, **own}
            rows.append({name: row.get(name) for name in names})
        out[table] = rows
    return out


def common_columns(
    conversation_id: str, conversation_key: str, meeting_date: date, source_uris: list[str], processed_at: datetime
) -> dict[str, Any]:
    return {
        "conversation_id": conversation_id,
        "conversation_key": conversation_key,
        "meeting_date": meeting_date,
        "source_uris": list(source_uris),
        "processed_at": processed_at,
    }
