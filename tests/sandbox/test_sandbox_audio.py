"""The audio API as the reference says: every listed format, its Content-Type rule, decoding for duration,
the 4-hour limit, and filler that never becomes an insight; over real HTTP to a sandbox process."""

from __future__ import annotations

import json

import pytest
from aiohttp import web

from symbl_sandbox import formats, media, samples
from symbl_sandbox.__main__ import build_parser, config_from_args
from tests.sandbox.conftest import Api

pytestmark = pytest.mark.integration

#: What a client sends per format: the four documented types for WAV/MP3, no header for the rest.
HEADER = {"wav": "audio/wav", "mp3": "audio/mpeg"}
#: Options that would turn any speech-like text into insights, so filler is shown to stay out of them.
EAGER = {
    "customVocabulary": json.dumps(["sandbox filler", "captions"]),
    "trackers": json.dumps([{"name": "Filler", "vocabulary": ["sandbox", "filler", "captions"]}]),
    "entities": json.dumps([{"customType": "Word", "text": "filler"}]),
    "confidenceThreshold": "0.5",
}
INSIGHT_PATHS = {
    "/questions": "questions",
    "/action-items": "actionItems",
    "/follow-ups": "followUps",
    "/topics": "topics",
    "/summary": "summary",
    "/entities": "entities",
    "/insights": "insights",
}


@pytest.fixture(scope="module")
def audio_files():
    """2 s of each format Symbl's FAQ lists, as a tone and as digital silence."""
    return {
        (fmt, tone): samples.make_audio_bytes(fmt, 2.0, tone=tone)
        for fmt in formats.AUDIO_FORMATS
        for tone in (True, False)
    }


@pytest.fixture
def fast(spawn) -> Api:
    return Api(spawn(speed=0.0, min_job_seconds=0.05))


def _upload(api: Api, data: bytes, content_type: str | None, conversation_id: str | None = None, params=None):
    headers = {} if content_type is None else {"Content-Type": content_type}
    path = "/v1/process/audio" + (f"/{conversation_id}" if conversation_id else "")
    return api.request("PUT" if conversation_id else "POST", path, data=data, headers=headers, params=params)


def _no_insights(api: Api, conversation_id: str) -> None:
    for path, key in INSIGHT_PATHS.items():
        resp = api.conversation(conversation_id, path)
        assert resp.status_code == 200, (path, resp.text)
        assert resp.json()[key] == [], (path, resp.json())
    assert api.conversation(conversation_id, "/trackers-detected").json() == []


@pytest.mark.parametrize("tone", [True, False], ids=["tone", "silence"])
def test_every_listed_format_is_taken_decoded_and_gives_marked_filler_only(fast, audio_files, tone):
    jobs = {}
    for fmt in formats.AUDIO_FORMATS:
        resp = _upload(fast, audio_files[fmt, tone], HEADER.get(fmt), params=EAGER)
        assert resp.status_code == 201, (fmt, resp.text)
        jobs[fmt] = resp.json()
    for fmt, job in jobs.items():
        assert fast.wait(job["jobId"])[-1] == "completed", fmt
        messages = fast.conversation(job["conversationId"], "/messages", sentiment="true").json()["messages"]
        assert messages, fmt
        assert {m["text"] for m in messages} == {media.FILLER_TEXT}, fmt
        assert media.FILLER_TEXT.startswith("[sandbox filler:")
        _no_insights(fast, job["conversationId"])
    log = {e["jobId"]: e for e in fast.server.ledger()}
    for fmt, job in jobs.items():
        entry = log[job["jobId"]]
        assert entry["endpoint"] == "audio" and entry["contentType"] == HEADER.get(fmt), fmt
        assert entry["mediaSeconds"] == pytest.approx(2.0, abs=0.15), fmt  # AAC: encoder priming


def test_content_type_rule(fast, audio_files):
    wav, m4a, flac = audio_files["wav", True], audio_files["m4a", True], audio_files["flac", True]
    for content_type in ("audio/wav", "audio/wave", "audio/mpeg", "audio/mp3", "AUDIO/WAV; codecs=1", ""):
        assert _upload(fast, wav, content_type).status_code == 201, content_type
    for data, content_type in (
        (m4a, "audio/mp4"),
        (m4a, "audio/x-m4a"),
        (flac, "audio/flac"),
        (wav, "application/octet-stream"),
        (wav, "video/mp4"),
    ):
        resp = _upload(fast, data, content_type)
        assert resp.status_code == 400, content_type
        message = resp.json()["message"]
        assert content_type.split(";")[0] in message and "without a Content-Type header" in message
    assert len(fast.server.ledger()) == 6  # refused uploads are not submissions
    # the documented types are checked as a list, the body by content: Symbl detects the format
    assert _upload(fast, m4a, "audio/wav").status_code == 201
    log = fast.server.ledger()
    assert fast.wait(log[-1]["jobId"])[-1] == "completed"
    assert [e["contentType"] for e in log] == [
        "audio/wav",
        "audio/wave",
        "audio/mpeg",
        "audio/mp3",
        "audio/wav",
        None,
        "audio/wav",
    ]


def test_undecodable_audio_fails_the_job(fast, audio_files):
    wav = audio_files["wav", True]
    bodies = {
        "garbage": b"this is not audio at all" * 100,  # FFmpeg reads it as 'bin' text art
        "text": b"hello world\nthis is a text file\n" * 200,  # ... and this as 'tty'
        "random": bytes(range(256)) * 100,
        "header only": wav[:44],
        "mp3 then zeros": audio_files["mp3", True][:200] + bytes(20000),
    }
    jobs = {name: _upload(fast, data, None).json() for name, data in bodies.items()}
    for name, job in jobs.items():
        assert fast.wait(job["jobId"])[-1] == "failed", name
        assert fast.conversation(job["conversationId"], "/messages").json() == {"messages": []}
    assert all(e["mediaSeconds"] is None for e in fast.server.ledger())


def test_audio_appends_to_a_video_conversation_in_order(fast, clip, audio_files):
    first = fast.submit_ok(clip.meeting)  # 3 captioned seconds
    second = _upload(fast, audio_files["opus", True], None, first["conversationId"])
    assert second.status_code == 201 and second.json()["conversationId"] == first["conversationId"]
    fast.wait(second.json()["jobId"])
    messages = fast.conversation(first["conversationId"], "/messages").json()["messages"]
    assert [m["text"] for m in messages][:3] == [
        "Can we review the pricing page today?",
        "I will send the pricing page draft tomorrow.",
        "Great, let's schedule a call with the design team.",
    ]
    assert messages[3]["text"] == media.FILLER_TEXT and messages[3]["timeOffset"] == 3.0
    # the filler adds no insight: the captioned part's own are all there are
    items = fast.conversation(first["conversationId"], "/action-items").json()["actionItems"]
    assert [i["text"] for i in items] == [messages[1]["text"], messages[2]["text"]]
    assert [e["endpoint"] for e in fast.server.ledger()] == ["video", "audio"]


def test_media_without_captions_or_audio_gives_no_messages(fast):
    video_only = samples.make_mp4_bytes([("A", "x")] * 2, captions=False, audio=False)
    captioned_video_only = samples.make_mp4_bytes([("Alice", "I will send the notes tomorrow.")], audio=False)
    silent = fast.submit_ok(video_only)
    spoken = fast.submit_ok(captioned_video_only)
    for job in (silent, spoken):
        assert fast.wait(job["jobId"])[-1] == "completed"
    assert fast.conversation(silent["conversationId"], "/messages").json() == {"messages": []}
    _no_insights(fast, silent["conversationId"])
    assert fast.conversation(silent["conversationId"]).json()["members"] == []
    # captions are still what was said, audio track or not
    assert len(fast.conversation(spoken["conversationId"], "/action-items").json()["actionItems"]) == 1
    assert [e["mediaSeconds"] for e in fast.server.ledger()] == [2.0, 1.0]


def test_max_media_seconds_fails_longer_media(spawn, audio_files, mp4):
    api = Api(spawn("--max-media-seconds", "3", speed=0.0, min_job_seconds=0.05))
    short = _upload(api, audio_files["wav", True], "audio/wav").json()  # 2 s
    long_audio = _upload(api, samples.make_audio_bytes("mp3", 4.0, tone=False), None).json()
    long_video = api.submit_ok(mp4.make([("A", "x")] * 4))  # 4 s
    assert api.wait(short["jobId"])[-1] == "completed"
    for job in (long_audio, long_video):
        assert api.wait(job["jobId"])[-1] == "failed"
        assert api.conversation(job["conversationId"], "/messages").json() == {"messages": []}
    seconds = [e["mediaSeconds"] for e in api.server.ledger()]
    assert seconds[0] == pytest.approx(2.0, abs=0.05) and seconds[1] == pytest.approx(4.0, abs=0.1)
    assert api.server.log_path.read_text().count("over the 3 s Symbl takes per file (4 hours, Symbl FAQ)") == 2


def test_audio_url_endpoints_record_the_served_type(fast, loopback, audio_files):
    m4a = audio_files["m4a", True]

    async def serve(request: web.Request) -> web.Response:
        return web.Response(body=m4a, content_type="audio/mp4")

    app = web.Application()
    app.router.add_get("/talk.m4a", serve)
    url = loopback(app).url + "/talk.m4a"
    first = fast.request("POST", "/v1/process/audio/url", json={"url": url})
    assert first.status_code == 201, first.text
    conv = first.json()["conversationId"]
    second = fast.request("PUT", f"/v1/process/audio/url/{conv}", json={"url": url})
    assert second.status_code == 201, second.text
    fast.wait(second.json()["jobId"])
    log = fast.server.ledger()
    assert [(e["endpoint"], e["contentType"]) for e in log] == [("audio/url", "audio/mp4")] * 2
    assert [e["mediaSeconds"] for e in log] == [2.0, 2.0]
    offsets = [m["timeOffset"] for m in fast.conversation(conv, "/messages").json()["messages"]]
    assert offsets[0] == 0.0 and 2.0 in offsets


@pytest.mark.unit
def test_max_media_seconds_flag_and_env(monkeypatch):
    parser = build_parser()
    assert config_from_args(parser.parse_args([]), parser).max_media_seconds == 14400
    assert config_from_args(parser.parse_args(["--max-media-seconds", "30"]), parser).max_media_seconds == 30
    monkeypatch.setenv("SYMBL_SANDBOX_MAX_MEDIA_SECONDS", "12.5")
    parser = build_parser()
    assert config_from_args(parser.parse_args([]), parser).max_media_seconds == 12.5
    with pytest.raises(SystemExit):
        config_from_args(parser.parse_args(["--max-media-seconds", "0"]), parser)


@pytest.mark.unit
def test_filler_is_left_out_of_every_insight_rule_by_its_mark_not_its_wording():
    from datetime import UTC, datetime

    from symbl_sandbox import insights

    text = "I will send the pricing page to Bob on Friday. Can we schedule a call about the pricing page?"
    options = {
        "customVocabulary": ["pricing page"],
        "trackers": [{"name": "Pricing", "vocabulary": ["pricing page"]}],
        "entities": [{"customType": "Product", "text": "pricing page"}],
    }
    filler = insights.Transcript("c1", datetime(2026, 12, 1, tzinfo=UTC), options)
    filler.add([media.Cue(0.0, 5.0, "Bob", text, filler=True)] * 3, 0.0, 15.0)
    spoken = insights.Transcript("c2", datetime(2026, 12, 1, tzinfo=UTC), options)
    spoken.add([media.Cue(0.0, 5.0, "Bob", text)] * 3, 0.0, 15.0)
    for name in ("questions", "action_items", "follow_ups", "topics", "entities", "trackers", "summary", "insights"):
        assert getattr(spoken, name)(), name  # the same words, spoken, make every kind of insight
        assert getattr(filler, name)() == [], name
    assert [m["text"] for m in filler.render_messages()] == [text] * 3
    cues = media.filler_cues(12.0, ["A", "B", "C"])
    assert [(c.start, c.speaker, c.filler) for c in cues] == [(0.0, "A", True), (4.0, "B", True), (8.0, "C", True)]
