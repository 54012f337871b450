"""What a final wait saw, written to the conversation's ledger: the operator's own wait, or the sensor's.

A job's outcome is a fact about Symbl, not a send: recording it needs no lease (``job_finished`` only
changes a part that still holds that very job), so a waiter never competes with the writer that
appends the next part. Writes are conditional like every other mutation (a conflict re-reads and
re-applies); a ledger with nothing to change is not written at all, and a missing one never created.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from symbl_airflow.appends import ledger as L

if TYPE_CHECKING:
    from symbl_airflow.appends.stores import LedgerStore

#: The job states a wait can record; anything else is still running (or unknown) and stays ``accepted``.
TERMINAL = (L.COMPLETED, L.FAILED)


def record_job_outcomes(store: LedgerStore, statuses: Mapping[str, str]) -> dict[str, str]:
    """Mark the ledger's parts whose job ``statuses`` says completed / failed; ``{part uri: state}`` changed."""
    done = {job_id: status for job_id, status in statuses.items() if status in TERMINAL}
    if not done:
        return {}
    ledger = store.load()
    changes = {
        part.uri: (part.job_id, done[part.job_id])
        for part in ledger.parts
        if part.job_id in done and part.state == L.ACCEPTED
    }
    if not changes:
        return {}
    store.update(*(L.job_finished(uri, job_id, status) for uri, (job_id, status) in changes.items()), ledger=ledger)
    return {uri: status for uri, (_, status) in changes.items()}
