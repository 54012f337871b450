"""SymblJobSensor without servers: job_ids normalisation, defaults and execute_complete's outcomes."""

from __future__ import annotations

from datetime import timedelta

import pytest
from airflow.sdk.exceptions import AirflowException, AirflowFailException, AirflowSensorTimeout

from symbl_airflow.errors import SymblJobFailedError
from symbl_airflow.sensors import SymblJobSensor, job_sources, resolve_job_ids

pytestmark = pytest.mark.unit

XCOM = {"conversation_id": "c1", "job_ids": ["j1", "j2"], "sources": ["s3://b/1.mp4", "s3://b/2.mp4"]}


@pytest.mark.parametrize(
    ("job_ids", "conversation_id", "expected"),
    [
        ("j1", None, (["j1"], None)),
        (["j1", "j2", "j1"], "c0", (["j1", "j2"], "c0")),
        (("j1",), None, (["j1"], None)),
        (XCOM, None, (["j1", "j2"], "c1")),
        (XCOM, "explicit", (["j1", "j2"], "explicit")),
        ([XCOM, {"conversation_id": "c1", "job_ids": ["j3"], "sources": []}], None, (["j1", "j2", "j3"], "c1")),
        ([XCOM, {"conversation_id": "c2", "job_ids": ["j3"]}], None, (["j1", "j2", "j3"], "c1, c2")),
        (["j0", XCOM], None, (["j0", "j1", "j2"], "c1")),
        ({"conversation_id": "c1", "job_id": "j9"}, None, (["j9"], "c1")),
        (repr(XCOM), None, (["j1", "j2"], "c1")),  # a Jinja-rendered XCom
        ("['j1', 'j2']", None, (["j1", "j2"], None)),
    ],
)
def test_resolve_job_ids(job_ids, conversation_id, expected):
    assert resolve_job_ids(job_ids, conversation_id) == expected


@pytest.mark.parametrize(
    "job_ids",
    [
        "",
        [],
        None,
        42,
        [42],
        b"j1",
        {"conversation_id": "c1", "sources": []},
        [{"job_ids": ["j1"]}, None],
        "[not python",
    ],
)
def test_bad_job_ids_raise_in_execute_not_init(job_ids):
    sensor = SymblJobSensor(task_id="wait", job_ids=job_ids)  # DAG parsing must not fail on a bad value
    with pytest.raises(ValueError, match="job_ids") as exc:
        sensor.execute({})
    assert "SymblAppendVideoOperator" in str(exc.value)  # says what to pass
    assert isinstance(exc.value, AirflowFailException)  # no retry can fix the DAG's value


@pytest.mark.parametrize(
    ("job_ids", "expected"),
    [
        (XCOM, {"j1": "s3://b/1.mp4", "j2": "s3://b/2.mp4"}),
        (
            [XCOM, {"job_ids": ["j3"], "sources": ["s3://b/3.mp4"]}],
            {"j1": "s3://b/1.mp4", "j2": "s3://b/2.mp4", "j3": "s3://b/3.mp4"},
        ),
        ({"job_ids": ["j1", "j2"], "sources": ["s3://b/1.mp4"]}, {}),  # not aligned: nothing guessed
        (repr(XCOM), {"j1": "s3://b/1.mp4", "j2": "s3://b/2.mp4"}),
        (["j1", "j2"], {}),
    ],
)
def test_job_sources(job_ids, expected):
    assert job_sources(job_ids) == expected


def test_defaults():
    sensor = SymblJobSensor(task_id="wait", job_ids="j1")
    assert sensor.template_fields == ("job_ids", "conversation_id", "symbl_conn_id", "aws_conn_id")
    assert sensor.symbl_conn_id == "symbl_default"
    assert sensor.aws_conn_id == "aws_default"
    assert sensor.deferrable is False
    assert sensor.poke_interval == 60


def test_deferrable_poke_interval_default_and_overrides():
    from airflow.sdk import DAG

    assert SymblJobSensor(task_id="a", job_ids="j1", deferrable=True).poke_interval == 10
    assert SymblJobSensor(task_id="b", job_ids="j1", deferrable=True, poke_interval=3).poke_interval == 3
    assert (
        SymblJobSensor(task_id="c", job_ids="j1", deferrable=True, poke_interval=timedelta(seconds=2)).poke_interval
        == 2
    )
    with DAG("symbl_sensor_defaults", schedule=None, default_args={"poke_interval": 7}):
        assert SymblJobSensor(task_id="d", job_ids="j1", deferrable=True).poke_interval == 7


# ---------------------------------------------------------------------------------------------- execute_complete
def _sensor():
    return SymblJobSensor(task_id="wait", job_ids=XCOM, deferrable=True, timeout=120)


def _event(status, **extra):
    return {
        "status": status,
        "message": f"msg-{status}",
        "job_ids": ["j1", "j2"],
        "conversation_id": "c1",
        "statuses": {},
        **extra,
    }


def test_execute_complete_success_returns_job_ids():
    assert _sensor().execute_complete({}, _event("success")) == ["j1", "j2"]


def test_execute_complete_failed_names_job_video_and_conversation_and_fails_without_retry():
    with pytest.raises(SymblJobFailedError, match=r"Symbl job j2 failed \(video s3://b/2.mp4\)") as exc:
        _sensor().execute_complete({}, _event("failed", failed_job_id="j2"))
    assert isinstance(exc.value, AirflowFailException)
    assert "c1" in str(exc.value)
    assert not isinstance(exc.value, AirflowSensorTimeout)


def test_execute_complete_timeout_is_a_sensor_timeout():
    message = "Symbl job(s) of conversation c1 not finished before the deadline: j1 (in_progress), j2 (scheduled)"
    with pytest.raises(AirflowSensorTimeout) as exc:
        _sensor().execute_complete({}, _event("timeout", message=message))
    assert str(exc.value) == f"{message} (sensor timeout: 120 s)"


@pytest.mark.parametrize(("fatal", "cls"), [(False, AirflowException), (True, AirflowFailException)])
def test_execute_complete_error_message_is_not_wrapped_again(fatal, cls):
    message = (
        "Polling Symbl job(s) j1, j2 of conversation c1 failed 5 time(s) in a row; last error: GET /v1/job/j1: HTTP 503"
    )
    with pytest.raises(AirflowException) as exc:
        _sensor().execute_complete({}, _event("error", message=message, fatal=fatal))
    assert type(exc.value) is cls
    assert str(exc.value) == message
    assert not isinstance(exc.value, AirflowSensorTimeout)


@pytest.mark.parametrize("event", [None, {}, {"message": "no status"}, "success", {"status": ""}])
def test_execute_complete_rejects_invalid_events(event):
    with pytest.raises(AirflowException, match="invalid event"):
        _sensor().execute_complete({}, event)


def test_execute_complete_falls_back_to_own_ids():
    event = {"status": "failed", "message": "m"}
    with pytest.raises(SymblJobFailedError) as exc:
        _sensor().execute_complete({}, event)
    assert "j1, j2" in str(exc.value) and "c1" in str(exc.value)


def test_importing_the_sensor_skips_the_http_stack():
    """DAG files import the sensor at parse time; the hooks (requests, HttpHook) load only when it runs."""
    import subprocess
    import sys
    from pathlib import Path

    import symbl_airflow

    plugins = str(Path(symbl_airflow.__file__).resolve().parent.parent)
    code = (
        f"import sys; sys.path.insert(0, {plugins!r}); import symbl_airflow.sensors, symbl_airflow.triggers; "
        "print(sorted(m for m in ('symbl_airflow.hooks', 'requests', 'aiohttp') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]", out.stdout + out.stderr


def test_append_result_with_no_new_jobs_means_nothing_to_wait_for():
    from symbl_airflow.sensors import SymblJobSensor

    sensor = SymblJobSensor(
        task_id="nothing_new", job_ids={"conversation_id": "42", "job_ids": [], "sources": []}, deferrable=True
    )
    assert sensor.execute({}) == []


def test_plain_empty_job_ids_are_still_an_error():
    from symbl_airflow.sensors import SymblJobSensor

    with pytest.raises(ValueError, match="job_ids"):
        SymblJobSensor(task_id="empty", job_ids=[], deferrable=True).execute({})


class _Hook:
    def __init__(self, answer):
        self.answer = answer

    def get_job(self, job_id):
        if isinstance(self.answer, Exception):
            raise self.answer
        from symbl_airflow.hooks import SymblJob

        return SymblJob(job_id, self.answer)


def test_poke_unknown_job_fails_without_retry_naming_the_video():
    from symbl_airflow.errors import SymblNotFoundError

    sensor = SymblJobSensor(task_id="wait", job_ids=XCOM)
    sensor.__dict__["hook"] = _Hook(SymblNotFoundError("Job not found", status=404, endpoint="/v1/job/j1"))
    with pytest.raises(AirflowFailException, match=r"Symbl job j1 \(video s3://b/1.mp4\) was not found") as exc:
        sensor.poke({})
    assert "conversation_id=c1" in str(exc.value) and "HTTP 404: Job not found" in str(exc.value)


def test_poke_failed_job_fails_without_retry_naming_the_video():
    sensor = SymblJobSensor(task_id="wait", job_ids=XCOM)
    sensor.__dict__["hook"] = _Hook("failed")
    with pytest.raises(SymblJobFailedError, match=r"Symbl job j1 failed \(video s3://b/1.mp4\)") as exc:
        sensor.poke({})
    assert isinstance(exc.value, AirflowFailException)
