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
    port: int = 0,
    detached: bool = False,
) -> SandboxServer:
    """``port=0``: a free port. ``detached``: in its own session, so it outlives this process (``make stack``)."""
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
        str(port),
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
        proc = subprocess.Popen(
            cmd,
            cwd=ROOT,
            env=_env(),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=detached,
        )
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
        self, bucket: str, queue_name: str, *, prefix: str | None = "videos/", media_only: bool = True
    ) -> str:
        """Create an SQS queue and send ``bucket``'s ObjectCreated notifications of parts to it; returns its URL."""
        sqs = self.sqs_client()
        url = sqs.create_queue(QueueName=queue_name)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        self.client().put_bucket_notification_configuration(
            Bucket=bucket, NotificationConfiguration=part_notifications(arn, prefix, media_only=media_only)
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


def part_notifications(queue_arn: str, prefix: str | None = "videos/", *, media_only: bool = True) -> dict:
    """Bucket notifications for new parts only: the pipeline's own writes (ledgers, insight files) in the
    same bucket would otherwise each start a run of the event-driven DAG that finds nothing to do.

    S3 takes one suffix per filter, so there is one configuration per media extension, in lower and
    upper case (``.mp4``, ``.MP4``); S3 allows several configurations for one event type when their
    suffixes do not overlap. A ``.Mp4`` or a ``.txt`` starts no run: the scheduled pipeline finds it.
    ``media_only=False`` and ``prefix=None``: every new object (what a careless setup sends; the DAG
    must ignore the rest)."""
    from symbl_airflow.discovery import MEDIA_EXTENSIONS

    suffixes = [f".{e}" for ext in sorted(MEDIA_EXTENSIONS) for e in (ext, ext.upper())] if media_only else [None]
    configs = []
    for suffix in suffixes:
        config: dict = {"QueueArn": queue_arn, "Events": ["s3:ObjectCreated:*"]}
        rules = [{"Name": name, "Value": value} for name, value in (("prefix", prefix), ("suffix", suffix)) if value]
        if rules:
            config["Filter"] = {"Key": {"FilterRules": rules}}
        configs.append(config)
    return {"QueueConfigurations": configs}


def start_s3(workdir: Path, *, port: int = 0, detached: bool = False) -> S3Server:
    """A moto server on ``port`` (0: a free one); ``detached`` as for :func:`start_sandbox`."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    with open(workdir / "moto.log", "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            env=_env(),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=detached,
        )
    endpoint = f"http://127.0.0.1:{port}"
    wait_http(endpoint + "/moto-api/", proc)
    return S3Server(proc, endpoint)


# ------------------------------------------------------------------------------------------------ make stack
# The sandbox and a local S3 left running for your own DAGs: `make stack` starts them detached and writes
# what it started (PIDs, their start times, URLs) to a state file; `make stack-stop` stops exactly those.

STACK_DIR = ROOT / ".tmp" / "stack"
STATE_FILE = "stack.json"
ENV_FILE = "env.sh"
DEFAULT_BUCKET = "symbl-demo"
DEFAULT_SANDBOX_PORT = 8900
DEFAULT_S3_PORT = 8901


def _started_at(pid: int) -> str | None:
    """When ``pid`` started (its identity: a PID reused by another process has another start time)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return None if fields[0] == "Z" else fields[19]  # state, starttime: fields 3 and 22 of proc(5)
    except FileNotFoundError:
        if Path("/proc/self/stat").exists():
            return None  # Linux: no such process
    except (OSError, IndexError):
        return None
    out = subprocess.run(["ps", "-o", "lstart=", "-p", str(pid)], capture_output=True, text=True)  # macOS
    return out.stdout.strip() or None


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _exports(sandbox_conn: str, s3_conn: str) -> list[str]:
    return [
        f"export AIRFLOW_CONN_SYMBL_DEFAULT='{sandbox_conn}'",
        f"export AIRFLOW_CONN_AWS_DEFAULT='{s3_conn}'",
    ]


def _read_state(stack_dir: Path) -> dict | None:
    try:
        return json.loads((stack_dir / STATE_FILE).read_text())
    except FileNotFoundError:
        return None


def _alive(entry: dict) -> bool:
    return _started_at(entry["pid"]) == entry["started_at"]


def _print_stack(state: dict, stack_dir: Path, *, already: bool) -> None:
    procs = ", ".join(f"{p['name']} pid {p['pid']}" for p in state["processes"])
    print(f"Local stack {'already ' if already else ''}running ({procs}); state in {stack_dir}")
    print(f"  Symbl sandbox  {state['sandbox_url']}  (App ID {state['app_id']})")
    print(f"  S3 (moto)      {state['s3_url']}  bucket: {state['bucket']}")
    if state.get("samples"):
        print(f"                 samples: {', '.join(state['samples'])}")
    print("\nIn the shell that runs Airflow (or: source " + str(stack_dir / ENV_FILE) + "):\n")
    for line in state["exports"]:
        print(line)
    print(f"\nStop it: make stack-stop   (stops PIDs {' '.join(str(p['pid']) for p in state['processes'])} only;")
    print("S3 objects and Symbl conversations live in memory and go with it)")


def start_stack(
    stack_dir: Path = STACK_DIR,
    *,
    sandbox_port: int = DEFAULT_SANDBOX_PORT,
    s3_port: int = DEFAULT_S3_PORT,
    bucket: str = DEFAULT_BUCKET,
    samples: bool = True,
) -> dict:
    """Start the sandbox and the local S3 detached (or report the running ones); return the state."""
    state = _read_state(stack_dir)
    if state and all(_alive(p) for p in state["processes"]):
        _print_stack(state, stack_dir, already=True)
        return state
    if state:  # a stale state file: stop what is left of it first
        stop_stack(stack_dir, quiet=True)
    for name, port, knob in (("sandbox", sandbox_port, "SANDBOX_PORT"), ("S3", s3_port, "S3_PORT")):
        if port and not _port_free(port):
            raise SystemExit(
                f"port {port} on 127.0.0.1 is in use (another sandbox or S3? docker compose's local profile "
                f"publishes 8900): choose another one for the {name}, e.g. make stack {knob}={port + 10}"
            )
    stack_dir.mkdir(parents=True, exist_ok=True)
    s3 = start_s3(stack_dir / "s3", port=s3_port, detached=True)
    try:
        sandbox = start_sandbox(
            stack_dir / "sandbox",
            app_id="sandbox-app-id",
            app_secret="sandbox-app-secret",
            speed=0.1,
            min_job_seconds=1.0,
            port=sandbox_port,
            detached=True,
        )
    except BaseException:
        s3.stop()
        raise
    try:
        client = s3.client()
        client.create_bucket(Bucket=bucket)
        uploaded = _seed(client, bucket) if samples else []
    except BaseException:
        sandbox.stop()
        s3.stop()
        raise
    state = {
        "processes": [
            {"name": "sandbox", "pid": sandbox.pid, "started_at": _started_at(sandbox.pid)},
            {"name": "s3", "pid": s3.proc.pid, "started_at": _started_at(s3.proc.pid)},
        ],
        "sandbox_url": sandbox.url,
        "app_id": sandbox.app_id,
        "s3_url": s3.endpoint_url,
        "bucket": bucket,
        "samples": sorted({key.rsplit("/", 1)[0] + "/" for key in uploaded}),
        "exports": _exports(sandbox.conn_json(), s3.conn_json()),
    }
    (stack_dir / ENV_FILE).write_text("\n".join(state["exports"]) + "\n")
    tmp = stack_dir / (STATE_FILE + ".tmp")
    tmp.write_text(json.dumps(state, indent=2))
    tmp.replace(stack_dir / STATE_FILE)
    _print_stack(state, stack_dir, already=False)
    return state


def _seed(client, bucket: str) -> list[str]:
    from scripts.seed_samples import seed

    return seed(client, bucket, log=lambda msg: None)


def stop_stack(stack_dir: Path = STACK_DIR, *, quiet: bool = False, timeout: float = 10.0) -> list[int]:
    """Stop the processes the state file names, each by its PID and only if it is still the one started."""
    say = (lambda msg: None) if quiet else print
    state = _read_state(stack_dir)
    if state is None:
        say(f"No local stack to stop ({stack_dir / STATE_FILE} does not exist)")
        return []
    stopped = []
    for entry in state["processes"]:
        pid = entry["pid"]
        if not _alive(entry):
            now = _started_at(pid)
            say(
                f"{entry['name']} (pid {pid}) "
                + ("now belongs to another process: left alone" if now else "is not running")
            )
            continue
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while _alive(entry) and time.monotonic() < deadline:
            _reap(pid)
            time.sleep(0.05)
        if _alive(entry):
            os.kill(pid, signal.SIGKILL)
        stopped.append(pid)
        say(f"stopped {entry['name']} (pid {pid})")
    (stack_dir / STATE_FILE).unlink(missing_ok=True)
    (stack_dir / ENV_FILE).unlink(missing_ok=True)
    return stopped


def _reap(pid: int) -> None:
    """Collect ``pid``'s exit status when this process started it (else init does)."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(
        prog="python -m scripts.local_stack", description="The Symbl sandbox and a local S3, left running."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    start = sub.add_parser("start", help="start both (or show the running ones) and print the exports")
    start.add_argument("--sandbox-port", type=int, default=int(os.environ.get("SANDBOX_PORT") or DEFAULT_SANDBOX_PORT))
    start.add_argument("--s3-port", type=int, default=int(os.environ.get("S3_PORT") or DEFAULT_S3_PORT))
    start.add_argument("--bucket", default=os.environ.get("BUCKET") or DEFAULT_BUCKET)
    start.add_argument("--no-samples", action="store_true", help="do not upload the demo's sample videos")
    stop = sub.add_parser("stop", help="stop what start started (by PID, from the state file)")
    put = sub.add_parser("put", help="upload a file to the running stack's bucket")
    put.add_argument("file", type=Path)
    put.add_argument("key", help="e.g. videos/my-meeting/part-001.mp4")
    for p in (start, stop, put):
        p.add_argument("--dir", type=Path, default=STACK_DIR, help=f"state directory (default {STACK_DIR})")
    args = parser.parse_args(argv)
    if args.command == "start":
        start_stack(
            args.dir,
            sandbox_port=args.sandbox_port,
            s3_port=args.s3_port,
            bucket=args.bucket,
            samples=not args.no_samples,
        )
    elif args.command == "put":
        put_file(args.dir, args.file, args.key)
    else:
        stop_stack(args.dir)
    return 0


def put_file(stack_dir: Path, path: Path, key: str) -> str:
    """Upload ``path`` to the running stack's bucket as ``key`` (no AWS CLI needed)."""
    state = _read_state(stack_dir)
    if state is None or not all(_alive(p) for p in state["processes"]):
        raise SystemExit("the local stack is not running: make stack")
    if not path.is_file():
        raise SystemExit(f"{path}: no such file")
    S3Server(None, state["s3_url"]).client().upload_file(str(path), state["bucket"], key.lstrip("/"))  # type: ignore[arg-type]
    uri = f"s3://{state['bucket']}/{key.lstrip('/')}"
    print(f"uploaded {path} to {uri}")
    return uri


if __name__ == "__main__":
    sys.exit(main())
