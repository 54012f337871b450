"""A completed sandbox conversation for the insights tests, made and read with plain ``requests``.

The operator under test talks to the sandbox through ``SymblHook``; these helpers deliberately do
not, so the stored files are compared with what the API itself answers.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import pytest
import requests

CUES = [
    ("Alice", "Welcome to the weekly sync about the product launch."),
    ("Bob", "Can we ship the release on Friday?"),
    ("Alice", "I will send the launch notes to the team tomorrow."),
    ("Bob", "We need to follow up with the customer next week."),
]


@dataclass
class Api:
    url: str
    token: str

    def get(self, path: str, **params) -> requests.Response:
        return requests.get(
            self.url + path, params=params, headers={"Authorization": f"Bearer {self.token}"}, timeout=30
        )

    def insight(self, conversation_id: str, suffix: str, **params):
        path = f"/v1/conversations/{conversation_id}" + (f"/{suffix}" if suffix else "")
        resp = self.get(path, **params)
        assert resp.status_code == 200, resp.text
        return resp.json()


@pytest.fixture
def api(clean_sandbox) -> Api:
    return Api(clean_sandbox.url, clean_sandbox.token())


@pytest.fixture
def conversation(api, mp4) -> str:
    """Id of a completed conversation (one captioned MP4, summary enabled)."""
    data = mp4.make(CUES, seconds_per_cue=1.0)
    resp = requests.post(
        api.url + "/v1/process/video",
        params={"enableSummary": "true", "name": "Launch sync"},
        data=data,
        headers={"Authorization": f"Bearer {api.token}", "Content-Type": "video/mp4"},
        timeout=30,
    )
    assert resp.status_code == 201, resp.text
    body = resp.json()
    deadline = time.monotonic() + 30
    while True:
        status = api.get(f"/v1/job/{body['jobId']}").json()["status"]
        if status in ("completed", "failed"):
            break
        assert time.monotonic() < deadline, "sandbox job did not finish"
        time.sleep(0.05)
    assert status == "completed"
    return body["conversationId"]
