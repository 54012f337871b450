"""Experience API: the documented request/response and the shareable summary page the URL serves."""

from __future__ import annotations

import html
import re
from urllib.parse import urlsplit

import pytest
import requests

pytestmark = pytest.mark.integration

TEXT_BODY = {
    "name": "verbose-text-summary",
    "logo": "https://example.com/logo.png",
    "favicon": "https://example.com/favicon.png",
    "color": {"background": "#0A2136", "topicsFilter": "#FF0000", "insightsFilter": "#FF0000"},
    "font": {"family": "roboto"},
    "readOnly": True,
}


@pytest.fixture
def meeting(api, clip):
    job = api.submit_ok(clip.meeting, params={"name": "Pricing <review> & plan"})
    assert api.wait(job["jobId"])[-1] == "completed"
    return job["conversationId"]


def _post(api, conv, body):
    return api.request("POST", f"/v1/conversations/{conv}/experiences", json=body)


def test_verbose_text_summary_returns_absolute_url_on_request_host(api, meeting):
    resp = _post(api, meeting, TEXT_BODY)
    assert resp.status_code == 200, resp.text
    body = resp.json()
    assert set(body) == {"name", "url"} and body["name"] == "verbose-text-summary"
    url = urlsplit(body["url"])
    assert f"{url.scheme}://{url.netloc}" == api.url  # the host:port that was called
    assert re.fullmatch(r"/meeting/[A-Za-z0-9_-]{20,}", url.path)
    # the same request through another spelling of the host gives a link on that host
    other = api.url.replace("127.0.0.1", "localhost")
    resp = requests.post(
        f"{other}/v1/conversations/{meeting}/experiences", json=TEXT_BODY, headers=api.auth, timeout=10
    )
    assert resp.json()["url"].startswith(other + "/meeting/")


def test_public_url_overrides_the_request_host(spawn, clip):
    from tests.sandbox.conftest import Api

    api = Api(spawn("--public-url", "http://localhost:18900/"))
    job = api.submit_ok(clip.one)
    api.wait(job["jobId"])
    url = _post(api, job["conversationId"], {"name": "verbose-text-summary"}).json()["url"]
    assert url.startswith("http://localhost:18900/meeting/")
    # the page itself is served whatever host it is reached by
    assert requests.get(api.url + urlsplit(url).path, timeout=10).status_code == 200


def test_summary_page_renders_without_auth(api, meeting):
    url = _post(api, meeting, TEXT_BODY).json()["url"]
    page = requests.get(url, timeout=10)  # no Authorization header: a shareable link
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    text = page.text
    assert '<h1 id="conversation-name">' + html.escape("Pricing <review> & plan") + "</h1>" in text
    assert "<review>" not in text  # escaped
    for section in ("summary", "topics", "action-items", "transcript"):
        assert f'<section id="{section}">' in text
    assert "I will send the pricing page draft tomorrow." in text
    assert '<span class="speaker">Bob</span>' in text
    assert "pricing page" in text.split('id="topics"')[1].split("</section>")[0]
    assert "background:#0A2136" in text and "https://example.com/logo.png" in text


def test_summary_page_reflects_appends(api, meeting, clip):
    url = _post(api, meeting, {"name": "verbose-text-summary"}).json()["url"]
    assert "We agreed to ship" not in requests.get(url, timeout=10).text
    job = api.submit_ok(clip.second, meeting)
    assert api.wait(job["jobId"])[-1] == "completed"
    assert "We agreed to ship the pricing page first." in requests.get(url, timeout=10).text


def test_video_summary_needs_video_url(api, meeting):
    resp = _post(api, meeting, {"name": "video-summary"})
    assert resp.status_code == 400 and "videoUrl" in resp.json()["message"]
    resp = _post(api, meeting, {"name": "video-summary", "videoUrl": "https://example.com/a.mp4"})
    assert resp.status_code == 200
    assert '<video controls src="https://example.com/a.mp4"' in requests.get(resp.json()["url"], timeout=10).text


@pytest.mark.parametrize(
    "body, field",
    [
        ({"name": "text-summary"}, "name"),
        ({}, "name"),
        ({"name": "verbose-text-summary", "summaryURLExpiresIn": -1}, "summaryURLExpiresIn"),
        ({"name": "verbose-text-summary", "readOnly": "yes"}, "readOnly"),
        ({"name": "verbose-text-summary", "logo": "ftp://x/logo.png"}, "logo"),
        ({"name": "verbose-text-summary", "color": "red"}, "color"),
    ],
)
def test_bad_request_bodies_are_400_naming_the_field(api, meeting, body, field):
    resp = _post(api, meeting, body)
    assert resp.status_code == 400 and f'"{field}"' in resp.json()["message"]


def test_not_json_is_400(api, meeting):
    resp = api.request("POST", f"/v1/conversations/{meeting}/experiences", data=b"{nope")
    assert resp.status_code == 400


def test_unknown_conversation_404_and_token_401(api):
    assert _post(api, "1234567890123456", TEXT_BODY).status_code == 404
    resp = requests.post(f"{api.url}/v1/conversations/1234567890123456/experiences", json=TEXT_BODY, timeout=10)
    assert resp.status_code == 401


def test_unknown_expired_and_deleted_pages_are_404(api, meeting):
    assert requests.get(api.url + "/meeting/not-a-token", timeout=10).status_code == 404
    expiring = _post(api, meeting, {"name": "verbose-text-summary", "summaryURLExpiresIn": 0.001}).json()["url"]
    forever = _post(api, meeting, {"name": "verbose-text-summary", "summaryURLExpiresIn": 0}).json()["url"]
    assert requests.get(expiring, timeout=10).status_code == 404
    assert requests.get(forever, timeout=10).status_code == 200
    assert api.request("DELETE", f"/v1/conversations/{meeting}").status_code == 200
    assert requests.get(forever, timeout=10).status_code == 404
