"""
Incremental S3 -> Symbl pipeline: every conversation folder becomes one Symbl conversation.

Input layout (part order = S3 key order, so name parts ``part-001.mp4``, ``part-002.mp4`` ...)::

    s3://<bucket>/<input_prefix><conversation key>/<part>.mp4
    s3://<bucket>/<input_prefix><conversation key>/_symbl.json     <- state, written by this DAG

Each run discovers conversations with parts not yet in their state file, and for each of them (in
parallel, limited by the ``symbl`` pool) appends the new parts in key order, waits deferrably for
their Symbl jobs, and writes insights to ``s3://<bucket>/<output_prefix><conversation key>/``.
A part whose ETag changed after it was appended is reported, never re-sent. ``max_active_runs=1``
keeps two runs from interleaving appends to one conversation.

Parsing this file does no network I/O: all S3 and Symbl calls happen inside tasks.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta

from airflow.sdk import DAG, Asset, Param, task, task_group

from symbl_airflow.insights import SymblInsightsOperator
from symbl_airflow.operators import SymblAppendVideoOperator
from symbl_airflow.sensors import SymblJobSensor

SYMBL_CONN_ID = os.environ.get("SYMBL_PIPELINE_SYMBL_CONN_ID", "symbl_default")
AWS_CONN_ID = os.environ.get("SYMBL_PIPELINE_AWS_CONN_ID", "aws_default")
#: Pool sized to the Symbl account's concurrent-job limit (create it with include_deferred=True).
POOL = os.environ.get("SYMBL_PIPELINE_POOL", "symbl")
#: Seconds between Symbl job checks in the triggerer, and how long to wait for a conversation's jobs.
POLL_INTERVAL = float(os.environ.get("SYMBL_PIPELINE_POLL_INTERVAL", "10"))
WAIT_TIMEOUT = float(os.environ.get("SYMBL_PIPELINE_WAIT_TIMEOUT", str(6 * 3600)))
#: Updated after each conversation's insights are written; the event extra carries
#: ``{"conversation_id", "index_uri"}``. A name, not an ``s3://`` URI: an S3 URI makes Airflow import
#: boto3 (its S3 URI normalizer) while parsing this file, which triples the parse time.
INSIGHTS_ASSET = Asset(name=os.environ.get("SYMBL_PIPELINE_ASSET", "symbl_insights"))

with DAG(
    dag_id="symbl_video_pipeline",
    description="Append new S3 video parts to Symbl conversations and store their insights",
    schedule=None,
    start_date=datetime(2024, 1, 1),
    catchup=False,
    max_active_runs=1,
    render_template_as_native_obj=True,
    default_args={"retries": 2, "retry_delay": timedelta(seconds=10)},
    params={
        "bucket": Param("symbl-demo", type="string", description="S3 bucket holding videos and outputs"),
        "input_prefix": Param("videos/", type="string", description="prefix of <conversation>/<part>.mp4"),
        "output_prefix": Param("insights/", type="string", description="insights go to <prefix><conversation>/"),
        "upload_mode": Param("stream", enum=["stream", "url"]),
        "on_unconfirmed": Param(
            "fail",
            enum=["fail", "resend", "skip"],
            description="a part sent without Symbl's answer: fail (default), or after checking Symbl, "
            "resend it (missing there) or skip it (present there)",
        ),
        "symbl_options": Param(
            {"enable_summary": True, "detect_entities": True},
            type="object",
            description="Symbl processing options in snake_case (see SymblOptions)",
        ),
    },
    tags=["symbl", "example"],
) as dag:

    @task
    def discover(params=None) -> list[dict]:
        """List conversation folders with parts not yet appended (the only S3 scan of the run)."""
        import json
        import logging

        from airflow.providers.amazon.aws.hooks.s3 import S3Hook

        from symbl_airflow.state import STATE_FILE_NAME

        log = logging.getLogger("airflow.task")
        bucket, prefix = params["bucket"], params["input_prefix"]
        prefix = prefix if prefix.endswith("/") or not prefix else prefix + "/"
        s3 = S3Hook(aws_conn_id=AWS_CONN_ID)
        folders: dict[str, dict[str, str]] = {}
        for meta in s3.iter_file_metadata(prefix=prefix, bucket_name=bucket):
            rest = meta["Key"][len(prefix) :]
            conversation, _, part = rest.partition("/")
            if not part or "/" in part:
                continue
            entry = folders.setdefault(conversation, {})
            if part == STATE_FILE_NAME or part.lower().endswith(".mp4"):
                entry[part] = meta["ETag"].strip('"')

        work = []
        for conversation in sorted(folders):
            entry = folders[conversation]
            state_key = f"{prefix}{conversation}/{STATE_FILE_NAME}"
            done: dict[str, str] = {}
            if STATE_FILE_NAME in entry:
                state = json.loads(s3.read_key(state_key, bucket_name=bucket))
                done = {p["uri"]: p["etag"] for p in state.get("parts", [])}
            parts = sorted(p for p in entry if p != STATE_FILE_NAME)
            uris = [f"s3://{bucket}/{prefix}{conversation}/{p}" for p in parts]
            new = [u for u in uris if u not in done]
            for uri, part in zip(uris, parts, strict=True):
                if uri in done and done[uri] != entry[part]:
                    log.warning("%s changed since it was appended; it will not be re-sent", uri)
            if not new:
                log.info("%s: nothing new (%d part(s) already in Symbl)", conversation, len(uris))
                continue
            log.info("%s: %d new part(s) of %d", conversation, len(new), len(uris))
            work.append(
                {
                    "source": uris,
                    "state_uri": f"s3://{bucket}/{state_key}",
                    "output_uri": f"s3://{bucket}/{params['output_prefix']}{conversation}/",
                }
            )
        return work

    @task_group
    def conversation(source, state_uri, output_uri):
        """One conversation: append (in key order) -> wait (deferred) -> insights."""
        append = SymblAppendVideoOperator(
            task_id="append",
            source=source,
            state_uri=state_uri,
            symbl_conn_id=SYMBL_CONN_ID,
            aws_conn_id=AWS_CONN_ID,
            upload_mode="{{ params.upload_mode }}",
            on_unconfirmed="{{ params.on_unconfirmed }}",
            symbl_options="{{ params.symbl_options }}",
            pool=POOL,
        )
        wait = SymblJobSensor(
            task_id="wait",
            job_ids=append.output,
            symbl_conn_id=SYMBL_CONN_ID,
            deferrable=True,
            poke_interval=POLL_INTERVAL,
            timeout=WAIT_TIMEOUT,
            pool=POOL,
        )
        insights = SymblInsightsOperator(
            task_id="insights",
            conversation_id=append.output,
            output_uri=output_uri,
            symbl_conn_id=SYMBL_CONN_ID,
            aws_conn_id=AWS_CONN_ID,
            outlets=[INSIGHTS_ASSET],
        )
        append >> wait >> insights

    conversation.expand_kwargs(discover())
