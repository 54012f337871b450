"""Is an ISO-BMFF/QuickTime file one Symbl's video API takes as MP4? Brands and track codecs decide.

"MP4-compatible" here means: the file starts with an ``ftyp`` box (what Symbl checks) and every audio
and video track is coded with a codec registered for the MP4 family (avc1/hvc1/mp4v/av01 video; mp4a,
AC-3, E-AC-3, Opus, FLAC, ALAC audio). An iPhone ``.mov`` (brand ``qt``, H.264 + AAC) is such a file: it
goes as it is. QuickTime without ``ftyp`` (files written before 2001 start with ``moov``/``mdat``), or
with QuickTime-only codecs (ProRes, uncompressed PCM ``sowt``/``twos``/``lpcm``, Motion JPEG, DV, ...)
is not, and is converted. The codec of a track is the type of its first ``stsd`` sample entry.
"""

from __future__ import annotations

from dataclasses import dataclass

from symbl_airflow.media.mp4 import MOOV_WINDOW_BYTES, TRACK_KINDS, _box_header, _children
from symbl_airflow.media.reader import RangeReader

#: Sample entries of video codecs registered for MP4 (MP4RA): sent as they are.
MP4_VIDEO_CODECS = frozenset({"avc1", "avc3", "hvc1", "hev1", "mp4v", "av01"})
#: Sample entries of audio codecs registered for MP4.
MP4_AUDIO_CODECS = frozenset({"mp4a", "ac-3", "ec-3", "Opus", "fLaC", "alac", ".mp3"})
#: Audio-only files Symbl's audio API takes as M4A (AAC in MP4); other audio-only MP4s are converted.
M4A_AUDIO_CODECS = frozenset({"mp4a"})
#: ``ftyp`` brands of still images (HEIF/AVIF): ISO-BMFF, but not recordings.
IMAGE_BRANDS = frozenset({"heic", "heix", "heim", "heis", "hevc", "hevx", "mif1", "msf1", "avif", "avis", "avci"})


@dataclass(frozen=True)
class Track:
    kind: str  # video, audio, text, or the raw handler type
    codec: str | None  # first stsd sample entry type, e.g. avc1, mp4a, apcn, sowt


def brands(ftyp_body: bytes) -> tuple[str, ...]:
    """Major brand, then the compatible brands, of an ``ftyp`` body."""
    if len(ftyp_body) < 4:
        return ()
    names = [ftyp_body[:4]] + [ftyp_body[i : i + 4] for i in range(8, len(ftyp_body) - 3, 4)]
    return tuple(dict.fromkeys(n.decode("latin-1") for n in names))


def _sample_entry(reader: RangeReader, minf_body: int, minf_end: int) -> str | None:
    for box, body, end in _children(reader, minf_body, minf_end):
        if box != "stbl":
            continue
        for child, child_body, _ in _children(reader, body, end):
            if child == "stsd":
                entry = reader.read(child_body + 8, 8, ahead=MOOV_WINDOW_BYTES)
                return entry[4:8].decode("latin-1") if len(entry) == 8 else None
    return None


def tracks(reader: RangeReader) -> tuple[Track, ...]:
    """Kind and codec of every track; reads the same headers as the MP4 probe (cached, no new request)."""
    found: list[Track] = []
    offset = 0
    for _ in range(64):
        parsed = _box_header(reader, offset, reader.size)
        if parsed is None:
            break
        box, header, size = parsed
        if box == "moov":
            for child, body, end in _children(reader, offset + header, offset + size):
                if child != "trak":
                    continue
                kind, codec = None, None
                for sub, sub_body, sub_end in _children(reader, body, end):
                    if sub != "mdia":
                        continue
                    for part, part_body, part_end in _children(reader, sub_body, sub_end):
                        if part == "hdlr":
                            handler = reader.read(part_body + 8, 4, ahead=MOOV_WINDOW_BYTES).decode("latin-1")
                            kind = TRACK_KINDS.get(handler, handler.strip() or None)
                        elif part == "minf":
                            codec = _sample_entry(reader, part_body, part_end)
                if kind:
                    found.append(Track(kind, codec))
            break
        offset += size
    return tuple(found)


def incompatible(found: tuple[Track, ...]) -> list[str]:
    """The audio/video tracks whose codec MP4 does not carry, e.g. ``["video: apcn (ProRes)"]``."""
    bad = []
    for track in found:
        allowed = MP4_VIDEO_CODECS if track.kind == "video" else MP4_AUDIO_CODECS if track.kind == "audio" else None
        if allowed is not None and track.codec not in allowed:
            bad.append(f"{track.kind}: {track.codec or 'unknown codec'}")
    return bad
