"""SymblInsightsOperator: a finished Symbl conversation -> one JSON file per insight kind in S3.

Payloads go to S3, never to XCom (a transcript with word timings can be megabytes); the task returns
URIs. An index written *last* lists what was stored and what was missing, so a consumer that sees the
index knows every file it names is complete. Asset outlets get ``{"conversation_id", "index_uri"}``
as event extra, so a DAG scheduled on the asset can find the files without an XCom pull.

Beside the raw JSON, the same answers become tables (``symbl_airflow.tables``, docs/tables.md): one row
per item, partitioned by meeting date, one object per conversation and table. Given the append task's
result with nothing appended, the task skips before any Symbl call when the outputs already cover it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowException, AirflowFailException, AirflowSkipException

from symbl_airflow import tables as T
from symbl_airflow.links import SymblConversationLink, store_conversation_url
from symbl_airflow.templating import parse_rendered

if TYPE_CHECKING:
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook
    from airflow.sdk import Context

    from symbl_airflow.hooks import SymblHook

#: Every kind, in the order they are fetched by default (mirrors ``symbl_airflow.hooks.INSIGHT_ENDPOINTS``).
INSIGHT_KINDS: tuple[str, ...] = (
    "conversation",
    "messages",
    "topics",
    "questions",
    "action_items",
    "follow_ups",
    "entities",
    "trackers",
    "analytics",
    "summary",
    "members",
)
#: Query parameters sent unless the user overrides them (``None`` removes one).
DEFAULT_INSIGHT_PARAMS: dict[str, dict[str, Any]] = {
    "messages": {"sentiment": True},
    "topics": {"sentiment": True},
}
#: The outputs' index (kinds, URIs, counts, tables); not discovery's ``DISCOVERY_INDEX_FILE_NAME``.
OUTPUT_INDEX_FILE_NAME = "index.json"
INDEX_FILE_NAME = OUTPUT_INDEX_FILE_NAME  # the 0.x name
CONTENT_TYPE = "application/json"
#: Key holding the list in list-shaped payloads (trackers are a top-level array): the tables' keys + members.
_LIST_KEYS: dict[str, str] = {**T.LIST_KEYS, "members": "members"}


def _canonical_kind(kind: object) -> str | None:
    if not isinstance(kind, str):
        return None
    name = kind.strip().lower().replace("-", "_")
    return name if name in INSIGHT_KINDS else None


def item_count(kind: str, payload: Any) -> int | None:
    """Number of items of a list-shaped payload; None for objects (conversation, analytics)."""
    if isinstance(payload, list):
        return len(payload)
    key = _LIST_KEYS.get(kind)
    if key and isinstance(payload, dict) and isinstance(payload.get(key), list):
        return len(payload[key])
    return None


def entity_shape(payload: Any) -> str:
    """Which documented shape a ``GET .../entities`` payload has; the payload itself is stored unchanged.

    ``current``: ``{id, type, subType, category, matches[{detectedValue, messageRefs}]}`` (docs.symbl.ai
    "get-detected-entities"); ``legacy``: flat ``{type, value, text, messageRefs}`` (2022 docs); ``empty``
    when there is nothing to tell by; ``mixed`` or ``unknown`` otherwise.
    """
    items = payload.get("entities") if isinstance(payload, dict) else None
    if not isinstance(items, list):
        return "unknown"
    if not items:
        return "empty"
    shapes = {
        "current"
        if isinstance(item, dict) and "matches" in item
        else "legacy"
        if isinstance(item, dict) and "messageRefs" in item
        else "unknown"
        for item in items
    }
    return shapes.pop() if len(shapes) == 1 else "mixed"


def parse_output_uri(uri: object) -> tuple[str, str]:
    """``s3://bucket/some/prefix`` -> ``("bucket", "some/prefix/")``: the output is always a prefix."""
    from symbl_airflow.s3 import split_s3_prefix

    try:
        return split_s3_prefix(uri, what="output_uri", example="s3://bucket/insights/")
    except ValueError as exc:
        raise AirflowFailException(str(exc)) from None


class SymblInsightsOperator(BaseOperator):
    """
    Fetch insights of a Symbl conversation and store each kind as JSON in S3.

    Writes ``<output_uri><kind>.json`` per kind, then ``<output_uri>index.json``::

        {"conversation_id": ..., "generated_at": "<ISO UTC>",
         "insights": {kind: {"uri": ..., "count": <items or null>, "bytes": ...}},
         "missing": {kind: "<Symbl's reason>"}}

    Payloads are stored exactly as Symbl returned them. The entities entry also has ``"shape"``
    (``current``, ``legacy``, ``empty``, ``mixed`` or ``unknown``, see :func:`entity_shape`), because the
    entity format changed between API versions and downstream readers must know which one they got.

    A kind Symbl answers with 404 (e.g. the summary of a conversation processed without it) is
    recorded under ``missing`` and the task succeeds, unless ``fail_on_missing`` asks otherwise.
    A 404 for the conversation itself (checked when every requested kind is missing) fails the task.
    Declare ``outlets=[Asset("s3://bucket/insights/")]`` to schedule downstream DAGs on the result:
    each asset event carries ``{"conversation_id", "index_uri"}`` as extra.

    :param conversation_id: Symbl conversation id, or the dict returned by ``SymblAppendVideoOperator``
        (its ``conversation_id`` is used), e.g. ``append.output``. (templated)
    :param output_uri: S3 prefix for the files, ``s3://bucket/prefix/`` (a missing trailing ``/`` is
        added). (templated)
    :param insights: kinds to fetch, default all of ``INSIGHT_KINDS``: conversation, messages, topics,
        questions, action_items, follow_ups, entities, trackers, analytics, summary, members. (templated)
    :param insight_params: query parameters per kind, snake_case or camelCase, e.g.
        ``{"messages": {"sentiment": True, "verbose": True}, "topics": {"parent_refs": True}}``. Merged
        over the defaults (``sentiment=True`` for messages and topics; topics drop the default
        sentiment when ``parent_refs`` is requested, as Symbl does not support both). ``None`` removes
        a parameter. (templated)
    :param fail_on_missing: ``True`` fails the task when any kind is missing; a list of kinds fails it
        only when one of those is missing. The index is then not written.
    :param tables_prefix: where the tables go (docs/tables.md): a key prefix in the output bucket
        (default ``tables/``) or ``s3://bucket/prefix/``; ``None`` writes no tables. (templated)
    :param table_format: ``"jsonl"`` (gzip JSON Lines, default) or ``"parquet"`` (needs the
        ``symbl-airflow[parquet]`` extra). (templated)
    :param conversation_key: the tables' ``conversation_key``; default the folder name of the ledger or
        first video. (templated)
    :param meeting_date: ``YYYY-MM-DD`` to set the meeting date (the partition) instead of the rule in
        docs/tables.md (MP4 creation time, S3 LastModified, a date in the key). (templated)
    :param tables_asset: an ``Asset`` (or asset name) added to ``outlets`` whose events carry the tables:
        ``{"conversation_id", "conversation_key", "meeting_date", "table_format", "tables_uri", "kinds",
        "uris", "rows"}``.
    :param skip_unchanged: skip the task (no Symbl call, no Experience link, tables left as they are)
        when given the append task's result with nothing appended and the outputs already cover every
        video of the conversation.
    :param symbl_conn_id: Symbl connection.
    :param aws_conn_id: AWS connection used by ``S3Hook`` to write the files.
    :return: ``{"conversation_id", "index_uri", "uris": {kind: uri}, "missing": [kind, ...]}``, plus
        ``"tables": {"meeting_date", "uris": {table: uri}}`` when tables are written.
    """

    template_fields: Sequence[str] = (
        "conversation_id",
        "output_uri",
        "insights",
        "insight_params",
        "tables_prefix",
        "table_format",
        "conversation_key",
        "meeting_date",
        "symbl_conn_id",
        "aws_conn_id",
    )
    template_fields_renderers = {"insight_params": "json", "insights": "json"}
    ui_color = "#eaf6ec"
    operator_extra_links = (SymblConversationLink(),)

    def __init__(
        self,
        *,
        conversation_id: str | dict,
        output_uri: str,
        insights: Sequence[str] | str | None = None,
        insight_params: dict[str, dict[str, Any]] | None = None,
        fail_on_missing: bool | Sequence[str] = False,
        tables_prefix: str | None = T.DEFAULT_TABLES_PREFIX,
        table_format: str = "jsonl",
        conversation_key: str | None = None,
        meeting_date: str | None = None,
        tables_asset: Any = None,
        skip_unchanged: bool = True,
        symbl_conn_id: str = "symbl_default",
        aws_conn_id: str | None = "aws_default",
        **kwargs: Any,
    ) -> None:
        if tables_asset is not None:
            from airflow.sdk import Asset

            tables_asset = Asset(name=tables_asset) if isinstance(tables_asset, str) else tables_asset
            outlets = kwargs.get("outlets") or []
            kwargs["outlets"] = [*(outlets if isinstance(outlets, (list, tuple)) else [outlets]), tables_asset]
        super().__init__(**kwargs)
        self.tables_prefix = tables_prefix
        self.table_format = table_format
        self.conversation_key = conversation_key
        self.meeting_date = meeting_date
        self.tables_asset = tables_asset
        self.skip_unchanged = skip_unchanged
        self.conversation_id = conversation_id
        self.output_uri = output_uri
        self.insights = insights
        self.insight_params = insight_params
        self.fail_on_missing = fail_on_missing
        self.symbl_conn_id = symbl_conn_id
        self.aws_conn_id = aws_conn_id

    @cached_property
    def hook(self) -> SymblHook:
        from symbl_airflow.hooks import SymblHook

        return SymblHook(symbl_conn_id=self.symbl_conn_id)

    @cached_property
    def s3_hook(self) -> S3Hook:
        from airflow.providers.amazon.aws.hooks.s3 import S3Hook

        return S3Hook(aws_conn_id=self.aws_conn_id, extra_args={"ContentType": CONTENT_TYPE})

    # ---------------------------------------------------------------- validation (before any request)
    def _resolve_conversation_id(self) -> str:
        value: Any = self.conversation_id
        if isinstance(value, str) and value.strip().startswith("{"):
            value = parse_rendered(value)
        if isinstance(value, Mapping):
            if "conversation_id" not in value:
                raise AirflowFailException(
                    "conversation_id got a dict without a 'conversation_id' key "
                    f"(keys: {sorted(map(str, value))}); pass an id or SymblAppendVideoOperator's output"
                )
            value = value["conversation_id"]
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str) or not value.strip() or value.strip() in ("None", "null"):
            raise AirflowFailException(f"conversation_id must be a Symbl conversation id, got {value!r}")
        return value.strip()

    def _resolve_kinds(self) -> list[str]:
        requested: Any = self.insights
        if requested is None:
            return list(INSIGHT_KINDS)
        if isinstance(requested, str):
            parsed = parse_rendered(requested) if requested.strip().startswith("[") else requested
            requested = parsed.split(",") if isinstance(parsed, str) else parsed
        if not isinstance(requested, (list, tuple, set, frozenset)) or not requested:
            raise AirflowFailException(
                f"insights must be a non-empty list of kinds from {list(INSIGHT_KINDS)}, got {self.insights!r}"
            )
        kinds: list[str] = []
        unknown = []
        for item in requested:
            kind = _canonical_kind(item)
            if kind is None:
                unknown.append(item)
            elif kind not in kinds:
                kinds.append(kind)
        if unknown:
            raise AirflowFailException(f"unknown Symbl insight kind(s) {unknown}; allowed: {', '.join(INSIGHT_KINDS)}")
        return kinds

    def _resolve_params(self, kinds: list[str]) -> dict[str, dict[str, Any]]:
        given: Any = self.insight_params or {}
        if isinstance(given, str):
            given = parse_rendered(given)
        if not isinstance(given, Mapping):
            raise AirflowFailException(
                f"insight_params must be a dict of kind -> {{param: value}}, got {self.insight_params!r}"
            )
        user: dict[str, dict[str, Any]] = {}
        for name, params in given.items():
            kind = _canonical_kind(name)
            if kind is None:
                raise AirflowFailException(
                    f"insight_params names unknown kind {name!r}; allowed: {', '.join(INSIGHT_KINDS)}"
                )
            if not isinstance(params, Mapping):
                raise AirflowFailException(f"insight_params[{name!r}] must be a dict of parameters, got {params!r}")
            for key, value in params.items():
                if not isinstance(key, str) or not (value is None or isinstance(value, (bool, int, float, str))):
                    raise AirflowFailException(
                        f"insight_params[{name!r}][{key!r}] must be a string key with a bool, number or "
                        f"string value, got {value!r}"
                    )
            user.setdefault(kind, {}).update(params)
        resolved = {}
        for kind in kinds:
            params = dict(DEFAULT_INSIGHT_PARAMS.get(kind, {}))
            own = user.get(kind, {})
            if kind == "topics" and (own.get("parent_refs") or own.get("parentRefs")) and "sentiment" not in own:
                params.pop("sentiment", None)
            params.update(own)
            resolved[kind] = {k: v for k, v in params.items() if v is not None}
        return resolved

    def _resolve_required(self) -> set[str]:
        value: Any = self.fail_on_missing
        if isinstance(value, bool):
            return set(INSIGHT_KINDS) if value else set()
        if isinstance(value, str):
            value = [value]
        if not isinstance(value, (list, tuple, set, frozenset)):
            raise AirflowFailException(f"fail_on_missing must be a bool or a list of kinds, got {value!r}")
        required = {_canonical_kind(v) for v in value}
        if None in required:
            bad = [v for v in value if _canonical_kind(v) is None]
            raise AirflowFailException(
                f"fail_on_missing names unknown kind(s) {bad}; allowed: {', '.join(INSIGHT_KINDS)}"
            )
        return required  # type: ignore[return-value]

    # ---------------------------------------------------------------- execution
    def execute(self, context: Context) -> dict:
        from symbl_airflow.errors import SymblNotFoundError

        conversation_id = self._resolve_conversation_id()
        kinds = self._resolve_kinds()
        params = self._resolve_params(kinds)
        required = self._resolve_required()
        bucket, prefix = parse_output_uri(self.output_uri)
        base = f"s3://{bucket}/{prefix}"
        tables_config = self._resolve_tables(bucket)
        append = self._append_result()
        client = self.s3_hook.get_conn()
        previous = T.read_json_object(client, f"{base}{OUTPUT_INDEX_FILE_NAME}")
        if self.skip_unchanged and (
            why := T.nothing_new(client, append, previous, conversation_id, kinds, tables_config)
        ):
            raise AirflowSkipException(f"Nothing new for conversation {conversation_id}: {why}; no Symbl call made")
        store_conversation_url(context, self.hook, conversation_id, self.log)

        self.log.info(
            "Fetching %d insight kind(s) of conversation %s into %s: %s",
            len(kinds),
            conversation_id,
            base,
            ", ".join(kinds),
        )
        stored: dict[str, dict[str, Any]] = {}
        missing: dict[str, str] = {}
        payloads: dict[str, Any] = {}
        for kind in kinds:
            try:
                payload = self.hook.get_insight(conversation_id, kind, **params[kind])
            except SymblNotFoundError as exc:
                reason = exc.message or "not found (HTTP 404)"
                if kind == "conversation":
                    raise AirflowException(
                        f"Symbl conversation {conversation_id} was not found (HTTP 404): {reason}"
                    ) from None
                self.log.warning("Insight %s of conversation %s is missing: %s", kind, conversation_id, reason)
                missing[kind] = reason
                if kind in required:
                    raise AirflowException(
                        f"insight {kind!r} of conversation {conversation_id} is missing and fail_on_missing "
                        f"requires it: {reason}"
                    ) from None
                continue
            if tables_config is not None:
                payloads[kind] = payload
            data = json.dumps(payload, ensure_ascii=False).encode("utf-8")
            key = f"{prefix}{kind}.json"
            self.s3_hook.load_bytes(data, key=key, bucket_name=bucket, replace=True)
            count = item_count(kind, payload)
            stored[kind] = {"uri": f"s3://{bucket}/{key}", "count": count, "bytes": len(data)}
            if kind == "entities":
                stored[kind]["shape"] = entity_shape(payload)
            self.log.info(
                "Stored %s: %s item(s), %d bytes -> s3://%s/%s",
                kind,
                "-" if count is None else count,
                len(data),
                bucket,
                key,
            )

        if not stored and "conversation" not in kinds:
            self._check_conversation_exists(conversation_id)

        sources = T.sources_for_index(client, append, previous)
        index = {
            "conversation_id": conversation_id,
            "generated_at": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
            "insights": stored,
            "missing": missing,
            "source_uris": sources,
        }
        if tables_config is not None:
            index["tables"] = T.publish(self.s3_hook, tables_config, conversation_id=conversation_id,
                                        payloads=payloads, missing=list(missing), append=append, sources=sources,
                                        output_prefix=prefix, previous=previous, log=self.log)  # fmt: skip
        index_key = f"{prefix}{OUTPUT_INDEX_FILE_NAME}"
        index_uri = f"s3://{bucket}/{index_key}"
        self.s3_hook.load_bytes(
            json.dumps(index, ensure_ascii=False, indent=2).encode("utf-8"),
            key=index_key,
            bucket_name=bucket,
            replace=True,
        )
        self.log.info(
            "Wrote %d insight file(s) and %s (missing: %s)", len(stored), index_uri, ", ".join(missing) or "none"
        )
        tables = index.get("tables") or {"files": {}}
        table_uris = {table: entry["uri"] for table, entry in tables["files"].items()}
        self._lineage_files = [*(entry["uri"] for entry in stored.values()), index_uri, *table_uris.values()]
        self._lineage_conversation_id = conversation_id
        self._annotate_outlets(context, {"conversation_id": conversation_id, "index_uri": index_uri}, tables)
        result = {
            "conversation_id": conversation_id,
            "index_uri": index_uri,
            "uris": {kind: entry["uri"] for kind, entry in stored.items()},
            "missing": list(missing),
        }
        if tables_config is not None:
            result["tables"] = {"meeting_date": tables["meeting_date"], "uris": table_uris}
        return result

    def get_openlineage_facets_on_complete(self, task_instance: Any):
        """OpenLineage: the conversation (and its S3 videos, given the append XCom) -> the insight files."""
        from symbl_airflow.lineage import insights_lineage

        return insights_lineage(
            self.hook,
            getattr(self, "_lineage_conversation_id", None),
            getattr(self, "_lineage_files", ()),
            videos_from=self.conversation_id,
        )

    def _check_conversation_exists(self, conversation_id: str) -> None:
        """Tell "every kind is missing" apart from "no such conversation" (both are 404s per kind)."""
        from symbl_airflow.errors import SymblNotFoundError

        try:
            self.hook.get_insight(conversation_id, "conversation")
        except SymblNotFoundError as exc:
            raise AirflowException(
                f"Symbl conversation {conversation_id} was not found (HTTP 404): {exc.message}"
            ) from None

    def _resolve_tables(self, output_bucket: str) -> T.TablesConfig | None:
        try:
            return T.resolve_config(
                self.tables_prefix, self.table_format, output_bucket, self.meeting_date, self.conversation_key
            )
        except ValueError as exc:
            raise AirflowFailException(str(exc)) from None

    def _append_result(self) -> dict | None:
        """The append task's result when ``conversation_id`` was given one (it says what was appended)."""
        value: Any = self.conversation_id
        if isinstance(value, str) and value.strip().startswith("{"):
            value = parse_rendered(value)
        return dict(value) if isinstance(value, Mapping) else None

    def _annotate_outlets(self, context: Context, extra: dict[str, Any], tables: Mapping[str, Any]) -> None:
        """Attach the index to every asset event this task emits (aliases carry no event of their own);
        the tables asset's event describes the tables instead."""
        from airflow.sdk import Asset

        outlet_events = context.get("outlet_events")
        if outlet_events is None:
            return
        for outlet in self.outlets or ():
            if not isinstance(outlet, Asset):
                continue
            if self.tables_asset is not None and outlet == self.tables_asset:
                files = tables.get("files") or {}
                outlet_events[outlet].extra.update(
                    conversation_id=extra["conversation_id"],
                    conversation_key=tables.get("conversation_key"),
                    meeting_date=tables.get("meeting_date"),
                    table_format=tables.get("format"),
                    tables_uri=tables.get("prefix"),
                    kinds=list(files),
                    uris={t: f["uri"] for t, f in files.items()},
                    rows={t: f["rows"] for t, f in files.items()},
                )
            else:
                outlet_events[outlet].extra.update(extra)
