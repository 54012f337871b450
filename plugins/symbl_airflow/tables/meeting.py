"""Which conversation the rows describe: its key, its videos and the meeting date (the partition).

The meeting date rule, first that applies:

1. the operator's ``meeting_date`` (``YYYY-MM-DD``), when given;
2. the creation time in the first video's MP4 header (``mvhd``; the recorder's clock, UTC);
3. the first video's S3 ``LastModified`` (its upload time, UTC);
4. a date in the first video's key: ``2026/12/05/`` or ``2026-12-05``;
5. the conversation's ``startTime`` at Symbl (when it was processed), so there is always a partition.

The first video is the first part of the conversation in the ledger (append order), else the first of
the sources the tables were built from before, else the first source of this append.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

#: Rules whose date comes from the first video object itself (reused while its ETag is unchanged).
VIDEO_RULES = ("mp4_creation_time", "s3_last_modified")
#: Ledger part states whose video is in the Symbl conversation.
IN_CONVERSATION = ("accepted", "completed")
_KEY_DATE = re.compile(r"(?<!\d)(\d{4})([/-])(\d{2})\2(\d{2})(?!\d)")


@dataclass(frozen=True)
class MeetingFacts:
    conversation_key: str
    meeting_date: date
    #: which rule gave the date: param, mp4_creation_time, s3_last_modified, key_date, conversation_start
    meeting_date_from: str
    source_uris: tuple[str, ...]


def parse_meeting_date(value: object) -> date | None:
    """The ``meeting_date`` param: None/empty, or a date ``YYYY-MM-DD`` (a clear error otherwise)."""
    if value is None or (isinstance(value, str) and value.strip() in ("", "None", "null")):
        return None
    if isinstance(value, datetime):
        return value.astimezone(UTC).date() if value.tzinfo else value.date()
    if isinstance(value, date):
        return value
    text = str(value).strip()
    try:
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            raise ValueError(text)
        return date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"meeting_date must be a date like '2026-12-05', got {value!r}") from None


def key_date(key: str) -> date | None:
    """The last valid ``YYYY/MM/DD`` or ``YYYY-MM-DD`` in an S3 key, e.g. ``rec/2026/12/05/part-1.mp4``."""
    found = None
    for match in _KEY_DATE.finditer(key):
        try:
            found = date(int(match.group(1)), int(match.group(3)), int(match.group(4)))
        except ValueError:
            continue
    return found


def _s3(uri: str) -> tuple[str, str]:
    from symbl_airflow.s3 import split_s3_uri

    return split_s3_uri(uri)


def read_json_object(client, uri: str) -> Any | None:
    """A small JSON object from S3, or None when it does not exist."""
    from botocore.exceptions import ClientError

    bucket, key = _s3(uri)
    try:
        body = client.get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError as exc:
        if str(exc.response.get("Error", {}).get("Code")) in ("404", "NoSuchKey", "NotFound"):
            return None
        raise
    return json.loads(body)


def ledger_sources(client, ledger_uri: str) -> list[str] | None:
    """The videos in the conversation by its ledger, in append order; None without a ledger file."""
    ledger = read_json_object(client, ledger_uri)
    if not isinstance(ledger, Mapping):
        return None
    parts = [p for p in ledger.get("parts") or [] if isinstance(p, Mapping) and p.get("state") in IN_CONVERSATION]
    return [str(p["uri"]) for p in sorted(parts, key=lambda p: p.get("seq") or 0) if p.get("uri")]


def conversation_sources(
    client, append: Mapping[str, Any] | None, previous: Sequence[str] = ()
) -> tuple[list[str], bool]:
    """``(source URIs, from the ledger?)``: the ledger's parts, else the earlier sources plus this append's."""
    append = append or {}
    if isinstance(append.get("ledger_uri"), str) and append["ledger_uri"].startswith("s3://"):
        found = ledger_sources(client, append["ledger_uri"])
        if found is not None:
            return found, True
    merged = list(dict.fromkeys([*previous, *(s for s in append.get("sources") or [] if isinstance(s, str))]))
    return merged, False


def conversation_key(
    given: object, append: Mapping[str, Any] | None, sources: Sequence[str], output_prefix: str, conversation_id: str
) -> str:
    """The operator's ``conversation_key``, else the folder name of the ledger or first video, else the
    output folder's name, else the conversation id."""
    if isinstance(given, str) and given.strip() and given.strip() not in ("None", "null"):
        return given.strip()
    ledger_uri = (append or {}).get("ledger_uri")
    for path in ([_s3(ledger_uri)[1]] if isinstance(ledger_uri, str) else []) + [_s3(s)[1] for s in sources[:1]]:
        folder = path.rsplit("/", 1)[0] if "/" in path else ""
        if folder:
            return folder.rsplit("/", 1)[-1]
    return output_prefix.rstrip("/").rsplit("/", 1)[-1] or conversation_id


def meeting_date(
    s3_hook: S3Hook,
    first_source: str | None,
    *,
    given: date | None,
    conversation_start: datetime | None,
    log,
    known: Mapping[str, Any] | None = None,
) -> tuple[date, str, dict[str, Any] | None]:
    """``(date, rule, first video {"uri", "etag"})`` by the rule in the module docstring.

    ``known`` is the earlier write's ``{"first_source", "meeting_date", "meeting_date_from"}``: when the
    first video is the same object (URI and ETag), its date is reused without reading the header again.
    A video that cannot be read moves on to the next rule.
    """
    if given is not None:
        return given, "param", None
    if first_source:
        from botocore.exceptions import BotoCoreError, ClientError

        from symbl_airflow.sources import VideoSourceError, inspect_source

        bucket, key = _s3(first_source)
        try:
            head = s3_hook.get_conn().head_object(Bucket=bucket, Key=key)
        except (ClientError, BotoCoreError) as exc:
            log.info("Meeting date: cannot HEAD the first video %s (%s); trying its key", first_source, exc)
            head = None
        if head is not None:
            video = {"uri": first_source, "etag": str(head.get("ETag") or "").strip('"')}
            if known and known.get("first_source") == video and known.get("meeting_date_from") in VIDEO_RULES:
                try:
                    return date.fromisoformat(known["meeting_date"]), known["meeting_date_from"], video
                except (TypeError, ValueError):
                    pass
            try:
                created = inspect_source(s3_hook, first_source).media.creation_time
            except VideoSourceError as exc:
                log.info("Meeting date: no MP4 header date in %s (%s)", first_source, exc)
                created = None
            if created is not None:
                return created.astimezone(UTC).date(), "mp4_creation_time", video
            modified = head.get("LastModified")
            if isinstance(modified, datetime):
                return modified.astimezone(UTC).date(), "s3_last_modified", video
        found = key_date(key)
        if found is not None:
            return found, "key_date", None
    if conversation_start is not None:
        return conversation_start.astimezone(UTC).date(), "conversation_start", None
    return datetime.now(UTC).date(), "processed_at", None
