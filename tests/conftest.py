"""Shared fixtures: real servers on loopback (Symbl sandbox, moto S3) and a per-session Airflow home.

Environment is set at import time, before any test module imports Airflow, because Airflow reads
``AIRFLOW_HOME`` and its config once per process.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parent.parent
_SESSION_DIR = Path(tempfile.mkdtemp(prefix="symbl-airflow-tests-"))
SANDBOX_APP_ID = "test-app-id"
SANDBOX_APP_SECRET = "test-app-secret-4f1c9a7e"

os.environ["AIRFLOW_HOME"] = str(_SESSION_DIR / "airflow-home")
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(ROOT / "dags")
os.environ["AIRFLOW__CORE__PLUGINS_FOLDER"] = str(ROOT / "plugins")
os.environ["AIRFLOW__CORE__UNIT_TEST_MODE"] = "False"
os.environ["AIRFLOW__CORE__PARALLELISM"] = "4"
os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{_SESSION_DIR / 'airflow.db'}"
os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
for _p in (str(ROOT / "plugins"), str(ROOT)):
    if _p not in sys.path:
        sys.path.insert(0, _p)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_http(url: str, proc: subprocess.Popen, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server for {url} exited with {proc.returncode}")
        try:
            requests.get(url, timeout=1)
            return
        except requests.RequestException:
            time.sleep(0.05)
    raise RuntimeError(f"server at {url} not ready after {timeout}s")


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


class SandboxServer:
    """A running ``python -m symbl_sandbox`` subprocess and thin helpers for its /sandbox paths."""

    def __init__(self, proc: subprocess.Popen, url: str, app_id: str, app_secret: str, log_path: Path):
        self.proc = proc
        self.url = url
        self.app_id = app_id
        self.app_secret = app_secret
        self.log_path = log_path

    @property
    def pid(self) -> int:
        return self.proc.pid

    def request(self, method: str, path: str, **kwargs) -> requests.Response:
        kwargs.setdefault("timeout", 30)
        return requests.request(method, self.url + path, **kwargs)

    def ledger(self) -> list[dict]:
        resp = self.request("GET", "/sandbox/ledger")
        resp.raise_for_status()
        return resp.json()["submissions"]

    def stats(self) -> dict:
        resp = self.request("GET", "/sandbox/stats")
        resp.raise_for_status()
        return resp.json()

    def reset(self) -> None:
        self.request("POST", "/sandbox/reset").raise_for_status()

    def fault(self, **spec) -> dict:
        resp = self.request("POST", "/sandbox/faults", json=spec)
        resp.raise_for_status()
        return resp.json()

    def expire_tokens(self) -> None:
        self.request("POST", "/sandbox/tokens/expire").raise_for_status()

    def token(self) -> str:
        resp = self.request(
            "POST",
            "/oauth2/token:generate",
            json={"type": "application", "appId": self.app_id, "appSecret": self.app_secret},
        )
        resp.raise_for_status()
        return resp.json()["accessToken"]


def start_sandbox(workdir: Path, *extra: str, app_id=SANDBOX_APP_ID, app_secret=SANDBOX_APP_SECRET):
    """Start a sandbox on a free port; the caller stops it with ``_stop(server.proc)``."""
    workdir.mkdir(parents=True, exist_ok=True)
    port_file = workdir / "port"
    port_file.unlink(missing_ok=True)
    log_path = workdir / "sandbox.log"
    cmd = [
        sys.executable,
        "-m",
        "symbl_sandbox",
        "--host",
        "127.0.0.1",
        "--port",
        "0",
        "--port-file",
        str(port_file),
        "--app-id",
        app_id,
        "--app-secret",
        app_secret,
        "--speed",
        "0.05",
        "--min-job-seconds",
        "0.2",
        "--data-dir",
        str(workdir / "data"),
        *extra,
    ]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "plugins")])}
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while not port_file.exists() or not port_file.read_text().strip():
        if proc.poll() is not None or time.monotonic() > deadline:
            _stop(proc)
            raise RuntimeError(f"sandbox did not start: {log_path.read_text()[-2000:]}")
        time.sleep(0.05)
    url = f"http://127.0.0.1:{int(port_file.read_text().strip())}"
    _wait_http(url + "/sandbox/health", proc)
    return SandboxServer(proc, url, app_id, app_secret, log_path)


@pytest.fixture(scope="session")
def sandbox():
    server = start_sandbox(_SESSION_DIR / "sandbox")
    os.environ["AIRFLOW_CONN_SYMBL_DEFAULT"] = json.dumps(
        {"conn_type": "symbl", "host": server.url, "login": server.app_id, "password": server.app_secret}
    )
    try:
        yield server
    finally:
        _stop(server.proc)


@pytest.fixture
def clean_sandbox(sandbox):
    sandbox.reset()
    yield sandbox


class S3Server:
    def __init__(self, proc: subprocess.Popen, endpoint_url: str):
        self.proc = proc
        self.endpoint_url = endpoint_url

    def client(self):
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )


def start_s3(workdir: Path) -> S3Server:
    workdir.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    with open(workdir / "moto.log", "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    endpoint = f"http://127.0.0.1:{port}"
    _wait_http(endpoint + "/moto-api/", proc)
    return S3Server(proc, endpoint)


def aws_conn_json(endpoint_url: str) -> str:
    return json.dumps(
        {
            "conn_type": "aws",
            "login": "testing",
            "password": "testing",
            "extra": {"endpoint_url": endpoint_url, "region_name": "us-east-1"},
        }
    )


@pytest.fixture(scope="session")
def s3():
    server = start_s3(_SESSION_DIR / "s3")
    os.environ["AIRFLOW_CONN_AWS_DEFAULT"] = aws_conn_json(server.endpoint_url)
    try:
        yield server
    finally:
        _stop(server.proc)


@pytest.fixture
def bucket(s3):
    name = f"test-{uuid.uuid4().hex[:12]}"
    s3.client().create_bucket(Bucket=name)
    return name


class Mp4Factory:
    """Makes small real MP4s (audio + optional mov_text captions), cached by arguments."""

    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._cache: dict[str, bytes] = {}

    def make(self, cues=(("Alice", "Hello everyone."),), *, seconds_per_cue: float = 1.0, captions=True) -> bytes:
        from symbl_sandbox.samples import make_mp4

        key = json.dumps([list(map(list, cues)), seconds_per_cue, captions])
        if key not in self._cache:
            path = self.workdir / f"{uuid.uuid4().hex}.mp4"
            make_mp4(path, list(cues), seconds_per_cue=seconds_per_cue, captions=captions)
            self._cache[key] = path.read_bytes()
            path.unlink()
        return self._cache[key]


@pytest.fixture(scope="session")
def mp4():
    return Mp4Factory(_SESSION_DIR / "mp4")


@pytest.fixture(scope="session", autouse=True)
def airflow_db():
    """Migrate the session's SQLite metadata DB once so ``dag.test()`` works in any test."""
    env = {**os.environ}
    proc = subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"], env=env, capture_output=True, text=True, timeout=300
    )
    if proc.returncode != 0:
        raise RuntimeError(f"airflow db migrate failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return Path(os.environ["AIRFLOW_HOME"])


def pytest_sessionfinish(session, exitstatus):
    shutil.rmtree(_SESSION_DIR, ignore_errors=True)
