"""
The literal shape of a Symbl pipeline: append >> append >> sensor >> insights.

The first task creates the conversation (POST), the second appends to it (PUT), the sensor waits
in the triggerer for both jobs, and the insights task writes one JSON file per insight kind.
Trigger it with ``{"bucket": ..., "first": "key1.mp4", "second": "key2.mp4"}`` as the run conf.

Both append tasks share the conversation's ledger (``_symbl.json`` beside the first video), so the
guarantees hold across the two tasks and across runs: the second part goes out only after the
first part's job completed, a rerun sends nothing twice, and a second writer waits for the first.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta

from airflow.sdk import DAG, Param

from symbl_airflow.insights import SymblInsightsOperator
from symbl_airflow.operators import SymblAppendVideoOperator
from symbl_airflow.sensors import SymblJobSensor

POLL_INTERVAL = float(os.environ.get("SYMBL_PIPELINE_POLL_INTERVAL", "10"))
#: The conversation's ledger: beside the first video (the pipeline's own layout uses the same file).
LEDGER = "s3://{{ params.bucket }}/{{ params.first.rsplit('/', 1)[0] }}/_symbl.json"

with DAG(
    dag_id="symbl_append_chain",
    description="Two videos, one Symbl conversation: append >> append >> wait >> insights",
    schedule=None,
    start_date=datetime(2024, 1, 1),
    catchup=False,
    render_template_as_native_obj=True,
    default_args={"retries": 2, "retry_delay": timedelta(seconds=10)},
    params={
        "bucket": Param("symbl-demo", type="string"),
        "first": Param("videos/standup/part-001.mp4", type="string"),
        "second": Param("videos/standup/part-002.mp4", type="string"),
        "output_prefix": Param("chain-insights/", type="string"),
    },
    tags=["symbl", "example"],
    doc_md=__doc__,
) as dag:
    first = SymblAppendVideoOperator(
        task_id="append_first",
        source="s3://{{ params.bucket }}/{{ params.first }}",
        ledger_uri=LEDGER,
        deferrable=True,
        poll_interval=POLL_INTERVAL,
        name="{{ dag.dag_id }} {{ run_id }}",
        enable_summary=True,
    )
    second = SymblAppendVideoOperator(
        task_id="append_second",
        source="s3://{{ params.bucket }}/{{ params.second }}",
        conversation_id="{{ ti.xcom_pull(task_ids='append_first')['conversation_id'] }}",
        ledger_uri=LEDGER,
        deferrable=True,
        poll_interval=POLL_INTERVAL,
        enable_summary=True,
    )
    wait = SymblJobSensor(
        task_id="wait",
        job_ids="{{ ti.xcom_pull(task_ids=['append_first', 'append_second']) }}",
        deferrable=True,
        poke_interval=POLL_INTERVAL,
        timeout=6 * 3600,
    )
    insights = SymblInsightsOperator(
        task_id="insights",
        conversation_id=second.output,
        output_uri="s3://{{ params.bucket }}/{{ params.output_prefix }}{{ run_id | replace(':', '_') }}/",
    )
    first >> second >> wait >> insights
