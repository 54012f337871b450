"""What both example pipelines share: their params, the layout they read, the per-conversation task group.

Kept in one place so the scheduled DAG (``dags/symbl_video_pipeline.py``) and the event-driven one
(``dags/symbl_video_events.py``) cannot drift apart: they differ only in how they find the folders.
Importing this module builds nothing and touches no network (DAG files import it at parse time).
"""

from __future__ import annotations

import inspect
import logging
import os
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from airflow.sdk import Asset, Param, task_group

from symbl_airflow.insights import SymblInsightsOperator
from symbl_airflow.operators import SymblAppendVideoOperator
from symbl_airflow.sensors import SymblJobSensor

if TYPE_CHECKING:
    from symbl_airflow.discovery import Discovery

log = logging.getLogger("airflow.task")
#: Params passed to the append operator only where it takes them (the media ones arrive with its media support).
OPERATOR_PARAMS = ("part_order", "max_part_seconds", "on_too_long")


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


def _append_accepts(name: str) -> bool:
    """The append operator takes ``name`` as a templated argument (so ``{{ params.<name> }}`` reaches it)."""
    return name in inspect.signature(SymblAppendVideoOperator.__init__).parameters and name in (
        SymblAppendVideoOperator.template_fields
    )


def pipeline_params(settings: PipelineSettings) -> dict:
    params = {
        "bucket": Param(settings.bucket, type="string", description="S3 bucket holding videos and outputs"),
        "input_prefix": Param(
            "videos/",
            type="string",
            description="where conversation folders live; a Jinja template, e.g. videos/{{ ds_nodash }}/ or "
            "{{ data_interval_start.strftime('%Y/%m/%d') }}/ for a daily schedule that follows the date",
        ),
        "folder_depth": Param(
            1,
            type="integer",
            minimum=1,
            description="folders from input_prefix to a conversation: 2 makes rec/2026-12-01/standup/<part> "
            "conversation 2026-12-01/standup of prefix rec/",
        ),
        "output_prefix": Param(
            "insights/",
            type="string",
            description="insights go to <prefix><conversation key>/ (a Jinja template, like input_prefix)",
        ),
        "part_order": Param(
            "natural",
            enum=["natural", "key"],
            description="order of a new conversation's parts: natural (Zoom Recording 2 before Zoom Recording 10; "
            "case-insensitive) or key (S3 key order); a conversation keeps the order its ledger recorded",
        ),
        "upload_mode": Param("stream", enum=["stream", "url"]),
        "on_unconfirmed": Param(
            "fail",
            enum=["fail", "resend", "mark_sent", "skip"],
            description="a part sent without Symbl's answer: fail (default), or after checking Symbl, "
            "resend it (missing there) or mark_sent (present there; skip: its deprecated spelling)",
        ),
        "lease_seconds": Param(
            300,
            type="integer",
            minimum=10,
            description="how long a crashed or paused writer holds a conversation before another run may take "
            "over (renewed every third of it while a part uploads)",
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
            description="Symbl processing options in snake_case (see SymblOptions); name defaults to the "
            "conversation key",
        ),
    }
    if _append_accepts("max_part_seconds"):
        params["max_part_seconds"] = Param(
            14_400,
            type="number",
            exclusiveMinimum=0,
            description="a longer part is cut into segments under this length (Symbl takes up to 4 hours)",
        )
    if _append_accepts("on_too_long"):
        params["on_too_long"] = Param(
            "split", enum=["split", "fail"], description="a part over max_part_seconds: split it, or fail first"
        )
    return params


# ---------------------------------------------------------------------------------------------- discovery
def render_prefix(name: str, value: Any, context: Any) -> str:
    """A prefix param rendered as a Jinja template in the run's context (params are not templated)."""
    from airflow.sdk.definitions.context import render_template_to_string
    from airflow.sdk.exceptions import AirflowFailException

    text = "" if value is None else str(value)
    if "{{" not in text and "{%" not in text:
        return text
    try:
        env = context["dag"].get_template_env()
        names = set(re.findall(r"\{\{-?\s*([A-Za-z_]\w*)", text))  # the first name of each expression
        unknown = sorted(n for n in names if n not in context and n not in env.globals)
        if unknown:
            raise ValueError(f"this run's context has no {', '.join(unknown)}")
        rendered = render_template_to_string(env.from_string(text), context).strip()
    except Exception as exc:
        raise AirflowFailException(
            f"{name} {text!r} could not be rendered for this run: {exc}. Use names from the run's context, e.g. "
            "{{ ds_nodash }} or {{ data_interval_start.strftime('%Y/%m/%d') }}; runs without a logical date "
            "(asset-triggered, or triggered with logical_date=None) have no ds/data_interval_start, so give "
            "them a fixed prefix"
        ) from None
    if not rendered or "{{" in rendered:
        raise AirflowFailException(f"{name} {text!r} rendered to {rendered!r}, which is not a usable S3 prefix")
    return rendered


def layout_args(params: dict, context: Any) -> dict:
    """The keyword arguments ``discovery.scan``/``from_events`` take from the run's params."""
    from airflow.sdk.exceptions import AirflowFailException

    from symbl_airflow.discovery import check_folder_depth

    try:
        depth = check_folder_depth(params.get("folder_depth", 1))
    except ValueError as exc:
        raise AirflowFailException(str(exc)) from None
    return {
        "bucket": params["bucket"],
        "prefix": render_prefix("input_prefix", params["input_prefix"], context),
        "output_prefix": render_prefix("output_prefix", params["output_prefix"], context),
        "folder_depth": depth,
        "part_order": params.get("part_order", "natural"),
        "limit": map_limit(params["max_conversations"]),
    }


def mapped_work(found: Discovery, params: dict, context: Any) -> list[dict]:
    """The task group's kwargs per conversation; names what is not a part (log and XCom ``ignored``)."""
    if found.ignored_count:
        context["ti"].xcom_push(key="ignored", value={"count": found.ignored_count, "objects": found.ignored})
        log.info(
            "%d object(s) are not parts (named above%s; XCom 'ignored' of this task)",
            found.ignored_count,
            "" if found.ignored_count == len(found.ignored) else f", the first {len(found.ignored)}",
        )
    options = params.get("symbl_options") or {}
    work = []
    for item in found.work:
        mine = dict(options) if isinstance(options, dict) else options
        if isinstance(mine, dict) and not mine.get("name"):
            mine["name"] = item["conversation"]  # Symbl's conversation name: the folder people know it by
        work.append(
            {
                "source": item["source"],
                "ledger_uri": item["ledger_uri"],
                "output_uri": item["output_uri"],
                "symbl_options": mine,
            }
        )
    return work


def map_limit(requested: int) -> int:
    """A run's cap: the param, but never above ``[core] max_map_length`` (the expansion would fail)."""
    from airflow.sdk import conf

    return max(1, min(int(requested), conf.getint("core", "max_map_length", fallback=1024)))


def conversation_group(settings: PipelineSettings):
    """``@task_group`` over one conversation's work item ``{"source", "ledger_uri", "output_uri"}``."""
    insights_asset = Asset(name=settings.insights_asset)

    @task_group(group_id="conversation")
    def conversation(source, ledger_uri, output_uri, symbl_options):
        """One conversation: append (in order, each part after the previous job completed) -> wait -> insights."""
        symbl = {"symbl_conn_id": settings.symbl_conn_id}
        # append (between parts) and wait hold Symbl jobs while deferred: both count against the pool
        holds_jobs = {"deferrable": True, "timeout": settings.wait_timeout, "pool": settings.pool}
        passed = {name: f"{{{{ params.{name} }}}}" for name in OPERATOR_PARAMS if _append_accepts(name)}
        append = SymblAppendVideoOperator(
            task_id="append",
            source=source,
            ledger_uri=ledger_uri,
            aws_conn_id=settings.aws_conn_id,
            upload_mode="{{ params.upload_mode }}",
            on_unconfirmed="{{ params.on_unconfirmed }}",
            lease_seconds="{{ params.lease_seconds }}",
            symbl_options=symbl_options,
            poll_interval=settings.poll_interval,
            map_index_template=FOLDER_LABEL.format("task.ledger_uri.split('/')[-1 - depth:-1]"),
            **passed,
            **symbl,
            **holds_jobs,
        )
        wait = SymblJobSensor(
            task_id="wait",
            job_ids=append.output,
            aws_conn_id=settings.aws_conn_id,  # records the jobs' outcome in the conversation's ledger
            poke_interval=settings.poll_interval,
            map_index_template=FOLDER_LABEL.format("task.job_ids.get('ledger_uri', '').split('/')[-1 - depth:-1]"),
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
            map_index_template=FOLDER_LABEL.format("task.output_uri.rstrip('/').split('/')[-depth:]"),
            **symbl,
        )
        append >> wait >> insights

    return conversation


#: A mapped task's label: the conversation key (the last ``folder_depth`` segments of its folder).
FOLDER_LABEL = "{{% set depth = (params.folder_depth | default(1)) | int %}}{{{{ {} | join('/') }}}}"
