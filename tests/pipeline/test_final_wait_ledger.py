"""After a green run of the example pipeline the ledger says ``completed`` for every part, last one included.

The pipeline's final wait is the sensor (append -> wait -> insights): it writes the jobs' outcome to each
conversation's ledger. Checked three ways a person would look: the ledger object, ``python -m
symbl_airflow.ledger show`` from a fresh process, and the demo's summary.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
CONVERSATIONS = {
    "alpha": [
        [("Alice", "Alpha part one."), ("Bob", "I will send the budget tomorrow.")],
        [("Alice", "Alpha part two."), ("Bob", "Can we review the plan?")],
    ],
    "beta": [[("Carol", "Beta kicks off here."), ("Dan", "Let's schedule a follow up call.")]],
}


def _load_pipeline(monkeypatch):
    from airflow.dag_processing.dagbag import DagBag

    monkeypatch.setenv("SYMBL_PIPELINE_POLL_INTERVAL", "0.2")
    monkeypatch.delenv("SYMBL_PIPELINE_POOL", raising=False)
    bag = DagBag(dag_folder=str(ROOT / "dags" / "symbl_video_pipeline.py"))
    assert not bag.import_errors, bag.import_errors
    return bag.dags["symbl_video_pipeline"]


def _ledger_cli(*args: str) -> str:
    """``python -m symbl_airflow.ledger`` in a fresh process, with the paths ``env.sh`` sets."""
    env = {
        **os.environ,
        "PYTHONPATH": f"{ROOT / 'plugins'}{os.pathsep}{ROOT}",
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
    }
    out = subprocess.run(
        [sys.executable, "-m", "symbl_airflow.ledger", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout


def test_green_run_leaves_every_part_completed(clean_sandbox, s3, bucket, mp4, run_dag, monkeypatch, capsys):
    client = s3.client()
    for key, parts in CONVERSATIONS.items():
        for i, cues in enumerate(parts, start=1):
            client.put_object(Bucket=bucket, Key=f"videos/{key}/part-{i:03d}.mp4", Body=mp4.make(cues))
    conf = {"bucket": bucket, "input_prefix": "videos/", "output_prefix": "insights/"}
    dr = run_dag(_load_pipeline(monkeypatch), run_conf=conf)
    assert dr.state == "success", {ti.task_id: str(ti.state) for ti in dr.get_task_instances()}

    jobs = {e["jobId"] for e in clean_sandbox.ledger()}
    assert len(jobs) == 3
    for key, parts in CONVERSATIONS.items():
        ledger_uri = f"s3://{bucket}/videos/{key}/_symbl.json"
        stored = json.loads(client.get_object(Bucket=bucket, Key=f"videos/{key}/_symbl.json")["Body"].read())
        assert [p["state"] for p in stored["parts"]] == ["completed"] * len(parts), stored["parts"]
        assert all(p["job_id"] in jobs and p["finished_at"] for p in stored["parts"])
        assert stored["lease"] is None and not stored["stopped"]

        shown = _ledger_cli("show", ledger_uri)
        rows = [line.split() for line in shown.splitlines() if line.startswith("  ")]
        assert [row[1] for row in rows] == ["completed"] * len(parts), shown
        assert "accepted" not in shown
        assert json.loads(_ledger_cli("show", ledger_uri, "--json"))["parts"] == stored["parts"]

    # The demo's summary reads the same ledgers: every part line ends with its state.
    import scripts.demo as demo

    monkeypatch.setattr(demo, "BUCKET", bucket)
    monkeypatch.setattr(demo, "CONVERSATIONS", CONVERSATIONS)
    capsys.readouterr()
    demo._summary(client, clean_sandbox)
    summary = capsys.readouterr().out
    part_lines = [line for line in summary.splitlines() if ".mp4  job " in line]
    assert len(part_lines) == 3, summary
    assert all(line.rstrip().endswith("completed") for line in part_lines), summary
    assert "(no duplicates: True)" in summary
