"""The Async API's submissions (``POST``/``PUT /v1/process/{video,audio}[/url][/{conversationId}]``).

Auth, options, Content-Type, the conversation and the job limit are checked *before* the body is read; a
rejected body is drained and discarded so HTTP clients see a clean response, and an accepted one is
streamed (hashed, counted, spooled) and never held whole in memory. Every accepted submission gets a job
and an entry in the submission log.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from symbl_sandbox import formats, media
from symbl_sandbox.http_common import (
    FAULTS_KEY,
    MAX_JSON_BODY,
    MODEL_KEY,
    SUBMISSIONS_KEY,
    authenticate,
    drain,
    error,
    mimetype,
    sandbox_error,
)
from symbl_sandbox.model import SandboxError
from symbl_sandbox.options import OptionError, http_url, options_from_body, options_from_query, validate_options


async def process_file(request: web.Request, kind: str) -> web.Response:
    model = request.app[MODEL_KEY]
    conversation_id = request.match_info.get("conversationId")
    content_type = mimetype(request)
    try:
        app_id = authenticate(request)
        options = validate_options(options_from_query(request.query))
        formats.check_content_type(kind, content_type)
        if conversation_id is not None:
            model.get_conversation(app_id, conversation_id)
        reservation = model.reserve_slot(app_id)
    except SandboxError as exc:
        await drain(request)
        return sandbox_error(exc)

    intake = media.Intake(model.spool_dir, sniff_mp4=kind == "video")
    try:
        result = await intake.consume(request.content.iter_chunked(media.CHUNK_SIZE))
        if result.size == 0:
            media.remove_quietly(result.path)
            raise media.MediaError("The request body is empty.")
    except media.MediaError as exc:
        reservation.release()
        await drain(request)
        return error(400, str(exc))
    except BaseException:
        reservation.release()
        raise
    return accept(
        request, app_id, reservation, options, kind, conversation_id, result=result, content_type=content_type
    )


async def process_url(request: web.Request, kind: str) -> web.Response:
    model = request.app[MODEL_KEY]
    conversation_id = request.match_info.get("conversationId")
    try:
        app_id = authenticate(request)
        body = await _json_object(request)
        options = options_from_body(body, request.query)
        if body.get("url") in (None, ""):
            raise OptionError('"url" is required')
        url = http_url("url", body["url"])
        if conversation_id is not None:
            model.get_conversation(app_id, conversation_id)
        reservation = model.reserve_slot(app_id)
    except SandboxError as exc:
        await drain(request)
        return sandbox_error(exc)
    return accept(request, app_id, reservation, options, kind, conversation_id, url=url)


async def _json_object(request: web.Request) -> dict[str, Any]:
    if request.content_length is not None and request.content_length > MAX_JSON_BODY:
        raise OptionError("The request body is too large for a JSON request.")
    try:
        raw_body = await request.read()  # bounded by client_max_size
    except web.HTTPRequestEntityTooLarge:
        raise OptionError("The request body is too large for a JSON request.") from None
    try:
        body = json.loads(raw_body or b"null")
    except ValueError:
        raise OptionError("The request body must be valid JSON.") from None
    if not isinstance(body, dict):
        raise OptionError("The request body must be a JSON object.")
    return body


def accept(request, app_id, reservation, options, kind, conversation_id, *, result=None, url=None, content_type=None):
    """Queue the job (taking the reserved slot), log the submission, answer 201 ``{conversationId, jobId}``."""
    model = request.app[MODEL_KEY]
    fail = request.app[FAULTS_KEY].take(request.method, request.path, actions=("fail_job",)) is not None
    try:
        job = model.submit(
            app_id,
            reservation,
            options=options,
            conversation_id=conversation_id,
            kind=kind,
            media_path=result.path if result else None,
            size=result.size if result else None,
            sha256=result.sha256 if result else None,
            url=url,
            fail=fail,
            content_type=content_type or None,
        )
    except SandboxError as exc:  # e.g. the conversation was deleted while the body was arriving
        reservation.release()
        if result is not None:
            media.remove_quietly(result.path)
        return sandbox_error(exc)
    entry = {
        "conversationId": job.conversation_id,
        "jobId": job.id,
        "method": request.method,
        "endpoint": kind if url is None else f"{kind}/url",
        "contentType": job.content_type,
        "sha256": result.sha256 if result else None,
        "size": result.size if result else None,
        "mediaSeconds": None,
        "options": options,
    }
    if url is not None:
        entry["url"] = url
    request.app[SUBMISSIONS_KEY].record(**entry)
    return web.json_response({"conversationId": job.conversation_id, "jobId": job.id}, status=201)


def file_handler(kind: str):
    async def handler(request: web.Request) -> web.Response:
        return await process_file(request, kind)

    return handler


def url_handler(kind: str):
    async def handler(request: web.Request) -> web.Response:
        return await process_url(request, kind)

    return handler
