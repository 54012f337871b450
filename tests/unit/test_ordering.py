"""The part order, table-driven: what people mean by "next" for the names recorders and people write."""

from __future__ import annotations

import random

import pytest

from symbl_airflow.ordering import check_part_order, is_sorted, natural_key, sort_key, sorted_parts

pytestmark = pytest.mark.unit


# Each row: names in the order a person means them (natural), and the same names in S3 key order.
ROWS = {
    "zoom 1..10": (
        [f"Zoom Recording {i}.mp4" for i in range(1, 11)],
        ["Zoom Recording 1.mp4", "Zoom Recording 10.mp4", *(f"Zoom Recording {i}.mp4" for i in range(2, 10))],
    ),
    "mixed case": (
        ["a.mp4", "B.mp4", "c.mp4", "D.mp4"],
        ["B.mp4", "D.mp4", "a.mp4", "c.mp4"],
    ),
    "leading zeros are the same number; the raw key breaks the tie": (
        ["part-01.mp4", "part-1.mp4", "part-002.mp4", "part-2.mp4", "part-10.mp4"],
        ["part-002.mp4", "part-01.mp4", "part-1.mp4", "part-10.mp4", "part-2.mp4"],
    ),
    "case ties broken by the raw key": (
        ["Part-1.mp4", "part-1.mp4", "PART-2.mp4"],
        ["PART-2.mp4", "Part-1.mp4", "part-1.mp4"],
    ),
    "dates": (
        ["2026-1-15.mp4", "2026-2-01.mp4", "2026-12-05.mp4", "2026-12-5.mp4", "2026-12-5 later.mp4", "2027-01-01.mp4"],
        ["2026-1-15.mp4", "2026-12-05.mp4", "2026-12-5 later.mp4", "2026-12-5.mp4", "2026-2-01.mp4", "2027-01-01.mp4"],
    ),
    "camera clips": (
        ["CLIP_9.MOV", "CLIP_10.MOV", "clip_11.mov"],
        ["CLIP_10.MOV", "CLIP_9.MOV", "clip_11.mov"],
    ),
    "unicode: accents composed or not sort alike, other scripts' digits are numbers": (
        ["réunion 2.wav", "re\u0301union 3.wav", "réunion 10.wav", "会议 ٢.m4a", "会议 ١٠.m4a"],
        ["re\u0301union 3.wav", "réunion 10.wav", "réunion 2.wav", "会议 ١٠.m4a", "会议 ٢.m4a"],
    ),
    "a name alone before its numbered copies": (
        ["Recording.m4a", "Recording (2).m4a", "Recording (10).m4a", "Recording (11).m4a"],
        ["Recording (10).m4a", "Recording (11).m4a", "Recording (2).m4a", "Recording.m4a"],
    ),
    "a name alone before its numbered parts": (
        ["Screen Recording.mov", "Screen Recording 2.mov", "Screen Recording 10.mov"],
        ["Screen Recording 10.mov", "Screen Recording 2.mov", "Screen Recording.mov"],
    ),
    "a name that starts with digits comes before letters": (
        ["1 intro.mp4", "9 middle.mp4", "10 end.mp4", "intro.mp4"],
        ["1 intro.mp4", "10 end.mp4", "9 middle.mp4", "intro.mp4"],
    ),
    "subfolder paths": (
        ["cam 2/part-9.mp4", "cam 2/part-10.mp4", "cam 10/part-1.mp4"],
        ["cam 10/part-1.mp4", "cam 2/part-10.mp4", "cam 2/part-9.mp4"],
    ),
}


@pytest.mark.parametrize("natural, key", ROWS.values(), ids=ROWS.keys())
def test_orders(natural, key):
    shuffled = natural[:]
    random.Random(7).shuffle(shuffled)
    assert sorted_parts(shuffled, "natural") == natural
    assert sorted_parts(shuffled, "key") == key
    assert is_sorted(natural, "natural") and is_sorted(key, "key")
    assert sorted_parts(reversed(natural), "natural") == natural  # the input order never matters


def test_whole_uris_order_as_their_names():
    uris = [f"s3://b/rec/2026/12/05/standup 7/Zoom Recording {i}.mp4" for i in (1, 2, 10)]
    assert sorted_parts(reversed(uris), "natural") == uris
    assert not is_sorted([uris[0], uris[2], uris[1]], "natural")


def test_order_is_total_and_deterministic():
    names = ["a1", "a01", "A1", "a001", "A01", "a1 ", "a1.", "a", "A", ""]
    expected = sorted_parts(names, "natural")
    for seed in range(20):
        shuffled = names[:]
        random.Random(seed).shuffle(shuffled)
        assert sorted_parts(shuffled, "natural") == expected
    ranks = [natural_key(n) for n in expected]
    assert len(set(ranks)) == len(ranks)  # no two distinct keys compare equal


def test_sort_key_is_usable_with_max():
    names = ["Zoom Recording 2.mp4", "Zoom Recording 10.mp4", "Zoom Recording 9.mp4"]
    assert max(names, key=sort_key("natural")) == "Zoom Recording 10.mp4"
    assert max(names, key=sort_key("key")) == "Zoom Recording 9.mp4"


@pytest.mark.parametrize("value, expected", [("natural", "natural"), ("key", "key"), (" Natural ", "natural")])
def test_check_part_order_accepts(value, expected):
    assert check_part_order(value) == expected


@pytest.mark.parametrize("value", ["alphabetical", "", None, 1, ["natural"]])
def test_check_part_order_refuses_naming_the_input(value):
    with pytest.raises(ValueError, match=r"part_order must be one of \('natural', 'key'\).*got"):
        check_part_order(value)
