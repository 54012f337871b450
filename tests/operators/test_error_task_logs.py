"""What a task log says when the Symbl connection is wrong: real task runs (``dag.test()``) on the sandbox.

A wrong port (nothing listens), a host name that does not resolve, a wrong App Secret: the log names
the cause whole and the fix, once, in public words, with one traceback.
"""

from __future__ import annotations

import json
import re

import pytest

from tests.airflow_helpers import make_dag, ti_states
from tests.log_lines import parse

pytestmark = pytest.mark.integration

FAST = {"max_attempts": 2, "backoff_base": 0.01}


def _conn(sandbox, monkeypatch, case: str) -> str:
    from scripts.local_stack import free_port

    conn = json.loads(sandbox.conn_json())
    conn["extra"] = FAST
    if case == "port":
        conn["host"] = f"http://127.0.0.1:{free_port()}"
    elif case == "host":
        conn["host"] = "http://symbl-sandbox.invalid:8900"
    else:
        conn["password"] = "not-the-secret"
    monkeypatch.setenv("AIRFLOW_CONN_SYMBL_WRONG", json.dumps(conn))
    return conn["host"]


def _expected(case: str, host: str) -> str:
    if case == "secret":
        return (
            "Symbl API POST /oauth2/token:generate failed (HTTP 401): Symbl refused the App ID / App Secret of "
            "connection 'symbl_wrong': Invalid appId or appSecret. Check login (App ID) and password (App Secret) "
            "of connection 'symbl_wrong'"
        )
    cause = "connection refused" if case == "port" else "host name not resolved: "
    return f"Symbl API POST /oauth2/token:generate: no response after 2 attempt(s): cannot connect to {host} ({cause}"


def _failure(output: str) -> str:
    """The text of the failed task's log from its error line to the end of its traceback."""
    start = output.index("Task failed with exception")
    end = output.find("::group::Post Execute", start)
    return output[start : output.rfind("\n", start, end) if end > 0 else None]


def _check_common(failure: str, output: str) -> None:
    assert failure.count("Traceback (most recent call last)") == 1, failure
    assert "The above exception was the direct cause" not in failure
    assert "During handling of the above exception" not in failure
    assert "tenacity" not in failure  # the retry machinery's frames say nothing to the reader
    assert not re.search(r"[^.]\.\.[^.]", failure)  # no "secret.. Check"
    assert "not-the-secret" not in output and "sandbox-app-secret" not in output
    # the only error lines are the failure itself: no XCom miss from the link lookup
    errors = [line for line in parse(output) if line.level == "error"]
    assert [line.message for line in errors] == ["Task failed with exception"], errors


@pytest.mark.parametrize("case", ["port", "host", "secret"])
@pytest.mark.parametrize("task", ["sensor", "insights"])
def test_wrong_connection_in_the_task_log(task, case, clean_sandbox, s3, bucket, run_dag, monkeypatch, capfd):
    from symbl_airflow import SymblInsightsOperator, SymblJobSensor

    host = _conn(clean_sandbox, monkeypatch, case)
    with make_dag("wrong_conn") as dag:
        if task == "sensor":
            SymblJobSensor(task_id="t", job_ids=["job-1"], symbl_conn_id="symbl_wrong", poke_interval=0.1)
        else:
            SymblInsightsOperator(
                task_id="t", conversation_id="123", output_uri=f"s3://{bucket}/out/", symbl_conn_id="symbl_wrong"
            )
    capfd.readouterr()
    dr = run_dag(dag)
    assert ti_states(dr) == {"t": "failed"}
    output = capfd.readouterr().out
    failure = _failure(output)
    last = failure.rstrip().splitlines()[-1]
    error_class = "SymblAuthError" if case == "secret" else "SymblConnectionError"
    assert last.startswith(f"symbl_airflow.errors.{error_class}: {_expected(case, host)}"), last
    if case != "secret":  # whole: it ends with what to check, not mid-sentence
        assert last.endswith(
            "Check the host of connection 'symbl_wrong' (the Symbl base URL, e.g. https://api.symbl.ai) and that "
            "it is reachable from here"
        )
    _check_common(failure, output)


@pytest.mark.parametrize("case", ["port", "secret"])
def test_wrong_connection_in_the_append_task_log(case, clean_sandbox, s3, bucket, mp4, run_dag, monkeypatch, capfd):
    """The hook's part of the append task's message; the operator's own wrapping is checked below."""
    from symbl_airflow import SymblAppendVideoOperator

    host = _conn(clean_sandbox, monkeypatch, case)
    s3.client().put_object(Bucket=bucket, Key="m/part-1.mp4", Body=mp4.make())
    with make_dag("wrong_conn") as dag:
        SymblAppendVideoOperator(
            task_id="t",
            source=f"s3://{bucket}/m/part-1.mp4",
            ledger_uri=f"s3://{bucket}/m/_symbl.json",
            symbl_conn_id="symbl_wrong",
        )
    capfd.readouterr()
    dr = run_dag(dag)
    assert ti_states(dr) == {"t": "failed"}
    output = capfd.readouterr().out
    failure = _failure(output)
    last = failure.rstrip().splitlines()[-1]
    assert f"s3://{bucket}/m/part-1.mp4 was not accepted by Symbl: {_expected(case, host)}" in last, last
    assert not re.search(r"[^.]\.\.[^.]", failure)
    assert clean_sandbox.ledger() == []  # nothing reached Symbl
    errors = [line for line in parse(output) if line.level == "error"]
    assert [line.message for line in errors] == ["Task failed with exception"], errors


def test_append_task_log_names_a_public_class_once(clean_sandbox, s3, bucket, mp4, run_dag, monkeypatch, capfd):
    from symbl_airflow import SymblAppendVideoOperator

    _conn(clean_sandbox, monkeypatch, "port")
    s3.client().put_object(Bucket=bucket, Key="m/part-1.mp4", Body=mp4.make())
    with make_dag("wrong_conn") as dag:
        SymblAppendVideoOperator(task_id="t", source=f"s3://{bucket}/m/part-1.mp4", symbl_conn_id="symbl_wrong")
    capfd.readouterr()
    run_dag(dag)
    output = capfd.readouterr().out
    failure = _failure(output)
    assert "_Refused" not in failure
    _check_common(failure, output)
