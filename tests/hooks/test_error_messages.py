"""Error messages of the hooks: whole, public, one sentence after another, one short traceback.

Real sockets where the cause is a socket (a closed port, an unresolvable name), so the texts are the
ones requests/urllib3/aiohttp really produce; the task-log side is in tests/logs/.
"""

from __future__ import annotations

import json
import socket
import traceback

import pytest
import requests
from urllib3.exceptions import MaxRetryError

from symbl_airflow.errors import (
    MAX_MESSAGE_CHARS,
    SymblAuthError,
    SymblConnectionError,
    SymblError,
    clean_message,
    cut_text,
)
from symbl_airflow.hooks import SymblAsyncHook, SymblHook
from symbl_airflow.hooks.wire import Call, credentials_error, describe, symbl_message

pytestmark = pytest.mark.unit


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def requests_error(url: str) -> Exception:
    try:
        requests.get(url, timeout=2)
    except Exception as exc:
        return exc
    raise AssertionError(f"{url} answered")


def test_describe_names_the_innermost_cause_whole():
    port = closed_port()
    refused = requests_error(f"http://127.0.0.1:{port}/x")
    assert len(str(refused)) > 200  # the text that used to be cut at 200 characters, mid-sentence
    assert describe(refused) == "connection refused"
    unresolved = describe(requests_error("http://no-such-host.invalid/x"))
    assert unresolved.startswith("host name not resolved: ") and "Errno" not in unresolved


def test_describe_read_timeout_without_pool_repr():
    with socket.socket() as silent:  # accepts connections (backlog) and never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        port = silent.getsockname()[1]
        try:
            requests.get(f"http://127.0.0.1:{port}/x", timeout=(2, 0.2))
        except requests.exceptions.ReadTimeout as exc:
            timed_out = exc
    assert "HTTPConnectionPool" in str(timed_out)
    assert describe(timed_out) == "Read timed out. (read timeout=0.2)"
    wrapped = requests.exceptions.ConnectionError(MaxRetryError(None, "/x", ConnectionResetError(104, "reset")))
    assert describe(wrapped) == "connection reset by the server"


async def test_describe_aiohttp_refused():
    import aiohttp

    async with aiohttp.ClientSession() as session:
        with pytest.raises(aiohttp.ClientConnectorError) as info:
            await session.get(f"http://127.0.0.1:{closed_port()}/x")
    assert describe(info.value) == "connection refused"


@pytest.fixture
def wrong_host(monkeypatch):
    url = f"http://127.0.0.1:{closed_port()}"
    conn = {"conn_type": "symbl", "host": url, "login": "app", "password": "secret-1234", "extra": {"max_attempts": 2}}
    monkeypatch.setenv("AIRFLOW_CONN_SYMBL_NOWHERE", json.dumps(conn))
    return url


def _assert_wrong_host_message(text: str, url: str, attempts: int) -> None:
    assert text == (
        f"Symbl API POST /oauth2/token:generate: no response after {attempts} attempt(s): cannot connect to {url} "
        "(connection refused). Check the host of connection 'symbl_nowhere' (the Symbl base URL, e.g. "
        "https://api.symbl.ai) and that it is reachable from here"
    )


def test_wrong_host_sync_message_and_short_traceback(wrong_host):
    hook = SymblHook("symbl_nowhere", backoff_base=0.01)
    with pytest.raises(SymblConnectionError) as info:
        hook.get_job("job-1")
    _assert_wrong_host_message(str(info.value), wrong_host, 2)
    # one traceback, without tenacity's frames and without the transport error chained under it
    assert info.value.__cause__ is None and info.value.__suppress_context__
    frames = [f.filename for f in traceback.extract_tb(info.value.__traceback__)]
    assert not any("tenacity" in f for f in frames), frames
    assert len(frames) <= 6, frames


async def test_wrong_host_async_message(wrong_host):
    async with SymblAsyncHook("symbl_nowhere", backoff_base=0.01) as hook:
        with pytest.raises(SymblConnectionError) as info:
            await hook.get_job("job-1")
    _assert_wrong_host_message(str(info.value), wrong_host, 2)
    frames = [f.filename for f in traceback.extract_tb(info.value.__traceback__)]
    assert not any("tenacity" in f for f in frames), frames


def test_credentials_message_has_single_periods():
    call = Call("POST", "/oauth2/token:generate", auth=False)
    exc = credentials_error(call, "symbl_default", 401, json.dumps({"message": "Invalid appId or appSecret."}))
    assert isinstance(exc, SymblAuthError)
    assert str(exc) == (
        "Symbl API POST /oauth2/token:generate failed (HTTP 401): Symbl refused the App ID / App Secret of "
        "connection 'symbl_default': Invalid appId or appSecret. Check login (App ID) and password (App Secret) "
        "of connection 'symbl_default'"
    )
    # whatever a caller appends as the next sentence reads once: no "..", no ". ."
    assert ".." not in f"{exc}. Later parts were not sent."


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("Invalid option.", "Invalid option"),
        ("  two\n lines.  ", "two lines"),
        ("wait...", "wait..."),
        ("", ""),
    ],
)
def test_clean_message(message, expected):
    assert clean_message(message) == expected
    assert str(SymblError(message, status=400, method="GET", endpoint="/x")).endswith(expected or "failed (HTTP 400)")


def test_long_symbl_bodies_are_cut_between_words_and_say_so():
    body = "<html>" + " word" * 400 + "</html>"
    text = symbl_message(body)
    assert len(text) <= MAX_MESSAGE_CHARS + 40
    assert text.endswith(f"word [cut at {MAX_MESSAGE_CHARS} characters]")
    assert cut_text("short") == "short"


def test_error_without_status_does_not_claim_no_response():
    """A parse error had a status-less render "failed (no response): unexpected job response"."""
    exc = Call("GET", "/v1/job/j", job_id="j").error(SymblError, "unexpected job response: []")
    assert str(exc) == "Symbl API GET /v1/job/j: unexpected job response: [] [job_id=j]"
