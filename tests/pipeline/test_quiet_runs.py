"""Green runs on ordinary inputs are quiet, and the examples are safe to run twice.

The example DAGs and the README's "Using the plugin" snippet run through ``dag.test()`` on the sandbox
and a moto S3 server; every log line they print is read: no error line of ours, of a task or from an
XCom miss, and no warning of ours but those a person must look at (tests/log_lines.py).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.airflow_helpers import make_dag, task_xcoms, ti_states
from tests.log_lines import PERSON_MUST_LOOK, noise, parse

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
LINK_XCOM = "_link_SymblConversationLink"
CONVERSATIONS = {
    "standup": [
        [("Alice", "Good morning team."), ("Bob", "Yesterday I finished the migration.")],
        [("Carol", "I am blocked on staging."), ("Bob", "Can you share the error log?")],
    ],
    "customer-call": [[("Dana", "How is the pilot going?"), ("Erin", "Pricing is a concern.")]],
}


def _quiet(output: str, *, work: bool = True) -> list:
    lines = parse(output)
    assert lines, "no log line was read: the log format changed, this check would pass on anything"
    if work:
        assert any(line.ours for line in lines), "no log line of the plugin was read"
    assert noise(lines) == []
    return lines


def _load(monkeypatch, name: str):
    from airflow.dag_processing.dagbag import DagBag

    monkeypatch.setenv("SYMBL_PIPELINE_POLL_INTERVAL", "0.2")
    monkeypatch.delenv("SYMBL_PIPELINE_POOL", raising=False)
    bag = DagBag(dag_folder=str(ROOT / "dags" / f"{name}.py"))
    assert not bag.import_errors, bag.import_errors
    return bag.dags[name]


def _conversations(sandbox) -> set[str]:
    return {e["conversationId"] for e in sandbox.ledger()}


def test_pipeline_green_runs_are_quiet(clean_sandbox, s3, bucket, mp4, run_dag, monkeypatch, capfd):
    """The demo's shape: a first run, a run with one new part, a run with nothing new."""
    client = s3.client()
    for conv, parts in CONVERSATIONS.items():
        for i, cues in enumerate(parts, start=1):
            client.put_object(Bucket=bucket, Key=f"videos/{conv}/part-{i:03d}.mp4", Body=mp4.make(cues))
    conf = {"bucket": bucket, "input_prefix": "videos/", "output_prefix": "insights/"}
    dag = _load(monkeypatch, "symbl_video_pipeline")

    capfd.readouterr()
    dr = run_dag(dag, run_conf=conf)
    assert dr.state == "success", ti_states(dr)
    lines = _quiet(capfd.readouterr().out)
    assert sum("accepted" in line.message for line in lines if line.ours) >= 3  # the appends were read
    # the extra link still works without reading XCom back: every Symbl task of the run has its URL
    for task_id in ("conversation.append", "conversation.wait", "conversation.insights"):
        link = task_xcoms(dag.dag_id, task_id).get(LINK_XCOM)
        assert isinstance(link, str) and link.startswith(clean_sandbox.url), (task_id, link)

    client.put_object(Bucket=bucket, Key="videos/standup/part-003.mp4", Body=mp4.make([("Alice", "One more.")]))
    for expected_sends, work in ((4, True), (4, False)):  # one new part, then nothing new
        dr = run_dag(_load(monkeypatch, "symbl_video_pipeline"), run_conf=conf)
        assert dr.state == "success", ti_states(dr)
        _quiet(capfd.readouterr().out, work=work)
        assert len(clean_sandbox.ledger()) == expected_sends


def test_chain_dag_is_safe_to_run_twice_and_quiet(clean_sandbox, s3, bucket, mp4, run_dag, monkeypatch, capfd):
    client = s3.client()
    for i, cues in enumerate(CONVERSATIONS["standup"], start=1):
        client.put_object(Bucket=bucket, Key=f"videos/standup/part-{i:03d}.mp4", Body=mp4.make(cues))
    conf = {"bucket": bucket, "first": "videos/standup/part-001.mp4", "second": "videos/standup/part-002.mp4"}
    dag = _load(monkeypatch, "symbl_append_chain")
    capfd.readouterr()
    for _ in range(2):
        dr = run_dag(dag, run_conf=conf)
        assert dr.state == "success", ti_states(dr)
        _quiet(capfd.readouterr().out)
    assert [e["method"] for e in clean_sandbox.ledger()] == ["POST", "PUT"]  # the second run sent nothing
    assert len(_conversations(clean_sandbox)) == 1


def test_refusals_that_recover_stay_quiet(clean_sandbox, s3, bucket, mp4, run_dag, monkeypatch, capfd):
    """A 429 on the upload, a 503 on a job poll and an expired token: retried, logged at info, no warning."""
    client = s3.client()
    for i, cues in enumerate(CONVERSATIONS["standup"], start=1):
        client.put_object(Bucket=bucket, Key=f"videos/standup/part-{i:03d}.mp4", Body=mp4.make(cues))
    busy = {"message": "Too Many Requests"}
    clean_sandbox.fault(
        match={"method": "POST", "path": "/v1/process/video"},
        action="status",
        status=429,
        body=busy,
        headers={"Retry-After": "0"},
        times=1,
    )
    clean_sandbox.fault(match={"method": "GET", "path": "/v1/job/*"}, action="status", status=503, times=1)
    conf = {"bucket": bucket, "first": "videos/standup/part-001.mp4", "second": "videos/standup/part-002.mp4"}
    dag = _load(monkeypatch, "symbl_append_chain")
    capfd.readouterr()
    dr = run_dag(dag, run_conf=conf)
    assert dr.state == "success", ti_states(dr)
    lines = _quiet(capfd.readouterr().out)
    retries = [line for line in lines if line.ours and line.message.startswith("[attempt 1/")]
    assert {line.message.split(" failed")[0] for line in retries} >= {"[attempt 1/5] POST /v1/process/video"}
    assert all(line.level == "info" for line in retries)
    assert [e["method"] for e in clean_sandbox.ledger()] == ["POST", "PUT"]


def readme_snippet() -> str:
    """The first Python block of the README's "Using the plugin" section."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("\n## Using the plugin\n", 1)[1].split("\n## ", 1)[0]
    return re.search(r"```python\n(.*?)```", section, re.S)[1]


def test_readme_snippet_is_safe_to_run_twice(clean_sandbox, s3, bucket, mp4, run_dag, capfd):
    snippet = readme_snippet()
    assert "ledger_uri" in snippet
    keys = sorted(set(re.findall(r"s3://bucket/(meeting/part-\d+\.mp4)", snippet)))
    assert len(keys) >= 2, snippet
    for i, key in enumerate(keys):
        s3.client().put_object(Bucket=bucket, Key=key, Body=mp4.make([("Alice", f"Part {i + 1} of the meeting.")]))
    code = snippet.replace("s3://bucket/", f"s3://{bucket}/")
    with make_dag("readme") as dag:
        exec(compile(code, "README.md", "exec"), {})  # the README's own example
    for task in dag.tasks:
        if hasattr(task, "poke_interval"):
            task.poke_interval = 0.2
    capfd.readouterr()
    for _ in range(2):
        dr = run_dag(dag)
        assert dr.state == "success", ti_states(dr)
        _quiet(capfd.readouterr().out)
    assert [e["method"] for e in clean_sandbox.ledger()] == ["POST"] + ["PUT"] * (len(keys) - 1)
    assert len(_conversations(clean_sandbox)) == 1


@pytest.mark.unit
def test_the_log_check_sees_noise():
    """The check itself: what fails a green run, and what a person must look at."""
    head = "2026-12-06T20:04:47.640394Z"
    ours = "[airflow.task.operators.symbl_airflow.operators.SymblAppendVideoOperator] loc=operators.py:1"
    output = "\n".join(
        [
            f"{head} [info     ] Part 1/2 accepted {ours}",
            f"{head} [error    ] XCom not found                 [airflow.sdk.api.client] dag_id=d key=k",
            f"{head} [error    ] Task failed with exception     [task] loc=task_runner.py:1651",
            f"{head} [warning  ] [attempt 1/5] GET /v1/job/j failed (HTTP 503); retrying in 1 s {ours}",
            f"{head} [warning  ] s3://b/v/part-002.mp4 is late (a later part is already appended) {ours}",
            f"{head} [warning  ] Something Airflow says [airflow.models.dag] loc=dag.py:1",
            "Traceback (most recent call last):",
        ]
    )
    lines = parse(output)
    assert [(line.level, line.ours) for line in lines] == [
        ("info", True),
        ("error", False),
        ("error", False),
        ("warning", True),
        ("warning", True),
        ("warning", False),
    ]
    assert lines[3].message == "[attempt 1/5] GET /v1/job/j failed (HTTP 503); retrying in 1 s"
    bad = noise(lines)
    assert [b.split("] ", 1)[1][:14] for b in bad] == ["XCom not found", "Task failed wi", "[attempt 1/5] "]
    assert all(p.pattern for p in PERSON_MUST_LOOK.values())
