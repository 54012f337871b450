"""Which Content-Type each async file endpoint takes, as the reference says (no HTTP here: the rule only).

* Video (``/v1/process/video``): ``video/mp4``, mandatory; "This API supports only mp4 file formats"
  ([D] post-video.md, put-video.md).
* Audio (``/v1/process/audio``): the header is optional and restricted to ``audio/wav``, ``audio/mpeg``,
  ``audio/mp3``, ``audio/wave``; "if your format is not one of the four listed, do not send the header"
  ([D] post-audio.md), "the API will automatically detect the content type. But when it's mentioned, audio
  format is validated" ([N] older post-audio revision). The formats the audio API takes are the FAQ's
  list (:data:`AUDIO_FORMATS`); they are recognised by content, so ``audio/mp4`` (m4a), ``audio/flac`` …
  are refused: send those without a Content-Type.
"""

from __future__ import annotations

from symbl_sandbox.model import SandboxError

VIDEO_CONTENT_TYPES = ("video/mp4",)
AUDIO_CONTENT_TYPES = ("audio/wav", "audio/mpeg", "audio/mp3", "audio/wave")
#: [D] faq.md (2022): the audio formats Symbl takes (the 2021 FAQ did not list m4a).
AUDIO_FORMATS = ("mp3", "wav", "amr", "aac", "ac3", "aiff", "flac", "ogg", "opus", "wma", "m4a")


class ContentTypeError(SandboxError):
    status = 400


def check_content_type(kind: str, mimetype: str | None) -> None:
    """Raise :class:`ContentTypeError` when ``mimetype`` (None or "": no header) is not what ``kind`` takes."""
    if kind == "video" and mimetype not in VIDEO_CONTENT_TYPES:
        raise ContentTypeError(
            f"Content-Type must be video/mp4 for video uploads, got {mimetype or 'none'}; only mp4 is supported."
        )
    if kind == "audio" and mimetype and mimetype not in AUDIO_CONTENT_TYPES:
        raise ContentTypeError(
            f"Content-Type must be one of {', '.join(AUDIO_CONTENT_TYPES)} (or omitted), got {mimetype}; "
            f"send other audio formats ({', '.join(f for f in AUDIO_FORMATS if f not in ('mp3', 'wav'))}) "
            "without a Content-Type header: Symbl detects them."
        )
