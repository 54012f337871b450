"""Tokens and authentication over real HTTP."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
import requests

from tests.sandbox.conftest import Api

pytestmark = pytest.mark.integration

TOKEN_FAILED = {"message": "Token validation failed for provided token."}


def _generate(url, **body):
    return requests.post(url + "/oauth2/token:generate", json={"type": "application", **body}, timeout=10)


def test_token_is_reused_with_remaining_lifetime(spawn):
    server = spawn("--token-ttl", "3")
    first = _generate(server.url, appId=server.app_id, appSecret=server.app_secret)
    assert first.status_code == 200
    body = first.json()
    assert set(body) == {"accessToken", "expiresIn"}
    assert body["expiresIn"] == 3
    time.sleep(1.1)
    again = _generate(server.url, appId=server.app_id, appSecret=server.app_secret).json()
    assert again["accessToken"] == body["accessToken"]
    assert again["expiresIn"] < 3
    # once the TTL has passed the token is refused and a new one is issued
    time.sleep(max(0.0, again["expiresIn"]) + 1.0)
    resp = requests.get(
        server.url + "/v1/job/x", headers={"Authorization": f"Bearer {body['accessToken']}"}, timeout=10
    )
    assert resp.status_code == 401 and resp.json() == TOKEN_FAILED
    fresh = _generate(server.url, appId=server.app_id, appSecret=server.app_secret).json()
    assert fresh["accessToken"] != body["accessToken"]
    stats = server.stats()
    assert stats["token_requests"] == 3 and stats["tokens_issued"] == 2


def test_bad_credentials_and_bad_requests(clean_sandbox):
    url = clean_sandbox.url
    bad = _generate(url, appId=clean_sandbox.app_id, appSecret="wrong")
    assert bad.status_code == 401 and "message" in bad.json()
    assert "wrong" not in bad.text
    assert _generate(url, appId="nobody", appSecret="x").status_code == 401
    # any invalid appId/appSecret combination is 401 (authentication.md), missing or empty ones included
    assert _generate(url, appId=clean_sandbox.app_id).status_code == 401
    assert _generate(url, appId=clean_sandbox.app_id, appSecret="").status_code == 401
    assert _generate(url, appId="", appSecret=clean_sandbox.app_secret).status_code == 401
    assert _generate(url, appId=clean_sandbox.app_id, appSecret=None).status_code == 401
    assert _generate(url, appSecret=clean_sandbox.app_secret).status_code == 401
    wrong_type = requests.post(url + "/oauth2/token:generate", json={"type": "password"}, timeout=10)
    assert wrong_type.status_code == 400
    not_json = requests.post(url + "/oauth2/token:generate", data=b"{nope", timeout=10)
    assert not_json.status_code == 400


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer not-a-token"},
        {"Authorization": "Basic abc"},
        {"x-api-key": "not-a-token"},
        {"Authorization": "Bearer "},
    ],
)
def test_missing_or_bad_token_is_401(clean_sandbox, headers, clip):
    for method, path, kw in [
        ("GET", "/v1/job/abc", {}),
        ("GET", "/v1/conversations/123/messages", {}),
        ("POST", "/v1/process/video", {"data": clip.one, "headers": {"Content-Type": "video/mp4"}}),
        ("POST", "/v1/process/video/url", {"json": {"url": "http://127.0.0.1:1/x.mp4"}}),
        ("DELETE", "/v1/conversations/123", {}),
    ]:
        hdrs = {**kw.pop("headers", {}), **headers}
        resp = clean_sandbox.request(method, path, headers=hdrs, **kw)
        assert resp.status_code == 401, (method, path, resp.text)
        assert resp.json() == TOKEN_FAILED
    assert clean_sandbox.ledger() == []


def test_bearer_and_x_api_key_both_work(api, clip):
    job = api.submit_ok(clip.one)
    for headers in (
        {"Authorization": f"Bearer {api.token}"},
        {"x-api-key": api.token},
        {"Authorization": f"bearer {api.token}"},
    ):
        resp = api.server.request("GET", f"/v1/job/{job['jobId']}", headers=headers)
        assert resp.status_code == 200, headers


def test_expire_endpoint_invalidates_tokens(api, clip):
    assert api.get("/v1/job/nothing").status_code == 404
    api.server.expire_tokens()
    resp = api.get("/v1/job/nothing")
    assert resp.status_code == 401 and resp.json() == TOKEN_FAILED
    old = api.token
    api.token = api.new_token()["accessToken"]
    assert api.token != old
    assert api.get("/v1/job/nothing").status_code == 404


def test_several_credential_pairs_are_separate_accounts(spawn, clip):
    server = spawn("--app-id", "second-app", "--app-secret", "second-secret", "--credentials", "third:s3cr3t")
    first = Api(server)
    second = Api(server, "second-app", "second-secret")
    third = Api(server, "third", "s3cr3t")
    assert len({first.token, second.token, third.token}) == 3
    job = first.submit_ok(clip.one)
    # another account sees neither the job nor the conversation
    assert second.get(f"/v1/job/{job['jobId']}").status_code == 404
    assert second.conversation(job["conversationId"]).status_code == 404
    assert second.submit(clip.one, job["conversationId"]).status_code == 404
    assert first.get(f"/v1/job/{job['jobId']}").status_code == 200


def test_cli_env_variables(tmp_path):
    port_file = tmp_path / "port"
    env = {
        **os.environ,
        "SYMBL_SANDBOX_CREDENTIALS": "env-app:env-secret",
        "SYMBL_SANDBOX_TOKEN_TTL": "120",
        "SYMBL_SANDBOX_PORT": "0",
        "SYMBL_SANDBOX_DATA_DIR": str(tmp_path / "data"),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "symbl_sandbox", "--port-file", str(port_file)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 20
        while not (port_file.exists() and port_file.read_text().strip()):
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        url = f"http://127.0.0.1:{int(port_file.read_text())}"
        assert requests.get(url + "/sandbox/health", timeout=5).json() == {"status": "ok"}
        token = _generate(url, appId="env-app", appSecret="env-secret").json()
        assert token["expiresIn"] == 120
        assert _generate(url, appId="sandbox-app-id", appSecret="sandbox-app-secret").status_code == 401
        assert (tmp_path / "data").is_dir()
    finally:
        proc.terminate()
        assert proc.wait(timeout=10) == 0


def test_cli_rejects_unpaired_app_id(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "symbl_sandbox", "--app-id", "a", "--port", "0"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 2
    assert "pairs" in proc.stderr
