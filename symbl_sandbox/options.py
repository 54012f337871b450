"""Async API options: decoding the query-string encodings seen in the wild and the JSON body, then validation.

Apart from HTTP so the model, the tests and both kinds of endpoint (file: query string; URL: JSON body)
share one set of rules; every error names the option, as the sandbox's 400 bodies do.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from symbl_sandbox.model import SandboxError

LANGUAGE_CODES = (
    "en-US en-GB en-AU en-IE en-IN en-ZA ru-RU fr-CA fr-FR de-DE it-IT nl-NL ja-JP es-US es-ES ar-SA hi-IN "
    "pt-BR pt-PT fa-IR"
).split()


class OptionError(SandboxError):
    status = 400


STRINGS = ("name", "conversationType")
BOOLEANS = (
    "detectPhrases",
    "detectEntities",
    "enableSeparateRecognitionPerChannel",
    "enableAllTrackers",
    "enableSummary",
    "enableSpeakerDiarization",
)
LISTS = ("customVocabulary", "entities", "trackers", "channelMetadata")
OBJECTS = ("features", "metadata")
OPTION_NAMES = (
    *STRINGS,
    *BOOLEANS,
    *LISTS,
    *OBJECTS,
    "confidenceThreshold",
    "webhookUrl",
    "languageCode",
    "mode",
    "diarizationSpeakerCount",
)
_BRACKETS = re.compile(r"\[([^\]]*)\]")
#: Optional strings where "" means "not given": the reference's own POST /v1/process/video/url body example
#: (symbl-docs post-video-url.md) sends ``"webhookUrl": ""`` (and ``"channelMetadata": []``, accepted as a list).
EMPTY_MEANS_UNSET = ("webhookUrl", "name")


def _maybe_json(value: Any) -> Any:
    if isinstance(value, str) and value.strip()[:1] in ("[", "{"):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _listify_tree(node: Any) -> Any:
    """Turn ``{"0": a, "1": b}`` dicts produced by ``key[0]=a&key[1]=b`` into lists, recursively."""
    if isinstance(node, dict):
        node = {k: _listify_tree(v) for k, v in node.items()}
        if node and all(k.isdigit() for k in node):
            return [node[k] for k in sorted(node, key=int)]
        return node
    return _maybe_json(node)


def _bracket_value(name: str, items: list[tuple[str, str]]) -> Any:
    """Decode qs-style keys: ``entities[0][customType]=x``, ``customVocabulary[]=a``, ``trackers[1]={...}``."""
    root: dict[str, Any] = {}
    appended = 0
    for key, value in items:
        segments = _BRACKETS.findall(key[len(name) :])
        node = root
        for i, seg in enumerate(segments):
            if seg == "":
                seg = str(appended if i == 0 else len(node))
                if i == 0:
                    appended += 1
            if i == len(segments) - 1:
                node[seg] = value
            else:
                node = node.setdefault(seg, {})
                if not isinstance(node, dict):
                    raise OptionError(f'"{name}" has conflicting bracketed keys')
    return _listify_tree(root)


def _list_from_string(name: str, value: str) -> Any:
    text = value.strip()
    if text.startswith("[") or text.startswith("{"):
        try:
            parsed = json.loads(text)
        except ValueError:
            if text.startswith("[") and text.endswith("]"):
                # Go SDK style: [a,b] without quotes
                inner = text[1:-1].strip()
                return [p.strip().strip('"').strip("'") for p in inner.split(",")] if inner else []
            raise OptionError(f'"{name}" must be a valid JSON array') from None
        return parsed if isinstance(parsed, list) else [parsed]
    return [value]


def options_from_query(query: Mapping[str, str]) -> dict[str, Any]:
    """Collect raw option values from a query string, accepting every encoding seen in the wild (§2.3)."""
    raw: dict[str, Any] = {}
    keys = list(dict.fromkeys(query.keys()))

    def getall(key: str) -> list[str]:
        if hasattr(query, "getall"):
            return list(query.getall(key, []))
        return [query[key]] if key in query else []

    for name in OPTION_NAMES:
        plain = getall(name)
        bracketed = [(k, v) for k in keys if k.startswith(name + "[") for v in getall(k)]
        if not plain and not bracketed:
            continue
        if name in LISTS:
            values: list[Any] = []
            if len(plain) > 1 and all(len(p) == 1 for p in plain) and "".join(plain).startswith("["):
                # the official Python SDK sends one customVocabulary parameter per character of its JSON
                values.extend(_list_from_string(name, "".join(plain)))
            elif len(plain) == 1:
                values.extend(_list_from_string(name, plain[0]))
            else:
                for p in plain:
                    parsed = _maybe_json(p)
                    values.extend(parsed if isinstance(parsed, list) else [parsed])
            if bracketed:
                tree = _bracket_value(name, bracketed)
                values.extend(tree if isinstance(tree, list) else [tree])
            raw[name] = values
        elif name in OBJECTS:
            if bracketed:
                raw[name] = _bracket_value(name, bracketed)
            else:
                try:
                    raw[name] = json.loads(plain[-1])
                except ValueError:
                    raise OptionError(f'"{name}" must be a JSON object') from None
        else:
            raw[name] = plain[-1]
    return raw


def _bool(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise OptionError(f'"{name}" must be a boolean ("true" or "false")')


def _str(name: str, value: Any, *, empty_ok: bool = False) -> str:
    if not isinstance(value, str) or (not empty_ok and not value.strip()):
        raise OptionError(f'"{name}" must be a non-empty string')
    return value


def _int(name: str, value: Any) -> int:
    if isinstance(value, bool):
        raise OptionError(f'"{name}" must be an integer')
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and re.fullmatch(r"\s*[+-]?\d+\s*", value):
        return int(value)
    raise OptionError(f'"{name}" must be an integer')


def _number(name: str, value: Any) -> float:
    if isinstance(value, bool):
        raise OptionError(f'"{name}" must be a number')
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    raise OptionError(f'"{name}" must be a number')


def http_url(name: str, value: Any) -> str:
    text = _str(name, value)
    parts = urlsplit(text.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise OptionError(f'"{name}" must be a valid http(s) URL')
    return text.strip()


def _list(name: str, value: Any) -> list[Any]:
    value = _maybe_json(value)
    if not isinstance(value, list):
        raise OptionError(f'"{name}" must be an array')
    return value


def _object(name: str, value: Any) -> dict[str, Any]:
    value = _maybe_json(value)
    if not isinstance(value, dict):
        raise OptionError(f'"{name}" must be an object')
    return value


def validate_options(raw: Mapping[str, Any]) -> dict[str, Any]:
    """Type-check and normalise options (camelCase keys kept); raises :class:`OptionError` naming the option."""
    out: dict[str, Any] = {}
    for name, value in raw.items():
        if name not in OPTION_NAMES or value is None:
            continue
        if name in EMPTY_MEANS_UNSET and isinstance(value, str) and not value.strip():
            continue
        if name in STRINGS:
            out[name] = _str(name, value)
        elif name in BOOLEANS:
            out[name] = _bool(name, value)
        elif name in OBJECTS:
            out[name] = _object(name, value)
        elif name == "confidenceThreshold":
            number = _number(name, value)
            if not 0.5 <= number <= 1.0:
                raise OptionError(f'"{name}" must be a number between 0.5 and 1.0')
            out[name] = number
        elif name == "webhookUrl":
            out[name] = http_url(name, value)
        elif name == "languageCode":
            if value not in LANGUAGE_CODES:
                raise OptionError(f'"{name}" must be one of [{", ".join(LANGUAGE_CODES)}]')
            out[name] = value
        elif name == "mode":
            if value not in ("phone", "default"):
                raise OptionError(f'"{name}" must be one of [phone, default]')
            out[name] = value
        elif name == "diarizationSpeakerCount":
            count = _int(name, value)
            if count < 1:
                raise OptionError(f'"{name}" must be greater than or equal to 1')
            out[name] = count
        elif name == "customVocabulary":
            items = _list(name, value)
            for i, item in enumerate(items):
                if not isinstance(item, str):
                    raise OptionError(f'"{name}[{i}]" must be a string')
            out[name] = items
        elif name == "entities":
            out[name] = [_entity(f"{name}[{i}]", e) for i, e in enumerate(_list(name, value))]
        elif name == "trackers":
            out[name] = [_tracker(f"{name}[{i}]", t) for i, t in enumerate(_list(name, value))]
        elif name == "channelMetadata":
            out[name] = [_channel(f"{name}[{i}]", c) for i, c in enumerate(_list(name, value))]
    return out


def _entity(where: str, value: Any) -> dict[str, Any]:
    entity = _object(where, value)
    out = {
        "customType": _str(f"{where}.customType", entity.get("customType")),
        "text": _str(f"{where}.text", entity.get("text")),
    }
    if entity.get("value") is not None:
        out["value"] = _str(f"{where}.value", entity["value"])
    return out


def _tracker(where: str, value: Any) -> dict[str, Any]:
    tracker = _object(where, value)
    if "vocabulary" not in tracker and "name" not in tracker and tracker.get("id") is not None:
        return {"id": _str(f"{where}.id", str(tracker["id"]))}
    name = _str(f"{where}.name", tracker.get("name"))
    vocabulary = tracker.get("vocabulary")
    if not isinstance(vocabulary, list) or not vocabulary:
        raise OptionError(f'"{where}.vocabulary" must be a non-empty array of strings')
    for i, phrase in enumerate(vocabulary):
        _str(f"{where}.vocabulary[{i}]", phrase)
    return {"name": name, "vocabulary": list(vocabulary)}


def _channel(where: str, value: Any) -> dict[str, Any]:
    meta = _object(where, value)
    channel = _int(f"{where}.channel", meta.get("channel"))
    if channel < 1:
        raise OptionError(f'"{where}.channel" must be greater than or equal to 1')
    speaker = meta.get("speaker")
    if not isinstance(speaker, dict):
        raise OptionError(f'"{where}.speaker" must be an object with "name" and "email"')
    out_speaker = {"name": _str(f"{where}.speaker.name", speaker.get("name"))}
    if speaker.get("email") is not None:
        out_speaker["email"] = _str(f"{where}.speaker.email", speaker["email"])
    return {"channel": channel, "speaker": out_speaker}


def options_from_body(body: Mapping[str, Any], query: Mapping[str, str]) -> dict[str, Any]:
    """Options of a URL endpoint: the JSON body's, over any given in the query string (diarization in
    particular, where the reference disagrees with itself); the body wins."""
    return validate_options({**options_from_query(query), **{k: v for k, v in body.items() if k in OPTION_NAMES}})


__all__ = [
    "LANGUAGE_CODES",
    "OPTION_NAMES",
    "OptionError",
    "http_url",
    "options_from_body",
    "options_from_query",
    "validate_options",
]
