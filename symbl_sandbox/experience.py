"""Experience API (pre-built summary UI): request validation and the HTML page the returned URL serves.

Source: docs.symbl.ai "POST Text Summary UI" / "POST Video Summary UI" (symblai/symbl-docs
``docs/api-reference/experience-api/post-text-summary-ui.md``, ``post-video-summary-ui.md``) and the Go SDK's
``TextSummaryRequest``/``VideoSummaryRequest``/``SummaryUIResult`` (``pkg/api/async/v1/interfaces/types.go``).
Symbl answers ``{"name", "url"}`` with a link to its hosted page; the sandbox serves a plain page of its own
under ``/meeting/<token>`` on whatever host the request came to, so the link works on any loopback port.
"""

from __future__ import annotations

import html
from typing import Any
from urllib.parse import urlsplit

from symbl_sandbox.model import Conversation, Experience, SandboxError

TEXT_SUMMARY = "verbose-text-summary"
VIDEO_SUMMARY = "video-summary"
NAMES = (TEXT_SUMMARY, VIDEO_SUMMARY)
#: The documented default lifetime of a summary URL: 30 days; 0 means it never expires.
DEFAULT_EXPIRES_IN = 2592000
PAGE_PREFIX = "/meeting/"


class ExperienceError(SandboxError):
    status = 400


def _url(name: str, value: Any) -> str:
    if not isinstance(value, str) or urlsplit(value.strip()).scheme not in ("http", "https"):
        raise ExperienceError(f'"{name}" must be an http(s) URL')
    return value.strip()


def validate_request(body: Any) -> tuple[str, dict[str, Any], float]:
    """``(name, options, expires_in)`` from the JSON body; raises :class:`ExperienceError` naming the field."""
    if not isinstance(body, dict):
        raise ExperienceError("The request body must be a JSON object.")
    name = body.get("name")
    if name not in NAMES:
        raise ExperienceError(f'"name" must be one of [{", ".join(NAMES)}]')
    options: dict[str, Any] = {}
    for key in ("logo", "favicon", "videoUrl"):
        if body.get(key) is not None:
            options[key] = _url(key, body[key])
    if name == VIDEO_SUMMARY and "videoUrl" not in options:
        raise ExperienceError('"videoUrl" is required for video-summary')
    for key in ("color", "font"):
        if body.get(key) is not None:
            if not isinstance(body[key], dict) or not all(isinstance(v, str) for v in body[key].values()):
                raise ExperienceError(f'"{key}" must be an object of strings')
            options[key] = dict(body[key])
    for key in ("readOnly", "enableCustomDomain"):
        if body.get(key) is not None:
            if not isinstance(body[key], bool):
                raise ExperienceError(f'"{key}" must be a boolean')
            options[key] = body[key]
    expires_in = body.get("summaryURLExpiresIn", DEFAULT_EXPIRES_IN)
    if isinstance(expires_in, bool) or not isinstance(expires_in, int | float) or expires_in < 0:
        raise ExperienceError('"summaryURLExpiresIn" must be a number of seconds >= 0 (0: never expires)')
    return name, options, float(expires_in)


def _color(value: Any, default: str) -> str:
    text = str(value or "")
    return (
        text
        if len(text) in (4, 7) and text.startswith("#") and all(c in "0123456789abcdefABCDEF" for c in text[1:])
        else default
    )


def _items(title: str, anchor: str, rows: list[str]) -> str:
    body = "".join(f"<li>{row}</li>" for row in rows) if rows else '<li class="empty">None detected.</li>'
    return f'<section id="{anchor}"><h2>{title}</h2><ul>{body}</ul></section>'


def render_page(exp: Experience, conv: Conversation) -> str:
    """The summary page, rendered from the conversation's current state (so appends show up on reload)."""
    e = html.escape
    t = conv.transcript
    color, font = exp.options.get("color") or {}, exp.options.get("font") or {}
    background = _color(color.get("background"), "#ffffff")
    accent = _color(color.get("topicsFilter"), "#0a2136")
    family = e(str(font.get("family") or "sans-serif")).replace(";", "")
    head = [
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{e(conv.name)} · Symbl summary (sandbox)</title>",
    ]
    if exp.options.get("favicon"):
        head.append(f'<link rel="icon" href="{e(exp.options["favicon"])}">')
    head.append(
        "<style>"
        f"body{{font-family:{family},sans-serif;background:{background};margin:2rem;max-width:60rem}}"
        f"h1,h2{{color:{accent}}} .meta{{color:#555}} .speaker{{font-weight:bold}} .empty{{color:#888}}"
        "</style>"
    )
    logo = (
        f'<img class="logo" alt="logo" src="{e(exp.options["logo"])}" height="40">' if exp.options.get("logo") else ""
    )
    video = ""
    if exp.name == VIDEO_SUMMARY:
        video = f'<section id="video"><video controls src="{e(exp.options["videoUrl"])}" width="640"></video></section>'
    summary = [e(s["text"]) for s in t.summary()]
    topics = [e(tp["text"]) for tp in t.topics()]
    actions = []
    for item in t.action_items():
        who = item.get("assignee", {}).get("name")
        due = item.get("dueBy", "")[:10]
        extra = "".join(
            [
                f' <span class="assignee">({e(who)})</span>' if who else "",
                f' <span class="due">due {e(due)}</span>' if due else "",
            ]
        )
        actions.append(e(item["text"]) + extra)
    questions = [e(q["text"]) for q in t.questions()]
    follow_ups = [e(f["text"]) for f in t.follow_ups()]
    transcript = [
        f'<span class="time">{int(m.time_offset // 60):02d}:{int(m.time_offset % 60):02d}</span> '
        f'<span class="speaker">{e(m.speaker)}</span>: <span class="text">{e(m.text)}</span>'
        for m in t.messages
    ]
    members = ", ".join(e(m.name) for m in t.members.values()) or "none yet"
    body = [
        logo,
        f'<h1 id="conversation-name">{e(conv.name)}</h1>',
        f'<p class="meta">Conversation {e(conv.id)} · {len(t.messages)} messages · speakers: {members}'
        f"{' · read-only' if exp.options.get('readOnly') else ''}</p>",
        video,
        _items("Summary", "summary", summary),
        _items("Topics", "topics", topics),
        _items("Action items", "action-items", actions),
        _items("Follow-ups", "follow-ups", follow_ups),
        _items("Questions", "questions", questions),
        _items("Transcript", "transcript", transcript),
    ]
    return (
        '<!DOCTYPE html>\n<html lang="en"><head>' + "".join(head) + "</head><body>" + "".join(body) + "</body></html>\n"
    )


def render_missing() -> str:
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>Summary not found</title></head>'
        "<body><h1>Summary not found</h1><p>This summary link is unknown or has expired.</p></body></html>\n"
    )
