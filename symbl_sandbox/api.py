"""The sandbox's HTTP face: parse and validate requests, call the model, render Symbl's documented JSON.

Upload handlers check auth, options, the conversation and the job limit *before* reading the body; a
rejected body is drained and discarded so HTTP clients see a clean response, and an accepted one is
streamed (hashed, counted, spooled) and never held whole in memory.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp import web

from symbl_sandbox import conversation_list, experience, media
from symbl_sandbox.faults import FaultRegistry, FaultSpecError, Ledger, Stats
from symbl_sandbox.model import (
    InvalidCredentials,
    Job,
    JobFailure,
    SandboxConfig,
    SandboxError,
    SandboxModel,
)

log = logging.getLogger(__name__)

TOKEN_FAILED = "Token validation failed for provided token."
VIDEO_TYPES = ("video/mp4",)
AUDIO_TYPES = ("audio/wav", "audio/mpeg", "audio/mp3", "audio/wave")
LANGUAGE_CODES = (
    "en-US en-GB en-AU en-IE en-IN en-ZA ru-RU fr-CA fr-FR de-DE it-IT nl-NL ja-JP es-US es-ES ar-SA hi-IN "
    "pt-BR pt-PT fa-IR"
).split()
MAX_JSON_BODY = 1 << 20

MODEL_KEY = web.AppKey("model", SandboxModel)
FAULTS_KEY = web.AppKey("faults", FaultRegistry)
LEDGER_KEY = web.AppKey("ledger", Ledger)
STATS_KEY = web.AppKey("stats", Stats)
SESSION_KEY = web.AppKey("session", aiohttp.ClientSession)
TASKS_KEY = web.AppKey("tasks", set)


# ---------------------------------------------------------------------------------------------------------
# options
# ---------------------------------------------------------------------------------------------------------
class OptionError(SandboxError):
    status = 400


STRINGS = ("name", "conversationType")
BOOLEANS = (
    "detectPhrases",
    "detectEntities",
    "enableSeparateRecognitionPerChannel",
    "enableAllTrackers",
    "enableSummary",
    "enableSpeakerDiarization",
)
LISTS = ("customVocabulary", "entities", "trackers", "channelMetadata")
OBJECTS = ("features", "metadata")
OPTION_NAMES = (
    *STRINGS,
    *BOOLEANS,
    *LISTS,
    *OBJECTS,
    "confidenceThreshold",
    "webhookUrl",
    "languageCode",
    "mode",
    "diarizationSpeakerCount",
)
_BRACKETS = re.compile(r"\[([^\]]*)\]")
#: Optional strings where "" means "not given": the reference's own POST /v1/process/video/url body example
#: (symbl-docs post-video-url.md) sends ``"webhookUrl": ""`` (and ``"channelMetadata": []``, accepted as a list).
EMPTY_MEANS_UNSET = ("webhookUrl", "name")


def _maybe_json(value: Any) -> Any:
    if isinstance(value, str) and value.strip()[:1] in ("[", "{"):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _listify_tree(node: Any) -> Any:
    """Turn ``{"0": a, "1": b}`` dicts produced by ``key[0]=a&key[1]=b`` into lists, recursively."""
    if isinstance(node, dict):
        node = {k: _listify_tree(v) for k, v in node.items()}
        if node and all(k.isdigit() for k in node):
            return [node[k] for k in sorted(node, key=int)]
        return node
    return _maybe_json(node)


def _bracket_value(name: str, items: list[tuple[str, str]]) -> Any:
    """Decode qs-style keys: ``entities[0][customType]=x``, ``customVocabulary[]=a``, ``trackers[1]={...}``."""
    root: dict[str, Any] = {}
    appended = 0
    for key, value in items:
        segments = _BRACKETS.findall(key[len(name) :])
        node = root
        for i, seg in enumerate(segments):
            if seg == "":
                seg = str(appended if i == 0 else len(node))
                if i == 0:
                    appended += 1
            if i == len(segments) - 1:
                node[seg] = value
            else:
                node = node.setdefault(seg, {})
                if not isinstance(node, dict):
                    raise OptionError(f'"{name}" has conflicting bracketed keys')
    return _listify_tree(root)


def _list_from_string(name: str, value: str) -> Any:
    text = value.strip()
    if text.startswith("[") or text.startswith("{"):
        try:
            parsed = json.loads(text)
        except ValueError:
            if text.startswith("[") and text.endswith("]"):
                # Go SDK style: [a,b] without quotes
                inner = text[1:-1].strip()
                return [p.strip().strip('"').strip("'") for p in inner.split(",")] if inner else []
            raise OptionError(f'"{name}" must be a valid JSON array') from None
        return parsed if isinstance(parsed, list) else [parsed]
    return [value]


def options_from_query(query: Mapping[str, str]) -> dict[str, Any]:
    """Collect raw option values from a query string, accepting every encoding seen in the wild (§2.3)."""
    raw: dict[str, Any] = {}
    keys = list(dict.fromkeys(query.keys()))

    def getall(key: str) -> list[str]:
        if hasattr(query, "getall"):
            return list(query.getall(key, []))
        return [query[key]] if key in query else []

    for name in OPTION_NAMES:
        plain = getall(name)
        bracketed = [(k, v) for k in keys if k.startswith(name + "[") for v in getall(k)]
        if not plain and not bracketed:
            continue
        if name in LISTS:
            values: list[Any] = []
            if len(plain) > 1 and all(len(p) == 1 for p in plain) and "".join(plain).startswith("["):
                # the official Python SDK sends one customVocabulary parameter per character of its JSON
                values.extend(_list_from_string(name, "".join(plain)))
            elif len(plain) == 1:
                values.extend(_list_from_string(name, plain[0]))
            else:
                for p in plain:
                    parsed = _maybe_json(p)
                    values.extend(parsed if isinstance(parsed, list) else [parsed])
            if bracketed:
                tree = _bracket_value(name, bracketed)
                values.extend(tree if isinstance(tree, list) else [tree])
            raw[name] = values
        elif name in OBJECTS:
            if bracketed:
                raw[name] = _bracket_value(name, bracketed)
            else:
                try:
                    raw[name] = json.loads(plain[-1])
                except ValueError:
                    raise OptionError(f'"{name}" must be a JSON object') from None
        else:
            raw[name] = plain[-1]
    return raw


def _bool(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise OptionError(f'"{name}" must be a boolean ("true" or "false")')


def _str(name: str, value: Any, *, empty_ok: bool = False) -> str:
    if not isinstance(value, str) or (not empty_ok and not value.strip()):
        raise OptionError(f'"{name}" must be a non-empty string')
    return value


def _int(name: str, value: Any) -> int:
    if isinstance(value, bool):
        raise OptionError(f'"{name}" must be an integer')
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"\s*[+-]?\d+\s*", value):
        return int(value)
    raise OptionError(f'"{name}" must be an integer')


def _number(name: str, value: Any) -> float:
    if isinstance(value, bool):
        raise OptionError(f'"{name}" must be a number')
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    raise OptionError(f'"{name}" must be a number')


def _http_url(name: str, value: Any) -> str:
    text = _str(name, value)
    parts = urlsplit(text.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise OptionError(f'"{name}" must be a valid http(s) URL')
    return text.strip()


def _list(name: str, value: Any) -> list[Any]:
    value = _maybe_json(value)
    if not isinstance(value, list):
        raise OptionError(f'"{name}" must be an array')
    return value


def _object(name: str, value: Any) -> dict[str, Any]:
    value = _maybe_json(value)
    if not isinstance(value, dict):
        raise OptionError(f'"{name}" must be an object')
    return value


def validate_options(raw: Mapping[str, Any]) -> dict[str, Any]:
    """Type-check and normalise options (camelCase keys kept); raises :class:`OptionError` naming the option."""
    out: dict[str, Any] = {}
    for name, value in raw.items():
        if name not in OPTION_NAMES or value is None:
            continue
        if name in EMPTY_MEANS_UNSET and isinstance(value, str) and not value.strip():
            continue
        if name in STRINGS:
            out[name] = _str(name, value)
        elif name in BOOLEANS:
            out[name] = _bool(name, value)
        elif name in OBJECTS:
            out[name] = _object(name, value)
        elif name == "confidenceThreshold":
            number = _number(name, value)
            if not 0.5 <= number <= 1.0:
                raise OptionError(f'"{name}" must be a number between 0.5 and 1.0')
            out[name] = number
        elif name == "webhookUrl":
            out[name] = _http_url(name, value)
        elif name == "languageCode":
            if value not in LANGUAGE_CODES:
                raise OptionError(f'"{name}" must be one of [{", ".join(LANGUAGE_CODES)}]')
            out[name] = value
        elif name == "mode":
            if value not in ("phone", "default"):
                raise OptionError(f'"{name}" must be one of [phone, default]')
            out[name] = value
        elif name == "diarizationSpeakerCount":
            count = _int(name, value)
            if count < 1:
                raise OptionError(f'"{name}" must be greater than or equal to 1')
            out[name] = count
        elif name == "customVocabulary":
            items = _list(name, value)
            for i, item in enumerate(items):
                if not isinstance(item, str):
                    raise OptionError(f'"{name}[{i}]" must be a string')
            out[name] = items
        elif name == "entities":
            out[name] = [_entity(f"{name}[{i}]", e) for i, e in enumerate(_list(name, value))]
        elif name == "trackers":
            out[name] = [_tracker(f"{name}[{i}]", t) for i, t in enumerate(_list(name, value))]
        elif name == "channelMetadata":
            out[name] = [_channel(f"{name}[{i}]", c) for i, c in enumerate(_list(name, value))]
    return out


def _entity(where: str, value: Any) -> dict[str, Any]:
    entity = _object(where, value)
    out = {
        "customType": _str(f"{where}.customType", entity.get("customType")),
        "text": _str(f"{where}.text", entity.get("text")),
    }
    if entity.get("value") is not None:
        out["value"] = _str(f"{where}.value", entity["value"])
    return out


def _tracker(where: str, value: Any) -> dict[str, Any]:
    tracker = _object(where, value)
    if "vocabulary" not in tracker and "name" not in tracker and tracker.get("id") is not None:
        return {"id": _str(f"{where}.id", str(tracker["id"]))}
    name = _str(f"{where}.name", tracker.get("name"))
    vocabulary = tracker.get("vocabulary")
    if not isinstance(vocabulary, list) or not vocabulary:
        raise OptionError(f'"{where}.vocabulary" must be a non-empty array of strings')
    for i, phrase in enumerate(vocabulary):
        _str(f"{where}.vocabulary[{i}]", phrase)
    return {"name": name, "vocabulary": list(vocabulary)}


def _channel(where: str, value: Any) -> dict[str, Any]:
    meta = _object(where, value)
    channel = _int(f"{where}.channel", meta.get("channel"))
    if channel < 1:
        raise OptionError(f'"{where}.channel" must be greater than or equal to 1')
    speaker = meta.get("speaker")
    if not isinstance(speaker, dict):
        raise OptionError(f'"{where}.speaker" must be an object with "name" and "email"')
    out_speaker = {"name": _str(f"{where}.speaker.name", speaker.get("name"))}
    if speaker.get("email") is not None:
        out_speaker["email"] = _str(f"{where}.speaker.email", speaker["email"])
    return {"channel": channel, "speaker": out_speaker}


# ---------------------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------------------
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


def _flag(request: web.Request, name: str) -> bool:
    return request.query.get(name, "").strip().lower() == "true"


# ---------------------------------------------------------------------------------------------------------
# middlewares
# ---------------------------------------------------------------------------------------------------------
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
    log.info("fault %s (%s) applies to %s %s", fault.id, fault.action, request.method, request.path)
    if fault.action == "latency":
        await asyncio.sleep(fault.delay)
        return await handler(request)
    if fault.action == "status":
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


# ---------------------------------------------------------------------------------------------------------
# auth
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


# ---------------------------------------------------------------------------------------------------------
# async API
# ---------------------------------------------------------------------------------------------------------
def _mimetype(request: web.Request) -> str | None:
    header = request.headers.get("Content-Type")
    if header is None:
        return None
    return header.split(";", 1)[0].strip().lower()


async def process_file(request: web.Request, kind: str) -> web.Response:
    model = request.app[MODEL_KEY]
    conversation_id = request.match_info.get("conversationId")
    try:
        app_id = authenticate(request)
        options = validate_options(options_from_query(request.query))
        mimetype = _mimetype(request)
        if kind == "video" and mimetype not in VIDEO_TYPES:
            raise OptionError(
                f"Content-Type must be video/mp4 for video uploads, got {mimetype or 'none'}; only mp4 is supported."
            )
        if kind == "audio" and mimetype and mimetype not in AUDIO_TYPES:
            raise OptionError(f"Content-Type must be one of {', '.join(AUDIO_TYPES)} (or omitted), got {mimetype}.")
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
    return _accept(request, app_id, reservation, options, kind, conversation_id, result=result)


def _accept(request, app_id, reservation, options, kind, conversation_id, *, result=None, url=None):
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
        )
    except SandboxError as exc:  # e.g. the conversation was deleted while the body was arriving
        reservation.release()
        if result is not None:
            media.remove_quietly(result.path)
        return sandbox_error(exc)
    endpoint = kind if url is None else f"{kind}/url"
    entry = {
        "conversationId": job.conversation_id,
        "jobId": job.id,
        "method": request.method,
        "endpoint": endpoint,
        "sha256": result.sha256 if result else None,
        "size": result.size if result else None,
        "options": options,
    }
    if url is not None:
        entry["url"] = url
    request.app[LEDGER_KEY].record(**entry)
    return web.json_response({"conversationId": job.conversation_id, "jobId": job.id}, status=201)


async def process_url(request: web.Request, kind: str) -> web.Response:
    model = request.app[MODEL_KEY]
    conversation_id = request.match_info.get("conversationId")
    try:
        app_id = authenticate(request)
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
        # options (diarization in particular) may come in the query string too; the body wins
        raw = {**options_from_query(request.query), **{k: v for k, v in body.items() if k in OPTION_NAMES}}
        options = validate_options(raw)
        if body.get("url") in (None, ""):
            raise OptionError('"url" is required')
        url = _http_url("url", body["url"])
        if conversation_id is not None:
            model.get_conversation(app_id, conversation_id)
        reservation = model.reserve_slot(app_id)
    except SandboxError as exc:
        await drain(request)
        return sandbox_error(exc)
    return _accept(request, app_id, reservation, options, kind, conversation_id, url=url)


def _file_handler(kind):
    async def handler(request):
        return await process_file(request, kind)

    return handler


def _url_handler(kind):
    async def handler(request):
        return await process_url(request, kind)

    return handler


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
    from datetime import timedelta

    from symbl_sandbox.insights import iso

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
    msgs = t.render_messages(verbose=_flag(request, "verbose"), sentiment=_flag(request, "sentiment"))
    return web.json_response({"messages": msgs})


async def get_topics(request: web.Request) -> web.Response:
    t = _conversation(request).transcript
    parent = _flag(request, "parentRefs")
    topics = t.topics(sentiment=_flag(request, "sentiment") and not parent, parent_refs=parent)
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


async def ledger(request: web.Request) -> web.Response:
    return web.json_response({"submissions": request.app[LEDGER_KEY].submissions})


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
    request.app[LEDGER_KEY].clear()
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
# outbound: URL downloads and webhooks
# ---------------------------------------------------------------------------------------------------------
def _make_downloader(app: web.Application):
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
                result = await intake.consume(resp.content.iter_chunked(media.CHUNK_SIZE))
        except media.MediaError as exc:
            raise JobFailure(str(exc)) from None
        except aiohttp.ClientError as exc:
            intake.discard()
            raise JobFailure(f"could not download the media URL: {exc.__class__.__name__}") from None
        if result.size == 0:
            raise JobFailure("the media URL returned an empty body")
        app[LEDGER_KEY].update(job.id, sha256=result.sha256, size=result.size)
        return result

    return download


def _make_webhook_listener(app: web.Application):
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


# ---------------------------------------------------------------------------------------------------------
# app
# ---------------------------------------------------------------------------------------------------------
def create_app(config: SandboxConfig | None = None) -> web.Application:
    app = web.Application(middlewares=[stats_and_errors, inject_faults], client_max_size=MAX_JSON_BODY)
    model = SandboxModel(config)
    app[MODEL_KEY] = model
    app[FAULTS_KEY] = FaultRegistry()
    app[LEDGER_KEY] = Ledger()
    app[STATS_KEY] = Stats()
    app[TASKS_KEY] = set()
    model.downloader = _make_downloader(app)
    model.listeners.append(_make_webhook_listener(app))

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
        r.add_post(f"/v1/process/{kind}", _file_handler(kind))
        r.add_put(f"/v1/process/{kind}/{{conversationId}}", _file_handler(kind))
        r.add_post(f"/v1/process/{kind}/url", _url_handler(kind))
        r.add_put(f"/v1/process/{kind}/url/{{conversationId}}", _url_handler(kind))
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
    r.add_get("/sandbox/ledger", ledger)
    r.add_get("/sandbox/stats", stats)
    r.add_post("/sandbox/reset", reset)
    r.add_post("/sandbox/faults", add_fault)
    r.add_get("/sandbox/faults", list_faults)
    r.add_delete("/sandbox/faults", clear_faults)
    r.add_post("/sandbox/tokens/expire", expire_tokens)
    return app


__all__ = ["create_app", "options_from_query", "validate_options"]
