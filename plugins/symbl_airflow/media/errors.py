"""Errors of the media layer; each message names the object and what to do next."""

from __future__ import annotations

from symbl_airflow.media.base import MediaSourceError

#: Said by every "cannot be decoded" message: the conversation stops there until a person acts.
WAY_FORWARD = (
    "replace the object with a readable recording and rerun, or accept the hole on purpose: "
    "'python -m symbl_airflow.ledger leave-out <ledger> --part {uri}'"
)


class MediaError(MediaSourceError):
    """A media object that cannot be sent as it is; the message names it and the fix."""


class UndecodableMediaError(MediaError):
    """Media that cannot be read (truncated, corrupt, or not what its name says).

    It stops the conversation like a failed job: nothing after it is sent.
    """

    #: The version found undecodable (set by the S3 inspection, so the engine can record the part).
    etag: str = ""
    size: int = 0

    def __init__(self, uri: str, reason: str):
        self.uri = uri
        self.reason = reason
        super().__init__(f"source {uri!r} cannot be decoded ({reason}); " + WAY_FORWARD.format(uri=uri))


class NotMediaError(MediaError):
    """Not audio or video (text, captions, images, ...): never a part; named with the reason, never blocking."""

    def __init__(self, uri: str, reason: str):
        self.uri = uri
        self.reason = reason
        super().__init__(f"source {uri!r} is not a recording ({reason}); it is not appended")


class TooLongError(MediaError):
    """A part longer than ``max_part_seconds`` with ``on_too_long="fail"``."""


class MediaExtraMissing(MediaError, ImportError):
    """Converting or cutting media needs the ``media`` extra (ffmpeg and PyAV)."""

    def __init__(self, uri: str, what: str, missing: str):
        super().__init__(
            f"source {uri!r} needs {what}, which needs {missing}: install the media extra, "
            "'pip install \"symbl-airflow[media]\"' (PyAV and imageio-ffmpeg, which ships an ffmpeg binary)"
        )
