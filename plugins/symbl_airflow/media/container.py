"""Containers Symbl does not take (WebM/Matroska, AVI, QuickTime that is not MP4-compatible, MPEG-TS,
Ogg video, WMV, ...): the ``convert`` member of the media registry, converted through bounded local disk
(:mod:`symbl_airflow.media.convert`).

Also what every member shares beyond the stored bytes: the Inspection from the one rule of
:mod:`symbl_airflow.media.formats` (``inspection_of``: the ``mp4`` and ``audio`` members hand objects
over here), and the payload of a converted object or of one segment of a long recording
(``prepared_payload``).
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import BinaryIO

from symbl_airflow.media import formats
from symbl_airflow.media.base import Inspection, Payload, RangeReader, Segment, StoredBytes, register
from symbl_airflow.media.convert import CUT_SAFETY_SECONDS, PreparedMedia, check_length, cut_limit, probe_convert
from symbl_airflow.media.reader import RangeReader as CachedReader
from symbl_airflow.media.reader import cached
from symbl_airflow.media.segments import Segment as PlannedSegment
from symbl_airflow.media.segments import clock, plan_segments

log = logging.getLogger(__name__)

CONTAINER_EXTENSIONS = (".webm", ".mkv", ".mka", ".avi", ".mov", ".qt", ".ts", ".m2ts", ".mts", ".mpg", ".mpeg",
                        ".vob", ".flv", ".ogv", ".wmv", ".asf", ".mxf", ".dv", ".caf", ".3gp", ".3g2")  # fmt: skip


def inspection_of(facts: formats.MediaFacts, reader: CachedReader, uri: str) -> Inspection:
    """What the engine needs to know of a media object, by the one rule of ``formats``."""
    if facts.route == formats.CONVERT:
        facts, plan = probe_convert(reader, facts, uri)
        endpoint = plan.endpoint if plan else "video"
        return Inspection(
            kind=endpoint,
            endpoint=endpoint,
            content_type=(plan.content_type if plan else None) or "",
            media_seconds=facts.seconds,
            tracks=facts.tracks or (),
            creation_time=facts.creation_time,
            needs_conversion=True,
            member=CONVERT_MEMBER.name,
        )
    return Inspection(
        kind=facts.route,
        endpoint=facts.route,
        content_type=facts.content_type or "",
        media_seconds=facts.seconds,
        tracks=facts.tracks or (facts.route,),
        creation_time=facts.creation_time,
        member="audio" if facts.route == formats.AUDIO else "mp4",
    )


def with_segments(inspection: Inspection, max_part_seconds: float, on_too_long: str, uri: str) -> Inspection:
    """The inspection with the segments a recording longer than ``max_part_seconds`` is sent as (planned
    before anything is sent; ``on_too_long="fail"`` refuses it instead). Unknown lengths are not cut."""
    seconds = inspection.media_seconds
    check_length(seconds, max_part_seconds, on_too_long, uri)
    if seconds is None:  # sent, but never silently: a part over Symbl's limit would fail its job
        log.info(
            "%s: its length is not in its headers, so it is sent whole, uncut; if it lasts longer than %s, "
            "Symbl fails its job and the conversation stops there",
            uri,
            clock(max_part_seconds),
        )
    if not seconds or seconds <= max_part_seconds:
        return replace(inspection, segments=())
    planned = plan_segments(seconds, cut_limit(max_part_seconds))
    log.info("%s lasts %s: sent as %d consecutive segments of at most %s", uri, clock(seconds), len(planned),
             clock(max_part_seconds))  # fmt: skip
    return replace(inspection, segments=tuple(Segment(s.index + 1, s.start, s.end) for s in planned))


def _planned(inspection: Inspection) -> list[PlannedSegment] | None:
    if not inspection.segments:
        return None
    count = len(inspection.segments)
    return [PlannedSegment(s.index - 1, count, s.start_seconds, s.seconds) for s in inspection.segments]


@contextlib.contextmanager
def prepared_payload(
    open_object: Callable[[], BinaryIO],
    size: int,
    inspection: Inspection,
    segment: Segment | None,
    uri: str,
) -> Iterator[Payload]:
    """Convert and/or cut through a work directory; the one piece asked for, removed on exit."""
    planned = _planned(inspection)
    # Not planned as segments: never cut here either (an unknown length is sent whole). Planned: the limit
    # they were planned under (``cut_limit``'s margin back on), which keyframe cuts must keep.
    longest = max((s.seconds for s in planned or ()), default=0.0)
    limit = longest + min(CUT_SAFETY_SECONDS, longest * 0.02) if planned else math.inf
    with PreparedMedia(
        open_object, size, uri or "this recording", None, max_part_seconds=limit, planned=planned
    ) as prepared:
        only = segment.index - 1 if segment is not None else 0
        for piece in prepared.pieces(only=only):
            body = StoredBytes(piece.opener(), piece.size, piece.content_type or "")
            body.endpoint = piece.endpoint  # what the bytes turned out to be (the engine sends there)
            yield body
            return


class Container:
    """``MediaSource`` for containers Symbl does not take: converted (``convert.py``)."""

    name = "convert"
    extensions = CONTAINER_EXTENSIONS

    def sniff(self, head: bytes) -> bool:
        return formats.signature_route(head) == formats.CONVERT

    def inspect(self, reader: RangeReader, uri: str) -> Inspection:
        reader = cached(reader)
        return inspection_of(formats.inspect(reader, uri.rsplit("/", 1)[-1], uri), reader, uri)

    @contextlib.contextmanager
    def payload(self, open_object, size, inspection, segment=None, uri: str = "") -> Iterator[Payload]:
        with prepared_payload(open_object, size, inspection, segment, uri) as body:
            yield body


CONVERT_MEMBER = register(Container())
