"""The order a conversation uses, from the ledger: the plan's late rule and sorted-list check, discovery's
classification, and what the ledger records (existing ledgers keep key order)."""

from __future__ import annotations

import json

import pytest

from symbl_airflow import ledger as L
from symbl_airflow import plan as P

pytestmark = pytest.mark.unit

NOW = 1_700_000_000.0
ME = L.Writer(dag_id="d", run_id="r", task_id="append", map_index=0, try_number=1, hostname="w", token="me")
URI = "s3://b/videos/z/Zoom Recording {}.mp4".format


def src(n: int) -> P.Source:
    return P.Source(URI(n), f"e{n}", 100 + n)


def appended(*numbers: int, part_order: str | None) -> L.Ledger:
    parts = [
        L.Part(uri=URI(n), seq=i + 1, etag=f"e{n}", size=100 + n, state="completed", job_id=f"j{n}")
        for i, n in enumerate(numbers)
    ]
    return L.Ledger(uri="s3://b/videos/z/_symbl.json", conversation_id="c", parts=parts, part_order=part_order)


def plan(ledger: L.Ledger, sources: list[P.Source], part_order: str = "natural") -> P.Plan:
    return P.plan_appends(ledger, sources, writer=ME, now=NOW, part_order=part_order)


def test_part_10_landing_later_is_not_late_in_natural_order():
    result = plan(appended(1, 2, 9, part_order="natural"), [src(1), src(2), src(9), src(10)])
    assert result.late == [] and result.already == [URI(1), URI(2), URI(9)]
    assert isinstance(result.action, P.Send) and result.action.source.uri == URI(10)


def test_a_ledger_from_before_part_order_keeps_key_order():
    """Its conversation was built in key order (1, 10, 2 ...): part 10 landing after part 9 is late there."""
    ledger = appended(1, 2, 9, part_order=None)
    result = plan(ledger, sorted([src(1), src(2), src(9), src(10)], key=lambda s: s.uri))
    assert result.late == [URI(10)] and isinstance(result.action, P.Done)
    found = P.new_parts(ledger, {URI(n): f"e{n}" for n in (1, 2, 9, 10)}, part_order="natural")
    assert found["late"] == [URI(10)] and found["new"] == []


def test_the_ledgers_order_wins_over_the_one_asked_for():
    result = plan(appended(1, 2, 9, part_order="natural"), [src(1), src(2), src(9), src(10)], part_order="key")
    assert result.late == [] and result.action.source.uri == URI(10)


def test_a_late_part_in_natural_order():
    result = plan(appended(1, 2, 10, part_order="natural"), [src(1), src(2), src(9), src(10)])
    assert result.late == [URI(9)] and isinstance(result.action, P.Done)


def test_a_new_conversation_sends_in_natural_order():
    ledger = L.Ledger(uri="s3://b/videos/z/_symbl.json")
    result = plan(ledger, [src(1), src(2), src(10)])
    assert [s.uri for s in result.pending] == [URI(1), URI(2), URI(10)]
    assert isinstance(result.action, P.Send) and result.action.conversation_id is None


def test_sources_out_of_the_conversations_order_are_refused():
    ledger = L.Ledger(uri="s3://b/videos/z/_symbl.json")
    result = plan(ledger, [src(1), src(10), src(2)])  # key order, but the conversation will use natural
    assert isinstance(result.action, P.Refuse)
    assert "natural order" in result.action.message and URI(2) in result.action.message
    # the same list is right for a conversation built in key order
    legacy = plan(appended(1, part_order=None), [src(1), src(10), src(2)])
    assert isinstance(legacy.action, P.Send) and legacy.action.source.uri == URI(10)


def test_new_parts_for_discovery_in_natural_order():
    ledger = appended(1, 2, part_order="natural")
    found = P.new_parts(ledger, {URI(n): f"e{n}" for n in (1, 2, 3, 10)}, part_order="natural")
    assert found["new"] == [URI(3), URI(10)] and found["late"] == []


def test_the_ledger_records_the_order_and_reads_it_back():
    ledger = L.Ledger(uri="s3://b/videos/z/_symbl.json")
    ledger.lease = L.Lease(ME.label, ME.token, list(ME.task_key), ME.try_number, 4e9, NOW)
    L.intent(ME, URI(1), "e1", 101, part_order="natural")(ledger)
    assert ledger.part_order == "natural"
    data = json.loads(ledger.to_json())
    assert data["part_order"] == "natural"
    assert L.Ledger.parse(ledger.uri, ledger.to_json()).part_order == "natural"
    # an existing conversation without it is written down as what it was: key order
    legacy = appended(1, part_order=None)
    legacy.lease = L.Lease(ME.label, ME.token, list(ME.task_key), ME.try_number, 4e9, NOW)
    L.intent(ME, URI(2), "e2", 102, part_order="natural")(legacy)
    assert legacy.part_order == "key"
    assert "part_order" not in json.loads(appended(1, part_order=None).to_json())  # unread files stay as they were


def test_an_unknown_recorded_order_is_refused_naming_the_ledger():
    raw = json.dumps({"version": 2, "parts": [], "part_order": "alphabetical"})
    with pytest.raises(L.LedgerError, match=r"s3://b/l/_symbl.json.*part_order"):
        L.Ledger.parse("s3://b/l/_symbl.json", raw)
