"""``make stack`` / ``make stack-stop``: the script runs as the Makefile runs it, and what it prints works.

The printed ``export`` lines are run by bash as a user would paste them, then Airflow's own hooks use
the connections they define: an S3 put/get through ``S3Hook`` (aws_default) and a token through
``SymblHook`` (symbl_default).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def _stack(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [sys.executable, "-m", "scripts.local_stack", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        env={**os.environ, "PYTHONPATH": f"{ROOT / 'plugins'}{os.pathsep}{ROOT}"},
    )
    if check:
        assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def _running(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


USE_EXPORTS = """
import json
from airflow.providers.amazon.aws.hooks.s3 import S3Hook
from symbl_airflow.hooks import SymblHook

s3 = S3Hook()  # aws_default, from AIRFLOW_CONN_AWS_DEFAULT
s3.load_string("hello from the stack test", key="check/hello.txt", bucket_name="symbl-demo", replace=True)
text = s3.read_key("check/hello.txt", bucket_name="symbl-demo")
samples = sorted(s3.list_keys("symbl-demo", prefix="videos/"))
token = SymblHook().get_access_token()  # symbl_default, from AIRFLOW_CONN_SYMBL_DEFAULT
print(json.dumps({"text": text, "samples": samples, "token": bool(token), "base": SymblHook().config.base_url}))
"""


def test_stack_exports_work_and_stop_ends_exactly_what_started(tmp_path):
    state_dir = tmp_path / "stack"
    # free ports (the defaults, 8900/8901, may be taken on a test machine); everything else as `make stack`
    started = _stack("start", "--dir", str(state_dir), "--sandbox-port", "0", "--s3-port", "0")
    try:
        out = started.stdout
        exports = [line for line in out.splitlines() if line.startswith("export AIRFLOW_CONN_")]
        assert [line.split("=", 1)[0] for line in exports] == [
            "export AIRFLOW_CONN_SYMBL_DEFAULT",
            "export AIRFLOW_CONN_AWS_DEFAULT",
        ]
        assert "bucket: symbl-demo" in out and "make stack-stop" in out
        assert (state_dir / "env.sh").read_text().splitlines() == exports
        state = json.loads((state_dir / "stack.json").read_text())
        pids = [p["pid"] for p in state["processes"]]
        assert all(_running(pid) for pid in pids)

        # the script has exited; the servers live on in their own sessions
        for pid in pids:
            assert os.getsid(pid) == pid

        # paste the printed lines into a shell, then use them through Airflow's hooks
        script = "\n".join([*exports, f'exec {sys.executable} -c "$CHECK"'])
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW_CONN_", "AWS_ACCESS", "AWS_SECRET"))}
        env.update(CHECK=USE_EXPORTS, PYTHONPATH=f"{ROOT / 'plugins'}{os.pathsep}{ROOT}")
        used = subprocess.run(["bash", "-c", script], env=env, capture_output=True, text=True, timeout=180)
        assert used.returncode == 0, used.stderr[-3000:]
        result = json.loads(used.stdout.strip().splitlines()[-1])
        assert result["text"] == "hello from the stack test"
        assert result["token"] and result["base"] == state["sandbox_url"]
        assert any(key.endswith("/part-001.mp4") for key in result["samples"])  # the demo's samples are there

        # a second start reports the running stack instead of starting another one
        again = _stack("start", "--dir", str(state_dir), "--sandbox-port", "0", "--s3-port", "0")
        assert "already running" in again.stdout
        assert [p["pid"] for p in json.loads((state_dir / "stack.json").read_text())["processes"]] == pids

        video = tmp_path / "meeting.mp4"
        video.write_bytes(b"\x00\x00\x00\x18ftypmp42")
        put = _stack("put", "--dir", str(state_dir), str(video), "videos/my-meeting/part-001.mp4")
        assert "s3://symbl-demo/videos/my-meeting/part-001.mp4" in put.stdout
    finally:
        stopped = _stack("stop", "--dir", str(state_dir))
    assert all(f"(pid {pid})" in stopped.stdout for pid in pids), stopped.stdout
    deadline = time.monotonic() + 10
    while any(_running(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(_running(pid) for pid in pids)
    assert not (state_dir / "stack.json").exists() and not (state_dir / "env.sh").exists()
    assert "No local stack to stop" in _stack("stop", "--dir", str(state_dir)).stdout


def test_stop_leaves_a_reused_pid_alone(tmp_path):
    """A PID in the state file that now belongs to another process (a reboot, a long pause) is not signalled."""
    other = subprocess.Popen(["sleep", "60"])
    try:
        state_dir = tmp_path / "stack"
        state_dir.mkdir()
        state = {"processes": [{"name": "sandbox", "pid": other.pid, "started_at": "1"}]}
        (state_dir / "stack.json").write_text(json.dumps(state))
        out = _stack("stop", "--dir", str(state_dir)).stdout
        assert f"sandbox (pid {other.pid}) now belongs to another process: left alone" in out
        assert other.poll() is None
    finally:
        other.kill()
        other.wait()


def test_a_port_in_use_is_named_with_the_fix(tmp_path):
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        proc = _stack("start", "--dir", str(tmp_path / "stack"), "--sandbox-port", str(port), check=False)
    assert proc.returncode != 0
    assert f"port {port} on 127.0.0.1 is in use" in proc.stderr
    assert f"make stack SANDBOX_PORT={port + 10}" in proc.stderr
    assert not (tmp_path / "stack" / "stack.json").exists()


@pytest.mark.unit
def test_readme_shows_what_make_stack_prints_by_default():
    from scripts.local_stack import (
        DEFAULT_BUCKET,
        DEFAULT_S3_PORT,
        DEFAULT_SANDBOX_PORT,
        S3Server,
        SandboxServer,
        _exports,
    )

    sandbox = SandboxServer(
        None, f"http://127.0.0.1:{DEFAULT_SANDBOX_PORT}", "sandbox-app-id", "sandbox-app-secret", None
    )
    s3 = S3Server(None, f"http://127.0.0.1:{DEFAULT_S3_PORT}")
    readme = (ROOT / "README.md").read_text()
    section = readme.split("\n## Your own DAG against the local stack\n", 1)[1].split("\n## ", 1)[0]
    for line in _exports(sandbox.conn_json(), s3.conn_json()):
        assert line in section
    assert f"bucket {DEFAULT_BUCKET}" in section and "airflow db migrate" in section
    assert "airflow dags test symbl_append_chain --conf '{" in section and "make stack-stop" in section
    makefile = (ROOT / "Makefile").read_text()
    assert "python -m scripts.local_stack start" in makefile and "python -m scripts.local_stack stop" in makefile
