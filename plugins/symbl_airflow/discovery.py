"""Which conversations have work: from a listing (scheduled mode) or from S3 notifications (event mode).

Both modes only *point* at conversation folders; each folder's ledger decides what is sent (see
``plan.new_parts``), so a duplicate, late or out-of-order notification is harmless.

**Layout.** A conversation is a folder ``folder_depth`` levels below the prefix: with prefix ``rec/``
and depth 2, ``rec/2026-12-01/standup/part-1.mp4`` is part ``part-1.mp4`` of conversation
``2026-12-01/standup``. Every object under the prefix is accounted for:

- media (audio or video, by extension; the append task checks the content) directly in a
  conversation folder: a **part**;
- the pipeline's own files (``_symbl*.json``: ledgers, this index) and folder markers (keys ending
  in ``/``): infrastructure, left out silently;
- everything else is **ignored with a reason**, in the task log and in ``Discovery.ignored``: not
  media (``notes.txt``, ``captions.vtt``, ``slides.jpg`` …); above the conversation folders (a file
  directly under the prefix when the depth is 2); or in a *subfolder* of a conversation folder
  (``standup/cam1/part-1.mp4`` with depth 1). Subfolders are not merged into their conversation:
  two camera angles or a year of dated folders glued into one Symbl conversation cannot be undone,
  while a reported file can be picked up by setting ``folder_depth`` right. The reason says which
  depth would make it a part.

The scheduled scan costs what changed, not what exists: one listing of the prefix (1,000 keys per
request) plus one small **index** object (``<prefix>_symbl_index.json``) that remembers, per folder,
a digest of (its ledger's ETag, its objects' keys and ETags) at which discovery last found nothing to
do. A folder whose digest is unchanged is skipped without reading its ledger, and its ignored objects
(reported when the folder last changed) are not reported again. The index is only a cache: a digest
is a pure function of what S3 holds, so concurrent writers cannot make it lie, and losing it costs one
full read of the ledgers.
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
from symbl_airflow.media import formats
from symbl_airflow.ordering import LEGACY_PART_ORDER, NATURAL, check_part_order, conversation_order, sorted_parts
from symbl_airflow.plan import new_parts

if TYPE_CHECKING:
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

#: Discovery's cache of folder digests, at the root of the input prefix (not the insights' ``index.json``).
DISCOVERY_INDEX_FILE_NAME = "_symbl_index.json"
INDEX_VERSION = 2
#: Audio and video extensions a part may have: the media package's table (``media.formats``), so
#: discovery and the append task agree; the task then decides by content.
MEDIA_EXTENSIONS = formats.MEDIA_EXTENSIONS
#: The most ignored objects one discovery returns by name (the log and the count cover the rest).
MAX_IGNORED_NAMED = 1000
log = logging.getLogger(__name__)


@dataclass
class Discovery:
    """What one discovery found: the work items (capped), what it left out and why, and what it cost."""

    work: list[dict] = field(default_factory=list)
    deferred: list[str] = field(default_factory=list)  # had work, left to the next run by the cap
    #: ``{"uri", "reason"}`` for objects that are not parts, newly seen (at most MAX_IGNORED_NAMED).
    ignored: list[dict] = field(default_factory=list)
    ignored_count: int = 0  # all of them, named or not
    requests: dict[str, int] = field(default_factory=lambda: {"list": 0, "get": 0, "put": 0})
    folders: int = 0
    skipped_unchanged: int = 0

    def ignore(self, uri: str, reason: str, *, media: bool = False) -> None:
        self.ignored_count += 1
        if len(self.ignored) < MAX_IGNORED_NAMED:
            self.ignored.append({"uri": uri, "reason": reason})
        if self.ignored_count <= MAX_IGNORED_NAMED:
            # A recording left out is for a person to look at; a notes file next to it is not.
            (log.warning if media else log.info)("ignored, not a part: %s (%s)", uri, reason)
        elif self.ignored_count == MAX_IGNORED_NAMED + 1:
            log.info("more objects are not parts; only the first %d are named", MAX_IGNORED_NAMED)


# ---------------------------------------------------------------------------------------------- layout
def normalize_prefix(prefix: str) -> str:
    return prefix if not prefix or prefix.endswith("/") else prefix + "/"


def check_folder_depth(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, str)) or not str(value).strip().isdigit():
        raise ValueError(
            f"folder_depth must be a whole number >= 1 (folders from the prefix to a conversation), got {value!r}"
        )
    depth = int(str(value).strip())
    if depth < 1:
        raise ValueError(
            f"folder_depth must be a whole number >= 1 (folders from the prefix to a conversation), got {value!r}"
        )
    return depth


def is_media_name(name: str) -> bool:
    return formats.extension(name) in MEDIA_EXTENSIONS


def is_infrastructure(name: str) -> bool:
    """The pipeline's own files (ledgers, discovery's index, whatever else it names ``_symbl*.json``)."""
    return name.startswith("_symbl") and name.endswith(".json")


@dataclass(frozen=True)
class Place:
    """Where one key sits in the layout."""

    kind: str  # "part" | "ledger" | "ignored" | "infrastructure" | "outside"
    conversation: str | None = None  # the folder it belongs to (parts, ledgers, and objects in a subfolder)
    name: str = ""  # relative to the conversation folder
    reason: str = ""


@dataclass(frozen=True)
class Layout:
    """Conversations are the folders ``depth`` levels below ``prefix`` in ``bucket``."""

    bucket: str
    prefix: str
    depth: int = 1

    @classmethod
    def of(cls, bucket: str, prefix: str, depth: Any = 1) -> Layout:
        return cls(bucket, normalize_prefix(prefix), check_folder_depth(depth))

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    def folder_key(self, conversation: str) -> str:
        return f"{self.prefix}{conversation}/"

    def ledger_uri(self, conversation: str) -> str:
        return self.uri(self.folder_key(conversation) + LEDGER_FILE_NAME)

    def place(self, key: str) -> Place:
        if not key.startswith(self.prefix):
            return Place("outside", reason=f"not under s3://{self.bucket}/{self.prefix}")
        rel = key[len(self.prefix) :]
        segments = rel.split("/")
        name = segments[-1]
        if not name or is_infrastructure(name) and len(segments) != self.depth + 1:
            return Place("infrastructure")  # a folder marker, or the index / a ledger of another depth
        media = is_media_name(name)
        if any(not segment for segment in segments[: min(self.depth, len(segments) - 1)]):
            return Place("ignored", reason="an empty folder name ('//') in its key: no conversation can be named")
        if len(segments) <= self.depth:
            pattern = self.prefix + "/".join(["<folder>"] * self.depth) + "/<part>"
            return Place(
                "ignored",
                reason=f"not in a conversation folder: with folder_depth={self.depth} parts are {pattern}, and this "
                f"object is {len(segments) - 1} folder(s) below the prefix"
                + (f" (folder_depth={len(segments) - 1} would make it a part)" if media and len(segments) > 1 else ""),
            )
        conversation = "/".join(segments[: self.depth])
        inner = "/".join(segments[self.depth :])
        if len(segments) > self.depth + 1:
            return Place(
                "ignored",
                conversation,
                inner,
                f"in subfolder {'/'.join(segments[self.depth : -1])}/ of conversation {conversation}: only objects "
                f"directly in a conversation folder are parts (folder_depth={self.depth})"
                + (
                    f"; folder_depth={len(segments) - 1} would make {'/'.join(segments[:-1])} a conversation of its own"
                    if media
                    else ""
                ),
            )
        if name == LEDGER_FILE_NAME:
            return Place("ledger", conversation, name)
        if is_infrastructure(name):
            return Place("infrastructure", conversation, name)
        if not media:
            extension = name.rsplit(".", 1)[-1].lower() if "." in name else ""
            what = f".{extension} files" if extension else "files without an extension"
            return Place("ignored", conversation, name, f"not audio or video: {what} are not appended")
        return Place("part", conversation, name)


# ---------------------------------------------------------------------------------------------- folders
@dataclass
class Folder:
    """One conversation folder as a listing shows it."""

    parts: dict[str, str] = field(default_factory=dict)  # name -> ETag
    ignored: dict[str, tuple[str, str, bool]] = field(default_factory=dict)  # name -> (ETag, reason, media)
    ledger_etag: str | None = None

    def digest(self) -> str:
        """Unchanged for a folder of parts only, so indexes written before non-parts counted stay valid."""
        objects = {**self.parts, **{name: etag for name, (etag, _, _) in self.ignored.items()}}
        text = json.dumps([self.ledger_etag or "", sorted(objects.items())])
        return hashlib.sha256(text.encode()).hexdigest()[:32]


def folder_digest(ledger_etag: str | None, parts: dict[str, str]) -> str:
    return Folder(parts=dict(parts), ledger_etag=ledger_etag).digest()


def _etag(meta: dict) -> str:
    return str(meta.get("ETag", "")).strip('"')


def _add(folders: dict[str, Folder], place: Place, meta: dict) -> None:
    folder = folders.setdefault(place.conversation, Folder())
    if place.kind == "part":
        folder.parts[place.name] = _etag(meta)
    elif place.kind == "ledger":
        folder.ledger_etag = _etag(meta)
    elif place.kind == "ignored":
        folder.ignored[place.name] = (_etag(meta), place.reason, is_media_name(place.name))


def folder_work(
    layout: Layout,
    output_prefix: str,
    conversation: str,
    parts: dict[str, str],
    ledger: Ledger,
    *,
    part_order: str = LEGACY_PART_ORDER,
) -> tuple[dict | None, dict]:
    """The work item for one folder (None: nothing to do) and what the ledger says of its parts."""
    listing = {layout.uri(layout.folder_key(conversation) + name): etag for name, etag in parts.items()}
    order = conversation_order(ledger.part_order, bool(ledger.parts), part_order)
    found = new_parts(ledger, listing, part_order=order)
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
        "source": sorted_parts(found["new"] + unreported + found["unconfirmed"], order),
        "ledger_uri": ledger.uri,
        "output_uri": f"s3://{layout.bucket}/{normalize_prefix(output_prefix)}{conversation}/",
        "conversation": conversation,
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


def _ledger(s3: _Counted, layout: Layout, conversation: str, present: bool) -> Ledger:
    uri = layout.ledger_uri(conversation)
    if not present:  # the listing shows it has none: nothing to read
        return Ledger(uri=uri)
    raw = s3.get(layout.bucket, layout.folder_key(conversation) + LEDGER_FILE_NAME)
    if raw is None:
        return Ledger(uri=uri)
    try:
        return Ledger.parse(uri, raw)
    except LedgerError as exc:
        log.error("%s", exc)  # its append task fails with the same message
        return Ledger(uri=uri)


def _report(result: Discovery, layout: Layout, conversation: str, folder: Folder) -> None:
    for name in sorted_parts(folder.ignored, "natural"):
        _, reason, media = folder.ignored[name]
        result.ignore(layout.uri(layout.folder_key(conversation) + name), reason, media=media)


def _read_index(s3: _Counted, layout: Layout) -> dict:
    key = layout.prefix + DISCOVERY_INDEX_FILE_NAME
    raw = s3.get(layout.bucket, key)
    if not raw:
        return {}
    try:
        data = json.loads(raw)
        if int(data.get("folder_depth", 1)) != layout.depth:
            log.info("%s was written for folder_depth=%s; every ledger is read this time", key, data["folder_depth"])
            return {}
        return dict(data.get("folders", {}))
    except (ValueError, AttributeError, TypeError):
        log.warning("ignoring an unreadable %s; every ledger is read this time", key)
        return {}


def scan(
    s3_hook: S3Hook,
    bucket: str,
    prefix: str,
    output_prefix: str,
    *,
    limit: int,
    use_index: bool = True,
    folder_depth: int = 1,
    part_order: str = NATURAL,
) -> Discovery:
    """Scheduled mode: one listing, the index, and only the ledgers of folders that changed."""
    layout = Layout.of(bucket, prefix, folder_depth)
    part_order = check_part_order(part_order)
    result = Discovery()
    s3 = _Counted(s3_hook, result)
    folders: dict[str, Folder] = {}
    loose: list[tuple[str, str, str]] = []  # (key, ETag, reason): not in any conversation folder
    for meta in s3.list_folder_objects(bucket, layout.prefix):
        place = layout.place(meta["Key"])
        if place.conversation is not None:
            _add(folders, place, meta)
        elif place.kind == "ignored":
            loose.append((meta["Key"], _etag(meta), place.reason))
    result.folders = sum(1 for f in folders.values() if f.parts)
    index = _read_index(s3, layout) if use_index else {}
    fresh: dict[str, str] = {}
    if loose:  # reported again only when they change
        digest = hashlib.sha256(json.dumps(sorted(loose)).encode()).hexdigest()[:32]
        if index.get("") != digest:
            for key, _, reason in sorted(loose, key=lambda x: x[0]):
                result.ignore(layout.uri(key), reason, media=is_media_name(key))
        fresh[""] = digest  # "" is never a conversation key
    for conversation in sorted_parts(folders, "natural"):
        folder = folders[conversation]
        digest = folder.digest()
        if index.get(conversation) == digest:
            fresh[conversation] = digest
            result.skipped_unchanged += 1 if folder.parts else 0
            continue
        _report(result, layout, conversation, folder)
        if not folder.parts:
            if folder.ignored:
                fresh[conversation] = digest
            continue
        if len(result.work) >= limit:
            result.deferred.append(conversation)
            continue
        ledger = _ledger(s3, layout, conversation, folder.ledger_etag is not None)
        item, _ = folder_work(layout, output_prefix, conversation, folder.parts, ledger, part_order=part_order)
        if item is None:
            fresh[conversation] = digest
        else:
            result.work.append(item)
    if use_index and fresh != index:
        body = {"version": INDEX_VERSION, "folder_depth": layout.depth, "folders": fresh}
        s3.put(bucket, layout.prefix + DISCOVERY_INDEX_FILE_NAME, json.dumps(body, sort_keys=True).encode())
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


@dataclass
class EventObjects:
    """What one run's notifications name, sorted: the conversations to look at, and the rest."""

    conversations: list[str] = field(default_factory=list)
    elsewhere: list[tuple[str, str]] = field(default_factory=list)  # (bucket, key) outside bucket/prefix
    own_writes: int = 0  # the pipeline's ledgers and index (a notification setup that lets them through)


def from_events(
    s3_hook: S3Hook,
    events: Iterable[Any],
    bucket: str,
    prefix: str,
    output_prefix: str,
    *,
    limit: int,
    folder_depth: int = 1,
    part_order: str = NATURAL,
) -> tuple[Discovery, EventObjects]:
    """Event mode: the conversations the notifications name, each listed alone (with its subfolders).

    A notification for any object in a conversation folder (a part, or a ``.txt`` beside it) points
    at that folder; its listing then accounts for every object in it, as the scan does. The
    pipeline's own writes point nowhere; objects outside ``bucket``/``prefix`` are returned in
    ``elsewhere`` (not reported as ignored: they may belong to other consumers of the queue).
    """
    layout = Layout.of(bucket, prefix, folder_depth)
    part_order = check_part_order(part_order)
    result = Discovery()
    named = EventObjects()
    s3 = _Counted(s3_hook, result)
    loose: dict[str, str] = {}
    for event in events:
        for obj_bucket, key in s3_objects_in(event):
            place = layout.place(key) if obj_bucket == bucket else Place("outside")
            if place.kind == "outside":
                named.elsewhere.append((obj_bucket, key))
            elif place.kind == "infrastructure" or place.kind == "ledger":
                named.own_writes += 1
            elif place.conversation is None:
                loose[key] = place.reason
            elif place.conversation not in named.conversations:
                named.conversations.append(place.conversation)
    for key, reason in loose.items():
        result.ignore(layout.uri(key), reason, media=is_media_name(key))
    for conversation in named.conversations:
        folders: dict[str, Folder] = {}
        for meta in s3.list_folder_objects(bucket, layout.folder_key(conversation)):
            place = layout.place(meta["Key"])
            if place.conversation == conversation:
                _add(folders, place, meta)
        folder = folders.get(conversation, Folder())
        _report(result, layout, conversation, folder)
        if not folder.parts:
            continue
        if len(result.work) >= limit:
            result.deferred.append(conversation)
            continue
        ledger = _ledger(s3, layout, conversation, folder.ledger_etag is not None)
        item, _ = folder_work(layout, output_prefix, conversation, folder.parts, ledger, part_order=part_order)
        if item is not None:
            result.work.append(item)
    result.folders = len(named.conversations)
    return result, named
