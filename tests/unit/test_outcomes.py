"""record_job_outcomes: what a final wait saw, in the ledger; one row per case (in-memory store, no network)."""

from __future__ import annotations

import pytest

from symbl_airflow.appends import ledger as L
from symbl_airflow.appends.outcomes import record_job_outcomes
from tests.unit.test_engine import MemoryStore

pytestmark = pytest.mark.unit

W = L.Writer(dag_id="d", run_id="r", task_id="append", try_number=1, hostname="w", token="held")
P1, P2 = "s3://b/c/part-001.mp4", "s3://b/c/part-002.mp4"


def _store() -> MemoryStore:
    store = MemoryStore()
    store.update(
        L.acquire(W, 600),
        L.intent(W, P1, "e1", 1),
        L.accepted(W, P1, "conv", "j1"),
        L.intent(W, P2, "e2", 1),
        L.accepted(W, P2, "conv", "j2"),
    )
    return store


@pytest.mark.parametrize(
    ("statuses", "changed", "states", "stopped"),
    [
        ({"j1": "completed", "j2": "completed"}, {P1: "completed", P2: "completed"}, ["completed", "completed"], None),
        ({"j1": "completed", "j2": "failed"}, {P1: "completed", P2: "failed"}, ["completed", "failed"], "j2"),
        ({"j1": "in_progress", "j2": "scheduled"}, {}, ["accepted", "accepted"], None),  # not an outcome yet
        ({"other": "completed"}, {}, ["accepted", "accepted"], None),  # a job this ledger does not hold
        ({}, {}, ["accepted", "accepted"], None),
    ],
)
def test_outcomes(statuses, changed, states, stopped):
    store = _store()
    writes = store.writes
    assert record_job_outcomes(store, statuses) == changed
    ledger = store.load()
    assert [p.state for p in ledger.parts] == states
    assert (ledger.stopped or {}).get("job_id") == stopped
    assert store.writes == writes + (1 if changed else 0)  # one conditional write, none for nothing
    assert ledger.lease and ledger.lease.token == "held"  # recorded without the lease, which stays the writer's


def test_recorded_again_is_no_write_and_a_missing_ledger_is_never_created():
    store = _store()
    record_job_outcomes(store, {"j1": "completed"})
    writes = store.writes
    assert record_job_outcomes(store, {"j1": "completed"}) == {}
    assert store.writes == writes
    empty = MemoryStore()
    assert record_job_outcomes(empty, {"j1": "completed"}) == {}
    assert empty.raw is None
