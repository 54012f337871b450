"""SymblInsightsOperator argument handling: everything that must be decided before any request."""

from __future__ import annotations

from unittest import mock

import pytest
from airflow.sdk.exceptions import AirflowFailException

from symbl_airflow.insights import (
    DEFAULT_INSIGHT_PARAMS,
    INSIGHT_KINDS,
    SymblInsightsOperator,
    item_count,
    parse_output_uri,
)

pytestmark = pytest.mark.unit


def _op(**kwargs) -> SymblInsightsOperator:
    kwargs.setdefault("conversation_id", "123")
    kwargs.setdefault("output_uri", "s3://b/p/")
    return SymblInsightsOperator(task_id="insights", **kwargs)


def test_kinds_match_the_hook_endpoints():
    from symbl_airflow.hooks import INSIGHT_ENDPOINTS

    assert INSIGHT_KINDS == tuple(INSIGHT_ENDPOINTS)


def test_template_fields():
    assert {"conversation_id", "output_uri", "insights", "insight_params"} <= set(SymblInsightsOperator.template_fields)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("123", "123"),
        (" 123 ", "123"),
        (123, "123"),
        ({"conversation_id": "42", "job_ids": ["1"], "sources": ["s3://b/k.mp4"]}, "42"),
        # Jinja without native rendering turns the append operator's dict into its Python repr.
        ("{'conversation_id': '42', 'job_ids': ['1'], 'sources': []}", "42"),
        ('{"conversation_id": "42"}', "42"),
    ],
)
def test_conversation_id_forms(value, expected):
    assert _op(conversation_id=value)._resolve_conversation_id() == expected


@pytest.mark.parametrize("value", [None, "", "None", {"job_ids": ["1"]}, ["123"], True])
def test_conversation_id_rejected(value):
    with pytest.raises(AirflowFailException, match="conversation_id"):
        _op(conversation_id=value)._resolve_conversation_id()


def test_kinds_default_to_all_in_order():
    assert _op()._resolve_kinds() == list(INSIGHT_KINDS)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (["topics", "messages", "topics"], ["topics", "messages"]),
        (["action-items", "Follow_Ups"], ["action_items", "follow_ups"]),
        ("messages, summary", ["messages", "summary"]),
        ('["messages", "summary"]', ["messages", "summary"]),
        ("['questions']", ["questions"]),
    ],
)
def test_kinds_normalized(value, expected):
    assert _op(insights=value)._resolve_kinds() == expected


@pytest.mark.parametrize("value", [[], ["messages", "transcript"], [None], 5])
def test_bad_kinds_name_the_allowed_ones(value):
    with pytest.raises(AirflowFailException, match="allowed|non-empty list") as exc:
        _op(insights=value)._resolve_kinds()
    if value == ["messages", "transcript"]:
        assert "'transcript'" in str(exc.value)
        assert ", ".join(INSIGHT_KINDS) in str(exc.value)


def test_bad_kind_raises_before_any_hook_is_built():
    op = _op(insights=["messages", "transcript"])
    with (
        mock.patch("symbl_airflow.hooks.SymblHook") as hook,
        mock.patch("airflow.providers.amazon.aws.hooks.s3.S3Hook") as s3,
        pytest.raises(AirflowFailException, match=r"unknown Symbl insight kind\(s\) \['transcript'\]"),
    ):
        op.execute({})
    hook.assert_not_called()
    s3.assert_not_called()


def test_params_defaults_and_overrides():
    op = _op(
        insights=["messages", "topics", "questions"],
        insight_params={"messages": {"verbose": True, "sentiment": None}, "questions": {"refresh": "true"}},
    )
    assert op._resolve_params(op._resolve_kinds()) == {
        "messages": {"verbose": True},
        "topics": {"sentiment": True},
        "questions": {"refresh": "true"},
    }
    assert DEFAULT_INSIGHT_PARAMS["messages"] == {"sentiment": True}  # not mutated


@pytest.mark.parametrize("key", ["parent_refs", "parentRefs"])
def test_parent_refs_drops_default_topic_sentiment(key):
    op = _op(insights=["topics"], insight_params={"topics": {key: True}})
    assert op._resolve_params(["topics"]) == {"topics": {key: True}}
    explicit = _op(insights=["topics"], insight_params={"topics": {key: True, "sentiment": True}})
    assert explicit._resolve_params(["topics"]) == {"topics": {key: True, "sentiment": True}}


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"transcript": {}}, "unknown kind 'transcript'"),
        ({"messages": True}, "must be a dict"),
        ({"messages": {"verbose": {"deep": 1}}}, "bool, number or string"),
        (["messages"], "insight_params must be a dict"),
    ],
)
def test_params_rejected(params, match):
    op = _op(insight_params=params)
    with pytest.raises(AirflowFailException, match=match):
        op._resolve_params(list(INSIGHT_KINDS))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (False, set()),
        (True, set(INSIGHT_KINDS)),
        (["summary", "action-items"], {"summary", "action_items"}),
        ("summary", {"summary"}),
    ],
)
def test_fail_on_missing(value, expected):
    assert _op(fail_on_missing=value)._resolve_required() == expected


def test_fail_on_missing_rejects_unknown_kind():
    with pytest.raises(AirflowFailException, match="fail_on_missing names unknown kind"):
        _op(fail_on_missing=["summary", "sumary"])._resolve_required()


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("s3://b/p/", ("b", "p/")),
        ("s3://b/p", ("b", "p/")),
        ("s3://b/a/b/c", ("b", "a/b/c/")),
        ("s3://b", ("b", "")),
        ("s3://b/", ("b", "")),
    ],
)
def test_output_uri_is_a_prefix(uri, expected):
    assert parse_output_uri(uri) == expected


@pytest.mark.parametrize("uri", ["b/p/", "https://b/p/", "s3:///p/", None, ""])
def test_output_uri_rejected(uri):
    with pytest.raises(AirflowFailException, match="output_uri"):
        parse_output_uri(uri)


@pytest.mark.parametrize(
    ("kind", "payload", "expected"),
    [
        ("messages", {"messages": [{}, {}]}, 2),
        ("action_items", {"actionItems": [{}]}, 1),
        ("follow_ups", {"followUps": []}, 0),
        ("trackers", [{}, {}, {}], 3),
        ("conversation", {"id": "1", "members": [{}]}, None),
        ("analytics", {"metrics": [{}], "members": [{}]}, None),
        ("summary", {"unexpected": []}, None),
    ],
)
def test_item_count(kind, payload, expected):
    assert item_count(kind, payload) == expected
