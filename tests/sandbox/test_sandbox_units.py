"""The model, rules and parsers without HTTP."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from multidict import MultiDict

from symbl_sandbox import insights, media, samples
from symbl_sandbox.api import OptionError, options_from_query, validate_options
from symbl_sandbox.model import InvalidCredentials, SandboxConfig, SandboxModel, TooManyJobs

pytestmark = pytest.mark.unit

START = datetime(2024, 1, 1, 12, 0, tzinfo=UTC)  # a Monday


def transcript(lines, **options) -> insights.Transcript:
    t = insights.Transcript("1234567890123456", START, options)
    cues = [media.Cue(i * 2.0, i * 2.0 + 2.0, who, text) for i, (who, text) in enumerate(lines)]
    t.add(cues, 0.0, 2.0 * len(lines))
    return t


def test_rules_questions_actions_follow_ups():
    t = transcript(
        [
            ("Ann", "How is the launch going? It is fine."),
            ("Ben", "I'll email the vendor on Friday."),
            ("Ann", "We need to fix the login bug."),
            ("Ben", "Nice weather today."),
        ]
    )
    assert [q["text"] for q in t.questions()] == ["How is the launch going?"]
    items = t.action_items()
    assert [(i["text"], i["definitive"], i["score"]) for i in items] == [
        ("I'll email the vendor on Friday.", True, 0.94),
        ("We need to fix the login bug.", False, 0.8),
    ]
    assert items[0]["dueBy"] == "2024-01-05T00:00:00.000Z"  # the Friday after Monday 2024-01-01
    assert [f["text"] for f in t.follow_ups()] == ["I'll email the vendor on Friday."]
    # ids are stable: recomputing gives the same ids, and they differ across kinds
    assert [i["id"] for i in t.action_items()] == [i["id"] for i in items]
    assert items[0]["id"] != t.follow_ups()[0]["id"]


def test_topics_entities_trackers_and_language():
    lines = [
        ("Ann", "The billing service is slow."),
        ("Ben", "The billing service needs 3 more servers."),
        ("Ann", "Ben, check the billing dashboard tomorrow."),
    ]
    t = transcript(
        lines,
        detectEntities=True,
        entities=[{"customType": "System", "text": "billing dashboard"}],
        trackers=[{"name": "Perf", "vocabulary": ["slow", "latency"]}, {"id": "123"}],
    )
    topics = t.topics(parent_refs=True)
    assert topics[0]["text"] == "billing service" and topics[0]["score"] == 1.0
    assert "billing" not in [x["text"] for x in topics]  # inside a chosen bigram
    assert topics[0]["parentRefs"] == [{"type": "topic", "text": "service"}]
    # every parent is itself a topic of the list (topics.md parentRefs example)
    texts = [x["text"] for x in topics]
    assert all(ref["text"] in texts for x in topics for ref in x["parentRefs"])
    service = topics[texts.index("service")]
    assert service["parentRefs"] == [] and len(service["messageIds"]) == 2
    assert t.topics()[0]["parentRefs"] == [] and "service" not in [x["text"] for x in t.topics()]
    # current shape (get-detected-entities): type/subType/category/matches; dates resolved (Mon -> Tue)
    current = {(e["category"], e["type"], e["subType"]): e for e in t.entities()}
    assert set(current) == {
        ("Custom", "System", "System"),
        ("Managed", "number", "number"),
        ("Managed", "date", "date"),
        ("Managed", "person", "name"),
    }
    date = current[("Managed", "date", "date")]
    assert len(date["id"]) == 16 and date["id"].isdigit()
    assert date["matches"] == [
        {
            "detectedValue": "tomorrow",
            "value": "2024-01-02",
            "messageRefs": [
                {
                    "id": t.messages[2].id,
                    "startTime": "2024-01-01T12:00:04.000Z",
                    "endTime": "2024-01-01T12:00:06.000Z",
                    "text": "Ben, check the billing dashboard tomorrow.",
                    "offset": 33,
                }
            ],
        }
    ]
    legacy = {(e["type"], e["value"]) for e in t.entities("legacy")}
    assert legacy == {("custom", "billing dashboard"), ("number", "3"), ("date", "2024-01-02"), ("person", "Ben")}
    trackers = t.trackers()
    assert [(tr["name"], [m["value"] for m in tr["matches"]]) for tr in trackers] == [("Perf", ["slow"])]
    assert transcript(lines, languageCode="de-DE").topics() == []
    assert transcript(lines, detectEntities=False).entities() == []
    assert {e["type"] for e in transcript(lines).entities()} == {"number", "date", "person"}  # managed by default


def test_analytics_with_silence():
    t = insights.Transcript("1", START)
    t.add([media.Cue(0, 2, "A", "one two three four"), media.Cue(5, 6, "B", "five")], 0.0, 10.0)
    analytics = t.analytics()
    metrics = {m["type"]: m["seconds"] for m in analytics["metrics"]}
    assert metrics == {"total_silence": 7.0, "total_talk_time": 3.0, "total_overlap": 0.0}
    a = analytics["members"][0]
    assert a["pace"]["wpm"] == 120 and a["talkTime"]["seconds"] == 2.0 and a["listenTime"]["seconds"] == 1.0


def test_ids_are_numeric_and_uuid_shaped():
    assert len(insights.numeric_id("x", 1)) == 16 and insights.numeric_id("x", 1).isdigit()
    assert insights.numeric_id("x", 1) != insights.numeric_id("x", 2)
    assert insights.uuid_id("c", "Ann") == insights.uuid_id("c", "Ann")


def test_query_option_parsing():
    q = MultiDict(
        [
            ("customVocabulary[1]", "b"),
            ("customVocabulary[0]", "a"),
            ("entities", '[{"customType": "T", "text": "x"}]'),
            ("detectEntities", "True"),
            ("other", "ignored"),
        ]
    )
    assert validate_options(options_from_query(q)) == {
        "customVocabulary": ["a", "b"],
        "entities": [{"customType": "T", "text": "x"}],
        "detectEntities": True,
    }
    with pytest.raises(OptionError, match="diarizationSpeakerCount"):
        validate_options({"diarizationSpeakerCount": True})
    with pytest.raises(OptionError, match=r"trackers\[0\].vocabulary"):
        validate_options({"trackers": [{"name": "x", "vocabulary": []}]})


def test_mp4_header_check_and_cue_text():
    media.check_mp4_header(samples.mp4_header())
    with pytest.raises(media.MediaError):
        media.check_mp4_header(samples.not_mp4_bytes()[:16])
    assert media.clean_cue_text(r"{\i1}Alice:{\i0} hi\Nthere") == "Alice: hi there"
    assert media.split_speaker("Alice: hi there") == ("Alice", "hi there")
    assert media.split_speaker("no speaker here") == (None, "no speaker here")


def test_samples_roundtrip_through_pyav(tmp_path):
    path = samples.make_mp4(tmp_path / "a.mp4", [("Ann", "Hi."), ("Ben", "Hello, Ann?")], seconds_per_cue=0.5)
    info = media.probe(path, path.stat().st_size)
    assert info.parsed and info.duration == pytest.approx(1.0, abs=0.1)
    assert [(c.speaker, c.text, c.start) for c in info.cues] == [("Ann", "Hi.", 0.0), ("Ben", "Hello, Ann?", 0.5)]
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(samples.truncated_mp4_bytes(path.read_bytes()))
    assert media.probe(bad, 3 * media.NOMINAL_BYTES_PER_SECOND).duration == 3.0


def test_model_tokens_with_a_fake_clock(tmp_path):
    now = [1000.0]
    model = SandboxModel(SandboxConfig(token_ttl=100, data_dir=tmp_path), clock=lambda: now[0])
    token, expires = model.generate_token("sandbox-app-id", "sandbox-app-secret")
    assert expires == 100
    now[0] += 30.5
    assert model.generate_token("sandbox-app-id", "sandbox-app-secret") == (token, 69)
    assert model.authenticate(token) == "sandbox-app-id"
    now[0] += 70
    assert model.authenticate(token) is None
    assert model.generate_token("sandbox-app-id", "sandbox-app-secret")[0] != token
    with pytest.raises(InvalidCredentials):
        model.generate_token("sandbox-app-id", "nope")


async def test_model_queue_order_and_limit(tmp_path):
    model = SandboxModel(SandboxConfig(max_concurrent_jobs=3, speed=0.0, min_job_seconds=0.05, data_dir=tmp_path))
    seen: list[tuple[str, str]] = []
    model.listeners.append(lambda job: seen.append((job.id, job.status)))
    app = "sandbox-app-id"
    path = tmp_path / "a.mp4"
    samples.make_mp4(path, [("Ann", "First.")])
    size = path.stat().st_size
    jobs = []
    for i in range(3):
        copy = tmp_path / f"c{i}.mp4"
        copy.write_bytes(path.read_bytes())
        conv = jobs[0].conversation_id if jobs else None
        slot = model.reserve_slot(app)
        jobs.append(model.submit(app, slot, options={}, conversation_id=conv, media_path=copy, size=size))
    with pytest.raises(TooManyJobs):
        model.reserve_slot(app)
    await asyncio.gather(*(j.task for j in jobs))
    starts = [job_id for job_id, status in seen if status == "in_progress"]
    assert starts == [j.id for j in jobs]
    conv = model.conversations[jobs[0].conversation_id]
    assert [m.time_offset for m in conv.transcript.messages] == [0.0, 1.0, 2.0]
    assert not any(p.exists() for p in tmp_path.glob("c*.mp4"))  # spool files deleted
    model.reserve_slot(app).release()
    await model.close()
