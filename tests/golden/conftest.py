"""Two sandbox processes of the golden suite's own (the shared one is reset by other tests) and a rich,
completed conversation on each, built so every documented field has something to show."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

import pytest
import requests
from aiohttp import web

from scripts.local_stack import SandboxServer, start_sandbox
from tests.sandbox.conftest import LoopbackServer, loopback, webhook  # noqa: F401 (fixtures, re-exported)

CUES = [
    ("Alice", "Can we review the pricing page today?"),
    ("Bob", "I will send the pricing page draft to Carol tomorrow."),
    ("Carol", "We agreed to ship the pricing page first, it costs 3 dollars."),
    ("Alice", "Let's schedule a call with the design team about the pricing page."),
]
OPTIONS = {
    "name": "Business Meeting",
    "detectEntities": "true",
    "detectPhrases": "true",
    "enableSummary": "true",
    "entities": json.dumps([{"customType": "Product", "text": "pricing page"}]),
    "trackers": json.dumps([{"name": "Pricing", "vocabulary": ["pricing page", "cost"]}]),
    "channelMetadata": json.dumps(
        [
            {"channel": i + 1, "speaker": {"name": name, "email": f"{name.lower()}@example.com"}}
            for i, name in enumerate(("Alice", "Bob", "Carol"))
        ]
    ),
    "metadata": json.dumps({"label": "Business"}),
}


@dataclass
class Context:
    server: SandboxServer
    token: str
    conversation_id: str
    job_id: str
    append_id: str
    doomed_id: str
    media_url: str
    mp4: bytes

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def _token(server: SandboxServer) -> str:
    resp = requests.post(
        server.url + "/oauth2/token:generate",
        json={"type": "application", "appId": server.app_id, "appSecret": server.app_secret},
        timeout=10,
    )
    resp.raise_for_status()
    return resp.json()["accessToken"]


def _submit(server: SandboxServer, token: str, data: bytes, params: dict) -> dict:
    resp = requests.post(
        server.url + "/v1/process/video",
        params=params,
        data=data,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "video/mp4"},
        timeout=30,
    )
    assert resp.status_code == 201, resp.text
    return resp.json()


def _wait(server: SandboxServer, token: str, job_id: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        status = requests.get(
            f"{server.url}/v1/job/{job_id}", headers={"Authorization": f"Bearer {token}"}, timeout=10
        ).json()["status"]
        if status in ("completed", "failed"):
            assert status == "completed", job_id
            return
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} did not finish")


@pytest.fixture(scope="module")
def media(mp4):
    data = mp4.make(CUES, seconds_per_cue=1.5)

    async def serve(request: web.Request) -> web.Response:
        return web.Response(body=data, content_type="video/mp4")

    app = web.Application()
    app.router.add_get("/meeting.mp4", serve)
    server = LoopbackServer(app)
    yield data, server.url + "/meeting.mp4"
    server.stop()


def _context(tmp_path_factory, media, *extra: str) -> tuple[SandboxServer, Context]:
    data, url = media
    server = start_sandbox(tmp_path_factory.mktemp("golden-sandbox"), *extra, speed=0.0, min_job_seconds=0.1)
    token = _token(server)
    rich = _submit(server, token, data, OPTIONS)
    other = _submit(server, token, data, {"name": "Append target"})
    doomed = _submit(server, token, data, {"name": "To delete"})
    for job in (rich, other, doomed):
        _wait(server, token, job["jobId"])
    ctx = Context(
        server,
        token,
        rich["conversationId"],
        rich["jobId"],
        other["conversationId"],
        doomed["conversationId"],
        url,
        data,
    )
    return server, ctx


@pytest.fixture(scope="module")
def contexts(tmp_path_factory, media):
    """``{"current": Context, "legacy": Context}``; both processes are stopped by PID at teardown."""
    started = []
    try:
        out = {}
        for name, extra in (("current", ()), ("legacy", ("--entity-shape", "legacy"))):
            server, ctx = _context(tmp_path_factory, media, *extra)
            started.append(server)
            out[name] = ctx
        yield out
    finally:
        for server in started:
            server.stop()
