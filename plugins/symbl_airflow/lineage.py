"""OpenLineage for the Symbl operators: S3 videos -> Symbl conversation -> S3 insight files.

The openlineage provider is optional: these helpers import it only when its listener calls an
operator's ``get_openlineage_facets_on_complete``, so the plugin works without it installed.

Datasets follow OpenLineage's naming: S3 objects are ``namespace="s3://<bucket>"``, ``name="<key>"``;
a Symbl conversation is ``namespace="<Symbl base URL>"``, ``name="conversations/<id>"``, so the
append task's output is the insights task's input and the graph joins up across tasks.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow.providers.common.compat.openlineage.facet import Dataset
    from airflow.providers.openlineage.extractors import OperatorLineage

#: ``ExternalQueryRunFacet.source`` of a run that worked on a Symbl conversation.
SYMBL_SOURCE = "symbl"


def s3_dataset(uri: str) -> Dataset:
    """``s3://bucket/key`` -> ``Dataset(namespace="s3://bucket", name="key")``."""
    from airflow.providers.common.compat.openlineage.facet import Dataset

    from symbl_airflow.s3 import split_s3_uri

    bucket, key = split_s3_uri(uri)
    return Dataset(namespace=f"s3://{bucket}", name=key)


def conversation_dataset(base_url: str, conversation_id: str) -> Dataset:
    from airflow.providers.common.compat.openlineage.facet import Dataset

    return Dataset(namespace=base_url.rstrip("/"), name=f"conversations/{conversation_id}")


def source_uris(sources: Any) -> list[str]:
    """The video URIs of the append operator's XCom ``sources`` (URIs, or dicts with ``uri``)."""
    uris: list[str] = []
    for item in sources if isinstance(sources, (list, tuple)) else ():
        uri = item.get("uri") if isinstance(item, Mapping) else item
        if isinstance(uri, str) and uri.startswith("s3://") and uri not in uris:
            uris.append(uri)
    return uris


def videos_of(value: Any) -> list[str]:
    """Videos named by what a task got as ``conversation_id``: the append XCom dict (or its rendering)."""
    if isinstance(value, str) and value.strip().startswith("{"):
        from symbl_airflow.templating import parse_rendered

        value = parse_rendered(value)
    return source_uris(value.get("sources")) if isinstance(value, Mapping) else []


def base_url_of(hook: Any) -> str | None:
    """The Symbl base URL of a hook's connection; None when it cannot be read (lineage never fails a task)."""
    try:
        return hook.config.base_url
    except Exception:
        return None


def symbl_lineage(
    *,
    base_url: str | None,
    conversation_id: str | None,
    videos: Iterable[str] = (),
    insight_files: Iterable[str] = (),
) -> OperatorLineage:
    """Lineage of one Symbl task.

    An append task passes ``videos`` (inputs; the conversation is its output). An insights task
    passes ``insight_files`` (outputs; the conversation, and the videos when it knows them, are its
    inputs). The conversation id is also reported as the run's external query id.
    """
    from airflow.providers.common.compat.openlineage.facet import ExternalQueryRunFacet
    from airflow.providers.openlineage.extractors import OperatorLineage

    video_sets = [s3_dataset(uri) for uri in dict.fromkeys(videos)]
    file_sets = [s3_dataset(uri) for uri in dict.fromkeys(insight_files)]
    conversation = [conversation_dataset(base_url, conversation_id)] if base_url and conversation_id else []
    run_facets = {}
    if conversation_id:
        run_facets["externalQuery"] = ExternalQueryRunFacet(externalQueryId=conversation_id, source=SYMBL_SOURCE)
    if file_sets:
        inputs, outputs = [*conversation, *video_sets], file_sets
    else:
        inputs, outputs = video_sets, conversation
    return OperatorLineage(inputs=inputs, outputs=outputs, run_facets=run_facets)


def append_lineage(hook: Any, task_instance: Any) -> OperatorLineage:
    """Lineage of ``SymblAppendVideoOperator``: the videos it sent -> the conversation.

    Read from the task's own XCom result (``{"conversation_id", "job_ids", "sources"}``), so the
    operator keeps no extra state; usable as the body of its ``get_openlineage_facets_on_complete``.
    """
    result = None
    if task_instance is not None:
        result = task_instance.xcom_pull(task_ids=task_instance.task_id, map_indexes=task_instance.map_index)
    result = result if isinstance(result, Mapping) else {}
    return symbl_lineage(
        base_url=base_url_of(hook),
        conversation_id=result.get("conversation_id"),
        videos=source_uris(result.get("sources")),
    )


def insights_lineage(
    hook: Any, conversation_id: str | None, insight_files: Iterable[str], *, videos_from: Any = None
) -> OperatorLineage:
    """Lineage of ``SymblInsightsOperator``: the conversation (and the videos, when known) -> the files."""
    return symbl_lineage(
        base_url=base_url_of(hook),
        conversation_id=conversation_id,
        videos=videos_of(videos_from),
        insight_files=insight_files,
    )
