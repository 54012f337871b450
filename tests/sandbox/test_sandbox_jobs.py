"""Job lifecycle: statuses, per-conversation order, parallelism, the job limit, timing and webhooks."""

from __future__ import annotations

import time

import pytest

from tests.sandbox.conftest import Api

pytestmark = pytest.mark.integration


def test_status_sequence_and_unknown_job(api, clip):
    job = api.submit_ok(clip.one)
    body = api.get(f"/v1/job/{job['jobId']}").json()
    assert body == {"id": job["jobId"], "status": body["status"]}
    assert api.wait(job["jobId"]) in (["scheduled", "in_progress", "completed"], ["in_progress", "completed"])
    missing = api.get("/v1/job/00000000-0000-0000-0000-000000000000")
    assert missing.status_code == 404
    assert missing.json() == {"message": "Job with jobId 00000000-0000-0000-0000-000000000000 not found"}


def test_jobs_of_one_conversation_run_one_at_a_time_in_order(api, clip, webhook):
    params = {"webhookUrl": webhook.url}
    first = api.submit_ok(clip.one, params=params)
    conv = first["conversationId"]
    others = [api.submit_ok(clip.one, conv, params=params) for _ in range(2)]
    jobs = [first["jobId"]] + [o["jobId"] for o in others]
    for job_id in jobs:
        webhook.wait_for(job_id, "completed")
    events = [(t, body["id"], body["status"]) for t, body in webhook.calls]
    # every job passes through all three statuses
    for job_id in jobs:
        assert webhook.statuses(job_id) == ["scheduled", "in_progress", "completed"]
    # never two jobs of the conversation in progress at once, and they run in arrival order
    running: set[str] = set()
    started: list[str] = []
    for _, job_id, status in sorted(events, key=lambda e: e[0]):
        if status == "in_progress":
            assert not running, f"{job_id} started while {running} was running"
            running.add(job_id)
            started.append(job_id)
        elif status in ("completed", "failed"):
            running.discard(job_id)
    assert started == jobs


def test_different_conversations_run_in_parallel(spawn, clip):
    server = spawn(speed=0.0, min_job_seconds=1.0)
    api = Api(server)
    jobs = [api.submit_ok(clip.one)["jobId"] for _ in range(3)]
    deadline = time.monotonic() + 5
    while True:
        statuses = [api.status(j) for j in jobs]
        if statuses == ["in_progress"] * 3:
            break
        assert "completed" not in statuses, "a job finished before all three were running"
        assert time.monotonic() < deadline
        time.sleep(0.02)
    t0 = time.monotonic()
    for job_id in jobs:
        api.wait(job_id)
    assert time.monotonic() - t0 < 1.8  # not 3 x 1 s one after another


def test_concurrency_limit_returns_documented_429(spawn, clip):
    server = spawn("--max-concurrent-jobs", "2", speed=0.0, min_job_seconds=1.0)
    api = Api(server)
    first = api.submit_ok(clip.one)
    api.submit_ok(clip.one, first["conversationId"])
    rejected = api.submit(clip.meeting)
    assert rejected.status_code == 429
    assert rejected.json() == {
        "statusCode": 429,
        "message": "This API has a limit of maximum of `2` number of concurrent jobs per account. If you are "
        "looking to scale, and need more concurrent jobs than this limit, please contact us at support@symbl.ai",
    }
    assert api.request("POST", "/v1/process/video/url", json={"url": "http://127.0.0.1:1/a.mp4"}).status_code == 429
    stats = server.stats()
    assert stats["active_jobs"] == 2 and stats["rejected_429"] == 2
    assert len(server.ledger()) == 2
    api.wait(first["jobId"])
    assert api.submit(clip.meeting).status_code == 201


def test_job_duration_is_max_of_minimum_and_speed_times_media(spawn, mp4, clip):
    server = spawn(speed=0.1, min_job_seconds=0.5)
    api = Api(server)
    long_clip = mp4.make([("A", "One."), ("B", "Two."), ("A", "Three."), ("B", "Four.")], seconds_per_cue=5.0)

    def run_time(data: bytes) -> float:
        job = api.submit_ok(data)["jobId"]
        while api.status(job) != "in_progress":
            time.sleep(0.01)
        t0 = time.monotonic()
        assert api.wait(job)[-1] == "completed"
        return time.monotonic() - t0

    short = run_time(clip.one)  # 1 s of media -> the 0.5 s minimum
    long = run_time(long_clip)  # 20 s of media -> 2.0 s
    assert 0.35 <= short <= 1.0, short
    assert 1.8 <= long <= 2.8, long


def test_webhook_payloads_and_failures_do_not_block(api, clip, webhook, loopback):
    job = api.submit_ok(clip.one, params={"webhookUrl": webhook.url})["jobId"]
    webhook.wait_for(job, "completed")
    bodies = [b for _, b in webhook.calls]
    assert bodies == [{"id": job, "jobId": job, "status": s} for s in ("scheduled", "in_progress", "completed")]
    # a webhook that answers 500 or does not listen never holds up the job
    failing = type(webhook)(loopback, status=500)
    job2 = api.submit_ok(clip.one, params={"webhookUrl": failing.url})["jobId"]
    job3 = api.submit_ok(clip.one, params={"webhookUrl": "http://127.0.0.1:1/hook"})["jobId"]
    assert api.wait(job2)[-1] == "completed"
    assert api.wait(job3)[-1] == "completed"
    failing.wait_for(job2, "completed")
    deadline = time.monotonic() + 5
    while f"webhook for job {job3} failed" not in api.server.log_path.read_text():
        assert time.monotonic() < deadline, "webhook failure was not logged"
        time.sleep(0.05)


def test_fail_job_fault_fails_only_the_next_matching_job(api, clip, webhook):
    api.server.fault(match={"method": "POST", "path": "/v1/process/video"}, action="fail_job")
    failed = api.submit_ok(clip.one, params={"webhookUrl": webhook.url})
    ok = api.submit_ok(clip.one)
    assert api.wait(failed["jobId"])[-1] == "failed"
    assert api.wait(ok["jobId"])[-1] == "completed"
    webhook.wait_for(failed["jobId"], "failed")
    # a failed job adds nothing to its conversation
    assert api.conversation(failed["conversationId"], "/messages").json() == {"messages": []}
