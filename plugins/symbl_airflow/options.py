"""Symbl processing options: names, types, validation and the two wire encodings.

File endpoints take options as query parameters (the body is the media); URL endpoints take them in
the JSON body next to ``url``. Both encodings come from one declaration so they cannot drift apart.
This module knows nothing of HTTP or Airflow.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any
from urllib.parse import urlencode, urlparse

from symbl_airflow.errors import SymblOptionsError

#: The ``languageCode`` values Symbl's async audio/video API accepts.
LANGUAGE_CODES: tuple[str, ...] = (
    "en-US",
    "en-GB",
    "en-AU",
    "en-IE",
    "en-IN",
    "en-ZA",
    "ru-RU",
    "fr-CA",
    "fr-FR",
    "de-DE",
    "it-IT",
    "nl-NL",
    "ja-JP",
    "es-US",
    "es-ES",
    "ar-SA",
    "hi-IN",
    "pt-BR",
    "pt-PT",
    "fa-IR",
)
MODES: tuple[str, ...] = ("phone", "default")
CONFIDENCE_MIN = 0.5
CONFIDENCE_MAX = 1.0
#: Longest request URL (path and query string) Symbl's servers read; longer ones are refused with 400
#: "Got more than 8190 bytes when reading". File endpoints carry the options in that query string.
MAX_REQUEST_LINE_BYTES = 8190
#: The longest file-endpoint path the hooks send (an append; conversation ids are 16-19 digits).
LONGEST_FILE_PATH = "/v1/process/video/" + "0" * 32


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


@dataclass(frozen=True)
class SymblOptions:
    """Options for a Symbl async submission; every field defaults to ``None`` (not sent)."""

    name: str | None = None
    custom_vocabulary: list[str] | None = None
    confidence_threshold: float | None = None
    detect_phrases: bool | None = None
    webhook_url: str | None = None
    entities: list[dict] | None = None
    detect_entities: bool | None = None
    language_code: str | None = None
    mode: str | None = None
    enable_separate_recognition_per_channel: bool | None = None
    channel_metadata: list[dict] | None = None
    trackers: list[dict] | None = None
    enable_all_trackers: bool | None = None
    enable_summary: bool | None = None
    enable_speaker_diarization: bool | None = None
    diarization_speaker_count: int | None = None
    conversation_type: str | None = None
    features: dict | None = None
    metadata: dict | None = None

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_kwargs(cls, **kwargs: Any) -> SymblOptions:
        """Build from snake_case (or Symbl's camelCase) names; an unknown name is an error, not ignored.

        Values are not validated here; call :meth:`validate` (the hooks do before any request).
        """
        values: dict[str, Any] = {}
        for key, value in kwargs.items():
            field_name = _ALIASES.get(key)
            if field_name is None:
                hint = difflib.get_close_matches(key, [*OPTION_NAMES, *_CAMEL_NAMES], n=1, cutoff=0.6)
                suggestion = f" Did you mean {_ALIASES[hint[0]]!r}?" if hint else ""
                raise SymblOptionsError(
                    f"Unknown Symbl option {key!r}.{suggestion} Allowed options: {', '.join(OPTION_NAMES)}",
                    option=key,
                    allowed=", ".join(OPTION_NAMES),
                )
            if field_name in values:
                raise SymblOptionsError(
                    f"Symbl option {field_name!r} was given twice (as {key!r} and another spelling)",
                    option=field_name,
                )
            values[field_name] = value
        return cls(**values)

    @classmethod
    def coerce(cls, value: SymblOptions | Mapping[str, Any] | None) -> SymblOptions:
        """Accept ``None``, a mapping (e.g. from a templated operator argument) or an instance."""
        if value is None:
            return cls()
        if isinstance(value, SymblOptions):
            return value
        if isinstance(value, Mapping):
            return cls.from_kwargs(**dict(value))
        raise SymblOptionsError(
            f"options must be a SymblOptions or a dict of option names to values, got {type(value).__name__}",
            option="options",
            allowed="SymblOptions or dict",
        )

    def replace(self, **changes: Any) -> SymblOptions:
        """Return a copy with some options changed (same names as :meth:`from_kwargs`)."""
        merged = self.to_dict()
        merged.update(type(self).from_kwargs(**changes).to_dict())
        for key, value in changes.items():
            if value is None:
                merged.pop(_ALIASES[key], None)
        return type(self)(**merged)

    # ------------------------------------------------------------------ validation
    def validate(self) -> None:
        """Check every option; raise :class:`SymblOptionsError` naming the first bad one."""
        if self.name is not None:
            _check_text("name", self.name)
        if self.custom_vocabulary is not None:
            _check_text_list("custom_vocabulary", self.custom_vocabulary)
        if self.confidence_threshold is not None:
            value = self.confidence_threshold
            if not _is_number(value) or not (CONFIDENCE_MIN <= value <= CONFIDENCE_MAX):
                _fail(
                    "confidence_threshold",
                    value,
                    f"a number from {CONFIDENCE_MIN} to {CONFIDENCE_MAX} (inclusive)",
                )
        for flag in _BOOL_FIELDS:
            value = getattr(self, flag)
            if value is not None and not isinstance(value, bool):
                _fail(flag, value, "true or false (a boolean, not a string)")
        if self.webhook_url is not None:
            _check_http_url("webhook_url", self.webhook_url)
        if self.entities is not None:
            _check_entities(self.entities)
        if self.language_code is not None and self.language_code not in LANGUAGE_CODES:
            _fail("language_code", self.language_code, "one of " + ", ".join(LANGUAGE_CODES))
        if self.mode is not None and self.mode not in MODES:
            _fail("mode", self.mode, "'phone' or 'default'")
        if self.channel_metadata is not None:
            _check_channel_metadata(self.channel_metadata)
            if self.enable_separate_recognition_per_channel is not True:
                _fail(
                    "channel_metadata",
                    "(set)",
                    "only together with enable_separate_recognition_per_channel=True",
                )
        if self.trackers is not None:
            _check_trackers(self.trackers)
        if self.diarization_speaker_count is not None:
            value = self.diarization_speaker_count
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                _fail("diarization_speaker_count", value, "an integer >= 1")
            if self.enable_speaker_diarization is not True:
                _fail(
                    "diarization_speaker_count",
                    value,
                    "only together with enable_speaker_diarization=True",
                )
        if self.conversation_type is not None:
            _check_text("conversation_type", self.conversation_type)
        for obj_name in ("features", "metadata"):
            value = getattr(self, obj_name)
            if value is not None:
                _check_json_object(obj_name, value)

    # ------------------------------------------------------------------ encodings
    def to_query_params(self) -> list[tuple[str, str]]:
        """Encode for file endpoints: camelCase keys; lists/objects as compact JSON; booleans lowercase.

        Raises :class:`SymblOptionsError` when the encoded options would not fit in a request line.
        """
        params = [(_camel(name), _query_value(value)) for name, value in self._items()]
        _check_request_line(params)
        return params

    def check_request_line(self, path: str = LONGEST_FILE_PATH) -> None:
        """Fail when these options, sent in the query string of a file upload, exceed Symbl's request line.

        Call it up front for uploads of file bodies; URL submissions carry the options in a JSON body
        and have no such limit.
        """
        _check_request_line([(_camel(name), _query_value(value)) for name, value in self._items()], path)

    def to_json_body(self) -> dict:
        """Encode for URL endpoints: camelCase keys, native JSON values."""
        return {_camel(name): _plain(value) for name, value in self._items()}

    def to_dict(self) -> dict:
        """Snake_case, non-``None`` options only (for XCom, the task state store and logs)."""
        return {name: _plain(value) for name, value in self._items()}

    def is_empty(self) -> bool:
        return not any(True for _ in self._items())

    def _items(self):
        for f in fields(self):
            value = getattr(self, f.name)
            if value is not None:
                yield f.name, value


OPTION_NAMES: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(SymblOptions))
_CAMEL_NAMES: tuple[str, ...] = tuple(_camel(n) for n in OPTION_NAMES)
_ALIASES: dict[str, str] = {**{n: n for n in OPTION_NAMES}, **{_camel(n): n for n in OPTION_NAMES}}
_BOOL_FIELDS: tuple[str, ...] = (
    "detect_phrases",
    "detect_entities",
    "enable_separate_recognition_per_channel",
    "enable_all_trackers",
    "enable_summary",
    "enable_speaker_diarization",
)


# ---------------------------------------------------------------------- helpers
def request_line_bytes(params: list[tuple[str, str]], path: str = LONGEST_FILE_PATH) -> int:
    """Bytes of the request URL ``path?query`` as requests encodes it: what Symbl's limit counts."""
    query = urlencode(params)
    return len(f"{path}{'?' if query else ''}{query}".encode())


def _check_request_line(params: list[tuple[str, str]], path: str = LONGEST_FILE_PATH) -> None:
    total = request_line_bytes(params, path)
    if total <= MAX_REQUEST_LINE_BYTES:
        return
    sizes = {key: len(urlencode([(key, value)])) for key, value in params}
    biggest = max(sizes, key=sizes.__getitem__)
    option = _ALIASES.get(biggest, biggest)
    raise SymblOptionsError(
        f"Symbl option {option!r} is too long: it encodes to {sizes[biggest]:,} bytes in the query string, "
        f"making the request URL {total:,} bytes where Symbl accepts at most {MAX_REQUEST_LINE_BYTES:,} "
        f"(options of file uploads travel in the URL). Shorten {option!r}, or send the video by URL "
        "(upload_mode='url': options then go in a JSON body)",
        option=option,
        allowed=f"options encoding to a request URL of at most {MAX_REQUEST_LINE_BYTES} bytes",
    )


def _fail(option: str, value: Any, allowed: str) -> None:
    shown = repr(value)
    if len(shown) > 120:
        shown = shown[:117] + "..."
    raise SymblOptionsError(
        f"Invalid Symbl option {option!r}: got {shown}; allowed: {allowed}",
        option=option,
        allowed=allowed,
    )


def _is_number(value: Any) -> bool:
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and not (isinstance(value, float) and not math.isfinite(value))
    )


def _is_list(value: Any) -> bool:
    return isinstance(value, (list, tuple))


def _check_text(option: str, value: Any) -> None:
    if not isinstance(value, str) or not value.strip():
        _fail(option, value, "a non-empty string")


def _check_text_list(option: str, value: Any) -> None:
    if not _is_list(value) or not value:
        _fail(option, value, "a non-empty list of non-empty strings")
    for item in value:
        if not isinstance(item, str) or not item.strip():
            _fail(option, value, "a non-empty list of non-empty strings")


def _check_http_url(option: str, value: Any) -> None:
    ok = False
    if isinstance(value, str) and value == value.strip():
        parsed = urlparse(value)
        ok = parsed.scheme in ("http", "https") and bool(parsed.hostname)
    if not ok:
        _fail(option, value, "an absolute http:// or https:// URL")


def _check_entities(value: Any) -> None:
    allowed = "a non-empty list of objects {'customType': str, 'text': str} (or 'value' instead of 'text')"
    if not _is_list(value) or not value:
        _fail("entities", value, allowed)
    for item in value:
        if not isinstance(item, Mapping) or set(item) - {"customType", "text", "value"}:
            _fail("entities", value, allowed)
        custom_type = item.get("customType")
        texts = [item[k] for k in ("text", "value") if k in item]
        if not isinstance(custom_type, str) or not custom_type.strip() or not texts:
            _fail("entities", value, allowed)
        if not all(isinstance(t, str) and t.strip() for t in texts):
            _fail("entities", value, allowed)


def _check_trackers(value: Any) -> None:
    allowed = "a non-empty list of objects {'name': str, 'vocabulary': [str, ...]} or {'id': str}"
    if not _is_list(value) or not value:
        _fail("trackers", value, allowed)
    for item in value:
        if not isinstance(item, Mapping):
            _fail("trackers", value, allowed)
        if set(item) == {"id"}:
            if not isinstance(item["id"], str) or not item["id"].strip():
                _fail("trackers", value, allowed)
            continue
        if set(item) != {"name", "vocabulary"}:
            _fail("trackers", value, allowed)
        name, vocabulary = item["name"], item["vocabulary"]
        if not isinstance(name, str) or not name.strip():
            _fail("trackers", value, allowed)
        if not _is_list(vocabulary) or not vocabulary:
            _fail("trackers", value, allowed)
        if not all(isinstance(v, str) and v.strip() for v in vocabulary):
            _fail("trackers", value, allowed)


def _check_channel_metadata(value: Any) -> None:
    allowed = (
        "a non-empty list of objects {'channel': int >= 1, 'speaker': {'name': str, 'email': str}} "
        "with distinct channels"
    )
    if not _is_list(value) or not value:
        _fail("channel_metadata", value, allowed)
    seen: set[int] = set()
    for item in value:
        if not isinstance(item, Mapping) or set(item) != {"channel", "speaker"}:
            _fail("channel_metadata", value, allowed)
        channel, speaker = item["channel"], item["speaker"]
        if isinstance(channel, bool) or not isinstance(channel, int) or channel < 1 or channel in seen:
            _fail("channel_metadata", value, allowed)
        seen.add(channel)
        if not isinstance(speaker, Mapping) or not speaker or set(speaker) - {"name", "email"}:
            _fail("channel_metadata", value, allowed)
        if not all(isinstance(v, str) and v.strip() for v in speaker.values()):
            _fail("channel_metadata", value, allowed)


def _check_json_object(option: str, value: Any) -> None:
    allowed = "a JSON object (dict with string keys)"
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        _fail(option, value, allowed)
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        _fail(option, value, allowed)


def _plain(value: Any) -> Any:
    """Deep-copy into plain JSON types (tuples -> lists, mappings -> dicts)."""
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if _is_list(value):
        return [_plain(v) for v in value]
    return value


def _query_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value) if isinstance(value, float) else str(value)
    if isinstance(value, str):
        return value
    return json.dumps(_plain(value), separators=(",", ":"), ensure_ascii=False)
