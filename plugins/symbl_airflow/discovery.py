"""Which conversations have work: from a listing (scheduled mode) or from S3 notifications (event mode).

Both modes only *point* at conversation folders; each folder's ledger decides what is sent (see
``plan.new_parts``), so a duplicate, late or out-of-order notification is harmless.

The scheduled scan costs what changed, not what exists: one listing of the prefix (1,000 keys per
request) plus one small **index** object (``<prefix>_symbl_index.json``) that remembers, per folder,
a digest of (its ledger's ETag, its parts' keys and ETags) at which discovery last found nothing to
do. A folder whose digest is unchanged is skipped without reading its ledger. The index is only a
cache: a digest is a pure function of what S3 holds, so concurrent writers cannot make it lie, and
losing it costs one full read of the ledgers.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote_plus

from symbl_airflow.ledger import LEDGER_FILE_NAME, Ledger, LedgerError
from symbl_airflow.plan import new_parts

if TYPE_CHECKING:
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

INDEX_FILE_NAME = "_symbl_index.json"
PART_SUFFIX = ".mp4"
log = logging.getLogger(__name__)


@dataclass
class Discovery:
    """What one discovery found: the work items (capped) and what it cost."""

    work: list[dict] = field(default_factory=list)
    deferred: list[str] = field(default_factory=list)  # had work, left to the next run by the cap
    requests: dict[str, int] = field(default_factory=lambda: {"list": 0, "get": 0, "put": 0})
    folders: int = 0
    skipped_unchanged: int = 0


def normalize_prefix(prefix: str) -> str:
    return prefix if not prefix or prefix.endswith("/") else prefix + "/"


def split_part_key(key: str, prefix: str) -> tuple[str, str] | None:
    """``<prefix><conversation>/<part>`` -> (conversation, part), or None for anything else."""
    if not key.startswith(prefix):
        return None
    conversation, _, part = key[len(prefix) :].partition("/")
    if not conversation or not part or "/" in part:
        return None
    return conversation, part


def is_part(name: str) -> bool:
    return name.lower().endswith(PART_SUFFIX) and not name.startswith("_")


def folder_digest(ledger_etag: str | None, parts: dict[str, str]) -> str:
    text = json.dumps([ledger_etag or "", sorted(parts.items())])
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def folder_work(
    bucket: str, prefix: str, output_prefix: str, conversation: str, parts: dict[str, str], ledger: Ledger
) -> tuple[dict | None, dict]:
    """The work item for one folder (None: nothing to do) and what the ledger says of its parts."""
    listing = {f"s3://{bucket}/{prefix}{conversation}/{name}": etag for name, etag in parts.items()}
    found = new_parts(ledger, listing)
    for uri in found["changed"]:
        log.warning("%s changed since it was appended; it will not be re-sent", uri)
    unreported = [uri for uri in found["late"] if uri not in ledger.late]
    for uri in unreported:
        log.warning("%s is late (a later part is already appended); it is not appended", uri)
    if not found["new"] and not unreported and not found["unconfirmed"]:
        if found["blocked"]:
            log.warning("%s: blocked (%s); see its ledger %s", conversation, ", ".join(found["blocked"]), ledger.uri)
        return None, found
    log.info(
        "%s: %d new part(s) of %d, %d late, %d unconfirmed",
        conversation,
        len(found["new"]),
        len(listing),
        len(unreported),
        len(found["unconfirmed"]),
    )
    # Late parts are reported by the append task (never sent); unconfirmed ones are settled or refused there.
    return {
        "source": sorted(found["new"] + unreported + found["unconfirmed"]),
        "ledger_uri": ledger.uri,
        "output_uri": f"s3://{bucket}/{normalize_prefix(output_prefix)}{conversation}/",
    }, found


class _Counted:
    """S3 calls through the hook's client, counted for the run's log and the benchmark."""

    def __init__(self, s3_hook: S3Hook, result: Discovery) -> None:
        self.client = s3_hook.get_conn()
        self.result = result

    def list_folder_objects(self, bucket: str, prefix: str) -> Iterable[dict]:
        kwargs: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix}
        while True:
            self.result.requests["list"] += 1
            page = self.client.list_objects_v2(**kwargs)
            yield from page.get("Contents", [])
            if not page.get("IsTruncated"):
                return
            kwargs["ContinuationToken"] = page["NextContinuationToken"]

    def get(self, bucket: str, key: str) -> bytes | None:
        from botocore.exceptions import ClientError

        self.result.requests["get"] += 1
        try:
            return self.client.get_object(Bucket=bucket, Key=key)["Body"].read()
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "NotFound"):
                return None
            raise

    def put(self, bucket: str, key: str, body: bytes) -> None:
        self.result.requests["put"] += 1
        self.client.put_object(Bucket=bucket, Key=key, Body=body, ContentType="application/json")


def _ledger(s3: _Counted, bucket: str, prefix: str, conversation: str) -> Ledger:
    uri = f"s3://{bucket}/{prefix}{conversation}/{LEDGER_FILE_NAME}"
    raw = s3.get(bucket, f"{prefix}{conversation}/{LEDGER_FILE_NAME}")
    if raw is None:
        return Ledger(uri=uri)
    try:
        return Ledger.parse(uri, raw)
    except LedgerError as exc:
        log.error("%s", exc)  # its append task fails with the same message
        return Ledger(uri=uri)


def scan(
    s3_hook: S3Hook,
    bucket: str,
    prefix: str,
    output_prefix: str,
    *,
    limit: int,
    use_index: bool = True,
) -> Discovery:
    """Scheduled mode: one listing, the index, and only the ledgers of folders that changed."""
    prefix = normalize_prefix(prefix)
    result = Discovery()
    s3 = _Counted(s3_hook, result)
    folders: dict[str, dict[str, str]] = {}
    ledger_etags: dict[str, str] = {}
    for meta in s3.list_folder_objects(bucket, prefix):
        split = split_part_key(meta["Key"], prefix)
        if split is None:
            continue
        conversation, name = split
        etag = str(meta.get("ETag", "")).strip('"')
        if name == LEDGER_FILE_NAME:
            ledger_etags[conversation] = etag
            folders.setdefault(conversation, {})
        elif is_part(name):
            folders.setdefault(conversation, {})[name] = etag
    result.folders = len(folders)
    index_key = f"{prefix}{INDEX_FILE_NAME}"
    index: dict[str, str] = {}
    if use_index:
        raw = s3.get(bucket, index_key)
        try:
            index = dict(json.loads(raw).get("folders", {})) if raw else {}
        except (ValueError, AttributeError):
            log.warning("ignoring an unreadable %s; every ledger is read this time", index_key)
    fresh: dict[str, str] = {}
    for conversation in sorted(folders):
        parts = folders[conversation]
        if not parts:
            continue
        digest = folder_digest(ledger_etags.get(conversation), parts)
        if index.get(conversation) == digest:
            fresh[conversation] = digest
            result.skipped_unchanged += 1
            continue
        if len(result.work) >= limit:
            result.deferred.append(conversation)
            continue
        if conversation in ledger_etags:
            ledger = _ledger(s3, bucket, prefix, conversation)
        else:  # the listing shows it has none: nothing to read
            ledger = Ledger(uri=f"s3://{bucket}/{prefix}{conversation}/{LEDGER_FILE_NAME}")
        item, _ = folder_work(bucket, prefix, output_prefix, conversation, parts, ledger)
        if item is None:
            fresh[conversation] = digest
        else:
            result.work.append(item)
    if use_index and fresh != index:
        s3.put(bucket, index_key, json.dumps({"version": 1, "folders": fresh}, sort_keys=True).encode())
    return result


# ---------------------------------------------------------------------------------------------- events
def s3_objects_in(payload: Any) -> list[tuple[str, str]]:
    """Every (bucket, key) an S3 notification names, wherever it sits in an asset event's extra.

    Accepts SQS messages carrying S3 event notifications (``Records[].s3``), the same wrapped in SNS
    (``Message``), and EventBridge's ``detail.bucket.name`` / ``detail.object.key``. ``s3:TestEvent``
    and anything else is ignored. Keys are URL-decoded, as S3 encodes them in notifications.
    """
    found: list[tuple[str, str]] = []

    def walk(node: Any) -> None:
        if isinstance(node, str):
            text = node.strip()
            if text.startswith("{") and ("Records" in text or "detail" in text or "Message" in text):
                try:
                    walk(json.loads(text))
                except ValueError:
                    return
            return
        if isinstance(node, list):
            for item in node:
                walk(item)
            return
        if not isinstance(node, dict):
            return
        s3 = node.get("s3")
        if isinstance(s3, dict) and str(node.get("eventName", "ObjectCreated")).startswith("ObjectCreated"):
            bucket = (s3.get("bucket") or {}).get("name")
            key = (s3.get("object") or {}).get("key")
            if bucket and key:
                found.append((bucket, unquote_plus(key)))
            return
        detail = node.get("detail")
        if (
            isinstance(detail, dict)
            and isinstance(detail.get("bucket"), dict)
            and isinstance(detail.get("object"), dict)
        ):
            if str(node.get("detail-type", "Object Created")) == "Object Created":
                found.append((detail["bucket"].get("name"), unquote_plus(detail["object"].get("key", ""))))
            return
        for value in node.values():
            walk(value)

    walk(payload)
    return [(b, k) for b, k in found if b and k]


def from_events(
    s3_hook: S3Hook,
    events: Iterable[Any],
    bucket: str,
    prefix: str,
    output_prefix: str,
    *,
    limit: int,
) -> tuple[Discovery, list[tuple[str, str]]]:
    """Event mode: the conversations the notifications name (parts under ``prefix`` only), each listed alone."""
    prefix = normalize_prefix(prefix)
    result = Discovery()
    s3 = _Counted(s3_hook, result)
    named: list[tuple[str, str]] = []
    conversations: list[str] = []
    ignored: list[tuple[str, str]] = []
    for event in events:
        for obj_bucket, key in s3_objects_in(event):
            split = split_part_key(key, prefix) if obj_bucket == bucket else None
            if split is None or not is_part(split[1]):
                ignored.append((obj_bucket, key))
                continue
            named.append((obj_bucket, key))
            if split[0] not in conversations:
                conversations.append(split[0])
    for conversation in conversations:
        if len(result.work) >= limit:
            result.deferred.append(conversation)
            continue
        parts: dict[str, str] = {}
        ledger_present = False
        for meta in s3.list_folder_objects(bucket, f"{prefix}{conversation}/"):
            split = split_part_key(meta["Key"], prefix)
            if split is None:
                continue
            if split[1] == LEDGER_FILE_NAME:
                ledger_present = True
            elif is_part(split[1]):
                parts[split[1]] = str(meta.get("ETag", "")).strip('"')
        uri = f"s3://{bucket}/{prefix}{conversation}/{LEDGER_FILE_NAME}"
        ledger = _ledger(s3, bucket, prefix, conversation) if ledger_present else Ledger(uri=uri)
        item, _ = folder_work(bucket, prefix, output_prefix, conversation, parts, ledger)
        if item is not None:
            result.work.append(item)
    result.folders = len(conversations)
    return result, ignored
