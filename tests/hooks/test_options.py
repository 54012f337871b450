"""SymblOptions: names, validation (one bad value per option at least) and both wire encodings."""

from __future__ import annotations

import json

import pytest

from symbl_airflow.errors import SymblOptionsError
from symbl_airflow.options import LANGUAGE_CODES, OPTION_NAMES, SymblOptions

pytestmark = pytest.mark.unit

FULL = dict(
    name="Weekly sync",
    custom_vocabulary=["Platform", "Discussion"],
    confidence_threshold=0.6,
    detect_phrases=True,
    webhook_url="https://example.com/hook?x=1",
    entities=[{"customType": "Company Executives", "text": "marketing director"}],
    detect_entities=False,
    language_code="en-GB",
    mode="phone",
    enable_separate_recognition_per_channel=True,
    channel_metadata=[{"channel": 1, "speaker": {"name": "Ann", "email": "ann@example.com"}}],
    trackers=[{"name": "Pricing", "vocabulary": ["price", "cost"]}, {"id": "123"}],
    enable_all_trackers=False,
    enable_summary=True,
    enable_speaker_diarization=True,
    diarization_speaker_count=2,
    conversation_type="sales",
    features={"featureList": ["insights", "callScore"]},
    metadata={"salesStage": "qualification", "prospectName": "Acme"},
)


def test_full_set_covers_every_option_and_validates():
    assert set(FULL) == set(OPTION_NAMES)
    assert len(OPTION_NAMES) == 19
    SymblOptions(**FULL).validate()


def test_query_params_exact():
    params = SymblOptions(**FULL).to_query_params()
    assert params == [
        ("name", "Weekly sync"),
        ("customVocabulary", '["Platform","Discussion"]'),
        ("confidenceThreshold", "0.6"),
        ("detectPhrases", "true"),
        ("webhookUrl", "https://example.com/hook?x=1"),
        ("entities", '[{"customType":"Company Executives","text":"marketing director"}]'),
        ("detectEntities", "false"),
        ("languageCode", "en-GB"),
        ("mode", "phone"),
        ("enableSeparateRecognitionPerChannel", "true"),
        ("channelMetadata", '[{"channel":1,"speaker":{"name":"Ann","email":"ann@example.com"}}]'),
        ("trackers", '[{"name":"Pricing","vocabulary":["price","cost"]},{"id":"123"}]'),
        ("enableAllTrackers", "false"),
        ("enableSummary", "true"),
        ("enableSpeakerDiarization", "true"),
        ("diarizationSpeakerCount", "2"),
        ("conversationType", "sales"),
        ("features", '{"featureList":["insights","callScore"]}'),
        ("metadata", '{"salesStage":"qualification","prospectName":"Acme"}'),
    ]


def test_json_body_exact():
    body = SymblOptions(**FULL).to_json_body()
    assert body == {
        "name": "Weekly sync",
        "customVocabulary": ["Platform", "Discussion"],
        "confidenceThreshold": 0.6,
        "detectPhrases": True,
        "webhookUrl": "https://example.com/hook?x=1",
        "entities": [{"customType": "Company Executives", "text": "marketing director"}],
        "detectEntities": False,
        "languageCode": "en-GB",
        "mode": "phone",
        "enableSeparateRecognitionPerChannel": True,
        "channelMetadata": [{"channel": 1, "speaker": {"name": "Ann", "email": "ann@example.com"}}],
        "trackers": [{"name": "Pricing", "vocabulary": ["price", "cost"]}, {"id": "123"}],
        "enableAllTrackers": False,
        "enableSummary": True,
        "enableSpeakerDiarization": True,
        "diarizationSpeakerCount": 2,
        "conversationType": "sales",
        "features": {"featureList": ["insights", "callScore"]},
        "metadata": {"salesStage": "qualification", "prospectName": "Acme"},
    }
    json.dumps(body)  # plain JSON types only


def test_to_dict_is_snake_case_non_none_and_json_safe():
    opts = SymblOptions(name="n", custom_vocabulary=("a", "b"), confidence_threshold=1)
    assert opts.to_dict() == {"name": "n", "custom_vocabulary": ["a", "b"], "confidence_threshold": 1}
    assert SymblOptions().to_dict() == {}
    assert SymblOptions().to_query_params() == []
    assert SymblOptions().to_json_body() == {}
    assert SymblOptions().is_empty()
    assert SymblOptions.from_kwargs(**opts.to_dict()) == SymblOptions(
        name="n", custom_vocabulary=["a", "b"], confidence_threshold=1
    )


def test_query_params_non_ascii_and_numbers():
    opts = SymblOptions(custom_vocabulary=["Zürich"], confidence_threshold=1.0, name="ça")
    assert opts.to_query_params() == [
        ("name", "ça"),
        ("customVocabulary", '["Zürich"]'),
        ("confidenceThreshold", "1.0"),
    ]


def test_from_kwargs_accepts_camel_case_aliases():
    assert SymblOptions.from_kwargs(languageCode="de-DE", enableSummary=True) == SymblOptions(
        language_code="de-DE", enable_summary=True
    )


def test_from_kwargs_rejects_same_option_twice():
    with pytest.raises(SymblOptionsError, match="language_code"):
        SymblOptions.from_kwargs(languageCode="de-DE", language_code="de-DE")


@pytest.mark.parametrize(
    ("key", "suggestion"),
    [("langauge_code", "language_code"), ("customVocab", "custom_vocabulary"), ("webhook", "webhook_url")],
)
def test_unknown_option_suggests(key, suggestion):
    with pytest.raises(SymblOptionsError) as info:
        SymblOptions.from_kwargs(**{key: "x"})
    assert repr(key) in str(info.value)
    assert f"Did you mean {suggestion!r}" in str(info.value)
    assert info.value.option == key


def test_unknown_option_without_close_match_lists_allowed():
    with pytest.raises(SymblOptionsError) as info:
        SymblOptions.from_kwargs(zzz=1)
    assert "Did you mean" not in str(info.value)
    assert "language_code" in str(info.value)


def test_coerce():
    assert SymblOptions.coerce(None) == SymblOptions()
    assert SymblOptions.coerce({"name": "x"}) == SymblOptions(name="x")
    opts = SymblOptions(mode="phone")
    assert SymblOptions.coerce(opts) is opts
    with pytest.raises(SymblOptionsError, match="options"):
        SymblOptions.coerce(["name"])


def test_replace():
    opts = SymblOptions(name="a", mode="phone")
    assert opts.replace(name="b", languageCode="fr-FR") == SymblOptions(name="b", mode="phone", language_code="fr-FR")
    assert opts.replace(mode=None) == SymblOptions(name="a")


@pytest.mark.parametrize("code", LANGUAGE_CODES)
def test_every_language_code_is_valid(code):
    SymblOptions(language_code=code).validate()


def test_twenty_language_codes():
    assert len(set(LANGUAGE_CODES)) == 20


BAD_VALUES = [
    ("name", ""),
    ("name", 12),
    ("custom_vocabulary", "Platform"),
    ("custom_vocabulary", []),
    ("custom_vocabulary", ["ok", ""]),
    ("custom_vocabulary", ["ok", 3]),
    ("confidence_threshold", 0.49),
    ("confidence_threshold", 1.01),
    ("confidence_threshold", "0.7"),
    ("confidence_threshold", True),
    ("confidence_threshold", float("nan")),
    ("detect_phrases", "true"),
    ("detect_phrases", 1),
    ("webhook_url", "ftp://example.com/x"),
    ("webhook_url", "example.com/hook"),
    ("webhook_url", "https://"),
    ("webhook_url", 5),
    ("entities", {"customType": "x", "text": "y"}),
    ("entities", [{"customType": "x"}]),
    ("entities", [{"text": "y"}]),
    ("entities", [{"customType": "x", "text": "y", "extra": 1}]),
    ("entities", [{"customType": "", "text": "y"}]),
    ("entities", []),
    ("detect_entities", "yes"),
    ("language_code", "en-us"),
    ("language_code", "xx-XX"),
    ("mode", "telephone"),
    ("mode", "PHONE"),
    ("enable_separate_recognition_per_channel", "false"),
    ("trackers", [{"name": "T"}]),
    ("trackers", [{"name": "T", "vocabulary": []}]),
    ("trackers", [{"name": "", "vocabulary": ["a"]}]),
    ("trackers", [{"id": ""}]),
    ("trackers", ["Pricing"]),
    ("trackers", {"name": "T", "vocabulary": ["a"]}),
    ("enable_all_trackers", 0),
    ("enable_summary", "true"),
    ("enable_speaker_diarization", "true"),
    ("conversation_type", ""),
    ("features", ["insights"]),
    ("features", {"x": object()}),
    ("metadata", "stage=1"),
    ("metadata", {1: "x"}),
]


@pytest.mark.parametrize(("option", "value"), BAD_VALUES, ids=[f"{o}-{i}" for i, (o, _) in enumerate(BAD_VALUES)])
def test_invalid_value_names_option(option, value):
    with pytest.raises(SymblOptionsError) as info:
        SymblOptions(**{option: value}).validate()
    assert repr(option) in str(info.value)
    assert "allowed" in str(info.value)
    assert info.value.option == option


def test_every_option_has_a_bad_value_case():
    covered = {o for o, _ in BAD_VALUES} | {"diarization_speaker_count", "channel_metadata"}
    assert covered == set(OPTION_NAMES)


@pytest.mark.parametrize("count", [0, -1, 1.5, "2", True])
def test_diarization_count_must_be_positive_int(count):
    with pytest.raises(SymblOptionsError, match="diarization_speaker_count"):
        SymblOptions(enable_speaker_diarization=True, diarization_speaker_count=count).validate()


@pytest.mark.parametrize("enabled", [None, False])
def test_diarization_count_requires_diarization(enabled):
    with pytest.raises(SymblOptionsError, match="diarization_speaker_count.*enable_speaker_diarization"):
        SymblOptions(enable_speaker_diarization=enabled, diarization_speaker_count=2).validate()


def test_diarization_without_count_is_fine():
    SymblOptions(enable_speaker_diarization=True).validate()


@pytest.mark.parametrize(
    "meta",
    [
        [],
        [{"channel": 0, "speaker": {"name": "a"}}],
        [{"channel": "1", "speaker": {"name": "a"}}],
        [{"channel": 1, "speaker": {}}],
        [{"channel": 1, "speaker": {"name": ""}}],
        [{"channel": 1, "speaker": {"nick": "a"}}],
        [{"channel": 1}],
        [{"channel": 1, "speaker": {"name": "a"}}, {"channel": 1, "speaker": {"name": "b"}}],
        {"channel": 1, "speaker": {"name": "a"}},
    ],
)
def test_channel_metadata_shape(meta):
    with pytest.raises(SymblOptionsError, match="channel_metadata"):
        SymblOptions(enable_separate_recognition_per_channel=True, channel_metadata=meta).validate()


def test_channel_metadata_requires_separate_recognition():
    meta = [{"channel": 1, "speaker": {"name": "a"}}]
    with pytest.raises(SymblOptionsError, match="channel_metadata.*enable_separate_recognition_per_channel"):
        SymblOptions(channel_metadata=meta).validate()
    SymblOptions(enable_separate_recognition_per_channel=True, channel_metadata=meta).validate()


@pytest.mark.parametrize("value", [0.5, 1.0, 1, 0.75])
def test_confidence_bounds_inclusive(value):
    SymblOptions(confidence_threshold=value).validate()


def test_entity_with_value_instead_of_text():
    SymblOptions(entities=[{"customType": "X", "value": "y"}]).validate()


def test_options_error_is_value_error():
    assert issubclass(SymblOptionsError, ValueError)
