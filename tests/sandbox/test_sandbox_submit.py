"""Submit and append endpoints: bodies, options, validation and the ledger, over real HTTP."""

from __future__ import annotations

import hashlib
import json
import re
import uuid

import pytest
import requests
from aiohttp import web

from symbl_sandbox import samples

pytestmark = pytest.mark.integration

UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def test_post_then_put_keeps_conversation_and_records_ledger(api, clip):
    first = api.submit_ok(clip.meeting, params={"name": "Weekly sync"})
    assert re.fullmatch(r"\d{16}", first["conversationId"])
    assert UUID_RE.match(first["jobId"])
    second = api.submit_ok(clip.second, first["conversationId"])
    assert second["conversationId"] == first["conversationId"]
    assert second["jobId"] != first["jobId"]
    ledger = api.server.ledger()
    assert [(e["seq"], e["method"], e["endpoint"]) for e in ledger] == [(1, "POST", "video"), (2, "PUT", "video")]
    assert ledger[0]["sha256"] == hashlib.sha256(clip.meeting).hexdigest()
    assert ledger[0]["size"] == len(clip.meeting)
    assert ledger[1]["sha256"] == hashlib.sha256(clip.second).hexdigest()
    assert ledger[0]["options"] == {"name": "Weekly sync"}
    assert ledger[0]["jobId"] == first["jobId"] and ledger[0]["receivedAt"].endswith("Z")
    meta = api.conversation(first["conversationId"]).json()
    assert meta["name"] == "Weekly sync" and meta["type"] == "meeting"


def test_chunked_body_is_accepted(api, clip):
    def chunks():
        for i in range(0, len(clip.one), 1000):
            yield clip.one[i : i + 1000]

    resp = api.submit(chunks())
    assert resp.status_code == 201, resp.text
    assert api.server.ledger()[0]["sha256"] == hashlib.sha256(clip.one).hexdigest()
    assert api.wait(resp.json()["jobId"])[-1] == "completed"


@pytest.mark.parametrize(
    ("content_type", "body", "needle"),
    [
        ("application/octet-stream", None, "Content-Type"),
        (None, None, "Content-Type"),
        ("video/mp4", samples.not_mp4_bytes(), "ftyp"),
        ("video/mp4", b"", "MP4"),
        ("video/mp4", b"\x00\x00\x00", "MP4"),
    ],
)
def test_bad_video_bodies_are_400(api, clip, content_type, body, needle):
    headers = {"Content-Type": content_type} if content_type else {}
    data = clip.one if body is None else body
    if content_type is None:
        resp = requests.post(api.url + "/v1/process/video", data=data, headers={**api.auth}, timeout=10)
    else:
        resp = api.submit(data, headers=headers)
    assert resp.status_code == 400, resp.text
    assert needle in resp.json()["message"]
    assert api.server.ledger() == []


def test_unknown_conversation_on_put_is_404_and_body_is_drained(api, clip):
    big = samples.mp4_header() + bytes(3 << 20)
    resp = api.submit(big, "1234567890123456")
    assert resp.status_code == 404 and "message" in resp.json()
    # the connection stays usable: the next request on a session works
    with requests.Session() as s:
        s.headers.update({**api.auth, "Content-Type": "video/mp4"})
        r1 = s.put(api.url + "/v1/process/video/1234567890123456", data=big, timeout=10)
        r2 = s.get(api.url + "/sandbox/health", timeout=10)
    assert r1.status_code == 404 and r2.status_code == 200
    assert api.server.ledger() == []


OPTION_FORMS = [
    # the docs' JSON-in-one-parameter form and the official Python SDK's json.dumps form
    {"customVocabulary": '["Platform","Discussion"]'},
    # repeated keys
    [("customVocabulary", "Platform"), ("customVocabulary", "Discussion")],
    # qs-style key[n]
    [("customVocabulary[0]", "Platform"), ("customVocabulary[1]", "Discussion")],
    [("customVocabulary[]", "Platform"), ("customVocabulary[]", "Discussion")],
    # Go SDK: [a,b] unquoted
    {"customVocabulary": "[Platform,Discussion]"},
    # the official Python SDK's one-parameter-per-character bug
    [("customVocabulary", ch) for ch in '["Platform", "Discussion"]'],
]


@pytest.mark.parametrize("params", OPTION_FORMS)
def test_list_option_encodings(api, clip, params):
    api.submit_ok(clip.one, params=params)
    assert api.server.ledger()[0]["options"] == {"customVocabulary": ["Platform", "Discussion"]}


def test_every_option_parsed(api, clip):
    entities = [{"customType": "Product", "text": "pricing page", "value": "Pricing"}]
    trackers = [{"name": "Pricing", "vocabulary": ["pricing", "cost"]}, {"id": "5237067555536896"}]
    channels = [{"channel": 1, "speaker": {"name": "Alice", "email": "alice@example.com"}}]
    params = {
        "name": "All options",
        "customVocabulary": json.dumps(["Platform"]),
        "confidenceThreshold": "0.6",
        "detectPhrases": "true",
        "webhookUrl": "https://hooks.example.com/symbl",
        "entities": json.dumps(entities),
        "detectEntities": "false",
        "languageCode": "en-GB",
        "mode": "phone",
        "enableSeparateRecognitionPerChannel": "TRUE",
        "channelMetadata": json.dumps(channels),
        "trackers": json.dumps(trackers),
        "enableAllTrackers": "false",
        "enableSummary": "true",
        "enableSpeakerDiarization": "true",
        "diarizationSpeakerCount": "2",
        "conversationType": "sales",
        "metadata": json.dumps({"salesStage": "general"}),
        "features": json.dumps({"featureList": ["insights"]}),
        "someUnknownParam": "ignored",
    }
    api.submit_ok(clip.one, params=params)
    options = api.server.ledger()[0]["options"]
    assert options == {
        "name": "All options",
        "customVocabulary": ["Platform"],
        "confidenceThreshold": 0.6,
        "detectPhrases": True,
        "webhookUrl": "https://hooks.example.com/symbl",
        "entities": entities,
        "detectEntities": False,
        "languageCode": "en-GB",
        "mode": "phone",
        "enableSeparateRecognitionPerChannel": True,
        "channelMetadata": channels,
        "trackers": trackers,
        "enableAllTrackers": False,
        "enableSummary": True,
        "enableSpeakerDiarization": True,
        "diarizationSpeakerCount": 2,
        "conversationType": "sales",
        "metadata": {"salesStage": "general"},
        "features": {"featureList": ["insights"]},
    }


def test_bracketed_objects_in_query(api, clip):
    params = [
        ("entities[0][customType]", "Product"),
        ("entities[0][text]", "pricing"),
        ("channelMetadata[0][channel]", "2"),
        ("channelMetadata[0][speaker][name]", "Bob"),
        ("channelMetadata[0][speaker][email]", "bob@example.com"),
        ("trackers", '{"name": "T", "vocabulary": ["a b"]}'),
        ("trackers", '{"name": "U", "vocabulary": ["c"]}'),
    ]
    api.submit_ok(clip.one, params=params)
    options = api.server.ledger()[0]["options"]
    assert options["entities"] == [{"customType": "Product", "text": "pricing"}]
    assert options["channelMetadata"] == [{"channel": 2, "speaker": {"name": "Bob", "email": "bob@example.com"}}]
    assert [t["name"] for t in options["trackers"]] == ["T", "U"]


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("confidenceThreshold", "0.4"),
        ("confidenceThreshold", "1.5"),
        ("confidenceThreshold", "high"),
        ("mode", "loud"),
        ("languageCode", "xx-XX"),
        ("languageCode", "en"),
        ("diarizationSpeakerCount", "0"),
        ("diarizationSpeakerCount", "2.5"),
        ("detectEntities", "yes"),
        ("enableSummary", "1"),
        ("detectPhrases", ""),
        ("webhookUrl", "ftp://example.com/hook"),
        ("webhookUrl", "not a url"),
        ("channelMetadata", '[{"channel": "one", "speaker": {"name": "A"}}]'),
        ("channelMetadata", '[{"channel": 1}]'),
        ("channelMetadata", '{"oops"'),
        ("entities", '[{"customType": "X"}]'),
        ("entities", '["just text"]'),
        ("trackers", '[{"name": "T"}]'),
        ("trackers", '[{"vocabulary": ["x"]}]'),
        ("customVocabulary", "[1, 2]"),
        ("metadata", "not json"),
    ],
)
def test_invalid_options_are_400_naming_the_parameter(api, clip, name, value):
    resp = api.submit(clip.one, params={name: value})
    assert resp.status_code == 400, resp.text
    assert name in resp.json()["message"]
    assert api.server.ledger() == []


def test_all_languages_accepted(api, clip):
    codes = (
        "en-US en-GB en-AU en-IE en-IN en-ZA ru-RU fr-CA fr-FR de-DE it-IT nl-NL ja-JP es-US es-ES ar-SA hi-IN "
        "pt-BR pt-PT fa-IR"
    )
    for code in codes.split():
        assert api.submit(clip.one, params={"languageCode": code}).status_code == 201, code


@pytest.fixture
def media_server(loopback):
    """Serves registered bodies like a presigned URL would; ``redirect.mp4`` answers 302."""
    files: dict[str, bytes] = {}

    async def serve(request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        if name == "redirect.mp4":
            raise web.HTTPFound("/files/x.mp4")
        if name not in files:
            raise web.HTTPNotFound()
        return web.Response(body=files[name], content_type="video/mp4")

    app = web.Application()
    app.router.add_get("/files/{name}", serve)
    server = loopback(app)

    class Media:
        base = server.url + "/files/"

        def add(self, data: bytes) -> str:
            name = f"{uuid.uuid4().hex}.mp4"
            files[name] = data
            return self.base + name

    return Media()


def test_url_endpoints_download_and_append(api, clip, media_server):
    url1, url2 = media_server.add(clip.meeting), media_server.add(clip.second)
    first = api.request(
        "POST", "/v1/process/video/url", json={"url": url1, "name": "By URL", "enableSpeakerDiarization": True}
    )
    assert first.status_code == 201, first.text
    conv = first.json()["conversationId"]
    # diarization parameters may come in the query string of the URL endpoints
    second = api.request(
        "PUT", f"/v1/process/video/url/{conv}", json={"url": url2}, params={"diarizationSpeakerCount": "3"}
    )
    assert second.status_code == 201 and second.json()["conversationId"] == conv
    assert api.wait(first.json()["jobId"])[-1] == "completed"
    assert api.wait(second.json()["jobId"])[-1] == "completed"
    ledger = api.server.ledger()
    assert [e["endpoint"] for e in ledger] == ["video/url", "video/url"]
    assert ledger[0]["url"] == url1 and ledger[0]["options"]["enableSpeakerDiarization"] is True
    assert ledger[1]["options"] == {"diarizationSpeakerCount": 3}
    assert ledger[0]["sha256"] == hashlib.sha256(clip.meeting).hexdigest() and ledger[0]["size"] == len(clip.meeting)
    texts = [m["text"] for m in api.conversation(conv, "/messages").json()["messages"]]
    assert texts[0] == "Can we review the pricing page today?"
    assert texts[-1] == "Sounds good to me."


def test_presigned_s3_url(api, clip, s3, bucket):
    client = s3.client()
    client.put_object(Bucket=bucket, Key="videos/a.mp4", Body=clip.meeting)
    url = client.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "videos/a.mp4"}, ExpiresIn=600)
    resp = api.request("POST", "/v1/process/video/url", json={"url": url})
    assert resp.status_code == 201, resp.text
    assert api.wait(resp.json()["jobId"])[-1] == "completed"
    assert api.server.ledger()[0]["sha256"] == hashlib.sha256(clip.meeting).hexdigest()


def test_unreachable_redirecting_or_non_mp4_urls_fail_the_job(api, media_server):
    for url in (
        media_server.base + "missing.mp4",
        media_server.base + "redirect.mp4",
        media_server.add(samples.not_mp4_bytes()),
        "http://127.0.0.1:1/nothing-listens-here.mp4",
    ):
        resp = api.request("POST", "/v1/process/video/url", json={"url": url})
        assert resp.status_code == 201, resp.text
        assert api.wait(resp.json()["jobId"])[-1] == "failed", url


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        ({}, "url"),
        ({"url": "ftp://x/y.mp4"}, "url"),
        ({"url": "http://x/y.mp4", "confidenceThreshold": 0.1}, "confidenceThreshold"),
        ({"url": "http://x/y.mp4", "detectEntities": "maybe"}, "detectEntities"),
        ({"url": "http://x/y.mp4", "trackers": [{"name": "x", "vocabulary": "notalist"}]}, "trackers"),
        ([1, 2], "object"),
    ],
)
def test_url_endpoint_validation(api, body, needle):
    resp = api.request("POST", "/v1/process/video/url", json=body)
    assert resp.status_code == 400, resp.text
    assert needle in resp.json()["message"]


def test_url_put_unknown_conversation(api):
    resp = api.request("PUT", "/v1/process/video/url/999", json={"url": "http://127.0.0.1:1/a.mp4"})
    assert resp.status_code == 404


def test_audio_endpoints(api, clip):
    ok = api.request("POST", "/v1/process/audio", data=clip.one, headers={"Content-Type": "audio/wav"})
    assert ok.status_code == 201, ok.text
    untyped = api.request(
        "PUT", f"/v1/process/audio/{ok.json()['conversationId']}", data=b"RIFF....", headers={"Content-Type": ""}
    )
    assert untyped.status_code == 201, untyped.text
    bad = api.request("POST", "/v1/process/audio", data=clip.one, headers={"Content-Type": "video/ogg"})
    assert bad.status_code == 400
    assert [e["endpoint"] for e in api.server.ledger()] == ["audio", "audio"]
    assert api.wait(ok.json()["jobId"])[-1] == "completed"
    assert api.wait(untyped.json()["jobId"])[-1] == "failed"  # "RIFF...." cannot be decoded
