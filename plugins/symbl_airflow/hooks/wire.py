"""What goes over the wire: paths, query parameters, and Symbl's answers turned into values or errors.

Both hooks call these with plain data (status, text, parsed JSON), so an answer means the same thing
whichever HTTP client received it.
"""

from __future__ import annotations

import json
import re
import socket
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlparse

from symbl_airflow.errors import (
    SymblAmbiguousSubmissionError,
    SymblAuthError,
    SymblConnectionError,
    SymblError,
    SymblRateLimitError,
    clean_message,
    cut_text,
    error_class_for_status,
)
from symbl_airflow.hooks.config import DEFAULT_BASE_URL

TOKEN_PATH = "/oauth2/token:generate"

JOB_TERMINAL_STATUSES = ("completed", "failed")
#: Symbl's async API families a file or URL can go to: ``/v1/process/{endpoint}`` (+ ``/url``, ``/{id}``).
MEDIA_ENDPOINTS = ("video", "audio")
#: ``Content-Type`` of an upload when the caller names none.
DEFAULT_CONTENT_TYPES = {"video": "video/mp4", "audio": "audio/wav"}
JOB_STATUSES = ("scheduled", "in_progress", "completed", "failed")

#: Answers of a Symbl deployment without the Experience API (no summary page to link to).
EXPERIENCE_UNAVAILABLE_STATUSES = frozenset({404, 405, 501})

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


@dataclass(frozen=True, slots=True)
class Call:
    """One logical API call: what every error of it names."""

    method: str
    path: str
    conversation_id: str | None = None
    job_id: str | None = None
    #: Sends a video (or a video URL): resent only when Symbl certainly did not take it.
    upload: bool = False
    #: Sends the bearer token (everything but the token request itself).
    auth: bool = True

    def error(self, cls: type[SymblError], message: str, **kwargs: Any) -> SymblError:
        return cls(
            message,
            method=self.method,
            endpoint=self.path,
            conversation_id=self.conversation_id,
            job_id=self.job_id,
            **kwargs,
        )

    def ambiguous(self, reason: str, status: int | None = None) -> SymblAmbiguousSubmissionError:
        check = (
            f"list the jobs/messages of conversation {self.conversation_id}"
            if self.conversation_id
            else "look for a new conversation (GET /v1/conversations)"
        )
        return self.error(  # type: ignore[return-value]
            SymblAmbiguousSubmissionError,
            f"{reason}; the submission may or may not have been accepted by Symbl. It was not retried "
            f"automatically because a retry could process the video twice: {check} before submitting again",
            status=status,
        )

    def json(self, text: str, status: int | None = None) -> Any:
        try:
            return json.loads(text)
        except ValueError:
            raise self.error(SymblError, f"expected JSON, got {text[:200]!r}", status=status) from None


# ---------------------------------------------------------------------------------------------- answers
def symbl_message(text: str) -> str:
    """Symbl's ``message`` from an error body, else the (trimmed) text."""
    try:
        payload = json.loads(text)
    except ValueError:
        payload = None
    if isinstance(payload, dict):
        for key in ("message", "error_description", "error", "detail"):
            value = payload.get(key)
            if isinstance(value, str) and value:
                return cut_text(value)
    return cut_text(text)


def error_for_status(call: Call, status: int, text: str, retry_after: float | None) -> SymblError:
    """The exception for a non-2xx answer (whether it is retried is the retry policy's business)."""
    cls = error_class_for_status(status)
    kwargs: dict[str, Any] = {"status": status}
    if cls is SymblRateLimitError:
        kwargs["retry_after"] = retry_after
    return call.error(cls, symbl_message(text), **kwargs)


def check_answer(
    call: Call, conn_id: str, status: int, text: str, retry_after: float | None, *, may_refresh: bool
) -> bool:
    """True for a 2xx; False when a token refresh and one resend may help (a 401); raises otherwise."""
    if 200 <= status < 300:
        return True
    if not call.auth and status in (401, 403):
        raise credentials_error(call, conn_id, status, text)
    if status == 401 and call.auth and may_refresh:
        return False  # an expired or revoked token: Symbl refused the request, so a resend is safe
    raise error_for_status(call, status, text, retry_after)


def credentials_error(call: Call, conn_id: str, status: int, text: str) -> SymblAuthError:
    """The token endpoint refused the App ID / App Secret: no retry can fix that."""
    return call.error(  # type: ignore[return-value]
        SymblAuthError,
        f"Symbl refused the App ID / App Secret of connection {conn_id!r}: {clean_message(symbl_message(text))}. "
        f"Check login (App ID) and password (App Secret) of connection {conn_id!r}",
        status=status,
    )


def no_response(
    call: Call, number: int, exc: BaseException, *, base_url: str, conn_id: str, connect_failed: bool
) -> SymblConnectionError:
    """No answer at all after ``number`` attempts; a connection that never opened names the host to check."""
    reason = describe(exc)
    if connect_failed:
        reason = (
            f"cannot connect to {base_url} ({reason}). Check the host of connection {conn_id!r} (the Symbl "
            f"base URL, e.g. {DEFAULT_BASE_URL}) and that it is reachable from here"
        )
    return call.error(SymblConnectionError, f"no response after {number} attempt(s): {reason}")  # type: ignore[return-value]


#: ``HTTPConnectionPool(host='x', port=1): `` and the like: requests/urllib3 prefix every level with it.
_POOL_PREFIX = re.compile(r"^\w*(?:Pool|Connection)\(host=[^)]*\):\s*")


def describe(exc: BaseException) -> str:
    """The reason of a transport error, whole and short: its innermost cause.

    requests nests the cause three reprs deep ("Max retries exceeded with url: ... (Caused by
    NewConnectionError(...))"); a prefix of that text ends mid-sentence and names no cause.
    """
    chain = _causes(exc)
    for cause in reversed(chain):
        if isinstance(cause, OSError) and cause.strerror:
            if isinstance(cause, ConnectionRefusedError):
                return "connection refused"
            if isinstance(cause, ConnectionResetError):
                return "connection reset by the server"
            if isinstance(cause, socket.gaierror):
                return f"host name not resolved: {cause.strerror}"
            return cause.strerror
    best = ""
    for cause in reversed(chain):  # innermost first; an outer text that contains it says more ("Read timed out.")
        texts = [a for a in cause.args if isinstance(a, str) and a.strip()] or [str(cause)]
        text = _POOL_PREFIX.sub("", texts[-1].split("\n")[0]).strip()
        if text and (not best or (best in text and len(text) <= 200)):
            best = text
    return cut_text(best, 300) if best else type(exc).__name__


def _causes(exc: BaseException) -> list[BaseException]:
    """``exc`` and what it wraps, outermost first (urllib3's ``reason``, wrapped args, ``__cause__``)."""
    chain: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in chain and len(chain) < 10:
        chain.append(current)
        reason = getattr(current, "reason", None)
        wrapped = current.args[0] if current.args and isinstance(current.args[0], BaseException) else None
        current = next(
            (c for c in (reason, wrapped, current.__cause__, current.__context__) if isinstance(c, BaseException)),
            None,
        )
    return chain


def parse_submission(call: Call, status: int, text: str) -> SymblSubmission:
    try:
        payload: Any = json.loads(text)
    except ValueError:
        payload = text
    if isinstance(payload, dict) and payload.get("conversationId") and payload.get("jobId"):
        return SymblSubmission(conversation_id=str(payload["conversationId"]), job_id=str(payload["jobId"]))
    # A 2xx without ids: Symbl took it, but we cannot tell which job it is.
    raise call.ambiguous(f"HTTP {status} without conversationId/jobId: {str(payload)[:200]}", status)


def parse_job(call: Call, payload: Any) -> SymblJob:
    if isinstance(payload, dict) and isinstance(payload.get("status"), str):
        job_id = str(payload.get("id") or payload.get("jobId") or call.job_id)
        return SymblJob(id=job_id, status=payload["status"].lower())
    raise call.error(SymblError, f"unexpected job response: {str(payload)[:200]}")


def parse_token(call: Call, payload: Any) -> tuple[str, float]:
    if isinstance(payload, dict) and isinstance(payload.get("accessToken"), str) and payload["accessToken"]:
        try:
            expires_in = float(payload.get("expiresIn", 86400))
        except (TypeError, ValueError):
            expires_in = 86400.0
        return payload["accessToken"], expires_in
    # Never echo the payload: it might hold a token under another name.
    raise call.error(SymblError, "token response without accessToken")


def parse_experience_url(call: Call, payload: Any) -> str:
    url = payload.get("url") if isinstance(payload, dict) else None
    if isinstance(url, str) and urlparse(url).scheme in ("http", "https"):
        return url
    raise call.error(SymblError, f"experience response without an http(s) url: {str(payload)[:200]}")


# ---------------------------------------------------------------------------------------------- requests
def quote_id(value: str, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{what} must be a non-empty string, got {value!r}")
    return quote(value, safe="")


def media_path(endpoint: str) -> str:
    """``/v1/process/video`` or ``/v1/process/audio``; a ValueError naming the choices otherwise."""
    if endpoint not in MEDIA_ENDPOINTS:
        raise ValueError(f"endpoint must be one of {MEDIA_ENDPOINTS} (Symbl's async APIs), got {endpoint!r}")
    return f"/v1/process/{endpoint}"


def job_call(job_id: str) -> Call:
    return Call("GET", f"/v1/job/{quote_id(job_id, 'job_id')}", job_id=job_id)


def insight_call(conversation_id: str, kind: str) -> Call:
    suffix = insight_suffix(kind)
    path = f"/v1/conversations/{quote_id(conversation_id, 'conversation_id')}"
    return Call("GET", f"{path}/{suffix}" if suffix else path, conversation_id=conversation_id)


def insight_suffix(kind: str) -> str:
    if kind in INSIGHT_ENDPOINTS:
        return INSIGHT_ENDPOINTS[kind]
    normalized = str(kind).replace("-", "_")
    if normalized in INSIGHT_ENDPOINTS:
        return INSIGHT_ENDPOINTS[normalized]
    raise ValueError(f"Unknown Symbl insight kind {kind!r}; allowed: {', '.join(INSIGHT_ENDPOINTS)}")


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p[:1].upper() + p[1:] for p in rest)


def insight_params(params: dict[str, Any]) -> list[tuple[str, str]]:
    """``sentiment=True, parent_refs=True`` -> ``[("sentiment", "true"), ("parentRefs", "true")]``."""
    encoded = []
    for key, value in params.items():
        if value is None:
            continue
        text = ("true" if value else "false") if isinstance(value, bool) else str(value)
        encoded.append((_camel(key), text))
    return encoded


def token_body(app_id: str, app_secret: str) -> dict[str, str]:
    return {"type": "application", "appId": app_id, "appSecret": app_secret}
