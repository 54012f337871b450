"""The media seam: what a kind of recording must tell the append engine, and how one is picked.

A member of the registry is a :class:`MediaSource`: it recognises its files by their first bytes
(the key's extension is only a hint), inspects one stored object through ranged reads without
downloading it, and gives the bytes to send for it (a :class:`Payload`). The engine never looks at
media itself; it sends each :class:`Inspection`'s parts to the Symbl API its ``endpoint`` names.

Adding a media type (README, "Adding a media type or an endpoint"):

1. a module ``symbl_airflow/media/<name>.py`` with a class implementing :class:`MediaSource`;
2. ``register(Member())`` at its import, and its module name in ``MEMBER_MODULES``
   (``symbl_airflow/media/__init__.py``), so the registry loads it;
3. ``sniff`` must be cheap and strict (it sees :data:`SNIFF_BYTES` bytes), ``inspect`` must raise
   :class:`MediaSourceError` naming the object and the fix for anything Symbl would refuse or fail on,
   before any byte is sent.

Three shapes a member can give:

- *as stored* (MP4 video today): ``payload`` streams the object's own bytes, ``length`` is its size;
- *converted* (``Inspection.needs_conversion``): ``payload`` writes the bytes to send into a temporary
  file (bounded disk, never memory) and streams that; ``length`` is known once it is written;
- *segmented* (``Inspection.segments``): a recording longer than Symbl takes in one job becomes several
  consecutive parts of the conversation, each its own ledger entry keyed ``<uri>#segment=<n>``
  (:func:`segment_uri`), each a ``payload`` of its own (``segment`` given).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import BinaryIO, Protocol, runtime_checkable

#: Bytes every member's ``sniff`` sees (the start of the object).
SNIFF_BYTES = 64
#: The Symbl API families a part can go to (``/v1/process/{endpoint}``).
ENDPOINTS = ("video", "audio")
KINDS = ("video", "audio")
#: How a segment of one stored recording is told apart in the ledger and the logs.
SEGMENT_MARK = "#segment="


class MediaSourceError(ValueError):
    """A source that cannot be sent; the message names the source and the fix."""


class RangeReader(Protocol):
    """Ranged reads of one stored object version (``symbl_airflow.sources`` gives one over S3)."""

    size: int

    def read(self, offset: int, length: int, ahead: int = 0) -> bytes:
        """Up to ``length`` bytes at ``offset``; ``ahead``: fetch that much more in the same request."""


@dataclass(frozen=True)
class Segment:
    """One consecutive piece of a long recording, sent as its own part (``index`` from 1)."""

    index: int
    start_seconds: float
    end_seconds: float

    @property
    def seconds(self) -> float:
        return self.end_seconds - self.start_seconds


@dataclass(frozen=True)
class Inspection:
    """What a member learned of one object: enough to validate it and to send it."""

    #: ``"video"`` or ``"audio"``: what the recording is.
    kind: str
    #: ``"video"`` or ``"audio"``: the Symbl API family that takes it (``/v1/process/{endpoint}``).
    endpoint: str
    #: The upload's ``Content-Type``.
    content_type: str
    #: Seconds of media (None when the file does not say): when its Symbl job can be expected done.
    media_seconds: float | None = None
    #: One kind per track, in file order (``video``, ``audio``, ``text`` or the raw handler type).
    tracks: tuple[str, ...] = ()
    #: When the recording was made, if the file says so (UTC): the meeting date of insights tables.
    creation_time: datetime | None = None
    #: The stored bytes are not what is sent: ``payload`` converts (through a temporary file).
    needs_conversion: bool = False
    #: Non-empty: the object is sent as these consecutive parts, in order.
    segments: tuple[Segment, ...] = field(default=())
    #: The member that inspected it (its registry name), to find it again for ``payload``.
    member: str = ""

    @property
    def has_audio(self) -> bool:
        return "audio" in self.tracks or (self.kind == "audio" and not self.tracks)

    def to_dict(self) -> dict:
        """Small and JSON-safe: what a deferred task carries to its resumption."""
        data = {"kind": self.kind, "endpoint": self.endpoint, "content_type": self.content_type, "member": self.member}
        if self.needs_conversion:
            data["needs_conversion"] = True
        if self.segments:
            data["segments"] = [[s.index, s.start_seconds, s.end_seconds] for s in self.segments]
        return data


class Payload(Protocol):
    """The bytes of one part, as the hook streams them: reopened from the start for every attempt."""

    length: int
    content_type: str

    def open(self) -> BinaryIO | Iterable[bytes]: ...


@dataclass
class StoredBytes:
    """A payload that is the stored object itself (or any reopenable stream of known length)."""

    opener: Callable[[], BinaryIO | Iterable[bytes]]
    length: int
    content_type: str

    def open(self) -> BinaryIO | Iterable[bytes]:
        return self.opener()


@runtime_checkable
class MediaSource(Protocol):
    """One kind of recording the provider can send (see the module docstring)."""

    #: Registry name, e.g. ``"mp4"``.
    name: str
    #: Key endings that hint at this member (lower case, with the dot); content decides.
    extensions: tuple[str, ...]

    def sniff(self, head: bytes) -> bool:
        """True when the object's first :data:`SNIFF_BYTES` bytes are this member's format."""

    def inspect(self, reader: RangeReader, uri: str) -> Inspection:
        """Read what is needed (ranged reads); raise :class:`MediaSourceError` naming ``uri`` and the fix."""

    def payload(
        self,
        open_object: Callable[[], BinaryIO],
        size: int,
        inspection: Inspection,
        segment: Segment | None = None,
        uri: str = "",
    ) -> contextlib.AbstractContextManager[Payload]:
        """The bytes to send (for one ``segment`` of a segmented recording); cleans up on exit.

        ``uri`` names the object in errors. A payload may say ``endpoint`` (what converted bytes turned
        out to be); the engine then sends them there."""


_REGISTRY: dict[str, MediaSource] = {}


def register(member: MediaSource) -> MediaSource:
    """Add a member (idempotent by name; the last registration of a name wins)."""
    _REGISTRY[member.name] = member
    return member


def members() -> list[MediaSource]:
    return list(_REGISTRY.values())


def member(name: str) -> MediaSource:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise MediaSourceError(f"no media member {name!r} (known: {', '.join(_REGISTRY) or 'none'})") from None


def detect(head: bytes, key: str = "") -> MediaSource | None:
    """The member whose format the first bytes are; a member the key's extension names is asked first."""
    lowered = key.lower()
    ordered = sorted(_REGISTRY.values(), key=lambda m: not lowered.endswith(tuple(m.extensions)))
    return next((m for m in ordered if m.sniff(head)), None)


def segment_uri(uri: str, index: int) -> str:
    """The ledger key of segment ``index`` of the recording at ``uri``."""
    return f"{uri}{SEGMENT_MARK}{index}"


def split_segment_uri(part_uri: str) -> tuple[str, int | None]:
    """``(object uri, segment index or None)`` of a ledger key."""
    uri, mark, index = part_uri.rpartition(SEGMENT_MARK)
    if mark and index.isdigit():
        return uri, int(index)
    return part_uri, None


@contextlib.contextmanager
def stored(open_object: Callable[[], BinaryIO], size: int, content_type: str) -> Iterator[Payload]:
    """The plain payload: the object's own bytes, streamed (the fast path; no copy, no temp file)."""
    yield StoredBytes(open_object, size, content_type)
