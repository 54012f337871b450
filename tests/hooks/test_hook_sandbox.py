"""SymblHook against the real sandbox over HTTP: tokens, retries, uploads, ambiguity, errors."""

from __future__ import annotations

import hashlib
import http.server
import io
import json
import threading
import time

import pytest

from symbl_airflow.errors import (
    SymblAmbiguousSubmissionError,
    SymblAuthError,
    SymblBadRequestError,
    SymblNotFoundError,
    SymblRateLimitError,
)
from symbl_airflow.hooks import SymblHook, SymblSubmission
from symbl_airflow.options import SymblOptions
from tests.hooks.conftest import assert_no_secrets

pytestmark = pytest.mark.integration


@pytest.fixture
def hook(clean_sandbox):
    h = SymblHook(backoff_base=0.01)
    yield h
    h.close()


@pytest.fixture(scope="module")
def video(mp4):
    return mp4.make([("Alice", "Hello everyone."), ("Bob", "Let us review the plan.")], seconds_per_cue=1.0)


def opener(data: bytes):
    return lambda: io.BytesIO(data)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def wait_job(hook: SymblHook, job_id: str, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        job = hook.get_job(job_id)
        if job.is_terminal:
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} not terminal after {timeout}s")


def route_count(sandbox, route: str) -> int:
    return sandbox.stats()["requests"].get(route, 0)


# ------------------------------------------------------------------------------------------- tokens
def test_token_reused_across_calls_and_hook_instances(hook, clean_sandbox, video):
    sub = hook.submit_video(opener(video), len(video))
    hook.get_job(sub.job_id)
    other = SymblHook(backoff_base=0.01)
    other.get_job(sub.job_id)
    other.get_conversation(sub.conversation_id)
    assert clean_sandbox.stats()["token_requests"] == 1


def test_expired_token_refreshed_once(hook, clean_sandbox, video, logs, issued_tokens):
    sub = hook.submit_video(opener(video), len(video))
    clean_sandbox.expire_tokens()  # our cache still believes the token is good: the API answers 401
    assert hook.get_job(sub.job_id).id == sub.job_id
    assert clean_sandbox.stats()["token_requests"] == 2
    assert len(set(issued_tokens)) == 2
    assert "refreshing the access token once" in logs()
    assert_no_secrets([logs()], [clean_sandbox.app_secret, *issued_tokens])


def test_expired_token_on_upload_resends_once(hook, clean_sandbox, video):
    hook.get_access_token()
    clean_sandbox.expire_tokens()
    sub = hook.submit_video(opener(video), len(video))
    ledger = clean_sandbox.ledger()
    assert [e["jobId"] for e in ledger] == [sub.job_id]
    assert ledger[0]["sha256"] == sha(video)


def test_bad_credentials(clean_sandbox, monkeypatch, logs):
    secret = "definitely-wrong-secret-5521"
    monkeypatch.setenv(
        "AIRFLOW_CONN_SYMBL_WRONG",
        json.dumps(
            {"conn_type": "symbl", "host": clean_sandbox.url, "login": clean_sandbox.app_id, "password": secret}
        ),
    )
    hook = SymblHook("symbl_wrong", backoff_base=0.01)
    with pytest.raises(SymblAuthError) as info:
        hook.get_job("whatever")
    assert info.value.status == 401
    assert "'symbl_wrong'" in str(info.value)
    ok, message = hook.test_connection()
    assert ok is False and "401" in message
    assert_no_secrets([str(info.value), repr(info.value), message, logs()], [secret])


def test_test_connection_ok(hook, clean_sandbox, issued_tokens, logs):
    ok, message = hook.test_connection()
    assert ok, message
    assert clean_sandbox.url in message
    assert_no_secrets([message, logs()], [clean_sandbox.app_secret, *issued_tokens])


# ------------------------------------------------------------------------------------------- retries
def test_429_retry_after_honoured(hook, clean_sandbox, video, logs):
    sub = hook.submit_video(opener(video), len(video))
    clean_sandbox.fault(
        match={"method": "GET", "path": "/v1/job/*"},
        action="status",
        status=429,
        body={"statusCode": 429, "message": "Too many concurrent jobs"},
        headers={"Retry-After": "1"},
        times=1,
    )
    started = time.monotonic()
    assert hook.get_job(sub.job_id).id == sub.job_id
    elapsed = time.monotonic() - started
    assert 1.0 <= elapsed < 5.0
    assert "[attempt 1/5] GET /v1/job/" in logs()
    assert "HTTP 429: Too many concurrent jobs" in logs()


def test_429_exhausted_raises_rate_limit(clean_sandbox, video):
    hook = SymblHook(backoff_base=0.01, max_attempts=2)
    clean_sandbox.fault(
        match={"method": "POST", "path": "/v1/process/video"},
        action="status",
        status=429,
        body={"statusCode": 429, "message": "This API has a limit of maximum of 5 number of concurrent jobs"},
        headers={"Retry-After": "0"},
        times=None,
    )
    with pytest.raises(SymblRateLimitError) as info:
        hook.submit_video(opener(video), len(video))
    assert info.value.status == 429
    assert info.value.retry_after == 0
    assert "concurrent jobs" in info.value.message
    assert route_count(clean_sandbox, "POST /v1/process/video") == 2
    assert clean_sandbox.ledger() == []


def test_5xx_retried_on_get(hook, clean_sandbox, video):
    sub = hook.submit_video(opener(video), len(video))
    before = route_count(clean_sandbox, "GET /v1/job/{jobId}")
    clean_sandbox.fault(match={"method": "GET", "path": "/v1/job/*"}, action="status", status=503, times=2)
    assert hook.get_job(sub.job_id).id == sub.job_id
    assert route_count(clean_sandbox, "GET /v1/job/{jobId}") - before == 3


def test_connection_drop_on_get_retried(hook, clean_sandbox, video):
    sub = hook.submit_video(opener(video), len(video))
    clean_sandbox.fault(match={"method": "GET", "path": "/v1/job/*"}, action="drop", phase="after_body", times=1)
    assert hook.get_job(sub.job_id).id == sub.job_id


def test_500_on_upload_not_retried(hook, clean_sandbox, video):
    """After the whole body a 500 is ambiguous (issue 22): Symbl may still process what it received."""
    clean_sandbox.fault(
        match={"method": "POST", "path": "/v1/process/video"}, action="status", status=500, body={"message": "boom"}
    )
    with pytest.raises(SymblAmbiguousSubmissionError) as info:
        hook.submit_video(opener(video), len(video))
    assert info.value.status == 500 and "boom" in info.value.message
    assert route_count(clean_sandbox, "POST /v1/process/video") == 1
    assert len(clean_sandbox.ledger()) <= 1
    assert clean_sandbox.ledger() == []


def test_429_on_upload_retried_exactly_one_ledger_entry(hook, clean_sandbox, video):
    opened = []

    def open_body():
        opened.append(1)
        return io.BytesIO(video)

    clean_sandbox.fault(
        match={"method": "POST", "path": "/v1/process/video"},
        action="status",
        status=429,
        headers={"Retry-After": "0"},
        times=1,
    )
    sub = hook.submit_video(open_body, len(video))
    assert len(opened) == 2  # reopened for the retry
    ledger = clean_sandbox.ledger()
    assert len(ledger) == 1
    assert (ledger[0]["conversationId"], ledger[0]["jobId"]) == (sub.conversation_id, sub.job_id)
    assert ledger[0]["sha256"] == sha(video)


def test_connection_refused_upload_retried_then_fails(monkeypatch, clean_sandbox, video):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv(
        "AIRFLOW_CONN_SYMBL_DOWN",
        json.dumps({"conn_type": "symbl", "host": f"http://127.0.0.1:{port}", "login": "a", "password": "b" * 8}),
    )
    from symbl_airflow.errors import SymblConnectionError

    hook = SymblHook("symbl_down", backoff_base=0.01, max_attempts=3)
    with pytest.raises(SymblConnectionError, match="no response after 3 attempt"):
        hook.get_access_token()


# ------------------------------------------------------------------------------------------- ambiguity
def test_drop_mid_body_never_duplicates(hook, clean_sandbox, video):
    """A small body may already sit in socket buffers when the server hangs up, so the client sees
    either a cut-short send (resent once) or a full send with no answer (ambiguous); never a duplicate."""
    clean_sandbox.fault(
        match={"method": "POST", "path": "/v1/process/video"}, action="drop", phase="mid_body", after_bytes=2048
    )
    try:
        submission = hook.submit_video(opener(video), len(video), chunk_size=1024)
    except SymblAmbiguousSubmissionError:
        assert clean_sandbox.ledger() == []
        assert route_count(clean_sandbox, "POST /v1/process/video") == 1
    else:
        assert [e["jobId"] for e in clean_sandbox.ledger()] == [submission.job_id]


def test_drop_after_full_body_is_ambiguous(hook, clean_sandbox, video):
    clean_sandbox.fault(match={"method": "POST", "path": "/v1/process/video"}, action="drop", phase="after_body")
    with pytest.raises(SymblAmbiguousSubmissionError) as info:
        hook.submit_video(opener(video), len(video), chunk_size=1024)
    assert "may or may not have been accepted" in str(info.value)
    assert route_count(clean_sandbox, "POST /v1/process/video") == 1  # never retried
    assert clean_sandbox.ledger() == []


def test_drop_mid_body_of_large_upload_is_resent(hook, clean_sandbox, video):
    """The connection dies while the body is still going out: Symbl cannot have accepted it, so resend."""
    big = video + b"\0" * (48 << 20)  # larger than loopback socket buffers: the send itself fails
    clean_sandbox.fault(
        match={"method": "POST", "path": "/v1/process/video"}, action="drop", phase="mid_body", after_bytes=65536
    )
    submission = hook.submit_video(opener(big), len(big), chunk_size=1 << 20)
    ledger = clean_sandbox.ledger()
    assert [e["jobId"] for e in ledger] == [submission.job_id]  # exactly one accepted submission
    assert ledger[0]["sha256"] == sha(big)
    assert route_count(clean_sandbox, "POST /v1/process/video") == 2


def test_drop_after_accept_is_ambiguous_but_accepted(hook, clean_sandbox, video):
    first = hook.submit_video(opener(video), len(video))
    clean_sandbox.fault(match={"method": "PUT", "path": "/v1/process/video/*"}, action="drop", phase="after_accept")
    with pytest.raises(SymblAmbiguousSubmissionError) as info:
        hook.submit_video(opener(video), len(video), conversation_id=first.conversation_id)
    assert info.value.conversation_id == first.conversation_id
    assert first.conversation_id in str(info.value)
    ledger = clean_sandbox.ledger()
    assert [e["method"] for e in ledger] == ["POST", "PUT"]  # the PUT was accepted after all
    assert ledger[1]["sha256"] == sha(video)
    assert route_count(clean_sandbox, "PUT /v1/process/video/{conversationId}") == 1


# ------------------------------------------------------------------------------------------- uploads
def test_post_then_put_append(hook, clean_sandbox, mp4, video):
    second = mp4.make([("Carol", "Any questions?")], seconds_per_cue=1.0)
    progress: list[int] = []
    first = hook.submit_video(opener(video), len(video), chunk_size=4096, on_progress=progress.append)
    assert progress[-1] == len(video)
    steps = [b - a for a, b in zip([0, *progress[:-1]], progress, strict=True)]
    assert all(0 < step <= 4096 for step in steps)
    appended = hook.submit_video(
        lambda: iter([second[:1000], second[1000:]]), len(second), conversation_id=first.conversation_id
    )
    assert isinstance(appended, SymblSubmission)
    assert appended.conversation_id == first.conversation_id
    assert appended.job_id != first.job_id
    ledger = clean_sandbox.ledger()
    assert [(e["method"], e["endpoint"], e["sha256"], e["size"]) for e in ledger] == [
        ("POST", "video", sha(video), len(video)),
        ("PUT", "video", sha(second), len(second)),
    ]
    assert wait_job(hook, first.job_id).is_completed
    assert wait_job(hook, appended.job_id).is_completed
    messages = hook.get_insight(first.conversation_id, "messages", sentiment=True)
    texts = [m["text"] for m in messages["messages"]]
    assert "Any questions?" in " ".join(texts)


def test_options_sent_as_query_params_reach_sandbox(hook, clean_sandbox, video):
    opts = SymblOptions(
        name="Weekly sync",
        custom_vocabulary=["Platform", "Discussion"],
        confidence_threshold=0.7,
        detect_phrases=True,
        entities=[{"customType": "Exec", "text": "marketing director"}],
        language_code="en-US",
        mode="default",
        trackers=[{"name": "Pricing", "vocabulary": ["price"]}],
        enable_summary=True,
        enable_speaker_diarization=True,
        diarization_speaker_count=2,
    )
    hook.submit_video(opener(video), len(video), options=opts)
    assert clean_sandbox.ledger()[0]["options"] == opts.to_json_body()


def test_unknown_conversation_put_is_404(hook, clean_sandbox, video, issued_tokens, logs):
    with pytest.raises(SymblNotFoundError) as info:
        hook.submit_video(opener(video), len(video), conversation_id="123")
    err = info.value
    assert (err.status, err.method, err.endpoint, err.conversation_id) == (404, "PUT", "/v1/process/video/123", "123")
    assert err.message
    assert str(err).startswith("Symbl API PUT /v1/process/video/123 failed (HTTP 404): ")
    assert str(err).endswith("[conversation_id=123]")
    assert route_count(clean_sandbox, "PUT /v1/process/video/{conversationId}") == 1
    assert_no_secrets([str(err), logs()], [clean_sandbox.app_secret, *issued_tokens])


def test_unknown_job_is_404(hook, clean_sandbox):
    with pytest.raises(SymblNotFoundError) as info:
        hook.get_job("no-such-job")
    assert info.value.job_id == "no-such-job"
    assert "[job_id=no-such-job]" in str(info.value)


def test_non_mp4_is_400(hook, clean_sandbox):
    body = b"this is not a video" * 10
    with pytest.raises(SymblBadRequestError) as info:
        hook.submit_video(opener(body), len(body))
    assert info.value.status == 400 and info.value.message
    assert clean_sandbox.ledger() == []


def test_delete_conversation(hook, clean_sandbox, video):
    sub = hook.submit_video(opener(video), len(video))
    wait_job(hook, sub.job_id)
    assert "message" in hook.delete_conversation(sub.conversation_id)
    with pytest.raises(SymblNotFoundError):
        hook.get_conversation(sub.conversation_id)


def test_user_agent_sent(hook, clean_sandbox):
    hook.get_access_token()
    assert hook.get_conn().headers["User-Agent"].startswith("symbl-airflow/")


# ------------------------------------------------------------------------------------------- URL submissions
@pytest.fixture
def file_server(video):
    """A tiny local HTTP server the sandbox can download the video from."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            if self.path.split("?")[0] != "/video.mp4":
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", "video/mp4")
            self.send_header("Content-Length", str(len(video)))
            self.end_headers()
            self.wfile.write(video)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def test_submit_video_url(hook, clean_sandbox, file_server, video):
    opts = SymblOptions(name="from url", enable_speaker_diarization=True, diarization_speaker_count=2)
    url = f"{file_server}/video.mp4?X-Amz-Signature=not-a-real-signature"
    first = hook.submit_video_url(url, options=opts)
    second = hook.submit_video_url(url, conversation_id=first.conversation_id)
    assert second.conversation_id == first.conversation_id
    ledger = clean_sandbox.ledger()
    assert [(e["method"], e["endpoint"], e["url"]) for e in ledger] == [
        ("POST", "video/url", url),
        ("PUT", "video/url", url),
    ]
    assert ledger[0]["options"] == opts.to_json_body()
    assert wait_job(hook, first.job_id).is_completed
    assert wait_job(hook, second.job_id).is_completed


@pytest.mark.parametrize("delta", [-100, +100])
def test_body_length_mismatch_over_real_http(hook, clean_sandbox, video, delta):
    from symbl_airflow.errors import SymblBodyLengthError

    with pytest.raises(SymblBodyLengthError, match=f"length={len(video) + delta}"):
        hook.submit_video(opener(video), len(video) + delta, chunk_size=1024)
    assert clean_sandbox.ledger() == []
    # the hook's session is still usable afterwards (the broken connection was discarded)
    sub = hook.submit_video(opener(video), len(video))
    assert [e["jobId"] for e in clean_sandbox.ledger()] == [sub.job_id]


def test_large_upload_streams_in_constant_memory(hook, clean_sandbox, video):
    """32 MiB go out in 1 MiB pieces: Python-side peak memory stays a few chunks, not the body."""
    import tracemalloc

    size = 32 << 20
    filler = b"\0" * (1 << 20)

    def source():
        yield video  # a real MP4 head, then padding
        left = size - len(video)
        while left > 0:
            n = min(left, len(filler))
            yield filler[:n]
            left -= n

    digest = hashlib.sha256()
    for piece in source():
        digest.update(piece)
    hook.get_access_token()
    tracemalloc.start()
    try:
        sub = hook.submit_video(source, size)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 << 20, f"peak {peak} bytes: the body was buffered"
    entry = clean_sandbox.ledger()[0]
    assert (entry["jobId"], entry["size"], entry["sha256"]) == (sub.job_id, size, digest.hexdigest())
