"""Start and stop the local servers (Symbl sandbox, moto S3) as subprocesses on loopback.

Shared by the test fixtures, the demo and the benchmarks, so each starts them the same way.
Every process is stopped by its own PID.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url: str, proc: subprocess.Popen, timeout: float = 30.0) -> None:
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


def stop(proc: subprocess.Popen | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=10)


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "plugins")])}


class SandboxServer:
    """A running ``python -m symbl_sandbox`` and thin helpers for its /sandbox paths."""

    def __init__(self, proc: subprocess.Popen, url: str, app_id: str, app_secret: str, log_path: Path):
        self.proc = proc
        self.url = url
        self.app_id = app_id
        self.app_secret = app_secret
        self.log_path = log_path

    @property
    def pid(self) -> int:
        return self.proc.pid

    def conn_json(self) -> str:
        return json.dumps({"conn_type": "symbl", "host": self.url, "login": self.app_id, "password": self.app_secret})

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

    def stop(self) -> None:
        stop(self.proc)


def start_sandbox(
    workdir: Path,
    *extra: str,
    app_id: str = "sandbox-app-id",
    app_secret: str = "sandbox-app-secret",
    speed: float = 0.05,
    min_job_seconds: float = 0.2,
) -> SandboxServer:
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
        str(speed),
        "--min-job-seconds",
        str(min_job_seconds),
        "--data-dir",
        str(workdir / "data"),
        *extra,
    ]
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=_env(), stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while not port_file.exists() or not port_file.read_text().strip():
        if proc.poll() is not None or time.monotonic() > deadline:
            stop(proc)
            raise RuntimeError(f"sandbox did not start: {log_path.read_text()[-2000:]}")
        time.sleep(0.05)
    url = f"http://127.0.0.1:{int(port_file.read_text().strip())}"
    wait_http(url + "/sandbox/health", proc)
    return SandboxServer(proc, url, app_id, app_secret, log_path)


class S3Server:
    """A moto server process: a real S3 API over HTTP on loopback."""

    def __init__(self, proc: subprocess.Popen, endpoint_url: str):
        self.proc = proc
        self.endpoint_url = endpoint_url

    def client(self, service: str = "s3"):
        """A boto3 client of the moto server (``"sqs"``: where S3 bucket notifications land)."""
        import boto3

        return boto3.client(
            service,
            endpoint_url=self.endpoint_url,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    def sqs_client(self):
        return self.client("sqs")

    def notify_queue(
        self, bucket: str, queue_name: str, *, prefix: str | None = "videos/", suffix: str | None = ".mp4"
    ) -> str:
        """Create an SQS queue and send ``bucket``'s ObjectCreated notifications of parts to it; returns its URL."""
        sqs = self.sqs_client()
        url = sqs.create_queue(QueueName=queue_name)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        self.client().put_bucket_notification_configuration(
            Bucket=bucket, NotificationConfiguration=part_notifications(arn, prefix, suffix)
        )
        return url

    def conn_json(self) -> str:
        return json.dumps(
            {
                "conn_type": "aws",
                "login": "testing",
                "password": "testing",
                "extra": {"endpoint_url": self.endpoint_url, "region_name": "us-east-1"},
            }
        )

    def stop(self) -> None:
        stop(self.proc)


def part_notifications(queue_arn: str, prefix: str | None = "videos/", suffix: str | None = ".mp4") -> dict:
    """Bucket notifications for new parts only: the pipeline's own writes (ledgers, insight files) in the
    same bucket would otherwise each start a run of the event-driven DAG that finds nothing to do.
    ``None`` for both: every new object (what a careless setup sends; the DAG must ignore the rest)."""
    config: dict = {"QueueArn": queue_arn, "Events": ["s3:ObjectCreated:*"]}
    rules = [{"Name": name, "Value": value} for name, value in (("prefix", prefix), ("suffix", suffix)) if value]
    if rules:
        config["Filter"] = {"Key": {"FilterRules": rules}}
    return {"QueueConfigurations": [config]}


def start_s3(workdir: Path) -> S3Server:
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    with open(workdir / "moto.log", "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            env=_env(),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    endpoint = f"http://127.0.0.1:{port}"
    wait_http(endpoint + "/moto-api/", proc)
    return S3Server(proc, endpoint)
