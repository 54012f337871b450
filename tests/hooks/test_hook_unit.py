"""Edge cases of the sync hook with a scripted fake session (no sockets, no real sleeps)."""

from __future__ import annotations

import io
import json
import pickle

import pytest
import requests
from urllib3.exceptions import MaxRetryError, NewConnectionError

from symbl_airflow.errors import (
    SymblAmbiguousSubmissionError,
    SymblAuthError,
    SymblBadRequestError,
    SymblBodyLengthError,
    SymblConfigError,
    SymblError,
    SymblNotFoundError,
    SymblOptionsError,
    SymblRateLimitError,
    SymblServerError,
)
from symbl_airflow.hooks import (
    DEFAULT_BASE_URL,
    INSIGHT_ENDPOINTS,
    USER_AGENT,
    SymblHook,
    SymblJob,
    _is_connect_failure,
    _UploadBody,
    normalize_base_url,
)
from symbl_airflow.options import SymblOptions
from tests.hooks.conftest import assert_no_secrets

pytestmark = pytest.mark.unit

SECRET = "unit-app-secret-93b1"


def make_response(status, body=None, headers=None):
    resp = requests.Response()
    resp.status_code = status
    if isinstance(body, (dict, list)):
        resp._content = json.dumps(body).encode()
        resp.headers["Content-Type"] = "application/json"
    else:
        resp._content = (body or "").encode()
    resp.headers.update(headers or {})
    return resp


class FakeSession:
    """Answers token requests itself; API requests get the scripted responses/exceptions in order."""

    def __init__(self, script, token_expires_in=86400):
        self.script = list(script)
        self.calls = []
        self.token_calls = 0
        self.token_expires_in = token_expires_in
        self.headers = {}

    def request(self, method, url, *, params=None, json=None, data=None, headers=None, timeout=None):
        if url.endswith("/oauth2/token:generate"):
            self.token_calls += 1
            return make_response(200, {"accessToken": f"tok-{self.token_calls}", "expiresIn": self.token_expires_in})
        item = self.script.pop(0)
        if callable(item):
            item = item()
        # A connection that never opens never reads the body; anything else does.
        body = None
        if data is not None and not (isinstance(item, BaseException) and _is_connect_failure(item)):
            body = b"".join(data)
        self.calls.append(
            {
                "method": method,
                "url": url,
                "params": params,
                "json": json,
                "body": body,
                "headers": headers,
                "timeout": timeout,
            }
        )
        if isinstance(item, BaseException):
            raise item
        return item


@pytest.fixture
def conn_env(monkeypatch):
    monkeypatch.setenv(
        "AIRFLOW_CONN_SYMBL_UNIT",
        json.dumps({"conn_type": "symbl", "host": "http://symbl.test:9", "login": "unit-app", "password": SECRET}),
    )
    return "symbl_unit"


def make_hook(conn_id, script, **kwargs):
    kwargs.setdefault("backoff_base", 0.01)
    hook = SymblHook(conn_id, **kwargs)
    session = FakeSession(script)
    hook.get_conn = lambda *a, **k: session  # type: ignore[method-assign]
    hook.sleeps = []
    hook._sleep = hook.sleeps.append
    return hook, session


def connect_error():
    reason = NewConnectionError(None, "Failed to establish a new connection: [Errno 111] Connection refused")
    return requests.exceptions.ConnectionError(MaxRetryError(None, "/v1/x", reason))


# ----------------------------------------------------------------------------------------- parsing helpers
@pytest.mark.parametrize(
    ("host", "schema", "port", "expected"),
    [
        (None, None, None, DEFAULT_BASE_URL),
        ("", "", None, DEFAULT_BASE_URL),
        ("api.symbl.ai", None, None, "https://api.symbl.ai"),
        ("api.symbl.ai", "http", None, "http://api.symbl.ai"),
        ("http://127.0.0.1:8900", None, None, "http://127.0.0.1:8900"),
        ("http://127.0.0.1:8900/", None, None, "http://127.0.0.1:8900"),
        ("127.0.0.1", "http", 8900, "http://127.0.0.1:8900"),
        ("https://api.symbl.ai", "http", None, "https://api.symbl.ai"),
    ],
)
def test_normalize_base_url(host, schema, port, expected):
    assert normalize_base_url(host, schema, port) == expected


def test_normalize_base_url_rejects_other_schemes():
    with pytest.raises(SymblConfigError):
        normalize_base_url("ftp://x")


# ----------------------------------------------------------------------------------------- connections
def test_connection_from_json_env(monkeypatch):
    monkeypatch.setenv(
        "AIRFLOW_CONN_SYMBL_J",
        json.dumps(
            {
                "conn_type": "symbl",
                "host": "http://127.0.0.1:8900",
                "login": "app",
                "password": SECRET,
                "extra": {
                    "timeout": 42,
                    "connect_timeout": 3,
                    "token_refresh_margin": 60,
                    "max_attempts": 2,
                    "max_retry_seconds": 7,
                },
            }
        ),
    )
    hook = SymblHook("symbl_j")
    cfg = hook.config
    assert (cfg.base_url, cfg.app_id, cfg.app_secret) == ("http://127.0.0.1:8900", "app", SECRET)
    assert (cfg.timeout, cfg.connect_timeout, cfg.token_refresh_margin) == (42, 3, 60)
    assert hook.retry_policy.max_attempts == 2
    assert hook.retry_policy.max_retry_seconds == 7
    assert (hook.config.connect_timeout, hook.config.read_timeout(None, upload=True)) == (3, 42)
    assert SECRET not in repr(cfg)
    # constructor arguments beat the connection extras
    hook2 = SymblHook("symbl_j", max_attempts=9, max_retry_seconds=1, timeout=5)
    assert (hook2.retry_policy.max_attempts, hook2.retry_policy.max_retry_seconds) == (9, 1)
    assert (hook2.config.connect_timeout, hook2.config.read_timeout(hook2._timeout)) == (3, 5)


def test_connection_from_uri_env(monkeypatch):
    monkeypatch.setenv(
        "AIRFLOW_CONN_SYMBL_U", "symbl://my-app:se%2Fcr%40et-1234@127.0.0.1:8900/http?timeout=30&max_attempts=3"
    )
    cfg = SymblHook("symbl_u").config
    assert cfg.base_url == "http://127.0.0.1:8900"
    assert (cfg.app_id, cfg.app_secret) == ("my-app", "se/cr@et-1234")
    assert cfg.timeout == 30.0
    assert cfg.max_attempts == 3


def test_connection_default_host_and_timeouts(monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_SYMBL_D", json.dumps({"conn_type": "symbl", "login": "a", "password": SECRET}))
    hook = SymblHook("symbl_d")
    assert hook.config.base_url == "https://api.symbl.ai"
    assert (hook.config.connect_timeout, hook.config.read_timeout(None, upload=True)) == (10.0, 300.0)
    assert hook.config.read_timeout(None) == 60.0
    assert hook.retry_policy.max_attempts == 5
    assert hook.retry_policy.max_retry_seconds == 300


def test_connection_uri_host_without_scheme_is_https(monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_SYMBL_H", f"symbl://a:{SECRET}@api.symbl.ai")
    assert SymblHook("symbl_h").config.base_url == "https://api.symbl.ai"


@pytest.mark.parametrize(
    ("conn", "missing"),
    [
        ({"conn_type": "symbl", "password": SECRET}, "login (App ID)"),
        ({"conn_type": "symbl", "login": "a"}, "password (App Secret)"),
    ],
)
def test_missing_credentials_name_conn_and_field(monkeypatch, conn, missing):
    monkeypatch.setenv("AIRFLOW_CONN_SYMBL_MISSING", json.dumps(conn))
    with pytest.raises(SymblConfigError) as info:
        SymblHook("symbl_missing").get_access_token()
    assert "'symbl_missing'" in str(info.value)
    assert missing in str(info.value)


def test_bad_extra_is_named(monkeypatch):
    monkeypatch.setenv(
        "AIRFLOW_CONN_SYMBL_BAD",
        json.dumps({"conn_type": "symbl", "login": "a", "password": SECRET, "extra": {"max_attempts": "many"}}),
    )
    with pytest.raises(SymblConfigError, match="'max_attempts'"):
        _ = SymblHook("symbl_bad").config


def test_ui_field_behaviour():
    ui = SymblHook.get_ui_field_behaviour()
    assert set(ui["hidden_fields"]) == {"schema", "port"}
    assert ui["relabeling"] == {"host": "Base URL", "login": "App ID", "password": "App Secret"}


def test_real_session_has_user_agent_and_no_basic_auth(conn_env):
    hook = SymblHook(conn_env)
    session = hook.get_conn()
    assert session is hook.get_conn()  # reused across calls
    assert session.headers["User-Agent"] == USER_AGENT
    assert USER_AGENT.startswith("symbl-airflow/0.1.0 (apache-airflow/3.")
    assert session.auth is None


# ----------------------------------------------------------------------------------------- errors
def test_error_str_has_everything():
    err = SymblNotFoundError(
        "Conversation not found", status=404, method="PUT", endpoint="/v1/process/video/123", conversation_id="123"
    )
    assert str(err) == (
        "Symbl API PUT /v1/process/video/123 failed (HTTP 404): Conversation not found [conversation_id=123]"
    )
    assert (err.status, err.message, err.endpoint, err.method) == (
        404,
        "Conversation not found",
        "/v1/process/video/123",
        "PUT",
    )
    clone = pickle.loads(pickle.dumps(err))
    assert type(clone) is SymblNotFoundError and str(clone) == str(err) and clone.conversation_id == "123"
    rl = pickle.loads(pickle.dumps(SymblRateLimitError("x", status=429, retry_after=2.0, method="GET", endpoint="/e")))
    assert rl.retry_after == 2.0


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, SymblBadRequestError),
        (401, SymblAuthError),
        (403, SymblAuthError),
        (404, SymblNotFoundError),
        (429, SymblRateLimitError),
        (500, SymblServerError),
        (503, SymblServerError),
        (418, SymblError),
    ],
)
def test_status_mapping(conn_env, status, cls):
    responses = [make_response(status, {"message": f"msg {status}"}, {"Retry-After": "0"})] * 10
    hook, session = make_hook(conn_env, responses, max_attempts=2)
    with pytest.raises(SymblError) as info:
        hook.get_job("job-1")
    assert type(info.value) is cls
    assert info.value.status == status
    assert info.value.message == f"msg {status}"
    assert info.value.job_id == "job-1"
    assert info.value.endpoint == "/v1/job/job-1"
    assert f"(HTTP {status}): msg {status} [job_id=job-1]" in str(info.value)
    assert not isinstance(info.value, requests.HTTPError)


def test_text_error_body_is_the_message(conn_env):
    hook, _ = make_hook(conn_env, [make_response(400, "<html>bad\n  request</html>")])
    with pytest.raises(SymblBadRequestError, match="<html>bad request</html>"):
        hook.get_conversation("c1")


# ----------------------------------------------------------------------------------------- retries
def test_get_retries_5xx_and_connection_errors(conn_env, logs):
    hook, session = make_hook(
        conn_env,
        [
            make_response(503, {"message": "busy"}),
            connect_error(),
            requests.exceptions.ReadTimeout("slow"),
            make_response(500, {"message": "oops"}),
            make_response(200, {"id": "j", "status": "completed"}),
        ],
    )
    assert hook.get_job("j") == SymblJob("j", "completed")
    assert len(session.calls) == 5
    assert len(hook.sleeps) == 4
    assert all(0 <= s <= 0.08 for s in hook.sleeps)
    text = logs()
    assert "[attempt 1/5] GET /v1/job/j failed (HTTP 503: busy); retrying in" in text
    assert "[attempt 4/5] GET /v1/job/j failed (HTTP 500: oops)" in text
    assert "[attempt 5/5]" not in text


def test_retries_are_bounded(conn_env):
    hook, session = make_hook(conn_env, [make_response(502, "bad gateway")] * 10, max_attempts=3)
    with pytest.raises(SymblServerError) as info:
        hook.get_job("j")
    assert info.value.status == 502
    assert len(session.calls) == 3


def test_time_budget_bounds_retries(conn_env):
    hook, session = make_hook(
        conn_env, [make_response(429, {"message": "slow down"}, {"Retry-After": "30"})] * 5, max_retry_seconds=10
    )
    with pytest.raises(SymblRateLimitError) as info:
        hook.get_job("j")
    assert info.value.retry_after == 30
    assert len(session.calls) == 1  # waiting 30 s would exceed the 10 s budget


def test_retry_after_is_honoured(conn_env):
    hook, session = make_hook(
        conn_env,
        [
            make_response(429, {"message": "limit"}, {"Retry-After": "0.3"}),
            make_response(200, {"id": "j", "status": "in_progress"}),
        ],
    )
    assert hook.get_job("j").status == "in_progress"
    assert hook.sleeps == [0.3]


@pytest.mark.parametrize("status", [400, 404])
def test_400_404_never_retried(conn_env, status):
    hook, session = make_hook(conn_env, [make_response(status, {"message": "no"})] * 3)
    with pytest.raises(SymblError):
        hook.get_insight("c", "messages")
    assert len(session.calls) == 1


def test_401_refreshes_once_then_fails(conn_env):
    hook, session = make_hook(conn_env, [make_response(401, {"message": "Token validation failed"})] * 3)
    with pytest.raises(SymblAuthError, match="Token validation failed"):
        hook.get_job("j")
    assert len(session.calls) == 2
    assert session.token_calls == 2
    assert [c["headers"]["Authorization"] for c in session.calls] == ["Bearer tok-1", "Bearer tok-2"]


def test_token_shared_between_hook_instances(conn_env):
    hook1, s1 = make_hook(conn_env, [make_response(200, {"id": "j", "status": "scheduled"})])
    hook2, s2 = make_hook(conn_env, [make_response(200, {"id": "j", "status": "scheduled"})])
    hook1.get_job("j")
    hook2.get_job("j")
    assert s1.token_calls + s2.token_calls == 1


# ----------------------------------------------------------------------------------------- uploads
def test_upload_500_not_retried(conn_env):
    hook, session = make_hook(conn_env, [make_response(500, {"message": "boom"}), make_response(201, {})])
    with pytest.raises(SymblAmbiguousSubmissionError):  # after the whole body: may be processed (issue 22)
        hook.submit_video(lambda: io.BytesIO(b"abc"), 3)
    assert len(session.calls) == 1


def test_upload_429_retried_and_source_reopened(conn_env):
    opened = []

    def open_body():
        opened.append(1)
        return io.BytesIO(b"0123456789")

    hook, session = make_hook(
        conn_env,
        [
            make_response(429, {"message": "later"}, headers={"Retry-After": "0"}),
            make_response(201, {"conversationId": "c1", "jobId": "j1"}),
        ],
    )
    progress = []
    sub = hook.submit_video(
        open_body, 10, chunk_size=4, on_progress=progress.append, conversation_id="c1", options=SymblOptions(name="n")
    )
    assert (sub.conversation_id, sub.job_id) == ("c1", "j1")
    assert len(opened) == 2
    assert [c["body"] for c in session.calls] == [b"0123456789"] * 2
    assert session.calls[1]["method"] == "PUT" and session.calls[1]["url"].endswith("/v1/process/video/c1")
    assert session.calls[1]["params"] == [("name", "n")]
    assert session.calls[1]["headers"]["Content-Type"] == "video/mp4"
    assert session.calls[1]["timeout"] == (10.0, 300.0)
    assert progress == [4, 8, 10, 4, 8, 10]


def test_upload_connect_failure_retried(conn_env):
    hook, session = make_hook(conn_env, [connect_error(), make_response(201, {"conversationId": "c", "jobId": "j"})])
    assert hook.submit_video(lambda: io.BytesIO(b"x"), 1).job_id == "j"


def test_upload_read_timeout_is_ambiguous(conn_env):
    hook, session = make_hook(conn_env, [requests.exceptions.ReadTimeout("read timed out")] * 2)
    with pytest.raises(SymblAmbiguousSubmissionError) as info:
        hook.submit_video(lambda: io.BytesIO(b"x"), 1, conversation_id="c9")
    assert "may or may not have" in str(info.value)
    assert info.value.conversation_id == "c9"
    assert len(session.calls) == 1


def test_upload_url_reset_is_ambiguous(conn_env):
    hook, session = make_hook(conn_env, [requests.exceptions.ConnectionError("Connection reset by peer")] * 2)
    with pytest.raises(SymblAmbiguousSubmissionError):
        hook.submit_video_url("https://example.com/v.mp4")
    assert len(session.calls) == 1


def test_upload_invalid_options_raise_before_any_request(conn_env):
    hook, session = make_hook(conn_env, [])
    with pytest.raises(SymblOptionsError, match="mode"):
        hook.submit_video(lambda: io.BytesIO(b"x"), 1, options=SymblOptions(mode="loud"))
    with pytest.raises(SymblOptionsError, match="Did you mean"):
        hook.submit_video_url("https://example.com/v.mp4", options={"languagecode": "en-US"})
    assert session.calls == [] and session.token_calls == 0


def test_submit_video_url_body(conn_env):
    hook, session = make_hook(conn_env, [make_response(201, {"conversationId": "c", "jobId": "j"})])
    hook.submit_video_url(
        "https://example.com/v.mp4?X-Amz-Signature=abc",
        conversation_id="c",
        options=SymblOptions(enable_speaker_diarization=True, diarization_speaker_count=2),
    )
    call = session.calls[0]
    assert call["method"] == "PUT" and call["url"].endswith("/v1/process/video/url/c")
    assert call["json"] == {
        "url": "https://example.com/v.mp4?X-Amz-Signature=abc",
        "enableSpeakerDiarization": True,
        "diarizationSpeakerCount": 2,
    }


@pytest.mark.parametrize("url", ["", "s3://b/k.mp4", "/local/file.mp4", None])
def test_submit_video_url_rejects_non_http(conn_env, url):
    hook, _ = make_hook(conn_env, [])
    with pytest.raises(ValueError, match="http"):
        hook.submit_video_url(url)


def test_upload_body_streams_with_length():
    body = _UploadBody(lambda: io.BytesIO(b"a" * 10), 10, 3, None)
    assert len(body) == 10
    assert not hasattr(body, "read")  # urllib3 must iterate, not read()
    assert [len(c) for c in body] == [3, 3, 3, 1]
    # requests must see a Content-Length and no chunked encoding
    prepared = requests.Request("POST", "http://x/", data=_UploadBody(lambda: io.BytesIO(b"ab"), 2, 1, None)).prepare()
    assert prepared.headers["Content-Length"] == "2"
    assert "Transfer-Encoding" not in prepared.headers


@pytest.mark.parametrize(
    ("source", "length"),
    [
        (lambda: io.BytesIO(b"abc"), 4),  # short file
        (lambda: io.BytesIO(b"abcde"), 4),  # long file
        (lambda: iter([b"ab", b"c"]), 4),  # short iterable
        (lambda: iter([b"ab", b"cde"]), 4),  # long iterable
    ],
)
def test_upload_length_mismatch(conn_env, source, length):
    class Session(FakeSession):
        def request(self, method, url, **kwargs):
            if url.endswith("token:generate"):
                return super().request(method, url, **kwargs)
            self.calls.append(kwargs)
            for _ in kwargs["data"]:
                pass
            return make_response(201, {"conversationId": "c", "jobId": "j"})

    hook = SymblHook(conn_env)
    session = Session([])
    hook.get_conn = lambda *a, **k: session
    with pytest.raises(SymblBodyLengthError, match="length=4"):
        hook.submit_video(source, length)
    assert len(session.calls) == 1


def test_upload_iterable_source_rechunked():
    body = _UploadBody(lambda: iter([b"abcdefg", b"", b"h"]), 8, 3, None)
    assert list(body) == [b"abc", b"def", b"g", b"h"]


def test_source_closed_after_each_attempt(conn_env):
    sources = []

    def open_body():
        sources.append(io.BytesIO(b"xy"))
        return sources[-1]

    hook, _ = make_hook(
        conn_env,
        [make_response(429, "", {"Retry-After": "0"}), make_response(201, {"conversationId": "c", "jobId": "j"})],
    )
    hook.submit_video(open_body, 2)
    assert len(sources) == 2 and all(s.closed for s in sources)


# ----------------------------------------------------------------------------------------- misc API
def test_get_insight_paths_and_params(conn_env):
    hook, session = make_hook(
        conn_env, [make_response(200, {"messages": []})] * len(INSIGHT_ENDPOINTS) + [make_response(200, {})]
    )
    for kind in INSIGHT_ENDPOINTS:
        hook.get_insight("c/1", kind)
    assert [c["url"].split("/v1/conversations/")[1] for c in session.calls] == [
        "c%2F1",
        "c%2F1/messages",
        "c%2F1/topics",
        "c%2F1/questions",
        "c%2F1/action-items",
        "c%2F1/follow-ups",
        "c%2F1/entities",
        "c%2F1/trackers-detected",
        "c%2F1/analytics",
        "c%2F1/summary",
        "c%2F1/members",
    ]
    hook.get_insight("c", "messages", sentiment=True, verbose=False, parent_refs=True, limit=5, skip=None)
    assert session.calls[-1]["params"] == [
        ("sentiment", "true"),
        ("verbose", "false"),
        ("parentRefs", "true"),
        ("limit", "5"),
    ]


def test_unknown_insight_kind(conn_env):
    hook, _ = make_hook(conn_env, [])
    with pytest.raises(ValueError, match="action_items"):
        hook.get_insight("c", "transcript")


def test_job_properties():
    assert SymblJob("j", "completed").is_terminal and SymblJob("j", "completed").is_completed
    assert SymblJob("j", "failed").is_failed and SymblJob("j", "failed").is_terminal
    assert not SymblJob("j", "in_progress").is_terminal


def test_secret_and_tokens_never_in_logs_or_errors(conn_env, logs):
    hook, session = make_hook(
        conn_env, [make_response(401, {"message": "Token validation failed"})] * 2 + [make_response(503, "x")] * 5
    )
    errors = []
    for call in (lambda: hook.get_job("j"), lambda: hook.get_conversation("c")):
        with pytest.raises(SymblError) as info:
            call()
        errors.append(str(info.value))
        errors.append(repr(info.value))
    text = logs()
    assert "refreshing the access token once" in text  # the check below reads real log output
    assert_no_secrets([text, *errors], [SECRET, "tok-1", "tok-2", "tok-3"])


def test_longer_source_never_sends_the_whole_declared_length():
    """The last chunk is held back until the source is known to end exactly at ``length``."""
    body = _UploadBody(lambda: io.BytesIO(b"abcdef"), 5, 2, None)
    sent = []
    with pytest.raises(ValueError, match="more than length=5"):
        for piece in body:
            sent.append(piece)
    assert sum(map(len, sent)) < 5
    body = _UploadBody(lambda: iter([b"ab", b"cd", b"e", b"f"]), 5, 2, None)
    sent = []
    with pytest.raises(ValueError, match="more than length=5"):
        for piece in body:
            sent.append(piece)
    assert sum(map(len, sent)) < 5


def test_2xx_without_ids_is_ambiguous(conn_env):
    hook, _ = make_hook(conn_env, [make_response(201, {"status": "ok"})])
    with pytest.raises(SymblAmbiguousSubmissionError, match="without conversationId/jobId") as info:
        hook.submit_video(lambda: io.BytesIO(b"x"), 1)
    assert info.value.status == 201


def test_test_connection_masks_the_token(conn_env, monkeypatch):
    import airflow.sdk.log

    masked = []
    monkeypatch.setattr(airflow.sdk.log, "mask_secret", lambda value, name=None: masked.append(value))
    hook, session = make_hook(conn_env, [])
    ok, message = hook.test_connection()
    assert ok, message
    assert "tok-1" in masked and SECRET in masked


@pytest.mark.parametrize(
    ("conversation_id", "method", "suffix"),
    [(None, "POST", "/v1/process/video"), ("", "POST", "/v1/process/video"), ("42", "PUT", "/v1/process/video/42")],
)
def test_post_or_put(conn_env, conversation_id, method, suffix):
    hook, session = make_hook(conn_env, [make_response(201, {"conversationId": "42", "jobId": "j"})])
    hook.submit_video(lambda: io.BytesIO(b"x"), 1, conversation_id=conversation_id)
    assert session.calls[0]["method"] == method
    assert session.calls[0]["url"] == "http://symbl.test:9" + suffix


# ----------------------------------------------------------------------------------------- experience API
def test_experience_url_posts_name_and_returns_url(conn_env):
    url = "https://meetinginsights.symbl.ai/meeting/#/eyJ1"
    hook, session = make_hook(conn_env, [make_response(201, {"name": "verbose-text-summary", "url": url})])
    assert hook.get_experience_url("c 1") == url
    call = session.calls[0]
    assert call["method"] == "POST"
    assert call["url"].endswith("/v1/conversations/c%201/experiences")
    assert call["json"] == {"name": "verbose-text-summary"}


@pytest.mark.parametrize("status", [404, 405, 501])
def test_experience_url_none_when_unavailable(conn_env, logs, status):
    hook, session = make_hook(conn_env, [make_response(status, {"message": "no"}), make_response(status)])
    assert hook.get_experience_url("c1", name="video-summary") is None
    assert hook.get_experience_url("c1") is None
    assert len(session.calls) == 2
    assert logs().count("offers no Experience API") == 1


@pytest.mark.parametrize(("status", "cls"), [(400, SymblBadRequestError), (403, SymblAuthError)])
def test_experience_url_other_errors_raise(conn_env, status, cls):
    hook, _ = make_hook(conn_env, [make_response(status, {"message": "bad"})])
    with pytest.raises(cls):
        hook.get_experience_url("c1")


def test_experience_url_without_url_is_an_error(conn_env):
    hook, _ = make_hook(conn_env, [make_response(201, {"name": "verbose-text-summary"})])
    with pytest.raises(SymblError, match="without an http"):
        hook.get_experience_url("c1")
