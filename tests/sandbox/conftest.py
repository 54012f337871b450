"""Helpers for the sandbox's own tests: an authenticated client over real HTTP and extra sandbox processes."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from pathlib import Path

import pytest
import requests
from aiohttp import web

from scripts.local_stack import SandboxServer, start_sandbox

TERMINAL = ("completed", "failed")


class Api:
    """A thin ``requests`` client for one sandbox and one app, with the token already fetched."""

    def __init__(self, server: SandboxServer, app_id: str | None = None, app_secret: str | None = None):
        self.server = server
        self.url = server.url
        self.app_id = app_id or server.app_id
        self.app_secret = app_secret or server.app_secret
        self.token = self.new_token()["accessToken"]

    def new_token(self) -> dict:
        resp = requests.post(
            self.url + "/oauth2/token:generate",
            json={"type": "application", "appId": self.app_id, "appSecret": self.app_secret},
            timeout=10,
        )
        assert resp.status_code == 200, resp.text
        return resp.json()

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def request(self, method: str, path: str, *, headers=None, **kw) -> requests.Response:
        kw.setdefault("timeout", 30)
        return requests.request(method, self.url + path, headers={**self.auth, **(headers or {})}, **kw)

    def get(self, path: str, **kw) -> requests.Response:
        return self.request("GET", path, **kw)

    def submit(self, data, conversation_id: str | None = None, *, params=None, headers=None) -> requests.Response:
        path = "/v1/process/video" + (f"/{conversation_id}" if conversation_id else "")
        method = "PUT" if conversation_id else "POST"
        hdrs = {"Content-Type": "video/mp4", **(headers or {})}
        return self.request(method, path, data=data, params=params, headers=hdrs)

    def submit_ok(self, data, conversation_id: str | None = None, **kw) -> dict:
        resp = self.submit(data, conversation_id, **kw)
        assert resp.status_code == 201, resp.text
        return resp.json()

    def status(self, job_id: str) -> str:
        resp = self.get(f"/v1/job/{job_id}")
        assert resp.status_code == 200, resp.text
        return resp.json()["status"]

    def wait(self, job_id: str, timeout: float = 20.0) -> list[str]:
        """Poll until the job ends; returns the distinct statuses seen, in order."""
        seen: list[str] = []
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            status = self.status(job_id)
            if not seen or seen[-1] != status:
                seen.append(status)
            if status in TERMINAL:
                return seen
            time.sleep(0.02)
        raise AssertionError(f"job {job_id} still {seen} after {timeout}s")

    def conversation(self, conversation_id: str, part: str = "", **params) -> requests.Response:
        return self.get(f"/v1/conversations/{conversation_id}{part}", params=params or None)


@pytest.fixture
def api(clean_sandbox) -> Api:
    return Api(clean_sandbox)


@pytest.fixture
def spawn(tmp_path: Path):
    """Start extra sandbox processes with custom flags; each is stopped by PID at teardown."""
    started: list[SandboxServer] = []

    def _spawn(*extra: str, **kw) -> SandboxServer:
        server = start_sandbox(tmp_path / f"sandbox-{uuid.uuid4().hex[:8]}", *extra, **kw)
        started.append(server)
        return server

    yield _spawn
    for server in started:
        server.stop()


@pytest.fixture(scope="session")
def clip(mp4):
    """Common small clips (bytes), made once per session."""

    class Clips:
        one = mp4.make([("Alice", "Hello everyone.")])
        meeting = mp4.make(
            [
                ("Alice", "Can we review the pricing page today?"),
                ("Bob", "I will send the pricing page draft tomorrow."),
                ("Alice", "Great, let's schedule a call with the design team."),
            ]
        )
        second = mp4.make([("Bob", "We agreed to ship the pricing page first."), ("Carol", "Sounds good to me.")])
        silent = mp4.make([], captions=False)

    return Clips


class LoopbackServer:
    """Run an aiohttp app in a background thread on 127.0.0.1 (webhook receivers, media URLs)."""

    def __init__(self, app: web.Application):
        self.app = app
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        assert self._ready.wait(10), "loopback server did not start"
        self.url = f"http://127.0.0.1:{self.port}"

    def _run(self) -> None:
        self.loop = asyncio.new_event_loop()
        runner = web.AppRunner(self.app)
        self.loop.run_until_complete(runner.setup())
        site = web.TCPSite(runner, "127.0.0.1", 0)
        self.loop.run_until_complete(site.start())
        self.port = site._server.sockets[0].getsockname()[1]
        self._ready.set()
        self.loop.run_forever()
        self.loop.run_until_complete(runner.cleanup())
        self.loop.close()

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)


@pytest.fixture
def loopback():
    servers: list[LoopbackServer] = []

    def _start(app: web.Application) -> LoopbackServer:
        servers.append(LoopbackServer(app))
        return servers[-1]

    yield _start
    for server in servers:
        server.stop()


class WebhookReceiver:
    def __init__(self, loopback, status: int = 200):
        self.calls: list[tuple[float, dict]] = []
        self.status = status
        app = web.Application()
        app.router.add_post("/hook", self._hook)
        self.server = loopback(app)
        self.url = self.server.url + "/hook"

    async def _hook(self, request: web.Request) -> web.Response:
        self.calls.append((time.monotonic(), await request.json()))
        return web.json_response({}, status=self.status)

    def statuses(self, job_id: str) -> list[str]:
        return [body["status"] for _, body in self.calls if body.get("id") == job_id]

    def wait_for(self, job_id: str, status: str, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while status not in self.statuses(job_id):
            assert time.monotonic() < deadline, f"no {status} webhook for {job_id}: {self.calls}"
            time.sleep(0.02)


@pytest.fixture
def webhook(loopback) -> WebhookReceiver:
    return WebhookReceiver(loopback)
