"""
### Event-driven S3 -> Symbl pipeline: a video is in Symbl seconds after it lands

The bucket sends `s3:ObjectCreated:*` notifications to an SQS queue; an `AssetWatcher` (common-messaging's
`MessageQueueTrigger`, `sqs` scheme) in the triggerer turns them into events of the asset
`symbl_video_uploads`, and every batch of events starts a run of this DAG. A run handles only the
conversation folders its events name (one folder listing and one ledger read each): no scan of the
prefix, so its cost follows the new uploads, not the bucket's history.

Events only say where to look: each folder's **ledger** decides what is sent, so a duplicate,
batched or out-of-order notification is harmless. A notification for any object in a conversation
folder (`folder_depth` levels below `input_prefix`) points at that folder; its listing names what is
not a part, as the scheduled pipeline does. The pipeline's own `_symbl*.json` writes and objects in
other buckets or prefixes point nowhere. The per-conversation work is the same task group as
`symbl_video_pipeline` (append in order, each part after the previous job completed; wait,
deferred; insights).

Set `SYMBL_EVENTS_QUEUE_URL` (the SQS queue URL) where the DAG processor and the triggerer run;
without it this DAG is not defined. Send the bucket's `s3:ObjectCreated:*` notifications to that
queue with one filter per media suffix (prefix = `input_prefix`; README "Scheduled or event-driven"
shows how: a prefix-only filter would let every ledger write start a run). Event runs have no logical
date, so keep `input_prefix` fixed (no `{{ ds }}`) and let `folder_depth` reach dated folders.
A run that names more than `max_conversations` folders leaves the rest to the scheduled pipeline.

Parsing this file does no network I/O.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta

from airflow.sdk import DAG, Asset, AssetWatcher, task

from symbl_airflow.pipeline import PipelineSettings, conversation_group, pipeline_params

SETTINGS = PipelineSettings()
QUEUE_URL = os.environ.get("SYMBL_EVENTS_QUEUE_URL", "")
#: Seconds the watcher waits between SQS receives when the queue was empty (a receive long-polls 1 s).
EVENTS_POLL_SECONDS = int(os.environ.get("SYMBL_EVENTS_POLL_SECONDS", "5"))

if QUEUE_URL:
    from airflow.providers.common.messaging.triggers.msg_queue import MessageQueueTrigger

    UPLOADS = Asset(
        name="symbl_video_uploads",
        watchers=[
            AssetWatcher(
                name="symbl_s3_notifications",
                trigger=MessageQueueTrigger(
                    scheme="sqs",
                    sqs_queue=QUEUE_URL,
                    aws_conn_id=SETTINGS.aws_conn_id,
                    max_messages=10,
                    wait_time_seconds=1,
                    waiter_delay=EVENTS_POLL_SECONDS,
                ),
            )
        ],
    )

    with DAG(
        dag_id="symbl_video_events",
        description="Append S3 video parts to Symbl as their upload notifications arrive",
        schedule=[UPLOADS],
        start_date=datetime(2024, 1, 1),
        catchup=False,
        render_template_as_native_obj=True,
        default_args={"retries": 2, "retry_delay": timedelta(seconds=10)},
        params=pipeline_params(SETTINGS),
        tags=["symbl", "example", "events"],
        doc_md=__doc__,
    ) as dag:

        @task
        def conversations_from_events(triggering_asset_events=None, params=None) -> list[dict]:
            """The folders this run's S3 notifications name, as work items (their ledgers decide)."""
            import logging

            from airflow.providers.amazon.aws.hooks.s3 import S3Hook
            from airflow.sdk import get_current_context

            from symbl_airflow.discovery import from_events
            from symbl_airflow.pipeline import layout_args, mapped_work

            log = logging.getLogger("airflow.task")
            context = get_current_context()
            layout = layout_args(params, context)
            extras = [event.extra for events in (triggering_asset_events or {}).values() for event in events]
            found, named = from_events(S3Hook(aws_conn_id=SETTINGS.aws_conn_id), extras, **layout)
            for bucket, key in named.elsewhere:
                log.info("ignoring s3://%s/%s: not under s3://%s/%s", bucket, key, layout["bucket"], layout["prefix"])
            if named.own_writes:
                log.info("%d notification(s) for the pipeline's own files (ledgers, index)", named.own_writes)
            log.info(
                "%d event(s) name %d conversation folder(s): %d with work, %d left to the scheduled pipeline; "
                "%d object(s) not parts; S3 requests %s",
                len(extras),
                found.folders,
                len(found.work),
                len(found.deferred),
                found.ignored_count,
                found.requests,
            )
            return mapped_work(found, params, context)

        conversation_group(SETTINGS).expand_kwargs(conversations_from_events())
