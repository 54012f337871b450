"""The rows of issue #15's fidelity table, one test each, against a real sandbox process over HTTP."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
import requests

from symbl_sandbox import conversation_list

pytestmark = pytest.mark.integration


def _iso(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"


def _ts(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


@pytest.fixture
def three(api, clip):
    """Three conversations, submitted in order, with names and metadata."""
    ids = []
    for name, meta in (("Alpha", {"team": "red"}), ("Bravo", {"team": "blue"}), ("Charlie", {"team": "red"})):
        job = api.submit_ok(clip.one, params={"name": name, "metadata": f'{{"team": "{meta["team"]}"}}'})
        ids.append(job["conversationId"])
    return ids


def _names(api, **params) -> list[str]:
    resp = api.get("/v1/conversations", params=params)
    assert resp.status_code == 200, resp.text
    return [c["name"] for c in resp.json()["conversations"]]


def test_list_conversations_default_order_is_ascending(api, three):
    assert _names(api) == ["Alpha", "Bravo", "Charlie"]
    assert _names(api, order="desc") == ["Charlie", "Bravo", "Alpha"]
    assert _names(api, sort="conversation.name", order="desc", limit="2", offset="1") == ["Bravo", "Alpha"]
    assert _names(api, limit="0") == []
    assert _names(api, limit="65536") == ["Alpha", "Bravo", "Charlie"]


def test_list_conversations_time_window_and_filter(api, three):
    convs = api.get("/v1/conversations").json()["conversations"]
    second = _ts(convs[1]["startTime"])
    assert _names(api, startTime=_iso(second)) == ["Bravo", "Charlie"]
    # the default window is the last 7 days: a window that ended a week ago holds nothing
    week_ago = datetime.now(UTC) - timedelta(days=7, minutes=1)
    assert _names(api, endTime=_iso(week_ago)) == []
    assert _names(api, filter="conversation.name==Bravo") == ["Bravo"]
    assert _names(api, filter="metadata.team==red;conversation.name!=Alpha") == ["Charlie"]
    assert _names(api, filter="conversation.name=in=(Alpha,Charlie)") == ["Alpha", "Charlie"]
    assert _names(api, filter=f"conversation.startTime=ge={_iso(second)}") == ["Bravo", "Charlie"]


@pytest.mark.parametrize(
    "params, field",
    [
        ({"limit": "-1"}, "limit"),
        ({"limit": "65537"}, "limit"),
        ({"limit": "ten"}, "limit"),
        ({"offset": "-2"}, "offset"),
        ({"order": "newest"}, "order"),
        ({"startTime": "yesterday"}, "startTime"),
        ({"startTime": "2024-01-02T00:00:00Z", "endTime": "2024-01-01T00:00:00Z"}, "startTime"),
        ({"sort": "conversation.color"}, "sort"),
        ({"filter": "conversation.name==a,conversation.name==b"}, "filter"),
        ({"filter": "conversation.name==a;metadata.x==1;metadata.y==2"}, "filter"),
        ({"filter": "name"}, "filter"),
    ],
)
def test_list_conversations_bad_parameters_are_400(api, params, field):
    resp = api.get("/v1/conversations", params=params)
    assert resp.status_code == 400, resp.text
    assert f'"{field}"' in resp.json()["message"]


def test_filter_parser_units():
    now = datetime(2024, 1, 8, tzinfo=UTC)
    q = conversation_list.parse_query({}, now=now)
    assert (q.limit, q.offset, q.descending, q.sort) == (20, 0, False, ["startTime"])
    assert q.start == now - timedelta(days=7) and q.end == now
    q = conversation_list.parse_query({"filter": "conversation.startDate<='2024-01-01T00:00:00Z'"}, now=now)
    assert q.start is None  # only a filter: no default window
    [comp] = q.filters
    assert comp.selector == "conversation.startTime" and comp.op == "le"
    assert comp.values == [datetime(2024, 1, 1, tzinfo=UTC)]
    assert [c.op for c in conversation_list.parse_filter("metadata.a=gt=1 and metadata.b=out=('x','y')")] == [
        "gt",
        "out",
    ]


def test_url_body_from_the_reference_with_empty_webhook_and_channel_metadata(api, clip, loopback):
    from aiohttp import web

    async def media(request):
        return web.Response(body=clip.one, content_type="video/mp4")

    app = web.Application()
    app.router.add_get("/a.mp4", media)
    server = loopback(app)
    body = {
        "url": server.url + "/a.mp4",
        "name": "Business Meeting",
        "webhookUrl": "",
        "customVocabulary": ["Platform", "Discussion"],
        "confidenceThreshold": 0.6,
        "detectPhrases": True,
        "languageCode": "en-US",
        "channelMetadata": [],
    }
    resp = api.request("POST", "/v1/process/video/url", json=body)
    assert resp.status_code == 201, resp.text
    assert api.wait(resp.json()["jobId"])[-1] == "completed"
    entry = api.server.ledger()[0]
    assert "webhookUrl" not in entry["options"] and entry["options"]["channelMetadata"] == []
    # the file endpoint takes ?webhookUrl= (empty) the same way
    file_resp = api.submit(clip.one, params={"webhookUrl": ""})
    assert file_resp.status_code == 201, file_resp.text
    # a non-empty bad one is still rejected, naming the option
    bad = api.submit(clip.one, params={"webhookUrl": "not a url"})
    assert bad.status_code == 400 and '"webhookUrl"' in bad.json()["message"]


def test_verbose_messages_two_decimals_offsets_from_first_sentence(api, mp4):
    # 1/3-second cues, so offsets would have many decimals without rounding
    data = mp4.make([("Ann", "One two three."), ("Bob", "Four five six."), ("Ann", "Seven.")], seconds_per_cue=1 / 3)
    job = api.submit_ok(data)
    assert api.wait(job["jobId"])[-1] == "completed"
    messages = api.conversation(job["conversationId"], "/messages", verbose="true").json()["messages"]
    assert messages[0]["timeOffset"] == 0.0
    first = _ts(messages[0]["startTime"])
    for m in messages:
        values = [m["timeOffset"], m["duration"], *(x for w in m["words"] for x in (w["timeOffset"], w["duration"]))]
        for value in values:
            assert re.fullmatch(r"-?\d+(\.\d{1,2})?", repr(float(value))), value
        assert abs((_ts(m["startTime"]) - first).total_seconds() - m["timeOffset"]) < 0.006
        assert m["words"][0]["timeOffset"] == m["timeOffset"]


def test_offsets_count_from_the_first_sentence_not_media_start(mp4):
    from symbl_sandbox import insights, media

    t = insights.Transcript("1", datetime(2024, 1, 1, tzinfo=UTC))
    t.add([media.Cue(2.5, 3.0, "A", "Late start."), media.Cue(4.257, 5.0, "B", "Next one.")], 0.0, 6.0)
    msgs = t.render_messages(verbose=True)
    assert [m["timeOffset"] for m in msgs] == [0.0, 1.76]
    assert [m["duration"] for m in msgs] == [0.5, 0.74]
    assert msgs[0]["startTime"] == "2024-01-01T00:00:02.500Z"


def test_legacy_entity_shape_flag(spawn, clip):
    from tests.sandbox.conftest import Api

    api = Api(spawn("--entity-shape", "legacy"))
    job = api.submit_ok(clip.meeting, params={"detectEntities": "true"})
    assert api.wait(job["jobId"])[-1] == "completed"
    entities = api.conversation(job["conversationId"], "/entities").json()["entities"]
    assert {e["type"] for e in entities} == {"date"}
    assert all(set(e) == {"type", "value", "text", "messageRefs"} for e in entities)
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\d", e["value"]) for e in entities)


def test_truncated_mp4_fails_the_job(api, clip):
    from symbl_sandbox import samples

    job = api.submit_ok(samples.truncated_mp4_bytes(clip.meeting))
    assert api.wait(job["jobId"])[-1] == "failed"
    conv = job["conversationId"]
    assert api.conversation(conv, "/messages").json() == {"messages": []}
    # the conversation still exists and can be appended to with good media
    again = api.submit_ok(clip.one, conv)
    assert api.wait(again["jobId"])[-1] == "completed"
    assert len(api.conversation(conv, "/messages").json()["messages"]) == 1


def test_token_401_for_missing_secret_names_nothing_secret(clean_sandbox):
    resp = requests.post(
        clean_sandbox.url + "/oauth2/token:generate", json={"type": "application", "appId": "x"}, timeout=10
    )
    assert resp.status_code == 401 and set(resp.json()) == {"message"}
