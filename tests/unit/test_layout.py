"""Where a key sits in the layout, table-driven: part, ledger, the pipeline's own file, or ignored and why."""

from __future__ import annotations

import pytest

from symbl_airflow.discovery import MEDIA_EXTENSIONS, Layout, is_media_name

pytestmark = pytest.mark.unit

# (depth, key) -> (kind, conversation, name, words the reason must hold)
ROWS = [
    (1, "rec/standup/part-1.mp4", ("part", "standup", "part-1.mp4", "")),
    (1, "rec/standup/Take 2.WAV", ("part", "standup", "Take 2.WAV", "")),
    (1, "rec/standup/_symbl.json", ("ledger", "standup", "_symbl.json", "")),
    (1, "rec/standup/_symbl_lease.json", ("infrastructure", "standup", "_symbl_lease.json", "")),
    (1, "rec/_symbl_index.json", ("infrastructure", None, "", "")),
    (1, "rec/standup/", ("infrastructure", None, "", "")),  # a folder marker
    (1, "rec/standup/notes.txt", ("ignored", "standup", "notes.txt", "not audio or video: .txt files")),
    (1, "rec/standup/_intro.mp4", ("part", "standup", "_intro.mp4", "")),
    (1, "rec/readme.txt", ("ignored", None, "", "not in a conversation folder: with folder_depth=1")),
    (1, "rec/x.mp4", ("ignored", None, "", "object is 0 folder(s) below the prefix")),
    (1, "rec/2026/12/05/standup/a.mp4", ("ignored", "2026", "12/05/standup/a.mp4", "folder_depth=4 would make")),
    (1, "rec/standup/cam1/notes.txt", ("ignored", "standup", "cam1/notes.txt", "in subfolder cam1/")),
    (2, "rec/2026-12-01/standup/part-1.mp4", ("part", "2026-12-01/standup", "part-1.mp4", "")),
    (2, "rec/2026-12-01/part-1.mp4", ("ignored", None, "", "folder_depth=1 would make it a part")),
    (2, "rec/2026-12-01/standup/_symbl.json", ("ledger", "2026-12-01/standup", "_symbl.json", "")),
    (2, "rec/2026-12-01/_symbl.json", ("infrastructure", None, "", "")),  # a ledger of depth 1: not ours now
    (2, "rec//standup/part-1.mp4", ("ignored", None, "", "empty folder name")),
    (4, "rec/2026/12/05/standup/cam1/part-1.mp4", ("ignored", "2026/12/05/standup", "cam1/part-1.mp4", "subfolder")),
    (1, "other/standup/part-1.mp4", ("outside", None, "", "not under s3://b/rec/")),
]


@pytest.mark.parametrize("depth, key, expected", ROWS, ids=[f"{d}:{k}" for d, k, _ in ROWS])
def test_place(depth, key, expected):
    kind, conversation, name, words = expected
    place = Layout.of("b", "rec", depth).place(key)
    assert (place.kind, place.conversation, place.name) == (kind, conversation, name)
    assert words in place.reason


@pytest.mark.parametrize("name", ["a.mp4", "b.M4A", "c.mov", "d.webm", "e.mkv", "f.flac", "g.opus", "h.aiff", "x.3gp"])
def test_media_names(name):
    assert is_media_name(name)


@pytest.mark.parametrize("name", ["a.txt", "b.vtt", "c.jpg", "d.json", "mp4", "e.mp4.part", "dir.mp4/x"])
def test_not_media_names(name):
    assert not is_media_name(name)


@pytest.mark.parametrize("depth", [0, -1, "x", 1.5, None, True])
def test_folder_depth_must_be_a_whole_number(depth):
    with pytest.raises(ValueError, match="folder_depth must be a whole number >= 1"):
        Layout.of("b", "rec/", depth)


def test_notification_filters_do_not_overlap():
    """S3 refuses two configurations for one event type whose suffixes overlap; one per media suffix."""
    from scripts.local_stack import part_notifications

    configs = part_notifications("arn:aws:sqs:us-east-1:1:q", "rec/")["QueueConfigurations"]
    suffixes = [next(r["Value"] for r in c["Filter"]["Key"]["FilterRules"] if r["Name"] == "suffix") for c in configs]
    assert len(suffixes) == len(set(suffixes)) == 2 * len(MEDIA_EXTENSIONS)
    assert not [(a, b) for a in suffixes for b in suffixes if a != b and a.endswith(b)]
    assert {".mp4", ".MP4", ".wav", ".WAV"} <= set(suffixes)
