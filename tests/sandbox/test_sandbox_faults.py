"""Fault injection, ledger, stats and reset: the /sandbox paths over real HTTP."""

from __future__ import annotations

import hashlib
import time

import aiohttp
import pytest
import requests

from symbl_sandbox import samples

pytestmark = pytest.mark.integration

VIDEO = {"method": "POST", "path": "/v1/process/video"}


def test_status_fault_scripted_times(api, clip):
    api.server.fault(
        match=VIDEO, action="status", status=503, body={"message": "busy"}, headers={"Retry-After": "1"}, times=2
    )
    big = clip.one + bytes(2 << 20)  # the body is drained, so the client sees the response cleanly
    for _ in range(2):
        resp = api.submit(big)
        assert resp.status_code == 503 and resp.json() == {"message": "busy"}
        assert resp.headers["Retry-After"] == "1"
    assert api.submit(clip.one).status_code == 201
    assert len(api.server.ledger()) == 1
    faults = api.server.request("GET", "/sandbox/faults").json()["faults"]
    assert faults[0]["applied"] == 2 and faults[0]["times"] == 2


def test_fault_match_by_glob_and_method(api, clip):
    api.server.fault(match={"path": "/v1/job/*"}, action="status", status=500, times=None)
    job = api.submit_ok(clip.one)  # not matched: other path
    for _ in range(3):
        assert api.get(f"/v1/job/{job['jobId']}").status_code == 500
    api.server.request("DELETE", "/sandbox/faults").raise_for_status()
    assert api.get(f"/v1/job/{job['jobId']}").status_code == 200
    api.server.fault(match={"method": "PUT", "path": "/v1/process/video*"}, action="status", status=502)
    assert api.submit(clip.one).status_code == 201  # POST is not matched
    assert api.submit(clip.one, job["conversationId"]).status_code == 502


def test_latency_fault(api, clip):
    api.server.fault(match=VIDEO, action="latency", delay=0.6)
    t0 = time.monotonic()
    assert api.submit(clip.one).status_code == 201
    assert time.monotonic() - t0 >= 0.6
    t0 = time.monotonic()
    assert api.submit(clip.one).status_code == 201
    assert time.monotonic() - t0 < 0.5


@pytest.mark.parametrize("phase", ["mid_body", "after_body"])
def test_drop_before_accept_records_nothing(api, phase):
    api.server.fault(match=VIDEO, action="drop", phase=phase, after_bytes=65536)
    body = samples.mp4_header() + bytes(1 << 20)
    with pytest.raises(requests.ConnectionError):
        api.submit(body)
    assert api.server.ledger() == []
    assert api.server.stats()["active_jobs"] == 0
    assert api.submit(body).status_code == 201  # times=1: the next one goes through


def test_drop_after_accept_is_the_ambiguous_case(api, clip):
    api.server.fault(match=VIDEO, action="drop", phase="after_accept")
    with pytest.raises(requests.ConnectionError):
        api.submit(clip.one)
    ledger = api.server.ledger()
    assert len(ledger) == 1
    assert api.wait(ledger[0]["jobId"])[-1] == "completed"


async def test_drop_is_a_connection_error_for_aiohttp_clients(api, clip):
    # aiohttp retries an idempotent request once after a disconnect, so a GET needs two drops
    api.server.fault(match={"path": "/v1/job/*"}, action="drop", times=2)
    api.server.fault(match=VIDEO, action="drop", phase="after_body", times=1)
    async with aiohttp.ClientSession(headers=api.auth) as session:
        with pytest.raises(aiohttp.ClientConnectionError):
            async with session.get(api.url + "/v1/job/x") as resp:
                await resp.read()
        async with session.get(api.url + "/v1/job/x") as resp:
            assert resp.status == 404
        with pytest.raises(aiohttp.ClientConnectionError):
            headers = {"Content-Type": "video/mp4"}
            async with session.post(api.url + "/v1/process/video", data=clip.one, headers=headers):
                pass
    assert api.server.ledger() == []


def test_rate_fault_is_reproducible_with_a_seed(api):
    def pattern() -> list[int]:
        api.server.reset()
        api.token = api.new_token()["accessToken"]
        api.server.fault(match={"path": "/v1/job/*"}, action="status", status=503, rate=0.5, seed=7)
        return [api.get("/v1/job/x").status_code for _ in range(20)]

    first, second = pattern(), pattern()
    assert first == second
    assert set(first) == {503, 404}


def test_invalid_fault_specs(clean_sandbox):
    for spec in (
        {"action": "explode"},
        {"action": "drop", "phase": "sometime"},
        {"action": "status", "rate": 2},
        {"action": "status", "times": -1},
        {"action": "status", "match": "nope"},
    ):
        assert clean_sandbox.request("POST", "/sandbox/faults", json=spec).status_code == 400, spec
    assert clean_sandbox.request("POST", "/sandbox/faults", data=b"{").status_code == 400
    assert clean_sandbox.request("GET", "/sandbox/faults").json() == {"faults": []}


def test_stats_and_reset(api, clip):
    job = api.submit_ok(clip.one)
    api.get(f"/v1/job/{job['jobId']}")
    api.server.fault(match=VIDEO, action="status", status=500)
    stats = api.server.stats()
    assert stats["token_requests"] == 1 and stats["tokens_issued"] == 1
    assert stats["requests"]["POST /v1/process/video"] == 1
    assert stats["requests"]["GET /v1/job/{jobId}"] == 1
    assert stats["active_jobs"] == 1 and stats["rejected_429"] == 0
    api.server.reset()
    assert api.server.stats() == {
        "token_requests": 0,
        "tokens_issued": 0,
        "requests": {},
        "active_jobs": 0,
        "rejected_429": 0,
    }
    assert api.server.ledger() == []
    assert api.server.request("GET", "/sandbox/faults").json() == {"faults": []}
    assert api.get(f"/v1/job/{job['jobId']}").status_code == 401  # tokens are gone too
    api.token = api.new_token()["accessToken"]
    assert api.get(f"/v1/job/{job['jobId']}").status_code == 404
    assert api.conversation(job["conversationId"]).status_code == 404


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_status_fault_after_accept_keeps_the_submission(api, clip, status):
    """A gateway answering 5xx for a backend that took the upload: the job runs and is in the log."""
    first = api.submit_ok(clip.one)
    conv = first["conversationId"]
    put = {"method": "PUT", "path": "/v1/process/video/*"}
    api.server.fault(match=put, action="status", status=status, phase="after_accept", body={"message": "gateway"})
    resp = api.submit(clip.second, conv)
    assert resp.status_code == status and resp.json() == {"message": "gateway"}
    log = api.server.ledger()
    assert [(e["method"], e["conversationId"]) for e in log] == [("POST", conv), ("PUT", conv)]
    assert log[1]["sha256"] == hashlib.sha256(clip.second).hexdigest()
    assert api.wait(log[1]["jobId"])[-1] == "completed"
    texts = [m["text"] for m in api.conversation(conv, "/messages").json()["messages"]]
    assert texts == ["Hello everyone.", "We agreed to ship the pricing page first.", "Sounds good to me."]
    faults = api.server.request("GET", "/sandbox/faults").json()["faults"]
    assert faults == [
        {
            "id": faults[0]["id"],
            "match": put,
            "action": "status",
            "times": 1,
            "applied": 1,
            "status": status,
            "body": {"message": "gateway"},
            "headers": {},
            "phase": "after_accept",
        }
    ]
    assert api.submit(clip.one, conv).status_code == 201  # times=1: the next one is answered normally


def test_status_fault_after_accept_on_a_refused_or_url_request(api, clip):
    api.server.fault(match=VIDEO, action="status", status=504, phase="after_accept", times=2)
    unauthorized = requests.post(
        api.url + "/v1/process/video", data=clip.one, headers={"Content-Type": "video/mp4"}, timeout=30
    )
    assert unauthorized.status_code == 504  # the fault answers; nothing was accepted behind it
    assert api.submit(clip.one, params={"confidenceThreshold": "0.1"}).status_code == 504
    assert api.server.ledger() == []
    assert api.server.stats()["active_jobs"] == 0
    url = {"method": "POST", "path": "/v1/process/audio/url"}
    api.server.fault(match=url, action="status", status=502, phase="after_accept")
    resp = api.request("POST", "/v1/process/audio/url", json={"url": "http://127.0.0.1:1/a.wav"})
    assert resp.status_code == 502 and resp.json() == {"message": "Injected fault"}
    assert [e["endpoint"] for e in api.server.ledger()] == ["audio/url"]


def test_status_fault_phase_is_checked(clean_sandbox):
    for spec in (
        {"action": "status", "phase": "mid_body"},
        {"action": "status", "phase": "later"},
        {"action": "status", "status": "504"},
        {"action": "status", "status": 99},
    ):
        resp = clean_sandbox.request("POST", "/sandbox/faults", json=spec)
        assert resp.status_code == 400, spec
    assert (
        "after_body, after_accept"
        in clean_sandbox.request("POST", "/sandbox/faults", json={"action": "status", "phase": "x"}).json()["message"]
    )
    ok = {"action": "status", "status": 503, "phase": "after_body"}
    assert clean_sandbox.request("POST", "/sandbox/faults", json=ok).status_code == 201


def test_submissions_is_the_ledger_alias(api, clip):
    api.wait(api.submit_ok(clip.one)["jobId"])  # then the entry no longer changes
    by_new = api.server.request("GET", "/sandbox/submissions").json()
    assert by_new == api.server.request("GET", "/sandbox/ledger").json()
    assert [e["endpoint"] for e in by_new["submissions"]] == ["video"]


def test_latency_after_accept_times_the_client_out_on_an_accepted_upload(api, clip):
    api.server.fault(match=VIDEO, action="latency", delay=3.0, phase="after_accept")
    t0 = time.monotonic()
    with pytest.raises(requests.exceptions.ReadTimeout):
        api.request("POST", "/v1/process/video", data=clip.one, headers={"Content-Type": "video/mp4"}, timeout=(5, 0.8))
    assert time.monotonic() - t0 < 2.5
    log = api.server.ledger()
    assert [e["endpoint"] for e in log] == ["video"]  # accepted before the client gave up
    assert api.wait(log[0]["jobId"])[-1] == "completed"
    faults = api.server.request("GET", "/sandbox/faults").json()["faults"]
    assert faults[0]["phase"] == "after_accept" and faults[0]["delay"] == 3.0
    bad = api.server.request("POST", "/sandbox/faults", json={"action": "latency", "phase": "mid_body"})
    assert bad.status_code == 400 and "before, after_accept" in bad.json()["message"]
