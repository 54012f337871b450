"""``SymblHook``: the Symbl.ai API from workers (requests, one keep-alive session per hook)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any, BinaryIO
from urllib.parse import urlparse

import requests
from airflow.providers.http.hooks.http import HttpHook
from urllib3.exceptions import ConnectTimeoutError

from symbl_airflow.errors import (
    SymblBodyLengthError,
    SymblConnectionError,
    SymblError,
    SymblJobWaitTimeoutError,
    SymblUploadAbortedError,
)
from symbl_airflow.hooks.base import SymblHookMixin
from symbl_airflow.hooks.config import DEFAULT_BASE_URL, DEFAULT_CONN_ID, USER_AGENT, SymblConnectionConfig
from symbl_airflow.hooks.config import parse_connection as parse_connection
from symbl_airflow.hooks.retry import AMBIGUOUS_UPLOAD_STATUSES, RetryPolicy, may_resend_upload, parse_retry_after
from symbl_airflow.hooks.upload import DEFAULT_CHUNK_SIZE, BodyLengthMismatch, UploadAborted, UploadBody
from symbl_airflow.hooks.wire import (
    DEFAULT_CONTENT_TYPES,
    EXPERIENCE_UNAVAILABLE_STATUSES,
    TOKEN_PATH,
    Call,
    SymblJob,
    SymblSubmission,
    check_answer,
    describe,
    insight_call,
    insight_params,
    job_call,
    media_path,
    no_response,
    parse_experience_url,
    parse_job,
    parse_submission,
    parse_token,
    quote_id,
    symbl_message,
    token_body,
)
from symbl_airflow.options import SymblOptions
from symbl_airflow.tokens import TOKEN_CACHE, mask_secret


def is_connect_failure(exc: BaseException) -> bool:
    """True when requests failed before the connection opened (nothing of the request was sent)."""
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        return True
    if isinstance(exc, requests.exceptions.ConnectionError) and exc.args:
        reason = getattr(exc.args[0], "reason", None)
        return isinstance(reason, ConnectTimeoutError)  # NewConnectionError / NameResolutionError too
    return False


class SymblHook(SymblHookMixin, HttpHook):
    """Talk to the Symbl.ai API from workers; arguments as in :class:`~symbl_airflow.hooks.base.SymblHookMixin`."""

    def __init__(self, symbl_conn_id: str = DEFAULT_CONN_ID, **kwargs: Any) -> None:
        kwargs.setdefault("method", "GET")
        super().__init__(symbl_conn_id, http_conn_id=symbl_conn_id, **kwargs)
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
            mask_secret(value)
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
            mask_secret(self._config.app_secret)
        return self._config

    @property
    def retry_policy(self) -> RetryPolicy:
        return self._retry_policy(self.config)

    def get_conn(self, headers: dict[Any, Any] | None = None, extra_options: dict[str, Any] | None = None):
        """Return the hook's (reused) ``requests.Session``: keep-alive, User-Agent, no basic auth."""
        if self._session is None:
            config = self.config
            session = requests.Session()
            session.headers["User-Agent"] = USER_AGENT
            session.headers["Accept"] = "application/json"
            session.verify = config.verify
            adapter = self.keep_alive_adapter or self.adapter
            if adapter is not None:
                session.mount("http://", adapter)
                session.mount("https://", adapter)
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

    # ------------------------------------------------------------------ tokens
    def get_access_token(self) -> str:
        config = self.config
        return TOKEN_CACHE.get_sync(config.token_key, self._fetch_token, config.token_refresh_margin)

    def _fetch_token(self) -> tuple[str, float]:
        config = self.config
        call = Call("POST", TOKEN_PATH, auth=False)
        resp = self._send(call, json_body=token_body(config.app_id, config.app_secret))
        return parse_token(call, call.json(resp.text, resp.status_code))

    # ------------------------------------------------------------------ the request engine
    def _send(
        self,
        call: Call,
        *,
        params: list[tuple[str, str]] | None = None,
        json_body: Any = None,
        body: Callable[[], UploadBody] | None = None,
        content_type: str | None = None,
    ) -> requests.Response:
        """One logical call under the retry policy: a 2xx response, or a ``SymblError``."""
        try:
            return self._attempt(call, 1, params, json_body, body, content_type)
        except Exception as exc:
            return self.retry_policy.retry(
                call,
                exc,
                lambda number: self._attempt(call, number, params, json_body, body, content_type),
                log=self,
                sleep=self._sleep,
            )

    def _attempt(self, call: Call, number: int, params, json_body, body, content_type) -> requests.Response:
        """One attempt; a 401 gets one token refresh and one resend within it."""
        for refreshed in (False, True):
            headers = {"Content-Type": content_type} if content_type else {}
            token = self.get_access_token() if call.auth else None
            if token:
                headers["Authorization"] = f"Bearer {token}"
            resp = self._request(call, number, params, json_body, body, headers)
            if call.upload and resp.status_code in AMBIGUOUS_UPLOAD_STATUSES and resp.body_complete:
                # a gateway or server error after Symbl had every byte: the backend may still process it
                raise call.ambiguous(
                    f"HTTP {resp.status_code} after the whole body was sent ({symbl_message(resp.text)})",
                    status=resp.status_code,
                )
            retry_after = parse_retry_after(resp.headers.get("Retry-After"))
            if check_answer(
                call, self.config.conn_id, resp.status_code, resp.text, retry_after, may_refresh=not refreshed
            ):
                return resp
            TOKEN_CACHE.invalidate(self.config.token_key, token)
            self.log.info("%s %s got HTTP 401; refreshing the access token once", call.method, call.path)
        raise AssertionError("unreachable")  # pragma: no cover

    def _request(self, call: Call, number: int, params, json_body, body, headers) -> requests.Response:
        data = body() if body is not None else None
        try:
            resp = self.get_conn().request(
                call.method,
                self.config.base_url + call.path,
                params=params,
                json=json_body,
                data=data,
                headers=headers,
                timeout=(self.config.connect_timeout, self.config.read_timeout(self._timeout, call.upload)),
            )
            # whether Symbl had every byte when it answered (a server may answer early and stop reading)
            resp.body_complete = data is None or data.complete
            return resp
        except BodyLengthMismatch as exc:
            raise call.error(SymblBodyLengthError, f"upload aborted: {exc}; nothing was accepted") from None
        except UploadAborted as exc:
            raise call.error(
                SymblUploadAbortedError,
                f"upload aborted after {data.sent} of {data.length} body bytes: {exc}; a body cut short is never "
                "accepted",
            ) from None
        except Exception as exc:
            raise self._transport_error(call, number, exc, data) from None
        finally:
            if data is not None:
                data.close()

    def _transport_error(self, call: Call, number: int, exc: Exception, data: UploadBody | None) -> Exception:
        cut_short = call.upload and data is not None and not data.complete
        if not isinstance(exc, requests.RequestException) and (not cut_short or isinstance(exc, ValueError)):
            return exc  # a bug, or the source itself refusing (e.g. it changed): not a transport fault
        reason = describe(exc)
        if call.upload and not may_resend_upload(
            connection_opened=not is_connect_failure(exc),
            body_started=data is not None and data.handed_out,
            body_complete=not cut_short,
        ):
            return call.ambiguous(f"request sent but no response ({reason})")
        if cut_short:
            reason = f"connection lost after {data.sent} of {data.length} body bytes ({reason})"
            return call.error(SymblConnectionError, f"no response after {number} attempt(s): {reason}")
        config = self.config
        return no_response(
            call, number, exc, base_url=config.base_url, conn_id=config.conn_id, connect_failed=is_connect_failure(exc)
        )

    # ------------------------------------------------------------------ API
    def submit_media(
        self,
        endpoint: str,
        open_body: Callable[[], BinaryIO | Iterable[bytes]],
        length: int,
        *,
        conversation_id: str | None = None,
        options: SymblOptions | None = None,
        content_type: str | None = None,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        on_progress: Callable[[int], None] | None = None,
        guard: Callable[[], None] | None = None,
    ) -> SymblSubmission:
        """Stream media to Symbl's ``endpoint`` API (``"video"`` or ``"audio"``): POST a new conversation,
        or PUT (append) to ``conversation_id``.

        ``open_body`` is called once per attempt, so every retry re-reads the source from its start.
        ``guard`` is called before every chunk: whatever it raises aborts the body there
        (``SymblUploadAbortedError``; a body cut short is never accepted). After the whole body, an
        answer of 500/502/503/504 or none at all is ambiguous (``SymblAmbiguousSubmissionError``): the
        upload is never resent.
        """
        path = media_path(endpoint)
        if isinstance(length, bool) or not isinstance(length, int) or length < 0:
            raise ValueError(f"length must be a non-negative int, got {length!r}")
        if not isinstance(chunk_size, int) or chunk_size < 1:
            raise ValueError(f"chunk_size must be a positive int, got {chunk_size!r}")
        options = SymblOptions.coerce(options)
        options.validate()
        call = _submit_call(path, conversation_id)
        resp = self._send(
            call,
            params=options.to_query_params(),
            body=lambda: UploadBody(open_body, length, chunk_size, on_progress, guard),
            content_type=DEFAULT_CONTENT_TYPES[endpoint] if content_type is None else content_type,
        )
        submission = parse_submission(call, resp.status_code, resp.text)
        self.log.info(
            "Symbl accepted %s %s (%d bytes): conversation_id=%s job_id=%s",
            call.method,
            call.path,
            length,
            submission.conversation_id,
            submission.job_id,
        )
        return submission

    def submit_media_url(
        self, endpoint: str, url: str, *, conversation_id: str | None = None, options: SymblOptions | None = None
    ) -> SymblSubmission:
        """Ask Symbl's ``endpoint`` API (``"video"`` or ``"audio"``) to fetch a reachable (e.g. presigned) URL."""
        path = media_path(endpoint)
        parsed = urlparse(url) if isinstance(url, str) else None
        if parsed is None or parsed.scheme not in ("http", "https") or not parsed.hostname:
            # Only the scheme/host are shown: presigned URLs carry credentials in the query.
            raise ValueError("url must be an absolute http(s) URL")
        options = SymblOptions.coerce(options)
        options.validate()
        call = _submit_call(f"{path}/url", conversation_id)
        resp = self._send(call, json_body={"url": url, **options.to_json_body()})
        submission = parse_submission(call, resp.status_code, resp.text)
        self.log.info(
            "Symbl accepted %s %s for %s://%s: conversation_id=%s job_id=%s",
            call.method,
            call.path,
            parsed.scheme,
            parsed.hostname,
            submission.conversation_id,
            submission.job_id,
        )
        return submission

    def submit_video(
        self,
        open_body: Callable[[], BinaryIO | Iterable[bytes]],
        length: int,
        *,
        conversation_id: str | None = None,
        options: SymblOptions | None = None,
        content_type: str = "video/mp4",
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        on_progress: Callable[[int], None] | None = None,
    ) -> SymblSubmission:
        """Stream an MP4 to the video API (``submit_media("video", ...)``)."""
        return self.submit_media(
            "video",
            open_body,
            length,
            conversation_id=conversation_id,
            options=options,
            content_type=content_type,
            chunk_size=chunk_size,
            on_progress=on_progress,
        )

    def submit_video_url(
        self, url: str, *, conversation_id: str | None = None, options: SymblOptions | None = None
    ) -> SymblSubmission:
        """Ask Symbl to fetch a (publicly reachable, e.g. presigned) video URL."""
        return self.submit_media_url("video", url, conversation_id=conversation_id, options=options)

    def get_job(self, job_id: str) -> SymblJob:
        call = job_call(job_id)
        return parse_job(call, self._get_json(call))

    def wait_for_jobs(
        self,
        job_ids: list[str],
        *,
        timeout: float,
        poll_interval: float = 10.0,
        stop_on_failure: bool = True,
        describe_jobs: str | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> dict[str, str]:
        """Poll until every job is terminal (or, with ``stop_on_failure``, one failed); ``{job_id: status}``.

        The one synchronous wait of the provider (the deferred one is ``SymblJobTrigger``): the first
        look is at once, then every ``poll_interval`` (starting at 1 s, doubling, for short jobs).
        Raises ``SymblJobWaitTimeoutError`` after ``timeout`` seconds with jobs still running.
        """
        pending = list(dict.fromkeys(job_ids))
        statuses: dict[str, str] = {}
        deadline = clock() + timeout
        delay = min(1.0, poll_interval)
        while pending:
            for job_id in list(pending):
                job = self.get_job(job_id)
                statuses[job_id] = job.status
                if job.is_terminal:
                    pending.remove(job_id)
                    if job.is_failed and stop_on_failure:
                        return statuses
            left = deadline - clock()
            if not pending:
                break
            if left <= 0:
                raise SymblJobWaitTimeoutError(
                    f"{describe_jobs or 'Symbl job(s) ' + ', '.join(pending)} did not finish within {timeout:g}s",
                    pending=pending,
                )
            self._sleep(min(delay, left))
            delay = min(delay * 2, poll_interval)
        return statuses

    def get_conversation(self, conversation_id: str) -> dict:
        return self.get_insight(conversation_id, "conversation")

    def get_insight(self, conversation_id: str, kind: str, **params: Any) -> dict | list:
        """GET one Conversation API resource; ``params`` like ``sentiment=True, parent_refs=True``."""
        return self._get_json(insight_call(conversation_id, kind), insight_params(params))

    def delete_conversation(self, conversation_id: str) -> dict:
        call = Call("DELETE", f"/v1/conversations/{quote_id(conversation_id, 'conversation_id')}", conversation_id)
        return self._get_json(call)

    def get_experience_url(self, conversation_id: str, name: str = "verbose-text-summary") -> str | None:
        """Shareable summary page of a conversation (Symbl's Experience API), or ``None`` without one.

        A deployment that does not offer the Experience API answers 404/405/501; that is not an error
        for a link, so it is logged once per hook and ``None`` returned. Other failures raise.
        """
        if not isinstance(name, str) or not name.strip():
            raise ValueError(f"name must be a non-empty experience name such as 'verbose-text-summary', got {name!r}")
        path = f"/v1/conversations/{quote_id(conversation_id, 'conversation_id')}/experiences"
        call = Call("POST", path, conversation_id)
        try:
            payload = self._get_json(call, json_body={"name": name})
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
        return parse_experience_url(call, payload)

    def _get_json(self, call: Call, params: list[tuple[str, str]] | None = None, json_body: Any = None) -> Any:
        resp = self._send(call, params=params, json_body=json_body)
        return call.json(resp.text, resp.status_code)


def _submit_call(path: str, conversation_id: str | None) -> Call:
    if conversation_id:
        return Call("PUT", f"{path}/{quote_id(conversation_id, 'conversation_id')}", conversation_id, upload=True)
    return Call("POST", path, upload=True)
