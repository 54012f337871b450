"""Media the provider can send, recognised by content: one :class:`~symbl_airflow.media.base.MediaSource`
per kind of recording (the seam is documented in :mod:`symbl_airflow.media.base`).

Members: ``mp4`` (:mod:`symbl_airflow.media.mp4`, MP4 video, sent as stored), ``audio``
(:mod:`symbl_airflow.media.audiofile`, the audio API's formats) and ``convert``
(:mod:`symbl_airflow.media.container`, other containers, converted). A new member is a
module here that calls ``register`` at import, named in :data:`MEMBER_MODULES`.
"""

from __future__ import annotations

import importlib

from symbl_airflow.media.base import (
    ENDPOINTS,
    KINDS,
    SNIFF_BYTES,
    Inspection,
    MediaSource,
    MediaSourceError,
    Payload,
    RangeReader,
    Segment,
    detect,
    member,
    members,
    register,
    segment_uri,
    split_segment_uri,
)

#: Modules whose import registers a member, in the order they are asked (content decides; the key's
#: extension only moves a member to the front).
MEMBER_MODULES = ("symbl_airflow.media.mp4", "symbl_airflow.media.audiofile", "symbl_airflow.media.container")

_loaded = False


def load_members() -> list[MediaSource]:
    """Import every member module once; the registry's members."""
    global _loaded
    if not _loaded:
        for name in MEMBER_MODULES:
            importlib.import_module(name)
        _loaded = True
    return members()


__all__ = [
    "ENDPOINTS",
    "KINDS",
    "MEMBER_MODULES",
    "SNIFF_BYTES",
    "Inspection",
    "MediaSource",
    "MediaSourceError",
    "Payload",
    "RangeReader",
    "Segment",
    "detect",
    "load_members",
    "member",
    "members",
    "register",
    "segment_uri",
    "split_segment_uri",
]
