"""Exceptions raised by the Symbl hooks, the sensor and the trigger.

Errors that no retry can fix (wrong credentials, a failed Symbl job, unusable job ids, a
``Retry-After`` beyond the retry budget) are also ``AirflowFailException`` s: Airflow then fails the
task at once instead of spending its ``retries`` on them.

Each API error carries what an operator needs to decide and what a human needs to debug it: the
HTTP status, Symbl's own ``message``, the endpoint and method, and the conversation / job id.
None of them ever carries a token or the App Secret.
"""

from __future__ import annotations

from airflow.sdk.exceptions import AirflowException, AirflowFailException

#: Longest Symbl message kept in an exception (bodies of proxies' error pages can be huge).
MAX_MESSAGE_CHARS = 500
#: Longest whole exception message (ours around Symbl's).
MAX_ERROR_CHARS = 2000


class SymblError(AirflowException):
    """A Symbl API call failed; ``str(e)`` names the call, the status, Symbl's message and the ids."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        endpoint: str = "",
        method: str = "",
        conversation_id: str | None = None,
        job_id: str | None = None,
    ) -> None:
        self.message = clean_message(message)
        self.status = status
        self.endpoint = endpoint
        self.method = method
        self.conversation_id = conversation_id
        self.job_id = job_id
        super().__init__(self._render())

    def _render(self) -> str:
        if self.method or self.endpoint:
            text = f"Symbl API {self.method} {self.endpoint}"
            if self.status is not None:
                text += f" failed (HTTP {self.status})"
            elif not self.message:
                text += " failed"
            if self.message:
                text += f": {self.message}"
        else:
            text = self.message
        ids = [
            f"{name}={value}"
            for name, value in (("conversation_id", self.conversation_id), ("job_id", self.job_id))
            if value
        ]
        if ids:
            text += " [" + ", ".join(ids) + "]"
        return text

    def __str__(self) -> str:
        return self._render()

    def __reduce__(self):
        # Keyword-only arguments do not survive the default exception pickling.
        return (_rebuild, (type(self), self.message, self.__dict__.copy()))


def cut_text(text: object, limit: int = MAX_MESSAGE_CHARS) -> str:
    """``text`` on one line, at most ``limit`` characters, cut between words and saying so."""
    text = " ".join(str(text or "").split())
    if len(text) <= limit:
        return text
    return text[:limit].rsplit(" ", 1)[0] + f" [cut at {limit} characters]"


def clean_message(message: object) -> str:
    """One message for sentences around it: whole words, no final period (callers add ". <next>").

    Symbl's own messages end with a period ("Invalid appId or appSecret."); kept as is, every
    sentence added after them read ".. Check".
    """
    text = cut_text(message, MAX_ERROR_CHARS)
    while text.endswith(".") and not text.endswith(".."):
        text = text[:-1].rstrip()
    return text


def _rebuild(cls, message, state):
    obj = cls.__new__(cls)
    Exception.__init__(obj, message)
    obj.__dict__.update(state)
    return obj


class SymblBadRequestError(SymblError):
    """HTTP 400: Symbl rejected the request (an option or the media); never retried."""


class SymblAuthError(SymblError, AirflowFailException):
    """HTTP 401/403: bad App ID / App Secret, or a token Symbl refused even after one refresh."""


class SymblNotFoundError(SymblError):
    """HTTP 404: unknown conversation or job (or, for some insights, not ready yet)."""


class SymblRateLimitError(SymblError):
    """HTTP 429 after the retry budget ran out (usually the account's concurrent-job limit)."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs) -> None:
        self.retry_after = retry_after
        super().__init__(message, **kwargs)


class SymblRetryBudgetError(SymblRateLimitError, AirflowFailException):
    """HTTP 429 whose ``Retry-After`` is longer than what is left of the call's retry budget."""


class SymblJobFailedError(SymblError, AirflowFailException):
    """A Symbl job ended with status ``failed``: Symbl will not process that media differently on retry."""


class SymblJobIdsError(AirflowFailException, ValueError):
    """``job_ids`` given to the sensor or trigger cannot be used; says what was given and what is accepted."""


class SymblServerError(SymblError):
    """HTTP 5xx (after retries for idempotent calls and definite refusals)."""


class SymblConnectionError(SymblError):
    """No response at all (connection refused, reset or timed out) once retries were exhausted."""


class SymblAmbiguousSubmissionError(SymblError):
    """An upload was (partly) sent and no response came back: Symbl may or may not have accepted it.

    It is never retried automatically because a blind retry could append the same video twice.
    """


class SymblUploadAbortedError(SymblError):
    """The caller stopped an upload before its last byte (e.g. its writer lost the lease): nothing was accepted."""


class SymblJobWaitTimeoutError(AirflowException):
    """Symbl jobs did not finish within the wait's ``timeout`` (a later try may wait again)."""

    def __init__(self, message: str, *, pending: list[str] | None = None) -> None:
        super().__init__(message)
        self.pending = list(pending or [])


class SymblPartRefusedError(AirflowException):
    """Symbl (or S3) definitely refused a part: it was not appended, so a retry may send it again.

    ``fatal``: a retry cannot help (wrong credentials, a Retry-After beyond the budget): fail at once.
    """

    def __init__(self, message: str, *, fatal: bool = False) -> None:
        super().__init__(message)
        self.fatal = fatal


class SymblPartUnconfirmedError(AirflowException):
    """A part's whole body may have reached Symbl and no answer came: it may or may not be appended."""


class SymblBodyLengthError(SymblError, ValueError):
    """The upload source produced more or fewer bytes than the declared length (nothing accepted)."""


class SymblConfigError(AirflowException, ValueError):
    """The Airflow connection cannot be used (missing App ID / App Secret, bad extras)."""


class SymblOptionsError(ValueError):
    """An invalid processing option; raised before any request. Names the option and what is allowed."""

    def __init__(self, message: str, *, option: str | None = None, allowed: str | None = None) -> None:
        self.option = option
        self.allowed = allowed
        super().__init__(message)


def error_class_for_status(status: int | None) -> type[SymblError]:
    """Map an HTTP status to the exception type operators can catch."""
    if status is None:
        return SymblConnectionError
    if status == 400:
        return SymblBadRequestError
    if status in (401, 403):
        return SymblAuthError
    if status == 404:
        return SymblNotFoundError
    if status == 429:
        return SymblRateLimitError
    if status >= 500:
        return SymblServerError
    return SymblError
