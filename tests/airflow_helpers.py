"""Helpers for tests that build small DAGs and run them with ``dag.test()`` (via the ``run_dag`` fixture)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

#: Values handed out of DAG runs by ``collector`` tasks (dag.test() runs tasks in this process).
RESULTS: dict[str, object] = {}


def make_dag(prefix: str = "test", **kwargs):
    """A DAG with a unique id, no schedule and no retries unless a task asks for them."""
    from airflow.sdk import DAG

    return DAG(
        dag_id=f"{prefix}_{uuid.uuid4().hex[:10]}",
        schedule=None,
        start_date=datetime(2024, 1, 1),
        catchup=False,
        default_args={"retries": 0, "retry_delay": timedelta(seconds=0)},
        **kwargs,
    )


def collector(key: str):
    """A task that stores its input in ``RESULTS[key]``: how tests read an upstream XCom."""
    from airflow.sdk import task

    @task(task_id=f"collect_{key}")
    def collect(value):
        RESULTS[key] = value

    return collect


def ti_states(dr) -> dict[str, str]:
    return {ti.task_id: str(ti.state) for ti in dr.get_task_instances()}


def task_xcoms(dag_id: str, task_id: str) -> dict[str, object]:
    """Every XCom a task of a ``dag.test()`` run pushed, by key (deserialized)."""
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.execute(
            select(XComModel.key, XComModel.value).where(XComModel.dag_id == dag_id, XComModel.task_id == task_id)
        ).all()
    return {key: XComModel.deserialize_value(type("Row", (), {"value": value})()) for key, value in rows}
