"""Where a conversation's ledger lives: an S3 object shared by every writer, or one task's state.

Every change is a mutation (``symbl_airflow.appends.ledger``) applied to a freshly read copy and
written back conditionally (``If-Match`` on the ETag, ``If-None-Match: *`` to create), so concurrent
writers never overwrite each other: the loser re-reads and re-applies, or learns it must not go on.
"""

from __future__ import annotations

import copy
import json
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from symbl_airflow.appends.ledger import LEDGER_FILE_NAME, Ledger, LedgerConflict, LedgerError

if TYPE_CHECKING:
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

_CONFLICT_CODES = ("PreconditionFailed", "412", "ConditionalRequestConflict", "409")


class LedgerStore:
    """Load a ledger and apply mutations with optimistic concurrency (re-read and re-apply on conflict)."""

    uri: str
    shared = True  # False: only one task instance ever writes it (no lease needed)

    def __init__(self) -> None:
        self._lock = threading.Lock()  # the upload's lease-renewal thread writes too

    def load(self) -> Ledger:
        raise NotImplementedError

    def _write(self, ledger: Ledger) -> None:
        """Write ``ledger`` if the stored one still has ``ledger.etag`` (none: only if absent)."""
        raise NotImplementedError

    def update(self, *mutations: Callable[[Ledger], None], attempts: int = 8, ledger: Ledger | None = None) -> Ledger:
        with self._lock:
            for attempt in range(attempts):
                current = ledger if (ledger is not None and attempt == 0) else self.load()
                working = copy.deepcopy(current)
                for mutate in mutations:
                    mutate(working)
                if working.content() == current.content():
                    return current  # nothing changed: no write (and never a new file for a no-op)
                try:
                    self._write(working)
                except LedgerConflict:
                    if attempt == attempts - 1:
                        raise
                    time.sleep(min(0.05 * 2**attempt, 1.0))
                    continue
                working.exists = True
                working.upgraded_from = None
                return working
        raise AssertionError("unreachable")


def split_s3_uri(uri: str) -> tuple[str, str]:
    """``(bucket, key)`` of a ``ledger_uri``; ``LedgerError`` saying what one looks like."""
    from symbl_airflow.s3 import split_s3_uri as split

    try:
        return split(uri, what="ledger_uri")
    except ValueError:
        raise LedgerError(
            f"ledger_uri {uri!r} must look like 's3://bucket/conversation-prefix/{LEDGER_FILE_NAME}'"
        ) from None


class S3LedgerStore(LedgerStore):
    """The ledger as an S3 object; S3 conditional writes (``If-Match`` / ``If-None-Match``) order writers."""

    def __init__(self, s3_hook: S3Hook, uri: str) -> None:
        super().__init__()
        self.s3_hook = s3_hook
        self.uri = uri
        self.bucket, self.key = split_s3_uri(uri)

    def load(self) -> Ledger:
        from botocore.exceptions import ClientError

        try:
            obj = self.s3_hook.get_conn().get_object(Bucket=self.bucket, Key=self.key)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "NotFound"):
                return Ledger(uri=self.uri)
            raise
        return Ledger.parse(self.uri, obj["Body"].read(), etag=obj.get("ETag"))

    def _write(self, ledger: Ledger) -> None:
        from botocore.exceptions import ClientError

        condition = {"IfMatch": ledger.etag} if ledger.etag else {"IfNoneMatch": "*"}
        try:
            resp = self.s3_hook.get_conn().put_object(
                Bucket=self.bucket,
                Key=self.key,
                Body=ledger.to_json().encode(),
                ContentType="application/json",
                **condition,
            )
        except ClientError as exc:
            code = str(exc.response.get("Error", {}).get("Code"))
            # If-Match on an object deleted meanwhile: S3 says NoSuchKey; it changed all the same (re-read)
            if code in _CONFLICT_CODES or (ledger.etag and code in ("NoSuchKey", "404")):
                raise LedgerConflict(f"{self.uri} changed since it was read") from None
            raise
        ledger.etag = resp.get("ETag")


class TaskStateLedgerStore(LedgerStore):
    """Without a ledger location: the same record in the task instance's ``task_state_store``.

    It holds across that task instance's retries and deferrals only; no other task or run sees it.
    """

    shared = False
    KEY = "symbl_ledger"

    def __init__(self, store: Any, uri: str = "task_state_store") -> None:
        super().__init__()
        self.store = store
        self.uri = uri
        self._memory: str | None = None

    def load(self) -> Ledger:
        raw = self.store.get(self.KEY) if self.store is not None else self._memory
        if not raw:
            return Ledger(uri=self.uri)
        ledger = Ledger.parse(self.uri, raw if isinstance(raw, str) else json.dumps(raw), etag="task")
        return ledger

    def _write(self, ledger: Ledger) -> None:
        raw = ledger.to_json()
        if self.store is not None:
            self.store.set(self.KEY, raw)
        else:
            self._memory = raw
        ledger.etag = "task"
