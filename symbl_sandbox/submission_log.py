"""The submission log: every accepted submission (one that got a job), in arrival order.

It is what tests check "each part exactly once, in order" against, served at ``GET /sandbox/submissions``
(and the original ``GET /sandbox/ledger``). Rejected requests never appear: only what Symbl would process.
Facts learnt while the job runs (a URL's bytes, the media's duration) are filled in from the job.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any


class SubmissionLog:
    def __init__(self) -> None:
        self.submissions: list[dict[str, Any]] = []
        self._by_job: dict[str, dict[str, Any]] = {}

    def record(self, **entry: Any) -> dict[str, Any]:
        entry = {
            "seq": len(self.submissions) + 1,
            "receivedAt": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            **entry,
        }
        self.submissions.append(entry)
        self._by_job[entry["jobId"]] = entry
        return entry

    def update(self, job_id: str, **fields: Any) -> None:
        if job_id in self._by_job:
            self._by_job[job_id].update(fields)

    def follow(self, job) -> None:
        """A model status listener: copy what the job learnt about its media into its entry."""
        entry = self._by_job.get(job.id)
        if entry is None:
            return
        if job.sha256 is not None and entry.get("sha256") is None:
            entry.update(sha256=job.sha256, size=job.size)
        if job.content_type is not None and entry.get("contentType") is None:
            entry["contentType"] = job.content_type
        if job.media_seconds is not None:
            entry["mediaSeconds"] = round(job.media_seconds, 3)

    def clear(self) -> None:
        self.submissions.clear()
        self._by_job.clear()
