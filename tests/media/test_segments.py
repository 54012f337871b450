"""The segment plan for long recordings: a pure function, table-tested."""

from __future__ import annotations

import pytest

from symbl_airflow.media.segments import Segment, UncuttableError, plan_segments

pytestmark = pytest.mark.unit

H = 3600.0


def bounds(plan: list[Segment]) -> list[tuple[float, float]]:
    return [(round(s.start, 3), round(s.seconds, 3)) for s in plan]


@pytest.mark.parametrize(
    "total, limit, keyframes, expected",
    [
        (3 * H, 4 * H, None, [(0, 3 * H)]),
        (4 * H, 4 * H, None, [(0, 4 * H)]),  # exactly the limit: one file
        (4 * H + 1, 4 * H, None, [(0, 2 * H + 0.5), (2 * H + 0.5, 2 * H + 0.5)]),
        (9 * H, 4 * H, None, [(0, 3 * H), (3 * H, 3 * H), (6 * H, 3 * H)]),
        # keyframes every 10 s: cuts move back to the keyframe at or before the equal split
        (100.0, 40.0, [i * 10.0 for i in range(10)], [(0, 30), (30, 30), (60, 40)]),
        # keyframes every 7 s: 3 equal parts would cut at 33.3/66.7 -> 28 and 63
        (100.0, 40.0, [i * 7.0 for i in range(15)], [(0, 28), (28, 35), (63, 37)]),
        # a sparse stretch forces one segment more than the minimum
        (100.0, 40.0, [0, 20, 45, 70, 90], [(0, 20), (20, 25), (45, 25), (70, 30)]),
    ],
    ids=["short", "exactly", "one_second_over", "nine_hours", "gop10", "gop7", "sparse"],
)
def test_plans(total, limit, keyframes, expected):
    plan = plan_segments(total, limit, keyframes)
    assert bounds(plan) == [(float(a), float(b)) for a, b in expected]
    assert all(s.count == len(plan) for s in plan)
    assert [s.index for s in plan] == list(range(len(plan)))
    # consecutive, no gap, no overlap, each within the limit, covering the whole
    for before, after in zip(plan, plan[1:], strict=False):
        assert after.start == pytest.approx(before.end)
    assert plan[-1].end == pytest.approx(total)
    assert all(0 < s.seconds <= limit for s in plan)
    if keyframes:
        assert all(s.start in keyframes for s in plan)


def test_keyframes_too_sparse_to_cut():
    with pytest.raises(UncuttableError, match="the longest stretch without a keyframe is 60 s"):
        plan_segments(100.0, 40.0, [0, 60])


def test_the_same_input_gives_the_same_plan():
    keys = [i * 2.002 for i in range(10_000)]
    assert plan_segments(5 * H, 4 * H, keys) == plan_segments(5 * H, 4 * H, list(reversed(keys)))


@pytest.mark.parametrize("total, limit", [(0, 10), (-1, 10), (10, 0), (None, 10)])
def test_bad_arguments(total, limit):
    with pytest.raises(ValueError):
        plan_segments(total, limit)


def test_labels():
    seg = plan_segments(9 * H, 4 * H)[1]
    assert seg.label() == "segment 2/3 (3:00:00-6:00:00)"
    assert seg.to_dict() == {"index": 1, "count": 3, "start": 10800.0, "seconds": 10800.0}


def test_snapping_a_plan_made_before_the_media_was_read():
    from symbl_airflow.media.segments import snap_to_keyframes

    planned = plan_segments(100.0, 40.0)  # 33.3 / 66.7
    snapped = snap_to_keyframes(planned, [i * 7.0 for i in range(15)], 100.0, 40.0)
    assert bounds(snapped) == [(0.0, 28.0), (28.0, 35.0), (63.0, 37.0)]
    # a cut exactly on a keyframe stays there
    exact = snap_to_keyframes(plan_segments(90.0, 40.0), [0, 30, 60], 90.0, 40.0)
    assert [s.start for s in exact] == [0.0, 30.0, 60.0]
    with pytest.raises(UncuttableError, match="more than 40 s"):
        snap_to_keyframes(planned, [0, 10, 60], 100.0, 40.0)


def test_a_length_the_headers_do_not_give_is_sent_whole_and_said(caplog):
    """Not cut (nothing to plan from), never silently: the task log names the part and the risk."""
    import logging

    from symbl_airflow.media.base import Inspection
    from symbl_airflow.media.container import with_segments

    unknown = Inspection(kind="audio", endpoint="audio", content_type="", media_seconds=None)
    with caplog.at_level(logging.INFO, logger="symbl_airflow"):
        result = with_segments(unknown, 14_400, "split", "s3://b/m/part-2.aac")
    assert result.segments == ()
    assert any("s3://b/m/part-2.aac" in r.getMessage() and "sent whole" in r.getMessage() for r in caplog.records)
    caplog.clear()
    known = Inspection(kind="audio", endpoint="audio", content_type="", media_seconds=60.0)
    with caplog.at_level(logging.INFO, logger="symbl_airflow"):
        assert with_segments(known, 14_400, "split", "s3://b/m/part-3.aac").segments == ()
    assert not any("sent whole" in r.getMessage() for r in caplog.records)
