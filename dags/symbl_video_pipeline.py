"""
### Incremental S3 -> Symbl pipeline: every conversation folder becomes one Symbl conversation

Input layout (a conversation is a folder `folder_depth` levels below `input_prefix`; its parts are
the audio and video files directly in it, appended in order):

    s3://<bucket>/<input_prefix><conversation key>/<part>      (.mp4 .m4a .mov .wav .mp3 .webm ...)
    s3://<bucket>/<input_prefix><conversation key>/_symbl.json     <- the conversation ledger

`input_prefix` and `output_prefix` are Jinja templates (`videos/{{ ds_nodash }}/` follows a daily
schedule); `folder_depth=2` makes `rec/2026-12-01/standup/` conversation `2026-12-01/standup`, named so
in Symbl. Objects that are not parts (`notes.txt`, captions, media in a subfolder or above the
conversation folders) are named in the discover task's log and its XCom `ignored`, with the reason.

Each run lists the folders, and maps every conversation whose ledger lacks some of its parts
(in parallel, limited by the `symbl` pool): **append** sends the new parts in order, each only
after the previous part's Symbl job completed (deferred between parts: no worker slot held),
**wait** defers until the last job is done, **insights** writes one JSON file per insight kind to
`s3://<bucket>/<output_prefix><conversation key>/`.

The ledger, not this DAG, guarantees each part reaches Symbl once, in order, with no hole after a
failed job and one writer at a time, across runs, tasks and deployments. A stopped or blocked
conversation fails its append task with a message that says what to do (`python -m
symbl_airflow.ledger show <ledger uri>` prints its state). Params: `on_unconfirmed` settles a part
whose send was never confirmed (`resend` if Symbl lacks it, `mark_sent` if it has it).

Discovery costs what changed, not what exists: one listing plus a small index
(`<input_prefix>_symbl_index.json`) so only folders whose objects or ledger changed have their ledger
read; at most `max_conversations` are mapped per run (never above `[core] max_map_length`), the rest
are left to the next run. For uploads to reach Symbl seconds after they land, use the event-driven
`symbl_video_events` DAG instead (S3 notifications through SQS).

Parsing this file does no network I/O: all S3 and Symbl calls happen inside tasks.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta

from airflow.sdk import DAG, task

from symbl_airflow.pipeline import PipelineSettings, conversation_group, pipeline_params

SETTINGS = PipelineSettings()
#: A cron expression or preset (e.g. "@hourly") to run on a schedule; unset: triggered by hand or API.
SCHEDULE = os.environ.get("SYMBL_PIPELINE_SCHEDULE") or None

with DAG(
    dag_id="symbl_video_pipeline",
    description="Append new S3 video parts to Symbl conversations and store their insights",
    schedule=SCHEDULE,
    start_date=datetime(2024, 1, 1),
    catchup=False,
    max_active_runs=1,
    render_template_as_native_obj=True,
    default_args={"retries": 2, "retry_delay": timedelta(seconds=10)},
    params=pipeline_params(SETTINGS),
    tags=["symbl", "example"],
    doc_md=__doc__,
) as dag:

    @task
    def discover(params=None) -> list[dict]:
        """Map the conversation folders whose ledger lacks some of their parts (capped per run)."""
        import logging

        from airflow.providers.amazon.aws.hooks.s3 import S3Hook
        from airflow.sdk import get_current_context

        from symbl_airflow.discovery import scan
        from symbl_airflow.pipeline import layout_args, mapped_work

        log = logging.getLogger("airflow.task")
        context = get_current_context()
        layout = layout_args(params, context)
        found = scan(S3Hook(aws_conn_id=SETTINGS.aws_conn_id), **layout)
        log.info(
            "s3://%s/%s, folder_depth %d: %d conversation folder(s): %d unchanged since the last look, %d mapped, "
            "%d left for the next run (cap %d); %d object(s) not parts; S3 requests %s",
            layout["bucket"],
            layout["prefix"],
            layout["folder_depth"],
            found.folders,
            found.skipped_unchanged,
            len(found.work),
            len(found.deferred),
            layout["limit"],
            found.ignored_count,
            found.requests,
        )
        return mapped_work(found, params, context)

    conversation_group(SETTINGS).expand_kwargs(discover())
