"""Hooks for the Symbl.ai REST API: ``SymblHook`` (requests, workers) and ``SymblAsyncHook`` (aiohttp, triggers).

Both share the connection parsing, the retry policy, the error mapping and the process-wide token
cache. Retries follow one rule: a request is repeated only when repeating it cannot do harm. Reads
(GET, DELETE, the token) are retried on 429, 5xx gateway errors, connection errors and timeouts.
Uploads are retried only when Symbl definitely refused them (429/502/503/504, a 401 answered by one
token refresh, or a connection that never opened); once body bytes went out and no answer came back,
the upload is *ambiguous* and left to the operator (``SymblAmbiguousSubmissionError``).
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import random
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, BinaryIO
from urllib.parse import quote, urlparse

import requests
from airflow.providers.http.hooks.http import HttpHook
from airflow.sdk.definitions._internal.logging_mixin import LoggingMixin
from urllib3.exceptions import ConnectTimeoutError

from symbl_airflow.errors import (
    SymblAmbiguousSubmissionError,
    SymblAuthError,
    SymblBodyLengthError,
    SymblConfigError,
    SymblConnectionError,
    SymblError,
    SymblRateLimitError,
    error_class_for_status,
)
from symbl_airflow.options import SymblOptions
from symbl_airflow.tokens import DEFAULT_REFRESH_MARGIN, TOKEN_CACHE, TokenKey, mask_token
from symbl_airflow.version import __version__

if TYPE_CHECKING:
    import aiohttp

DEFAULT_BASE_URL = "https://api.symbl.ai"
DEFAULT_CONNECT_TIMEOUT = 10.0
DEFAULT_READ_TIMEOUT = 60.0
DEFAULT_UPLOAD_READ_TIMEOUT = 300.0
DEFAULT_MAX_ATTEMPTS = 5
DEFAULT_MAX_RETRY_SECONDS = 300.0
DEFAULT_BACKOFF_BASE = 1.0
DEFAULT_BACKOFF_MAX = 30.0
TOKEN_PATH = "/oauth2/token:generate"

#: Statuses that mean "not processed, try again later" for every request, uploads included.
REFUSED_STATUSES = frozenset({429, 502, 503, 504})
#: Statuses retried for idempotent calls only (a 500 on an upload may have half-happened).
IDEMPOTENT_RETRY_STATUSES = REFUSED_STATUSES | {500}

#: Answers of a Symbl deployment without the Experience API (no summary page to link to).
EXPERIENCE_UNAVAILABLE_STATUSES = frozenset({404, 405, 501})

JOB_TERMINAL_STATUSES = ("completed", "failed")
JOB_STATUSES = ("scheduled", "in_progress", "completed", "failed")

#: Insight kind -> path suffix under ``/v1/conversations/{conversationId}``.
INSIGHT_ENDPOINTS: dict[str, str] = {
    "conversation": "",
    "messages": "messages",
    "topics": "topics",
    "questions": "questions",
    "action_items": "action-items",
    "follow_ups": "follow-ups",
    "entities": "entities",
    "trackers": "trackers-detected",
    "analytics": "analytics",
    "summary": "summary",
    "members": "members",
}


def _airflow_version() -> str:
    try:
        from airflow import __version__ as airflow_version

        return airflow_version
    except ImportError:  # pragma: no cover
        return "unknown"


USER_AGENT = f"symbl-airflow/{__version__} (apache-airflow/{_airflow_version()})"


# ---------------------------------------------------------------------------------------------- values
@dataclass(frozen=True)
class SymblJob:
    """A Symbl job as returned by ``GET /v1/job/{jobId}``."""

    id: str
    status: str

    @property
    def is_terminal(self) -> bool:
        return self.status in JOB_TERMINAL_STATUSES

    @property
    def is_completed(self) -> bool:
        return self.status == "completed"

    @property
    def is_failed(self) -> bool:
        return self.status == "failed"

    def to_dict(self) -> dict:
        return {"id": self.id, "status": self.status}


@dataclass(frozen=True)
class SymblSubmission:
    """What Symbl returns for an accepted submission (201)."""

    conversation_id: str
    job_id: str

    def to_dict(self) -> dict:
        return {"conversation_id": self.conversation_id, "job_id": self.job_id}


# ---------------------------------------------------------------------------------------------- config
@dataclass(frozen=True)
class SymblConnectionConfig:
    """Everything the hooks need from an Airflow connection, parsed and checked once."""

    conn_id: str
    base_url: str
    app_id: str
    app_secret: str = field(repr=False)
    timeout: float | None = None
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    token_refresh_margin: float = DEFAULT_REFRESH_MARGIN
    max_attempts: int | None = None
    max_retry_seconds: float | None = None
    backoff_base: float | None = None
    verify: bool | str = True

    @property
    def token_key(self) -> TokenKey:
        return (self.base_url, self.app_id)


def normalize_base_url(host: str | None, schema: str | None = None, port: int | None = None) -> str:
    """Base URL from the connection: empty -> Symbl's; scheme-less host -> https (or ``schema``)."""
    host = (host or "").strip()
    if not host:
        return DEFAULT_BASE_URL
    if "://" not in host:
        scheme = (schema or "").strip().lower()
        if scheme not in ("http", "https"):
            scheme = "https"
        host = f"{scheme}://{host}"
    parsed = urlparse(host)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise SymblConfigError(f"Symbl base URL {host!r} must be an http(s) URL such as https://api.symbl.ai")
    url = host.rstrip("/")
    if port and parsed.port is None:
        url = f"{parsed.scheme}://{parsed.netloc}:{int(port)}{parsed.path.rstrip('/')}"
    return url


def _extra_number(extras: dict, name: str, conn_id: str, *, integer: bool = False, minimum: float = 0.0):
    value = extras.get(name)
    if value is None or value == "":
        return None
    try:
        if isinstance(value, bool):
            raise ValueError
        number = int(value) if integer else float(value)
    except (TypeError, ValueError):
        kind = "an integer" if integer else "a number"
        raise SymblConfigError(f"Connection {conn_id!r}: extra {name!r} must be {kind}, got {value!r}") from None
    if number < minimum:
        raise SymblConfigError(f"Connection {conn_id!r}: extra {name!r} must be >= {minimum}, got {value!r}")
    return number


def parse_connection(conn: Any, conn_id: str, extras: dict | None = None) -> SymblConnectionConfig:
    """Turn an Airflow ``Connection`` (+ its decoded extras) into a :class:`SymblConnectionConfig`."""
    extras = dict(extras if extras is not None else (conn.extra_dejson or {}))
    missing = [
        label
        for label, value in (("login (App ID)", conn.login), ("password (App Secret)", conn.password))
        if not value
    ]
    if missing:
        raise SymblConfigError(
            f"Connection {conn_id!r} has no {' and no '.join(missing)}. Set login = your Symbl App ID "
            "and password = your App Secret (e.g. AIRFLOW_CONN_"
            f'{conn_id.upper()}=\'{{"conn_type": "symbl", "login": "...", "password": "..."}}\').'
        )
    verify = extras.get("verify", extras.get("verify_ssl", True))
    if isinstance(verify, str) and verify.lower() in ("true", "false"):
        verify = verify.lower() == "true"
    return SymblConnectionConfig(
        conn_id=conn_id,
        base_url=normalize_base_url(conn.host, conn.schema, conn.port),
        app_id=conn.login,
        app_secret=conn.password,
        timeout=_extra_number(extras, "timeout", conn_id, minimum=0.001),
        connect_timeout=_extra_number(extras, "connect_timeout", conn_id, minimum=0.001) or DEFAULT_CONNECT_TIMEOUT,
        token_refresh_margin=(
            m if (m := _extra_number(extras, "token_refresh_margin", conn_id)) is not None else DEFAULT_REFRESH_MARGIN
        ),
        max_attempts=_extra_number(extras, "max_attempts", conn_id, integer=True, minimum=1),
        max_retry_seconds=_extra_number(extras, "max_retry_seconds", conn_id),
        backoff_base=_extra_number(extras, "backoff_base", conn_id),
        verify=verify,
    )


# ---------------------------------------------------------------------------------------------- retries
def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP-date); ``None`` if unusable."""
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when is None:
            return None
        seconds = when.timestamp() - (time.time() if now is None else now)
    if seconds != seconds or seconds == float("inf"):  # NaN / inf
        return None
    return max(0.0, seconds)


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded attempts and total time; exponential backoff with full jitter unless Retry-After says."""

    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    max_retry_seconds: float = DEFAULT_MAX_RETRY_SECONDS
    backoff_base: float = DEFAULT_BACKOFF_BASE
    backoff_max: float = DEFAULT_BACKOFF_MAX

    def backoff(self, attempt: int, rng: Callable[[float, float], float] = random.uniform) -> float:
        """Full jitter: uniform in [0, min(max, base * 2**(attempt-1))]."""
        ceiling = min(self.backoff_max, self.backoff_base * (2 ** max(0, attempt - 1)))
        return rng(0.0, ceiling)

    def next_delay(self, attempt: int, elapsed: float, retry_after: float | None = None) -> float | None:
        """Delay before attempt ``attempt + 1``, or ``None`` when the budget is spent."""
        if attempt >= self.max_attempts:
            return None
        delay = retry_after if retry_after is not None else self.backoff(attempt)
        if elapsed + delay > self.max_retry_seconds:
            return None
        return delay


def _resolve_policy(
    config: SymblConnectionConfig, max_attempts: int | None, max_retry_seconds: float | None, backoff_base
) -> RetryPolicy:
    """Constructor arguments win over connection extras, which win over defaults."""
    attempts = max_attempts if max_attempts is not None else config.max_attempts
    seconds = max_retry_seconds if max_retry_seconds is not None else config.max_retry_seconds
    base = backoff_base if backoff_base is not None else config.backoff_base
    return RetryPolicy(
        max_attempts=max(1, int(attempts if attempts is not None else DEFAULT_MAX_ATTEMPTS)),
        max_retry_seconds=float(seconds if seconds is not None else DEFAULT_MAX_RETRY_SECONDS),
        backoff_base=float(base if base is not None else DEFAULT_BACKOFF_BASE),
    )


def _symbl_message(text: str) -> str:
    """Symbl's ``message`` from an error body, else the (trimmed) text."""
    try:
        payload = json.loads(text)
    except ValueError:
        payload = None
    if isinstance(payload, dict):
        for key in ("message", "error_description", "error", "detail"):
            value = payload.get(key)
            if isinstance(value, str) and value:
                return value
    return " ".join(text.split())[:500]


def _api_error(
    status: int | None,
    message: str,
    *,
    method: str,
    endpoint: str,
    conversation_id: str | None,
    job_id: str | None,
    retry_after: float | None = None,
) -> SymblError:
    cls = error_class_for_status(status)
    kwargs: dict[str, Any] = {
        "status": status,
        "method": method,
        "endpoint": endpoint,
        "conversation_id": conversation_id,
        "job_id": job_id,
    }
    if cls is SymblRateLimitError:
        kwargs["retry_after"] = retry_after
    return cls(message, **kwargs)


def _ambiguous(
    method: str, endpoint: str, conversation_id: str | None, reason: str, status: int | None = None
) -> SymblAmbiguousSubmissionError:
    check = (
        f"list the jobs/messages of conversation {conversation_id}"
        if conversation_id
        else "look for a new conversation (GET /v1/conversations)"
    )
    return SymblAmbiguousSubmissionError(
        f"{reason}; the submission may or may not have been accepted by Symbl. It was not retried "
        f"automatically because a retry could process the video twice: {check} before submitting again",
        status=status,
        method=method,
        endpoint=endpoint,
        conversation_id=conversation_id,
    )


def _describe(exc: BaseException) -> str:
    """A short, secret-free description of a transport error."""
    name = type(exc).__name__
    text = str(exc).split("\n")[0][:200]
    return f"{name}: {text}" if text else name


def _quote(value: str, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{what} must be a non-empty string, got {value!r}")
    return quote(value, safe="")


def _insight_path(conversation_id: str, kind: str) -> str:
    suffix = _insight_suffix(kind)
    path = f"/v1/conversations/{_quote(conversation_id, 'conversation_id')}"
    return f"{path}/{suffix}" if suffix else path


def _insight_suffix(kind: str) -> str:
    if kind in INSIGHT_ENDPOINTS:
        return INSIGHT_ENDPOINTS[kind]
    normalized = str(kind).replace("-", "_")
    if normalized in INSIGHT_ENDPOINTS:
        return INSIGHT_ENDPOINTS[normalized]
    raise ValueError(f"Unknown Symbl insight kind {kind!r}; allowed: {', '.join(INSIGHT_ENDPOINTS)}")


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p[:1].upper() + p[1:] for p in rest)


def _insight_params(params: dict[str, Any]) -> list[tuple[str, str]]:
    encoded = []
    for key, value in params.items():
        if value is None:
            continue
        if isinstance(value, bool):
            text = "true" if value else "false"
        else:
            text = str(value)
        encoded.append((_camel(key), text))
    return encoded


def _parse_submission(
    resp: requests.Response | None, payload: Any, method: str, endpoint: str, conversation_id: str | None
) -> SymblSubmission:
    if isinstance(payload, dict) and payload.get("conversationId") and payload.get("jobId"):
        return SymblSubmission(conversation_id=str(payload["conversationId"]), job_id=str(payload["jobId"]))
    # A 2xx without ids: Symbl took it, but we cannot tell which job it is.
    status = resp.status_code if resp is not None else None
    raise _ambiguous(
        method, endpoint, conversation_id, f"HTTP {status} without conversationId/jobId: {str(payload)[:200]}", status
    )


def _parse_job(payload: Any, job_id: str, endpoint: str) -> SymblJob:
    if isinstance(payload, dict) and isinstance(payload.get("status"), str):
        return SymblJob(id=str(payload.get("id") or payload.get("jobId") or job_id), status=payload["status"].lower())
    raise SymblError(f"unexpected job response: {str(payload)[:200]}", method="GET", endpoint=endpoint, job_id=job_id)


def _parse_token(payload: Any, endpoint: str) -> tuple[str, float]:
    if isinstance(payload, dict) and isinstance(payload.get("accessToken"), str) and payload["accessToken"]:
        try:
            expires_in = float(payload.get("expiresIn", 86400))
        except (TypeError, ValueError):
            expires_in = 86400.0
        return payload["accessToken"], expires_in
    # Never echo the payload: it might hold a token under another name.
    raise SymblError("token response without accessToken", method="POST", endpoint=endpoint)


def _parse_experience_url(payload: Any, endpoint: str, conversation_id: str) -> str:
    url = payload.get("url") if isinstance(payload, dict) else None
    if isinstance(url, str) and urlparse(url).scheme in ("http", "https"):
        return url
    raise SymblError(
        f"experience response without an http(s) url: {str(payload)[:200]}",
        method="POST",
        endpoint=endpoint,
        conversation_id=conversation_id,
    )


# ---------------------------------------------------------------------------------------------- upload body
class _BodyLengthMismatch(ValueError):
    pass


class _UploadBody:
    """The upload body for one attempt.

    ``__len__`` makes requests send ``Content-Length`` (no chunked encoding); having ``__iter__`` but
    no ``read`` makes urllib3 iterate, so the body streams in ``chunk_size`` pieces and is never held
    in memory. ``handed_out`` tells whether any byte may have reached the server.
    """

    def __init__(
        self,
        open_body: Callable[[], BinaryIO | Iterable[bytes]],
        length: int,
        chunk_size: int,
        on_progress: Callable[[int], None] | None,
    ) -> None:
        self._open_body = open_body
        self.length = length
        self.chunk_size = chunk_size
        self._on_progress = on_progress
        self.sent = 0
        self.handed_out = False
        self._source: Any = None

    def __len__(self) -> int:
        return self.length

    def __iter__(self) -> Iterator[bytes]:
        if self._source is not None:
            raise RuntimeError("an upload body can be iterated only once per attempt")
        self._source = self._open_body()
        # One chunk of lookahead: the last chunk is held back until the source is known to end at
        # exactly ``length`` bytes, so a wrong length never gives the server a complete body.
        pending: bytes | None = None
        total = 0
        for chunk in self._raw_chunks(self._source):
            total += len(chunk)
            if total > self.length:
                raise _BodyLengthMismatch(f"the source has more than length={self.length} bytes")
            if pending is not None:
                yield from self._emit(pending)
            pending = chunk
        if total != self.length:
            raise _BodyLengthMismatch(f"the source ended after {total} bytes but length={self.length}")
        if pending is not None:
            yield from self._emit(pending)

    def _raw_chunks(self, source: Any) -> Iterator[bytes]:
        if hasattr(source, "read"):
            remaining = self.length
            while True:
                # Past the declared length, read one byte: only to detect a longer source.
                data = source.read(min(self.chunk_size, remaining) if remaining > 0 else 1)
                if not data:
                    return
                remaining -= len(data)
                yield bytes(data)
        for data in source:
            if data:
                yield bytes(data)

    def _emit(self, chunk: bytes) -> Iterator[bytes]:
        for start in range(0, len(chunk), self.chunk_size):
            piece = chunk[start : start + self.chunk_size]
            self.handed_out = True
            yield piece
            self.sent += len(piece)
            self._progress()

    def _progress(self) -> None:
        if self._on_progress is None:
            return
        try:
            self._on_progress(self.sent)
        except Exception:
            # A broken progress callback must not turn a good upload into an ambiguous one.
            self._on_progress = None

    def close(self) -> None:
        source, self._source = self._source, None
        close = getattr(source, "close", None)
        if callable(close):
            try:
                close()
            except Exception:
                self._source = None


def _is_connect_failure(exc: BaseException) -> bool:
    """True when requests failed before the connection opened (nothing of the request was sent)."""
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return True
    if isinstance(exc, requests.exceptions.ConnectionError) and exc.args:
        reason = getattr(exc.args[0], "reason", None)
        return isinstance(reason, ConnectTimeoutError)  # NewConnectionError / NameResolutionError too
    return False


# ---------------------------------------------------------------------------------------------- sync hook
class SymblHook(HttpHook):
    """Talk to the Symbl.ai API from workers.

    :param symbl_conn_id: Airflow connection: host = base URL (default ``https://api.symbl.ai``),
        login = App ID, password = App Secret; extras ``timeout``, ``connect_timeout``,
        ``token_refresh_margin``, ``max_attempts``, ``max_retry_seconds``.
    :param max_attempts: attempts per call including the first (default: extra, else 5).
    :param max_retry_seconds: total time budget for retries of one call (default: extra, else 300).
    :param timeout: read timeout in seconds for every call (default: extra ``timeout``, else 300 s for
        uploads and 60 s for other calls).
    :param backoff_base: first backoff ceiling in seconds (doubles per attempt, full jitter).
    """

    conn_name_attr = "symbl_conn_id"
    default_conn_name = "symbl_default"
    conn_type = "symbl"
    hook_name = "Symbl.ai"

    def __init__(
        self,
        symbl_conn_id: str = default_conn_name,
        *,
        max_attempts: int | None = None,
        max_retry_seconds: float | None = None,
        timeout: float | None = None,
        backoff_base: float | None = None,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("method", "GET")
        super().__init__(http_conn_id=symbl_conn_id, **kwargs)
        self.symbl_conn_id = symbl_conn_id
        self._max_attempts = max_attempts
        self._max_retry_seconds = max_retry_seconds
        self._timeout = timeout
        self._backoff_base = backoff_base
        self._config: SymblConnectionConfig | None = None
        self._session: requests.Session | None = None
        self._sleep: Callable[[float], None] = time.sleep
        self._experience_unavailable_logged = False

    # ------------------------------------------------------------------ Airflow UI
    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        return {
            "hidden_fields": ["schema", "port"],
            "relabeling": {"host": "Base URL", "login": "App ID", "password": "App Secret"},
            "placeholders": {
                "host": DEFAULT_BASE_URL,
                "login": "your Symbl App ID",
                "password": "your Symbl App Secret",
                "extra": '{"timeout": 300, "token_refresh_margin": 300}',
            },
        }

    def test_connection(self) -> tuple[bool, str]:
        """Fetch a fresh token: proves the base URL and the App ID / App Secret."""
        try:
            config = self.config
            value, expires_in = self._fetch_token()
            mask_token(value)
            TOKEN_CACHE.store(config.token_key, value, expires_in, config.token_refresh_margin)
            return True, f"Connection successfully tested: got an access token from {config.base_url}"
        except Exception as exc:
            return False, str(exc)

    # ------------------------------------------------------------------ plumbing
    @property
    def config(self) -> SymblConnectionConfig:
        if self._config is None:
            conn = self.get_connection(self.symbl_conn_id)
            self._config = parse_connection(conn, self.symbl_conn_id)
            _mask_secret(self._config.app_secret)
        return self._config

    @property
    def retry_policy(self) -> RetryPolicy:
        return _resolve_policy(self.config, self._max_attempts, self._max_retry_seconds, self._backoff_base)

    def get_conn(self, headers: dict[Any, Any] | None = None, extra_options: dict[str, Any] | None = None):
        """Return the hook's (reused) ``requests.Session``: keep-alive, User-Agent, no basic auth."""
        if self._session is None:
            config = self.config
            session = requests.Session()
            session.headers["User-Agent"] = USER_AGENT
            session.headers["Accept"] = "application/json"
            session.verify = config.verify
            if self.keep_alive_adapter is not None:
                session.mount("http://", self.keep_alive_adapter)
                session.mount("https://", self.keep_alive_adapter)
            elif self.adapter is not None:
                session.mount("http://", self.adapter)
                session.mount("https://", self.adapter)
            self.base_url = config.base_url
            self._base_url_initialized = True
            self._session = session
        if headers:
            self._session.headers.update(headers)
        return self._session

    def close(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None

    def _timeouts(self, upload: bool) -> tuple[float, float]:
        config = self.config
        read = self._timeout or config.timeout or (DEFAULT_UPLOAD_READ_TIMEOUT if upload else DEFAULT_READ_TIMEOUT)
        return (config.connect_timeout, read)

    # ------------------------------------------------------------------ tokens
    def get_access_token(self) -> str:
        config = self.config
        return TOKEN_CACHE.get_sync(config.token_key, self._fetch_token, config.token_refresh_margin)

    def _fetch_token(self) -> tuple[str, float]:
        config = self.config
        resp = self._send(
            "POST",
            TOKEN_PATH,
            json_body={"type": "application", "appId": config.app_id, "appSecret": config.app_secret},
            auth=False,
        )
        if resp.status_code in (401, 403):
            raise SymblAuthError(
                f"Symbl refused the App ID / App Secret of connection {config.conn_id!r}: {_symbl_message(resp.text)}",
                status=resp.status_code,
                method="POST",
                endpoint=TOKEN_PATH,
            )
        return _parse_token(self._json(resp, "POST", TOKEN_PATH), TOKEN_PATH)

    # ------------------------------------------------------------------ the request engine
    def _send(
        self,
        method: str,
        path: str,
        *,
        params: list[tuple[str, str]] | None = None,
        json_body: Any = None,
        body: Callable[[], _UploadBody] | None = None,
        content_type: str | None = None,
        upload: bool = False,
        auth: bool = True,
        conversation_id: str | None = None,
        job_id: str | None = None,
    ) -> requests.Response:
        """Send one logical call with retries; return a 2xx response or raise a ``SymblError``.

        For ``auth=False`` (the token call) a 401/403 is returned to the caller.
        """
        session = self.get_conn()
        policy = self.retry_policy
        url = self.config.base_url + path
        started = time.monotonic()
        attempt = 0
        refreshed = False
        ids = {"conversation_id": conversation_id, "job_id": job_id}
        while True:
            attempt += 1
            headers: dict[str, str] = {}
            token = None
            if auth:
                token = self.get_access_token()
                headers["Authorization"] = f"Bearer {token}"
            if content_type:
                headers["Content-Type"] = content_type
            data = body() if body is not None else None
            retry_after: float | None = None
            try:
                resp = session.request(
                    method,
                    url,
                    params=params,
                    json=json_body,
                    data=data,
                    headers=headers,
                    timeout=self._timeouts(upload),
                )
            except _BodyLengthMismatch as exc:
                raise SymblBodyLengthError(
                    f"upload aborted: {exc}; nothing was accepted", method=method, endpoint=path, **ids
                ) from None
            except Exception as exc:
                incomplete = upload and data is not None and data.sent < data.length
                if not isinstance(exc, requests.RequestException) and (not incomplete or isinstance(exc, ValueError)):
                    raise  # a bug, or the source itself refusing (e.g. it changed): not a transport fault
                # A body that never got out whole cannot have been accepted (the server needs all
                # Content-Length bytes), so that is a refusal and safe to resend from a fresh source.
                # Otherwise it is safe only if the connection never opened.
                if (
                    upload
                    and not incomplete
                    and ((data is not None and data.handed_out) or not _is_connect_failure(exc))
                ):
                    raise _ambiguous(
                        method, path, conversation_id, f"request sent but no response ({_describe(exc)})"
                    ) from None
                reason = _describe(exc)
                if incomplete:
                    reason = f"connection lost after {data.sent} of {data.length} body bytes ({reason})"
                error: SymblError = SymblConnectionError(
                    f"no response after {attempt} attempt(s): {reason}", method=method, endpoint=path, **ids
                )
            else:
                status = resp.status_code
                if 200 <= status < 300:
                    return resp
                if not auth and status in (401, 403):
                    return resp
                message = _symbl_message(resp.text)
                if status == 401 and auth and not refreshed:
                    # An expired or revoked token: one refresh, one retry (uploads were refused, so safe).
                    refreshed = True
                    attempt -= 1
                    TOKEN_CACHE.invalidate(self.config.token_key, token)
                    self.log.warning("%s %s got HTTP 401; refreshing the access token once", method, path)
                    continue
                retry_after = parse_retry_after(resp.headers.get("Retry-After"))
                error = _api_error(status, message, method=method, endpoint=path, retry_after=retry_after, **ids)
                retryable = REFUSED_STATUSES if upload else IDEMPOTENT_RETRY_STATUSES
                if status not in retryable:
                    raise error
                reason = f"HTTP {status}: {message}"
            finally:
                if data is not None:
                    data.close()
            delay = policy.next_delay(attempt, time.monotonic() - started, retry_after)
            if delay is None:
                raise error
            self.log.warning(
                "[attempt %d/%d] %s %s failed (%s); retrying in %.2f s",
                attempt,
                policy.max_attempts,
                method,
                path,
                reason,
                delay,
            )
            self._sleep(delay)

    @staticmethod
    def _payload(resp: requests.Response) -> Any:
        try:
            return resp.json()
        except ValueError:
            return resp.text

    def _json(self, resp: requests.Response, method: str, path: str, **ids: Any) -> Any:
        try:
            return resp.json()
        except ValueError:
            raise SymblError(
                f"expected JSON, got {resp.headers.get('Content-Type')!r}: {resp.text[:200]!r}",
                status=resp.status_code,
                method=method,
                endpoint=path,
                **ids,
            ) from None

    # ------------------------------------------------------------------ API
    def submit_video(
        self,
        open_body: Callable[[], BinaryIO | Iterable[bytes]],
        length: int,
        *,
        conversation_id: str | None = None,
        options: SymblOptions | None = None,
        content_type: str = "video/mp4",
        chunk_size: int = 1 << 20,
        on_progress: Callable[[int], None] | None = None,
    ) -> SymblSubmission:
        """Stream an MP4: POST a new conversation, or PUT (append) to ``conversation_id``.

        ``open_body`` is called once per attempt, so every retry re-reads the source from its start.
        """
        if isinstance(length, bool) or not isinstance(length, int) or length < 0:
            raise ValueError(f"length must be a non-negative int, got {length!r}")
        if not isinstance(chunk_size, int) or chunk_size < 1:
            raise ValueError(f"chunk_size must be a positive int, got {chunk_size!r}")
        options = SymblOptions.coerce(options)
        options.validate()
        if conversation_id:
            method, path = "PUT", f"/v1/process/video/{_quote(conversation_id, 'conversation_id')}"
        else:
            method, path, conversation_id = "POST", "/v1/process/video", None
        resp = self._send(
            method,
            path,
            params=options.to_query_params(),
            body=lambda: _UploadBody(open_body, length, chunk_size, on_progress),
            content_type=content_type,
            upload=True,
            conversation_id=conversation_id,
        )
        submission = _parse_submission(resp, self._payload(resp), method, path, conversation_id)
        self.log.info(
            "Symbl accepted %s %s (%d bytes): conversation_id=%s job_id=%s",
            method,
            path,
            length,
            submission.conversation_id,
            submission.job_id,
        )
        return submission

    def submit_video_url(
        self, url: str, *, conversation_id: str | None = None, options: SymblOptions | None = None
    ) -> SymblSubmission:
        """Ask Symbl to fetch a (publicly reachable, e.g. presigned) video URL."""
        parsed = urlparse(url) if isinstance(url, str) else None
        if parsed is None or parsed.scheme not in ("http", "https") or not parsed.hostname:
            # Only the scheme/host are shown: presigned URLs carry credentials in the query.
            raise ValueError("url must be an absolute http(s) URL")
        options = SymblOptions.coerce(options)
        options.validate()
        if conversation_id:
            method, path = "PUT", f"/v1/process/video/url/{_quote(conversation_id, 'conversation_id')}"
        else:
            method, path, conversation_id = "POST", "/v1/process/video/url", None
        resp = self._send(
            method,
            path,
            json_body={"url": url, **options.to_json_body()},
            upload=True,
            conversation_id=conversation_id,
        )
        submission = _parse_submission(resp, self._payload(resp), method, path, conversation_id)
        self.log.info(
            "Symbl accepted %s %s for %s://%s: conversation_id=%s job_id=%s",
            method,
            path,
            parsed.scheme,
            parsed.hostname,
            submission.conversation_id,
            submission.job_id,
        )
        return submission

    def get_job(self, job_id: str) -> SymblJob:
        path = f"/v1/job/{_quote(job_id, 'job_id')}"
        resp = self._send("GET", path, job_id=job_id)
        return _parse_job(self._json(resp, "GET", path, job_id=job_id), job_id, path)

    def get_conversation(self, conversation_id: str) -> dict:
        return self.get_insight(conversation_id, "conversation")

    def get_insight(self, conversation_id: str, kind: str, **params: Any) -> dict | list:
        """GET one Conversation API resource; ``params`` like ``sentiment=True, parent_refs=True``."""
        path = _insight_path(conversation_id, kind)
        resp = self._send("GET", path, params=_insight_params(params), conversation_id=conversation_id)
        return self._json(resp, "GET", path, conversation_id=conversation_id)

    def delete_conversation(self, conversation_id: str) -> dict:
        path = f"/v1/conversations/{_quote(conversation_id, 'conversation_id')}"
        resp = self._send("DELETE", path, conversation_id=conversation_id)
        return self._json(resp, "DELETE", path, conversation_id=conversation_id)

    def get_experience_url(self, conversation_id: str, name: str = "verbose-text-summary") -> str | None:
        """Shareable summary page of a conversation (Symbl's Experience API), or ``None`` without one.

        A deployment that does not offer the Experience API answers 404/405/501; that is not an error
        for a link, so it is logged once per hook and ``None`` returned. Other failures raise.
        """
        if not isinstance(name, str) or not name.strip():
            raise ValueError(f"name must be a non-empty experience name such as 'verbose-text-summary', got {name!r}")
        path = f"/v1/conversations/{_quote(conversation_id, 'conversation_id')}/experiences"
        try:
            resp = self._send("POST", path, json_body={"name": name}, conversation_id=conversation_id)
        except SymblError as exc:
            if exc.status not in EXPERIENCE_UNAVAILABLE_STATUSES:
                raise
            if not self._experience_unavailable_logged:
                self._experience_unavailable_logged = True
                self.log.info(
                    "Symbl at %s offers no Experience API (HTTP %s on %s); no summary URL",
                    self.config.base_url,
                    exc.status,
                    path,
                )
            return None
        return _parse_experience_url(
            self._json(resp, "POST", path, conversation_id=conversation_id), path, conversation_id
        )


def _mask_secret(secret: str) -> None:
    try:
        from airflow.sdk.log import mask_secret
    except ImportError:  # pragma: no cover
        from airflow.sdk.execution_time.secrets_masker import mask_secret  # type: ignore[no-redef]
    mask_secret(secret)


# ---------------------------------------------------------------------------------------------- async hook
async def aget_connection(conn_id: str) -> Any:
    """Look a connection up without blocking the event loop (the triggerer's constraint)."""
    from airflow.sdk import BaseHook

    if hasattr(BaseHook, "aget_connection"):
        return await BaseHook.aget_connection(conn_id)
    try:  # pragma: no cover - older SDKs
        from airflow.providers.common.compat.connection import get_async_connection

        return await get_async_connection(conn_id)
    except ImportError:  # pragma: no cover
        from asgiref.sync import sync_to_async

        return await sync_to_async(BaseHook.get_connection)(conn_id)


class SymblAsyncHook(LoggingMixin):
    """Async Symbl client for triggers: one aiohttp session per ``async with``, no blocking calls.

    Methods also work outside ``async with`` (each call then opens and closes its own session).
    """

    def __init__(
        self,
        symbl_conn_id: str = SymblHook.default_conn_name,
        *,
        max_attempts: int | None = None,
        max_retry_seconds: float | None = None,
        timeout: float | None = None,
        backoff_base: float | None = None,
    ) -> None:
        super().__init__()
        self.symbl_conn_id = symbl_conn_id
        self._max_attempts = max_attempts
        self._max_retry_seconds = max_retry_seconds
        self._timeout = timeout
        self._backoff_base = backoff_base
        self._config: SymblConnectionConfig | None = None
        self._session: aiohttp.ClientSession | None = None
        self._depth = 0
        self._sleep = asyncio.sleep

    async def aget_config(self) -> SymblConnectionConfig:
        if self._config is None:
            conn = await aget_connection(self.symbl_conn_id)
            aextra = getattr(conn, "aextra_dejson", None)
            extras = await aextra() if aextra is not None else conn.extra_dejson
            config = parse_connection(conn, self.symbl_conn_id, extras)
            await _amask_secret(config.app_secret)
            self._config = config
        return self._config

    async def __aenter__(self) -> SymblAsyncHook:
        if self._depth == 0:
            self._session = await self._new_session()
        self._depth += 1
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        self._depth -= 1
        if self._depth == 0 and self._session is not None:
            session, self._session = self._session, None
            await session.close()

    async def _new_session(self) -> aiohttp.ClientSession:
        import aiohttp

        config = await self.aget_config()
        ssl: Any = True
        if config.verify is False:
            ssl = False
        elif isinstance(config.verify, str):
            import ssl as ssl_module

            ssl = ssl_module.create_default_context(cafile=config.verify)
        connector = aiohttp.TCPConnector(ssl=ssl)
        return aiohttp.ClientSession(
            headers={"User-Agent": USER_AGENT, "Accept": "application/json"}, connector=connector
        )

    @asynccontextmanager
    async def _session_scope(self) -> AsyncIterator[aiohttp.ClientSession]:
        if self._session is not None:
            yield self._session
            return
        async with self:
            assert self._session is not None
            yield self._session

    def _timeout_obj(self, config: SymblConnectionConfig):
        import aiohttp

        read = self._timeout or config.timeout or DEFAULT_READ_TIMEOUT
        return aiohttp.ClientTimeout(total=None, sock_connect=config.connect_timeout, sock_read=read)

    # ------------------------------------------------------------------ tokens
    async def get_access_token(self) -> str:
        config = await self.aget_config()
        async with self._session_scope() as session:
            return await TOKEN_CACHE.get_async(
                config.token_key, lambda: self._fetch_token(session), config.token_refresh_margin
            )

    async def _fetch_token(self, session: aiohttp.ClientSession) -> tuple[str, float]:
        config = await self.aget_config()
        status, text = await self._send(
            session,
            "POST",
            TOKEN_PATH,
            json_body={"type": "application", "appId": config.app_id, "appSecret": config.app_secret},
            auth=False,
        )
        if status in (401, 403):
            raise SymblAuthError(
                f"Symbl refused the App ID / App Secret of connection {config.conn_id!r}: {_symbl_message(text)}",
                status=status,
                method="POST",
                endpoint=TOKEN_PATH,
            )
        return _parse_token(_loads(text, "POST", TOKEN_PATH), TOKEN_PATH)

    # ------------------------------------------------------------------ engine
    async def _send(
        self,
        session: aiohttp.ClientSession,
        method: str,
        path: str,
        *,
        params: list[tuple[str, str]] | None = None,
        json_body: Any = None,
        auth: bool = True,
        conversation_id: str | None = None,
        job_id: str | None = None,
    ) -> tuple[int, str]:
        """Idempotent calls only (GET / DELETE / token): retried on 429, 5xx and transport errors."""
        import aiohttp

        config = await self.aget_config()
        policy = _resolve_policy(config, self._max_attempts, self._max_retry_seconds, self._backoff_base)
        url = config.base_url + path
        started = time.monotonic()
        attempt = 0
        refreshed = False
        ids = {"conversation_id": conversation_id, "job_id": job_id}
        while True:
            attempt += 1
            headers: dict[str, str] = {}
            token = None
            if auth:
                token = await TOKEN_CACHE.get_async(
                    config.token_key, lambda: self._fetch_token(session), config.token_refresh_margin
                )
                headers["Authorization"] = f"Bearer {token}"
            retry_after: float | None = None
            try:
                async with session.request(
                    method,
                    url,
                    params=params or None,
                    json=json_body,
                    headers=headers,
                    timeout=self._timeout_obj(config),
                ) as resp:
                    status = resp.status
                    text = await resp.text()
                    retry_after = parse_retry_after(resp.headers.get("Retry-After"))
            except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                reason = _describe(exc)
                error: SymblError = SymblConnectionError(
                    f"no response after {attempt} attempt(s): {reason}", method=method, endpoint=path, **ids
                )
            else:
                if 200 <= status < 300 or (not auth and status in (401, 403)):
                    return status, text
                message = _symbl_message(text)
                if status == 401 and auth and not refreshed:
                    refreshed = True
                    attempt -= 1
                    TOKEN_CACHE.invalidate(config.token_key, token)
                    self.log.warning("%s %s got HTTP 401; refreshing the access token once", method, path)
                    continue
                error = _api_error(status, message, method=method, endpoint=path, retry_after=retry_after, **ids)
                if status not in IDEMPOTENT_RETRY_STATUSES:
                    raise error
                reason = f"HTTP {status}: {message}"
            delay = policy.next_delay(attempt, time.monotonic() - started, retry_after)
            if delay is None:
                raise error
            self.log.warning(
                "[attempt %d/%d] %s %s failed (%s); retrying in %.2f s",
                attempt,
                policy.max_attempts,
                method,
                path,
                reason,
                delay,
            )
            await self._sleep(delay)

    async def _get_json(self, path: str, *, params=None, conversation_id=None, job_id=None) -> Any:
        async with self._session_scope() as session:
            _, text = await self._send(
                session, "GET", path, params=params, conversation_id=conversation_id, job_id=job_id
            )
        return _loads(text, "GET", path, conversation_id=conversation_id, job_id=job_id)

    # ------------------------------------------------------------------ API
    async def get_job(self, job_id: str) -> SymblJob:
        path = f"/v1/job/{_quote(job_id, 'job_id')}"
        return _parse_job(await self._get_json(path, job_id=job_id), job_id, path)

    async def get_conversation(self, conversation_id: str) -> dict:
        return await self.get_insight(conversation_id, "conversation")

    async def get_insight(self, conversation_id: str, kind: str, **params: Any) -> dict | list:
        path = _insight_path(conversation_id, kind)
        return await self._get_json(path, params=_insight_params(params), conversation_id=conversation_id)


def _loads(text: str, method: str, path: str, **ids: Any) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        raise SymblError(f"expected JSON, got {text[:200]!r}", method=method, endpoint=path, **ids) from None


async def _amask_secret(secret: str) -> None:
    try:
        from airflow.sdk.log import amask_secret
    except ImportError:  # pragma: no cover
        _mask_secret(secret)
        return
    await amask_secret(secret)
