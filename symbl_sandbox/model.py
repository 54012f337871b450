"""The sandbox's state, apart from HTTP (moto's split): accounts, tokens, conversations and jobs.

Jobs of one conversation run strictly one at a time in arrival order (each job's task waits for the
previous job's task of its conversation); different conversations run in parallel. A job's simulated work
takes ``max(min_job_seconds, speed * media_seconds)``. What a job makes of its media (``_process``):

* media that does not decode (no ``moov`` box, garbage, audio whose first packets do not decode) fails;
* media longer than ``max_media_seconds`` (Symbl's 4 hours per file) fails, after ``min_job_seconds``;
* caption cues become the transcript; without captions, an audio track gives marked filler lines
  (``media.filler_cues``) and no audio track gives no message at all.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import math
import secrets
import shutil
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from symbl_sandbox import insights, media

log = logging.getLogger(__name__)

SCHEDULED, IN_PROGRESS, COMPLETED, FAILED = "scheduled", "in_progress", "completed", "failed"
ACTIVE = (SCHEDULED, IN_PROGRESS)
DEFAULT_CREDENTIALS = {"sandbox-app-id": "sandbox-app-secret"}


@dataclass
class SandboxConfig:
    credentials: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_CREDENTIALS))
    token_ttl: float = 86400.0
    max_concurrent_jobs: int = 50
    speed: float = 0.1
    min_job_seconds: float = 1.0
    data_dir: Path | None = None
    #: Shape of ``GET .../entities``: "current" (docs.symbl.ai get-detected-entities, Go SDK ``Entity``) or
    #: "legacy" (symbl-docs 2022 entities.md), for testing readers of either.
    entity_shape: str = "current"
    #: Base of Experience API links (e.g. the host-mapped address in docker-compose); None: the request's host.
    public_url: str | None = None
    #: Longest media a job takes (Symbl's FAQ: 4 hours per file); lower it to test splitting with short media.
    max_media_seconds: float = media.MAX_MEDIA_SECONDS


class SandboxError(Exception):
    status = 400

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class InvalidCredentials(SandboxError):
    status = 401


class NotFound(SandboxError):
    status = 404


class TooManyJobs(SandboxError):
    status = 429

    def __init__(self, limit: int):
        super().__init__(
            f"This API has a limit of maximum of `{limit}` number of concurrent jobs per account. If you are "
            "looking to scale, and need more concurrent jobs than this limit, please contact us at "
            "support@symbl.ai"
        )
        self.limit = limit


class JobFailure(Exception):
    """Processing failed; the job ends ``failed``."""


@dataclass
class Token:
    value: str
    app_id: str
    expires_at: float

    def remaining(self, now: float) -> float:
        return self.expires_at - now


@dataclass
class Job:
    id: str
    app_id: str
    conversation_id: str
    kind: str  # "video" | "audio"
    options: dict[str, Any]
    media_path: Path | None = None
    size: int | None = None
    sha256: str | None = None
    url: str | None = None
    fail: bool = False
    status: str = SCHEDULED
    history: list[tuple[str, float]] = field(default_factory=list)
    media_seconds: float | None = None
    content_type: str | None = None  # the upload's Content-Type header, or the media URL's
    error: str | None = None
    task: asyncio.Task | None = None

    @property
    def webhook_url(self) -> str | None:
        return self.options.get("webhookUrl")


@dataclass
class Conversation:
    id: str
    app_id: str
    name: str
    start_time: datetime
    transcript: insights.Transcript
    options: dict[str, Any] = field(default_factory=dict)
    job_ids: list[str] = field(default_factory=list)
    tail: asyncio.Task | None = None
    deleted: bool = False

    @property
    def media_seconds(self) -> float:
        return self.transcript.duration


@dataclass
class Experience:
    """A shareable summary-page link (Experience API): anyone holding the URL may read the page, as in Symbl."""

    token: str
    app_id: str
    conversation_id: str
    name: str
    options: dict[str, Any]
    expires_at: float | None  # None: never (``summaryURLExpiresIn: 0``)


class Reservation:
    """A job slot held while a request body is being received, so the limit also covers uploads in flight."""

    def __init__(self, model: SandboxModel, app_id: str):
        self.model, self.app_id, self.active = model, app_id, True

    def release(self) -> None:
        if self.active:
            self.active = False
            reserved = self.model._reserved
            reserved[self.app_id] = max(0, reserved.get(self.app_id, 0) - 1)


def merge_options(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """Options of an append add to the conversation's: lists are unioned, flags OR-ed, scalars replaced."""
    merged = dict(old)
    for key, value in new.items():
        if isinstance(value, list) and isinstance(merged.get(key), list):
            merged[key] = merged[key] + [v for v in value if v not in merged[key]]
        elif isinstance(value, bool) and merged.get(key) is True:
            continue
        else:
            merged[key] = value
    return merged


Downloader = Callable[[Job, Path], Awaitable[media.IntakeResult]]
StatusListener = Callable[[Job], None]


class SandboxModel:
    def __init__(
        self,
        config: SandboxConfig | None = None,
        *,
        downloader: Downloader | None = None,
        clock: Callable[[], float] = time.time,
    ):
        self.config = config or SandboxConfig()
        self._own_data_dir = self.config.data_dir is None
        self.data_dir = Path(self.config.data_dir or tempfile.mkdtemp(prefix="symbl-sandbox-"))
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.spool_dir = self.data_dir / "spool"
        self.spool_dir.mkdir(exist_ok=True)
        self.downloader = downloader
        self.clock = clock
        self.listeners: list[StatusListener] = []
        self._signing_key = secrets.token_bytes(32)
        self._reset_state()

    def _reset_state(self) -> None:
        self.tokens: dict[str, Token] = {}
        self._current_token: dict[str, Token] = {}
        self.conversations: dict[str, Conversation] = {}
        self.jobs: dict[str, Job] = {}
        self.experiences: dict[str, Experience] = {}
        self._reserved: dict[str, int] = {app_id: 0 for app_id in self.config.credentials}
        self.token_requests = 0
        self.tokens_issued = 0
        self.rejected_429 = 0

    # -- auth -------------------------------------------------------------------------------------------
    def generate_token(self, app_id: str, app_secret: str) -> tuple[str, int]:
        """Return ``(accessToken, expiresIn)``; the cached token while it is valid, with its remaining life."""
        self.token_requests += 1
        expected = self.config.credentials.get(app_id)
        if not app_secret or expected is None or not hmac.compare_digest(str(expected), str(app_secret)):
            raise InvalidCredentials("Invalid appId or appSecret.")
        now = self.clock()
        token = self._current_token.get(app_id)
        if token is None or token.remaining(now) <= 0:
            token = Token(self._mint(app_id, now), app_id, now + self.config.token_ttl)
            self.tokens[token.value] = token
            self._current_token[app_id] = token
            self.tokens_issued += 1
        return token.value, max(1, math.floor(token.remaining(now)))

    def _mint(self, app_id: str, now: float) -> str:
        """A JWT-shaped token (HS256 over a per-process key), so clients that peek at it see the usual form."""

        def b64(raw: bytes) -> str:
            return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

        header = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
        claims = {"sub": app_id, "iat": int(now), "exp": int(now + self.config.token_ttl), "jti": uuid.uuid4().hex}
        payload = b64(json.dumps(claims).encode())
        sig = hmac.new(self._signing_key, f"{header}.{payload}".encode(), hashlib.sha256).digest()
        return f"{header}.{payload}.{b64(sig)}"

    def authenticate(self, token: str | None) -> str | None:
        """The app id the token belongs to, or None if it is unknown or expired."""
        if not token:
            return None
        found = self.tokens.get(token)
        if found is None or found.remaining(self.clock()) <= 0:
            return None
        return found.app_id

    def expire_tokens(self) -> int:
        now = self.clock()
        for token in self.tokens.values():
            token.expires_at = min(token.expires_at, now)
        self._current_token.clear()
        return len(self.tokens)

    # -- jobs ---------------------------------------------------------------------------------------------
    def active_jobs(self, app_id: str | None = None) -> int:
        return sum(1 for j in self.jobs.values() if j.status in ACTIVE and (app_id is None or j.app_id == app_id))

    def reserve_slot(self, app_id: str) -> Reservation:
        """Claim a job slot before the body is read; raises :class:`TooManyJobs` when the account is full."""
        limit = self.config.max_concurrent_jobs
        if self.active_jobs(app_id) + self._reserved.get(app_id, 0) >= limit:
            self.rejected_429 += 1
            raise TooManyJobs(limit)
        self._reserved[app_id] = self._reserved.get(app_id, 0) + 1
        return Reservation(self, app_id)

    def get_conversation(self, app_id: str, conversation_id: str) -> Conversation:
        conv = self.conversations.get(conversation_id)
        if conv is None or conv.app_id != app_id or conv.deleted:
            raise NotFound(
                "The conversation and/or it's metadata you asked could not be found, please check the input provided"
            )
        return conv

    def get_job(self, app_id: str, job_id: str) -> Job:
        job = self.jobs.get(job_id)
        if job is None or job.app_id != app_id:
            raise NotFound(f"Job with jobId {job_id} not found")
        return job

    def _new_conversation_id(self) -> str:
        while True:
            candidate = str(secrets.randbelow(9 * 10**15) + 10**15)
            if candidate not in self.conversations:
                return candidate

    def submit(
        self,
        app_id: str,
        reservation: Reservation,
        *,
        options: dict[str, Any],
        conversation_id: str | None = None,
        kind: str = "video",
        media_path: Path | None = None,
        size: int | None = None,
        sha256: str | None = None,
        url: str | None = None,
        fail: bool = False,
        content_type: str | None = None,
    ) -> Job:
        """Create (or append to) a conversation and queue a job; the reservation becomes the job's slot."""
        if conversation_id is None:
            conv_id = self._new_conversation_id()
            start = datetime.now(UTC)
            conv = Conversation(
                id=conv_id,
                app_id=app_id,
                name=options.get("name") or conv_id,
                start_time=start,
                transcript=insights.Transcript(conv_id, start),
            )
            self.conversations[conv_id] = conv
        else:
            conv = self.get_conversation(app_id, conversation_id)
            if options.get("name"):
                conv.name = options["name"]
        conv.options = merge_options(conv.options, options)
        conv.transcript.options = conv.options
        job = Job(
            id=str(uuid.uuid4()),
            app_id=app_id,
            conversation_id=conv.id,
            kind=kind,
            options=options,
            media_path=media_path,
            size=size,
            sha256=sha256,
            url=url,
            fail=fail,
            content_type=content_type,
        )
        reservation.release()
        self.jobs[job.id] = job
        conv.job_ids.append(job.id)
        self._set_status(job, SCHEDULED)
        previous = conv.tail
        job.task = asyncio.get_running_loop().create_task(self._run(job, conv, previous), name=f"job-{job.id}")
        conv.tail = job.task
        return job

    def conversation_busy(self, conv: Conversation) -> bool:
        return any(self.jobs[j].status in ACTIVE for j in conv.job_ids if j in self.jobs)

    def _set_status(self, job: Job, status: str) -> None:
        job.status = status
        job.history.append((status, self.clock()))
        log.info("job %s (conversation %s) -> %s", job.id, job.conversation_id, status)
        for listener in list(self.listeners):
            try:
                listener(job)
            except Exception:
                log.exception("status listener failed for job %s", job.id)

    async def _run(self, job: Job, conv: Conversation, previous: asyncio.Task | None) -> None:
        if previous is not None and not previous.done():
            await asyncio.wait([previous])
        try:
            self._set_status(job, IN_PROGRESS)
            started = time.monotonic()
            if job.url is not None:
                if self.downloader is None:
                    raise JobFailure("URL downloads are not configured")
                result = await self.downloader(job, self.spool_dir)
                job.media_path, job.size, job.sha256 = result.path, result.size, result.sha256
            info = await asyncio.to_thread(media.probe, job.media_path, job.size or 0)
            job.media_seconds = info.duration if info.parsed else None  # an estimate is no fact to report
            too_long = info.parsed and info.duration > self.config.max_media_seconds
            work = self.config.min_job_seconds if too_long else self.config.speed * info.duration
            await asyncio.sleep(max(0.0, max(self.config.min_job_seconds, work) - (time.monotonic() - started)))
            self._process(job, conv, info)
            self._set_status(job, COMPLETED)
        except asyncio.CancelledError:
            job.error = "cancelled"
            raise
        except Exception as exc:
            job.error = str(exc)
            log.warning("job %s failed: %s", job.id, exc)
            self._set_status(job, FAILED)
        finally:
            media.remove_quietly(job.media_path)

    def _process(self, job: Job, conv: Conversation, info: media.MediaInfo) -> None:
        """The media rules (module docstring); raises :class:`JobFailure` with the reason the sandbox logs."""
        if job.fail:
            raise JobFailure("failure injected by a sandbox fault")
        if not info.parsed:
            # Real Symbl cannot transcribe media it cannot decode (e.g. an MP4 cut short: 'ftyp' but no
            # 'moov' box), so the job fails rather than getting an invented transcript.
            hint = " (truncated MP4 without a 'moov' box?)" if job.kind == "video" else ""
            raise JobFailure(f"the media could not be decoded: {info.problem}{hint}")
        limit = self.config.max_media_seconds
        if info.duration > limit:
            raise JobFailure(
                f"the media lasts {info.duration:.1f} s, over the {limit:g} s Symbl takes per file "
                "(4 hours, Symbl FAQ); split it into shorter parts"
            )
        if conv.deleted:
            raise JobFailure("the conversation was deleted")
        cues = info.cues
        if not cues and info.has_audio:
            cues = media.filler_cues(info.duration, self._synthetic_speakers(conv))
        conv.transcript.add(cues, conv.transcript.duration, info.duration)

    def _synthetic_speakers(self, conv: Conversation) -> list[str]:
        count = int(conv.options.get("diarizationSpeakerCount") or 2)
        names = [f"Speaker {i + 1}" for i in range(max(1, count))]
        for meta in conv.options.get("channelMetadata") or []:
            channel, speaker = meta.get("channel"), meta.get("speaker") or {}
            if isinstance(channel, int) and 1 <= channel <= len(names) and speaker.get("name"):
                names[channel - 1] = speaker["name"]
        return names

    # -- experiences (summary UI links) ---------------------------------------------------------------------
    def create_experience(
        self, app_id: str, conversation_id: str, name: str, options: dict[str, Any], expires_in: float
    ) -> Experience:
        """A new unguessable page token for the conversation; ``expires_in`` 0 means it never expires."""
        conv = self.get_conversation(app_id, conversation_id)
        expires_at = None if expires_in == 0 else self.clock() + expires_in
        exp = Experience(secrets.token_urlsafe(24), app_id, conv.id, name, dict(options), expires_at)
        self.experiences[exp.token] = exp
        return exp

    def open_experience(self, token: str) -> tuple[Experience, Conversation]:
        exp = self.experiences.get(token)
        if exp is None or (exp.expires_at is not None and exp.expires_at <= self.clock()):
            raise NotFound("This summary link is unknown or has expired.")
        return exp, self.get_conversation(exp.app_id, exp.conversation_id)

    def delete_conversation(self, app_id: str, conversation_id: str) -> None:
        conv = self.conversations.get(conversation_id)
        if conv is None or conv.app_id != app_id or conv.deleted:
            raise NotFound("The conversationId is either invalid or does not exist.")
        conv.deleted = True
        del self.conversations[conversation_id]

    # -- lifecycle ----------------------------------------------------------------------------------------
    async def reset(self) -> None:
        await self._cancel_jobs()
        self._reset_state()

    async def _cancel_jobs(self) -> None:
        tasks = [j.task for j in self.jobs.values() if j.task is not None and not j.task.done()]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    async def close(self) -> None:
        await self._cancel_jobs()
        if self._own_data_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)
