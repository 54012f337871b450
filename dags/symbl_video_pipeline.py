"""
### Incremental S3 -> Symbl pipeline: every conversation folder becomes one Symbl conversation

Input layout (part order = S3 key order, so name parts `part-001.mp4`, `part-002.mp4` ...):

    s3://<bucket>/<input_prefix><conversation key>/<part>.mp4
    s3://<bucket>/<input_prefix><conversation key>/_symbl.json     <- the conversation ledger

Each run lists the folders, and maps every conversation whose ledger lacks some of its parts
(in parallel, limited by the `symbl` pool): **append** sends the new parts in key order, each only
after the previous part's Symbl job completed (deferred between parts: no worker slot held),
**wait** defers until the last job is done, **insights** writes one JSON file per insight kind to
`s3://<bucket>/<output_prefix><conversation key>/`.

The ledger, not this DAG, guarantees each part reaches Symbl once, in key order, with no hole after a
failed job and one writer at a time, across runs, tasks and deployments. A stopped or blocked
conversation fails its append task with a message that says what to do (`python -m
symbl_airflow.ledger show <ledger uri>` prints its state). Params: `on_unconfirmed` settles a part
whose send was never confirmed (`resend` if Symbl lacks it, `skip` if it has it).

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
    doc_md=__doc__,
) as dag:

    @task
    def discover(params=None) -> list[dict]:
        """List conversation folders and map those with parts their ledger does not hold yet."""
        import logging

        from airflow.providers.amazon.aws.hooks.s3 import S3Hook

        from symbl_airflow.ledger import LEDGER_FILE_NAME, Ledger, LedgerError
        from symbl_airflow.plan import new_parts

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
            if part == LEDGER_FILE_NAME or part.lower().endswith(".mp4"):
                entry[part] = meta["ETag"].strip('"')

        work = []
        for conversation in sorted(folders):
            entry = folders[conversation]
            ledger_key = f"{prefix}{conversation}/{LEDGER_FILE_NAME}"
            ledger_uri = f"s3://{bucket}/{ledger_key}"
            ledger = Ledger(uri=ledger_uri)
            if LEDGER_FILE_NAME in entry:
                try:
                    ledger = Ledger.parse(ledger_uri, s3.read_key(ledger_key, bucket_name=bucket))
                except LedgerError as exc:
                    log.error("%s", exc)  # its append task fails with the same message
            listing = {
                f"s3://{bucket}/{prefix}{conversation}/{p}": etag for p, etag in entry.items() if p != LEDGER_FILE_NAME
            }
            found = new_parts(ledger, listing)
            for uri in found["changed"]:
                log.warning("%s changed since it was appended; it will not be re-sent", uri)
            for uri in found["late"]:
                log.warning("%s is late (a later part is already appended); it is not appended", uri)
            unreported = [uri for uri in found["late"] if uri not in ledger.late]
            if not found["new"] and not unreported and not found["unconfirmed"]:
                blocked = f" (blocked: {', '.join(found['blocked'])})" if found["blocked"] else ""
                log.info("%s: nothing new (%d part(s) in its ledger)%s", conversation, len(ledger.parts), blocked)
                continue
            log.info(
                "%s: %d new part(s) of %d, %d late", conversation, len(found["new"]), len(listing), len(unreported)
            )
            work.append(
                {
                    # late ones are reported by append, never sent; unconfirmed ones are settled (or refused) there
                    "source": sorted(found["new"] + unreported + found["unconfirmed"]),
                    "ledger_uri": ledger_uri,
                    "output_uri": f"s3://{bucket}/{params['output_prefix']}{conversation}/",
                }
            )
        return work

    @task_group
    def conversation(source, ledger_uri, output_uri):
        """One conversation: append (key order, each part after the previous job completed) -> wait -> insights."""
        append = SymblAppendVideoOperator(
            task_id="append",
            source=source,
            ledger_uri=ledger_uri,
            symbl_conn_id=SYMBL_CONN_ID,
            aws_conn_id=AWS_CONN_ID,
            upload_mode="{{ params.upload_mode }}",
            on_unconfirmed="{{ params.on_unconfirmed }}",
            symbl_options="{{ params.symbl_options }}",
            deferrable=True,
            poll_interval=POLL_INTERVAL,
            timeout=WAIT_TIMEOUT,
            pool=POOL,
            map_index_template="{{ task.ledger_uri.split('/')[-2] }}",
        )
        wait = SymblJobSensor(
            task_id="wait",
            job_ids=append.output,
            symbl_conn_id=SYMBL_CONN_ID,
            deferrable=True,
            poke_interval=POLL_INTERVAL,
            timeout=WAIT_TIMEOUT,
            pool=POOL,
            map_index_template="{{ task.job_ids.get('ledger_uri', '').split('/')[-2] }}",
        )
        insights = SymblInsightsOperator(
            task_id="insights",
            conversation_id=append.output,
            output_uri=output_uri,
            symbl_conn_id=SYMBL_CONN_ID,
            aws_conn_id=AWS_CONN_ID,
            outlets=[INSIGHTS_ASSET],
            map_index_template="{{ task.output_uri.rstrip('/').split('/')[-1] }}",
        )
        append >> wait >> insights

    conversation.expand_kwargs(discover())
