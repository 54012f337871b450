"""A multi-process Airflow on PostgreSQL + Redis + Celery, with the Symbl sandbox and a local S3.

Every component is its own process in its own session (so its children die with it), started and
stopped by the PID this module got from ``Popen``. The metadata DB and the Redis db number belong to
this cluster only and are dropped/flushed at the end.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import requests

from scripts.local_stack import ROOT, S3Server, SandboxServer, free_port, start_s3, start_sandbox

PG = {"host": "127.0.0.1", "port": 5432, "user": "postgres"}
REDIS = ("127.0.0.1", 6379)
DAG_ID = "symbl_video_pipeline"
EVENTS_DAG_ID = "symbl_video_events"
APP_ID = "e2e-app-id"
TERMINAL_RUN_STATES = ("success", "failed")
JWT_RE = re.compile(rb"eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}")
FERNET_RE = re.compile(rb"gAAAAA[A-Za-z0-9_=-]{20,}")


def services_reachable() -> str | None:
    """None when PostgreSQL and Redis answer, else the reason to skip."""
    try:
        import psycopg2

        psycopg2.connect(dbname="postgres", connect_timeout=3, **PG).close()
    except Exception as exc:  # any failure means "no usable PostgreSQL here"
        return f"PostgreSQL not reachable at 127.0.0.1:5432 as postgres: {exc}"
    try:
        import redis

        redis.Redis(host=REDIS[0], port=REDIS[1], socket_connect_timeout=3).ping()
    except Exception as exc:
        return f"Redis not reachable at 127.0.0.1:6379: {exc}"
    return None


def _pick_redis_db() -> int:
    import redis

    for n in range(11, 16):
        client = redis.Redis(host=REDIS[0], port=REDIS[1], db=n)
        if client.dbsize() == 0 and client.set("symbl-e2e-lock", "1", nx=True, ex=3600):
            return n
    raise RuntimeError("no empty Redis db among 11..15 for the e2e suite")


class Component:
    def __init__(self, name: str, args: list[str], log_path: Path):
        self.name = name
        self.args = args
        self.log_path = log_path
        self.proc: subprocess.Popen | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def descendants(self) -> list:
        import psutil

        try:
            return psutil.Process(self.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            return []


class AirflowCluster:
    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.home = workdir / "airflow-home"
        self.home.mkdir(parents=True)
        self.db_name = f"symbl_e2e_{uuid.uuid4().hex[:10]}"
        self.redis_db: int | None = None
        self.api_port = free_port()
        self.api_url = f"http://127.0.0.1:{self.api_port}"
        self.sandbox_port = free_port()
        self.app_secret = f"e2e-secret-{uuid.uuid4().hex}"
        self.sandbox: SandboxServer | None = None
        self.s3: S3Server | None = None
        self.components: dict[str, Component] = {}
        self.env: dict[str, str] = {}
        self._http = requests.Session()
        self._db_created = False
        #: Raw trigger rows seen while tasks were deferred (rows are deleted once their tasks resume).
        self.trigger_rows: list[tuple] = []
        self.sandbox_generations = 0

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        import psycopg2
        from cryptography.fernet import Fernet

        conn = psycopg2.connect(dbname="postgres", **PG)
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(f'CREATE DATABASE "{self.db_name}"')
        conn.close()
        self._db_created = True
        self.redis_db = _pick_redis_db()
        self.fernet_key = Fernet.generate_key().decode()
        self.s3 = start_s3(self.workdir / "s3")
        # The event path: S3 notifications -> moto's SQS -> the AssetWatcher of symbl_video_events.
        self.events_bucket = "e2e-events"
        sqs = self.s3.sqs_client()
        self.events_queue_url = sqs.create_queue(QueueName="symbl-uploads")["QueueUrl"]
        self.events_queue_arn = sqs.get_queue_attributes(QueueUrl=self.events_queue_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        self.restart_sandbox()
        db_url = f"postgresql+psycopg2://postgres@127.0.0.1:5432/{self.db_name}"
        base = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("AIRFLOW__", "AIRFLOW_CONN_", "AIRFLOW_HOME", "SYMBL_PIPELINE_"))
        }
        self.env = {
            **base,
            "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "plugins")]),
            "AIRFLOW_HOME": str(self.home),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__PARALLELISM": "4",
            "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
            "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
            "AIRFLOW__CORE__FERNET_KEY": self.fernet_key,
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.api_url}/execution/",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
            "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": db_url,
            "AIRFLOW__CELERY__BROKER_URL": f"redis://{REDIS[0]}:{REDIS[1]}/{self.redis_db}",
            "AIRFLOW__CELERY__RESULT_BACKEND": f"db+postgresql+psycopg2://postgres@127.0.0.1:5432/{self.db_name}",
            "AIRFLOW__CELERY__WORKER_CONCURRENCY": "2",
            "AIRFLOW__API__PORT": str(self.api_port),
            "AIRFLOW__API__BASE_URL": self.api_url,
            "AIRFLOW__API__WORKERS": "1",
            "AIRFLOW__API_AUTH__JWT_SECRET": f"e2e-jwt-{uuid.uuid4().hex}",
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "20",
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_SEC": "3",
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "3",
            "AIRFLOW__SCHEDULER__TRIGGERER_HEALTH_CHECK_THRESHOLD": "10",
            "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "2",
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "30",
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW_CONN_SYMBL_DEFAULT": self.sandbox.conn_json(),
            "AIRFLOW_CONN_AWS_DEFAULT": self.s3.conn_json(),
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "SYMBL_PIPELINE_POLL_INTERVAL": "1",
            "SYMBL_PIPELINE_POOL": "symbl",  # created in start()
            "SYMBL_PIPELINE_BUCKET": self.events_bucket,
            "SYMBL_EVENTS_QUEUE_URL": self.events_queue_url,
            "SYMBL_EVENTS_POLL_SECONDS": "1",
            "SYMBL_PIPELINE_INSIGHTS_URI": "s3://symbl-e2e/insights/",
        }
        self.airflow("db", "migrate", timeout=600)
        self.airflow("pools", "set", "symbl", "8", "Symbl concurrent jobs", "--include-deferred")
        logs = self.workdir / "logs"
        logs.mkdir()
        specs = {
            "api-server": ["api-server", "--port", str(self.api_port), "--host", "127.0.0.1", "--workers", "1"],
            "scheduler": ["scheduler"],
            "dag-processor": ["dag-processor"],
            "triggerer": ["triggerer"],
            "worker-w1": ["celery", "worker", "--celery-hostname", "w1@%h", "--concurrency", "2", "-s"],
            "worker-w2": ["celery", "worker", "--celery-hostname", "w2@%h", "--concurrency", "2", "-s"],
        }
        for name, args in specs.items():
            self.components[name] = Component(name, args, logs / f"{name}.log")
            self.start_component(name)
        self.wait_until(lambda: self._get_ok("/api/v2/monitor/health"), 180, "api-server health")
        self.wait_until(lambda: self._get_ok(f"/api/v2/dags/{DAG_ID}"), 180, f"DAG {DAG_ID} parsed")
        for worker in ("worker-w1", "worker-w2"):
            self.wait_worker_ready(worker)
        self.api("PATCH", f"/api/v2/dags/{DAG_ID}", json={"is_paused": False})
        self.wait_until(lambda: self._get_ok(f"/api/v2/dags/{EVENTS_DAG_ID}"), 180, f"DAG {EVENTS_DAG_ID} parsed")
        self.api("PATCH", f"/api/v2/dags/{EVENTS_DAG_ID}", json={"is_paused": False})

    def enable_notifications(self, bucket: str) -> None:
        """S3 notifies the events queue of new parts in ``bucket`` (videos/, one filter per media suffix)."""
        from scripts.local_stack import part_notifications

        self.s3.client().put_bucket_notification_configuration(
            Bucket=bucket, NotificationConfiguration=part_notifications(self.events_queue_arn)
        )

    def dag_runs(self, dag_id: str) -> list[dict]:
        return self.api("GET", f"/api/v2/dags/{dag_id}/dagRuns", params={"limit": 100})["dag_runs"]

    def stop(self) -> None:
        for name in reversed(list(self.components)):
            self.stop_component(name)
        for server in (self.sandbox, self.s3):
            if server is not None:
                server.stop()
        if self.redis_db is not None:
            import redis

            redis.Redis(host=REDIS[0], port=REDIS[1], db=self.redis_db).flushdb()
        if self._db_created:
            import psycopg2

            conn = psycopg2.connect(dbname="postgres", **PG)
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute(f'DROP DATABASE IF EXISTS "{self.db_name}" WITH (FORCE)')
            conn.close()

    def airflow(self, *args: str, timeout: float = 300) -> str:
        proc = subprocess.run(
            [sys.executable, "-m", "airflow", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"airflow {' '.join(args)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
        return proc.stdout

    # ------------------------------------------------------------------ components
    def start_component(self, name: str) -> None:
        comp = self.components[name]
        comp.log_offset = comp.log_path.stat().st_size if comp.log_path.exists() else 0
        with open(comp.log_path, "ab") as log:
            comp.proc = subprocess.Popen(
                [sys.executable, "-m", "airflow", *comp.args],
                env=self.env,
                cwd=self.workdir,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # pgid == pid: the whole tree is signalled through the PID we own
            )

    def _signal_tree(self, comp: Component, sig: int, extra: list | None = None) -> None:
        try:
            os.killpg(comp.pid, sig)
        except ProcessLookupError:
            pass
        import psutil

        for child in extra or []:  # children that left the process group
            with contextlib.suppress(psutil.Error):
                child.send_signal(sig)

    def stop_component(self, name: str, timeout: float = 15) -> None:
        comp = self.components[name]
        if comp.proc is None:
            return
        children = comp.descendants()
        if comp.alive():
            self._signal_tree(comp, signal.SIGTERM)
            try:
                comp.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                pass
        self._signal_tree(comp, signal.SIGKILL, children)
        if comp.proc.poll() is None:
            comp.proc.wait(timeout=10)

    def restart_component(self, name: str) -> None:
        self.start_component(name)
        self.components[name].expected_down = False
        if name.startswith("worker-"):
            self.wait_worker_ready(name)

    def kill_component(self, name: str) -> None:
        """SIGKILL the component and every process below it: a crashed machine, no cleanup."""
        comp = self.components[name]
        comp.expected_down = True
        children = comp.descendants()
        self._signal_tree(comp, signal.SIGKILL, children)
        comp.proc.wait(timeout=10)
        import psutil

        psutil.wait_procs(children, timeout=10)

    def wait_worker_ready(self, name: str, timeout: float = 120) -> None:
        comp = self.components[name]
        start = comp.log_offset

        def ready() -> bool:
            if not comp.alive():
                raise RuntimeError(f"{name} exited: {comp.log_path.read_text(errors='replace')[-3000:]}")
            with open(comp.log_path, "rb") as fh:
                fh.seek(start)
                return b"ready." in fh.read()

        self.wait_until(ready, timeout, f"{name} ready")

    def restart_sandbox(self, *extra: str, speed: float = 0.05, min_job_seconds: float = 0.5) -> SandboxServer:
        """(Re)start the sandbox on the same port, so every Airflow process keeps its connection."""
        if self.sandbox is not None:
            self.sandbox.stop()
        self.sandbox_generations += 1
        self.sandbox = start_sandbox(
            self.workdir / f"sandbox-{self.sandbox_generations}",
            "--port",
            str(self.sandbox_port),
            *extra,
            app_id=APP_ID,
            app_secret=self.app_secret,
            speed=speed,
            min_job_seconds=min_job_seconds,
        )
        return self.sandbox

    # ------------------------------------------------------------------ REST API
    def api(self, method: str, path: str, *, ok: tuple[int, ...] = (200, 201, 204), **kwargs) -> Any:
        kwargs.setdefault("timeout", 30)
        resp = self._http.request(method, self.api_url + path, **kwargs)
        if resp.status_code not in ok:
            raise AssertionError(f"{method} {path} -> HTTP {resp.status_code}: {resp.text[:2000]}")
        if not resp.content:
            return None
        try:
            return resp.json()
        except ValueError:
            return resp.text

    def _get_ok(self, path: str) -> bool:
        try:
            return self._http.get(self.api_url + path, timeout=5).status_code == 200
        except requests.RequestException:
            return False

    def trigger(self, conf: dict, dag_id: str = DAG_ID) -> str:
        run_id = f"e2e__{uuid.uuid4().hex[:12]}"
        self.api(
            "POST",
            f"/api/v2/dags/{dag_id}/dagRuns",
            json={"dag_run_id": run_id, "logical_date": None, "conf": conf},
        )
        return run_id

    def run_state(self, run_id: str, dag_id: str = DAG_ID) -> str:
        return self.api("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}")["state"]

    def wait_run(self, run_id: str, timeout: float = 300, dag_id: str = DAG_ID, on_poll=None) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            state = self.run_state(run_id, dag_id)
            if state in TERMINAL_RUN_STATES:
                return state
            self.snapshot_triggers()
            if on_poll is not None:
                on_poll()
            self.check_components()
            time.sleep(1)
        raise AssertionError(f"run {run_id} not finished after {timeout}s: {self.describe(run_id)}")

    def check_components(self) -> None:
        for comp in self.components.values():
            if comp.proc is not None and not comp.alive() and not getattr(comp, "expected_down", False):
                raise AssertionError(f"{comp.name} died: {comp.log_path.read_text(errors='replace')[-3000:]}")

    def task_instances(self, run_id: str, dag_id: str = DAG_ID) -> list[dict]:
        data = self.api("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances", params={"limit": 100})
        return data["task_instances"]

    def ti(self, run_id: str, task_id: str, map_index: int = -1) -> dict:
        for ti in self.task_instances(run_id):
            if ti["task_id"] == task_id and ti["map_index"] == map_index:
                return ti
        raise AssertionError(f"no task instance {task_id}[{map_index}] in {run_id}")

    def task_log(self, run_id: str, task_id: str, map_index: int = -1, try_number: int | None = None) -> str:
        if try_number is None:
            try_number = self.ti(run_id, task_id, map_index)["try_number"]
        data = self.api(
            "GET",
            f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/{task_id}/logs/{try_number}",
            params={"map_index": map_index, "full_content": "true"},
            headers={"Accept": "application/json"},
        )
        content = data.get("content") if isinstance(data, dict) else data
        if isinstance(content, list):
            return "\n".join(
                json.dumps(item) if not isinstance(item, str) else item for item in content if item is not None
            )
        return str(content)

    def describe(self, run_id: str) -> str:
        try:
            tis = self.task_instances(run_id)
        except AssertionError as exc:
            return str(exc)
        return ", ".join(f"{t['task_id']}[{t['map_index']}]={t['state']}/try{t['try_number']}" for t in tis)

    def state_store(self, run_id: str, task_id: str, map_index: int, key: str) -> Any:
        return self.api(
            "GET",
            f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/{task_id}/state-store/{key}",
            params={"map_index": map_index},
        )["value"]

    def patch_state_store(self, run_id: str, task_id: str, map_index: int, key: str, value: Any) -> None:
        self.api(
            "PATCH",
            f"/api/v2/dags/{DAG_ID}/dagRuns/{run_id}/taskInstances/{task_id}/state-store/{key}",
            params={"map_index": map_index},
            json={"value": value},
        )

    def clear(self, run_id: str, task_id: str, map_index: int) -> None:
        """Clear one failed task instance and its downstream, as an operator would after fixing its state."""
        self.api(
            "POST",
            f"/api/v2/dags/{DAG_ID}/clearTaskInstances",
            json={
                "dry_run": False,
                "dag_run_id": run_id,
                "task_ids": [[task_id, map_index]],
                "include_downstream": True,
                "only_failed": False,
                "reset_dag_runs": True,
            },
        )

    # ------------------------------------------------------------------ metadata DB
    def sql(self, query: str, params: tuple = ()) -> list[tuple]:
        import psycopg2

        conn = psycopg2.connect(dbname=self.db_name, **PG)
        try:
            with conn.cursor() as cur:
                cur.execute(query, params)
                return cur.fetchall()
        finally:
            conn.close()

    def snapshot_triggers(self) -> int:
        rows = self.sql("SELECT id, classpath, kwargs FROM trigger")
        known = {r[0] for r in self.trigger_rows}
        self.trigger_rows.extend(r for r in rows if r[0] not in known)
        return len(rows)

    def decrypt(self, token: bytes) -> bytes:
        from cryptography.fernet import Fernet, InvalidToken

        try:
            return Fernet(self.fernet_key.encode()).decrypt(token)
        except InvalidToken:
            return b""

    # ------------------------------------------------------------------ helpers
    @staticmethod
    def wait_until(predicate, timeout: float, what: str, interval: float = 0.5) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(interval)
        raise AssertionError(f"timed out after {timeout}s waiting for {what}")

    def worker_uploading(self) -> str | None:
        """The worker whose process tree holds a TCP connection to the sandbox (the uploading task)."""
        import psutil

        for name in ("worker-w1", "worker-w2"):
            comp = self.components[name]
            if not comp.alive():
                continue
            for proc in [psutil.Process(comp.pid), *comp.descendants()]:
                try:
                    conns = proc.net_connections(kind="tcp")
                except psutil.Error:
                    continue
                if any(c.raddr and c.raddr.port == self.sandbox_port and c.status == "ESTABLISHED" for c in conns):
                    return name
        return None


def sandbox_token_claims(blob: bytes) -> list[dict]:
    """Claims of every JWT in ``blob`` that the sandbox issued to this suite's app (``sub`` == APP_ID)."""
    found = []
    for match in JWT_RE.finditer(blob):
        payload = match.group(0).split(b".")[1]
        try:
            claims = json.loads(base64.urlsafe_b64decode(payload + b"=" * (-len(payload) % 4)))
        except ValueError:
            continue
        if isinstance(claims, dict) and claims.get("sub") == APP_ID:
            found.append(claims)
    return found
