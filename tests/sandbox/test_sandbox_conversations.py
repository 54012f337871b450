"""Conversation API: transcript from captions, appends, insights shapes, summary gating, delete."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import pytest

from symbl_sandbox import samples

pytestmark = pytest.mark.integration

NUMERIC = re.compile(r"^\d{16}$")
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def _ts(text: str) -> datetime:
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", text), text
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ")


@pytest.fixture
def done(api, clip):
    """One conversation made of two appended videos, processed."""
    params = {
        "detectEntities": "true",
        "detectPhrases": "true",
        "entities": '[{"customType": "Product", "text": "pricing page", "value": "Pricing Page"}]',
        "trackers": '[{"name": "Pricing", "vocabulary": ["pricing page", "cost"]}]',
        "channelMetadata": '[{"channel": 1, "speaker": {"name": "Alice", "email": "alice@example.com"}}]',
    }
    first = api.submit_ok(clip.meeting, params=params)
    conv = first["conversationId"]
    second = api.submit_ok(clip.second, conv)
    assert api.wait(first["jobId"])[-1] == "completed"
    assert api.wait(second["jobId"])[-1] == "completed"
    return conv


def test_two_appends_give_one_transcript_in_order(api, done):
    messages = api.conversation(done, "/messages").json()["messages"]
    assert [(m["from"]["name"], m["text"]) for m in messages] == [
        ("Alice", "Can we review the pricing page today?"),
        ("Bob", "I will send the pricing page draft tomorrow."),
        ("Alice", "Great, let's schedule a call with the design team."),
        ("Bob", "We agreed to ship the pricing page first."),
        ("Carol", "Sounds good to me."),
    ]
    # the second video's cues are offset by the first video's duration (3 s)
    assert [m["timeOffset"] for m in messages] == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert all(m["duration"] == 1.0 for m in messages)
    start = _ts(messages[0]["startTime"])
    for m in messages:
        assert NUMERIC.match(m["id"]) and m["conversationId"] == done
        assert _ts(m["startTime"]) - start == timedelta(seconds=m["timeOffset"])
        assert _ts(m["endTime"]) - _ts(m["startTime"]) == timedelta(seconds=m["duration"])
        assert UUID.match(m["from"]["id"])
        assert "words" not in m and "sentiment" not in m
    assert messages[0]["from"]["email"] == "alice@example.com"
    assert messages[1]["phrases"] == [{"type": "action_phrase", "text": "send the pricing page draft tomorrow"}]
    meta = api.conversation(done).json()
    assert meta["id"] == done and meta["name"] == done
    assert _ts(meta["endTime"]) - _ts(meta["startTime"]) == timedelta(seconds=5)
    assert [m["name"] for m in meta["members"]] == ["Alice", "Bob", "Carol"]


def test_messages_verbose_and_sentiment(api, done):
    messages = api.conversation(done, "/messages", verbose="true", sentiment="true").json()["messages"]
    great = messages[2]
    assert great["sentiment"] == {"polarity": {"score": 1.0}, "suggested": "positive"}
    assert messages[0]["sentiment"]["suggested"] == "neutral"
    words = messages[1]["words"]
    assert [w["word"] for w in words] == messages[1]["text"].split()
    assert words[0]["timeOffset"] == messages[1]["timeOffset"]
    assert set(words[0]) == {"word", "startTime", "endTime", "score", "timeOffset", "duration", "speakerTag"}


def test_insight_endpoints(api, done):
    questions = api.conversation(done, "/questions").json()["questions"]
    assert [q["text"] for q in questions] == ["Can we review the pricing page today?"]
    assert questions[0]["type"] == "question" and questions[0]["score"] == 0.98
    assert questions[0]["from"]["userId"] == "alice@example.com"

    items = api.conversation(done, "/action-items").json()["actionItems"]
    assert [(i["text"], i["definitive"]) for i in items] == [
        ("I will send the pricing page draft tomorrow.", True),
        ("Great, let's schedule a call with the design team.", False),
    ]
    assert items[0]["assignee"]["name"] == "Bob" and items[0]["dueBy"].endswith("T00:00:00.000Z")
    assert items[0]["entities"][0]["type"] == "date"
    # the date entity's value is the resolved day (follow-ups.md: "today" -> "2020-06-22"), dueBy that day
    assert items[0]["entities"][0]["text"] == "tomorrow"
    assert items[0]["entities"][0]["value"] == items[0]["dueBy"][:10]

    follow = api.conversation(done, "/follow-ups").json()["followUps"]
    assert [f["text"] for f in follow] == [i["text"] for i in items]  # both mention send / schedule / call
    assert all(f["type"] == "follow_up" for f in follow)

    topics = api.conversation(done, "/topics").json()["topics"]
    assert topics[0]["text"] == "pricing page" and topics[0]["score"] == 1.0
    assert len(topics[0]["messageIds"]) == 3 and topics[0]["parentRefs"] == []
    with_parents = api.conversation(done, "/topics", parentRefs="true").json()["topics"]
    assert with_parents[0]["parentRefs"] == [{"type": "topic", "text": "page"}]
    parent_texts = {t["text"] for t in with_parents}
    assert "page" in parent_texts
    assert all(r["text"] in parent_texts for t in with_parents for r in t["parentRefs"])
    with_sentiment = api.conversation(done, "/topics", sentiment="true").json()["topics"]
    assert "sentiment" in with_sentiment[0]

    legacy = api.conversation(done, "/insights").json()["insights"]
    # insights.md: legacy items are questions and action items only (follow-ups are not repeated)
    assert [i["type"] for i in legacy] == ["question", "action_item", "action_item"]
    assert [i["id"] for i in legacy] == [questions[0]["id"], *(i["id"] for i in items)]


def test_entities_trackers_analytics_members_summary(api, done):
    entities = api.conversation(done, "/entities").json()["entities"]
    custom = [e for e in entities if e["category"] == "Custom"]
    assert custom[0]["type"] == "Product" and NUMERIC.match(custom[0]["id"])
    [match] = custom[0]["matches"]
    assert match["detectedValue"] == "pricing page" and match["value"] == "Pricing Page"
    assert len(match["messageRefs"]) == 3 and match["messageRefs"][0]["offset"] == 18
    assert set(match["messageRefs"][0]) == {"id", "startTime", "endTime", "text", "offset"}
    # no speaker names or digits are spoken
    assert {(e["category"], e["type"]) for e in entities} == {("Custom", "Product"), ("Managed", "date")}
    [date] = [e for e in entities if e["type"] == "date"]
    assert [m["detectedValue"] for m in date["matches"]] == ["today", "tomorrow"]
    day = _ts(api.conversation(done).json()["startTime"]).date()
    assert [m["value"] for m in date["matches"]] == [str(day), str(day + timedelta(days=1))]

    trackers = api.conversation(done, "/trackers-detected").json()
    assert isinstance(trackers, list) and trackers == api.conversation(done, "/trackers").json()
    assert trackers[0]["name"] == "Pricing"
    match = trackers[0]["matches"][0]
    assert match["value"] == "pricing page" and len(match["messageRefs"]) == 3
    assert {r["type"] for r in match["insightRefs"]} == {"question", "action_item", "follow_up"}

    analytics = api.conversation(done, "/analytics").json()
    metrics = {m["type"]: m for m in analytics["metrics"]}
    assert metrics["total_talk_time"]["seconds"] == 5.0 and metrics["total_silence"]["seconds"] == 0.0
    by_name = {m["name"]: m for m in analytics["members"]}
    assert by_name["Alice"]["talkTime"] == {"percentage": 40.0, "seconds": 2.0}
    assert by_name["Alice"]["listenTime"]["seconds"] == 3.0
    assert by_name["Bob"]["pace"]["wpm"] == round(16 / (2 / 60))

    members = api.conversation(done, "/members").json()["members"]
    assert [m["name"] for m in members] == ["Alice", "Bob", "Carol"]
    assert members[0] == {"id": members[0]["id"], "name": "Alice", "email": "alice@example.com"}

    summary = api.conversation(done, "/summary").json()["summary"]
    texts = [s["text"] for s in summary]
    assert "We agreed to ship the pricing page first." in texts
    assert all(NUMERIC.match(s["messageRefs"][0]["id"]) for s in summary)


def test_results_are_deterministic_per_conversation(api, done):
    again = {p: api.conversation(done, p).json() for p in ("/messages", "/topics", "/action-items", "/members")}
    assert again == {p: api.conversation(done, p).json() for p in again}


def test_managed_entities_are_detected_by_default_unless_turned_off(api, clip):
    # docs.symbl.ai/docs/entity-detection: "Entities are detected by default when you use the Async API"
    job = api.submit_ok(clip.meeting)
    api.wait(job["jobId"])
    entities = api.conversation(job["conversationId"], "/entities").json()["entities"]
    assert [(e["category"], e["type"]) for e in entities] == [("Managed", "date")]
    assert api.conversation(job["conversationId"], "/trackers-detected").json() == []
    off = api.submit_ok(clip.meeting, params={"detectEntities": "false"})
    api.wait(off["jobId"])
    assert api.conversation(off["conversationId"], "/entities").json() == {"entities": []}
    custom_only = api.submit_ok(
        clip.meeting, params={"detectEntities": "false", "entities": '[{"customType": "P", "text": "design team"}]'}
    )
    api.wait(custom_only["jobId"])
    entities = api.conversation(custom_only["conversationId"], "/entities").json()["entities"]
    assert [(e["category"], e["type"]) for e in entities] == [("Custom", "P")]


def test_summary_is_404_while_a_job_is_in_progress(spawn, clip):
    from tests.sandbox.conftest import Api

    api = Api(spawn(speed=0.0, min_job_seconds=1.0))
    job = api.submit_ok(clip.meeting)
    resp = api.conversation(job["conversationId"], "/summary")
    assert resp.status_code == 404 and "message" in resp.json()
    # other endpoints answer with what is there so far
    assert api.conversation(job["conversationId"], "/messages").json() == {"messages": []}
    api.wait(job["jobId"])
    assert api.conversation(job["conversationId"], "/summary").status_code == 200


def test_captionless_and_unreadable_media_get_deterministic_transcripts(api, clip, mp4):
    silent_long = mp4.make([("A", "x")] * 3, seconds_per_cue=4.0, captions=False)  # 12 s, no captions
    truncated = samples.truncated_mp4_bytes(clip.meeting)
    results = {}
    for name, data in (("silent", clip.silent), ("long", silent_long), ("truncated", truncated)):
        runs = []
        for _ in range(2):
            job = api.submit_ok(data, params={"diarizationSpeakerCount": "3"} if name == "long" else None)
            status = api.wait(job["jobId"])[-1]
            runs.append((status, api.conversation(job["conversationId"], "/messages").json()["messages"]))
        assert [m["text"] for m in runs[0][1]] == [m["text"] for m in runs[1][1]]
        results[name] = runs[0]
    assert results["silent"][0] == "completed" and len(results["silent"][1]) == 1
    assert [m["from"]["name"] for m in results["long"][1]] == ["Speaker 1", "Speaker 2", "Speaker 3"]
    assert [m["timeOffset"] for m in results["long"][1]] == [0.0, 4.0, 8.0]
    # an MP4 cut short (no 'moov' box) cannot be decoded: the job fails and no transcript is invented
    assert results["truncated"] == ("failed", [])


def test_non_english_gets_messages_but_no_insights(api, clip):
    job = api.submit_ok(clip.meeting, params={"languageCode": "fr-FR"})
    api.wait(job["jobId"])
    conv = job["conversationId"]
    assert len(api.conversation(conv, "/messages").json()["messages"]) == 3
    assert api.conversation(conv, "/questions").json() == {"questions": []}
    assert api.conversation(conv, "/topics").json() == {"topics": []}


def test_confidence_threshold_filters_insights(api, clip):
    job = api.submit_ok(clip.meeting, params={"confidenceThreshold": "0.9"})
    api.wait(job["jobId"])
    items = api.conversation(job["conversationId"], "/action-items").json()["actionItems"]
    assert [i["definitive"] for i in items] == [True]  # the 0.8 "let's" item is dropped


def test_unknown_conversation_and_delete(api, done):
    for part in (
        "",
        "/messages",
        "/topics",
        "/questions",
        "/action-items",
        "/follow-ups",
        "/entities",
        "/trackers-detected",
        "/trackers",
        "/analytics",
        "/summary",
        "/members",
    ):
        resp = api.conversation("1111111111111111", part)
        assert resp.status_code == 404, part
        assert resp.json()["message"]
    resp = api.request("DELETE", f"/v1/conversations/{done}")
    assert resp.status_code == 200
    assert resp.json() == {"message": "successfully deleted the conversation"}
    assert api.conversation(done, "/messages").status_code == 404
    again = api.request("DELETE", f"/v1/conversations/{done}")
    assert again.status_code == 404
    assert again.json() == {"message": "The conversationId is either invalid or does not exist."}


def test_list_conversations(api, clip):
    ids = [api.submit_ok(clip.one)["conversationId"] for _ in range(3)]
    listed = api.get("/v1/conversations").json()["conversations"]
    assert sorted(c["id"] for c in listed) == sorted(ids)
