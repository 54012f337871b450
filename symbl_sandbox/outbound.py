"""What the sandbox itself sends: downloads of media URLs (URL endpoints) and job-status webhooks."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from symbl_sandbox import media
from symbl_sandbox.http_common import SESSION_KEY, TASKS_KEY
from symbl_sandbox.model import Job, JobFailure

log = logging.getLogger(__name__)


def make_downloader(app: web.Application):
    """Stream the job's URL into the spool (no redirects: the reference says they are not supported)."""

    async def download(job: Job, spool_dir: Path) -> media.IntakeResult:
        session = app[SESSION_KEY]
        intake = media.Intake(spool_dir, sniff_mp4=job.kind == "video")
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=60)
        try:
            async with session.get(job.url, allow_redirects=False, timeout=timeout) as resp:
                if 300 <= resp.status < 400:
                    raise JobFailure(f"redirects are not supported (HTTP {resp.status} from the media URL)")
                if resp.status >= 400:
                    raise JobFailure(f"the media URL answered HTTP {resp.status}")
                job.content_type = resp.content_type if "Content-Type" in resp.headers else None
                result = await intake.consume(resp.content.iter_chunked(media.CHUNK_SIZE))
        except media.MediaError as exc:
            raise JobFailure(str(exc)) from None
        except aiohttp.ClientError as exc:
            intake.discard()
            raise JobFailure(f"could not download the media URL: {exc.__class__.__name__}") from None
        if result.size == 0:
            raise JobFailure("the media URL returned an empty body")
        return result

    return download


def make_webhook_listener(app: web.Application):
    """A model status listener POSTing ``{id, jobId, status}`` to the job's ``webhookUrl``, in order per job."""
    chains: dict[str, asyncio.Task] = {}

    async def post(job_id: str, url: str, payload: dict[str, Any], previous: asyncio.Task | None) -> None:
        if previous is not None:
            await asyncio.wait([previous])
        try:
            timeout = aiohttp.ClientTimeout(total=10)
            async with app[SESSION_KEY].post(url, json=payload, timeout=timeout) as resp:
                if resp.status >= 400:
                    log.warning("webhook for job %s answered HTTP %s", job_id, resp.status)
        except Exception as exc:
            log.warning("webhook for job %s failed: %s", job_id, exc.__class__.__name__)

    def on_status(job: Job) -> None:
        if not job.webhook_url:
            return
        payload = {"id": job.id, "jobId": job.id, "status": job.status}
        task = asyncio.get_running_loop().create_task(post(job.id, job.webhook_url, payload, chains.get(job.id)))
        chains[job.id] = task
        tasks = app[TASKS_KEY]
        tasks.add(task)

        def done(t: asyncio.Task) -> None:
            tasks.discard(t)
            if chains.get(job.id) is t:
                del chains[job.id]

        task.add_done_callback(done)

    return on_status
