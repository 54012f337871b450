"""The formats Symbl's audio API lists (MP3, WAV, AMR, AAC, AC-3, AIFF, FLAC, Ogg/Opus, WMA, M4A): the
``audio`` member of the media registry. Sent as stored to the audio API, or cut into segments when longer
than ``max_part_seconds``; an Ogg or ASF file with video is handed to the ``convert`` member.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from symbl_airflow.media import formats
from symbl_airflow.media.base import Inspection, Payload, RangeReader, register, stored
from symbl_airflow.media.container import inspection_of, prepared_payload
from symbl_airflow.media.reader import cached

AUDIO_EXTENSIONS = (".wav", ".wave", ".mp3", ".flac", ".ogg", ".oga", ".opus", ".spx", ".aac", ".amr", ".awb",
                    ".aif", ".aiff", ".aifc", ".ac3", ".wma", ".m4a")  # fmt: skip


class AudioFile:
    """``MediaSource`` for the audio API's formats: sent as stored (or cut when too long)."""

    name = "audio"
    extensions = AUDIO_EXTENSIONS

    def sniff(self, head: bytes) -> bool:
        return formats.signature_route(head) == formats.AUDIO

    def inspect(self, reader: RangeReader, uri: str) -> Inspection:
        reader = cached(reader)
        return inspection_of(formats.inspect(reader, uri.rsplit("/", 1)[-1], uri), reader, uri)

    @contextlib.contextmanager
    def payload(self, open_object, size, inspection, segment=None, uri: str = "") -> Iterator[Payload]:
        if segment is None and not inspection.needs_conversion:
            with stored(open_object, size, inspection.content_type) as body:
                yield body
            return
        with prepared_payload(open_object, size, inspection, segment, uri) as body:
            yield body


AUDIO_MEMBER = register(AudioFile())
