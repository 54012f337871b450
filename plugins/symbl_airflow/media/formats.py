"""What an object is, by its content: the first bytes decide, the key's extension only breaks ties.

One rule for discovery and the operator (``inspect``):

* ``video``: an MP4 with a video track whose codecs MP4 carries: Symbl's video API, bytes as they are;
* ``audio``: a format Symbl's audio API lists (MP3, WAV, AMR, AAC, AC-3, AIFF, FLAC, Ogg/Opus, WMA, M4A):
  the audio API, bytes as they are, with the ``Content-Type`` Symbl allows (only ``audio/wav`` and
  ``audio/mpeg`` are; every other format goes without the header, as Symbl's reference says);
* ``convert``: other audio/video containers (WebM/Matroska, AVI, QuickTime that is not MP4-compatible,
  MPEG-TS/PS, FLV, Ogg video, WMV, CAF, ...): see ``convert.py``;
* ``ignore``: not media (text, captions, JSON, images, documents, archives): never a part, named with why.

A file that claims to be media (a media extension, a media signature) but cannot be read raises
UndecodableMediaError: the conversation stops there like after a failed job.
"""

from __future__ import annotations

import logging
import posixpath
from dataclasses import dataclass, field
from datetime import datetime

from symbl_airflow.media import audio, mp4compat
from symbl_airflow.media.errors import UndecodableMediaError
from symbl_airflow.media.reader import RangeReader

log = logging.getLogger(__name__)

VIDEO, AUDIO, CONVERT, IGNORE = "video", "audio", "convert", "ignore"
#: Bytes read first: the headers of nearly every audio format fit, and an MP4 needs only its first 8.
HEAD_BYTES = 4096
#: ``Content-Type`` of the audio formats Symbl names; the others are sent without one (Symbl detects them).
AUDIO_CONTENT_TYPES = {"wav": "audio/wav", "mp3": "audio/mpeg"}
#: Extensions of the formats recognised here by content: one of these that is not what it says is undecodable.
SNIFFED_EXTENSIONS = frozenset(
    "mp4 m4v m4a mov qt 3gp 3g2 wav wave mp3 flac ogg oga ogv opus spx aac amr awb aif aiff aifc ac3 wma wmv asf "
    "webm mkv mka avi flv ts m2ts mts caf".split()
)
#: Other extensions of recordings: content not recognised here is left to ffmpeg to read (``convert``).
OTHER_MEDIA_EXTENSIONS = frozenset(
    "mpg mpeg m2v mp2 vob mxf dv f4v rm rmvb wv ape mpc tta dts eac3 mlp gsm au snd voc y4m nut".split()
)
MEDIA_EXTENSIONS = SNIFFED_EXTENSIONS | OTHER_MEDIA_EXTENSIONS


@dataclass(frozen=True)
class MediaFacts:
    """What the headers say about one object, and where it goes."""

    #: Short format name: mp4, m4a, wav, mp3, flac, ogg, aac, amr, aiff, ac3, wma, webm, mkv, avi, mov, ...
    format: str
    #: ``video`` | ``audio`` (sent as is to that Symbl API) | ``convert`` | ``ignore``
    route: str
    #: Why this route, in words for the log (e.g. "QuickTime with video: apcn (not an MP4 codec)").
    reason: str
    content_type: str | None = None
    #: Media seconds from the headers; None when they do not say (or an Ogg/ASF with video).
    seconds: float | None = None
    #: False when ``seconds`` is estimated from a bitrate (CBR MP3, ADTS AAC, AMR, AC-3).
    seconds_exact: bool = True
    #: Track kinds (video, audio, text) where the container lists them; None when unknown.
    tracks: tuple[str, ...] | None = None
    codecs: tuple[str, ...] = ()
    creation_time: datetime | None = field(default=None, compare=False)

    @property
    def endpoint(self) -> str | None:
        """Symbl's API for the bytes as they are (``video``/``audio``); None when converted or ignored."""
        return self.route if self.route in (VIDEO, AUDIO) else None

    @property
    def is_media(self) -> bool:
        return self.route != IGNORE

    @property
    def has_audio(self) -> bool | None:
        return None if self.tracks is None else "audio" in self.tracks


def extension(key: str) -> str:
    return posixpath.splitext(key.rsplit("/", 1)[-1])[1].lower().lstrip(".")


def _ignored(fmt: str, what: str) -> MediaFacts:
    return MediaFacts(fmt, IGNORE, f"not audio or video ({what})")


def _audio(fmt: str, header: audio.AudioHeader, reason: str) -> MediaFacts:
    return MediaFacts(
        fmt,
        AUDIO,
        reason,
        content_type=AUDIO_CONTENT_TYPES.get(fmt),
        seconds=header.seconds,
        seconds_exact=header.exact,
        tracks=("audio",),
        codecs=header.codecs,
    )


def _convert(fmt: str, reason: str, **kwargs) -> MediaFacts:
    return MediaFacts(fmt, CONVERT, reason, **kwargs)


def _text_kind(head: bytes) -> str | None:
    """``captions``/``JSON``/``text`` when ``head`` reads as text; None for binary data."""
    if head[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return "text (UTF-16)"
    if b"\0" in head:
        return None
    sample = head[:-4] if len(head) >= HEAD_BYTES else head  # a multi-byte character may be cut at the end
    text = sample.decode("utf-8", errors="replace")
    controls = sum(1 for ch in text if (ord(ch) < 32 and ch not in "\t\n\r\f") or ch == "\ufffd")
    if controls > max(1, len(text) // 100):
        return None
    stripped = text.lstrip("\ufeff \t\r\n")
    if stripped.startswith("WEBVTT") or "-->" in text[:400]:
        return "captions"
    if stripped[:1] in ("{", "["):
        return "JSON"
    if stripped[:1] == "<":
        return "markup (HTML/XML)"
    return "text"


#: Signatures of common non-media files: (prefix, offset, name).
_NOT_MEDIA = (
    (b"\xff\xd8\xff", 0, "JPEG image"),
    (b"\x89PNG\r\n\x1a\n", 0, "PNG image"),
    (b"GIF87a", 0, "GIF image"),
    (b"GIF89a", 0, "GIF image"),
    (b"II*\0", 0, "TIFF image"),
    (b"MM\0*", 0, "TIFF image"),
    (b"WEBP", 8, "WebP image"),
    (b"%PDF", 0, "PDF document"),
    (b"PK\x03\x04", 0, "ZIP archive"),
    (b"\x1f\x8b", 0, "gzip archive"),
    (b"7z\xbc\xaf\x27\x1c", 0, "7-Zip archive"),
    (b"Rar!", 0, "RAR archive"),
    (b"PAR1", 0, "Parquet file"),
    (b"SQLite format 3", 0, "SQLite database"),
)


def _not_media(head: bytes) -> str | None:
    for prefix, at, name in _NOT_MEDIA:
        if head[at : at + len(prefix)] == prefix and not (prefix == b"WEBP" and head[:4] != b"RIFF"):
            return name
    return _text_kind(head)


def _mp4(reader: RangeReader, head: bytes, uri: str) -> MediaFacts:
    from symbl_airflow.media.base import MediaSourceError
    from symbl_airflow.media.mp4 import probe_mp4
    from symbl_airflow.media.mp4 import tracks as mp4_tracks

    size = int.from_bytes(head[:4], "big")
    found_brands = mp4compat.brands(head[8 : min(max(size, 8), len(head))])
    if found_brands and found_brands[0] in mp4compat.IMAGE_BRANDS:
        return _ignored("heif", f"{found_brands[0]} still image")
    try:
        info = probe_mp4(reader, uri)
    except MediaSourceError as exc:
        raise UndecodableMediaError(uri, str(exc).removeprefix(f"source {uri!r} ")) from None
    tracks = mp4_tracks(reader)
    kinds = info.tracks
    codecs = tuple(t.codec or "?" for t in tracks if t.kind in ("video", "audio"))
    quicktime = bool(found_brands) and found_brands[0] == "qt  "
    fmt = "mov" if quicktime else "mp4"
    common = {"seconds": info.duration_seconds, "tracks": kinds, "codecs": codecs, "creation_time": info.creation_time}
    if not info.has_video and not info.has_audio:
        raise UndecodableMediaError(uri, f"an MP4 with no audio or video track (tracks: {', '.join(kinds) or 'none'})")
    bad = mp4compat.incompatible(tracks)
    if info.has_video:
        if bad:
            return _convert(
                fmt,
                f"{'QuickTime' if quicktime else 'MP4'} with codecs MP4 does not carry ({'; '.join(bad)})",
                **common,
            )
        return MediaFacts(fmt, VIDEO, "MP4 video", content_type="video/mp4", **common)
    audio_codecs = {t.codec for t in tracks if t.kind == "audio"}
    if audio_codecs <= mp4compat.M4A_AUDIO_CODECS:
        return MediaFacts("m4a", AUDIO, "audio-only MP4 (M4A)", **common)
    return _convert(
        "m4a", f"audio-only MP4 with {', '.join(sorted(map(str, audio_codecs)))} (Symbl takes AAC M4A)", **common
    )


def _after_id3(reader: RangeReader, head: bytes, uri: str, ext: str) -> MediaFacts:
    start = 0
    for _ in range(4):  # tags may be stacked
        skip = audio.id3_end(head)
        if not skip:
            break
        start += skip
        head = reader.read(start, HEAD_BYTES)
    if not head:
        raise UndecodableMediaError(uri, "an ID3 tag and no audio after it (truncated)")
    if head[:4] == b"fLaC":
        return _audio("flac", audio.flac(reader, uri, start), "FLAC audio")
    adts_first = audio.is_adts(head) and (ext == "aac" or audio.find_mpeg_frames(head[:64]) is None)
    if adts_first:
        return _audio("aac", audio.adts(reader, uri, start), "AAC audio (ADTS)")
    if audio.find_mpeg_frames(head) is not None:
        return _audio("mp3", audio.mp3(reader, uri, start), "MP3 audio")
    raise UndecodableMediaError(uri, "an ID3 tag followed by no MP3, AAC or FLAC audio frames")


def signature_route(head: bytes) -> str | None:
    """Where the first bytes (at least 64) point, without reading more: ``video`` for any ISO-BMFF
    (``ftyp``: the MP4 member decides), ``audio``, ``convert``, or None (no media signature: ``inspect``
    decides, with the extension as a tie-breaker)."""
    if head[4:8] == b"ftyp":
        return VIDEO
    if (head[:4] in (b"RIFF", b"RF64") and head[8:12] == b"WAVE") or (
        head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC")
    ):
        return AUDIO
    if head.startswith((b"fLaC", b"ID3", b"OggS", audio.AMR_MAGIC_NB, audio.AMR_MAGIC_WB, audio.ASF_HEADER)):
        return AUDIO  # (Ogg and ASF with video: ``inspect`` routes them to conversion)
    if head[:4] == b"RIFF" and head[8:12] in (b"AVI ", b"AVIX", b"CDXA"):
        return CONVERT
    if head[:4] in (
        b"\x1a\x45\xdf\xa3",
        b"caff",
        b"FLV\x01",
        b"\x00\x00\x01\xba",
        b"\x00\x00\x01\xb3",
        b"\x06\x0e\x2b\x34",
    ):
        return CONVERT
    if head[4:8] in (b"moov", b"mdat", b"wide", b"pnot") and int.from_bytes(head[:4], "big") >= 8:
        return CONVERT
    if head[:2] == b"\x0b\x77" or audio.adts_frame(head) or audio.mpeg_frame(head):
        return AUDIO
    return None


def inspect(reader: RangeReader, key: str, uri: str) -> MediaFacts:
    """Sniff one object (a few ranged reads); raise UndecodableMediaError for broken media."""
    ext = extension(key)
    if reader.size == 0:
        if ext in MEDIA_EXTENSIONS:
            raise UndecodableMediaError(uri, "the object is empty (0 bytes); re-upload the recording")
        return _ignored("empty", "empty object")
    head = reader.read(0, HEAD_BYTES)
    if hasattr(reader, "seed"):
        reader.seed(0, head)
    facts = _sniff(reader, head, uri, ext)
    if facts is not None:
        return facts
    not_media = _not_media(head)
    if ext in SNIFFED_EXTENSIONS:
        what = f"it holds a {not_media}" if not_media else "its first bytes match no audio or video format"
        raise UndecodableMediaError(uri, f"named .{ext} but {what}")
    if not_media:
        return _ignored(not_media.split()[0].lower() if " " in not_media else not_media.lower(), not_media)
    if ext in OTHER_MEDIA_EXTENSIONS:
        return _convert(ext, f"unrecognised .{ext} header: left to ffmpeg to read")
    return _ignored("unknown", f"unrecognised binary content{f' (.{ext})' if ext else ''}")


def _sniff(reader: RangeReader, head: bytes, uri: str, ext: str) -> MediaFacts | None:
    if head[4:8] == b"ftyp":
        return _mp4(reader, head, uri)
    if head[:4] in (b"RIFF", b"RF64") and head[8:12] == b"WAVE":
        return _audio("wav", audio.wav(reader, uri), "WAV audio")
    if head[:4] == b"RIFF" and head[8:12] in (b"AVI ", b"AVIX"):
        return _convert("avi", "AVI container")
    if head[:4] == b"RIFF" and head[8:12] == b"CDXA":
        return _convert("mpeg", "RIFF CDXA (Video CD) container")
    if head[:4] == b"FORM" and head[8:12] in (b"AIFF", b"AIFC"):
        return _audio("aiff", audio.aiff(reader, uri), "AIFF audio")
    if head[:4] == b"fLaC":
        return _audio("flac", audio.flac(reader, uri), "FLAC audio")
    if head[:3] == b"ID3":
        return _after_id3(reader, head, uri, ext)
    if head[:4] == b"OggS":
        header = audio.ogg(reader, uri)
        if header.has_video:
            return _convert("ogv", f"Ogg video ({', '.join(header.codecs)})", codecs=header.codecs)
        if not set(header.codecs) & audio.OGG_AUDIO_CODECS:
            raise UndecodableMediaError(
                uri, f"an Ogg file with no audio stream Symbl reads ({', '.join(header.codecs)})"
            )
        fmt = "opus" if header.codecs[0] == "opus" else "ogg"
        return _audio(fmt, header, f"Ogg audio ({', '.join(header.codecs)})")
    if head.startswith((audio.AMR_MAGIC_NB, audio.AMR_MAGIC_WB)):
        return _audio("amr", audio.amr(reader, uri), "AMR audio")
    if head[:16] == audio.ASF_HEADER:
        header = audio.asf(reader, uri)
        if header.has_video:
            return _convert("wmv", "ASF/WMV with video", seconds=header.seconds, tracks=header.codecs)
        return _audio("wma", header, "WMA audio (ASF)")
    if head[:4] == b"\x1a\x45\xdf\xa3":
        doc = head[:64].find(b"\x42\x82")
        webm = doc >= 0 and b"webm" in head[doc : doc + 8]
        return _convert("webm" if webm else "mkv", "WebM container" if webm else "Matroska container")
    if head[:4] == b"caff":
        return _convert("caf", "Core Audio Format (not in Symbl's audio formats)")
    if head[:4] == b"FLV\x01":
        return _convert("flv", "Flash video container")
    if head[:4] in (b"\x00\x00\x01\xba", b"\x00\x00\x01\xb3"):
        return _convert("mpeg", "MPEG program stream")
    if head[:4] == b"\x06\x0e\x2b\x34":
        return _convert("mxf", "MXF container")
    if len(head) > 376 and head[0] == 0x47 and head[188] == 0x47 and head[376] == 0x47:
        return _convert("ts", "MPEG transport stream")
    if len(head) > 388 and head[4] == 0x47 and head[196] == 0x47 and head[388] == 0x47:
        return _convert("m2ts", "MPEG transport stream (M2TS)")
    box = head[4:8].decode("latin-1")
    if box in ("moov", "mdat", "wide", "free", "skip", "pnot") and int.from_bytes(head[:4], "big") >= 8:
        return _convert("mov", f"QuickTime without an 'ftyp' box (starts with '{box}'): not MP4-compatible")
    # Frame-synced streams have weak signatures: two consecutive frames, or the extension, decide.
    if head[:2] == b"\x0b\x77" and (ext == "ac3" or ext not in SNIFFED_EXTENSIONS):
        if audio.ac3_bsid(head) <= 8:
            return _audio("ac3", audio.ac3(reader, uri), "AC-3 audio")
        return _convert("eac3", "E-AC-3 audio (not in Symbl's audio formats)")
    if audio.is_adts(head) and ext != "mp3":
        return _audio("aac", audio.adts(reader, uri), "AAC audio (ADTS)")
    if audio.find_mpeg_frames(head, limit=512) is not None and ext not in ("aac", "ac3"):
        return _audio("mp3", audio.mp3(reader, uri), "MP3 audio")
    return None
