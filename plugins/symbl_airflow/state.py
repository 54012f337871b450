"""Incremental state kept beside the videos: which S3 parts a Symbl conversation already holds.

One small JSON object per conversation (by default ``<conversation prefix>/_symbl.json``), so a later
DAG run appends only new parts to the same Symbl conversation. It is written after every part Symbl
accepts, never before, and with a conditional PUT (``If-Match`` on its ETag) so two writers cannot
silently overwrite each other.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

STATE_FILE_NAME = "_symbl.json"
STATE_VERSION = 1


class StateConflictError(RuntimeError):
    """Another writer changed the state file since it was read."""


@dataclass
class ConversationState:
    """Parsed state file. ``parts`` maps the S3 URI of each appended part to its record."""

    uri: str
    conversation_id: str | None = None
    parts: dict[str, dict] = field(default_factory=dict)
    etag: str | None = None  # of the state object itself, for conditional writes

    def appended(self, uri: str) -> dict | None:
        return self.parts.get(uri)

    def to_json(self) -> str:
        ordered = sorted(self.parts.items(), key=lambda kv: kv[1].get("seq", 0))
        return json.dumps(
            {
                "version": STATE_VERSION,
                "conversation_id": self.conversation_id,
                "updated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "parts": [{"uri": uri, **record} for uri, record in ordered],
            },
            indent=2,
        )


def _split(uri: str) -> tuple[str, str]:
    if not uri.startswith("s3://") or "/" not in uri[5:]:
        raise ValueError(f"state_uri {uri!r} must look like 's3://bucket/prefix/{STATE_FILE_NAME}'")
    bucket, _, key = uri[5:].partition("/")
    return bucket, key


def load_state(s3_hook: S3Hook, uri: str) -> ConversationState:
    from botocore.exceptions import ClientError

    bucket, key = _split(uri)
    try:
        obj = s3_hook.get_conn().get_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "NotFound"):
            return ConversationState(uri=uri)
        raise
    try:
        data = json.loads(obj["Body"].read())
        parts = {p["uri"]: {k: v for k, v in p.items() if k != "uri"} for p in data.get("parts", [])}
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(
            f"state file {uri} is not valid symbl-airflow state ({exc}); fix or delete it (deleting it makes "
            "the next run start a new Symbl conversation)"
        ) from exc
    return ConversationState(uri=uri, conversation_id=data.get("conversation_id"), parts=parts, etag=obj.get("ETag"))


def save_state(s3_hook: S3Hook, state: ConversationState) -> None:
    """Write the state; refuse when someone else wrote it since we read it."""
    from botocore.exceptions import ClientError

    bucket, key = _split(state.uri)
    kwargs = {"IfMatch": state.etag} if state.etag else {"IfNoneMatch": "*"}
    try:
        resp = s3_hook.get_conn().put_object(
            Bucket=bucket,
            Key=key,
            Body=state.to_json().encode(),
            ContentType="application/json",
            **kwargs,
        )
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in (
            "PreconditionFailed",
            "412",
            "ConditionalRequestConflict",
        ):
            raise StateConflictError(
                f"state file {state.uri} was changed by another run while this one appended; runs of one "
                "conversation must not overlap (the example DAG sets max_active_runs=1)"
            ) from None
        raise
    state.etag = resp.get("ETag")


def record_part(state: ConversationState, uri: str, *, etag: str, size: int, job_id: str, conversation_id: str):
    state.conversation_id = conversation_id
    state.parts[uri] = {
        "seq": len(state.parts) + 1,
        "etag": etag,
        "size": size,
        "job_id": job_id,
        "appended_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
