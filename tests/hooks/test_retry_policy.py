"""The retry policy, table-driven, run against BOTH hooks over real HTTP (a scripted loopback server).

Each row scripts the answers of ``GET /v1/job/j`` and states what the caller must see: the result or
the exception type, how many requests went out, and the waits between them. The same rows run through
``SymblHook`` (requests + tenacity ``Retrying``) and ``SymblAsyncHook`` (aiohttp + ``AsyncRetrying``),
so the two cannot drift apart. Upload-only rules (never resend an ambiguous body, resend one cut short)
are in the second table; only the sync hook uploads.
"""

from __future__ import annotations

import asyncio
import io
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from airflow.sdk.exceptions import AirflowFailException

from symbl_airflow.errors import (
    SymblAmbiguousSubmissionError,
    SymblAuthError,
    SymblBadRequestError,
    SymblConnectionError,
    SymblNotFoundError,
    SymblRateLimitError,
    SymblRetryBudgetError,
    SymblServerError,
)
from symbl_airflow.hooks import RetryPolicy, SymblAsyncHook, SymblHook, parse_retry_after
from symbl_airflow.hooks.retry import is_retryable, may_resend_upload
from symbl_airflow.hooks.wire import Call

pytestmark = pytest.mark.unit

OK = (200, {"id": "j", "status": "completed"}, {})
DROP = "drop"  # close the connection without answering


def status(code, message="x", retry_after=None):
    return (code, {"message": message}, {"Retry-After": retry_after} if retry_after is not None else {})


class ScriptedSymbl:
    """A loopback HTTP server: the token endpoint answers ``token_answers`` (then 200), API calls the script."""

    def __init__(self):
        self.script: list = []
        self.token_answers: list = []
        self.requests: list[tuple[str, str, int]] = []  # (method, path, body bytes received)
        self.token_requests = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _answer(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                if self.path.startswith("/oauth2/token"):
                    server.token_requests += 1
                    item = server.token_answers.pop(0) if server.token_answers else None
                    item = item or (200, {"accessToken": f"tok-{server.token_requests}", "expiresIn": 86400}, {})
                else:
                    server.requests.append((self.command, self.path, len(body)))
                    item = server.script.pop(0) if server.script else OK
                if item == DROP:
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                code, payload, headers = item
                data = json.dumps(payload).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                # A fresh connection per request: aiohttp silently resends on a dropped *reused* one.
                self.send_header("Connection", "close")
                self.close_connection = True
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = _answer

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server(monkeypatch):
    srv = ScriptedSymbl()
    monkeypatch.setenv(
        "AIRFLOW_CONN_SYMBL_POLICY",
        json.dumps({"conn_type": "symbl", "host": srv.url, "login": "policy-app", "password": "policy-secret-4411"}),
    )
    yield srv
    srv.close()


def run_get_job(kind: str, **hook_kwargs):
    """``get_job('j')`` through one hook kind; returns (result or exception, the waits it took)."""
    hook_kwargs.setdefault("backoff_base", 0.5)
    sleeps: list[float] = []
    if kind == "sync":
        hook = SymblHook("symbl_policy", **hook_kwargs)
        hook._sleep = sleeps.append
        try:
            return hook.get_job("j"), sleeps
        except Exception as exc:
            return exc, sleeps
        finally:
            hook.close()

    async def fake_sleep(delay):
        sleeps.append(delay)

    async def main():
        async with SymblAsyncHook("symbl_policy", **hook_kwargs) as hook:
            hook._sleep = fake_sleep
            try:
                return await hook.get_job("j")
            except Exception as exc:
                return exc

    return asyncio.run(main()), sleeps


HOOKS = ["sync", "async"]

# (id, script, hook kwargs, expected result type, requests sent, expected waits: list or (count, ceiling))
POLICY = [
    ("ok", [OK], {}, None, 1, []),
    ("503 then ok", [status(503), OK], {}, None, 2, (1, 0.5)),
    ("500 retried (idempotent)", [status(500), OK], {}, None, 2, (1, 0.5)),
    ("502 504 then ok", [status(502), status(504), OK], {}, None, 3, (2, 1.0)),
    # aiohttp itself resends an idempotent request once on a dropped connection (RFC 9112 §9.3.1),
    # so the async hook may get its answer without a wait of the policy: the waits are not compared.
    ("dropped connection retried", [DROP, OK], {}, None, 2, None),
    ("429 waits Retry-After", [status(429, retry_after="0.3"), OK], {}, None, 2, [0.3]),
    (
        "429 HTTP-date Retry-After in the past",
        [status(429, retry_after="Tue, 14 Nov 2023 22:13:00 GMT"), OK],
        {},
        None,
        2,
        [0.0],
    ),
    ("attempts bounded", [status(502)] * 5, {"max_attempts": 3}, SymblServerError, 3, (2, 1.0)),
    (
        "backoff bounded by the budget",
        [status(503)] * 5,
        {"max_retry_seconds": 0.0, "backoff_base": 0.0},
        SymblServerError,
        1,
        [],
    ),
    ("400 never retried", [status(400)], {}, SymblBadRequestError, 1, []),
    ("404 never retried", [status(404)], {}, SymblNotFoundError, 1, []),
    ("403 never retried", [status(403)], {}, SymblAuthError, 1, []),
    ("401 refreshes the token once", [status(401), OK], {}, None, 2, []),
    ("401 twice fails", [status(401), status(401)], {}, SymblAuthError, 2, []),
    (
        "429 beyond the budget fails at once",
        [status(429, retry_after="30")],
        {"max_retry_seconds": 10},
        SymblRetryBudgetError,
        1,
        [],
    ),
    ("429 exhausting attempts", [status(429, retry_after="0")] * 3, {"max_attempts": 2}, SymblRateLimitError, 2, [0.0]),
]


@pytest.mark.parametrize("kind", HOOKS)
@pytest.mark.parametrize(
    ("script", "kwargs", "expected", "sent", "waits"), [p[1:] for p in POLICY], ids=[p[0] for p in POLICY]
)
def test_policy(server, kind, script, kwargs, expected, sent, waits):
    server.script = list(script)
    result, sleeps = run_get_job(kind, **kwargs)
    if expected is None:
        assert result.id == "j" and result.status == "completed", result
    else:
        assert type(result) is expected, result
    assert len(server.requests) == sent
    if waits is None:
        pass
    elif isinstance(waits, tuple):
        count, ceiling = waits
        assert len(sleeps) == count and all(0.0 <= s <= ceiling for s in sleeps), sleeps
    else:
        assert sleeps == pytest.approx(waits)


@pytest.mark.parametrize("kind", HOOKS)
def test_retry_after_beyond_budget_says_so_and_fails_the_task(server, kind):
    server.script = [status(429, "Too many concurrent jobs", retry_after="120")]
    exc, sleeps = run_get_job(kind, max_retry_seconds=60)
    assert isinstance(exc, AirflowFailException) and isinstance(exc, SymblRateLimitError)
    text = str(exc)
    assert "Too many concurrent jobs" in text and "120 s" in text and "max_retry_seconds=60" in text
    assert "GET /v1/job/j" in text and exc.retry_after == 120
    assert sleeps == []


@pytest.mark.parametrize("kind", HOOKS)
def test_wrong_credentials_fail_the_task_without_retry(server, kind):
    server.token_answers = [status(401, "Invalid appId or appSecret")]
    exc, _ = run_get_job(kind)
    assert isinstance(exc, SymblAuthError) and isinstance(exc, AirflowFailException)
    assert "App ID / App Secret of connection 'symbl_policy'" in str(exc)
    assert "policy-secret-4411" not in str(exc)
    assert server.token_requests == 1 and server.requests == []


@pytest.mark.parametrize("kind", HOOKS)
def test_full_jitter_backoff_grows_and_is_capped(server, kind):
    server.script = [status(503)] * 6 + [OK]
    _, sleeps = run_get_job(kind, max_attempts=7, backoff_base=0.5, max_retry_seconds=1000)
    ceilings = [0.5, 1.0, 2.0, 4.0, 8.0, 16.0]
    assert len(sleeps) == 6 and all(0.0 <= s <= c for s, c in zip(sleeps, ceilings, strict=True))


@pytest.mark.parametrize("kind", HOOKS)
def test_connection_refused_bounded(monkeypatch, kind):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv(
        "AIRFLOW_CONN_SYMBL_POLICY",
        json.dumps({"conn_type": "symbl", "host": f"http://127.0.0.1:{port}", "login": "a", "password": "b" * 8}),
    )
    exc, sleeps = run_get_job(kind, max_attempts=3, backoff_base=0.01)
    assert isinstance(exc, SymblConnectionError) and "no response after 3 attempt(s)" in str(exc)
    assert len(sleeps) == 2


# ----------------------------------------------------------------------------------------- uploads
# (id, script, expected type, requests that reached the server)
UPLOADS = [
    ("201", [(201, {"conversationId": "c", "jobId": "j2"}, {})], None, 1),
    ("503 after the whole body: ambiguous, not resent", [status(503), (201, {}, {})], SymblAmbiguousSubmissionError, 1),
    ("504 after the whole body: ambiguous, not resent", [status(504), (201, {}, {})], SymblAmbiguousSubmissionError, 1),
    ("429 then 201", [status(429, retry_after="0"), (201, {"conversationId": "c", "jobId": "j2"}, {})], None, 2),
    ("500 on an upload is not retried", [status(500), (201, {}, {})], SymblAmbiguousSubmissionError, 1),
    ("no answer after the whole body: ambiguous", [DROP, (201, {}, {})], SymblAmbiguousSubmissionError, 1),
    ("2xx without ids: ambiguous", [(201, {"oops": 1}, {})], SymblAmbiguousSubmissionError, 1),
]


@pytest.mark.parametrize(("script", "expected", "sent"), [u[1:] for u in UPLOADS], ids=[u[0] for u in UPLOADS])
def test_upload_policy(server, script, expected, sent):
    server.script = list(script)
    opened = []
    hook = SymblHook("symbl_policy", backoff_base=0.01)
    hook._sleep = lambda s: None

    def open_body():
        opened.append(1)
        return io.BytesIO(b"x" * 1000)

    try:
        result = hook.submit_video(open_body, 1000, conversation_id="c")
    except Exception as exc:
        result = exc
    if expected is None:
        assert result.job_id == "j2"
    else:
        assert type(result) is expected, result
    assert len(server.requests) == sent == len(opened)
    assert all(received == 1000 for _, _, received in server.requests)


@pytest.mark.parametrize(
    ("opened", "started", "complete", "resend"),
    [
        (False, False, False, True),  # the connection never opened
        (True, False, False, True),  # opened, nothing sent
        (True, True, False, True),  # body cut short: Symbl cannot have accepted it
        (True, True, True, False),  # whole body out, no answer: ambiguous
        (True, False, True, False),  # an empty body counts as complete
    ],
)
def test_may_resend_upload(opened, started, complete, resend):
    assert may_resend_upload(connection_opened=opened, body_started=started, body_complete=complete) is resend


@pytest.mark.parametrize(
    ("exc", "upload", "retry"),
    [
        (SymblServerError("x", status=500, endpoint="/v1/x"), False, True),
        (SymblServerError("x", status=500, endpoint="/v1/x"), True, False),
        (SymblServerError("x", status=503, endpoint="/v1/x"), True, True),
        (SymblRateLimitError("x", status=429, endpoint="/v1/x"), True, True),
        (SymblConnectionError("x", endpoint="/v1/x"), True, True),
        (SymblConnectionError("x", endpoint="/oauth2/token:generate"), False, False),  # retried as its own call
        (SymblAmbiguousSubmissionError("x", endpoint="/v1/x"), True, False),
        (SymblBadRequestError("x", status=400, endpoint="/v1/x"), False, False),
        (ValueError("bug"), False, False),
    ],
)
def test_is_retryable(exc, upload, retry):
    assert is_retryable(exc, Call("PUT" if upload else "GET", "/v1/x", upload=upload)) is retry


@pytest.mark.parametrize(
    ("value", "expected"),
    [("3", 3.0), ("0.25", 0.25), (" 2 ", 2.0), ("-4", 0.0), ("", None), (None, None), ("soon", None), ("nan", None)],
)
def test_parse_retry_after_seconds(value, expected):
    assert parse_retry_after(value) == expected


def test_parse_retry_after_http_date():
    now = 1_700_000_000.0
    assert parse_retry_after("Tue, 14 Nov 2023 22:13:30 GMT", now=now) == pytest.approx(10.0)
    assert parse_retry_after("Tue, 14 Nov 2023 22:13:00 GMT", now=now) == 0.0


def test_policy_resolution_order():
    class Config:
        max_attempts, max_retry_seconds, backoff_base = 7, None, 2.0

    policy = RetryPolicy.resolve(Config(), max_attempts=None, max_retry_seconds=12, backoff_base=None)
    assert policy == RetryPolicy(max_attempts=7, max_retry_seconds=12.0, backoff_base=2.0)
    assert RetryPolicy.resolve(Config(), max_attempts=0).max_attempts == 1
