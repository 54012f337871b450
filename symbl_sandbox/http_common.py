"""What every handler shares: the app's keys, error answers, auth, body draining and the two middlewares
(per-route request counts with uniform JSON errors; scripted faults in front of the API)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import aiohttp
from aiohttp import web

from symbl_sandbox.faults import FaultRegistry
from symbl_sandbox.model import InvalidCredentials, SandboxError, SandboxModel
from symbl_sandbox.stats import Stats
from symbl_sandbox.submission_log import SubmissionLog

log = logging.getLogger(__name__)

TOKEN_FAILED = "Token validation failed for provided token."
MAX_JSON_BODY = 1 << 20

MODEL_KEY = web.AppKey("model", SandboxModel)
FAULTS_KEY = web.AppKey("faults", FaultRegistry)
SUBMISSIONS_KEY = web.AppKey("submissions", SubmissionLog)
STATS_KEY = web.AppKey("stats", Stats)
SESSION_KEY = web.AppKey("session", aiohttp.ClientSession)
TASKS_KEY = web.AppKey("tasks", set)


def error(status: int, message: str, **extra: Any) -> web.Response:
    return web.json_response({"message": message, **extra}, status=status)


def sandbox_error(exc: SandboxError) -> web.Response:
    if exc.status == 429:
        return web.json_response({"statusCode": 429, "message": exc.message}, status=429)
    return error(exc.status, exc.message)


async def drain(request: web.Request) -> None:
    """Read and discard whatever is left of the body, so the client gets a clean response."""
    try:
        while await request.content.readany():
            pass
    except (aiohttp.ClientPayloadError, ConnectionError):
        pass


def drop_connection(request: web.Request) -> web.Response:
    """Close the TCP connection with no HTTP response; the returned response is never written."""
    transport = request.transport
    if transport is not None:
        transport.abort()
    return web.Response(status=499)


def authenticate(request: web.Request) -> str:
    """The caller's app id from ``Authorization: Bearer`` or the deprecated ``x-api-key``."""
    model = request.app[MODEL_KEY]
    candidates = []
    scheme, _, value = request.headers.get("Authorization", "").strip().partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        candidates.append(value.strip())
    if request.headers.get("x-api-key", "").strip():
        candidates.append(request.headers["x-api-key"].strip())
    for token in candidates:
        app_id = model.authenticate(token)
        if app_id is not None:
            return app_id
    raise InvalidCredentials(TOKEN_FAILED)


def flag(request: web.Request, name: str) -> bool:
    return request.query.get(name, "").strip().lower() == "true"


def mimetype(request: web.Request) -> str | None:
    """The Content-Type without parameters, lower-cased; None without the header ("" when sent empty)."""
    header = request.headers.get("Content-Type")
    if header is None:
        return None
    return header.split(";", 1)[0].strip().lower()


@web.middleware
async def stats_and_errors(request: web.Request, handler):
    if not request.path.startswith("/sandbox/"):
        resource = request.match_info.route.resource
        route = resource.canonical if resource is not None else "<unmatched>"
        request.app[STATS_KEY].count(request.method, route)
    try:
        return await handler(request)
    except web.HTTPException as exc:
        if exc.status >= 400 and exc.content_type != "application/json":
            await drain(request)
            return error(exc.status, exc.reason or "Error", **({"path": request.path} if exc.status == 404 else {}))
        raise
    except SandboxError as exc:
        await drain(request)
        return sandbox_error(exc)


@web.middleware
async def inject_faults(request: web.Request, handler):
    if request.path.startswith("/sandbox/"):
        return await handler(request)
    fault = request.app[FAULTS_KEY].take(request.method, request.path, actions=("status", "latency", "drop"))
    if fault is None:
        return await handler(request)
    log.info("fault %s (%s, %s) applies to %s %s", fault.id, fault.action, fault.phase, request.method, request.path)
    if fault.action == "latency":
        if fault.phase == "after_accept":
            resp = await handler(request)
            await asyncio.sleep(fault.delay)
            return resp
        await asyncio.sleep(fault.delay)
        return await handler(request)
    if fault.action == "status":
        if fault.phase == "after_accept":
            await _handle_and_forget(request, handler)
        await drain(request)
        body = fault.body if fault.body is not None else {"message": "Injected fault"}
        return web.json_response(body, status=fault.status, headers=fault.headers)
    # drop
    if fault.phase == "mid_body":
        remaining = fault.after_bytes
        while remaining > 0:
            chunk = await request.content.read(min(remaining, 1 << 16))
            if not chunk:
                break
            remaining -= len(chunk)
        return drop_connection(request)
    if fault.phase == "after_body":
        await drain(request)
        return drop_connection(request)
    await handler(request)  # after_accept: the submission is recorded, then the response is lost
    return drop_connection(request)


async def _handle_and_forget(request: web.Request, handler) -> None:
    """Handle the request for its effects (an upload accepted, its job queued); its answer is replaced."""
    try:
        resp = await handler(request)
    except (web.HTTPException, SandboxError) as exc:
        log.info("fault after acceptance: the request itself was refused (%s)", exc)
        return
    if resp.status >= 300:
        log.info("fault after acceptance: the request itself was answered %s", resp.status)
