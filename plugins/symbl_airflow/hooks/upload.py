"""The streamed upload body: a video goes from its source to Symbl in chunks, never whole in memory."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator
from typing import Any, BinaryIO

#: Bytes read from the source and handed to the socket at a time. 1 MiB: the same throughput and CPU
#: as 8 MiB on the isolated upload path, with an eighth of the memory (docs/benchmarks.md, "chunk size").
DEFAULT_CHUNK_SIZE = 1 << 20


class BodyLengthMismatch(ValueError):
    """The source produced more or fewer bytes than the declared ``Content-Length``."""


class UploadAborted(ValueError):
    """The caller's ``guard`` stopped the body before its end (e.g. the writer lost its lease)."""


class UploadBody:
    """The upload body for one attempt.

    ``__len__`` makes requests send ``Content-Length`` (no chunked encoding); having ``__iter__`` but
    no ``read`` makes urllib3 iterate, so the body streams in ``chunk_size`` pieces. ``handed_out``
    tells whether any byte may have reached the server, ``sent`` how many surely did.

    ``guard`` (optional) is called before every chunk; whatever it raises aborts the body there, as
    :class:`UploadAborted`: a body cut short is never accepted, so nothing more reaches Symbl.
    """

    def __init__(
        self,
        open_body: Callable[[], BinaryIO | Iterable[bytes]],
        length: int,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
        on_progress: Callable[[int], None] | None = None,
        guard: Callable[[], None] | None = None,
    ) -> None:
        self._open_body = open_body
        self._guard = guard
        self.length = length
        self.chunk_size = chunk_size
        self._on_progress = on_progress
        self.sent = 0
        self.handed_out = False
        self._source: Any = None

    @property
    def complete(self) -> bool:
        return self.sent >= self.length

    def __len__(self) -> int:
        return self.length

    def __iter__(self) -> Iterator[bytes]:
        if self._source is not None:
            raise RuntimeError("an upload body can be iterated only once per attempt")
        self._source = self._open_body()
        # One chunk of lookahead: the last chunk is held back until the source is known to end at
        # exactly ``length`` bytes, so a wrong length never gives the server a complete body.
        pending: bytes | None = None
        total = 0
        for chunk in self._raw_chunks(self._source):
            total += len(chunk)
            if total > self.length:
                raise BodyLengthMismatch(f"the source has more than length={self.length} bytes")
            if pending is not None:
                yield from self._emit(pending)
            pending = chunk
        if total != self.length:
            raise BodyLengthMismatch(f"the source ended after {total} bytes but length={self.length}")
        if pending is not None:
            yield from self._emit(pending)

    def _raw_chunks(self, source: Any) -> Iterator[bytes]:
        if hasattr(source, "read"):
            remaining = self.length
            while True:
                # Past the declared length, read one byte: only to detect a longer source.
                data = source.read(min(self.chunk_size, remaining) if remaining > 0 else 1)
                if not data:
                    return
                remaining -= len(data)
                yield bytes(data)
        for data in source:
            if data:
                yield bytes(data)

    def _emit(self, chunk: bytes) -> Iterator[bytes]:
        for start in range(0, len(chunk), self.chunk_size):
            piece = chunk[start : start + self.chunk_size]
            if self._guard is not None:
                try:
                    self._guard()
                except Exception as exc:
                    raise UploadAborted(str(exc) or type(exc).__name__) from exc
            self.handed_out = True
            yield piece
            self.sent += len(piece)
            self._progress()

    def _progress(self) -> None:
        if self._on_progress is None:
            return
        try:
            self._on_progress(self.sent)
        except Exception:
            # A broken progress callback must not turn a good upload into an ambiguous one.
            self._on_progress = None

    def close(self) -> None:
        source, self._source = self._source, None
        close = getattr(source, "close", None)
        if callable(close):
            with contextlib.suppress(Exception):  # closing a spent stream is best-effort
                close()
