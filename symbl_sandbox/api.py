"""The sandbox's HTTP face: the route table and short handlers rendering Symbl's documented JSON.

Moto's split: the state and rules live in ``model`` (conversations, jobs, media processing) and
``insights``; the Async API's submissions in ``uploads``, option decoding in ``options``, the Content-Type
rule in ``formats``, shared plumbing and the fault middleware in ``http_common``, outbound calls (media
URL downloads, webhooks) in ``outbound``. The ``/sandbox/*`` paths are the sandbox's own: the submission
log, stats, faults, reset.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
from aiohttp import web

from symbl_sandbox import conversation_list, experience, outbound
from symbl_sandbox.faults import FaultRegistry, FaultSpecError
from symbl_sandbox.http_common import (
    FAULTS_KEY,
    MAX_JSON_BODY,
    MODEL_KEY,
    SESSION_KEY,
    STATS_KEY,
    SUBMISSIONS_KEY,
    TASKS_KEY,
    authenticate,
    error,
    flag,
    inject_faults,
    stats_and_errors,
)
from symbl_sandbox.insights import iso
from symbl_sandbox.model import SandboxConfig, SandboxError, SandboxModel
from symbl_sandbox.options import OptionError, options_from_query, validate_options
from symbl_sandbox.stats import Stats
from symbl_sandbox.submission_log import SubmissionLog
from symbl_sandbox.uploads import file_handler, url_handler


# ---------------------------------------------------------------------------------------------------------
# auth and jobs
# ---------------------------------------------------------------------------------------------------------
async def generate_token(request: web.Request) -> web.Response:
    model = request.app[MODEL_KEY]
    try:
        body = json.loads(await request.read() or b"null")
    except ValueError:
        return error(400, "The request body must be valid JSON.")
    if not isinstance(body, dict):
        return error(400, "The request body must be a JSON object.")
    if body.get("type") != "application":
        model.token_requests += 1
        return error(400, '"type" must be "application"')
    app_id, app_secret = body.get("appId"), body.get("appSecret")
    # authentication.md: invalid credentials -> 401; a missing or empty appId/appSecret is one more invalid
    # combination, so it gets the same 401 (the body text is the sandbox's own, see symbl_sandbox/README.md)
    if not isinstance(app_id, str) or not isinstance(app_secret, str):
        app_id, app_secret = str(app_id or ""), ""
    token, expires_in = model.generate_token(app_id, app_secret)
    return web.json_response({"accessToken": token, "expiresIn": expires_in})


async def get_job(request: web.Request) -> web.Response:
    app_id = authenticate(request)
    job = request.app[MODEL_KEY].get_job(app_id, request.match_info["jobId"])
    return web.json_response({"id": job.id, "status": job.status})


# ---------------------------------------------------------------------------------------------------------
# conversation API
# ---------------------------------------------------------------------------------------------------------
def _conversation(request: web.Request):
    app_id = authenticate(request)
    return request.app[MODEL_KEY].get_conversation(app_id, request.match_info["conversationId"])


def _conversation_json(conv) -> dict[str, Any]:
    t = conv.transcript
    return {
        "id": conv.id,
        "type": "meeting",
        "name": conv.name,
        "startTime": iso(conv.start_time),
        "endTime": iso(conv.start_time + timedelta(seconds=t.duration)),
        "members": [m.as_from() for m in t.members.values()],
        "metadata": dict(conv.options.get("metadata") or {}),
    }


async def list_conversations(request: web.Request) -> web.Response:
    """Source: symbl-docs all-conversations.md (query parameters table): ``limit`` 0-65536 (default 20),
    ``offset``, ``order`` asc (default) | desc on startTime, ``sort`` (default ``conversation.startTime``),
    ``startTime``/``endTime`` (default window: the 7 days up to now), ``filter`` (RSQL, no OR, at most two
    parameters; with a filter and no explicit times, the default window does not apply)."""
    app_id = authenticate(request)
    model = request.app[MODEL_KEY]
    try:
        query = conversation_list.parse_query(request.query, now=datetime.now(UTC))
    except conversation_list.QueryError as exc:
        raise OptionError(str(exc)) from None
    convs = [c for c in model.conversations.values() if c.app_id == app_id]
    page = conversation_list.select(convs, query)
    return web.json_response({"conversations": [_conversation_json(c) for c in page]})


async def get_conversation(request: web.Request) -> web.Response:
    return web.json_response(_conversation_json(_conversation(request)))


async def delete_conversation(request: web.Request) -> web.Response:
    app_id = authenticate(request)
    request.app[MODEL_KEY].delete_conversation(app_id, request.match_info["conversationId"])
    return web.json_response({"message": "successfully deleted the conversation"})


async def get_messages(request: web.Request) -> web.Response:
    t = _conversation(request).transcript
    msgs = t.render_messages(verbose=flag(request, "verbose"), sentiment=flag(request, "sentiment"))
    return web.json_response({"messages": msgs})


async def get_topics(request: web.Request) -> web.Response:
    t = _conversation(request).transcript
    parent = flag(request, "parentRefs")
    topics = t.topics(sentiment=flag(request, "sentiment") and not parent, parent_refs=parent)
    return web.json_response({"topics": topics})


def _simple(key: str, method: str):
    async def handler(request: web.Request) -> web.Response:
        t = _conversation(request).transcript
        return web.json_response({key: getattr(t, method)()})

    return handler


async def get_entities(request: web.Request) -> web.Response:
    shape = request.app[MODEL_KEY].config.entity_shape
    return web.json_response({"entities": _conversation(request).transcript.entities(shape)})


async def get_trackers(request: web.Request) -> web.Response:
    return web.json_response(_conversation(request).transcript.trackers())


async def get_analytics(request: web.Request) -> web.Response:
    return web.json_response(_conversation(request).transcript.analytics())


async def get_summary(request: web.Request) -> web.Response:
    conv = _conversation(request)
    if request.app[MODEL_KEY].conversation_busy(conv):
        return error(404, "The summary is not available yet: a job of this conversation is still in progress.")
    return web.json_response({"summary": conv.transcript.summary()})


async def get_members(request: web.Request) -> web.Response:
    t = _conversation(request).transcript
    return web.json_response({"members": [m.as_from() for m in t.members.values()]})


async def post_experience(request: web.Request) -> web.Response:
    """Experience API: ``{"name", "url"}`` with an absolute link to a page this sandbox serves without auth."""
    app_id = authenticate(request)
    model = request.app[MODEL_KEY]
    conv = model.get_conversation(app_id, request.match_info["conversationId"])
    try:
        body = json.loads(await request.read() or b"null")
    except ValueError:
        raise OptionError("The request body must be valid JSON.") from None
    name, options, expires_in = experience.validate_request(body)
    exp = model.create_experience(app_id, conv.id, name, options, expires_in)
    # built from the request's own scheme and Host, so the link works on whatever host:port was called,
    # unless --public-url says where browsers reach the sandbox (a container name is no use to them)
    base = model.config.public_url or f"{request.scheme}://{request.host}"
    url = f"{base.rstrip('/')}{experience.PAGE_PREFIX}{exp.token}"
    return web.json_response({"name": name, "url": url})


async def experience_page(request: web.Request) -> web.Response:
    """The shareable summary page: no token needed, like Symbl's hosted links."""
    try:
        exp, conv = request.app[MODEL_KEY].open_experience(request.match_info["token"])
    except SandboxError:
        return web.Response(text=experience.render_missing(), status=404, content_type="text/html")
    return web.Response(text=experience.render_page(exp, conv), content_type="text/html")


# ---------------------------------------------------------------------------------------------------------
# sandbox-only paths
# ---------------------------------------------------------------------------------------------------------
async def health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def submissions(request: web.Request) -> web.Response:
    """The submission log (``GET /sandbox/submissions``; ``GET /sandbox/ledger`` is its original name)."""
    return web.json_response({"submissions": request.app[SUBMISSIONS_KEY].submissions})


async def stats(request: web.Request) -> web.Response:
    model = request.app[MODEL_KEY]
    return web.json_response(
        {
            "token_requests": model.token_requests,
            "tokens_issued": model.tokens_issued,
            "requests": dict(request.app[STATS_KEY].requests),
            "active_jobs": model.active_jobs(),
            "rejected_429": model.rejected_429,
        }
    )


async def reset(request: web.Request) -> web.Response:
    await request.app[MODEL_KEY].reset()
    request.app[SUBMISSIONS_KEY].clear()
    request.app[FAULTS_KEY].clear()
    request.app[STATS_KEY].clear()
    return web.json_response({"status": "reset"})


async def add_fault(request: web.Request) -> web.Response:
    try:
        fault = request.app[FAULTS_KEY].add(await request.json())
    except (ValueError, FaultSpecError, TypeError) as exc:
        return error(400, f"Invalid fault: {exc}")
    return web.json_response({"id": fault.id}, status=201)


async def list_faults(request: web.Request) -> web.Response:
    return web.json_response({"faults": request.app[FAULTS_KEY].list()})


async def clear_faults(request: web.Request) -> web.Response:
    request.app[FAULTS_KEY].clear()
    return web.json_response({"status": "cleared"})


async def expire_tokens(request: web.Request) -> web.Response:
    return web.json_response({"expired": request.app[MODEL_KEY].expire_tokens()})


# ---------------------------------------------------------------------------------------------------------
# app
# ---------------------------------------------------------------------------------------------------------
def create_app(config: SandboxConfig | None = None) -> web.Application:
    app = web.Application(middlewares=[stats_and_errors, inject_faults], client_max_size=MAX_JSON_BODY)
    model = SandboxModel(config)
    app[MODEL_KEY] = model
    app[FAULTS_KEY] = FaultRegistry()
    app[SUBMISSIONS_KEY] = SubmissionLog()
    app[STATS_KEY] = Stats()
    app[TASKS_KEY] = set()
    model.downloader = outbound.make_downloader(app)
    model.listeners.append(app[SUBMISSIONS_KEY].follow)
    model.listeners.append(outbound.make_webhook_listener(app))

    async def startup(app: web.Application) -> None:
        app[SESSION_KEY] = aiohttp.ClientSession(auto_decompress=False)

    async def cleanup(app: web.Application) -> None:
        await model.close()
        for task in list(app[TASKS_KEY]):
            task.cancel()
        await app[SESSION_KEY].close()

    app.on_startup.append(startup)
    app.on_cleanup.append(cleanup)

    r = app.router
    r.add_post("/oauth2/token:generate", generate_token)
    for kind in ("video", "audio"):
        r.add_post(f"/v1/process/{kind}", file_handler(kind))
        r.add_put(f"/v1/process/{kind}/{{conversationId}}", file_handler(kind))
        r.add_post(f"/v1/process/{kind}/url", url_handler(kind))
        r.add_put(f"/v1/process/{kind}/url/{{conversationId}}", url_handler(kind))
    r.add_get("/v1/job/{jobId}", get_job)
    c = "/v1/conversations/{conversationId}"
    r.add_get("/v1/conversations", list_conversations)
    r.add_get(c, get_conversation)
    r.add_delete(c, delete_conversation)
    r.add_get(c + "/messages", get_messages)
    r.add_get(c + "/topics", get_topics)
    r.add_get(c + "/questions", _simple("questions", "questions"))
    r.add_get(c + "/action-items", _simple("actionItems", "action_items"))
    r.add_get(c + "/follow-ups", _simple("followUps", "follow_ups"))
    r.add_get(c + "/entities", get_entities)
    r.add_get(c + "/insights", _simple("insights", "insights"))
    r.add_get(c + "/trackers-detected", get_trackers)
    r.add_get(c + "/trackers", get_trackers)
    r.add_get(c + "/analytics", get_analytics)
    r.add_get(c + "/summary", get_summary)
    r.add_get(c + "/members", get_members)
    r.add_post(c + "/experiences", post_experience)
    r.add_get(experience.PAGE_PREFIX + "{token}", experience_page)
    r.add_get("/sandbox/health", health)
    r.add_get("/sandbox/submissions", submissions)
    r.add_get("/sandbox/ledger", submissions)
    r.add_get("/sandbox/stats", stats)
    r.add_post("/sandbox/reset", reset)
    r.add_post("/sandbox/faults", add_fault)
    r.add_get("/sandbox/faults", list_faults)
    r.add_delete("/sandbox/faults", clear_faults)
    r.add_post("/sandbox/tokens/expire", expire_tokens)
    return app


__all__ = ["OptionError", "create_app", "options_from_query", "validate_options"]
