"""The per-conversation task group both example pipelines map over: append -> wait -> insights.

Kept in one place so the scheduled DAG (``dags/symbl_video_pipeline.py``) and the event-driven one
(``dags/symbl_video_events.py``) cannot drift apart: they differ only in how they find the folders.
Importing this module builds nothing and touches no network (DAG files import it at parse time).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from airflow.sdk import Asset, Param, task_group

from symbl_airflow.insights import SymblInsightsOperator
from symbl_airflow.operators import SymblAppendVideoOperator
from symbl_airflow.sensors import SymblJobSensor


@dataclass(frozen=True)
class PipelineSettings:
    """Deployment knobs, read from the environment when a DAG file is parsed."""

    symbl_conn_id: str = field(default_factory=lambda: os.environ.get("SYMBL_PIPELINE_SYMBL_CONN_ID", "symbl_default"))
    aws_conn_id: str = field(default_factory=lambda: os.environ.get("SYMBL_PIPELINE_AWS_CONN_ID", "aws_default"))
    #: Pool sized to the Symbl account's concurrent-job limit (created with include_deferred=True). Opt-in:
    #: a task given a pool that does not exist is never scheduled and nothing but a scheduler log line
    #: says why (tasks cannot look pools up in Airflow 3), so unset means Airflow's default pool.
    pool: str | None = field(default_factory=lambda: os.environ.get("SYMBL_PIPELINE_POOL") or None)
    #: Seconds between Symbl job checks in the triggerer, and how long to wait for a conversation's jobs.
    poll_interval: float = field(default_factory=lambda: float(os.environ.get("SYMBL_PIPELINE_POLL_INTERVAL", "10")))
    wait_timeout: float = field(
        default_factory=lambda: float(os.environ.get("SYMBL_PIPELINE_WAIT_TIMEOUT", str(6 * 3600)))
    )
    bucket: str = field(default_factory=lambda: os.environ.get("SYMBL_PIPELINE_BUCKET", "symbl-demo"))
    #: Most conversations one run maps (the rest wait for the next run); never above max_map_length.
    max_conversations: int = field(
        default_factory=lambda: int(os.environ.get("SYMBL_PIPELINE_MAX_CONVERSATIONS", "500"))
    )
    #: A name, not an ``s3://`` URI: an S3 URI makes Airflow import boto3 while parsing the DAG file.
    insights_asset: str = field(default_factory=lambda: os.environ.get("SYMBL_PIPELINE_ASSET", "symbl_insights"))
    #: Asset updated with each conversation's tables (event extra: the conversation and the tables written).
    tables_asset: str = field(default_factory=lambda: os.environ.get("SYMBL_PIPELINE_TABLES_ASSET", "symbl_tables"))


def pipeline_params(settings: PipelineSettings) -> dict:
    return {
        "bucket": Param(settings.bucket, type="string", description="S3 bucket holding videos and outputs"),
        "input_prefix": Param("videos/", type="string", description="prefix of <conversation>/<part>.mp4"),
        "output_prefix": Param("insights/", type="string", description="insights go to <prefix><conversation>/"),
        "upload_mode": Param("stream", enum=["stream", "url"]),
        "on_unconfirmed": Param(
            "fail",
            enum=["fail", "resend", "skip"],
            description="a part sent without Symbl's answer: fail (default), or after checking Symbl, "
            "resend it (missing there) or skip it (present there)",
        ),
        "max_conversations": Param(
            settings.max_conversations,
            type="integer",
            minimum=1,
            description="most conversations mapped by one run; the rest are left to the next run",
        ),
        "symbl_options": Param(
            {"enable_summary": True, "detect_entities": True},
            type="object",
            description="Symbl processing options in snake_case (see SymblOptions)",
        ),
    }


def map_limit(requested: int) -> int:
    """A run's cap: the param, but never above ``[core] max_map_length`` (the expansion would fail)."""
    from airflow.sdk import conf

    return max(1, min(int(requested), conf.getint("core", "max_map_length", fallback=1024)))


def conversation_group(settings: PipelineSettings):
    """``@task_group`` over one conversation's work item ``{"source", "ledger_uri", "output_uri"}``."""
    insights_asset = Asset(name=settings.insights_asset)

    @task_group(group_id="conversation")
    def conversation(source, ledger_uri, output_uri):
        """One conversation: append (key order, each part after the previous job completed) -> wait -> insights."""
        symbl = {"symbl_conn_id": settings.symbl_conn_id}
        # append (between parts) and wait hold Symbl jobs while deferred: both count against the pool
        holds_jobs = {"deferrable": True, "timeout": settings.wait_timeout, "pool": settings.pool}
        append = SymblAppendVideoOperator(
            task_id="append",
            source=source,
            ledger_uri=ledger_uri,
            aws_conn_id=settings.aws_conn_id,
            upload_mode="{{ params.upload_mode }}",
            on_unconfirmed="{{ params.on_unconfirmed }}",
            symbl_options="{{ params.symbl_options }}",
            poll_interval=settings.poll_interval,
            map_index_template="{{ task.ledger_uri.split('/')[-2] }}",
            **symbl,
            **holds_jobs,
        )
        wait = SymblJobSensor(
            task_id="wait",
            job_ids=append.output,
            poke_interval=settings.poll_interval,
            map_index_template="{{ task.job_ids.get('ledger_uri', '').split('/')[-2] }}",
            **symbl,
            **holds_jobs,
        )
        insights = SymblInsightsOperator(
            task_id="insights",
            conversation_id=append.output,
            output_uri=output_uri,
            aws_conn_id=settings.aws_conn_id,
            outlets=[insights_asset],
            tables_asset=Asset(name=settings.tables_asset),
            map_index_template="{{ task.output_uri.rstrip('/').split('/')[-1] }}",
            **symbl,
        )
        append >> wait >> insights

    return conversation
