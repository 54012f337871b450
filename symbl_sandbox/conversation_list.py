"""``GET /v1/conversations``: query parsing (limit, offset, order, sort, time window, RSQL filter) and selection.

Source: symbl-docs ``docs/conversation-api/api-reference/all-conversations.md`` (published as
docs.symbl.ai/docs/conversation-api/all-conversations), "Query Parameters" table. Where it is vague the
sandbox's reading is written next to the code and in ``symbl_sandbox/README.md``.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

DEFAULT_LIMIT = 20
MAX_LIMIT = 65536
DEFAULT_WINDOW = timedelta(days=7)
FIELDS = ("id", "name", "type", "startTime", "endTime")
ALIASES = {"startDate": "startTime", "endDate": "endTime"}  # the docs' own default filter says startDate
TIME_FIELDS = ("startTime", "endTime")
OPERATORS = {
    "==": "eq",
    "!=": "ne",
    "=lt=": "lt",
    "<": "lt",
    "=le=": "le",
    "<=": "le",
    "=gt=": "gt",
    ">": "gt",
    "=ge=": "ge",
    ">=": "ge",
    "=in=": "in",
    "=out=": "out",
}
_COMPARISON = re.compile(
    r"^\s*([A-Za-z_][\w.\-]*)\s*(=lt=|=le=|=gt=|=ge=|=in=|=out=|==|!=|<=|>=|<|>)\s*(.+?)\s*$", re.S
)


class QueryError(ValueError):
    """A bad query parameter; the message names it."""


@dataclass
class Comparison:
    selector: str  # "conversation.<field>" normalised, or "metadata.<key>"
    op: str
    values: list[Any]


@dataclass
class ListQuery:
    limit: int = DEFAULT_LIMIT
    offset: int = 0
    descending: bool = False
    sort: list[str] = field(default_factory=lambda: ["startTime"])
    start: datetime | None = None
    end: datetime | None = None
    end_explicit: bool = False
    filters: list[Comparison] = field(default_factory=list)


def parse_time(name: str, text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise QueryError(f'"{name}" must be an ISO 8601 date-time, e.g. 2021-08-09T18:30:00.000Z') from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _int(name: str, text: str, low: int, high: int) -> int:
    if not re.fullmatch(r"\s*\d+\s*", text):
        raise QueryError(f'"{name}" must be an integer between {low} and {high}')
    value = int(text)
    if not low <= value <= high:
        raise QueryError(f'"{name}" must be an integer between {low} and {high}')
    return value


def _selector(raw: str, param: str = "filter") -> str:
    parts = raw.split(".")
    if parts[0] == "conversation" and len(parts) >= 3 and parts[1] == "metadata":
        parts = parts[1:]
    if parts[0] == "metadata" and len(parts) >= 2:
        return "metadata." + ".".join(parts[1:])
    if parts[0] == "conversation" and len(parts) == 2:
        name = ALIASES.get(parts[1], parts[1])
        if name in FIELDS:
            return "conversation." + name
    raise QueryError(
        f'"{param}" selector {raw!r} is not supported: '
        "use conversation.(id|name|type|startTime|endTime) or metadata.<key>"
    )


def _split_outside(text: str, separators: tuple[str, ...]) -> list[str]:
    """Split on separators that are outside quotes and parentheses."""
    parts, buf, quote, depth, i = [], "", None, 0, 0
    while i < len(text):
        ch = text[i]
        if quote:
            buf += ch
            quote = None if ch == quote else quote
            i += 1
            continue
        if ch in "'\"":
            quote = ch
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if depth == 0:
            hit = next((s for s in separators if text[i : i + len(s)].lower() == s), None)
            if hit:
                parts.append(buf)
                buf = ""
                i += len(hit)
                continue
        buf += ch
        i += 1
    parts.append(buf)
    return parts


def _unquote(text: str) -> str:
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    return text


def parse_filter(text: str) -> list[Comparison]:
    """RSQL with AND only (``;`` or ``and``) over at most two selectors, as the docs restrict it."""
    if len(_split_outside(text, (",", " or "))) > 1:
        raise QueryError('"filter" must not use the OR operator ("," or "or"): the API does not support it')
    out = []
    for part in _split_outside(text, (";", " and ")):
        if not part.strip():
            raise QueryError('"filter" has an empty comparison')
        match = _COMPARISON.match(part)
        if not match:
            raise QueryError(f'"filter" comparison {part.strip()!r} is not valid RSQL (selector, operator, value)')
        selector, op, raw = _selector(match.group(1)), OPERATORS[match.group(2)], match.group(3)
        if op in ("in", "out"):
            if not (raw.startswith("(") and raw.endswith(")")):
                raise QueryError(f'"filter" =in=/=out= needs a parenthesised list, got {raw!r}')
            values: list[Any] = [_unquote(v) for v in _split_outside(raw[1:-1], (",",))]
        else:
            values = [_unquote(raw)]
        if selector.split(".", 1)[1] in TIME_FIELDS:
            values = [parse_time("filter", v) for v in values]
        out.append(Comparison(selector, op, values))
    if len({c.selector for c in out}) > 2:
        raise QueryError('"filter" may use at most two parameters')
    return out


def parse_query(query: Mapping[str, str], *, now: datetime) -> ListQuery:
    q = ListQuery()
    if "limit" in query:
        q.limit = _int("limit", query["limit"], 0, MAX_LIMIT)
    if "offset" in query:
        q.offset = _int("offset", query["offset"], 0, 2**31 - 1)
    order = query.get("order", "asc").strip().lower()
    if order not in ("asc", "desc"):
        raise QueryError('"order" must be "asc" or "desc"')
    q.descending = order == "desc"
    if query.get("sort", "").strip():
        q.sort = []
        for raw in query["sort"].split(","):
            selector = _selector(raw.strip(), "sort")
            if not selector.startswith("conversation."):
                raise QueryError('"sort" fields must be conversation.(id|name|type|startTime|endTime)')
            q.sort.append(selector.split(".", 1)[1])
    if query.get("filter", "").strip():
        q.filters = parse_filter(query["filter"])
    if "endTime" in query:
        q.end, q.end_explicit = parse_time("endTime", query["endTime"]), True
    if "startTime" in query:
        q.start = parse_time("startTime", query["startTime"])
    if not q.filters or q.start or q.end_explicit:
        # default window: endTime = now, startTime = endTime - 7 days (dropped when only a filter is given)
        q.end = q.end or now
        q.start = q.start or q.end - DEFAULT_WINDOW
        if q.start >= q.end:
            raise QueryError('"startTime" must be before "endTime"')
    return q


def _field(conv: Any, name: str) -> Any:
    if name == "startTime":
        return conv.start_time
    if name == "endTime":
        return conv.start_time + timedelta(seconds=conv.transcript.duration)
    if name == "type":
        return "meeting"
    return getattr(conv, name)


def _matches(conv: Any, comp: Comparison) -> bool:
    kind, name = comp.selector.split(".", 1)
    if kind == "metadata":
        actual = (conv.options.get("metadata") or {}).get(name)
        if actual is None:
            return comp.op in ("ne", "out")
        actual = str(actual)
    else:
        actual = _field(conv, name)
    first = comp.values[0]
    if comp.op == "eq":
        return fnmatch.fnmatchcase(actual, first) if isinstance(actual, str) else actual == first
    if comp.op == "ne":
        return not (fnmatch.fnmatchcase(actual, first) if isinstance(actual, str) else actual == first)
    if comp.op == "in":
        return actual in comp.values
    if comp.op == "out":
        return actual not in comp.values
    try:
        return {"lt": actual < first, "le": actual <= first, "gt": actual > first, "ge": actual >= first}[comp.op]
    except TypeError:
        return False


def select(conversations: list[Any], q: ListQuery) -> list[Any]:
    """Filter, sort and page. The window applies to startTime (a conversation still being processed may
    end after "now"); an explicit ``endTime`` also bounds the conversation's endTime, as documented."""
    kept = []
    for conv in conversations:
        if q.start is not None and not q.start <= conv.start_time <= q.end:
            continue
        if q.end_explicit and _field(conv, "endTime") > q.end:
            continue
        if all(_matches(conv, c) for c in q.filters):
            kept.append(conv)
    kept.sort(key=lambda c: (*(_field(c, f) for f in q.sort), c.id), reverse=q.descending)
    return kept[q.offset : q.offset + q.limit]
