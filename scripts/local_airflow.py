"""A small real Airflow on one machine: api-server, scheduler, dag-processor and triggerer as processes.

LocalExecutor on the project's SQLite metadata DB: enough for the demo's event-driven phase (an
AssetWatcher runs in the triggerer, the scheduler starts runs from its events). Each component is
started in its own session and stopped through its own PID (``airflow standalone`` would orphan its
children on SIGTERM).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

from scripts.local_stack import free_port

COMPONENTS = {
    "api-server": ["api-server", "--host", "127.0.0.1", "--workers", "1"],
    "scheduler": ["scheduler"],
    "dag-processor": ["dag-processor"],
    "triggerer": ["triggerer"],
}


class LocalAirflow:
    def __init__(self, env: dict[str, str], log_dir: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_dir = log_dir
        self.env = {
            **env,
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{self.url}/execution/",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
            "AIRFLOW__API__PORT": str(self.port),
            "AIRFLOW__API__BASE_URL": self.url,
            "AIRFLOW__API_AUTH__JWT_SECRET": f"demo-{uuid.uuid4().hex}",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "10",
            # a DAG's asset watchers are registered when it is parsed while unpaused: re-parse soon
            "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "5",
            "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
            "AIRFLOW__TRIGGERER__JOB_HEARTBEAT_SEC": "2",
            "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
            "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
        }
        self.procs: dict[str, subprocess.Popen] = {}

    def start(self) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        for name, args in COMPONENTS.items():
            if name == "api-server":
                args = [*args, "--port", str(self.port)]
            with open(self.log_dir / f"{name}.log", "ab") as log:
                self.procs[name] = subprocess.Popen(
                    [sys.executable, "-m", "airflow", *args],
                    env=self.env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,  # its whole tree is signalled through the PID we own
                )

    def airflow(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "airflow", *args], env=self.env, capture_output=True, text=True, timeout=timeout
        )

    def check(self) -> None:
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                tail = (self.log_dir / f"{name}.log").read_text(errors="replace")[-3000:]
                raise RuntimeError(f"airflow {name} exited ({proc.returncode}):\n{tail}")

    def cli_json(self, *args: str) -> list:
        """A CLI listing with ``-o json`` (the JSON is the line that starts with ``[``; warnings may precede it)."""
        out = self.airflow(*args, "-o", "json").stdout
        line = next((text for text in out.splitlines() if text.startswith("[")), "[]")
        return json.loads(line)

    def runs(self, dag_id: str) -> list[dict]:
        return self.cli_json("dags", "list-runs", dag_id)

    def paused(self, dag_id: str) -> bool | None:
        """``dag_id``'s paused flag in the metadata DB; None while the DAG processor has not stored it."""
        row = next((d for d in self.cli_json("dags", "list") if d.get("dag_id") == dag_id), None)
        return None if row is None else str(row.get("is_paused")).lower() == "true"

    def wait_for_dag(self, dag_id: str, timeout: float = 180) -> None:
        """Until the DAG processor has stored ``dag_id``; then unpause it (its asset watchers start then)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check()
            paused = self.paused(dag_id)
            if paused is False:
                return
            if paused:
                self.airflow("dags", "unpause", dag_id)
            time.sleep(2)
        raise RuntimeError(f"DAG {dag_id} was not parsed and unpaused within {timeout}s (see {self.log_dir})")

    def stop(self) -> None:
        for proc in reversed(list(self.procs.values())):
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
