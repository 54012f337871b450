"""Helpers for the sandbox's own tests: an authenticated client over real HTTP and extra sandbox processes."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest
import requests

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
